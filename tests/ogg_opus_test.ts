// Ogg Opus both ways with real ffmpeg: ffmpeg (libopus) encodes → OggOpusReader; OggOpusWriter
// → ffmpeg decodes. The committed sample loop. Truncation, garbage and multiplexed streams.
import assert from "node:assert/strict";
import {
  encodeOpusHead,
  encodeOpusTags,
  type OggOpusPacket,
  OggOpusReader,
  OggOpusWriter,
  type OggOpusWriterOptions,
  opusConcealmentPackets,
  OpusError,
  parseOpusHead,
  parseOpusTags,
  readOggOpus,
} from "../src/media/mod.ts";
import {
  concatBytes,
  decodeOgg,
  dominantNote,
  ffmpeg,
  prng,
  rms,
  toneAmplitude,
} from "./support/audio.ts";

const SAMPLE = new URL("../samples/opus/tones.opus", import.meta.url).pathname;
const VIDEO_SAMPLES = new URL("../samples/h264/", import.meta.url).pathname;

/** `seconds` of a sine at `hz` encoded by libopus into Ogg; extra ffmpeg output options. */
function encodeSine(seconds: number, hz: number, extra: string[] = [], channels = 1) {
  return ffmpeg([
    ...["-f", "lavfi", "-i", `sine=frequency=${hz}:sample_rate=48000:duration=${seconds}`],
    ...["-ac", String(channels), "-c:a", "libopus", "-b:a", "48k", ...extra, "-f", "ogg", "-"],
  ]);
}

function readAll(bytes: Uint8Array, chunk = bytes.length, options = {}) {
  const reader = new OggOpusReader({ source: "test.opus", ...options });
  const packets: OggOpusPacket[] = [];
  for (let at = 0; at < bytes.length; at += chunk) {
    packets.push(...reader.push(bytes.subarray(at, at + chunk)));
  }
  packets.push(...reader.end());
  return { reader, packets };
}

