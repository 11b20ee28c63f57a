/**
 * An {@link AudioSource} reading Ogg Opus from a byte stream: an encoder's stdout (ffmpeg
 * `-c:a libopus -f ogg -`), a file, a socket.
 *
 * @module
 */
import type { AudioPacket, AudioSource } from "./audio_types.ts";
import { AudioTimestamper } from "./audio_timestamps.ts";
import { MediaSourceError } from "./errors.ts";
import { type OggOpusPacket, OggOpusReader } from "./ogg_opus_reader.ts";
import type { OpusHead } from "./opus_headers.ts";
import { type PacerClock, realClock } from "./pacer.ts";
import { KvsError } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";

/** Options of {@link StreamAudioSource}. */
export interface StreamAudioSourceOptions {
  /** The Ogg Opus byte stream, e.g. a child process's `stdout`. */
  stream: ReadableStream<Uint8Array>;
  /** Name used in logs and errors (default `audio stream`). */
  name?: string;
  /** Clock and timers for pacing (default: `performance.now()` and `setTimeout`). */
  clock?: PacerClock;
  /**
   * When a packet arrives more than this far behind its place on the timeline (the input fell
   * behind real time, or stalled), or is due more than this far ahead (a jump in its granule
   * positions), the timeline is re-anchored at that packet: its timestamps jump (default 500 ms).
   */
  maxLagMs?: number;
  /** Skip garbage and corrupt pages instead of ending (see {@link OggOpusReader}); default false. */
  resync?: boolean;
  /** Called once when the stream ends or fails; `error` is set for a failure. */
  onEnd?: (error?: Error) => void;
  /** Logger (default silent). */
  logger?: Logger;
}

/**
 * Reads an Ogg Opus stream and delivers its packets in real time. The first packet plays when it
 * arrives; each later one at that instant plus its distance on the stream's 48 kHz timeline (its
 * granule position). An input faster than real time (a file, an encoder without `-re`) is paced:
 * the source waits before reading on, so the producer is held back and memory stays at one chunk.
 * An input that is itself real time is delivered as it arrives, with timestamps from its timeline,
 * smooth whatever the arrival jitter (Ogg pages group packets: ffmpeg's default is one page a
 * second, `-page_duration 20000` makes it one per 20 ms packet, for the least latency).
 *
 * Only mono or stereo Opus (channel mapping family 0) is accepted. Bad data ends the source with
 * an error through `onEnd` and {@link StreamAudioSource.done}, after every whole packet before it
 * was delivered, never with an uncaught exception.
 *
 * @example
 * ```ts
 * import { StreamAudioSource } from "./stream_audio_source.ts";
 * const ffmpeg = new Deno.Command("ffmpeg", {
 *   args: [
 *     "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
 *     "-c:a", "libopus", "-b:a", "32k", "-page_duration", "20000", "-f", "ogg", "-",
 *   ],
 *   stdout: "piped",
 * }).spawn();
 * const source = new StreamAudioSource({ stream: ffmpeg.stdout, name: "ffmpeg" });
 * source.start((p) => console.log(p.timestamp48k, p.samples, p.data.length));
 * setTimeout(async () => {
 *   await source.stop();
 *   ffmpeg.kill();
 *   await ffmpeg.status;
 * }, 2000);
 * ```
 */
export class StreamAudioSource implements AudioSource {
  /** Always Opus. */
  readonly codec = "opus" as const;
  /** Resolves when the stream has ended (or failed, or was stopped). Never rejects. */
  readonly done: Promise<void>;
  readonly #options: StreamAudioSourceOptions;
  readonly #name: string;
  readonly #clock: PacerClock;
  readonly #maxLagMs: number;
  readonly #log: Logger;
  readonly #stamps = new AudioTimestamper();
  #reader?: ReadableStreamDefaultReader<Uint8Array>;
  #head?: OpusHead;
  #started = false;
  #stopped = false;
  #delivered = 0;
  #reanchored = 0;
  /** The timeline's anchor: this granule position plays at this instant (ms). */
  #anchor?: { ms: number; granule: number };
  #wake?: () => void;
  #resolveDone!: () => void;

