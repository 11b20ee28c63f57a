// Opus packet framing (RFC 6716 §3): TOC, frame counts, the rules R1–R7, concealment packets.
import assert from "node:assert/strict";
import {
  inspectOpusPacket,
  opusConcealmentPackets,
  OpusError,
  opusFrameSamples,
  opusPacketSamples,
} from "../src/media/mod.ts";
import { prng } from "./support/audio.ts";

const toc = (config: number, stereo: boolean, code: number) =>
  (config << 3) | (stereo ? 4 : 0) | code;

Deno.test("opusFrameSamples follows RFC 6716 table 2", () => {
  const ms = Array.from({ length: 32 }, (_, c) => opusFrameSamples(c) / 48);
  assert.deepEqual(ms.slice(0, 12), [10, 20, 40, 60, 10, 20, 40, 60, 10, 20, 40, 60]); // SILK
  assert.deepEqual(ms.slice(12, 16), [10, 20, 10, 20]); // hybrid
  assert.deepEqual(ms.slice(16), [2.5, 5, 10, 20, 2.5, 5, 10, 20, 2.5, 5, 10, 20, 2.5, 5, 10, 20]);
});

Deno.test("inspectOpusPacket: the four codes", async (t) => {
  await t.step("code 0: one frame", () => {
    const info = inspectOpusPacket(new Uint8Array([toc(31, false, 0), 1, 2, 3]));
    assert.deepEqual(info, {
      config: 31,
      mode: "celt",
      stereo: false,
      frames: 1,
      frameSamples: 960,
      samples: 960,
    });
    // A TOC byte alone is a valid (empty, DTX) frame.
    assert.equal(opusPacketSamples(new Uint8Array([toc(1, true, 0)])), 960);
    assert.equal(inspectOpusPacket(new Uint8Array([toc(1, true, 0)])).mode, "silk");
    assert.equal(inspectOpusPacket(new Uint8Array([toc(13, false, 0)])).mode, "hybrid");
  });
  await t.step("code 1: two equal frames", () => {
    assert.equal(opusPacketSamples(new Uint8Array([toc(30, false, 1), 1, 2, 3, 4])), 960);
    assert.throws(
      () => inspectOpusPacket(new Uint8Array([toc(30, false, 1), 1, 2, 3]), "s"),
      /s: code 1 packet with an odd payload/,
    );
  });
  await t.step("code 2: two frames, the first one's length coded", () => {
    assert.equal(opusPacketSamples(new Uint8Array([toc(31, false, 2), 2, 9, 9, 7])), 1920);
    // Two-byte length: 252 + 4 × 1 = 256 bytes, then 10 more.
    const p = new Uint8Array(3 + 256 + 10);
    p.set([toc(31, false, 2), 252, 1]);
    assert.equal(inspectOpusPacket(p).frames, 2);
    assert.throws(
      () => inspectOpusPacket(new Uint8Array([toc(31, false, 2), 5, 1])),
      /first frame \(5 bytes\) overruns it/,
    );
    assert.throws(() => inspectOpusPacket(new Uint8Array([toc(31, false, 2)])), /length/);
  });
  await t.step("code 3: a frame count, CBR or VBR, padding", () => {
    // 6 × 20 ms CBR, 3 bytes each.
    const cbr = new Uint8Array([toc(31, false, 3), 6, ...new Array(18).fill(1)]);
    assert.equal(opusPacketSamples(cbr), 5760);
    assert.throws(
      () => inspectOpusPacket(new Uint8Array([toc(31, false, 3), 7])),
      /7 frames of 20 ms: more than 120 ms/,
    );
    assert.throws(() => inspectOpusPacket(new Uint8Array([toc(31, false, 3), 0])), /zero frames/);
    assert.throws(
      () => inspectOpusPacket(new Uint8Array([toc(31, false, 3), 2, 1, 2, 3])),
      /3 bytes do not split into 2 equal frames/,
    );
    // VBR: lengths 1 and 2 of three frames, the last takes the rest (3 bytes).
    const vbr = new Uint8Array([toc(28, false, 3), 0x80 | 3, 1, 2, 9, 9, 9, 9, 9, 9]);
    assert.equal(opusPacketSamples(vbr), 360);
    assert.throws(
      () => inspectOpusPacket(new Uint8Array([toc(28, false, 3), 0x80 | 3, 1, 200, 9])),
      /frame 2 \(200 bytes\) overruns the packet/,
    );
    // Padding: 254 + 10 bytes after one 2-byte frame.
    const padded = new Uint8Array(2 + 2 + 2 + 264);
    padded.set([toc(31, true, 3), 0x40 | 1, 255, 10, 7, 7]);
    assert.equal(inspectOpusPacket(padded).stereo, true);
    assert.throws(
      () => inspectOpusPacket(new Uint8Array([toc(31, false, 3), 0x40 | 1, 50, 1])),
      /50 bytes of padding it does not hold/,
    );
    assert.throws(
      () => inspectOpusPacket(new Uint8Array([toc(31, false, 3), 0x40 | 1, 255])),
      /padding length runs past its end/,
    );
  });
  await t.step("empty packets and frames over 1275 bytes are refused", () => {
    assert.throws(() => inspectOpusPacket(new Uint8Array(0), "x.opus"), OpusError);
    assert.throws(
      () => inspectOpusPacket(new Uint8Array(1277).fill(toc(31, false, 0), 0, 1)),
      /a frame of 1276 bytes \(at most 1275\)/,
    );
  });
});

Deno.test("opusConcealmentPackets: valid packets adding up to the gap", () => {
  for (const samples of [120, 840, 960, 2880, 5760, 6720, 48000, 48120]) {
    const packets = opusConcealmentPackets(samples, samples % 240 === 0);
    let total = 0;
    for (const p of packets) {
      const info = inspectOpusPacket(p);
      assert.ok(info.samples <= 5760, "120 ms at most per packet");
      assert.equal(p.length, 2, "a TOC and a frame count: every frame empty");
      total += info.samples;
    }
    assert.equal(total, samples, `gap of ${samples}`);
  }
  assert.deepEqual(opusConcealmentPackets(0), []);
  assert.throws(() => opusConcealmentPackets(100), RangeError);
  assert.throws(() => opusConcealmentPackets(-120), RangeError);
});

Deno.test("inspectOpusPacket on random bytes throws only OpusError", () => {
  const rand = prng(7);
  for (let i = 0; i < 20_000; i++) {
    const p = new Uint8Array(Math.floor(rand() * 40));
    for (let j = 0; j < p.length; j++) p[j] = Math.floor(rand() * 256);
    try {
      const info = inspectOpusPacket(p);
      assert.ok(info.samples >= 120 && info.samples <= 5760);
    } catch (e) {
      assert.ok(e instanceof OpusError, String(e));
    }
  }
});
