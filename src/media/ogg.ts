/**
 * Ogg pages and packets (RFC 3533): the page CRC, encoding a page, an incremental page parser
 * with bounded memory, and the reassembly of packets laced over pages.
 *
 * The codec-specific parts (headers, granule positions as time) are in `ogg_opus_reader.ts` and
 * `ogg_opus_writer.ts`.
 *
 * @module
 */
import { KvsError } from "../errors.ts";

/**
 * Invalid or truncated Ogg data: no capture pattern, a bad CRC, a page cut short, lost pages, a
 * packet larger than allowed. `source` names the file or stream, `offset` the byte where the
 * faulty page begins, when known.
 *
 * @example
 * ```ts
 * import { OggError, OggPageParser } from "./ogg.ts";
 * try {
 *   new OggPageParser({ source: "audio.ogg" }).push(new TextEncoder().encode("ID3 tag"));
 * } catch (e) {
 *   if (e instanceof OggError) console.log(e.offset, e.message);
 * }
 * ```
 */
export class OggError extends KvsError {
  /** File path or stream name the bad data came from, when known. */
  readonly source?: string;
  /** Byte offset in the stream of the page at fault, when known. */
  readonly offset?: number;
  /** Make the error; `source` (file or stream name) prefixes the message. */
  constructor(message: string, source?: string, offset?: number, options?: ErrorOptions) {
    super("OGG_INVALID", source ? `${source}: ${message}` : message, options);
    this.source = source;
    this.offset = offset;
  }
}

/** One Ogg page. */
export interface OggPage {
  /** The first packet on the page continues one begun on an earlier page. */
  continued: boolean;
  /** Beginning of stream: the first page of a logical stream. */
  bos: boolean;
  /** End of stream: the last page of a logical stream. */
  eos: boolean;
  /**
   * Codec-defined position at the end of the last packet completed on this page (Opus: samples
   * at 48 kHz); -1 when no packet is completed on it.
   */
  granule: number;
  /** Serial number of the logical stream. */
  serial: number;
  /** Page sequence number within the logical stream. */
  sequence: number;
  /** The segment table: one lacing value (0–255) per segment; a value below 255 ends a packet. */
  lacing: Uint8Array;
  /** The page's packet data (the segments one after another). */
  body: Uint8Array;
}

/** A page read from a stream, with where it was found. */
export interface ParsedOggPage extends OggPage {
  /** Byte offset of the page in the stream. */
  offset: number;
  /** Size of the whole page (header, segment table and body), bytes. */
  size: number;
}

const HEADER_BYTES = 27;
/**
 * The largest page the format allows: a full header, 255 lacing values and 255 × 255 bytes.
 *
 * @example
 * ```ts
 * import { OGG_MAX_PAGE_BYTES } from "./ogg.ts";
 * OGG_MAX_PAGE_BYTES; // 65307
 * ```
 */
export const OGG_MAX_PAGE_BYTES: number = HEADER_BYTES + 255 + 255 * 255;
const CAPTURE = [0x4f, 0x67, 0x67, 0x53]; // "OggS"

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

/**
 * The CRC-32 Ogg puts in every page: polynomial `0x04c11db7`, initial value 0, bits not
 * reflected, no final XOR, computed over the page with its CRC field set to zero. `crc` carries
 * a running value over several calls.
 *
 * @example
 * ```ts
 * import { oggCrc32 } from "./ogg.ts";
 * oggCrc32(new TextEncoder().encode("123456789")).toString(16); // "89a1897f"
 * ```
 */
export function oggCrc32(bytes: Uint8Array, crc = 0): number {
  let c = crc >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    c = ((c << 8) ^ CRC_TABLE[((c >>> 24) ^ bytes[i]) & 0xff]) >>> 0;
  }
  return c;
}

/**
 * Lacing values for a packet of `length` bytes: as many 255s as fit, then the remainder (0 when
 * `length` is a multiple of 255), which ends the packet.
 *
 * @example
 * ```ts
 * import { oggLacing } from "./ogg.ts";
 * oggLacing(600); // [255, 255, 90]
 * oggLacing(255); // [255, 0]
 * ```
 */
export function oggLacing(length: number): number[] {
  const out: number[] = new Array(Math.floor(length / 255)).fill(255);
  out.push(length % 255);
  return out;
}

