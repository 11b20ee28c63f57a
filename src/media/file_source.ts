/**
 * A {@link VideoSource} that loops a folder of Annex-B access units in real time, or several
 * folders in lock-step as a ladder of renditions.
 *
 * @module
 */
import type { EncodedFrame, Rendition, VideoSource } from "./types.ts";
import { H264Error, inspectAccessUnit, spsProfileLevelId } from "./h264.ts";
import { MediaSourceError } from "./errors.ts";
import { AccessUnitSplitter } from "./access_unit_splitter.ts";
import { ParameterSetCache } from "./parameter_sets.ts";
import { checkAligned, checkHighestFirst, describeRung } from "./ladder.ts";
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

/**
 * One rung of a ladder for {@link FileVideoSource.openLadder}: a folder (or base URL) of frames,
 * and optionally its label and bitrate (measured from its files when not given).
 *
 * @example
 * ```ts
 * import type { FileRung } from "./file_source.ts";
 * const rung: FileRung = { dir: "samples/h264-360p", label: "360p", bitrateBps: 800_000 };
 * ```
 */
export interface FileRung {
  /** Folder of frame files, or an `http(s)://` base URL, as {@link FileVideoSourceOptions.dir}. */
  dir: string;
  /** Its name in logs and events (default from its SPS: `360p`). */
  label?: string;
  /** Its bitrate, bits per second (default: its files' bytes over the loop's duration). */
  bitrateBps?: number;
}

/**
 * Options of {@link FileVideoSource.openLadder}: those of a single folder, with the rungs in place
 * of `dir`.
 *
 * @example
 * ```ts
 * import type { FileVideoLadderOptions } from "./file_source.ts";
 * const options: FileVideoLadderOptions = { rungs: ["samples/h264", "samples/h264-360p"], fps: 25 };
 * ```
 */
export interface FileVideoLadderOptions extends Omit<FileVideoSourceOptions, "dir"> {
  /**
   * The rungs, highest bitrate first: folders (or {@link FileRung}s) of the same pictures
   * encoded at different sizes or bitrates, with as many frames each and IDRs at the same
   * frames (all three checked when the source opens).
   */
  rungs: readonly (string | FileRung)[];
}

