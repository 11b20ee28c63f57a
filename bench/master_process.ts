/**
 * A benchmark's master as a child process: ours under Deno or the werift reference
 * (`bench/werift_master.mjs`) under Node, started the same way by every bench that drives one,
 * then read for its `READY` line and its stats lines (one JSON object a line on stdout) and
 * its log (stderr). Every wait on it is bounded.
 *
 * @module
 */
import { bounded, BUILD, ROOT } from "./werift_setup.ts";

/**
 * Which master: ours (Deno) or the werift reference (Node).
 *
 * @example
 * ```ts
 * import type { MasterKind } from "./master_process.ts";
 * const kind: MasterKind = "werift";
 * ```
 */
export type MasterKind = "ours" | "werift";

/**
 * The masters an `--only` option asks for: the one it names, else both, ours first.
 *
 * @example
 * ```ts
 * import { masterKinds } from "./master_process.ts";
 * console.log(masterKinds(undefined)); // ["ours", "werift"]
 * console.log(masterKinds("werift")); // ["werift"]
 * ```
 */
export function masterKinds(only: string | undefined): MasterKind[] {
  return only === "ours" ? ["ours"] : only === "werift" ? ["werift"] : ["ours", "werift"];
}

/**
 * Options of {@link masterCommand}.
 *
 * @example
 * ```ts
 * import type { MasterCommandOptions } from "./master_process.ts";
 * const options: MasterCommandOptions = { env: {}, caCertPath: "/tmp/ca.pem", cpus: "0" };
 * ```
 */
export interface MasterCommandOptions {
  /** The master's environment (the emulator's `env()`). */
  env: Record<string, string>;
  /** The emulator's CA certificate: Node trusts it through `NODE_EXTRA_CA_CERTS` (werift). */
  caCertPath: string;
  /** Run the master on these CPUs (`taskset -c`); its child processes inherit them. */
  cpus?: string;
}

/**
 * The command of a master, stdout and stderr piped: ours is `deno run -A <argv>` in the
 * repository's root (`argv` names the script), werift is `node bench/.build/werift_master.mjs
 * <argv>` in {@link BUILD} (see `prepareWerift`).
 *
 * @example
 * ```ts
 * import { masterCommand } from "./master_process.ts";
 * const command = masterCommand("werift", ["my-channel", "samples/h264", "25"], {
 *   env: {},
 *   caCertPath: "/tmp/ca.pem",
 * });
 * ```
 */
export function masterCommand(
  kind: MasterKind,
  argv: string[],
  options: MasterCommandOptions,
): Deno.Command {
  const { env, caCertPath, cpus } = options;
  const ours = kind === "ours";
  const runtime = ours ? Deno.execPath() : "node";
  const args = ours ? ["run", "-A", ...argv] : [`${BUILD}/werift_master.mjs`, ...argv];
  return new Deno.Command(cpus ? "taskset" : runtime, {
    args: cpus ? ["-c", cpus, runtime, ...args] : args,
    cwd: ours ? ROOT : BUILD,
    env: ours ? env : { ...env, NODE_EXTRA_CA_CERTS: caCertPath },
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Options of {@link spawnMaster}.
 *
 * @example
 * ```ts
 * import type { SpawnMasterOptions } from "./master_process.ts";
 * const options: SpawnMasterOptions = { name: "ours", onStats: (s) => console.log(s) };
 * ```
 */
export interface SpawnMasterOptions {
  /** The master's name in errors: `<name> master exited …`, `<name> master READY: …`. */
  name: string;
  /** Each chunk of stderr, awaited before its lines are read (e.g. to copy the log to a file). */
  onStderr?: (chunk: string) => void | Promise<void>;
  /** Each whole line of stderr. */
  onStderrLine?: (line: string) => void;
  /** Each stats line of stdout (one starting with `{`), parsed; one that does not parse is skipped. */
  onStats?: (stats: unknown) => void;
}

/**
 * A running master, once it printed `READY`.
 *
 * @example
 * ```ts
 * import type { MasterChild } from "./master_process.ts";
 * declare const master: MasterChild;
 * console.log(master.pid, master.stderr());
 * await master.stop();
 * ```
 */
export interface MasterChild {
  /** The process id (of `taskset` with `cpus`, which execs the runtime: the same process). */
  pid: number;
  /** The master's stderr so far (its last 4000 characters). */
  stderr(): string;
  /** SIGTERM, then SIGKILL if it has not exited within 5 s; at most 10 s in all. */
  stop(): Promise<void>;
}

/** The masters running now, for {@link killMasters}. */
const running = new Set<Deno.ChildProcess>();

/**
 * Spawn a master and wait (at most 60 s) until it prints `READY`; throws, the master stopped,
 * if it exits or stays silent before. Its stdout and stderr are read to their end.
 *
 * @example
 * ```ts
 * import { masterCommand, spawnMaster } from "./master_process.ts";
 * const master = await spawnMaster(
 *   masterCommand("ours", ["bench/master_proc.ts", "my-channel", "wasm"], {
 *     env: {},
 *     caCertPath: "/tmp/ca.pem",
 *   }),
 *   { name: "ours", onStats: (s) => console.log(s) },
 * );
 * await master.stop();
 * ```
 */
export async function spawnMaster(
  command: Deno.Command,
  options: SpawnMasterOptions,
): Promise<MasterChild> {
  const { name } = options;
  const child = command.spawn();
  running.add(child);
  let err = "";
  (async () => {
    let partial = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      await options.onStderr?.(chunk);
      err = (err + chunk).slice(-4000);
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const l of lines) options.onStderrLine?.(l);
    }
  })().catch(() => {});
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => readyResolve = r);
  const exited = child.status.then((s) => {
    throw new Error(`${name} master exited (${s.code}) before READY: ${err.trim()}`);
  });
  exited.catch(() => {});
  (async () => {
    let buffered = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (buffered + chunk).split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.trim() === "READY") readyResolve();
        else if (line.startsWith("{")) {
          let stats: unknown;
          try {
            stats = JSON.parse(line);
          } catch {
            continue; // a partial line
          }
          options.onStats?.(stats);
        }
      }
    }
  })().catch(() => {});
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    if (!(await bounded(child.status, 5000, "master exit").then(() => true, () => false))) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await bounded(child.status, 5000, "master exit").catch(() => {});
    }
    running.delete(child);
  };
  try {
    await bounded(Promise.race([ready, exited]), 60_000, `${name} master READY`);
  } catch (e) {
    await stop();
    throw e;
  }
  return { pid: child.pid, stderr: () => err, stop };
}

/**
 * SIGKILL every master still running (a bench's last resort when it stops early).
 *
 * @example
 * ```ts
 * import { killMasters } from "./master_process.ts";
 * killMasters();
 * ```
 */
export function killMasters(): void {
  for (const c of running) {
    try {
      c.kill("SIGKILL");
    } catch { /* gone */ }
  }
}