/**
 * Encode one page: header, segment table, body and CRC. The segment table must describe the
 * body exactly (at most 255 values summing to its length).
 *
 * @example
 * ```ts
 * import { encodeOggPage } from "./ogg.ts";
 * const body = new Uint8Array(10);
 * const page = encodeOggPage({
 *   continued: false, bos: true, eos: false, granule: 0, serial: 1, sequence: 0,
 *   lacing: new Uint8Array([10]), body,
 * });
 * page.length; // 27 + 1 + 10
 * ```
 */
export function encodeOggPage(page: OggPage): Uint8Array {
  const { lacing, body } = page;
  if (lacing.length > 255) throw new RangeError(`${lacing.length} lacing values (at most 255)`);
  let sum = 0;
  for (const v of lacing) sum += v;
  if (sum !== body.length) {
    throw new RangeError(`the segment table adds up to ${sum} bytes, the body has ${body.length}`);
  }
  if (!Number.isSafeInteger(page.granule) || page.granule < -1) {
    throw new RangeError(`bad granule position ${page.granule}`);
  }
  const out = new Uint8Array(HEADER_BYTES + lacing.length + body.length);
  const view = new DataView(out.buffer);
  out.set(CAPTURE, 0);
  out[4] = 0;
  out[5] = (page.continued ? 1 : 0) | (page.bos ? 2 : 0) | (page.eos ? 4 : 0);
  if (page.granule === -1) {
    view.setUint32(6, 0xffffffff, true);
    view.setUint32(10, 0xffffffff, true);
  } else {
    view.setUint32(6, page.granule % 2 ** 32, true);
    view.setUint32(10, Math.floor(page.granule / 2 ** 32), true);
  }
  view.setUint32(14, page.serial >>> 0, true);
  view.setUint32(18, page.sequence >>> 0, true);
  out[26] = lacing.length;
  out.set(lacing, HEADER_BYTES);
  out.set(body, HEADER_BYTES + lacing.length);
  view.setUint32(22, oggCrc32(out), true);
  return out;
}

/** Options of {@link OggPageParser}. */
export interface OggPageParserOptions {
  /** Name of the file or stream, used in errors. */
  source?: string;
  /**
   * Skip what is not a valid page (garbage, a page with a bad CRC) up to the next capture
   * pattern that begins one, instead of failing; see {@link OggPageParser.skippedBytes}. For a
   * stream joined mid-way or a lossy transport. Default false: bad data is an error.
   */
  resync?: boolean;
}

/**
 * Feeds arbitrary chunks of an Ogg stream in, gets whole pages out, each checked (capture
 * pattern, version, CRC). Memory stays bounded: beyond the chunk being parsed, at most one
 * incomplete page (≤ {@link OGG_MAX_PAGE_BYTES}) is kept.
 *
 * @example
 * ```ts
 * import { encodeOggPage, OggPageParser } from "./ogg.ts";
 * const bytes = encodeOggPage({
 *   continued: false, bos: true, eos: true, granule: 0, serial: 7, sequence: 0,
 *   lacing: new Uint8Array([3]), body: new Uint8Array([1, 2, 3]),
 * });
 * const parser = new OggPageParser();
 * const pages = [...parser.push(bytes.subarray(0, 10)), ...parser.push(bytes.subarray(10))];
 * parser.end();
 * pages[0].serial; // 7
 * ```
 */
export class OggPageParser {
  #buf = new Uint8Array(0);
  #start = 0;
  #len = 0;
  /** Stream offset of `#buf[0]`. */
  #base = 0;
  #skipped = 0;
  #pages = 0;
  #fault?: unknown;
  readonly #source?: string;
  readonly #resync: boolean;

  /** A parser at the start of a stream. */
  constructor(options: OggPageParserOptions = {}) {
    this.#source = options.source;
    this.#resync = options.resync ?? false;
  }

  /** Bytes skipped to find pages again (only with `resync`). */
  get skippedBytes(): number {
    return this.#skipped;
  }

  /** Pages returned so far. */
  get pages(): number {
    return this.#pages;
  }

  /** Bytes of the stream consumed so far (pages returned and bytes skipped). */
  get offset(): number {
    return this.#base + this.#start;
  }