/** A rung's frames in memory, for {@link FileVideoSource.fromLadder}. */
export interface LoadedRung {
  /** Where the frames came from (names them in errors and logs). */
  dir: string;
  /** The frames, in file order. */
  frames: LoadedFrame[];
  /** Its label (default from its SPS). */
  label?: string;
  /** Its bitrate, bits per second (default measured from the frames). */
  bitrateBps?: number;
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
 * {@link FileVideoSource.openLadder} loops several folders of the same pictures in lock-step, a
 * ladder of renditions (the samples: 720p at 2.4 Mb/s and 360p at 0.8 Mb/s): each tick delivers
 * the frame of every rung, top rung first, with the same timestamp, tagged with its
 * {@link EncodedFrame.rendition}. The rungs must have as many frames each and their IDRs at the
 * same frames, so a viewer can move from one to another at any IDR. Every rung's files are read
 * into memory once when the source opens, as a single folder's are (the samples' two rungs:
 * 4.7 MB), and each frame is handed out by reference: a ladder costs its files' size, nothing
 * per tick or per viewer. There is no `setTargetBitrate`: a file's bitrates are what they are.
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
  /** The frames in delivery order (starting at an IDR); of the top rung for a ladder. */
  readonly frames: readonly LoadedFrame[];
  /** The folder the frames came from (the top rung's for a ladder). */
  readonly dir: string;
  /** Every rung's folder, highest first (one for a single folder). */
  readonly dirs: readonly string[];
  /**
   * What each rung is, highest first: size from its SPS, bitrate (given or measured), label. A
   * single folder describes its one rendition; only a ladder (two or more) tags its frames.
   */
  readonly renditions: readonly Rendition[];
  /** The `profile-level-id` of the first SPS among the frames (undefined without one). */
  readonly profileLevelId?: string;
  readonly #loop: boolean;
  readonly #log: Logger;
  readonly #onEnd?: () => void;
  readonly #clock?: PacerClock;
  readonly #maxLagMs?: number;
  readonly #skipToKeyframe: boolean;
  /** Each rung's frames, highest first (`#rungs[0] === frames`). */
  readonly #rungs: readonly (readonly LoadedFrame[])[];
  /** Index of the next frame to deliver (grows without bound; taken modulo the frame count). */
  #position = 0;
  #keyframeRequested = false;
  #skipped = 0;
  #pacer?: Pacer;
  #stopped = false;
  #ended = false;
  #delivered = 0;

  private constructor(
    rungs: readonly LoadedRung[],
    renditions: Rendition[],
    options: Omit<FileVideoSourceOptions, "dir">,
  ) {
    this.dir = rungs[0].dir;
    this.dirs = rungs.map((r) => r.dir);
    this.#rungs = rungs.map((r) => r.frames);
    this.frames = rungs[0].frames;
    this.renditions = renditions;
    for (const f of this.frames) {
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
    checkFps(options.fps, options.dir);
    const rung = await FileVideoSource.#load(options.dir);
    return FileVideoSource.fromFrames(rung.frames, { ...options, dir: rung.dir });
  }

  /**
   * Read and validate the folders of a ladder, highest rung first, as {@link FileVideoSource.open}
   * reads one, and check that they are aligned: as many frames each, IDRs at the same frames.
   * Throws {@link MediaSourceError} naming the folder that differs and where.
   *
   * @example
   * ```ts
   * import { FileVideoSource } from "./file_source.ts";
   * const ladder = await FileVideoSource.openLadder({
   *   rungs: ["samples/h264", "samples/h264-360p"],
   *   fps: 25,
   * });
   * console.log(ladder.renditions.map((r) => r.label)); // ["720p", "360p"]
   * ```
   */
  static async openLadder(options: FileVideoLadderOptions): Promise<FileVideoSource> {
    checkFps(options.fps, options.rungs.map(rungDir).join(", "));
    const rungs: LoadedRung[] = [];
    for (const given of options.rungs) {
      const spec = typeof given === "string" ? { dir: given } : given;
      rungs.push({ ...spec, ...await FileVideoSource.#load(spec.dir) });
    }
    return FileVideoSource.fromLadder(rungs, options);
  }

  /** Read every frame of a folder or base URL, each validated (a bad file named). */
  static async #load(dir: string): Promise<{ dir: string; frames: LoadedFrame[] }> {
    if (/^https?:\/\//i.test(dir)) return await FileVideoSource.#fetchAll(dir);
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
    return { dir, frames };
  }

  static async #fetchAll(base: string): Promise<{ dir: string; frames: LoadedFrame[] }> {
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
    return { dir: root, frames };
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
    return FileVideoSource.fromLadder([{ dir: options.dir, frames }], options);
  }

  /**
   * Build a ladder from rungs already in memory, highest first (validated and checked for
   * alignment as {@link FileVideoSource.openLadder} does). One rung is a single folder.
   *
   * @example
   * ```ts
   * import { FileVideoSource } from "./file_source.ts";
   * const idr = new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88]);
   * const source = FileVideoSource.fromLadder([
   *   { dir: "high", frames: [{ name: "a", data: idr, keyframe: true }], bitrateBps: 2_000_000 },
   *   { dir: "low", frames: [{ name: "a", data: idr, keyframe: true }], bitrateBps: 500_000 },
   * ], {});
   * ```
   */
  static fromLadder(
    rungs: readonly LoadedRung[],
    options: Omit<FileVideoSourceOptions, "dir">,
  ): FileVideoSource {
    if (rungs.length === 0) throw new MediaSourceError("a ladder needs at least one folder");
    checkFps(options.fps, rungs[0].dir);
    for (const { dir, frames } of rungs) {
      if (frames.length === 0) throw new MediaSourceError("no frames", dir);
      for (const f of frames) {
        const info = inspectAccessUnit(f.data, `${dir}/${f.name}`);
        if (info.keyframe !== f.keyframe) {
          throw new H264Error(`keyframe flag ${f.keyframe} does not match the data`, f.name);
        }
      }
    }
    const { dir, frames } = rungs[0];
    const first = frames.findIndex((f) => f.keyframe);
    if (first < 0) {
      throw new MediaSourceError(
        `none of the ${frames.length} frames is an IDR: a decoder could never start`,
        dir,
      );
    }
    checkAligned(rungs);
    const fps = options.fps ?? 25;
    const renditions = rungs.map((r) => describeRung(r, fps, r));
    checkHighestFirst(renditions, rungs.map((r) => r.dir));
    const log = options.logger ?? silentLogger;
    let ordered = rungs;
    if (first > 0) {
      log.warn(`${frames[0].name} is not an IDR: starting at ${frames[first].name}`, { dir });
      // Looping: rotate so the cycle is unchanged; one-shot: drop the undecodable head. The
      // rungs' IDRs are at the same frames: each turns the same way.
      const turn = (f: LoadedFrame[]) =>
        (options.loop ?? true) ? [...f.slice(first), ...f.slice(0, first)] : f.slice(first);
      ordered = rungs.map((r) => ({ ...r, frames: turn(r.frames) }));
    }
    return new FileVideoSource(ordered, renditions, options);
  }

  /** Frames delivered since `start()` (ticks: a ladder delivers one frame of each rung per tick). */
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
        const index = this.#position % count;
        this.#position++;
        this.#delivered++;
        if (this.#rungs.length === 1) {
          const f = this.frames[index];
          onFrame({ data: f.data, timestampUs: tick.timestampUs, keyframe: f.keyframe });
          return;
        }
        for (let rendition = 0; rendition < this.#rungs.length; rendition++) {
          const f = this.#rungs[rendition][index];
          try {
            onFrame({
              data: f.data,
              timestampUs: tick.timestampUs,
              keyframe: f.keyframe,
              rendition,
            });
          } catch (e) {
            // The other rungs' frames of this instant still go.
            this.#log.error("frame consumer threw", { error: e });
          }
        }
      },
    });
    const what = this.#rungs.length === 1
      ? this.dir
      : this.renditions.map((r, i) => `${this.dirs[i]} (${r.label}, ${mbps(r.bitrateBps)})`)
        .join(", ");
    this.#log.info(`streaming ${count} frames from ${what} at ${this.fps} fps`);
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

function checkFps(fps: number | undefined, dir: string): void {
  const value = fps ?? 25;
  if (!Number.isFinite(value) || value <= 0 || value > 240) {
    throw new MediaSourceError(`fps must be a number in (0, 240], got ${fps}`, dir);
  }
}

function rungDir(rung: string | FileRung): string {
  return typeof rung === "string" ? rung : rung.dir;
}

function mbps(bps: number): string {
  return `${(bps / 1e6).toFixed(2)} Mb/s`;
}