  /** Wrap a byte stream; nothing is read before {@link StreamAudioSource.start}. */
  constructor(options: StreamAudioSourceOptions) {
    const lag = options.maxLagMs ?? 500;
    if (!(lag > 0)) throw new MediaSourceError(`maxLagMs must be > 0, got ${lag}`, options.name);
    this.#options = options;
    this.#name = options.name ?? "audio stream";
    this.#clock = options.clock ?? realClock;
    this.#maxLagMs = lag;
    this.#log = options.logger ?? silentLogger;
    this.done = new Promise((resolve) => this.#resolveDone = resolve);
  }

  /** Channels of the stream, once its `OpusHead` was read. */
  get channels(): number | undefined {
    return this.#head?.channels;
  }

  /** The stream's `OpusHead`, once read. */
  get head(): OpusHead | undefined {
    return this.#head;
  }

  /** Packets delivered so far. */
  get delivered(): number {
    return this.#delivered;
  }

  /** Times the timeline was re-anchored because the input fell behind or jumped. */
  get reanchored(): number {
    return this.#reanchored;
  }

  /** Start reading; packets go to `onPacket` at their time. */
  start(onPacket: (packet: AudioPacket) => void): void {
    if (this.#started) throw new MediaSourceError("source already started", this.#name);
    this.#started = true;
    this.#pump(onPacket).then((error) => {
      if (error) this.#log.error(error.message, { code: error.code });
      else this.#log.info(`${this.#name}: end of stream after ${this.#delivered} packets`);
      try {
        this.#options.onEnd?.(error);
      } finally {
        this.#resolveDone();
      }
    });
  }

  /** Stop reading and cancel the stream. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    try {
      await this.#reader?.cancel();
    } catch {
      // already closed or errored
    }
    if (!this.#started) this.#resolveDone();
    await this.done;
  }

  async #pump(onPacket: (packet: AudioPacket) => void): Promise<KvsError | undefined> {
    let reader: ReadableStreamDefaultReader<Uint8Array>;
    try {
      reader = this.#reader = this.#options.stream.getReader();
    } catch (e) {
      return new MediaSourceError(`cannot read the stream (${(e as Error).message})`, this.#name, {
        cause: e,
      });
    }
    const ogg = new OggOpusReader({ source: this.#name, resync: this.#options.resync });
    try {
      while (!this.#stopped) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const packet of ogg.push(value)) {
          if (this.#stopped) break;
          this.#checkHead(ogg);
          await this.#deliver(packet, onPacket);
        }
      }
      if (!this.#stopped) ogg.end();
    } catch (e) {
      if (this.#stopped) return undefined;
      try {
        await reader.cancel();
      } catch {
        // the stream already failed
      }
      if (e instanceof KvsError) return e;
      const msg = e instanceof Error ? e.message : String(e);
      return new MediaSourceError(`stream failed: ${msg}`, this.#name, { cause: e });
    } finally {
      reader.releaseLock();
    }
    return undefined;
  }

  #checkHead(ogg: OggOpusReader): void {
    const head = ogg.head!;
    if (head === this.#head) return;
    if (head.mappingFamily !== 0) {
      throw new MediaSourceError(
        `${head.channels} channels in channel mapping family ${head.mappingFamily}: WebRTC ` +
          "carries mono or stereo Opus (family 0)",
        this.#name,
      );
    }
    this.#head = head;
    this.#log.info(`${this.#name}: Opus, ${head.channels} channel(s)`);
  }

  async #deliver(packet: OggOpusPacket, onPacket: (p: AudioPacket) => void): Promise<void> {
    const clock = this.#clock;
    const now = clock.now();
    const anchor = this.#anchor ??= { ms: now, granule: packet.granule };
    let due = anchor.ms + (packet.granule - anchor.granule) / 48;
    if (Math.abs(due - now) > this.#maxLagMs) {
      if (this.#reanchored++ === 0 || this.#reanchored % 100 === 0) {
        this.#log.warn(
          `${this.#name}: a packet ${(now - due).toFixed(0)} ms ${due < now ? "late" : "early"}` +
            `: its timestamps jump (${this.#reanchored} time(s))`,
        );
      }
      this.#anchor = { ms: now, granule: packet.granule };
      due = now;
    }
    if (due > now + 0.5) {
      await new Promise<void>((resolve) => {
        const timer = clock.setTimer(() => {
          this.#wake = undefined;
          resolve();
        }, due - now);
        this.#wake = () => {
          clock.clearTimer(timer);
          this.#wake = undefined;
          resolve();
        };
      });
      if (this.#stopped) return;
    }
    const timestampUs = Math.round(due * 1000);
    this.#delivered++;
    try {
      onPacket({
        data: packet.data,
        timestampUs,
        timestamp48k: this.#stamps.stamp(timestampUs, packet.samples),
        samples: packet.samples,
      });
    } catch (e) {
      this.#log.error("audio packet consumer threw", { error: e });
    }
  }
}
