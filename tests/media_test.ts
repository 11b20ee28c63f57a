import assert from "node:assert/strict";
import {
  AccessUnitSplitter,
  FileVideoSource,
  GopCache,
  H264Error,
  inspectAccessUnit,
  isKeyframe,
  KeyframeGate,
  MediaSourceError,
  Pacer,
  type PacerClock,
  sortNatural,
  splitNalUnits,
  StreamVideoSource,
} from "../src/media/mod.ts";
import type { EncodedFrame } from "../src/media/types.ts";

const SAMPLES = new URL("../samples/h264/", import.meta.url).pathname;
const SAMPLES_360 = new URL("../samples/h264-360p/", import.meta.url).pathname;

/** A simulated monotonic clock: timers fire when the test advances time. */
class FakeClock implements PacerClock {
  t = 12_345.678;
  #id = 0;
  timers = new Map<number, { at: number; cb: () => void }>();
  now = () => this.t;
  setTimer = (cb: () => void, delayMs: number) => {
    const id = ++this.#id;
    this.timers.set(id, { at: this.t + Math.max(0, delayMs), cb });
    return id;
  };
  clearTimer = (h: unknown) => {
    this.timers.delete(h as number);
  };
  /** Fire timers due up to `end`; each fires `lateness()` ms after its deadline. */
  runUntil(end: number, lateness: () => number = () => 0) {
    for (;;) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, t] of this.timers) if (t.at < nextAt) [nextId, nextAt] = [id, t.at];
      if (nextId < 0 || nextAt > end) break;
      const timer = this.timers.get(nextId)!;
      this.timers.delete(nextId);
      this.t = Math.max(this.t, timer.at + lateness());
      timer.cb();
    }
    this.t = Math.max(this.t, end);
  }
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "kvs-media-test-" });
}

async function sampleFrame(n: number, dir = SAMPLES): Promise<Uint8Array> {
  return await Deno.readFile(`${dir}frame-${String(n).padStart(4, "0")}.h264`);
}

