/**
 * Split an Annex-B H.264 file into one file per access unit: `frame-0001.h264`, `frame-0002.h264`…
 *
 * Usage: `deno run -R -W samples/split.ts <input.h264> <output-dir>`
 *
 * @example
 * ```sh
 * deno run -R -W samples/split.ts /tmp/720p.h264 samples/h264
 * ```
 *
 * @module
 */
import { AccessUnitSplitter } from "../src/media/access_unit_splitter.ts";
import { inspectAccessUnit } from "../src/media/h264.ts";

if (import.meta.main) {
  const [input, outDir] = Deno.args;
  if (!input || !outDir) {
    console.error("usage: deno run -R -W samples/split.ts <input.h264> <output-dir>");
    Deno.exit(2);
  }
  await Deno.mkdir(outDir, { recursive: true });
  const splitter = new AccessUnitSplitter({ source: input });
  const file = await Deno.open(input);
  let n = 0;
  let keyframes = 0;
  const write = async (au: Uint8Array) => {
    n++;
    const name = `frame-${String(n).padStart(4, "0")}.h264`;
    if (inspectAccessUnit(au, name).keyframe) keyframes++;
    await Deno.writeFile(`${outDir}/${name}`, au);
  };
  for await (const chunk of file.readable) {
    for (const au of splitter.push(chunk)) await write(au);
  }
  for (const au of splitter.flush()) await write(au);
  console.log(`${n} access units (${keyframes} IDR) written to ${outDir}`);
}
