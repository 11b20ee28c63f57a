/**
 * An {@link AudioSource} that loops the Opus packets of an Ogg Opus file in real time, in step
 * with a {@link FileVideoSource} loop.
 *
 * @module
 */
import type { AudioPacket, AudioSource } from "./audio_types.ts";
import type { VideoSource } from "./types.ts";
import type { FileVideoSource } from "./file_source.ts";
import { AudioTimestamper } from "./audio_timestamps.ts";
import { MediaSourceError } from "./errors.ts";
import { OggOpusReader } from "./ogg_opus_reader.ts";
import { inspectOpusPacket } from "./opus.ts";
import { Pacer, type PacerClock, type PacerTick } from "./pacer.ts";
import { type Logger, silentLogger } from "../log.ts";

/** Options of {@link FileAudioSource.open}. */
export interface FileAudioSourceOptions {
  /** An Ogg Opus file (`samples/opus/tones.opus`), or an `http(s)://` URL of one. */
  path: string;
  /** Start again at the first packet after the last (default true). */
  loop?: boolean;
  /**
   * Clock and timers for pacing (default: `performance.now()` and `setTimeout`): give the video
   * source the same one.
   */
  clock?: PacerClock;
  /** Re-anchor pacing when more than this far behind, ms (default 500), as the video does. */
  maxLagMs?: number;
  /** Logger (default silent). */
  logger?: Logger;
  /** Called once when a non-looping source has delivered its last packet. */
  onEnd?: () => void;
}

/** Extra options of {@link FileAudioSource.fromPackets}. */
export interface AudioPacketsOptions extends FileAudioSourceOptions {
  /** Channels (1 or 2) the packets decode to (default: 2 if the first packet is stereo, else 1). */
  channels?: number;
}

/**
 * Loops the packets of an Ogg Opus file, one every packet duration (20 ms for the samples), paced
 * by a {@link Pacer} on a monotonic clock without drift, the way {@link FileVideoSource} paces
 * frames. The whole file is read and checked when the source opens (every packet's framing; all
 * must last the same) and kept in memory: looping parses nothing. Pre-skip and end trimming are
 * not applied: every packet plays whole, so a loop lasts `packets × duration` (the RTP receiver
 * decodes a continuous stream and drops nothing). The same `Uint8Array` of a packet is handed out
 * on every loop: consumers must not modify it.
 *
 * **In step with the video.** Both loops run a {@link Pacer} on the same clock (`clock`) and
 * stamp packets and frames with its deadlines, so media due at the same instant carries the same
 * `timestampUs` (and RTP timestamps from one time base, `× 0.048` and `× 0.09`). With the same
 * loop period (the samples: 500 packets of 20 ms, 250 frames at 25 fps, 10 s) and a shared start
 * (both started in the same turn, as the master does) packet 2n plays with frame n, loop after
 * loop. A video file loop is more than time, though: it rests while nobody watches, and jumps
 * ahead to its next IDR when a viewer joins. {@link FileAudioSource.follow} keeps the audio in
 * step through that: it wraps the video source (give the wrapper to the master), learns from each
 * frame it delivers where in its loop the video is, and picks each audio packet from that
 * position plus the time since that frame. Without `follow`, the audio loops on its own.
 *
 * @example
 * ```ts
 * import { FileAudioSource, FileVideoSource } from "./mod.ts";
 * const frames = await FileVideoSource.open({ dir: "samples/h264", fps: 25 });
 * const audio = await FileAudioSource.open({ path: "samples/opus/tones.opus" });
 * const video = audio.follow(frames); // the master's `source`; `audio` next to it
 * video.start((frame) => console.log("frame", frame.timestampUs));
 * audio.start((packet) => console.log("audio", packet.timestampUs, packet.timestamp48k));
 * setTimeout(() => {
 *   audio.stop();
 *   video.stop();
 * }, 1000);
 * ```
 */
