/**
 * A {@link VideoSource} reading an Annex-B H.264 byte stream, for users who plug their own
 * encoder or camera (an ffmpeg or GStreamer child process, a capture device, a socket).
 *
 * @module
 */
import type { EncodedFrame, VideoSource } from "./types.ts";
import { AccessUnitSplitter } from "./access_unit_splitter.ts";
import { hasParameterSets, isKeyframe } from "./h264.ts";
import { ParameterSetCache } from "./parameter_sets.ts";
import { MediaSourceError } from "./errors.ts";
import { type Logger, silentLogger } from "../log.ts";

/** Options of {@link StreamVideoSource}. */
export interface StreamVideoSourceOptions {
  /** The Annex-B byte stream, e.g. a child process's `stdout`. */
  stream: ReadableStream<Uint8Array>;
  /** Name used in logs and errors (default `stream`). */
  name?: string;
  /**
   * Frame rate of the encoder. When set, timestamps are `first arrival + n / fps` (smooth, as
   * the encoder meant them); otherwise each access unit is stamped with its arrival time on the
   * monotonic clock. The stream itself must be real time (ffmpeg: `-re` for files).
   */
  fps?: number;
  /** Monotonic clock in ms (default `performance.now()`). */
  now?: () => number;
  /**
   * Put the latest SPS and PPS seen in front of every IDR that lacks them (default true): many
   * cameras send them once. Delivery starts at the first IDR a decoder can start from.
   */
  parameterSets?: boolean;
  /** Called when a viewer needs a keyframe, to tell the encoder (e.g. send it a signal). */
  onKeyframeRequest?: () => void;
  /** Called once when the stream ends or fails; `error` is set for a failure. */
  onEnd?: (error?: Error) => void;
  /** Logger (default silent). */
  logger?: Logger;
}

/**
 * Reads access units from an Annex-B byte stream and delivers them as they arrive, starting at
 * the first IDR (with its SPS and PPS, cached from earlier in the stream when the encoder sent
 * them only once, see {@link ParameterSetCache}). Bad data ends the source with a {@link MediaSourceError} (through `onEnd` and
 * {@link StreamVideoSource.done}), never with an uncaught exception.
 *
 * @example
 * ```ts
 * import { StreamVideoSource } from "./stream_source.ts";
 * // A live test pattern from ffmpeg: baseline H.264, an IDR every second, AUDs, real time.
 * const ffmpeg = new Deno.Command("ffmpeg", {
 *   args: [
 *     "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
 *     "-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
 *     "-x264-params", "keyint=25:repeat-headers=1:aud=1", "-f", "h264", "-",
 *   ],
 *   stdout: "piped",
 * }).spawn();
 * const source = new StreamVideoSource({ stream: ffmpeg.stdout, name: "ffmpeg", fps: 25 });
 * source.start((frame) => console.log(frame.keyframe, frame.data.length));
 * setTimeout(async () => {
 *   await source.stop();
 *   ffmpeg.kill();
 *   await ffmpeg.status;
 * }, 2000);
 * ```
 */
export class StreamVideoSource implements VideoSource {
  /** Always H.264. */
  readonly codec = "h264" as const;
  /** Resolves when the stream has ended (or failed, or was stopped). Never rejects. */
  readonly done: Promise<void>;
  readonly #options: StreamVideoSourceOptions;
  readonly #name: string;
  readonly #now: () => number;
  readonly #log: Logger;
  #reader?: ReadableStreamDefaultReader<Uint8Array>;
  #started = false;
  #stopped = false;
  #frames = 0;
  #lastTs = -Infinity;
  #firstArrival = 0;
  #resolveDone!: () => void;

  /** Wrap a byte stream; nothing is read before {@link StreamVideoSource.start}. */
  constructor(options: StreamVideoSourceOptions) {
    if (options.fps !== undefined && !(options.fps > 0 && options.fps <= 240)) {
      throw new MediaSourceError(`fps must be in (0, 240], got ${options.fps}`, options.name);
    }
    this.#options = options;
    this.#name = options.name ?? "stream";
    this.#now = options.now ?? (() => performance.now());
    this.#log = options.logger ?? silentLogger;
    this.done = new Promise((resolve) => this.#resolveDone = resolve);
  }

  /** Access units delivered so far. */
  get delivered(): number {
    return this.#frames;
  }

  /** Start reading; frames go to `onFrame` as they complete. */
  start(onFrame: (frame: EncodedFrame) => void): void {
    if (this.#started) throw new MediaSourceError("source already started", this.#name);
    this.#started = true;
    this.#pump(onFrame).then((error) => {
      if (error) this.#log.error(error.message, { code: error.code });
      else this.#log.info(`${this.#name}: end of stream after ${this.#frames} frames`);
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
    try {
      await this.#reader?.cancel();
    } catch {
      // already closed or errored
    }
    if (!this.#started) this.#resolveDone();
    await this.done;
  }

  /** Forwarded to `options.onKeyframeRequest`. */
  requestKeyframe(): void {
    this.#options.onKeyframeRequest?.();
  }

  async #pump(onFrame: (frame: EncodedFrame) => void): Promise<MediaSourceError | undefined> {
    const splitter = new AccessUnitSplitter({ source: this.#name });
    let reader: ReadableStreamDefaultReader<Uint8Array>;
    try {
      reader = this.#reader = this.#options.stream.getReader();
    } catch (e) {
      return new MediaSourceError(`cannot read the stream (${(e as Error).message})`, this.#name, {
        cause: e,
      });
    }
    let waitingForIdr = true;
    const cache = this.#options.parameterSets === false ? undefined : new ParameterSetCache();
    let warned = false;
    const deliver = (unit: Uint8Array) => {
      const au = cache ? cache.complete(unit) : unit;
      const keyframe = isKeyframe(au);
      if (waitingForIdr) {
        if (!keyframe) return;
        if (cache && !hasParameterSets(au)) {
          if (!warned) this.#log.warn(`${this.#name}: IDR without SPS/PPS skipped (none seen yet)`);
          warned = true;
          return;
        }
        waitingForIdr = false;
      }
      const now = this.#now();
      if (this.#frames === 0) this.#firstArrival = now;
      let ts = this.#options.fps
        ? Math.round((this.#firstArrival + this.#frames * 1000 / this.#options.fps) * 1000)
        : Math.round(now * 1000);
      if (ts <= this.#lastTs) ts = this.#lastTs + 1;
      this.#lastTs = ts;
      this.#frames++;
      try {
        onFrame({ data: au, timestampUs: ts, keyframe });
      } catch (e) {
        this.#log.error("frame consumer threw", { error: e });
      }
    };
    try {
      while (!this.#stopped) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const au of splitter.push(value)) deliver(au);
      }
      if (!this.#stopped) { for (const au of splitter.flush()) deliver(au); }
    } catch (e) {
      if (this.#stopped) return undefined;
      try {
        await reader.cancel();
      } catch {
        // the stream already failed
      }
      const msg = e instanceof Error ? e.message : String(e);
      return new MediaSourceError(`stream failed: ${msg}`, this.#name, { cause: e });
    } finally {
      reader.releaseLock();
    }
    return undefined;
  }
}
