/**
 * A camera that sends SPS and PPS once: copies Annex-B H.264 from stdin to stdout, dropping every
 * SPS and PPS after the first IDR. `ffmpeg … -f h264 - | deno run tests/support/headers_once.ts`
 *
 * @module
 */
import { AccessUnitSplitter } from "../../src/media/access_unit_splitter.ts";
import { NalType, splitNalUnits } from "../../src/media/h264.ts";

/** The access unit without SPS/PPS once `seenIdr`; returns it and whether it held an IDR. */
export function dropParameterSets(au: Uint8Array, seenIdr: boolean): [Uint8Array, boolean] {
  const nals = splitNalUnits(au);
  const idr = nals.some((n) => (n[0] & 0x1f) === NalType.IDR);
  if (!seenIdr) return [au, idr];
  const kept = nals.filter((n) => ![NalType.SPS, NalType.PPS].includes((n[0] & 0x1f) as 7 | 8));
  const out = new Uint8Array(kept.reduce((s, n) => s + 4 + n.length, 0));
  let at = 0;
  for (const n of kept) {
    out.set([0, 0, 0, 1], at);
    out.set(n, at + 4);
    at += 4 + n.length;
  }
  return [out, true];
}

if (import.meta.main) {
  const splitter = new AccessUnitSplitter({ source: "stdin" });
  let seenIdr = false;
  const writer = Deno.stdout.writable.getWriter();
  const write = async (units: Uint8Array[]) => {
    for (const au of units) {
      const [out, idr] = dropParameterSets(au, seenIdr);
      seenIdr ||= idr;
      await writer.write(out);
    }
  };
  try {
    for await (const chunk of Deno.stdin.readable) await write(splitter.push(chunk));
    await write(splitter.flush());
  } catch {
    // the reader went away
  }
}