/** Deterministic pseudo-random numbers (so a failure can be replayed). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

Deno.test("h264 scanning", async (t) => {
  await t.step(
    "sample frames: IDR every 25 frames, with SPS/PPS, constrained baseline",
    async () => {
      for (const dir of [SAMPLES, SAMPLES_360]) {
        const names = sortNatural([...Deno.readDirSync(dir)].map((e) => e.name));
        assert.equal(names.length, 250);
        for (const [i, name] of names.entries()) {
          const info = inspectAccessUnit(await Deno.readFile(dir + name), name);
          assert.equal(info.keyframe, i % 25 === 0, `${name} keyframe`);
          if (info.keyframe) {
            assert.ok(info.hasSps && info.hasPps, `${name} carries SPS/PPS`);
            assert.equal(info.profileLevelId, "42c01f");
          }
        }
      }
    },
  );

  await t.step("split NAL units and types", async () => {
    const idr = await sampleFrame(1);
    const types = splitNalUnits(idr).map((n) => n[0] & 0x1f);
    assert.deepEqual(types.slice(0, 3), [9, 7, 8]);
    assert.ok(types.includes(5));
    assert.equal(isKeyframe(idr), true);
    assert.equal(isKeyframe(await sampleFrame(2)), false);
  });

  await t.step("garbage, empty and truncated input give H264Error", () => {
    assert.throws(() => splitNalUnits(new Uint8Array(0), "x.h264"), /x\.h264: empty input/);
    assert.throws(
      () => splitNalUnits(new Uint8Array([0x47, 0x40, 0, 0x10]), "g.h264"),
      (e) => e instanceof H264Error && e.source === "g.h264" && /start code/.test(e.message),
    );
    assert.throws(
      () => splitNalUnits(new Uint8Array([0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 1])),
      /truncated/,
    );
    assert.throws(() => splitNalUnits(new Uint8Array([0, 0, 1, 0xe5, 0x88])), /forbidden/);
    assert.throws(
      () => inspectAccessUnit(new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f])),
      /no picture/,
    );
  });
});

Deno.test("FileVideoSource loading", async (t) => {
  await t.step("natural order: frame-2 before frame-10", async () => {
    assert.deepEqual(sortNatural(["frame-10.h264", "frame-2.h264", "frame-1.h264"]), [
      "frame-1.h264",
      "frame-2.h264",
      "frame-10.h264",
    ]);
    const dir = await tempDir();
    try {
      // frame-1 is the IDR, the others P frames: a lexical sort would put frame-10 second.
      for (let i = 1; i <= 12; i++) {
        await Deno.writeFile(`${dir}/frame-${i}.h264`, await sampleFrame(i));
      }
      await Deno.writeFile(`${dir}/notes.txt`, new TextEncoder().encode("ignored"));
      const src = await FileVideoSource.open({ dir });
      assert.deepEqual(
        src.frames.map((f) => f.name),
        Array.from({ length: 12 }, (_, i) => `frame-${i + 1}.h264`),
      );
      for (const [i, f] of src.frames.entries()) assert.deepEqual(f.data, await sampleFrame(i + 1));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step(
    "the first frame delivered is an IDR even if the folder starts mid-GOP",
    async () => {
      const dir = await tempDir();
      try {
        for (let i = 20; i <= 30; i++) {
          await Deno.writeFile(
            `${dir}/frame-${String(i).padStart(4, "0")}.h264`,
            await sampleFrame(i),
          );
        }
        const clock = new FakeClock();
        const src = await FileVideoSource.open({ dir, clock });
        const got: EncodedFrame[] = [];
        src.start((f) => got.push(f));
        clock.runUntil(clock.t + 1000);
        src.stop();
        assert.equal(got[0].keyframe, true);
        assert.deepEqual(got[0].data, await sampleFrame(26));
        assert.equal(src.frames[0].name, "frame-0026.h264");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step("a truncated or garbage frame file is named in the error", async () => {
    const dir = await tempDir();
    try {
      for (let i = 1; i <= 5; i++) {
        await Deno.writeFile(`${dir}/frame-${i}.h264`, await sampleFrame(i));
      }
      const path = `${dir}/frame-3.h264`;
      await Deno.writeFile(path, (await sampleFrame(3)).subarray(0, 4)); // start code only
      await assert.rejects(
        FileVideoSource.open({ dir }),
        (e) => e instanceof H264Error && e.source === path && /truncated/.test(e.message),
      );
      const bytes = new Uint8Array(3000);
      crypto.getRandomValues(bytes);
      bytes[0] = 0x47; // never a start code
      await Deno.writeFile(path, bytes);
      await assert.rejects(
        FileVideoSource.open({ dir }),
        (e) => e instanceof H264Error && e.message.includes(path),
      );
      await Deno.writeFile(path, new Uint8Array(0));
      await assert.rejects(FileVideoSource.open({ dir }), /frame-3\.h264: empty input/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("missing folder, empty folder, no IDR: MediaSourceError", async () => {
    await assert.rejects(
      FileVideoSource.open({ dir: "/nonexistent/frames" }),
      (e) => e instanceof MediaSourceError && /frames folder not found/.test(e.message),
    );
    const dir = await tempDir();
    try {
      await assert.rejects(FileVideoSource.open({ dir }), /no frame files/);
      for (let i = 2; i <= 4; i++) await Deno.writeFile(`${dir}/f${i}.h264`, await sampleFrame(i));
      await assert.rejects(FileVideoSource.open({ dir }), /none of the 3 frames is an IDR/);
      await assert.rejects(FileVideoSource.open({ dir, fps: 0 }), /fps/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("pacing", async (t) => {
  await t.step("one simulated hour at 25 fps: no drift, exact timestamps", () => {
    const clock = new FakeClock();
    const start = clock.t;
    const rand = prng(42);
    const ticks: number[] = [];
    let maxLate = 0;
    const pacer = new Pacer({
      fps: 25,
      clock,
      onTick: (tick) => {
        ticks.push(tick.timestampUs);
        maxLate = Math.max(maxLate, tick.lateMs);
      },
    });
    pacer.start();
    // Timers fire 0-30 ms late, like a busy event loop.
    clock.runUntil(start + 3_600_000, () => rand() * 30);
    pacer.stop();
    assert.equal(ticks.length, 90_001); // ticks 0..90000 inclusive
    for (let n = 0; n < ticks.length; n += 997) {
      assert.equal(ticks[n], Math.round((start + n * 40) * 1000));
    }
    assert.equal(ticks.at(-1), Math.round((start + 3_600_000) * 1000));
    assert.ok(maxLate < 31, `late by ${maxLate} ms at most`);
    assert.equal(pacer.stalls, 0);
  });

  await t.step("a stalled process re-anchors instead of bursting", () => {
    const clock = new FakeClock();
    const start = clock.t;
    const ticks: number[] = [];
    const stalls: number[] = [];
    const pacer = new Pacer({
      fps: 25,
      clock,
      onTick: (tick) => ticks.push(tick.timestampUs),
      onStall: (lag) => stalls.push(lag),
    });
    pacer.start();
    clock.runUntil(start + 1000);
    assert.equal(ticks.length, 26);
    // The event loop is blocked for 5 s: no timer fires.
    clock.t += 5000;
    const before = ticks.length;
    clock.runUntil(clock.t); // the overdue timer fires now
    assert.equal(ticks.length - before, 1, "one frame, not 125");
    assert.equal(stalls.length, 1);
    assert.ok(stalls[0] > 4900);
    clock.runUntil(clock.t + 1000);
    assert.equal(ticks.length - before, 26);
    for (let i = 1; i < ticks.length; i++) assert.ok(ticks[i] > ticks[i - 1]);
    // After the stall, ticks are 40 ms apart again.
    assert.equal(ticks.at(-1)! - ticks.at(-2)!, 40_000);
    pacer.stop();
  });

  await t.step("real time: 25 fps from the sample folder for about 1.2 s", async () => {
    const src = await FileVideoSource.open({ dir: SAMPLES, fps: 25 });
    const got: { f: EncodedFrame; at: number }[] = [];
    const t0 = performance.now();
    src.start((f) => got.push({ f, at: performance.now() }));
    await new Promise((r) => setTimeout(r, 1200));
    src.stop();
    const n = got.length;
    assert.ok(n >= 26 && n <= 33, `${n} frames in 1.2 s`);
    assert.equal(got[0].f.keyframe, true);
    for (let i = 1; i < n; i++) {
      assert.equal(got[i].f.timestampUs - got[i - 1].f.timestampUs, 40_000);
      // Each frame fires near its deadline (generous bound for a loaded machine).
      const due = t0 + i * 40;
      assert.ok(
        got[i].at >= due - 1 && got[i].at < due + 150,
        `frame ${i} at ${got[i].at - due} ms`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.length, n, "nothing after stop()");
  });
});

Deno.test("seamless loop: timestamps continue across the wrap", async () => {
  const frames = [];
  for (let i = 1; i <= 3; i++) {
    const data = await sampleFrame(i);
    frames.push({ name: `f${i}`, data, keyframe: isKeyframe(data) });
  }
  const clock = new FakeClock();
  const src = FileVideoSource.fromFrames(frames, { dir: "memory", fps: 30, clock });
  const got: EncodedFrame[] = [];
  src.start((f) => got.push(f));
  assert.throws(() => src.start(() => {}), MediaSourceError);
  clock.runUntil(clock.t + 1000);
  src.stop();
  assert.equal(got.length, 31);
  for (let i = 0; i < got.length; i++) {
    assert.equal(got[i].data, frames[i % 3].data);
    assert.equal(got[i].keyframe, i % 3 === 0);
    if (i > 0) {
      const step = got[i].timestampUs - got[i - 1].timestampUs;
      assert.ok(Math.abs(step - 33_333.3) <= 1, `step ${step} at ${i}`);
    }
  }
  // Non-looping: stops after the last frame.
  const clock2 = new FakeClock();
  let ended = 0;
  const once = FileVideoSource.fromFrames(frames, {
    dir: "memory",
    loop: false,
    clock: clock2,
    onEnd: () => ended++,
  });
  const got2: EncodedFrame[] = [];
  once.start((f) => got2.push(f));
  clock2.runUntil(clock2.t + 1000);
  assert.equal(got2.length, 3);
  assert.equal(ended, 1);
  assert.equal(clock2.timers.size, 0);
});

Deno.test("AccessUnitSplitter", async (t) => {
  await t.step("re-splits the concatenated samples fed in random chunks", async () => {
    const originals: Uint8Array[] = [];
    for (let i = 1; i <= 60; i++) originals.push(await sampleFrame(i, SAMPLES_360));
    const all = new Uint8Array(originals.reduce((s, f) => s + f.length, 0));
    let o = 0;
    for (const f of originals) [all.set(f, o), o += f.length];
    const rand = prng(7);
    const splitter = new AccessUnitSplitter();
    const out: Uint8Array[] = [];
    for (let i = 0; i < all.length;) {
      const n = 1 + Math.floor(rand() * (rand() < 0.3 ? 8 : 5000));
      out.push(...splitter.push(all.subarray(i, i + n)));
      i += n;
    }
    out.push(...splitter.flush());
    assert.equal(out.length, originals.length);
    for (let i = 0; i < out.length; i++) assert.deepEqual(out[i], originals[i], `unit ${i}`);
  });

  await t.step("garbage stream: clear error", () => {
    const s = new AccessUnitSplitter({ source: "cam" });
    const junk = new Uint8Array(2000).fill(0x47);
    assert.throws(() => s.push(junk), (e) => e instanceof H264Error && /^cam: /.test(e.message));
  });
});

/** Spawn ffmpeg writing `frames` frames of baseline H.264 to stdout. */
function ffmpeg(frames: number, aud: boolean, realtime = false) {
  return new Deno.Command("ffmpeg", {
    args: [
      "-hide_banner",
      "-loglevel",
      "error",
      ...(realtime ? ["-re"] : []),
      "-f",
      "lavfi",
      "-i",
      `testsrc2=size=320x240:rate=25`,
      "-frames:v",
      String(frames),
      "-c:v",
      "libx264",
      "-profile:v",
      "baseline",
      "-pix_fmt",
      "yuv420p",
      "-preset",
      "ultrafast",
      "-x264-params",
      `keyint=25:min-keyint=25:scenecut=0:repeat-headers=1:aud=${aud ? 1 : 0}:slices=2`,
      "-f",
      "h264",
      "-",
    ],
    stdout: "piped",
    stderr: realtime ? "null" : "inherit", // a killed live encoder complains of a broken pipe
  }).spawn();
}

