// Audio test helpers: ffmpeg run to encode and decode, and simple measures of decoded PCM.
import assert from "node:assert/strict";

/** Run ffmpeg with `args` (after `-hide_banner -loglevel error`), `stdin` piped in; its stdout. */
export async function ffmpeg(args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("ffmpeg", {
    args: ["-hide_banner", "-loglevel", "error", "-nostdin", ...args],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    // Written while stdout is read, so a large output cannot block the pipe.
    w.write(stdin).then(() => w.close()).catch(() => {});
  }
  const out = await child.output();
  const err = new TextDecoder().decode(out.stderr).trim();
  assert.ok(out.success, `ffmpeg ${args.join(" ")} failed: ${err}`);
  return out.stdout;
}

/**
 * Decode an Ogg Opus file (bytes) with ffmpeg to 48 kHz mono s16 PCM. `-i -` with `-f ogg`
 * reads from stdin.
 */
export async function decodeOgg(bytes: Uint8Array): Promise<Int16Array> {
  const pcm = await ffmpeg(
    ["-f", "ogg", "-i", "-", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"],
    bytes,
  );
  return new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length >> 1);
}

/** Root mean square of `pcm[from, from + n)`, full scale 1. */
export function rms(pcm: Int16Array, from = 0, n = pcm.length - from): number {
  let sum = 0;
  for (let i = from; i < from + n; i++) sum += (pcm[i] / 32768) ** 2;
  return Math.sqrt(sum / Math.max(1, n));
}

/** Amplitude (full scale 1) of frequency `hz` in `pcm[from, from + n)` at 48 kHz (Goertzel). */
export function toneAmplitude(pcm: Int16Array, hz: number, from: number, n: number): number {
  const c = 2 * Math.cos((2 * Math.PI * hz) / 48000);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s = pcm[from + i] / 32768 + c * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  return Math.sqrt(Math.max(0, s1 * s1 + s2 * s2 - c * s1 * s2)) / (n / 2);
}

/** The notes of the sample loop, one a second: an A major scale from A4 (440 Hz). */
export const SAMPLE_NOTES_HZ: readonly number[] = [0, 2, 4, 5, 7, 9, 11, 12, 14, 16].map((s) =>
  440 * 2 ** (s / 12)
);

/** Which of `SAMPLE_NOTES_HZ` is loudest in `pcm[from, from + n)` (its index), and how loud. */
export function dominantNote(pcm: Int16Array, from: number, n: number): [number, number] {
  const amps = SAMPLE_NOTES_HZ.map((hz) => toneAmplitude(pcm, hz, from, n));
  const best = amps.indexOf(Math.max(...amps));
  return [best, amps[best]];
}

/** Concatenate byte arrays. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deterministic pseudo-random numbers in [0, 1), so a failure can be replayed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
