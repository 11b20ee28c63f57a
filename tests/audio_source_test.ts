// Audio sources: the sample loop's timing and its step with the video loop on a shared clock,
// Ogg Opus from a stream (ffmpeg's stdout) paced by granule positions, an encoder command.
import assert from "node:assert/strict";
import {
  type AudioPacket,
  AudioTimestamper,
  CommandAudioSource,
  FileAudioSource,
  FileVideoSource,
  isKeyframe,
  MediaSourceError,
  OggError,
  OggOpusWriter,
  StreamAudioSource,
} from "../src/media/mod.ts";
import { createLogger, type LogRecord } from "../src/log.ts";
import { SimClock } from "./support/sim_clock.ts";
import { concatBytes, ffmpeg, prng } from "./support/audio.ts";
import { until } from "./support/until.ts";

const SAMPLE = new URL("../samples/opus/tones.opus", import.meta.url).pathname;
const VIDEO = new URL("../samples/h264/", import.meta.url).pathname;

Deno.test("AudioTimestamper: 48 kHz from µs, end to end while contiguous, jumps kept", () => {
  const s = new AudioTimestamper();
  assert.equal(s.stamp(1_000_000, 960), 48_000);
  assert.equal(s.stamp(1_020_020, 960), 48_960, "48961 rounded: put end to end");
  assert.equal(s.stamp(1_039_990, 960), 49_920);
  assert.equal(s.stamp(1_059_000, 960), 50_880, "a little early: no overlap");
  assert.equal(s.stamp(3_000_000, 960), 144_000, "a real jump stays");
  assert.equal(s.stamp(2_000_000, 480), 144_960, "never backwards");
  assert.equal(s.next, 145_440);
});

Deno.test("FileAudioSource loops the sample: a packet every 20 ms, 500 a loop, the video's length", async () => {
  const clock = new SimClock();
  const audio = await FileAudioSource.open({ path: SAMPLE, clock });
  const video = await FileVideoSource.open({ dir: VIDEO, clock });
  assert.equal(audio.codec, "opus");
  assert.equal(audio.channels, 1);
  assert.equal(audio.packets.length, 500);
  assert.equal(audio.packetSamples, 960);
  assert.equal(audio.loopMs, 10_000);
  assert.equal(audio.loopMs, (video.frames.length / video.fps) * 1000, "the video loop's length");

  const got: AudioPacket[] = [];
  const t0 = clock.now();
  audio.start((p) => got.push(p));
  assert.throws(() => audio.start(() => {}), MediaSourceError);
  const rand = prng(9);
  clock.advance(25_000, () => rand() * 15); // timers up to 15 ms late
  audio.stop();
  assert.equal(got.length, 1251, "ticks at 0, 20 … 25 000 ms");
  assert.equal(audio.delivered, 1251);
  for (let i = 0; i < got.length; i++) {
    assert.equal(got[i].data, audio.packets[i % 500], `packet ${i} is the loop's ${i % 500}`);
    assert.equal(got[i].timestampUs, Math.round((t0 + i * 20) * 1000), "deadlines, not lateness");
    assert.equal(got[i].timestamp48k - got[0].timestamp48k, i * 960, "contiguous RTP time");
    assert.equal(got[i].samples, 960);
  }
  clock.advance(1000);
  assert.equal(got.length, 1251, "nothing after stop()");
});

/** Which loop index each delivered frame / packet is, by the identity of its bytes. */
function indexer<T>(items: readonly T[]): Map<T, number> {
  return new Map(items.map((x, i) => [x, i]));
}

/**
 * Audio packets whose content is not the video's at their instant: packet 2n with frame n. The
 * frame on screen is the latest one at or before the packet's time.
 */
function outOfStep(
  frames: { i: number; ts: number }[],
  packets: { i: number; ts: number }[],
): { at: number; got: number; want: number }[] {
  const bad = [];
  let v = -1;
  for (const p of packets) {
    while (v + 1 < frames.length && frames[v + 1].ts <= p.ts) v++;
    if (v < 0) continue;
    const want = (2 * frames[v].i + Math.round((p.ts - frames[v].ts) / 20_000)) % 500;
    if (p.i !== want) bad.push({ at: p.ts, got: p.i, want });
  }
  return bad;
}

