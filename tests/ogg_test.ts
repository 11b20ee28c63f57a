// Ogg pages and packets (RFC 3533): CRC, page encoding and parsing in arbitrary chunks, lacing
// over segments and pages, garbage, corruption, truncation and lost pages.
import assert from "node:assert/strict";
import {
  encodeOggPage,
  oggCrc32,
  OggError,
  oggLacing,
  OggPacketAssembler,
  type OggPage,
  OggPageParser,
  type ParsedOggPage,
} from "../src/media/mod.ts";
import { concatBytes, prng } from "./support/audio.ts";

/**
 * Pages carrying packets of `sizes` bytes in one stream, laced as a muxer would: a page closes at
 * `fill` segments or after `perPage` complete packets; the last page is end-of-stream.
 */
function pagesFor(sizes: number[], serial = 5, fill = 255, perPage = 3): Uint8Array[] {
  const pages: OggPage[] = [];
  let lacing: number[] = [];
  let body: number[] = [];
  let continued = false;
  let granule = -1;
  let packets = 0;
  let n = 0;
  const close = () => {
    pages.push({
      continued,
      bos: pages.length === 0,
      eos: false,
      granule,
      serial,
      sequence: pages.length,
      lacing: new Uint8Array(lacing),
      body: new Uint8Array(body),
    });
    lacing = [];
    body = [];
    granule = -1;
    packets = 0;
  };
  for (const size of sizes) {
    const values = oggLacing(size);
    for (let i = 0; i < values.length; i++) {
      lacing.push(values[i]);
      for (let j = 0; j < values[i]; j++) body.push((n + j) & 0xff);
      const last = i === values.length - 1;
      if (last) {
        granule = ++n;
        packets++;
      }
      if (lacing.length === fill || packets === perPage) {
        close();
        continued = !last;
      }
    }
  }
  if (lacing.length > 0 || pages.length === 0) close();
  pages.at(-1)!.eos = true;
  return pages.map(encodeOggPage);
}

function parseAll(bytes: Uint8Array, chunk = bytes.length): ParsedOggPage[] {
  const parser = new OggPageParser({ source: "test.ogg" });
  const pages: ParsedOggPage[] = [];
  for (let at = 0; at < bytes.length; at += chunk) {
    pages.push(...parser.push(bytes.subarray(at, at + chunk)));
  }
  parser.end();
  return pages;
}

function packetsOf(pages: OggPage[], options = {}): Uint8Array[] {
  const a = new OggPacketAssembler({ maxPacketBytes: 1 << 20, ...options });
  return pages.flatMap((p) => a.push(p));
}

Deno.test("oggCrc32: the Ogg CRC (poly 0x04c11db7, init 0, no reflection, no final XOR)", () => {
  assert.equal(oggCrc32(new TextEncoder().encode("123456789")), 0x89a1897f);
  assert.equal(oggCrc32(new Uint8Array(0)), 0);
  // Running value over pieces equals one pass.
  const data = new Uint8Array(1000).map((_, i) => (i * 31) & 0xff);
  assert.equal(oggCrc32(data.subarray(500), oggCrc32(data.subarray(0, 500))), oggCrc32(data));
});

Deno.test("oggLacing", () => {
  assert.deepEqual(oggLacing(0), [0]);
  assert.deepEqual(oggLacing(254), [254]);
  assert.deepEqual(oggLacing(255), [255, 0]);
  assert.deepEqual(oggLacing(256), [255, 1]);
  assert.deepEqual(oggLacing(510), [255, 255, 0]);
});

