// Audio both ways, end to end as `deno task demo` runs it: the master sends the sample tones
// (Opus, in step with the sample frames) to the viewer page (official KVS JS SDK) in headless
// Chromium, which plays them, and Chromium's fake microphone comes back to the master, recorded
// to an Ogg/Opus file by the CLI's recorder that ffmpeg decodes.
import assert from "node:assert/strict";
import { startDemo } from "../cli/demo.ts";
import { ViewerAudioRecorder } from "../cli/record_audio.ts";
import { createLogger, silentLogger } from "../src/log.ts";
import { launchBrowser, type ViewerStatus } from "./support/browser.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;

interface AudioStatus {
  state: string;
  packetsReceived: number;
  totalSamplesReceived: number;
  concealedSamples: number;
  codec: string | null;
  currentDirection?: string;
  microphone?: string;
}

const audioOf = (s: ViewerStatus) => s.audio as AudioStatus | null;

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

Deno.test({
  name: "audio: the sample tones play in Chromium, and its microphone is recorded by the master",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kvs-audio-" });
    const demo = await startDemo({
      loopbackOnly: true,
      stateDir: STATE,
      channel: `audio-${crypto.randomUUID().slice(0, 8)}`,
      logger: createLogger({ level: "warn", component: "audio-test" }),
    });
    const recorder = new ViewerAudioRecorder(dir, silentLogger);
    let packets = 0;
    demo.master.on("audio", ({ viewerId, packet }) => {
      packets++;
      recorder.write(viewerId, packet);
    });
    demo.master.on("viewerLeft", ({ viewerId }) => recorder.close(viewerId));
    const browser = await launchBrowser({ args: ["--use-fake-device-for-media-stream"] });
    const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
    try {
      await demo.master.waitForState("Connected", 15_000);
      const viewer = await browser.openViewer({
        pageUrl: demo.pageUrl,
        params: { ...params, mic: "1" },
      });
      const start = await viewer.waitFor(
        (s) => s.framesDecoded >= 10 && (audioOf(s)?.totalSamplesReceived ?? 0) > 48_000,
        20_000,
        "video decoding and a second of audio played",
      );
      const a0 = audioOf(start)!;
      assert.equal(a0.codec, "audio/opus");
      assert.equal(a0.currentDirection, "sendrecv", "the master takes the microphone too");
      assert.equal(a0.microphone, "on");
      await new Promise((r) => setTimeout(r, 10_000));
      const end = await viewer.status();
      const a1 = audioOf(end)!;
      const samples = a1.totalSamplesReceived - a0.totalSamplesReceived;
      const concealed = a1.concealedSamples - a0.concealedSamples;
      console.log(
        `10 s of audio at the viewer: ${samples} samples, ${concealed} concealed ` +
          `(${(concealed / samples * 100).toFixed(2)} %), ${a1.packetsReceived} packets; ` +
          `${packets} packets from its microphone at the master`,
      );
      assert.ok(samples >= 48_000 * 9, `samples received in 10 s: ${samples}`);
      assert.ok(concealed < samples * 0.05, `concealed ${concealed} of ${samples}`);
      assert.ok(end.framesDecoded > start.framesDecoded + 150, "the video plays on meanwhile");

      await viewer.close();
      const left = performance.now();
      while (recorder.files.size === 0 || performance.now() - left < 500) {
        if (performance.now() - left > 15_000) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      recorder.closeAll();
      const [file] = [...recorder.files.values()];
      assert.ok(file, "a file was recorded");
      const { seconds, rms } = await decode(file);
      // Packets from the first one on, 20 ms each (the viewer sent for 11 s or more).
      assert.ok(
        Math.abs(seconds - packets * 0.02) < 0.5,
        `${seconds.toFixed(2)} s decoded for ${packets} packets`,
      );
      assert.ok(seconds >= 10, `${seconds.toFixed(2)} s recorded`);
      assert.ok(rms > 300, `the recording is not silent (RMS ${rms.toFixed(0)})`);
    } finally {
      await browser.close();
      await demo.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