Deno.test("in step with the video loop: one clock, one start, through jumps, rests and stalls", async (t) => {
  await t.step("started together, nothing else: packet 2n plays with frame n", async () => {
    const clock = new SimClock();
    const frames = await FileVideoSource.open({ dir: VIDEO, fps: 25, clock });
    const audio = await FileAudioSource.open({ path: SAMPLE, clock });
    const fi = indexer(frames.frames.map((f) => f.data));
    const pi = indexer(audio.packets);
    const vids: { i: number; ts: number }[] = [];
    const auds: { i: number; ts: number }[] = [];
    frames.start((f) => vids.push({ i: fi.get(f.data)!, ts: f.timestampUs }));
    audio.start((p) => auds.push({ i: pi.get(p.data)!, ts: p.timestampUs }));
    const rand = prng(2);
    clock.advance(25_000, () => rand() * 10);
    frames.stop();
    audio.stop();
    assert.equal(vids.length, 626);
    assert.equal(auds.length, 1251);
    assert.deepEqual(outOfStep(vids, auds), []);
    // Same instants, same timestamps.
    for (let n = 0; n < vids.length; n++) assert.equal(auds[2 * n].ts, vids[n].ts);
  });

  await t.step("follow(): keyframe jumps, rests (either order), a stalled process", async () => {
    const clock = new SimClock();
    const frames = await FileVideoSource.open({ dir: VIDEO, fps: 25, clock });
    const audio = await FileAudioSource.open({ path: SAMPLE, clock });
    const video = audio.follow(frames);
    assert.equal(video.codec, "h264");
    assert.equal(video.profileLevelId, frames.profileLevelId);
    const fi = indexer(frames.frames.map((f) => f.data));
    const pi = indexer(audio.packets);
    const vids: { i: number; ts: number }[] = [];
    const auds: { i: number; ts: number }[] = [];
    video.start((f) => vids.push({ i: fi.get(f.data)!, ts: f.timestampUs }));
    audio.start((p) => auds.push({ i: pi.get(p.data)!, ts: p.timestampUs }));
    const rand = prng(3);
    const late = () => rand() * 10;

    clock.advance(3_130, late);
    video.requestKeyframe!(); // a viewer joins: the video jumps to its next IDR
    clock.advance(2_000, late);
    assert.ok(frames.skipped > 0, "the video jumped");
    video.idle!(true); // nobody watches: both rest
    audio.idle(true);
    clock.advance(3_700);
    assert.equal(clock.pending, 0, "both loops rest");
    video.idle!(false);
    audio.idle(false);
    clock.advance(2_010, late);
    video.idle!(true);
    audio.idle(true);
    clock.advance(1_234);
    audio.idle(false); // the other order
    video.idle!(false);
    video.requestKeyframe!();
    clock.advance(1_500, late);
    clock.stall(5_000); // the process froze: both re-anchor
    clock.advance(2_000, late);
    video.stop();
    audio.stop();

    const bad = outOfStep(vids, auds);
    // The only packet out of step: the audio resumed before the video, so its first packet
    // could not know where the video was.
    assert.ok(bad.length <= 1, JSON.stringify(bad));
    for (let i = 1; i < auds.length; i++) {
      assert.ok(auds[i].ts > auds[i - 1].ts, "audio timestamps increase");
    }
  });

  await t.step("loops of different lengths cannot follow each other", async () => {
    const frames = [];
    for (let n = 1; n <= 3; n++) {
      const data = await Deno.readFile(`${VIDEO}frame-000${n}.h264`);
      frames.push({ name: `f${n}`, data, keyframe: isKeyframe(data) });
    }
    const short = FileVideoSource.fromFrames(frames, { dir: "memory", fps: 25 });
    const audio = await FileAudioSource.open({ path: SAMPLE });
    assert.throws(
      () => audio.follow(short),
      /the audio loop lasts 10 s, the video loop \(memory\) 0\.12 s: they would drift apart/,
    );
  });
});