Deno.test("encodeOggPage → OggPageParser, in chunks of every size", () => {
  const page = encodeOggPage({
    continued: true,
    bos: false,
    eos: true,
    granule: 2 ** 40 + 12345,
    serial: 0xdeadbeef,
    sequence: 0xfffffffe,
    lacing: new Uint8Array([255, 3]),
    body: new Uint8Array(258).map((_, i) => i & 0xff),
  });
  for (const chunk of [1, 2, 3, 26, 27, 28, 100, 1000]) {
    const [p] = parseAll(concatBytes([page, page]), chunk);
    assert.equal(p.continued, true);
    assert.equal(p.bos, false);
    assert.equal(p.eos, true);
    assert.equal(p.granule, 2 ** 40 + 12345);
    assert.equal(p.serial, 0xdeadbeef);
    assert.equal(p.sequence, 0xfffffffe);
    assert.deepEqual([...p.lacing], [255, 3]);
    assert.equal(p.body.length, 258);
    assert.equal(p.offset, 0);
    assert.equal(p.size, page.length);
  }
  const none = encodeOggPage({ ...parseAll(page)[0], granule: -1 });
  assert.equal(parseAll(none)[0].granule, -1);
  assert.throws(
    () => encodeOggPage({ ...parseAll(page)[0], lacing: new Uint8Array([1]) }),
    /segment table adds up to 1 bytes, the body has 258/,
  );
});

Deno.test("packets laced over segments and pages come out whole", () => {
  const rand = prng(3);
  const sizes = [0, 1, 254, 255, 256, 510, 65025, 70_000, 3, 0, 255 * 300];
  for (let i = 0; i < 200; i++) sizes.push(Math.floor(rand() * 2000));
  for (const fill of [255, 17, 1]) {
    const pages = pagesFor(sizes, 5, fill);
    const packets = packetsOf(parseAll(concatBytes(pages), 4093));
    assert.deepEqual(packets.map((p) => p.length), sizes, `pages of ${fill} segments`);
    let n = 0;
    for (const p of packets) {
      if (p.length > 0) assert.equal(p[0], n & 0xff, "bytes in order");
      n++;
    }
  }
});

Deno.test("OggPageParser: garbage, corruption and truncation are errors naming the place", async (t) => {
  const pages = pagesFor([100, 200, 300], 5, 255, 1);
  const stream = concatBytes(pages);

  await t.step("not an Ogg stream", () => {
    assert.throws(
      () => new OggPageParser({ source: "x.mp3" }).push(new TextEncoder().encode("ID3\x04junk")),
      (e) => e instanceof OggError && e.offset === 0,
    );
    assert.throws(
      () => new OggPageParser({ source: "x.mp3" }).push(new TextEncoder().encode("ID3\x04junk")),
      /x\.mp3: not an Ogg stream: it does not begin with 'OggS' \(found 49 44 33 04\)/,
    );
  });

  await t.step("garbage between pages", () => {
    const bad = concatBytes([pages[0], new Uint8Array([1, 2, 3, 4, 5]), pages[1]]);
    assert.throws(
      () => parseAll(bad),
      new RegExp(`no Ogg page at byte ${pages[0].length} where one should begin`),
    );
  });

  await t.step("a flipped bit fails the CRC", () => {
    const bad = stream.slice();
    bad[pages[0].length + 40] ^= 0x10;
    assert.throws(() => parseAll(bad), /page 1 of stream 5 at byte \d+ fails its CRC/);
  });

  await t.step("unknown version or flags", () => {
    const v = pages[0].slice();
    v[4] = 1;
    assert.throws(() => parseAll(v), /unsupported Ogg version 1 in the page at byte 0/);
    const f = pages[0].slice();
    f[5] |= 0x20;
    assert.throws(() => parseAll(f), /unknown header flags 0x22/);
  });

  await t.step("truncated inside a page, at every length", () => {
    for (const cut of [1, 3, 4, 26, 27, 28, pages[0].length - 1, pages[0].length + 10]) {
      assert.throws(() => parseAll(stream.subarray(0, cut)), (e) => {
        assert.ok(e instanceof OggError);
        assert.match(e.message, /truncated/);
        return true;
      });
    }
  });

  await t.step("resync: skips garbage and corrupt pages, counts the bytes", () => {
    const corrupt = pages[1].slice();
    corrupt[30] ^= 1;
    const garbage = new Uint8Array(5000).map((_, i) => (i * 7 + 1) & 0xff);
    garbage.set(new TextEncoder().encode("OggS"), 100); // a false capture pattern
    const bytes = concatBytes([garbage, pages[0], corrupt, new Uint8Array([0x4f, 0x67]), pages[2]]);
    const parser = new OggPageParser({ resync: true });
    const got: ParsedOggPage[] = [];
    for (let at = 0; at < bytes.length; at += 333) {
      got.push(...parser.push(bytes.subarray(at, at + 333)));
    }
    parser.end();
    assert.deepEqual(got.map((p) => p.sequence), [0, 2]);
    assert.equal(parser.skippedBytes, 5000 + corrupt.length + 2);
    assert.equal(got[0].offset, 5000);
  });
});