Deno.test("StreamVideoSource over a real ffmpeg pipe", async (t) => {
  for (const aud of [true, false]) {
    await t.step(`60 frames, ${aud ? "with" : "without"} AUDs, 2 slices per picture`, async () => {
      const child = ffmpeg(60, aud);
      const timer = setTimeout(() => child.kill(), 20_000);
      const got: EncodedFrame[] = [];
      let endError: Error | undefined = new Error("not ended");
      const src = new StreamVideoSource({
        stream: child.stdout,
        name: "ffmpeg",
        fps: 25,
        onEnd: (e) => endError = e,
      });
      src.start((f) => got.push(f));
      await src.done;
      clearTimeout(timer);
      assert.equal((await child.status).success, true);
      assert.equal(endError, undefined);
      assert.equal(got.length, 60);
      assert.deepEqual(
        got.flatMap((f, i) => f.keyframe ? [i] : []),
        [0, 25, 50],
      );
      for (const [i, f] of got.entries()) {
        const info = inspectAccessUnit(f.data);
        const slices = info.nalTypes.filter((n) => n === 1 || n === 5).length;
        assert.equal(slices, 2, `frame ${i}: two slices in one access unit`);
        if (i > 0) assert.equal(f.timestampUs - got[i - 1].timestampUs, 40_000);
      }
    });
  }

  await t.step("live (-re) stream: frames arrive in real time, stop() ends it", async () => {
    const child = ffmpeg(1000, true, true);
    const got: { f: EncodedFrame; at: number }[] = [];
    const src = new StreamVideoSource({ stream: child.stdout, name: "live" });
    src.start((f) => got.push({ f, at: performance.now() }));
    await new Promise((r) => setTimeout(r, 1500));
    await src.stop();
    child.kill();
    await child.status;
    assert.ok(got.length >= 20 && got.length <= 45, `${got.length} frames in 1.5 s`);
    assert.equal(got[0].f.keyframe, true);
    for (let i = 1; i < got.length; i++) assert.ok(got[i].f.timestampUs > got[i - 1].f.timestampUs);
    const span = got.at(-1)!.at - got[0].at;
    assert.ok(span > 500, `arrivals spread over ${span} ms`);
  });

  await t.step("garbage stream ends the source with MediaSourceError, no throw", async () => {
    const junk = new Uint8Array(4096).fill(0x5a);
    let err: Error | undefined;
    const src = new StreamVideoSource({
      stream: ReadableStream.from([junk]),
      name: "junk",
      onEnd: (e) => err = e,
    });
    const got: EncodedFrame[] = [];
    src.start((f) => got.push(f));
    await src.done;
    assert.ok(err instanceof MediaSourceError, String(err));
    assert.match(err.message, /^junk: stream failed: junk: no Annex-B start code/);
    assert.equal(got.length, 0);
  });
});