Deno.test("FileAudioSource in real time: 20 ms apart for about 1.2 s", async () => {
  const audio = await FileAudioSource.open({ path: SAMPLE });
  const got: { p: AudioPacket; at: number }[] = [];
  const t0 = performance.now();
  audio.start((p) => got.push({ p, at: performance.now() }));
  await new Promise((r) => setTimeout(r, 1200));
  audio.stop();
  const n = got.length;
  assert.ok(n >= 55 && n <= 65, `${n} packets in 1.2 s`);
  for (let i = 1; i < n; i++) {
    assert.ok(Math.abs(got[i].p.timestampUs - got[i - 1].p.timestampUs - 20_000) <= 1);
    assert.equal(got[i].p.timestamp48k - got[i - 1].p.timestamp48k, 960);
    const due = t0 + i * 20;
    assert.ok(
      got[i].at >= due - 1 && got[i].at < due + 150,
      `packet ${i} at ${got[i].at - due} ms`,
    );
  }
});

Deno.test("FileAudioSource: what cannot be looped is refused, naming the file", async () => {
  await assert.rejects(
    FileAudioSource.open({ path: "/nonexistent/a.opus" }),
    /audio file not found/,
  );
  const dir = await Deno.makeTempDir({ prefix: "kvs-audio-test-" });
  try {
    const wav = `${dir}/a.wav`;
    await Deno.writeFile(
      wav,
      await ffmpeg(["-f", "lavfi", "-i", "sine=duration=0.1", "-f", "wav", "-"]),
    );
    await assert.rejects(
      FileAudioSource.open({ path: wav }),
      (e) => e instanceof OggError && e.message.startsWith(`${wav}: not an Ogg stream`),
    );
    const surround = `${dir}/6ch.opus`;
    await Deno.writeFile(
      surround,
      await ffmpeg([
        ...["-f", "lavfi", "-i", "sine=duration=0.2", "-ac", "6", "-c:a", "libopus"],
        ...["-mapping_family", "1", "-f", "ogg", "-"],
      ]),
    );
    await assert.rejects(
      FileAudioSource.open({ path: surround }),
      /6 channels in channel mapping family 1: WebRTC carries mono or stereo Opus/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const p20 = new Uint8Array([0xf8, 0xff, 0xfe]);
  const p10 = new Uint8Array([0xf0, 0xff, 0xfe]);
  assert.throws(
    () => FileAudioSource.fromPackets([p20, p10], { path: "mixed" }),
    /mixed: packet 2 lasts 10 ms, the first 20 ms/,
  );
  assert.throws(() => FileAudioSource.fromPackets([], { path: "none" }), /no audio packets/);
  assert.throws(
    () => FileAudioSource.fromPackets([new Uint8Array(0)], { path: "bad" }),
    /bad: packet 1: empty Opus packet/,
  );
  assert.equal(FileAudioSource.fromPackets([p20], { path: "m" }).channels, 1);

  // Once through, not looping: the end is told once and nothing stays scheduled.
  const clock = new SimClock();
  let ended = 0;
  const once = FileAudioSource.fromPackets(new Array(5).fill(p20), {
    path: "memory",
    loop: false,
    clock,
    onEnd: () => ended++,
  });
  const got: AudioPacket[] = [];
  once.start((p) => got.push(p));
  clock.advance(1000);
  assert.equal(got.length, 5);
  assert.equal(ended, 1);
  assert.equal(clock.pending, 0);
});

/** `seconds` of a sine encoded by libopus into Ogg. */
function oggSine(seconds: number, extra: string[] = [], channels = 1): Promise<Uint8Array> {
  return ffmpeg([
    ...["-f", "lavfi", "-i", `sine=frequency=500:sample_rate=48000:duration=${seconds}`],
    ...["-ac", String(channels), "-c:a", "libopus", ...extra, "-f", "ogg", "-"],
  ]);
}

/** Run a StreamAudioSource to its end; what it delivered, when, and how it ended. */
async function drain(options: ConstructorParameters<typeof StreamAudioSource>[0]) {
  const got: { p: AudioPacket; at: number }[] = [];
  let end = "none" as Error | undefined | "none";
  const source = new StreamAudioSource({ ...options, onEnd: (e) => end = e });
  const t0 = performance.now();
  source.start((p) => got.push({ p, at: performance.now() - t0 }));
  await source.done;
  return { got, end, source };
}

Deno.test("StreamAudioSource: Ogg Opus from a stream, paced by its granule positions", async (t) => {
  await t.step(
    "ffmpeg faster than real time: held to real time, timestamps contiguous",
    async () => {
      const child = new Deno.Command("ffmpeg", {
        args: [
          ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"],
          ...["sine=frequency=500:sample_rate=48000:duration=1.5", "-c:a", "libopus"],
          ...["-f", "ogg", "-"],
        ],
        stdout: "piped",
      }).spawn();
      const { got, end, source } = await drain({ stream: child.stdout, name: "ffmpeg" });
      assert.ok((await child.status).success);
      assert.equal(end, undefined, "ended cleanly");
      assert.equal(source.channels, 1);
      assert.equal(got.length, 76, "1.5 s and the pre-skip in 20 ms packets");
      for (let i = 1; i < got.length; i++) {
        assert.equal(got[i].p.timestamp48k - got[i - 1].p.timestamp48k, 960);
        assert.ok(Math.abs(got[i].p.timestampUs - got[i - 1].p.timestampUs - 20_000) <= 1);
        // Delivered at its time, not as soon as ffmpeg wrote it (a whole second a page).
        assert.ok(got[i].at >= got[0].at + i * 20 - 2, `packet ${i} at ${got[i].at} ms`);
      }
      assert.ok(got.at(-1)!.at - got[0].at >= 1480, "spread over 1.5 s");
      assert.equal(source.reanchored, 0);
    },
  );

  await t.step("a real-time encoder, a page a packet: delivered as it comes", async () => {
    const child = new Deno.Command("ffmpeg", {
      args: [
        ...["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i"],
        ...["sine=frequency=700:sample_rate=48000:duration=1", "-ac", "2", "-c:a", "libopus"],
        ...["-page_duration", "20000", "-f", "ogg", "-"],
      ],
      stdout: "piped",
    }).spawn();
    const { got, end, source } = await drain({ stream: child.stdout });
    await child.status;
    assert.equal(end, undefined);
    assert.equal(source.channels, 2);
    assert.equal(got.length, 51);
    for (let i = 1; i < got.length; i++) {
      assert.equal(got[i].p.timestamp48k - got[i - 1].p.timestamp48k, 960);
    }
  });

  await t.step("an input that falls behind: the timeline re-anchors, once", async () => {
    const bytes = await oggSine(0.6, ["-page_duration", "20000"]);
    const half = Math.floor(bytes.length / 2);
    const logs: LogRecord[] = [];
    const stream = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(bytes.subarray(0, half));
        await new Promise((r) => setTimeout(r, 900)); // the producer stalls
        c.enqueue(bytes.subarray(half));
        c.close();
      },
    });
    const { got, end, source } = await drain({
      stream,
      name: "slow",
      logger: createLogger({ level: "warn", sink: (r) => logs.push(r) }),
    });
    assert.equal(end, undefined);
    assert.equal(source.reanchored, 1);
    assert.match(
      logs[0].message,
      /^slow: a packet \d+ ms late: its timestamps jump \(1 time\(s\)\)/,
    );
    const jumps = got.filter((g, i) =>
      i > 0 && g.p.timestamp48k - got[i - 1].p.timestamp48k !== 960
    );
    assert.equal(jumps.length, 1, "one jump, contiguous elsewhere");
  });

  await t.step("bad data: what came before is delivered, then the error ends it", async () => {
    const bytes = await oggSine(0.3, ["-page_duration", "20000"]);
    const garbage = concatBytes([bytes.subarray(0, 2000), new Uint8Array(500).fill(7)]);
    const bad = await drain({ stream: ReadableStream.from([garbage]), name: "cam" });
    assert.ok(bad.end instanceof OggError);
    assert.match(bad.end.message, /^cam: page \d+ of stream \d+ at byte \d+ fails its CRC/);
    assert.ok(bad.got.length > 5, `${bad.got.length} packets before it`);

    const cut = await drain({
      stream: ReadableStream.from([bytes.subarray(0, bytes.length - 10)]),
    });
    assert.ok(cut.end instanceof OggError);
    assert.match(cut.end.message, /truncated: the stream ends inside the page/);

    const surround = await oggSine(0.2, ["-mapping_family", "1"], 6);
    const six = await drain({ stream: ReadableStream.from([surround]), name: "6ch" });
    assert.ok(six.end instanceof MediaSourceError);
    assert.match(six.end.message, /^6ch: 6 channels in channel mapping family 1/);
    assert.equal(six.got.length, 0);

    const failing = new ReadableStream<Uint8Array>({
      pull(c) {
        c.error(new Error("socket reset"));
      },
    });
    const failed = await drain({ stream: failing, name: "net" });
    assert.ok(failed.end instanceof MediaSourceError);
    assert.match(failed.end.message, /^net: stream failed: socket reset/);
  });

  await t.step("stop() mid-stream cancels it at once", async () => {
    const writer = new OggOpusWriter({ channels: 1, pageDurationMs: 0 });
    const silence = new Uint8Array([0xf8, 0xff, 0xfe]);
    const parts = [writer.headers()];
    for (let i = 0; i < 500; i++) parts.push(writer.write(silence)); // 10 s
    parts.push(writer.end());
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(concatBytes(parts));
      },
      cancel() {
        cancelled = true;
      },
    });
    const source = new StreamAudioSource({ stream });
    let n = 0;
    source.start(() => n++);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    await source.stop();
    assert.ok(performance.now() - t0 < 100, "no wait for the next packet's time");
    assert.ok(cancelled);
    assert.ok(n >= 8 && n <= 14, `${n} packets in 0.2 s`);
  });
});