export class FileAudioSource implements AudioSource {
  /** Always Opus. */
  readonly codec = "opus" as const;
  /** Channels of the file (1 or 2). */
  readonly channels: number;
  /** The file (or URL) the packets came from. */
  readonly path: string;
  /** The packets in delivery order. */
  readonly packets: readonly Uint8Array[];
  /** Duration of every packet at 48 kHz (960 for 20 ms). */
  readonly packetSamples: number;
  /** One pass over the packets, ms (10 000 for the samples). */
  readonly loopMs: number;
  readonly #loop: boolean;
  readonly #log: Logger;
  readonly #onEnd?: () => void;
  readonly #clock?: PacerClock;
  readonly #maxLagMs?: number;
  readonly #stamps = new AudioTimestamper();
  /** Index of the next packet (grows without bound; taken modulo the packet count). */
  #position = 0;
  #last = -1;
  #pacer?: Pacer;
  #stopped = false;
  #ended = false;
  #delivered = 0;
  /** Set by {@link FileAudioSource.follow}. */
  #follow?: {
    indexOf: Map<Uint8Array, number>;
    frameUs: number;
    latest?: { contentUs: number; timestampUs: number };
  };

  private constructor(
    path: string,
    packets: Uint8Array[],
    channels: number,
    samples: number,
    o: FileAudioSourceOptions,
  ) {
    this.path = path;
    this.packets = packets;
    this.channels = channels;
    this.packetSamples = samples;
    this.loopMs = (packets.length * samples) / 48;
    this.#loop = o.loop ?? true;
    this.#log = o.logger ?? silentLogger;
    this.#onEnd = o.onEnd;
    this.#clock = o.clock;
    this.#maxLagMs = o.maxLagMs;
  }

  /**
   * Read and check the Ogg Opus file at `options.path`. Throws {@link MediaSourceError} for a
   * missing file, no audio, more than two channels or packets of different durations, and
   * {@link OggError} / {@link OpusError} naming the file for invalid data.
   */
  static async open(options: FileAudioSourceOptions): Promise<FileAudioSource> {
    const path = options.path;
    let bytes: Uint8Array;
    if (/^https?:\/\//i.test(path)) {
      let res: Response;
      try {
        res = await fetch(path);
      } catch (e) {
        throw new MediaSourceError(`cannot fetch (${(e as Error).message})`, path, { cause: e });
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new MediaSourceError(`fetching the audio answered ${res.status}`, path);
      }
      bytes = new Uint8Array(await res.arrayBuffer());
    } else {
      try {
        bytes = await Deno.readFile(path);
      } catch (e) {
        const why = e instanceof Deno.errors.NotFound
          ? "audio file not found"
          : `cannot read the audio file (${(e as Error).message})`;
        throw new MediaSourceError(why, path, { cause: e });
      }
    }
    const reader = new OggOpusReader({ source: path });
    const packets = [...reader.push(bytes), ...reader.end()];
    const head = reader.head!;
    if (head.mappingFamily !== 0) {
      throw new MediaSourceError(
        `${head.channels} channels in channel mapping family ${head.mappingFamily}: WebRTC ` +
          "carries mono or stereo Opus (family 0)",
        path,
      );
    }
    return FileAudioSource.fromPackets(packets.map((p) => p.data), {
      ...options,
      channels: head.channels,
    });
  }

  /**
   * Build a source from Opus packets already in memory (checked the same way). `options.path`
   * only names them in errors.
   *
   * @example
   * ```ts
   * import { FileAudioSource } from "./file_audio_source.ts";
   * const silence = new Uint8Array([0xf8, 0xff, 0xfe]); // CELT fullband 20 ms
   * const source = FileAudioSource.fromPackets(new Array(50).fill(silence), { path: "memory" });
   * source.loopMs; // 1000
   * ```
   */
  static fromPackets(packets: Uint8Array[], options: AudioPacketsOptions): FileAudioSource {
    const path = options.path;
    if (packets.length === 0) throw new MediaSourceError("no audio packets", path);
    let samples = 0;
    let stereo = false;
    packets.forEach((p, i) => {
      const info = inspectOpusPacket(p, `${path}: packet ${i + 1}`);
      if (i === 0) {
        samples = info.samples;
        stereo = info.stereo;
      } else if (info.samples !== samples) {
        throw new MediaSourceError(
          `packet ${i + 1} lasts ${info.samples / 48} ms, the first ${samples / 48} ms: ` +
            "a loop is paced at one packet duration",
          path,
        );
      }
    });
    const channels = options.channels ?? (stereo ? 2 : 1);
    if (channels !== 1 && channels !== 2) {
      throw new MediaSourceError(`${channels} channels: WebRTC carries mono or stereo Opus`, path);
    }
    return new FileAudioSource(path, packets, channels, samples, options);
  }

  /** Packets delivered since `start()`. */
  get delivered(): number {
    return this.#delivered;
  }

  /**
   * Keep this audio loop in step with a looping `video` source, through its rests and its jumps
   * to a keyframe: returns a {@link VideoSource} that is `video` (same frames, same calls) and
   * tells the audio where the video is in its loop. Give the returned source to the master in
   * place of `video`. Throws {@link MediaSourceError} when the two loops do not last the same
   * (they would drift apart) or this source does not loop.
   *
   * @example
   * ```ts
   * import { FileAudioSource, FileVideoSource } from "./mod.ts";
   * const audio = await FileAudioSource.open({ path: "samples/opus/tones.opus" });
   * const video = audio.follow(await FileVideoSource.open({ dir: "samples/h264", fps: 25 }));
   * ```
   */
  follow(video: FileVideoSource): VideoSource {
    const videoUs = (video.frames.length * 1e6) / video.fps;
    if (Math.abs(videoUs - this.loopMs * 1000) > 1) {
      throw new MediaSourceError(
        `the audio loop lasts ${this.loopMs / 1000} s, the video loop (${video.dir}) ` +
          `${videoUs / 1e6} s: they would drift apart`,
        this.path,
      );
    }
    if (!this.#loop) {
      throw new MediaSourceError("only a looping source can follow video", this.path);
    }
    const follow = this.#follow = {
      indexOf: new Map(video.frames.map((f, i) => [f.data, i])),
      frameUs: 1e6 / video.fps,
      latest: undefined as { contentUs: number; timestampUs: number } | undefined,
    };
    return {
      codec: "h264",
      get profileLevelId() {
        return video.profileLevelId;
      },
      renditions: video.renditions,
      start: (onFrame) =>
        video.start((frame) => {
          // A ladder's other rungs share the top rung's timestamps: its frames alone tell.
          const index = follow.indexOf.get(frame.data);
          if (index !== undefined) {
            follow.latest = { contentUs: index * follow.frameUs, timestampUs: frame.timestampUs };
          }
          onFrame(frame);
        }),
      stop: () => video.stop(),
      idle: (idle) => video.idle(idle),
      requestKeyframe: () => video.requestKeyframe(),
    };
  }

  /** Begin delivering packets. Throws {@link MediaSourceError} if already started. */
  start(onPacket: (packet: AudioPacket) => void): void {
    if (this.#pacer) throw new MediaSourceError("source already started", this.path);
    this.#pacer = new Pacer({
      fps: 48000 / this.packetSamples,
      clock: this.#clock,
      maxLagMs: this.#maxLagMs,
      onStall: (lag) =>
        this.#log.warn(`audio pacing stalled ${lag.toFixed(0)} ms: skipping ahead`, {
          path: this.path,
        }),
      onError: (e) => this.#log.error("audio packet consumer threw", { error: e }),
      onTick: (tick) => this.#tick(tick, onPacket),
    });
    this.#log.info(
      `streaming ${this.packets.length} Opus packets of ${this.packetSamples / 48} ms from ` +
        `${this.path}${this.#follow ? " in step with the video" : ""}`,
    );
    this.#pacer.start();
  }

  /** Stop delivering packets. */
  stop(): void {
    this.#stopped = true;
    this.#pacer?.stop();
  }

  /**
   * Pause while no viewer receives (`true`), resume when one does (`false`), as
   * {@link FileVideoSource.idle} does. Timestamps go on increasing from where they were; a
   * followed video puts the audio back in step at once.
   */
  idle(idle: boolean): void {
    const p = this.#pacer;
    if (!p || this.#stopped || this.#ended) return;
    if (idle) p.stop();
    else if (!p.running) p.start();
  }

  #tick(tick: PacerTick, onPacket: (packet: AudioPacket) => void): void {
    const count = this.packets.length;
    const latest = this.#follow?.latest;
    if (latest && Math.abs(tick.timestampUs - latest.timestampUs) <= 2 * this.#follow!.frameUs) {
      // Where the video is in its loop now, in packets.
      const contentUs = latest.contentUs + (tick.timestampUs - latest.timestampUs);
      const packetUs = (this.packetSamples * 1000) / 48;
      let index = Math.round(contentUs / packetUs) % count;
      if (index < 0) index += count;
      if (index === this.#last) index = (index + 1) % count; // never the same packet twice
      this.#position = index;
    } else if (!this.#loop && this.#position >= count) {
      this.#ended = true;
      this.#pacer?.stop();
      this.#onEnd?.();
      return;
    }
    const index = this.#position % count;
    this.#position++;
    this.#last = index;
    this.#delivered++;
    const data = this.packets[index];
    onPacket({
      data,
      timestampUs: tick.timestampUs,
      timestamp48k: this.#stamps.stamp(tick.timestampUs, this.packetSamples),
      samples: this.packetSamples,
    });
  }
}
