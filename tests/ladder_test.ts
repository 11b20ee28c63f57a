// A ladder of frame folders looped in lock-step (the 720p and 360p samples), what it tells about
// each rung (size from the SPS, bitrate from the files), the checks that make the rungs
// interchangeable at every IDR, and the throttle on the target bitrate a live source is told.
import assert from "node:assert/strict";
import {
  type EncodedFrame,
  FileAudioSource,
  FileVideoSource,
  H264Error,
  measureBitrate,
  MediaSourceError,
  spsDimensions,
  TargetBitrate,
} from "../src/media/mod.ts";
import { SimClock } from "./support/sim_clock.ts";

const HIGH = new URL("../samples/h264/", import.meta.url).pathname;
const LOW = new URL("../samples/h264-360p/", import.meta.url).pathname;
const TONES = new URL("../samples/opus/tones.opus", import.meta.url).pathname;

async function frameFile(dir: string, n: number): Promise<Uint8Array> {
  return await Deno.readFile(`${dir}frame-${String(n).padStart(4, "0")}.h264`);
}

/** A folder holding the given frame numbers of `from`, renumbered 1, 2, 3 … */
async function folderOf(from: string, numbers: number[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kvs-ladder-test-" });
  for (const [i, n] of numbers.entries()) {
    await Deno.writeFile(
      `${dir}/frame-${String(i + 1).padStart(4, "0")}.h264`,
      await frameFile(from, n),
    );
  }
  return dir;
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function bytesOf(dir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) total += (await Deno.stat(`${dir}${e.name}`)).size;
  }
  return total;
}

Deno.test("ladder: the samples' two rungs, described from their files", async () => {
  const ladder = await FileVideoSource.openLadder({ rungs: [HIGH, LOW], fps: 25 });
  assert.deepEqual(ladder.dirs, [HIGH, LOW]);
  assert.equal(ladder.frames.length, 250);
  const [top, low] = ladder.renditions;
  assert.deepEqual([top.width, top.height, top.label], [1280, 720, "720p"]);
  assert.deepEqual([low.width, low.height, low.label], [640, 360, "360p"]);
  // Measured: every byte of the loop over its 10 s.
  assert.equal(top.bitrateBps, Math.round((await bytesOf(HIGH)) * 8 / 10));
  assert.equal(low.bitrateBps, Math.round((await bytesOf(LOW)) * 8 / 10));
  assert.ok(top.bitrateBps > 2_000_000 && top.bitrateBps < 3_000_000, `${top.bitrateBps}`);
  assert.ok(low.bitrateBps > 600_000 && low.bitrateBps < 1_000_000, `${low.bitrateBps}`);
  assert.equal(
    measureBitrate([{ data: new Uint8Array(500) }, { data: new Uint8Array(1500) }], 25),
    200_000,
  );

  const given = await FileVideoSource.openLadder({
    rungs: [{ dir: HIGH, label: "hd", bitrateBps: 2_400_000 }, { dir: LOW, bitrateBps: 800_000 }],
  });
  assert.deepEqual(given.renditions.map((r) => [r.label, r.bitrateBps]), [
    ["hd", 2_400_000],
    ["360p", 800_000],
  ]);
  // A single folder describes its one rendition too.
  const single = await FileVideoSource.open({ dir: LOW });
  assert.deepEqual(single.renditions.map((r) => r.label), ["360p"]);
});

