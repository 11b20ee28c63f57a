/**
 * An {@link AudioSource} that runs an encoder command and reads Ogg Opus from its standard
 * output, restarting it with backoff whenever it exits: the audio sibling of
 * `CommandVideoSource`.
 *
 * @module
 */
import type { AudioPacket, AudioSource } from "./audio_types.ts";
import { AudioTimestamper } from "./audio_timestamps.ts";
import { StreamAudioSource } from "./stream_audio_source.ts";
import { MediaSourceError } from "./errors.ts";
import type { PacerClock } from "./pacer.ts";
import { type Logger, silentLogger } from "../log.ts";

/** Options of {@link CommandAudioSource}. */
export interface CommandAudioSourceOptions {
  /** Shell command writing Ogg Opus to its stdout, run with `sh -c`. */
  command: string;
  /** Name used in logs (default `audio command`). */
  name?: string;
  /** First delay before a restart, ms (default 500); doubled after each quick exit. */
  restartMinMs?: number;
  /** Longest delay before a restart, ms (default 10 000). */
  restartMaxMs?: number;
  /** A run this long, ms, resets the delay to `restartMinMs` (default 30 000). */
  healthyAfterMs?: number;
  /** After the command exits, how long its stdout may stay open (a pipeline's tail), ms (default 2000). */
  drainMs?: number;
  /** Clock and timers for pacing the packets (see {@link StreamAudioSource}). */
  clock?: PacerClock;
  /** Logger (default silent). The command's stderr lines go to it at debug. */
  logger?: Logger;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `sh -c <command>` and delivers the Opus packets of its stdout in real time (see
 * {@link StreamAudioSource}: paced by their granule positions, timestamps from the stream's
 * timeline). When the command exits it is started again after a delay (0.5 s doubling to 10 s,
 * back to 0.5 s after 30 s of healthy running), with a line naming the exit code; timestamps go
 * on increasing across runs. Its stderr goes to the log at debug, one record a line.
 *
 * @example
 * ```ts
 * import { CommandAudioSource } from "./command_audio_source.ts";
 * const source = new CommandAudioSource({
 *   command: "ffmpeg -loglevel error -re -f lavfi -i sine=frequency=440:sample_rate=48000 " +
 *     "-c:a libopus -b:a 32k -page_duration 20000 -f ogg -",
 * });
 * source.start((p) => console.log(p.timestamp48k, p.data.length));
 * setTimeout(() => source.stop(), 2000);
 * ```
 */
export class CommandAudioSource implements AudioSource {
  /** Always Opus. */
  readonly codec = "opus" as const;
  readonly #o: CommandAudioSourceOptions;
  readonly #name: string;
  readonly #log: Logger;
  readonly #stamps = new AudioTimestamper();
  #onPacket?: (packet: AudioPacket) => void;
  #child?: Deno.ChildProcess;
  #stream?: StreamAudioSource;
  #stopped = false;
  #wake?: () => void;
  #runs = 0;
  #lastTs = -Infinity;
  #delivered = 0;
  #loop?: Promise<void>;

  /** Nothing runs before {@link CommandAudioSource.start}. */
  constructor(options: CommandAudioSourceOptions) {
    if (!options.command.trim()) throw new MediaSourceError("empty command", options.name);
    this.#o = options;
    this.#name = options.name ?? "audio command";
    this.#log = options.logger ?? silentLogger;
  }

  /** Channels of the running command's stream, once known. */
  get channels(): number | undefined {
    return this.#stream?.channels;
  }

  /** How many times the command was started. */
  get runs(): number {
    return this.#runs;
  }

  /** Packets delivered so far, over every run. */
  get delivered(): number {
    return this.#delivered;
  }

  /** The running command's process id, if one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Start the command; packets go to `onPacket` at their time. */
  start(onPacket: (packet: AudioPacket) => void): void {
    if (this.#onPacket) throw new MediaSourceError("source already started", this.#name);
    this.#onPacket = onPacket;
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
    let delay = min;
    while (!this.#stopped) {
      const startedAt = performance.now();
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
        const stream = this.#stream = new StreamAudioSource({
          stream: child.stdout,
          name: this.#name,
          clock: this.#o.clock,
          logger: this.#log,
        });
        stream.start((p) => this.#deliver(p));
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
      if (performance.now() - startedAt >= healthy) delay = min;
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

  #deliver(p: AudioPacket): void {
    // Timestamps keep increasing across runs, each run's audio after the last one's.
    const timestampUs = p.timestampUs <= this.#lastTs ? this.#lastTs + 1 : p.timestampUs;
    this.#lastTs = timestampUs;
    this.#delivered++;
    this.#onPacket!({
      ...p,
      timestampUs,
      timestamp48k: this.#stamps.stamp(timestampUs, p.samples),
    });
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
