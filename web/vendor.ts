/**
 * The third-party browser files the viewer page needs, fetched from npm on first use and never
 * committed: the official KVS WebRTC JS SDK bundle and aws4fetch's browser ES module.
 *
 * Deno cannot install `amazon-kinesis-video-streams-webrtc` as an `npm:` dependency (its optional
 * React Native dependencies do not resolve), and the page needs only one file of each package, so
 * the package tarballs are fetched with the ordinary npm client (`npm pack`, which checks the
 * registry's integrity hash) and unpacked into `web/vendor/<name>@<version>/` (or, when this
 * module is not on the local disk, into `$XDG_CACHE_HOME/kvs-webrtc-master/vendor/`).
 *
 * @module
 */
import { KvsError } from "../src/errors.ts";

/** A pinned npm package file served to the browser. */
export interface VendorFile {
  /** npm package name. */
  name: string;
  /** Exact version. */
  version: string;
  /** Path of the file inside the package. */
  file: string;
  /** URL path the viewer page loads it from. */
  urlPath: string;
}

/** The files the viewer page loads. */
export const VENDOR_FILES: readonly VendorFile[] = [
  {
    name: "amazon-kinesis-video-streams-webrtc",
    version: "2.9.0",
    file: "dist/kvs-webrtc.min.js",
    urlPath: "/vendor/kvs-webrtc.min.js",
  },
  {
    name: "aws4fetch",
    version: "1.0.20",
    file: "dist/aws4fetch.esm.mjs",
    urlPath: "/vendor/aws4fetch.esm.mjs",
  },
];

/**
 * A browser file could not be fetched or unpacked. The message names the package and the
 * command that failed.
 *
 * @example
 * ```ts
 * import { VendorError } from "./vendor.ts";
 * const e = new VendorError("npm pack aws4fetch@1.0.20 failed: offline");
 * console.log(e.code); // VENDOR_FETCH
 * ```
 */
export class VendorError extends KvsError {
  constructor(message: string, options?: ErrorOptions) {
    super("VENDOR_FETCH", message, options);
  }
}

/**
 * The folder vendor packages are unpacked into.
 *
 * @example
 * ```ts
 * import { vendorDir } from "./vendor.ts";
 * console.log(vendorDir()); // e.g. /repo/web/vendor
 * ```
 */
export function vendorDir(): string {
  const here = new URL("./vendor/", import.meta.url);
  if (here.protocol === "file:") return decodeURIComponent(here.pathname).replace(/\/$/, "");
  const base = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${base}/kvs-webrtc-master/vendor`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    throw new VendorError(
      `cannot run \`${cmd}\` (${
        (e as Error).message
      }): install Node.js/npm to fetch the viewer's browser files`,
      { cause: e },
    );
  }
  const text = new TextDecoder();
  if (!out.success) {
    const err = text.decode(out.stderr).split("\n").filter((l) => l && !/warn/i.test(l));
    throw new VendorError(`\`${cmd} ${args.join(" ")}\` failed: ${err.slice(-3).join(" ")}`);
  }
  return text.decode(out.stdout);
}

/**
 * Make sure a package's file is on disk, fetching the package with `npm pack` if needed, and
 * return the file's absolute path. Safe to call from several processes at once.
 *
 * @example
 * ```ts
 * import { ensureVendorFile, VENDOR_FILES } from "./vendor.ts";
 * const path = await ensureVendorFile(VENDOR_FILES[0]);
 * ```
 */
export async function ensureVendorFile(v: VendorFile, dir = vendorDir()): Promise<string> {
  const pkgDir = `${dir}/${v.name}@${v.version}`;
  const path = `${pkgDir}/${v.file}`;
  if (await exists(path)) return path;
  await Deno.mkdir(dir, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir, prefix: ".fetch-" });
  try {
    const spec = `${v.name}@${v.version}`;
    const tgz = (await run("npm", ["pack", spec, "--silent"], tmp)).trim().split("\n").pop();
    if (!tgz) throw new VendorError(`npm pack ${spec} printed no file name`);
    await run("tar", ["-xzf", tgz], tmp);
    if (!(await exists(`${tmp}/package/${v.file}`))) {
      throw new VendorError(`${spec} has no ${v.file}`);
    }
    try {
      await Deno.rename(`${tmp}/package`, pkgDir);
    } catch (e) {
      if (!(await exists(path))) throw e; // another process won the race otherwise
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return path;
}

/**
 * Ensure every file of {@link VENDOR_FILES}; returns a map from URL path to file path.
 *
 * @example
 * ```ts
 * import { ensureVendorFiles } from "./vendor.ts";
 * const files = await ensureVendorFiles();
 * console.log(files.get("/vendor/kvs-webrtc.min.js"));
 * ```
 */
export async function ensureVendorFiles(dir = vendorDir()): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (const v of VENDOR_FILES) map.set(v.urlPath, await ensureVendorFile(v, dir));
  return map;
}
