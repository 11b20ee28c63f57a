/**
 * Parameter sets for live streams: many cameras and encoders send SPS and PPS once, at the start,
 * and never again; a viewer joining later could not decode their IDRs. {@link ParameterSetCache}
 * remembers the latest SPS and PPS seen and puts them in front of every IDR access unit that lacks
 * them.
 *
 * @module
 */
import { NalType } from "./h264.ts";

const START_CODE = new Uint8Array([0, 0, 0, 1]);

/** The NAL units of an Annex-B access unit (views without start codes); never throws. */
function nalUnits(data: Uint8Array): Uint8Array[] {
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i + 2 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (starts.length) ends.push(i > 0 && data[i - 1] === 0 ? i - 1 : i);
      starts.push(i + 3);
      i += 2;
    }
  }
  ends.push(data.length);
  const out: Uint8Array[] = [];
  for (let k = 0; k < starts.length; k++) {
    let end = ends[k];
    while (end > starts[k] && data[end - 1] === 0) end--;
    if (end > starts[k]) out.push(data.subarray(starts[k], end));
  }
  return out;
}

/**
 * Caches the latest SPS and PPS of a stream and completes IDR access units that lack them.
 *
 * @example
 * ```ts
 * import { ParameterSetCache } from "./parameter_sets.ts";
 * const cache = new ParameterSetCache();
 * const first = new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88]);
 * const later = new Uint8Array([0, 0, 0, 1, 0x65, 0x88, 0x84]);
 * cache.complete(first); // unchanged: it carries both
 * cache.complete(later).length; // 20: SPS and PPS put in front
 * ```
 */
export class ParameterSetCache {
  #sps?: Uint8Array;
  #pps?: Uint8Array;
  #completed = 0;

  /** Whether both an SPS and a PPS have been seen. */
  get ready(): boolean {
    return this.#sps !== undefined && this.#pps !== undefined;
  }

  /** IDR access units completed so far. */
  get completed(): number {
    return this.#completed;
  }

  /**
   * Remember the access unit's SPS and PPS; if it holds an IDR slice without them, return it
   * with the cached ones in front (after an access unit delimiter if it starts with one).
   * Otherwise (or when nothing is cached yet) return `au` itself.
   */
  complete(au: Uint8Array): Uint8Array {
    const nals = nalUnits(au);
    let hasSps = false;
    let hasPps = false;
    let idr = false;
    for (const nal of nals) {
      const type = nal[0] & 0x1f;
      if (type === NalType.SPS) {
        hasSps = true;
        this.#sps = nal.slice();
      } else if (type === NalType.PPS) {
        hasPps = true;
        this.#pps = nal.slice();
      } else if (type === NalType.IDR) {
        idr = true;
      }
    }
    if (!idr || (hasSps && hasPps) || !this.ready) return au;
    const parts: Uint8Array[] = [];
    let i = 0;
    if (nals.length && (nals[0][0] & 0x1f) === NalType.AUD) parts.push(nals[i++]);
    if (!hasSps) parts.push(this.#sps!);
    if (!hasPps) parts.push(this.#pps!);
    parts.push(...nals.slice(i));
    const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(START_CODE, at);
      out.set(p, at + 4);
      at += 4 + p.length;
    }
    this.#completed++;
    return out;
  }
}
