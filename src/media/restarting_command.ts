/**
 * An encoder command kept running: what the video and audio command sources share.
 *
 * @module
 */
import { MediaSourceError } from "./errors.ts";
import { type Logger, silentLogger } from "../log.ts";

/** Options of {@link RestartingCommand} (and of the command sources built on it). */
export interface RestartingCommandOptions {
  /** Shell command writing the stream to its stdout, run with `sh -c`. */
  command: string;
  /** Name used in logs. */
  name?: string;
  /** First delay before a restart, ms (default 500); doubled after each quick exit. */
  restartMinMs?: number;
  /** Longest delay before a restart, ms (default 10 000). */
  restartMaxMs?: number;
  /** A run this long, ms, resets the delay to `restartMinMs` (default 30 000). */
  healthyAfterMs?: number;
  /** After the command exits, how long its stdout may stay open (a pipeline's tail), ms (default 2000). */
  drainMs?: number;
  /** Monotonic clock in ms (default `performance.now()`). */
  now?: () => number;
  /** Logger (default silent). The command's stderr lines go to it at debug. */
  logger?: Logger;
}

/** What reads one run's stdout: started by the opener, done when the stream ends or fails. */
export interface CommandReader {
  /** Settles when the stream ended or turned out unreadable. */
  readonly done: Promise<unknown>;
  /** Stop reading. */
  stop(): void | Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `sh -c <command>`, hands each run's stdout to `open` (which reads it), logs its stderr
 * at debug, and starts it again when it exits: after `restartMinMs`, doubling to
 * `restartMaxMs` while it keeps failing quickly, back to the minimum after a healthy run. A run
 * whose output ends or cannot be read is stopped (SIGTERM, then SIGKILL after 2 s) and started
 * again.
 *
 * @example
 * ```ts
 * import { RestartingCommand } from "./restarting_command.ts";
 * const runner = new RestartingCommand({ command: "echo hello" }, (stdout) => {
 *   const done = new Response(stdout).text().then(console.log);
 *   return { done, stop() {} };
 * });
 * runner.start();
 * setTimeout(() => runner.stop(), 1000);
 * ```
 */
export class RestartingCommand {
  readonly #o: RestartingCommandOptions;
  readonly #open: (stdout: ReadableStream<Uint8Array>) => CommandReader;
  readonly #name: string;
  readonly #log: Logger;
  #child?: Deno.ChildProcess;
  #reader?: CommandReader;
  #stopped = false;
  #wake?: () => void;
  #runs = 0;
  #loop?: Promise<void>;

  /** Nothing runs before {@link RestartingCommand.start}. */
  constructor(
    options: RestartingCommandOptions,
    open: (stdout: ReadableStream<Uint8Array>) => CommandReader,
  ) {
    if (!options.command.trim()) throw new MediaSourceError("empty command", options.name);
    this.#o = options;
    this.#open = open;
    this.#name = options.name ?? "command";
    this.#log = options.logger ?? silentLogger;
  }

  /** How many times the command was started. */
  get runs(): number {
    return this.#runs;
  }

  /** The running command's process id, if one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Whether it was started. */
  get started(): boolean {
    return this.#loop !== undefined;
  }

  /** Start running (once). */
  start(): void {
    if (this.#loop) throw new MediaSourceError("source already started", this.#name);
    this.#loop = this.#run();
  }

  /** Stop the command (SIGTERM, then SIGKILL after 2 s) and stop restarting it. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    const child = this.#child;
    if (child) await this.#kill(child);
    await this.#reader?.stop();
    await this.#loop;
  }

  /** SIGTERM, then SIGKILL after 2 s; resolves when the process has exited. */
  async #kill(child: Deno.ChildProcess): Promise<void> {
    try {
      child.kill("SIGTERM");
    } catch {
      // already exited
    }
    const killer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
    }, 2000);
    await child.status.catch(() => {});
    clearTimeout(killer);
  }

  async #run(): Promise<void> {
    const min = this.#o.restartMinMs ?? 500;
    const max = this.#o.restartMaxMs ?? 10_000;
    const healthy = this.#o.healthyAfterMs ?? 30_000;
    const now = this.#o.now ?? (() => performance.now());
    let delay = min;
    while (!this.#stopped) {
      const startedAt = now();
      let what: string;
      let failed = true;
      try {
        const child = this.#child = new Deno.Command("sh", {
          args: ["-c", this.#o.command],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        this.#runs++;
        this.#log.info(`${this.#name} started (pid ${child.pid})`, { command: this.#o.command });
        const stderr = this.#stderr(child.stderr);
        const reader = this.#reader = this.#open(child.stdout);
        // Bad data ends the stream: then the command is stopped and started again.
        const ended = await Promise.race([
          child.status.then(() => false),
          reader.done.then(() => true),
        ]);
        if (ended && !this.#stopped) {
          this.#log.warn(`${this.#name}: its output ended or was unreadable; stopping it`);
          this.#kill(child);
        }
        const status = await child.status;
        // A pipeline's last stage may hold stdout a little longer than the shell lives.
        const drained = await Promise.race([
          reader.done.then(() => true),
          sleep(this.#o.drainMs ?? 2000).then(() => false),
        ]);
        if (!drained) await reader.stop();
        await stderr;
        what = status.signal
          ? `was killed by ${status.signal} (exit code ${status.code})`
          : `exited with code ${status.code}`;
        failed = status.code !== 0;
      } catch (e) {
        what = `could not run (${e instanceof Error ? e.message : String(e)})`;
      }
      this.#child = undefined;
      if (this.#stopped) break;
      if (now() - startedAt >= healthy) delay = min;
      const line = `${this.#name} ${what}; restarting in ${delay / 1000} s`;
      if (failed) this.#log.warn(line);
      else this.#log.info(line);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      delay = Math.min(delay * 2, max);
    }
  }

  async #stderr(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    try {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + text).split(/\r?\n|\r/);
        rest = lines.pop() ?? "";
        if (rest.length > 4096) rest = rest.slice(0, 4096);
        for (const l of lines) if (l.trim()) this.#log.debug(`${this.#name}: ${l.slice(0, 1000)}`);
      }
    } catch {
      // the stream failed or was cancelled
    }
    if (rest.trim()) this.#log.debug(`${this.#name}: ${rest.slice(0, 1000)}`);
  }
}