Deno.test("OggPacketAssembler: lost pages, broken continuations, oversized packets", async (t) => {
  // A 600-byte packet over three 1-segment... pages of 1 segment each: 255, 255, 90.
  const pages = parseAll(concatBytes(pagesFor([600, 10, 20], 9, 1)));
  assert.equal(pages.length, 5);

  await t.step("in order: whole packets", () => {
    assert.deepEqual(packetsOf(pages).map((p) => p.length), [600, 10, 20]);
  });

  await t.step("a lost page is an error", () => {
    assert.throws(
      () => packetsOf([pages[0], pages[2], pages[3]]),
      /pages lost: page 2 of stream 9 follows page 0/,
    );
  });

  await t.step("lenient: the cut packet is dropped, the rest delivered", () => {
    const a = new OggPacketAssembler({ lenient: true });
    const got = [pages[0], pages[2], pages[3], pages[4]].flatMap((p) => a.push(p));
    assert.deepEqual(got.map((p) => p.length), [10, 20]);
    assert.ok(a.dropped >= 1);
  });

  await t.step("a continuation that does not match", () => {
    assert.throws(
      () => packetsOf([pages[0], { ...pages[3], sequence: 1 }]),
      /page 1 of stream 9 does not continue the packet left unfinished/,
    );
    assert.throws(
      () => packetsOf([pages[3], { ...pages[1], sequence: 4 }]),
      /page 4 of stream 9 continues a packet, but the page before finished its own/,
    );
    assert.throws(
      () => packetsOf([pages[1]]),
      /continues a packet begun before the stream's first page/,
    );
  });

  await t.step("a packet over maxPacketBytes", () => {
    const a = new OggPacketAssembler({ maxPacketBytes: 520, source: "cam" });
    a.push(pages[0]);
    a.push(pages[1]);
    assert.throws(
      () => a.push(pages[2]),
      /cam: page 2 of stream 9: a packet of more than 520 bytes/,
    );
  });
});

Deno.test("random corruption of a stream throws only OggError", () => {
  const stream = concatBytes(pagesFor([100, 2000, 300, 70_000, 5, 6, 7]));
  const rand = prng(11);
  for (let i = 0; i < 300; i++) {
    const bad = stream.slice(0, Math.floor(rand() * stream.length) + 1);
    for (let k = 0; k < 3; k++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
    for (const resync of [false, true]) {
      try {
        const parser = new OggPageParser({ resync });
        const a = new OggPacketAssembler({ lenient: resync, maxPacketBytes: 100_000 });
        for (const p of parser.push(bad)) a.push(p);
        parser.end();
      } catch (e) {
        assert.ok(e instanceof OggError, String(e));
      }
    }
  }
});

Deno.test("bad data after whole pages: the pages first, the error from the next call", () => {
  const pages = pagesFor([10, 20], 5, 255, 1);
  const parser = new OggPageParser({ source: "s" });
  const got = parser.push(concatBytes([pages[0], new Uint8Array([9, 9, 9, 9, 9])]));
  assert.equal(got.length, 1);
  assert.throws(() => parser.push(pages[1]), /s: no Ogg page at byte \d+ where one should begin/);
  assert.throws(() => parser.end(), /no Ogg page at byte/);
});
