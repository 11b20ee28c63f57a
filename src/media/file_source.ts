/**
 * A {@link VideoSource} that loops a folder of Annex-B access units in real time.
 *
 * @module
 */
import type { EncodedFrame, VideoSource } from "./types.ts";
import { H264Error, inspectAccessUnit, spsProfileLevelId } from "./h264.ts";
import { MediaSourceError } from "./errors.ts";
import { AccessUnitSplitter } from "./access_unit_splitter.ts";
import { ParameterSetCache } from "./parameter_sets.ts";
import { Pacer, type PacerClock } from "./pacer.ts";
import { type Logger, silentLogger } from "../log.ts";

/** Options of {@link FileVideoSource.open}. */
export interface FileVideoSourceOptions {
  /**
   * Folder of frame files (`frame-0001.h264` …; any `*.h264` / `*.264`, natural order), or an
   * `http(s)://` base URL where `frame-0001.h264`, `frame-0002.h264` … are fetched until the
   * first missing one (frames shipped inside a package imported from JSR).
   */
  dir: string;
  /** Frames per second (default 25). */
  fps?: number;
  /** Start again at the first frame after the last (default true). */
  loop?: boolean;
  /** Clock and timers for pacing (default: `performance.now()` and `setTimeout`). */
  clock?: PacerClock;
  /** Re-anchor pacing when more than this far behind, ms (default 500). */
  maxLagMs?: number;
  /** Logger (default silent). */
  logger?: Logger;
  /** Called once when a non-looping source has delivered its last frame. */
  onEnd?: () => void;
  /**
   * On {@link FileVideoSource.requestKeyframe}, jump ahead to the next IDR of the folder at the
   * next tick, as a live encoder would send an IDR at once (default true). A new viewer then
   * starts within one frame period instead of waiting for the rest of the group of pictures;
   * viewers already playing see the video skip forward to that IDR. False: ignore requests.
   */
  skipToKeyframe?: boolean;
}

/** One loaded frame file. */
export interface LoadedFrame {
  /** File name inside the folder. */
  name: string;
  /** Annex-B access unit. */
  data: Uint8Array;
  /** Contains an IDR slice. */
  keyframe: boolean;
}

const FRAME_FILE = /\.(h264|264)$/i;
const naturalOrder = new Intl.Collator("en", { numeric: true, sensitivity: "base" }).compare;

/**
 * Sort file names in natural order: `frame-2` before `frame-10`.
 *
 * @example
 * ```ts
 * import { sortNatural } from "./file_source.ts";
 * sortNatural(["frame-10.h264", "frame-2.h264"]); // ["frame-2.h264", "frame-10.h264"]
 * ```
 */
export function sortNatural(names: string[]): string[] {
  return [...names].sort(naturalOrder);
}

/**
 * Loops a folder of H.264 access units at `fps`, paced on a monotonic clock without drift.
 * Every file is validated when the source opens (a bad one is named in the error), the first
 * frame delivered is an IDR, and timestamps keep increasing across loops, so the loop is
 * seamless for receivers. The same `Uint8Array` of a frame is handed out on every loop:
 * consumers must not modify it.
 *
 * @example
 * ```ts
 * import { FileVideoSource } from "./file_source.ts";
 * const source = await FileVideoSource.open({ dir: "samples/h264", fps: 25 });
 * source.start((frame) => console.log(frame.timestampUs, frame.keyframe, frame.data.length));
 * setTimeout(() => source.stop(), 1000);
 * ```
 */
export class FileVideoSource implements VideoSource {
  /** Always H.264. */
  readonly codec = "h264" as const;
  /** Frames per second. */
  readonly fps: number;
  /** The frames in delivery order (starting at an IDR). */
  readonly frames: readonly LoadedFrame[];
  /** The folder the frames came from. */
  readonly dir: string;
  /** The `profile-level-id` of the first SPS among the frames (undefined without one). */
  readonly profileLevelId?: string;
  readonly #loop: boolean;
  readonly #log: Logger;
  readonly #onEnd?: () => void;
  readonly #clock?: PacerClock;
  readonly #maxLagMs?: number;
  readonly #skipToKeyframe: boolean;
  /** Index of the next frame to deliver (grows without bound; taken modulo the frame count). */
  #position = 0;
  #keyframeRequested = false;
  #skipped = 0;
  #pacer?: Pacer;
  #stopped = false;
  #ended = false;
  #delivered = 0;

