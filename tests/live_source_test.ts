// Live sources: SPS/PPS cached and put in front of IDRs that lack them, a raw `.h264` file, an
// encoder command restarted with backoff. Real ffmpeg output where it matters.
import assert from "node:assert/strict";
import {
  AccessUnitSplitter,
  CommandVideoSource,
  FileVideoSource,
  hasParameterSets,
  isKeyframe,
  ParameterSetCache,
  StreamVideoSource,
} from "../src/media/mod.ts";
import type { EncodedFrame } from "../src/media/types.ts";
import type { LogRecord } from "../src/log.ts";
import { createLogger } from "../src/log.ts";
import { dropParameterSets } from "./support/headers_once.ts";
import { until } from "./support/until.ts";

/** 5 s of 640×360 test pattern, baseline, an IDR every 2 s (3 IDRs), SPS/PPS on each IDR. */
async function encode(seconds = 5): Promise<Uint8Array> {
  const out = await new Deno.Command("ffmpeg", {
    args: [
      ...["-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25"],
      ...["-t", String(seconds), "-pix_fmt", "yuv420p", "-c:v", "libx264"],
      ...["-profile:v", "baseline", "-g", "50", "-bf", "0", "-f", "h264", "-"],
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(out.success, "ffmpeg ran");
  return out.stdout;
}

function units(bytes: Uint8Array): Uint8Array[] {
  const s = new AccessUnitSplitter();
  return [...s.push(bytes), ...s.flush()];
}

/** The stream as a camera that sends SPS/PPS once would. */
function headersOnce(aus: Uint8Array[]): Uint8Array[] {
  let seen = false;
  return aus.map((au) => {
    const [out, idr] = dropParameterSets(au, seen);
    seen ||= idr;
    return out;
  });
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("ParameterSetCache completes IDRs of a real encoder that sends SPS/PPS once", () => {
  return encode().then((bytes) => {
    const original = units(bytes);
    const idrs = original.flatMap((au, i) => isKeyframe(au) ? [i] : []);
    assert.equal(idrs.length, 3, "an IDR every 2 s");
    assert.ok(idrs.every((i) => hasParameterSets(original[i])), "ffmpeg repeats them");
    const stripped = headersOnce(original);
    assert.ok(hasParameterSets(stripped[idrs[0]]));
    assert.ok(!hasParameterSets(stripped[idrs[1]]) && !hasParameterSets(stripped[idrs[2]]));

    const cache = new ParameterSetCache();
    const fixed = stripped.map((au) => cache.complete(au));
    assert.equal(cache.completed, 2);
    for (const i of idrs) {
      assert.deepEqual(fixed[i], original[i], `IDR ${i} as the encoder made it`);
    }
    // Other access units pass through untouched (the same object).
    assert.equal(fixed[1], stripped[1]);
  });
});

Deno.test("ParameterSetCache: nothing cached yet, an AUD stays first, a new SPS replaces the old", () => {
  const cache = new ParameterSetCache();
  const idr = new Uint8Array([0, 0, 0, 1, 0x65, 0x88, 0x84]);
  assert.equal(cache.complete(idr), idr, "no SPS/PPS seen: unchanged");
  const head = (sps: number) =>
    new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0xc0, sps, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
  cache.complete(concat([head(0x1e), idr]));
  cache.complete(concat([head(0x1f), idr]));
  const aud = new Uint8Array([0, 0, 0, 1, 0x09, 0xf0]);
  assert.deepEqual(cache.complete(concat([aud, idr])), concat([aud, head(0x1f), idr]));
  const p = new Uint8Array([0, 0, 0, 1, 0x41, 0x9a]);
  assert.equal(cache.complete(p), p, "not an IDR: unchanged");
});

Deno.test("StreamVideoSource starts at an IDR it can decode and completes later ones", async () => {
  const aus = headersOnce(units(await encode()));
  // SPS/PPS only before the first IDR: the later IDRs get them from the cache.
  const frames: EncodedFrame[] = [];
  const stream = ReadableStream.from([concat(aus)]);
  const logs: LogRecord[] = [];
  const source = new StreamVideoSource({
    stream,
    logger: createLogger({ level: "debug", sink: (r) => logs.push(r) }),
  });
  source.start((f) => frames.push(f));
  await source.done;
  assert.equal(frames.length, aus.length);
  const keys = frames.filter((f) => f.keyframe);
  assert.equal(keys.length, 3);
  assert.ok(keys.every((f) => hasParameterSets(f.data)), "every IDR carries SPS and PPS");

  // Joined after the only SPS/PPS: nothing is delivered (no IDR could be decoded), with a warning.
  const late: EncodedFrame[] = [];
  const s2 = new StreamVideoSource({
    stream: ReadableStream.from([concat(aus.slice(60))]),
    logger: createLogger({ level: "warn", sink: (r) => logs.push(r) }),
  });
  s2.start((f) => late.push(f));
  await s2.done;
  assert.equal(late.length, 0);
  assert.ok(logs.some((l) => /IDR without SPS\/PPS skipped/.test(l.message)));
});

Deno.test("FileVideoSource.openFile loops a raw .h264 file whose later IDRs lack SPS/PPS", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const aus = headersOnce(units(await encode()));
    await Deno.writeFile(`${dir}/cam.h264`, concat(aus));
    const source = await FileVideoSource.openFile(`${dir}/cam.h264`, { fps: 25 });
    assert.equal(source.frames.length, aus.length);
    const keys = source.frames.filter((f) => f.keyframe);
    assert.equal(keys.length, 3);
    assert.ok(keys.every((f) => hasParameterSets(f.data)));
    await assert.rejects(FileVideoSource.openFile(`${dir}/none.h264`), /none\.h264.*cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "CommandVideoSource: frames from ffmpeg; restarted with backoff when it exits",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const logs: LogRecord[] = [];
    const logger = createLogger({ level: "debug", sink: (r) => logs.push(r) });

    await t.step("an encoder that exits is started again, the delay doubling", async () => {
      const frames: EncodedFrame[] = [];
      const source = new CommandVideoSource({
        command: "echo 'rtsp://admin:hunter2@cam.local/stream' >&2; exit 3",
        restartMinMs: 50,
        restartMaxMs: 200,
        logger,
      });
      source.start((f) => frames.push(f));
      await until(() => source.runs >= 4, "4 runs", 10_000);
      await source.stop();
      const warns = logs.filter((l) => l.level === "warn").map((l) => l.message);
      assert.ok(warns.includes("video command exited with code 3; restarting in 0.05 s"), warns[0]);
      assert.ok(warns.includes("video command exited with code 3; restarting in 0.1 s"));
      assert.ok(warns.includes("video command exited with code 3; restarting in 0.2 s"));
      const stderr = logs.filter((l) => l.level === "debug" && l.message.includes("rtsp://"));
      assert.ok(stderr.length >= 1, "stderr logged at debug");
      assert.ok(!JSON.stringify(logs).includes("hunter2"), "the password never logged");
      assert.equal(frames.length, 0);
    });

    await t.step(
      "a live ffmpeg encoder: IDR first, increasing timestamps, resumes after a kill",
      async () => {
        const frames: EncodedFrame[] = [];
        const source = new CommandVideoSource({
          command: "exec ffmpeg -loglevel error -re -f lavfi -i testsrc=size=320x180:rate=25 " +
            "-pix_fmt yuv420p -c:v libx264 -profile:v baseline -g 10 -bf 0 -f h264 -",
          restartMinMs: 100,
          logger,
        });
        try {
          source.start((f) => frames.push(f));
          await until(() => frames.length >= 10, "10 frames", 10_000);
          assert.ok(frames[0].keyframe && hasParameterSets(frames[0].data));
          Deno.kill(source.pid!, "SIGKILL");
          await until(
            () => source.runs === 2 && frames.length >= 25,
            "second run",
            10_000,
          );
          assert.ok(logs.some((l) => /video command was killed by SIGKILL/.test(l.message)));
          for (let i = 1; i < frames.length; i++) {
            assert.ok(frames[i].timestampUs > frames[i - 1].timestampUs, "increasing timestamps");
          }
        } finally {
          await source.stop();
        }
      },
    );
  },
});