Deno.test("ladder: each tick, one frame of every rung with the same timestamp, tagged", async () => {
  const clock = new SimClock();
  const ladder = await FileVideoSource.openLadder({ rungs: [HIGH, LOW], clock });
  const got: EncodedFrame[] = [];
  ladder.start((f) => got.push(f));
  clock.advance(40 * 29); // ticks 0 … 29
  ladder.requestKeyframe(); // every rung jumps to the same IDR
  clock.advance(40);
  ladder.stop();
  assert.equal(got.length, 31 * 2);
  for (let tick = 0; tick < 31; tick++) {
    const [a, b] = [got[2 * tick], got[2 * tick + 1]];
    assert.deepEqual([a.rendition, b.rendition], [0, 1], "top rung first");
    assert.equal(a.timestampUs, b.timestampUs);
    assert.equal(a.keyframe, b.keyframe, `tick ${tick}: IDRs at the same instants`);
    if (tick > 0) assert.equal(a.timestampUs - got[2 * tick - 2].timestampUs, 40_000);
    const n = tick < 30 ? tick + 1 : 51; // the jump: from frame 30 to the IDR at frame 51
    assert.deepEqual(a.data, await frameFile(HIGH, n));
    assert.deepEqual(b.data, await frameFile(LOW, n));
  }
  assert.deepEqual(got.flatMap((f, i) => f.keyframe && f.rendition === 1 ? [i >> 1] : []), [
    0,
    25,
    30,
  ]);
  assert.equal(ladder.delivered, 31);

  // A single folder's frames stay untagged.
  const clock2 = new SimClock();
  const single = await FileVideoSource.open({ dir: HIGH, clock: clock2 });
  const one: EncodedFrame[] = [];
  single.start((f) => one.push(f));
  clock2.advance(100);
  single.stop();
  assert.ok(one.length >= 2 && one.every((f) => !("rendition" in f)));
});

Deno.test("ladder: the audio follows the top rung through a jump, the ladder is passed on", async () => {
  const clock = new SimClock();
  const ladder = await FileVideoSource.openLadder({ rungs: [HIGH, LOW], clock });
  const audio = await FileAudioSource.open({ path: TONES, clock });
  const video = audio.follow(ladder);
  assert.equal(video.renditions, ladder.renditions);
  const frames: EncodedFrame[] = [];
  const packets: number[] = [];
  video.start((f) => frames.push(f));
  audio.start((p) => packets.push(audio.packets.indexOf(p.data)));
  clock.advance(400); // 0.4 s into both loops
  assert.ok(Math.abs(packets.at(-1)! - 20) <= 1, `audio packet ${packets.at(-1)} at 0.4 s`);
  video.requestKeyframe?.(); // the video jumps to its IDR at 1 s (frame 26), the audio with it
  clock.advance(200);
  video.stop();
  audio.stop();
  assert.ok(frames.some((f) => f.rendition === 1));
  assert.ok(Math.abs(packets.at(-1)! - 60) <= 2, `audio packet ${packets.at(-1)} at 1.2 s`);
});