  private constructor(dir: string, frames: LoadedFrame[], options: FileVideoSourceOptions) {
    this.dir = dir;
    this.frames = frames;
    for (const f of frames) {
      this.profileLevelId = f.keyframe ? spsProfileLevelId(f.data) : undefined;
      if (this.profileLevelId) break;
    }
    this.fps = options.fps ?? 25;
    this.#loop = options.loop ?? true;
    this.#log = options.logger ?? silentLogger;
    this.#onEnd = options.onEnd;
    this.#clock = options.clock;
    this.#maxLagMs = options.maxLagMs;
    this.#skipToKeyframe = options.skipToKeyframe ?? true;
  }

  /**
   * Read and validate every frame file of `options.dir`. Throws {@link MediaSourceError} for a
   * missing or empty folder, bad options or no IDR frame, and {@link H264Error} naming the file
   * for a truncated or garbage frame.
   */
  static async open(options: FileVideoSourceOptions): Promise<FileVideoSource> {
    const dir = options.dir;
    const fps = options.fps ?? 25;
    if (!Number.isFinite(fps) || fps <= 0 || fps > 240) {
      throw new MediaSourceError(`fps must be a number in (0, 240], got ${options.fps}`, dir);
    }
    if (/^https?:\/\//i.test(dir)) return await FileVideoSource.#fetchAll(dir, options);
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(dir)) {
        if (entry.isFile && FRAME_FILE.test(entry.name)) names.push(entry.name);
      }
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound
        ? "frames folder not found"
        : e instanceof Deno.errors.NotADirectory
        ? "not a folder"
        : `cannot read the frames folder (${(e as Error).message})`;
      throw new MediaSourceError(why, dir, { cause: e });
    }
    if (names.length === 0) {
      throw new MediaSourceError("no frame files (*.h264 or *.264) in the folder", dir);
    }
    const frames: LoadedFrame[] = [];
    for (const name of sortNatural(names)) {
      const path = `${dir.replace(/\/+$/, "")}/${name}`;
      let data: Uint8Array;
      try {
        data = await Deno.readFile(path);
      } catch (e) {
        throw new MediaSourceError(`cannot read frame (${(e as Error).message})`, path, {
          cause: e,
        });
      }
      const info = inspectAccessUnit(data, path); // throws H264Error naming the file
      frames.push({ name, data, keyframe: info.keyframe });
    }
    return FileVideoSource.fromFrames(frames, options);
  }

  static async #fetchAll(base: string, options: FileVideoSourceOptions): Promise<FileVideoSource> {
    const frames: LoadedFrame[] = [];
    const root = base.endsWith("/") ? base : `${base}/`;
    for (let i = 1; i <= 100_000; i++) {
      const name = `frame-${String(i).padStart(4, "0")}.h264`;
      let res: Response;
      try {
        res = await fetch(new URL(name, root));
      } catch (e) {
        throw new MediaSourceError(`cannot fetch frame (${(e as Error).message})`, root + name, {
          cause: e,
        });
      }
      if (res.status === 404) {
        await res.body?.cancel();
        break;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new MediaSourceError(`fetching the frame answered ${res.status}`, root + name);
      }
      const data = new Uint8Array(await res.arrayBuffer());
      frames.push({ name, data, keyframe: inspectAccessUnit(data, root + name).keyframe });
    }
    if (frames.length === 0) {
      throw new MediaSourceError("no frame-0001.h264 at this URL", root);
    }
    return FileVideoSource.fromFrames(frames, { ...options, dir: root });
  }

  /**
   * Loop one Annex-B `.h264` file (an encoder's raw output) at `options.fps`: it is split into
   * access units, and IDRs that lack SPS/PPS get the latest ones seen before them.
   *
   * @example
   * ```ts
   * import { FileVideoSource } from "./file_source.ts";
   * const source = await FileVideoSource.openFile("camera.h264", { fps: 25 });
   * ```
   */
  static async openFile(
    path: string,
    options: Omit<FileVideoSourceOptions, "dir"> = {},
  ): Promise<FileVideoSource> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      throw new MediaSourceError(`cannot read (${(e as Error).message})`, path, { cause: e });
    }
    const splitter = new AccessUnitSplitter({ source: path });
    const cache = new ParameterSetCache();
    const units = [...splitter.push(bytes), ...splitter.flush()].map((au) => cache.complete(au));
    const frames = units.map((data, i) => ({
      name: `access unit ${i + 1}`,
      data,
      keyframe: inspectAccessUnit(data, `${path}: access unit ${i + 1}`).keyframe,
    }));
    return FileVideoSource.fromFrames(frames, { ...options, dir: path });
  }

  /**
   * Build a source from frames already in memory (validated the same way). `options.dir` only
   * names them in errors.
   *
   * @example
   * ```ts
   * import { FileVideoSource } from "./file_source.ts";
   * const idr = new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88]);
   * const source = FileVideoSource.fromFrames([{ name: "a", data: idr, keyframe: true }], { dir: "memory" });
   * ```
   */
  static fromFrames(frames: LoadedFrame[], options: FileVideoSourceOptions): FileVideoSource {
    const dir = options.dir;
    if (frames.length === 0) throw new MediaSourceError("no frames", dir);
    for (const f of frames) {
      const info = inspectAccessUnit(f.data, `${dir}/${f.name}`);
      if (info.keyframe !== f.keyframe) {
        throw new H264Error(`keyframe flag ${f.keyframe} does not match the data`, f.name);
      }
    }
    const first = frames.findIndex((f) => f.keyframe);
    if (first < 0) {
      throw new MediaSourceError(
        `none of the ${frames.length} frames is an IDR: a decoder could never start`,
        dir,
      );
    }
    const log = options.logger ?? silentLogger;
    let ordered = frames;
    if (first > 0) {
      log.warn(`${frames[0].name} is not an IDR: starting at ${frames[first].name}`, { dir });
      // Looping: rotate so the cycle is unchanged; one-shot: drop the undecodable head.
      ordered = (options.loop ?? true)
        ? [...frames.slice(first), ...frames.slice(0, first)]
        : frames.slice(first);
    }
    return new FileVideoSource(dir, ordered, options);
  }

  /** Frames delivered since `start()`. */
  get delivered(): number {
    return this.#delivered;
  }

  /** Frames jumped over to honour keyframe requests. */
  get skipped(): number {
    return this.#skipped;
  }

  /** Begin delivering frames at `fps`. Throws {@link MediaSourceError} if already started. */
  start(onFrame: (frame: EncodedFrame) => void): void {
    if (this.#pacer) throw new MediaSourceError("source already started", this.dir);
    const count = this.frames.length;
    this.#pacer = new Pacer({
      fps: this.fps,
      clock: this.#clock,
      maxLagMs: this.#maxLagMs,
      onStall: (lag) =>
        this.#log.warn(`pacing stalled ${lag.toFixed(0)} ms: skipping ahead`, { dir: this.dir }),
      onError: (e) => this.#log.error("frame consumer threw", { error: e }),
      onTick: (tick) => {
        if (this.#keyframeRequested) {
          this.#keyframeRequested = false;
          this.#jumpToKeyframe();
        }
        if (!this.#loop && this.#position >= count) {
          this.#ended = true;
          this.#pacer?.stop();
          this.#onEnd?.();
          return;
        }
        const f = this.frames[this.#position % count];
        this.#position++;
        this.#delivered++;
        onFrame({ data: f.data, timestampUs: tick.timestampUs, keyframe: f.keyframe });
      },
    });
    this.#log.info(`streaming ${count} frames from ${this.dir} at ${this.fps} fps`);
    this.#pacer.start();
  }

  /** Stop delivering frames. */
  stop(): void {
    this.#stopped = true;
    this.#pacer?.stop();
  }

  /**
   * Pause while no viewer receives frames (`true`), resume when one does (`false`): nobody sees
   * a loop nobody watches, and an idle master then costs almost nothing. Timestamps go on
   * increasing from where they were.
   */
  idle(idle: boolean): void {
    const p = this.#pacer;
    if (!p || this.#stopped || this.#ended) return;
    if (idle) p.stop();
    else if (!p.running) p.start();
  }

  /**
   * A viewer needs an IDR: unless `skipToKeyframe` is false, the next tick delivers the folder's
   * next IDR (requests before that tick are merged into one jump).
   */
  requestKeyframe(): void {
    if (this.#skipToKeyframe) this.#keyframeRequested = true;
  }

  #jumpToKeyframe(): void {
    const count = this.frames.length;
    for (let step = 0; step < count; step++) {
      const at = this.#position + step;
      if (!this.#loop && at >= count) return;
      if (this.frames[at % count].keyframe) {
        this.#skipped += step;
        this.#position = at;
        return;
      }
    }
  }
}
