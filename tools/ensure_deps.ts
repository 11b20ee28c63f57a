/**
 * Makes sure the system programs a task needs are installed.
 *
 * `deno run -A tools/ensure_deps.ts test` checks for the real peers the tests drive (coturn,
 * Chromium, ffmpeg, openssl). When something is missing and we run as root on a Debian-like
 * system it installs it with apt-get; otherwise it stops with one line saying what to install.
 *
 * @module
 */

interface Need {
  /** Program looked up on PATH (or absolute path). */
  program: string;
  /** Debian package providing it. */
  pkg: string;
  /** What it is used for. */
  why: string;
}

const NEEDS: Record<string, Need[]> = {
  test: [
    { program: "turnserver", pkg: "coturn", why: "real TURN server for relay tests" },
    { program: "/usr/bin/chromium", pkg: "chromium", why: "real browser viewer" },
    { program: "ffmpeg", pkg: "ffmpeg", why: "H.264 stream tests" },
    { program: "openssl", pkg: "openssl", why: "test certificates" },
  ],
  demo: [
    { program: "turnserver", pkg: "coturn", why: "local TURN relay (optional)" },
  ],
};

async function has(program: string): Promise<boolean> {
  if (program.startsWith("/")) {
    try {
      return (await Deno.stat(program)).isFile;
    } catch {
      return false;
    }
  }
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      if ((await Deno.stat(`${dir}/${program}`)).isFile) return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

async function run(cmd: string[], env: Record<string, string> = {}): Promise<boolean> {
  const { success } = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return success;
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

/** Check (and when possible install) what `task` needs. Returns the missing packages. */
export async function ensureDeps(task: string, optional = false): Promise<string[]> {
  const needs = NEEDS[task] ?? [];
  const missing: Need[] = [];
  for (const n of needs) if (!(await has(n.program))) missing.push(n);
  if (missing.length === 0) return [];
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  if (isRoot() && await has("apt-get")) {
    console.error(`Installing ${pkgs.join(" ")} (${missing.map((m) => m.why).join("; ")})…`);
    const env = { DEBIAN_FRONTEND: "noninteractive" };
    const ok = await run(["apt-get", "update", "-qq"], env) &&
      await run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...pkgs], env);
    if (ok) {
      const still: Need[] = [];
      for (const n of missing) if (!(await has(n.program))) still.push(n);
      if (still.length === 0) return [];
    }
  }
  if (optional) return pkgs;
  console.error(
    `Missing: ${missing.map((m) => `${m.program} (${m.why})`).join(", ")}. ` +
      `Install with: sudo apt-get install -y ${pkgs.join(" ")}`,
  );
  Deno.exit(1);
}

if (import.meta.main) {
  const task = Deno.args[0] ?? "test";
  await ensureDeps(task, task === "demo");
}