Deno.test("KeyframeGate", async (t) => {
  const frames: EncodedFrame[] = [];
  for (let i = 1; i <= 60; i++) {
    const data = await sampleFrame(i);
    frames.push({ data, timestampUs: i * 40_000, keyframe: isKeyframe(data) });
  }
  await t.step("a viewer joining mid-GOP starts at the next IDR", () => {
    let asked = 0;
    const gate = new KeyframeGate({ onKeyframeNeeded: () => asked++ });
    assert.equal(asked, 1);
    const passed = frames.slice(10).filter((f) => gate.pass(f));
    assert.equal(passed[0], frames[25]);
    assert.equal(passed.length, 35);
    assert.equal(gate.dropped, 15);
    assert.equal(gate.waiting, false);
  });
  await t.step("PLI re-arms the gate until the next IDR", () => {
    let asked = 0;
    const gate = new KeyframeGate({ onKeyframeNeeded: () => asked++ });
    const seen: number[] = [];
    for (const [i, f] of frames.entries()) {
      if (i === 30 || i === 31) gate.requestKeyframe(); // two PLIs in a row
      if (gate.pass(f)) seen.push(i);
    }
    assert.deepEqual(seen, [...range(0, 30), ...range(50, 60)]);
    assert.equal(asked, 1, "the join asks the source; a PLI with an IDR due soon does not");
    assert.equal(gate.requests, 2);
  });
  await t.step("a PLI asks the source only when no IDR comes within the patience", () => {
    let asked = 0;
    let now = 0;
    const gate = new KeyframeGate({ onKeyframeNeeded: () => asked++, now: () => now });
    const seen: number[] = [];
    for (const [i, f] of frames.entries()) {
      now = i * 40;
      if (i === 26 || i === 27) gate.requestKeyframe(); // two PLIs right after an IDR
      if (gate.pass(f)) seen.push(i);
    }
    // Frames 26..49 are dropped; the natural IDR at frame 50 comes before the 1 s patience
    // (frame 51) runs out, so the source is not asked for the PLI.
    assert.deepEqual(seen, [...range(0, 26), ...range(50, 60)]);
    assert.equal(asked, 1);
    asked = 0;
    const slow = new KeyframeGate({
      onKeyframeNeeded: () => asked++,
      now: () => now,
      patienceMs: 200,
    });
    for (const [i, f] of frames.entries()) {
      now = i * 40;
      if (i === 26) slow.requestKeyframe();
      slow.pass(f);
    }
    assert.equal(asked, 2, "the join, then once 200 ms after the PLI (not once per frame)");
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

Deno.test("FileVideoSource rests while nobody watches", async () => {
  const clock = new FakeClock();
  const src = await FileVideoSource.open({ dir: SAMPLES, clock });
  const got: EncodedFrame[] = [];
  src.start((f) => got.push(f));
  clock.runUntil(clock.t + 200); // 25 fps: frames 0..5
  const before = got.length;
  assert.ok(before >= 5);
  src.idle(true);
  assert.equal(clock.timers.size, 0, "no timer while idle");
  clock.runUntil(clock.t + 10_000);
  assert.equal(got.length, before, "no frame while idle");
  src.idle(false);
  clock.runUntil(clock.t + 200);
  assert.ok(got.length >= before + 5, "frames again");
  for (let i = 1; i < got.length; i++) {
    assert.ok(got[i].timestampUs > got[i - 1].timestampUs, "timestamps keep increasing");
  }
  src.stop();
  src.idle(false);
  assert.equal(clock.timers.size, 0, "a stopped source stays stopped");
});

Deno.test("FileVideoSource keyframe requests", async (t) => {
  const period = 40; // 25 fps
  await t.step(
    "a request jumps to the next IDR at the next tick, timestamps stay paced",
    async () => {
      const clock = new FakeClock();
      const src = await FileVideoSource.open({ dir: SAMPLES, clock });
      const keyIndexes = src.frames.flatMap((f, i) => (f.keyframe ? [i] : []));
      assert.ok(keyIndexes.length >= 2, "the samples have several IDRs");
      const got: EncodedFrame[] = [];
      src.start((f) => got.push(f));
      clock.runUntil(clock.t + 3 * period); // frames 0..3 delivered
      const before = got.length;
      src.requestKeyframe();
      src.requestKeyframe(); // merged with the first
      clock.runUntil(clock.t + period);
      src.stop();
      const jumped = got[before];
      assert.equal(jumped.keyframe, true);
      assert.equal(jumped.data, src.frames[keyIndexes[1]].data);
      assert.equal(src.skipped, keyIndexes[1] - before);
      assert.equal(jumped.timestampUs - got[before - 1].timestampUs, period * 1000);
    },
  );

  await t.step("at an IDR already, nothing is skipped; skipToKeyframe=false ignores", async () => {
    const clock = new FakeClock();
    const src = await FileVideoSource.open({ dir: SAMPLES, clock });
    const got: EncodedFrame[] = [];
    src.requestKeyframe(); // before start: the first frame is an IDR anyway
    src.start((f) => got.push(f));
    clock.runUntil(clock.t + 2 * period);
    src.stop();
    assert.equal(src.skipped, 0);
    assert.equal(got[0].data, src.frames[0].data);

    const clock2 = new FakeClock();
    const fixed = await FileVideoSource.open({
      dir: SAMPLES,
      clock: clock2,
      skipToKeyframe: false,
    });
    const got2: EncodedFrame[] = [];
    fixed.start((f) => got2.push(f));
    clock2.runUntil(clock2.t + period);
    fixed.requestKeyframe();
    clock2.runUntil(clock2.t + period);
    fixed.stop();
    assert.equal(fixed.skipped, 0);
    assert.deepEqual(got2.map((f) => f.data), [0, 1, 2].map((i) => fixed.frames[i].data));
  });
});

Deno.test("FileVideoSource from an https/http base URL (frames shipped in a package)", async () => {
  const served: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const name = new URL(req.url).pathname.slice("/frames/".length);
    served.push(name);
    const n = Number(name.match(/^frame-(\d{4})\.h264$/)?.[1]);
    if (!(n >= 1 && n <= 30)) return new Response("not found", { status: 404 });
    return new Response(await Deno.readFile(`${SAMPLES}${name}`));
  });
  try {
    const src = await FileVideoSource.open({ dir: `http://127.0.0.1:${server.addr.port}/frames` });
    assert.equal(src.frames.length, 30);
    assert.equal(served.at(-1), "frame-0031.h264", "stops at the first missing frame");
    for (const [i, f] of src.frames.entries()) assert.deepEqual(f.data, await sampleFrame(i + 1));
    await assert.rejects(
      FileVideoSource.open({ dir: `http://127.0.0.1:${server.addr.port}/nothing/` }),
      /no frame-0001\.h264 at this URL/,
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("GopCache: the frames from the latest IDR, packed just before the live edge", () => {
  const f = (keyframe: boolean, t: number, n = 10) => ({
    data: new Uint8Array(n),
    timestampUs: t,
    keyframe,
  });
  const cache = new GopCache({ maxFrames: 4, maxBytes: 100 });
  cache.push(f(false, 0)); // nothing before the first IDR
  assert.equal(cache.size, 0);
  assert.deepEqual(cache.catchUp(), []);
  cache.push(f(true, 40_000));
  cache.push(f(false, 80_000));
  cache.push(f(false, 120_000));
  const up = cache.catchUp(1000);
  assert.deepEqual(up.map((x) => [x.keyframe, x.timestampUs]), [
    [true, 118_000],
    [false, 119_000],
    [false, 120_000],
  ]);
  // A viewer that lost a picture after 120 000: the GOP again, inside the next frame interval.
  assert.equal(cache.keyframeTimestampUs, 40_000);
  assert.deepEqual(cache.replay(120_000).map((x) => [x.keyframe, x.timestampUs]), [
    [true, 130_000],
    [false, 140_000],
    [false, 150_000],
  ]);
  const ticks = cache.replay(0).map((x) => Math.round(x.timestampUs * 0.09));
  assert.ok(ticks.every((t, i) => i === 0 || t > ticks[i - 1]), "distinct RTP timestamps");
  cache.push(f(true, 160_000)); // a new IDR starts over
  assert.equal(cache.size, 1);
  for (let i = 1; i <= 4; i++) cache.push(f(false, 160_000 + i * 40_000));
  assert.equal(cache.size, 0, "a GOP over maxFrames empties the cache until the next IDR");
  cache.push(f(false, 400_000));
  assert.equal(cache.size, 0);
  cache.push(f(true, 440_000, 60));
  cache.push(f(false, 480_000, 50));
  assert.equal(cache.size, 0, "over maxBytes too");
});
