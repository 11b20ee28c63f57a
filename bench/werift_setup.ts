/**
 * What every benchmark against the werift master needs: commands run to their end, waits with a
 * bound, and werift (with aws4fetch and ws) installed for Node in `bench/.build` next to a copy of
 * `bench/werift_master.mjs`, plus the sample tones as the length-prefixed Opus packets that
 * master reads.
 *
 * @module
 */
import { readOggOpus } from "../src/media/ogg_opus_reader.ts";

/** The repository's root directory (ends with `/`). */
export const ROOT: string = new URL("../", import.meta.url).pathname;
/** Where werift is installed and the master script copied. */
export const BUILD = `${ROOT}bench/.build`;

/**
 * Sleep `ms` milliseconds.
 *
 * @example
 * ```ts
 * import { sleep } from "./werift_setup.ts";
 * await sleep(10);
 * ```
 */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export { bounded } from "../tests/support/until.ts";
import { have } from "../tests/support/have.ts";
export { have };

/**
 * Run a command to its end (killed after 5 minutes); its stdout, or an error with its stderr.
 *
 * @example
 * ```ts
 * import { run } from "./werift_setup.ts";
 * console.log(await run("node", ["--version"]));
 * ```
 */
export async function run(cmd: string, argv: string[], cwd = ROOT): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args: argv,
    cwd,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${argv.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * Install the npm packages `specs` (`name@version`) in {@link BUILD}, unless every one of them
 * is there already.
 *
 * @example
 * ```ts
 * import { installForNode } from "./werift_setup.ts";
 * await installForNode(["werift@0.25.2"]);
 * ```
 */
export async function installForNode(specs: string[]): Promise<void> {
  await Deno.mkdir(BUILD, { recursive: true });
  let missing = false;
  for (const spec of specs) {
    const name = spec.slice(0, spec.lastIndexOf("@") > 0 ? spec.lastIndexOf("@") : undefined);
    if (!(await Deno.stat(`${BUILD}/node_modules/${name}`).catch(() => null))) missing = true;
  }
  if (missing) {
    await run("npm", ["install", "--silent", "--no-save", "--no-package-lock", ...specs], BUILD);
  }
}

/**
 * Install werift 0.25.2, aws4fetch and ws in {@link BUILD} when missing, copy the master script
 * there and, with `tones`, write the sample tones' packets to `tones.out`. Returns the Node
 * version (`Node v20…`).
 *
 * @example
 * ```ts
 * import { prepareWerift } from "./werift_setup.ts";
 * const runtime = await prepareWerift();
 * ```
 */
export async function prepareWerift(
  tones?: { opus: string; out: string },
): Promise<string> {
  if (!(await have("node")) || !(await have("npm"))) {
    throw new Error("the werift reference needs node and npm on the PATH");
  }
  await installForNode(["werift@0.25.2", "aws4fetch@1", "ws@8"]);
  await Deno.copyFile(`${ROOT}bench/werift_master.mjs`, `${BUILD}/werift_master.mjs`);
  if (tones) await writeOpusPackets(tones.opus, tones.out);
  return `Node ${(await run("node", ["--version"])).trim()}`;
}

/**
 * An Ogg/Opus file of 20 ms packets as records of a 2-byte big-endian length and the packet: what
 * the werift master sends as audio.
 *
 * @example
 * ```ts
 * import { writeOpusPackets } from "./werift_setup.ts";
 * await writeOpusPackets("samples/opus/tones.opus", "/tmp/tones.bin");
 * ```
 */
export async function writeOpusPackets(path: string, out: string): Promise<void> {
  const file = await Deno.open(path);
  const records: Uint8Array[] = [];
  let bytes = 0;
  for await (const p of readOggOpus(file.readable, { source: path })) {
    if (p.samples !== 960) throw new Error(`${path}: a packet of ${p.samples} samples, not 20 ms`);
    const r = new Uint8Array(2 + p.data.length);
    new DataView(r.buffer).setUint16(0, p.data.length);
    r.set(p.data, 2);
    records.push(r);
    bytes += r.length;
  }
  const all = new Uint8Array(bytes);
  let at = 0;
  for (const r of records) {
    all.set(r, at);
    at += r.length;
  }
  await Deno.writeFile(out, all);
}
