/**
 * `deno task bench`: every benchmark of the project, each printing our figure next to a
 * reference peer measured in the same run, as ratios.
 *
 * 1. Hot path — H.264 access units → RTP → SRTP datagrams, MB/s of frame input, with
 *    AES_CM_128_HMAC_SHA1_80 and AEAD_AES_128_GCM: our WASM core vs werift (under Node when
 *    installed, else Deno) vs libsrtp2 (a small C program built here with `cc -lsrtp2`).
 * 2. The `.wasm` size and its compile + instantiate time.
 * 3. A master process under load, driven by headless Chromium viewers on the official KVS JS SDK
 *    page (1, 3, 10 viewers): CPU, PSS, NACKs/PLIs, frames decoded and TTFF, our master vs a
 *    werift master under Node (bench/fair_load.ts, also `deno task bench:load`).
 *
 * Options: `--seconds N` per hot-path measurement (default 3), `--frames DIR` (default
 * samples/h264), `--only hotpath|wasm|load`; for the load benchmark `--viewers 1,3,10`,
 * `--window 20` (seconds), `--runs 1`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { BUILD, have, installForNode, ROOT } from "./werift_setup.ts";

const root = ROOT;
const build = BUILD;

const args = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "3" },
    frames: { type: "string", default: `${root}samples/h264` },
    only: { type: "string" },
    viewers: { type: "string" },
    window: { type: "string" },
    runs: { type: "string" },
  },
});
const seconds = Number(args.values.seconds);
const frames = args.values.frames!;
const only = args.values.only;

interface HotPathResult {
  profile: string;
  frames: number;
  inputBytes: number;
  datagrams: number;
  outputBytes: number;
  seconds: number;
}

async function run(cmd: string, argv: string[], cwd = root): Promise<string> {
  const out = await new Deno.Command(cmd, { args: argv, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${argv.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

function lastJson(text: string): HotPathResult {
  const line = text.trim().split("\n").filter((l) => l.startsWith("{")).at(-1);
  if (!line) throw new Error(`no result line in: ${text}`);
  return JSON.parse(line);
}

const mbps = (r: HotPathResult) => r.inputBytes / r.seconds / 1e6;

async function libsrtp2(profile: string): Promise<HotPathResult | string> {
  if (!(await have("cc")) || !(await Deno.stat("/usr/include/srtp2/srtp.h").catch(() => null))) {
    return "skipped: needs cc and libsrtp2-dev (apt-get install build-essential libsrtp2-dev)";
  }
  await Deno.mkdir(build, { recursive: true });
  const bin = `${build}/hotpath_libsrtp2`;
  await run("cc", [
    "-O2",
    "-D_GNU_SOURCE",
    "-o",
    bin,
    `${root}bench/hotpath_libsrtp2.c`,
    "-lsrtp2",
  ]);
  return lastJson(await run(bin, [frames, profile, String(seconds)]));
}

async function werift(profile: string): Promise<{ result: HotPathResult; runtime: string }> {
  const script = `${root}bench/hotpath_werift.mjs`;
  if (await have("node")) {
    // werift's home is Node (OpenSSL with AES-NI): install it once next to a copy of the script.
    await installForNode(["werift@0.25.2"]);
    await Deno.copyFile(script, `${build}/hotpath_werift.mjs`);
    const text = await run("node", [
      `${build}/hotpath_werift.mjs`,
      frames,
      profile,
      String(seconds),
    ]);
    return { result: lastJson(text), runtime: `Node ${(await run("node", ["--version"])).trim()}` };
  }
  const text = await run(Deno.execPath(), ["run", "-A", script, frames, profile, String(seconds)]);
  return { result: lastJson(text), runtime: `Deno ${Deno.version.deno}` };
}

async function ours(profile: string): Promise<HotPathResult | string> {
  const script = `${root}bench/hotpath_wasm.ts`;
  if (!(await Deno.stat(script).catch(() => null))) return "skipped: WASM core not built yet";
  const text = await run(Deno.execPath(), ["run", "-A", script, frames, profile, String(seconds)]);
  return lastJson(text);
}

function fmt(n: number, digits = 1): string {
  return n.toFixed(digits).padStart(8);
}

if (!only || only === "hotpath") {
  console.log(`\nHot path: H.264 access units → RTP → SRTP (${frames}, ${seconds} s each)`);
  console.log(
    "profile   ours MB/s  werift MB/s  libsrtp2 MB/s  ours/werift  ours/libsrtp2  werift runtime",
  );
  for (const profile of ["cm", "gcm"]) {
    const [o, w, l] = [await ours(profile), await werift(profile), await libsrtp2(profile)];
    const om = typeof o === "string" ? NaN : mbps(o);
    const wm = mbps(w.result);
    const lm = typeof l === "string" ? NaN : mbps(l);
    console.log(
      `${profile.padEnd(7)} ${fmt(om)}    ${fmt(wm)}      ${fmt(lm)}      ${fmt(om / wm, 2)}` +
        `       ${fmt(om / lm, 2)}    ${w.runtime}`,
    );
    for (const r of [o, l]) if (typeof r === "string") console.log(`  ${r}`);
  }
}

if (!only || only === "wasm") {
  const script = `${root}bench/wasm_startup.ts`;
  if (await Deno.stat(script).catch(() => null)) {
    console.log("\nWASM core: size and startup");
    console.log(
      (await run(Deno.execPath(), ["run", "-A", script])).trim(),
    );
  } else {
    console.log("\nWASM core: skipped (not built yet)");
  }
}

if (!only || only === "load") {
  const load = ["run", "-A", `${root}bench/fair_load.ts`, "--frames", frames];
  for (const k of ["viewers", "window", "runs"] as const) {
    const v = args.values[k];
    if (v !== undefined) load.push(`--${k}`, v);
  }
  // Progress on stderr, the table on stdout: both straight through.
  const status = await new Deno.Command(Deno.execPath(), {
    args: load,
    cwd: root,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) throw new Error(`bench/fair_load.ts failed (exit ${status.code})`);
}
