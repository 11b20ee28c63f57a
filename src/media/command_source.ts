/**
 * A {@link VideoSource} that runs an encoder command and reads Annex-B H.264 from its standard
 * output, restarting it with backoff whenever it exits.
 *
 * @module
 */
import type { EncodedFrame, VideoSource } from "./types.ts";
import { StreamVideoSource } from "./stream_source.ts";
import { MediaSourceError } from "./errors.ts";
import { type Logger, silentLogger } from "../log.ts";

/** Options of {@link CommandVideoSource}. */
export interface CommandVideoSourceOptions {
  /** Shell command writing Annex-B H.264 to its stdout, run with `sh -c`. */
  command: string;
  /** Name used in logs (default `video command`). */
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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `sh -c <command>` and delivers the access units of its stdout (see
 * {@link StreamVideoSource}: from the first IDR, SPS/PPS put in front of IDRs that lack them,
 * stamped on arrival). When the command exits it is started again after a delay (0.5 s doubling
 * to 10 s, back to 0.5 s after 30 s of healthy running), with a line naming the exit code; the
 * frames resume at the new encoder's first IDR. Its stderr goes to the log at debug, one record a
 * line, secrets redacted.
 *
 * @example
 * ```ts
 * import { CommandVideoSource } from "./command_source.ts";
 * const source = new CommandVideoSource({
 *   command: "ffmpeg -loglevel error -re -f lavfi -i testsrc=size=640x360:rate=25 " +
 *     "-pix_fmt yuv420p -c:v libx264 -profile:v baseline -g 50 -bf 0 -f h264 -",
 * });
 * source.start((frame) => console.log(frame.keyframe, frame.data.length));
 * setTimeout(() => source.stop(), 2000);
 * ```
 */
export class CommandVideoSource implements VideoSource {
  /** Always H.264. */
  readonly codec = "h264" as const;
  readonly #o: CommandVideoSourceOptions;
  readonly #name: string;
  readonly #log: Logger;
  #onFrame?: (frame: EncodedFrame) => void;
  #child?: Deno.ChildProcess;
  #stream?: StreamVideoSource;
  #stopped = false;
  #wake?: () => void;
  #runs = 0;
  #lastTs = -Infinity;
  #delivered = 0;
  #loop?: Promise<void>;

  /** Nothing runs before {@link CommandVideoSource.start}. */
  constructor(options: CommandVideoSourceOptions) {
    if (!options.command.trim()) throw new MediaSourceError("empty command", options.name);
    this.#o = options;
    this.#name = options.name ?? "video command";
    this.#log = options.logger ?? silentLogger;
  }

  /** How many times the command was started. */
  get runs(): number {
    return this.#runs;
  }

  /** Access units delivered so far, over every run. */
  get delivered(): number {
    return this.#delivered;
  }

  /** The running command's process id, if one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Start the command; frames go to `onFrame` as they complete. */
  start(onFrame: (frame: EncodedFrame) => void): void {
    if (this.#onFrame) throw new MediaSourceError("source already started", this.#name);
    this.#onFrame = onFrame;
    this.#loop = this.#run();
  }

  /** Stop the command (SIGTERM, then SIGKILL after 2 s) and stop restarting it. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    const child = this.#child;
    if (child) await this.#kill(child);
    await this.#stream?.stop();
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
        const stream = this.#stream = new StreamVideoSource({
          stream: child.stdout,
          name: this.#name,
          logger: this.#log,
        });
        stream.start((f) => this.#deliver(f));
        // Bad data ends the stream: then the command is stopped and started again.
        const ended = await Promise.race([
          child.status.then(() => false),
          stream.done.then(() => true),
        ]);
        if (ended && !this.#stopped) {
          this.#log.warn(`${this.#name}: its output ended or was unreadable; stopping it`);
          this.#kill(child);
        }
        const status = await child.status;
        // A pipeline's last stage may hold stdout a little longer than the shell lives.
        const drained = await Promise.race([
          stream.done.then(() => true),
          sleep(this.#o.drainMs ?? 2000).then(() => false),
        ]);
        if (!drained) await stream.stop();
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

  #deliver(f: EncodedFrame): void {
    // Timestamps keep increasing across runs.
    const timestampUs = f.timestampUs <= this.#lastTs ? this.#lastTs + 1 : f.timestampUs;
    this.#lastTs = timestampUs;
    this.#delivered++;
    this.#onFrame!({ ...f, timestampUs });
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
