/**
 * Incremental splitting of an Annex-B byte stream into access units.
 *
 * @module
 */
import { H264Error, isSliceType, NalType, startsAccessUnit } from "./h264.ts";

const START_CODE = new Uint8Array([0, 0, 0, 1]);

/** Options of {@link AccessUnitSplitter}. */
export interface AccessUnitSplitterOptions {
  /** Name of the stream, used in error messages. */
  source?: string;
  /** Largest NAL unit accepted, bytes (default 8 MiB): guards against a stream with no start codes. */
  maxNalBytes?: number;
}

/**
 * Feeds arbitrary chunks of an Annex-B byte stream in, gets whole access units out (each as
 * Annex-B with 4-byte start codes). Boundaries come from access unit delimiters when the encoder
 * writes them, otherwise from new-picture detection (a parameter set, SEI or a slice with
 * `first_mb_in_slice = 0` after a picture).
 *
 * @example
 * ```ts
 * import { AccessUnitSplitter } from "./access_unit_splitter.ts";
 * const splitter = new AccessUnitSplitter();
 * const bytes = new Uint8Array([0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 1, 0x41, 0x9a, 0, 0, 0, 1, 0x41, 0x9b]);
 * const units = [...splitter.push(bytes), ...splitter.flush()];
 * units.length; // 3
 * ```
 */
export class AccessUnitSplitter {
  #buf = new Uint8Array(0);
  #len = 0;
  /** Offset where the current NAL unit begins (just after its start code), or -1 before one. */
  #nalStart = -1;
  /** Where to resume searching for the next start code. */
  #scan = 0;
  #au: Uint8Array[] = [];
  #auHasPicture = false;
  #sawStartCode = false;
  readonly #source?: string;
  readonly #maxNal: number;

  /** A splitter with an empty buffer. */
  constructor(options: AccessUnitSplitterOptions = {}) {
    this.#source = options.source;
    this.#maxNal = options.maxNalBytes ?? 8 * 1024 * 1024;
  }

  /** Append a chunk; returns the access units it completed (possibly none). */
  push(chunk: Uint8Array): Uint8Array[] {
    this.#append(chunk);
    const out: Uint8Array[] = [];
    const data = this.#buf;
    for (;;) {
      const sc = this.#findStartCode(data, this.#scan, this.#len);
      if (sc < 0) {
        this.#scan = Math.max(this.#nalStart < 0 ? 0 : this.#nalStart, this.#len - 2);
        break;
      }
      if (this.#nalStart < 0) {
        for (let i = 0; i < sc; i++) {
          if (data[i] !== 0) {
            throw new H264Error(
              `stream does not begin with an Annex-B start code (byte ${i} is ${data[i]})`,
              this.#source,
            );
          }
        }
        this.#sawStartCode = true;
      } else {
        this.#nal(data.subarray(this.#nalStart, sc), out);
      }
      this.#nalStart = sc + 3;
      this.#scan = sc + 3;
    }
    if (!this.#sawStartCode && this.#len > 1024) {
      throw new H264Error("no Annex-B start code in the first 1024 bytes", this.#source);
    }
    if (this.#nalStart >= 0 && this.#len - this.#nalStart > this.#maxNal) {
      throw new H264Error(
        `NAL unit larger than ${this.#maxNal} bytes: not an Annex-B H.264 stream?`,
        this.#source,
      );
    }
    this.#compact();
    return out;
  }

  /** End of stream: returns the last access unit, if any. */
  flush(): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.#nalStart >= 0 && this.#nalStart < this.#len) {
      this.#nal(this.#buf.subarray(this.#nalStart, this.#len), out);
    }
    this.#nalStart = -1;
    this.#len = 0;
    this.#scan = 0;
    if (this.#au.length > 0 && this.#auHasPicture) out.push(concatAu(this.#au));
    this.#au = [];
    this.#auHasPicture = false;
    return out;
  }

  #nal(raw: Uint8Array, out: Uint8Array[]): void {
    let end = raw.length;
    while (end > 0 && raw[end - 1] === 0) end--;
    if (end === 0) return; // stray zero bytes between start codes
    // Copy: the buffer is reused.
    const nal = raw.slice(0, end);
    if (nal[0] & 0x80) {
      throw new H264Error(
        `NAL unit with forbidden_zero_bit set (0x${nal[0].toString(16)})`,
        this.#source,
      );
    }
    if (startsAccessUnit(nal, this.#auHasPicture) && this.#au.length > 0) {
      if (this.#auHasPicture) out.push(concatAu(this.#au));
      this.#au = [];
      this.#auHasPicture = false;
    }
    const type = nal[0] & 0x1f;
    if (type === NalType.FILLER) return;
    this.#au.push(nal);
    if (isSliceType(type)) this.#auHasPicture = true;
  }

  #findStartCode(data: Uint8Array, from: number, len: number): number {
    for (let i = from; i < len - 2; i++) {
      const b2 = data[i + 2];
      if (b2 > 1) {
        i += 2;
        continue;
      }
      if (b2 === 1 && data[i] === 0 && data[i + 1] === 0) return i;
    }
    return -1;
  }

  #append(chunk: Uint8Array): void {
    if (this.#len + chunk.length > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + chunk.length, 65536));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
  }

  /** Drop consumed bytes from the front of the buffer. */
  #compact(): void {
    if (!this.#sawStartCode) return; // keep everything for the leading-garbage check
    const from = this.#nalStart >= 0 ? this.#nalStart : Math.max(0, this.#len - 2);
    // Move bytes only when it frees a good share of the buffer: keeps big NAL units linear.
    if (from === 0 || (from < 65536 && from < this.#len / 2)) return;
    this.#buf.copyWithin(0, from, this.#len);
    this.#len -= from;
    this.#scan -= from;
    if (this.#nalStart >= 0) this.#nalStart -= from;
  }
}

function concatAu(nals: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const n of nals) size += START_CODE.length + n.length;
  const out = new Uint8Array(size);
  let o = 0;
  for (const n of nals) {
    out.set(START_CODE, o);
    o += START_CODE.length;
    out.set(n, o);
    o += n.length;
  }
  return out;
}