Deno.test({
  name: "CommandAudioSource: packets from ffmpeg; restarted with backoff when it exits",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const logs: LogRecord[] = [];
    const logger = createLogger({ level: "debug", sink: (r) => logs.push(r) });

    await t.step("a command that exits is started again, the delay doubling", async () => {
      const source = new CommandAudioSource({
        command: "echo 'no microphone' >&2; exit 4",
        restartMinMs: 50,
        restartMaxMs: 200,
        logger,
      });
      let n = 0;
      source.start(() => n++);
      await until(() => source.runs >= 4, "4 runs", 10_000);
      await source.stop();
      const warns = logs.filter((l) => l.level === "warn").map((l) => l.message);
      assert.ok(warns.includes("audio command exited with code 4; restarting in 0.05 s"), warns[0]);
      assert.ok(warns.includes("audio command exited with code 4; restarting in 0.1 s"));
      assert.ok(warns.includes("audio command exited with code 4; restarting in 0.2 s"));
      assert.ok(logs.some((l) => l.level === "debug" && l.message.includes("no microphone")));
      assert.equal(n, 0);
    });

    await t.step("a live encoder: packets in real time, resumed after a kill", async () => {
      const got: AudioPacket[] = [];
      const source = new CommandAudioSource({
        command:
          "exec ffmpeg -loglevel error -re -f lavfi -i sine=frequency=440:sample_rate=48000 " +
          "-c:a libopus -b:a 32k -page_duration 20000 -f ogg -",
        restartMinMs: 100,
        logger,
      });
      try {
        source.start((p) => got.push(p));
        await until(() => got.length >= 25, "25 packets", 10_000);
        assert.equal(source.channels, 1);
        Deno.kill(source.pid!, "SIGKILL");
        const before = got.length;
        await until(() => source.runs === 2 && got.length >= before + 25, "second run", 10_000);
        assert.ok(logs.some((l) => /audio command was killed by SIGKILL/.test(l.message)));
        for (let i = 1; i < got.length; i++) {
          assert.ok(got[i].timestampUs > got[i - 1].timestampUs, "increasing timestamps");
          assert.ok(got[i].timestamp48k >= got[i - 1].timestamp48k + got[i - 1].samples);
        }
      } finally {
        await source.stop();
      }
    });
  },
});

Deno.test("FileAudioSource from an http URL (a file shipped in a package)", async () => {
  const bytes = await Deno.readFile(SAMPLE);
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/samples/opus/tones.opus"
        ? new Response(bytes)
        : new Response("no", { status: 404 }),
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const audio = await FileAudioSource.open({ path: `${base}/samples/opus/tones.opus` });
    assert.equal(audio.packets.length, 500);
    await assert.rejects(
      FileAudioSource.open({ path: `${base}/none.opus` }),
      /none\.opus: fetching the audio answered 404/,
    );
  } finally {
    await server.shutdown();
  }
});