/** ffprobe's view of the audio packets: [size, duration] each. */
async function probePackets(bytes: Uint8Array): Promise<[number, number][]> {
  const out = new Deno.Command("ffprobe", {
    args: [
      ...["-v", "error", "-f", "ogg", "-select_streams", "a", "-show_entries"],
      ...["packet=size,duration", "-of", "csv=p=0", "-"],
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const w = out.stdin.getWriter();
  w.write(bytes).then(() => w.close()).catch(() => {});
  const { stdout } = await out.output();
  const lines = new TextDecoder().decode(stdout).split("\n").filter((l) => l.trim());
  return lines.map((l) => {
    const [duration, size] = l.split(",").map(Number);
    return [size, duration];
  });
}

function assertContiguous(packets: OggOpusPacket[], from = 0) {
  let at = from;
  for (const p of packets) {
    assert.equal(p.granule, at, "each packet starts where the previous ended");
    at += p.samples;
  }
}

function writeAll(packets: Uint8Array[], options: OggOpusWriterOptions = {}) {
  const writer = new OggOpusWriter({ channels: 1, ...options });
  const bytes = concatBytes([
    writer.headers(),
    ...packets.map((p) => writer.write(p)),
    writer.end(),
  ]);
  return { writer, bytes };
}

Deno.test("ffmpeg (libopus) → OggOpusReader", async (t) => {
  await t.step(
    "mono, 20 ms, ffmpeg's default 1 s pages, read in chunks of every size",
    async () => {
      const bytes = await encodeSine(3.37, 1000);
      const probe = await probePackets(bytes);
      for (const chunk of [1, 7, 100, 4096, bytes.length]) {
        const { reader, packets } = readAll(bytes, chunk);
        assert.equal(reader.head?.channels, 1);
        assert.equal(reader.head?.preSkip, 312);
        assert.equal(reader.head?.mappingFamily, 0);
        assert.match(reader.tags?.vendor ?? "", /^Lavf/);
        assert.ok(reader.ended, "end-of-stream page read");
        assert.equal(packets.length, probe.length, "as many packets as ffprobe sees");
        assert.deepEqual(packets.map((p) => p.data.length), probe.map(([size]) => size));
        assert.ok(packets.every((p) => p.samples === 960));
        assertContiguous(packets);
        // End trimming: the last granule position is the input's length plus pre-skip.
        assert.equal(reader.endGranule! - reader.head!.preSkip, 3.37 * 48000);
      }
    },
  );

  await t.step("stereo, 60 / 10 / 2.5 ms frames, one packet a page", async () => {
    for (const ms of [60, 10, 2.5]) {
      const bytes = await encodeSine(1, 440, [
        ...["-frame_duration", String(ms), "-page_duration", "1"],
      ], 2);
      const { reader, packets } = readAll(bytes, 333);
      assert.equal(reader.head?.channels, 2);
      assert.ok(packets.every((p) => p.samples === ms * 48), `${ms} ms packets`);
      assertContiguous(packets);
      assert.equal(reader.endGranule! - reader.head!.preSkip, 48000);
      assert.equal(packets.length, (await probePackets(bytes)).length);
    }
  });

  await t.step("multiplexed with a Theora video stream: the audio is found", async () => {
    const bytes = await ffmpeg([
      ...["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=2"],
      ...["-f", "lavfi", "-i", "sine=frequency=600:sample_rate=48000:duration=2"],
      ...["-c:v", "libtheora", "-q:v", "3", "-c:a", "libopus", "-f", "ogg", "-"],
    ]);
    const { reader, packets } = readAll(bytes, 4096);
    assert.equal(reader.otherStreams.length, 1, "the video stream skipped");
    assert.equal(packets.length, (await probePackets(bytes)).length);
    assertContiguous(packets);
  });

  await t.step("a chained file (two links) continues one timeline", async () => {
    const a = await encodeSine(1, 500);
    const b = await encodeSine(0.5, 700, [], 2);
    const { reader, packets } = readAll(concatBytes([a, b]), 1000);
    assert.equal(reader.links, 2);
    assert.equal(reader.head?.channels, 2, "the second link's head");
    assertContiguous(packets);

    // Links that reuse a serial number (some tools do) are links all the same.
    const silence = new Uint8Array([0xf8, 0xff, 0xfe]);
    const link = () => writeAll(new Array(10).fill(silence), { serial: 7 }).bytes;
    const same = readAll(concatBytes([link(), link()]));
    assert.equal(same.reader.links, 2);
    assert.equal(same.packets.length, 20);
    assertContiguous(same.packets);
  });

  await t.step("read as ffmpeg writes it, from its stdout", async () => {
    const child = new Deno.Command("ffmpeg", {
      args: [
        ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"],
        ...["sine=frequency=800:sample_rate=48000:duration=2", "-c:a", "libopus"],
        ...["-page_duration", "20000", "-f", "ogg", "-"],
      ],
      stdout: "piped",
    }).spawn();
    const packets: OggOpusPacket[] = [];
    let channels = 0;
    for await (
      const p of readOggOpus(child.stdout, { onHead: (head) => channels = head.channels })
    ) packets.push(p);
    assert.ok((await child.status).success);
    assert.equal(channels, 1);
    assert.equal(packets.length, 101, "2 s and the pre-skip in 20 ms packets");
    assertContiguous(packets);
  });
});

Deno.test("OggOpusWriter → ffmpeg decodes it", async (t) => {
  const source = readAll(await encodeSine(2, 1000)).packets.map((p) => p.data);
  assert.equal(source.length, 101);

  for (const pageDurationMs of [0, 100, 1000]) {
    await t.step(`pages of ${pageDurationMs || "one packet"} ms`, async () => {
      const { writer, bytes } = writeAll(source, { pageDurationMs, preSkip: 312 });
      assert.equal(writer.granule, 101 * 960);
      const expectedPages = 2 +
        (pageDurationMs === 0 ? 101 : Math.ceil(101 / (pageDurationMs / 20)));
      assert.equal(writer.pages, expectedPages);
      const pcm = await decodeOgg(bytes);
      assert.equal(pcm.length, 101 * 960 - 312, "granule position minus pre-skip");
      assert.ok(rms(pcm) > 0.05, "not silent");
      assert.ok(toneAmplitude(pcm, 1000, 24000, 48000) > 0.1, "the 1 kHz sine is there");
      const probe = await probePackets(bytes);
      assert.deepEqual(probe.map(([size]) => size), source.map((p) => p.length));
      // And our reader reads back what was written.
      const { reader, packets } = readAll(bytes, 777);
      assert.deepEqual(packets.map((p) => p.data), source);
      assertContiguous(packets);
      assert.equal(reader.endGranule, 101 * 960);
      assert.equal(reader.head?.preSkip, 312);
    });
  }

  await t.step("gaps filled with concealment packets keep the timeline whole", async () => {
    const writer = new OggOpusWriter({ channels: 1 });
    const parts = [writer.headers()];
    for (const p of source.slice(0, 50)) parts.push(writer.write(p));
    parts.push(writer.gap(48000 + 360)); // 1 s and 7.5 ms lost
    for (const p of source.slice(50)) parts.push(writer.write(p));
    parts.push(writer.end());
    const bytes = concatBytes(parts);
    const pcm = await decodeOgg(bytes);
    assert.equal(pcm.length, 101 * 960 + 48360);
    assert.ok(rms(pcm, 0, 48000) > 0.05);
    assert.ok(rms(pcm, 48000 + 48360 + 960, 48000) > 0.05, "audio after the gap");
    const { packets } = readAll(bytes);
    assertContiguous(packets);
    assert.equal(packets.length, 101 + opusConcealmentPackets(48360).length);
  });

  await t.step("a packet too big for one page is continued on the next", async () => {
    // A real 20 ms packet turned into a code 3 packet with 70 000 bytes of padding (RFC 6716
    // §3.2.5): decoders skip the padding, the container must carry it whole over two pages.
    const real = source[30];
    const frame = real.subarray(1);
    const padding = 70_000;
    const lengthBytes = [...new Array(Math.floor(padding / 254)).fill(255), padding % 254];
    const big = concatBytes([
      new Uint8Array([(real[0] & ~3) | 3, 0x40 | 1, ...lengthBytes]),
      frame,
      new Uint8Array(padding),
    ]);
    const packets = [...source.slice(0, 30), big, ...source.slice(31)];
    const { writer, bytes } = writeAll(packets, { pageDurationMs: 0 });
    assert.ok(writer.pages >= 2 + 101 + 1, "the big packet took two pages");
    const pcm = await decodeOgg(bytes);
    assert.equal(pcm.length, 101 * 960);
    assert.ok(toneAmplitude(pcm, 1000, 24000, 48000) > 0.1);
    const back = readAll(bytes, 5000, { maxPacketBytes: 100_000 }).packets;
    assert.deepEqual(back[30].data, big);
    assertContiguous(back);
    assert.throws(() => readAll(bytes), /a packet of more than 65536 bytes/);
  });

  await t.step("flush, then end: an empty end-of-stream page", async () => {
    const writer = new OggOpusWriter({ channels: 2, pageDurationMs: 1000 });
    const parts = [writer.headers(), ...source.map((p) => writer.write(p)), writer.flush()];
    const beforeEnd = writer.pages;
    parts.push(writer.end());
    assert.equal(writer.pages, beforeEnd + 1);
    assert.equal(writer.end().length, 0, "ended once");
    assert.throws(() => writer.write(source[0]), /has ended/);
    const bytes = concatBytes(parts);
    assert.equal((await decodeOgg(bytes)).length, 101 * 960);
    const { reader } = readAll(bytes);
    assert.ok(reader.ended);
    assert.equal(reader.endGranule, 101 * 960);
  });

  await t.step("invalid packets and options are refused", () => {
    const writer = new OggOpusWriter();
    assert.throws(() => writer.write(new Uint8Array(0)), OpusError);
    assert.throws(() => new OggOpusWriter({ channels: 3 }), RangeError);
    assert.throws(() => new OggOpusWriter({ preSkip: 70000 }), RangeError);
    assert.throws(() => writer.gap(100), RangeError);
  });
});

Deno.test("OpusHead and OpusTags: written, read, and refused when wrong", () => {
  const head = parseOpusHead(encodeOpusHead({ channels: 2, preSkip: 3840, outputGain: -256 }));
  assert.deepEqual(head, {
    version: 1,
    channels: 2,
    preSkip: 3840,
    inputSampleRate: 0,
    outputGain: -256,
    mappingFamily: 0,
  });
  const surround = encodeOpusHead({
    channels: 6,
    mappingFamily: 1,
    streams: 4,
    coupledStreams: 2,
    mapping: [0, 4, 1, 2, 3, 5],
  });
  assert.deepEqual(parseOpusHead(surround).mapping, [0, 4, 1, 2, 3, 5]);
  const bad = (bytes: Uint8Array, re: RegExp) => assert.throws(() => parseOpusHead(bytes, "f"), re);
  bad(new TextEncoder().encode("OpusTags"), /f: OpusHead: not an OpusHead packet/);
  bad(encodeOpusHead({ channels: 1 }).subarray(0, 18), /18 bytes, at least 19 expected/);
  const v = encodeOpusHead({ channels: 1 });
  v[8] = 0x10;
  bad(v, /version 16 is not supported/);
  const c = encodeOpusHead({ channels: 1 });
  c[9] = 0;
  bad(c, /zero channels/);
  c[9] = 3;
  bad(c, /3 channels with mapping family 0/);
  bad(surround.subarray(0, 24), /too short for a mapping table of 6 channels/);
  const m = surround.slice();
  m[21] = 9;
  bad(m, /channel mapped to 9, but only 6 decoded channels exist/);

  const tags = encodeOpusTags({ vendor: "vé", comments: ["A=1", "TITLE=ß"] });
  assert.deepEqual(parseOpusTags(tags), { vendor: "vé", comments: ["A=1", "TITLE=ß"] });
  assert.throws(
    () => parseOpusTags(tags.subarray(0, tags.length - 2)),
    /comment 2 says 8 bytes, only 6 are left/,
  );
  const lie = tags.slice();
  new DataView(lie.buffer).setUint32(8 + 4 + 3, 1_000_000, true);
  assert.throws(() => parseOpusTags(lie), /1000000 comments announced/);
  assert.throws(() => parseOpusTags(new TextEncoder().encode("OpusTags")), /ends before/);
});

Deno.test("OggOpusReader: truncation, garbage, other codecs, lost pages", async (t) => {
  const bytes = await encodeSine(2, 1000, ["-page_duration", "100000"]);
  const whole = readAll(bytes).packets;

  await t.step("cut anywhere: whole packets so far, then a clear error or a short stream", () => {
    const rand = prng(5);
    for (let i = 0; i < 200; i++) {
      const cut = Math.floor(rand() * bytes.length);
      const reader = new OggOpusReader({ source: "cut.opus" });
      const got = reader.push(bytes.subarray(0, cut));
      assert.deepEqual(got.map((p) => p.granule), whole.slice(0, got.length).map((p) => p.granule));
      try {
        reader.end();
        assert.ok(!reader.ended, "no error only when the cut fell between pages");
      } catch (e) {
        assert.match(
          (e as Error).message,
          /^cut\.opus: (truncated|empty stream|no Opus stream)/,
          `cut at ${cut}`,
        );
      }
    }
  });

  await t.step("garbage: an error naming the byte, or skipped with resync", () => {
    const at = 3000;
    const junk = new Uint8Array(777).fill(0x55);
    const bad = concatBytes([bytes.subarray(0, at), junk, bytes.subarray(at)]);
    assert.throws(
      () => readAll(bad),
      /test\.opus: page \d+ of stream \d+ at byte \d+ fails its CRC|no Ogg page at byte/,
    );
    const { reader, packets } = readAll(bad, 512, { resync: true });
    assert.ok(reader.skippedBytes > 777);
    assert.ok(packets.length < whole.length && packets.length > whole.length / 2);
    // The lost page shows as a jump in the timeline, not as packets played early.
    const jump = packets.findIndex((p, i) => i > 0 && p.granule !== packets[i - 1].granule + 960);
    assert.ok(jump > 0);
    assert.equal(packets.at(-1)!.granule, whole.at(-1)!.granule);

    // Garbage after the end, in the same chunk: every packet first, then the error.
    const reader2 = new OggOpusReader({ source: "tail.opus" });
    const all = reader2.push(concatBytes([bytes, junk]));
    assert.equal(all.length, whole.length);
    assert.throws(
      () => reader2.end(),
      /tail\.opus: no Ogg page at byte \d+ where one should begin/,
    );
  });

  await t.step("not Opus: Vorbis in Ogg, or a WAV file", async () => {
    const vorbis = await ffmpeg([
      ...["-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "libvorbis", "-f", "ogg", "-"],
    ]);
    assert.throws(() => readAll(vorbis), /test\.opus: no Opus stream \(no OpusHead\)/);
    const wav = await ffmpeg(["-f", "lavfi", "-i", "sine=duration=0.1", "-f", "wav", "-"]);
    assert.throws(() => readAll(wav), /not an Ogg stream: it does not begin with 'OggS'/);
    assert.throws(() => readAll(new Uint8Array(0)), /empty stream/);
  });

  await t.step("joined mid-stream: no OpusHead to read", () => {
    const second = bytes.indexOf(0x4f, 200); // a later page's capture pattern
    const fromMiddle = bytes.subarray(findCapture(bytes, second));
    assert.throws(
      () => readAll(fromMiddle),
      /does not begin with a beginning-of-stream page \(joined mid-way\?/,
    );
  });
});

function findCapture(bytes: Uint8Array, from: number): number {
  for (let i = from; i < bytes.length - 3; i++) {
    if (
      bytes[i] === 0x4f && bytes[i + 1] === 0x67 && bytes[i + 2] === 0x67 && bytes[i + 3] === 0x53
    ) {
      return i;
    }
  }
  return -1;
}

Deno.test("the sample loop: 500 packets of 20 ms, as long as the video loop, a note a second", async () => {
  const bytes = await Deno.readFile(SAMPLE);
  const t0 = performance.now();
  const { reader, packets } = readAll(bytes);
  const parseMs = performance.now() - t0;
  assert.ok(parseMs < 200, `parsed in ${parseMs.toFixed(1)} ms`);
  assert.equal(reader.head?.channels, 1);
  assert.equal(reader.head?.preSkip, 0);
  assert.equal(packets.length, 500);
  assert.ok(packets.every((p) => p.samples === 960));
  assertContiguous(packets);
  assert.equal(reader.endGranule, 480000);

  // The video loop: 250 frame files at 25 fps.
  let frames = 0;
  for await (const e of Deno.readDir(VIDEO_SAMPLES)) if (e.name.endsWith(".h264")) frames++;
  assert.equal(frames, 250);
  assert.equal(packets.length * 20, (frames / 25) * 1000, "the audio loop lasts the video loop");

  const pcm = await decodeOgg(bytes);
  assert.equal(pcm.length, 480000, "exactly 10 s");
  for (let s = 0; s < 10; s++) {
    const [note, amplitude] = dominantNote(pcm, s * 48000 + 2400, 24000);
    assert.equal(note, s, `second ${s}: note ${note}`);
    assert.ok(amplitude > 0.4, `second ${s} at ${amplitude}`);
    // Each note sounds from the second's start for 0.6 s, then silence until the next.
    assert.ok(rms(pcm, s * 48000 + 480, 2400) > 0.1, `second ${s} begins with its note`);
    assert.ok(rms(pcm, s * 48000 + 30_720, 16_800) < 0.01, `second ${s} ends silent`);
  }
});