Deno.test("ladder: folders that are not aligned, missing or bad are named", async (t) => {
  const dirs: string[] = [];
  const folder = async (from: string, numbers: number[]) => {
    const dir = await folderOf(from, numbers);
    dirs.push(dir);
    return dir;
  };
  try {
    const high = await folder(HIGH, range(1, 30));
    await t.step("a different number of frames", async () => {
      const short = await folder(LOW, range(1, 28));
      await assert.rejects(
        FileVideoSource.openLadder({ rungs: [high, short] }),
        (e) =>
          e instanceof MediaSourceError && e.path === short &&
          e.message.includes("as many frames each: 28 here, 30 in " + high),
      );
    });
    await t.step("IDRs at other frames", async () => {
      // 360p frames 1–24 then 26–31: its second IDR comes at frame 25 instead of 26.
      const shifted = await folder(LOW, [...range(1, 24), ...range(26, 31)]);
      await assert.rejects(
        FileVideoSource.openLadder({ rungs: [high, shifted] }),
        (e) =>
          e instanceof MediaSourceError && e.path === shifted &&
          /IDRs at the same frames: frame 25 differs \(frame-0025\.h264 is an IDR; in .* frame-0025\.h264 is not an IDR\); IDRs here at frames 1, 25, in .* at 1, 26/
            .test(e.message),
      );
    });
    await t.step("a missing folder, a bad frame", async () => {
      await assert.rejects(
        FileVideoSource.openLadder({ rungs: [high, "/nonexistent/360p"] }),
        (e) => e instanceof MediaSourceError && e.path === "/nonexistent/360p",
      );
      const bad = await folder(LOW, range(1, 30));
      await Deno.writeFile(`${bad}/frame-0007.h264`, new Uint8Array([0, 0, 0, 1]));
      await assert.rejects(
        FileVideoSource.openLadder({ rungs: [high, bad] }),
        (e) => e instanceof H264Error && e.source === `${bad}/frame-0007.h264`,
      );
      await assert.rejects(FileVideoSource.openLadder({ rungs: [] }), /at least one folder/);
      await assert.rejects(
        FileVideoSource.openLadder({ rungs: [LOW, HIGH] }),
        (e) =>
          e instanceof MediaSourceError && e.path === HIGH &&
          /highest bitrate first: 720p here \(\d+ b\/s\) comes after 360p in /.test(e.message),
      );
      await assert.rejects(
        FileVideoSource.openLadder({ rungs: [{ dir: high, bitrateBps: -1 }] }),
        /bitrate must be a positive number/,
      );
    });
    await t.step("aligned folders starting mid-GOP turn together", async () => {
      const a = await folder(HIGH, range(20, 40));
      const b = await folder(LOW, range(20, 40));
      const ladder = await FileVideoSource.openLadder({ rungs: [a, b] });
      assert.equal(ladder.frames[0].name, "frame-0007.h264"); // frame 26 of the samples
      const clock = new SimClock();
      const src = await FileVideoSource.openLadder({ rungs: [a, b], clock });
      const got: EncodedFrame[] = [];
      src.start((f) => got.push(f));
      clock.advance(0);
      src.stop();
      assert.deepEqual(got.map((f) => [f.rendition, f.keyframe]), [[0, true], [1, true]]);
      assert.deepEqual(got[1].data, await frameFile(LOW, 26));
    });
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("spsDimensions: the samples, and a cropped 1080p High profile stream from ffmpeg", async () => {
  assert.deepEqual(spsDimensions(await frameFile(HIGH, 1)), { width: 1280, height: 720 });
  assert.deepEqual(spsDimensions(await frameFile(LOW, 1)), { width: 640, height: 360 });
  assert.equal(spsDimensions(await frameFile(LOW, 2)), undefined, "a P-frame has no SPS");
  assert.equal(spsDimensions(new Uint8Array([0, 0, 1, 0x67, 0x64])), undefined, "truncated");
  for (
    const [size, profile, pix] of [["1920x1080", "high", "yuv420p"], [
      "638x358",
      "high444",
      "yuv444p",
    ]]
  ) {
    const out = await new Deno.Command("ffmpeg", {
      args: [
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        `testsrc=size=${size}:rate=25`,
        "-frames:v",
        "1",
        "-pix_fmt",
        pix,
        "-c:v",
        "libx264",
        "-profile:v",
        profile,
        "-f",
        "h264",
        "-",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const [width, height] = size.split("x").map(Number);
    assert.deepEqual(spsDimensions(out.stdout), { width, height }, `${size} ${profile}`);
  }
});

Deno.test("TargetBitrate: at once past 10 %, smaller moves at most every 2 s", () => {
  let now = 1000;
  const target = new TargetBitrate({ now: () => now });
  assert.equal(target.offer(2_000_000), 2_000_000);
  assert.equal(target.offer(2_100_000), undefined, "5 %");
  assert.equal(target.offer(2_000_000), undefined, "unchanged");
  now += 1999;
  assert.equal(target.offer(2_150_000), undefined);
  now += 1;
  assert.equal(target.offer(2_150_000), 2_150_000, "2 s later");
  assert.equal(target.offer(1_900_000), 1_900_000, "−11.6 %: at once");
  assert.equal(target.offer(2_100_000), 2_100_000, "+10.5 %: at once");
  now += 5000;
  assert.equal(target.offer(2_100_000), undefined, "no change, nothing to say");
  assert.equal(target.offer(0), undefined);
  assert.equal(target.last, 2_100_000);
});
