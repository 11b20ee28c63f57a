/**
 * Cut one seamless loop out of an Ogg Opus file that holds the same signal twice or more: the
 * packets of its second period are written to a new Ogg Opus file with no pre-skip. The encoder
 * had already coded a whole period when it reached them, so the loop's end leads into its start
 * as smoothly as the signal itself does.
 *
 * Usage: `deno run -R -W samples/opus_loop.ts <input.opus> <output.opus> [period seconds = 10]`
 *
 * @example
 * ```sh
 * deno run -R -W samples/opus_loop.ts /tmp/tones-20s.opus samples/opus/tones.opus 10
 * ```
 *
 * @module
 */
import { OggOpusReader } from "../src/media/ogg_opus_reader.ts";
import { OggOpusWriter } from "../src/media/ogg_opus_writer.ts";

/** The lookahead of libopus at 48 kHz, compensated for in the signal's expression (6.5 ms). */
const LOOKAHEAD = 312;

if (import.meta.main) {
  const [input, output, periodArg = "10"] = Deno.args;
  if (!input || !output) {
    console.error(
      "usage: deno run -R -W samples/opus_loop.ts <input.opus> <output.opus> [period seconds]",
    );
    Deno.exit(2);
  }
  const period = Number(periodArg) * 48000;
  const reader = new OggOpusReader({ source: input });
  const packets = [...reader.push(await Deno.readFile(input)), ...reader.end()];
  const head = reader.head!;
  if (head.preSkip !== LOOKAHEAD) {
    console.error(`${input}: pre-skip ${head.preSkip}, expected the ${LOOKAHEAD} of libopus`);
    Deno.exit(1);
  }
  const frame = packets[0].samples;
  if (packets.some((p) => p.samples !== frame) || period % frame !== 0) {
    console.error(`${input}: packets of different durations, or not a whole number per period`);
    Deno.exit(1);
  }
  const perPeriod = period / frame;
  const loop = packets.slice(perPeriod, 2 * perPeriod);
  if (loop.length !== perPeriod) {
    console.error(`${input}: ${packets.length} packets, fewer than two periods of ${perPeriod}`);
    Deno.exit(1);
  }
  const writer = new OggOpusWriter({
    channels: head.channels,
    preSkip: 0,
    serial: 0x6b767331, // fixed, so the file is the same each time it is made
    comments: [
      "TITLE=A major scale, one note a second, looping every 10 s",
      ...(reader.tags?.comments.filter((c) => c.startsWith("encoder=")) ?? []),
    ],
  });
  const parts = [writer.headers(), ...loop.map((p) => writer.write(p.data)), writer.end()];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  await Deno.writeFile(output, out);
  console.log(
    `${loop.length} packets of ${frame / 48} ms (${(loop.length * frame) / 48000} s), ` +
      `${out.length} bytes in ${writer.pages} pages written to ${output}`,
  );
}