  /**
   * Append a chunk; returns the pages it completed (possibly none). Bad data throws
   * {@link OggError}; when whole pages came before it in the chunk, they are returned first and
   * the error is thrown by the next call (so a stream's valid part is never lost).
   */
  push(chunk: Uint8Array): ParsedOggPage[] {
    if (this.#fault) throw this.#fault;
    this.#append(chunk);
    const out: ParsedOggPage[] = [];
    try {
      for (;;) {
        const page = this.#next();
        if (!page) break;
        out.push(page);
      }
    } catch (e) {
      this.#fault = e;
      if (out.length === 0) throw e;
      return out;
    }
    this.#compact();
    return out;
  }

  /** End of stream: throws {@link OggError} if it ended inside a page (or bad data is pending). */
  end(): void {
    if (this.#fault) throw this.#fault;
    const left = this.#len - this.#start;
    if (left === 0) return;
    const at = this.offset;
    if (this.#isCaptureAt(this.#start) && left >= HEADER_BYTES) {
      const size = this.#pageSize(this.#start);
      const need = size < 0 ? HEADER_BYTES + this.#buf[this.#start + 26] : size;
      throw new OggError(
        `truncated: the stream ends inside the page at byte ${at} (${left} of its ${need} bytes)`,
        this.#source,
        at,
      );
    }
    throw new OggError(
      `truncated: the stream ends with ${left} bytes that are not a whole page (at byte ${at})`,
      this.#source,
      at,
    );
  }

  /** The next whole page in the buffer, or undefined when more bytes are needed. */
  #next(): ParsedOggPage | undefined {
    for (;;) {
      const at = this.#start;
      const left = this.#len - at;
      if (left < 4) {
        if (left === 0 || this.#couldBeCapture(at)) return undefined;
        this.#bad(at, this.#notCapture(at));
        continue;
      }
      if (!this.#isCaptureAt(at)) {
        this.#bad(at, this.#notCapture(at));
        continue;
      }
      if (left < HEADER_BYTES) return undefined;
      const b = this.#buf;
      if (b[at + 4] !== 0) {
        this.#bad(at, `unsupported Ogg version ${b[at + 4]} in the page at byte ${this.#abs(at)}`);
        continue;
      }
      if (b[at + 5] & 0xf8) {
        this.#bad(
          at,
          `unknown header flags 0x${b[at + 5].toString(16)} in the page at byte ${this.#abs(at)}`,
        );
        continue;
      }
      const size = this.#pageSize(at);
      if (size < 0) return undefined; // segment table not here yet
      if (left < size) return undefined;
      const view = new DataView(b.buffer, b.byteOffset + at, size);
      const stored = view.getUint32(22, true);
      let crc = oggCrc32(b.subarray(at, at + 22));
      crc = oggCrc32(new Uint8Array(4), crc);
      crc = oggCrc32(b.subarray(at + 26, at + size), crc);
      const sequence = view.getUint32(18, true);
      const serial = view.getUint32(14, true);
      if (crc !== stored) {
        this.#bad(
          at,
          `page ${sequence} of stream ${serial} at byte ${this.#abs(at)} fails its CRC ` +
            `(stored 0x${hex32(stored)}, computed 0x${hex32(crc)}): corrupt data`,
        );
        continue;
      }
      const lo = view.getUint32(6, true);
      const hi = view.getInt32(10, true);
      let granule: number;
      if (hi === -1 && lo === 0xffffffff) granule = -1;
      else {
        granule = hi * 2 ** 32 + lo;
        if (!Number.isSafeInteger(granule) || granule < 0) {
          this.#bad(
            at,
            `page ${sequence} of stream ${serial} at byte ${this.#abs(at)} has an invalid ` +
              `granule position (high word ${hi}, low word ${lo})`,
          );
          continue;
        }
      }
      const segments = b[at + 26];
      const page: ParsedOggPage = {
        continued: (b[at + 5] & 1) !== 0,
        bos: (b[at + 5] & 2) !== 0,
        eos: (b[at + 5] & 4) !== 0,
        granule,
        serial,
        sequence,
        lacing: b.slice(at + HEADER_BYTES, at + HEADER_BYTES + segments),
        body: b.slice(at + HEADER_BYTES + segments, at + size),
        offset: this.#abs(at),
        size,
      };
      this.#start += size;
      this.#pages++;
      return page;
    }
  }

  /** Whole page size from its header and segment table, or -1 when the table is incomplete. */
  #pageSize(at: number): number {
    const segments = this.#buf[at + 26];
    if (this.#len - at < HEADER_BYTES + segments) return -1;
    let body = 0;
    for (let i = 0; i < segments; i++) body += this.#buf[at + HEADER_BYTES + i];
    return HEADER_BYTES + segments + body;
  }

  #isCaptureAt(at: number): boolean {
    const b = this.#buf;
    return b[at] === 0x4f && b[at + 1] === 0x67 && b[at + 2] === 0x67 && b[at + 3] === 0x53;
  }

  /** The bytes left (fewer than 4) are a prefix of the capture pattern. */
  #couldBeCapture(at: number): boolean {
    for (let i = at; i < this.#len; i++) if (this.#buf[i] !== CAPTURE[i - at]) return false;
    return true;
  }

  #notCapture(at: number): string {
    const shown = [...this.#buf.subarray(at, Math.min(at + 4, this.#len))]
      .map((x) => x.toString(16).padStart(2, "0")).join(" ");
    const what = this.#pages === 0 && this.#abs(at) === 0
      ? "not an Ogg stream: it does not begin with 'OggS'"
      : `no Ogg page at byte ${this.#abs(at)} where one should begin`;
    return `${what} (found ${shown})`;
  }

  /** Bad data at `at`: an error, or with `resync` a skip to the next capture pattern. */
  #bad(at: number, message: string): void {
    if (!this.#resync) throw new OggError(message, this.#source, this.#abs(at));
    let i = at + 1;
    for (; i + 3 < this.#len; i++) if (this.#isCaptureAt(i)) break;
    if (i + 3 >= this.#len) {
      // Keep a possible partial capture pattern at the end.
      i = Math.max(at + 1, this.#len - 3);
      while (i < this.#len && !this.#couldBeCapture(i)) i++;
    }
    this.#skipped += i - at;
    this.#start = i;
  }

  #abs(at: number): number {
    return this.#base + at;
  }

  #append(chunk: Uint8Array): void {
    if (this.#len + chunk.length > this.#buf.length) {
      // Keep only the unparsed tail.
      const keep = this.#len - this.#start;
      const size = Math.max(keep + chunk.length, Math.min(2 * this.#buf.length, 1 << 20), 65536);
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(this.#start, this.#len));
      this.#base += this.#start;
      this.#buf = next;
      this.#len = keep;
      this.#start = 0;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
  }

  #compact(): void {
    if (this.#start === 0) return;
    if (this.#start === this.#len) {
      this.#base += this.#start;
      this.#start = this.#len = 0;
      // A large chunk grew the buffer: give the memory back.
      if (this.#buf.length > 4 * OGG_MAX_PAGE_BYTES) this.#buf = new Uint8Array(65536);
      return;
    }
    if (this.#start < this.#buf.length / 2) return;
    this.#buf.copyWithin(0, this.#start, this.#len);
    this.#base += this.#start;
    this.#len -= this.#start;
    this.#start = 0;
  }
}

/** Options of {@link OggPacketAssembler}. */
export interface OggPacketAssemblerOptions {
  /** Name of the file or stream, used in errors. */
  source?: string;
  /** Largest packet accepted, bytes (default 65 536); may be changed between pages. */
  maxPacketBytes?: number;
  /**
   * Lost pages and broken continuations drop the packet they cut instead of failing (count in
   * {@link OggPacketAssembler.dropped}). Default false: they are errors.
   */
  lenient?: boolean;
}

/**
 * Rebuilds the packets of one logical stream from its pages: packets laced over several
 * segments and continued from page to page. Checks that pages arrive in sequence and that
 * continuations match; memory is bounded by `maxPacketBytes`.
 *
 * @example
 * ```ts
 * import { encodeOggPage, OggPacketAssembler, OggPageParser } from "./ogg.ts";
 * // A 300-byte packet: 255 bytes on page 0, its last 45 on page 1, then a 10-byte packet.
 * const page = (sequence: number, continued: boolean, lacing: number[], granule: number) =>
 *   encodeOggPage({
 *     continued, bos: sequence === 0, eos: false, granule, serial: 1, sequence,
 *     lacing: new Uint8Array(lacing), body: new Uint8Array(lacing.reduce((a, b) => a + b, 0)),
 *   });
 * const parser = new OggPageParser();
 * const assembler = new OggPacketAssembler();
 * const packets = [
 *   ...parser.push(page(0, false, [255], -1)),
 *   ...parser.push(page(1, true, [45, 10], 960)),
 * ].flatMap((p) => assembler.push(p));
 * packets.map((p) => p.length); // [300, 10]
 * ```
 */
export class OggPacketAssembler {
  /** Largest packet accepted, bytes. */
  maxPacketBytes: number;
  readonly #source?: string;
  readonly #lenient: boolean;
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  /** The last page ended inside a packet. */
  #open = false;
  #lastSequence = -1;
  #dropped = 0;

  /** An assembler before the stream's first page. */
  constructor(options: OggPacketAssemblerOptions = {}) {
    this.#source = options.source;
    this.maxPacketBytes = options.maxPacketBytes ?? 65536;
    this.#lenient = options.lenient ?? false;
  }

  /** Packets (or pieces of packets) dropped because pages were lost (lenient mode). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Bytes of a packet begun but not finished yet. */
  get pendingBytes(): number {
    return this.#partBytes;
  }

  /** Add the stream's next page; returns the packets completed on it, in order. */
  push(page: OggPage): Uint8Array[] {
    const where = `page ${page.sequence} of stream ${page.serial}`;
    const first = this.#lastSequence < 0;
    let skipFirst = false;
    if (!first && page.sequence !== ((this.#lastSequence + 1) >>> 0)) {
      this.#fault(`pages lost: ${where} follows page ${this.#lastSequence}`);
      this.#reset();
      skipFirst = page.continued;
    } else if (page.continued && !this.#open) {
      this.#fault(
        first
          ? `${where} continues a packet begun before the stream's first page`
          : `${where} continues a packet, but the page before finished its own`,
      );
      skipFirst = true;
    } else if (!page.continued && this.#open) {
      this.#fault(`${where} does not continue the packet left unfinished on the page before`);
      this.#reset();
    }
    if (skipFirst) this.#dropped++;
    this.#lastSequence = page.sequence;
    const out: Uint8Array[] = [];
    let at = 0;
    let segStart = 0;
    const lacing = page.lacing;
    for (let i = 0; i < lacing.length; i++) {
      at += lacing[i];
      if (at > page.body.length) {
        throw new OggError(`${where}: its segment table overruns its body`, this.#source);
      }
      if (lacing[i] === 255 && i < lacing.length - 1) continue;
      const piece = page.body.subarray(segStart, at);
      segStart = at;
      const ends = lacing[i] < 255;
      if (skipFirst) {
        if (ends) skipFirst = false;
        continue;
      }
      this.#add(piece, where);
      if (ends) {
        out.push(this.#take());
        this.#open = false;
      } else {
        this.#open = true;
      }
    }
    // A page that was all tail: the next page's continuation is skipped too.
    if (skipFirst) this.#open = false;
    return out;
  }

  #add(piece: Uint8Array, where: string): void {
    if (this.#partBytes + piece.length > this.maxPacketBytes) {
      const size = this.#partBytes + piece.length;
      this.#reset();
      throw new OggError(
        `${where}: a packet of more than ${this.maxPacketBytes} bytes (${size} so far)`,
        this.#source,
      );
    }
    if (piece.length > 0) this.#parts.push(piece);
    this.#partBytes += piece.length;
  }

  #take(): Uint8Array {
    let packet: Uint8Array;
    if (this.#parts.length === 1) packet = this.#parts[0].slice();
    else {
      packet = new Uint8Array(this.#partBytes);
      let o = 0;
      for (const p of this.#parts) {
        packet.set(p, o);
        o += p.length;
      }
    }
    this.#parts = [];
    this.#partBytes = 0;
    return packet;
  }

  #reset(): void {
    if (this.#open || this.#partBytes > 0) this.#dropped++;
    this.#parts = [];
    this.#partBytes = 0;
    this.#open = false;
  }

  #fault(message: string): void {
    if (!this.#lenient) throw new OggError(message, this.#source);
  }
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, "0");
}
