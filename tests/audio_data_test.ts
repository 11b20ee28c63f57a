// Audio and a data channel end to end, as `deno task demo` runs it, in headless Chromium and
// Firefox ESR through the viewer page (official KVS JS SDK): the master sends the sample tones
// (Opus, in step with the sample frames) and they play with under 5 % concealed over 10 s; the
// browser's fake microphone comes back and is recorded to Ogg/Opus by the CLI's recorder, which
// ffmpeg decodes to audio of the right length that is not silent; the viewer's `kvsDataChannel`
// gets its 20 timed pings and a message typed in the page's box echoed back by the master.
import assert from "node:assert/strict";
import { startDemo } from "../cli/demo.ts";
import { ViewerAudioRecorder } from "../cli/record_audio.ts";
import { createLogger, silentLogger } from "../src/log.ts";
import { audioOf, channelOf, launchBrowser, type TestBrowser } from "./support/browser.ts";
import { ensureFirefoxNetwork, firefoxUnavailable, launchFirefox } from "./support/firefox.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;

/** Why Firefox cannot run here (printed, and its test ignored), or null. */
const firefoxMissing = await (async () => {
  const why = await firefoxUnavailable();
  if (why) return why;
  try {
    await ensureFirefoxNetwork();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
})();

/** Decode an Ogg/Opus file with ffmpeg to 48 kHz mono s16: its duration (s) and RMS level. */
async function decode(path: string): Promise<{ seconds: number; rms: number }> {
  const out = await new Deno.Command("ffmpeg", {
    args: ["-v", "error", "-i", path, "-ac", "1", "-ar", "48000", "-f", "s16le", "-"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(
    out.success,
    `ffmpeg could not decode ${path}: ${new TextDecoder().decode(out.stderr)}`,
  );
  const pcm = new Int16Array(out.stdout.buffer, 0, out.stdout.length >> 1);
  let sum = 0;
  for (const x of pcm) sum += x * x;
  return { seconds: pcm.length / 48000, rms: Math.sqrt(sum / Math.max(1, pcm.length)) };
}

/** The whole scenario in one browser. */
async function audioAndData(
  launch: () => Promise<TestBrowser<unknown, unknown>>,
  name: string,
  loopbackOnly: boolean,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kvs-audio-" });
  const logs: unknown[] = [];
  const demo = await startDemo({
    loopbackOnly,
    turn: false,
    stateDir: STATE,
    channel: `av-${crypto.randomUUID().slice(0, 8)}`,
    logger: createLogger({ level: "debug", sink: (r) => logs.push(r), component: "av" }),
  });
  const recorder = new ViewerAudioRecorder(dir, silentLogger);
  let micPackets = 0;
  const labels: string[] = [];
  let messages = 0;
  demo.master.on("audio", ({ viewerId, packet }) => {
    micPackets++;
    recorder.write(viewerId, packet);
  });
  demo.master.on("dataChannel", ({ channel }) => labels.push(channel.label));
  demo.master.on("message", () => messages++);
  demo.master.on("viewerLeft", ({ viewerId }) => recorder.close(viewerId));
  const browser = await launch();
  const params = { ...Object.fromEntries(new URL(demo.viewerUrl).searchParams), mic: "1" };
  try {
    await demo.master.waitForState("Connected", 15_000);
    const v = await browser.openViewer({
      pageUrl: demo.pageUrl,
      params: { ...params, ping: "20" },
    });
    try {
      const start = await v.waitFor(
        (s) =>
          s.framesDecoded >= 10 && channelOf(s)?.echoed === 20 &&
          (audioOf(s)?.totalSamplesReceived ?? 0) > 48_000,
        20_000,
        `${name}: video, 20 echoed pings and a second of audio`,
      );
      const a0 = audioOf(start)!;
      const d = channelOf(start)!;
      assert.equal(start.codec, "H264");
      assert.equal(a0.state, "receiving");
      assert.equal(a0.codec?.toLowerCase(), "audio/opus");
      assert.equal(a0.microphone, "on");
      assert.equal(a0.currentDirection, "sendrecv", "the master takes the microphone too");
      assert.equal(d.label, "kvsDataChannel");
      assert.equal(d.sent, 20);
      assert.equal(d.received, 0, "nothing but the echoes came back");
      assert.ok(d.medianRttMs !== null && d.medianRttMs > 0 && d.medianRttMs < 1000);
      assert.deepEqual(labels, ["kvsDataChannel"]);

      // The message box.
      const page = v.page as { evaluate(fn: () => void): Promise<unknown> };
      await page.evaluate(() => {
        // In the page (no DOM types in this program).
        const doc = (globalThis as unknown as {
          document: { getElementById(id: string): { value: string; click(): void } };
        }).document;
        doc.getElementById("message").value = "hello from the message box";
        doc.getElementById("send").click();
      });
      await v.waitFor((x) => channelOf(x)?.echoed === 21, 5_000, "the typed message's echo");
      assert.equal(messages, 21);

      await new Promise((r) => setTimeout(r, 10_000));
      const end = await v.status();
      const a1 = audioOf(end)!;
      const samples = a1.totalSamplesReceived - a0.totalSamplesReceived;
      const concealed = a1.concealedSamples - a0.concealedSamples;
      console.log(
        `${name}: 10 s of audio: ${samples} samples, ${concealed} concealed ` +
          `(${(concealed / samples * 100).toFixed(2)} %); data channel round trip median ` +
          `${d.medianRttMs} ms; ${micPackets} microphone packets at the master`,
      );
      assert.ok(samples >= 48_000 * 9, `samples received in 10 s: ${samples}`);
      assert.ok(concealed < samples * 0.05, `concealed ${concealed} of ${samples}`);
      assert.ok(end.framesDecoded > start.framesDecoded + 150, "the video plays on meanwhile");
    } finally {
      await v.close();
    }
    // The viewer's microphone, recorded until it left.
    const left = performance.now();
    while (recorder.files.size === 0 && performance.now() - left < 10_000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    recorder.closeAll();
    const [file] = [...recorder.files.values()];
    assert.ok(file, "a file was recorded");
    const { seconds, rms } = await decode(file);
    assert.ok(
      Math.abs(seconds - micPackets * 0.02) < 0.5,
      `${seconds.toFixed(2)} s decoded for ${micPackets} packets of 20 ms`,
    );
    assert.ok(seconds >= 10, `${seconds.toFixed(2)} s recorded`);
    assert.ok(rms > 300, `the recording is not silent (RMS ${rms.toFixed(0)})`);
  } catch (e) {
    console.log(logs.map((l) => JSON.stringify(l)).join("\n").slice(-20000));
    throw e;
  } finally {
    await browser.close();
    await demo.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "audio both ways and a data channel in Chromium (fake microphone)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    audioAndData(
      () => launchBrowser({ args: ["--use-fake-device-for-media-stream"] }),
      "Chromium",
      true,
    ),
});

Deno.test({
  name: "audio both ways and a data channel in Firefox ESR (fake microphone)",
  ignore: firefoxMissing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => audioAndData(() => launchFirefox(), "Firefox", false),
});
