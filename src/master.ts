/**
 * The master: one signaling client, one peer session per viewer (at most 10), and one video
 * source fanned out to every connected viewer, each starting at an IDR.
 *
 * @example
 * ```ts
 * import { startMaster } from "./master.ts";
 * import { FileVideoSource } from "./media/mod.ts";
 * import type { SignalingControlPlane } from "./aws/types.ts";
 * import type { PeerSessionFactory } from "./peer/types.ts";
 * declare const controlPlane: SignalingControlPlane;
 * declare const peerSessionFactory: PeerSessionFactory;
 * const master = await startMaster({
 *   channel: "demo-channel",
 *   region: "us-west-2",
 *   controlPlane,
 *   peerSessionFactory,
 *   source: await FileVideoSource.open({ dir: "samples/h264" }),
 * });
 * master.on("viewer", ({ viewerId, state }) => console.log(viewerId, state));
 * await master.close();
 * ```
 *
 * @module
 */
import type { SignalingControlPlane } from "./aws/types.ts";
import type { CredentialProvider } from "./credentials/types.ts";
import { KvsError } from "./errors.ts";
import { type Logger, silentLogger } from "./log.ts";
import { spsProfileLevelId } from "./media/h264.ts";
import type { AudioSource } from "./media/audio_types.ts";
import type { EncodedFrame, VideoSource } from "./media/types.ts";
import { TargetBitrate } from "./media/target_bitrate.ts";
import type {
  DataChannelInfo,
  PeerConnectionState,
  PeerSessionFactory,
  ViewerAudioPacket,
} from "./peer/types.ts";
import { SignalingClient, type SignalingClientOptions } from "./signaling/client.ts";
import type { SignalingState } from "./signaling/states.ts";
import type { ViewerAdmissionOptions, ViewersEventMap } from "./viewers/types.ts";
import type { AdaptationOptions } from "./viewers/rendition_selector.ts";
import type { ViewerStats } from "./viewers/viewer.ts";
import { Viewers } from "./viewers/viewers.ts";

/** The service's limit of viewers per channel. */
export const MAX_VIEWERS = 10;

/**
 * Options of {@link startMaster}.
 *
 * @example
 * ```ts
 * import type { MasterOptions } from "./master.ts";
 * import type { SignalingControlPlane } from "./aws/types.ts";
 * import type { PeerSessionFactory } from "./peer/types.ts";
 * import type { VideoSource } from "./media/types.ts";
 * declare const controlPlane: SignalingControlPlane;
 * declare const peerSessionFactory: PeerSessionFactory;
 * declare const source: VideoSource;
 * const options: MasterOptions = {
 *   channel: "demo-channel",
 *   region: "us-west-2",
 *   controlPlane,
 *   peerSessionFactory,
 *   source,
 *   maxViewers: 5,
 * };
 * ```
 */
export interface MasterOptions {
  /** Signaling channel name (created when it does not exist). */
  channel: string;
  /** AWS region. */
  region: string;
  /** The H.264 source fanned out to every viewer. Started by the master, stopped by `close()`. */
  source: VideoSource;
  /**
   * The Opus source sent to every viewer whose offer receives audio (its timestamps on the
   * video's clock). Started and stopped with the video. Without it no audio is sent.
   */
  audioSource?: AudioSource;
  /**
   * Take the audio viewers send (answering their audio `sendrecv`) and emit it as `audio`
   * events (default true).
   */
  receiveAudio?: boolean;
  /**
   * Answer viewers' data channels (default true): `message` events, {@link Master.send},
   * {@link Master.broadcast}.
   */
  dataChannels?: boolean;
  /**
   * Start a viewer who joins mid-GOP from the current GOP, sent to it at once (its first
   * picture without waiting for the next IDR, the others' stream untouched), instead of asking
   * the source for an IDR (default true).
   */
  fastStart?: boolean;
  /** Control plane (`KvsClient`). */
  controlPlane: SignalingControlPlane;
  /** Credentials, refreshed by the signaling client when they expire or are refused. */
  credentials?: CredentialProvider;
  /** Makes one media session per viewer (the WASM media core). */
  peerSessionFactory: PeerSessionFactory;
  /** Most viewers at once, 1 to 10 (default 10). Offers beyond it are refused clearly. */
  maxViewers?: number;
  /** Logger (default silent). */
  logger?: Logger;
  /** Further signaling client options (CA bundle, endpoint cache, timings, WebSocket factory). */
  signaling?: Partial<Omit<SignalingClientOptions, "channelName" | "region" | "controlPlane">>;
  /**
   * Shortest interval between keyframe requests passed on to the source, ms (default 500): a
   * burst of viewers joining or PLIs costs the source one IDR.
   */
  keyframeRequestIntervalMs?: number;
  /**
   * After a viewer's PLI/FIR, how long it waits for the source's next IDR before the source is
   * asked for one, ms (default 1000). One viewer's lost picture never makes the stream jump for
   * the others while a natural IDR is due; only that viewer waits for it.
   */
  keyframePatienceMs?: number;
  /**
   * Who gets a seat: a viewer holds one only once its first ICE check succeeded; before that its
   * offer waits at most `admissionWindowMs` (default 5000), at most `maxPending` offers wait at
   * once (default 20; the oldest answered `answerGraceMs` ago gives way to a new one), and each client id has
   * budgets of offers and candidates; a seated viewer silent for `reclaimSilentMs` (default
   * 4000) gives its seat to a new one. See {@link ViewerAdmissionOptions}.
   */
  admission?: ViewerAdmissionOptions;
  /**
   * With a ladder source ({@link VideoSource.renditions}, e.g. `FileVideoSource.openLadder`):
   * which rung a viewer starts on and when it moves, from its bandwidth estimate. Defaults: top
   * rung; down below 1.1 × its rung's bitrate held 0.5 s (or at once on a keyframe request below
   * 1.25 ×); up above 1.25 × the next rung's held 4 s. See {@link AdaptationOptions}.
   */
  adaptation?: AdaptationOptions;
}

/**
 * Events of a {@link Master}.
 *
 * @example
 * ```ts
 * import type { MasterEventMap } from "./master.ts";
 * const onLeft = (e: MasterEventMap["viewerLeft"]) => console.log(e.viewerId, e.reason);
 * ```
 */
export interface MasterEventMap {
  /** Signaling state transition (New … Connected, Disconnected, …). */
  state: { state: SignalingState; previous: SignalingState };
  /** A viewer's offer was accepted and its session created. */
  viewerJoined: { viewerId: string };
  /** A viewer's media session changed state. */
  viewer: { viewerId: string; state: PeerConnectionState };
  /** A viewer's session ended; its last counters. */
  viewerLeft: { viewerId: string; reason: string; stats: ViewerStats };
  /** Something failed (signaling, a refused or bad offer, a session); the master keeps serving. */
  error: { error: KvsError; viewerId?: string };
  /** An Opus packet a viewer sent (its microphone), decrypted. */
  audio: { viewerId: string; packet: ViewerAudioPacket };
  /** A data channel with a viewer opened (the KVS JS SDK viewer opens `kvsDataChannel`). */
  dataChannel: { viewerId: string; channel: DataChannelInfo };
  /** A message on a viewer's data channel: text as a string, binary as bytes. */
  message: { viewerId: string; channel: DataChannelInfo; data: string | Uint8Array };
  /** A data channel with a viewer closed. */
  dataChannelClosed: { viewerId: string; channel: DataChannelInfo };
  /** A viewer's bandwidth estimate changed notably, bits per second. */
  estimate: ViewersEventMap["estimate"];
  /**
   * A viewer moved to another rung of the source's ladder, at that rung's IDR: `rendition` (0:
   * the top one), its `label`, the `previous` rung and the `reason` (`estimate-low`,
   * `estimate-high`, `congestion`).
   */
  rendition: ViewersEventMap["rendition"];
}

/** A listener of {@link Master} events of type `K`. */
export type MasterListener<K extends keyof MasterEventMap> = (detail: MasterEventMap[K]) => void;

/**
 * A running master. Create it with {@link startMaster}.
 *
 * @example
 * ```ts
 * import type { Master } from "./master.ts";
 * declare const master: Master;
 * await master.waitForState("Connected");
 * setInterval(() => console.table(master.viewers()), 5000);
 * ```
 */
export class Master {
  /** The signaling client (state, channel ARN, ICE servers). */
  readonly signaling: SignalingClient;
  readonly #source: VideoSource;
  readonly #audio: AudioSource | undefined;
  readonly #factory: PeerSessionFactory;
  readonly #log: Logger;
  readonly #viewers: Viewers;
  readonly #listeners = new Map<string, Set<(d: unknown) => void>>();
  readonly #keyframeIntervalMs: number;
  #lastKeyframeRequest = -Infinity;
  #keyframeTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #targetBitrate = new TargetBitrate();
  #framesIn = 0;
  /** The source's `profile-level-id`, from the SPS of its latest IDR. */
  #profileLevelId: string | undefined;
  #closed = false;

  /** Use {@link startMaster}: it validates the options and starts everything. */
  constructor(options: MasterOptions) {
    const max = options.maxViewers ?? MAX_VIEWERS;
    if (!Number.isInteger(max) || max < 1 || max > MAX_VIEWERS) {
      throw new MasterError(`maxViewers must be an integer from 1 to ${MAX_VIEWERS}, got ${max}`);
    }
    this.#log = options.logger ?? silentLogger;
    this.#source = options.source;
    this.#audio = options.audioSource;
    this.#factory = options.peerSessionFactory;
    this.#keyframeIntervalMs = options.keyframeRequestIntervalMs ?? 500;
    this.signaling = new SignalingClient({
      logger: this.#log.child("signaling"),
      credentials: options.credentials,
      ...options.signaling,
      channelName: options.channel,
      region: options.region,
      controlPlane: options.controlPlane,
    });
    this.signaling.on("state", (e) => this.#emit("state", e));
    this.signaling.on("error", ({ error }) => this.#emit("error", { error }));
    this.#viewers = new Viewers({
      signaling: this.signaling,
      factory: options.peerSessionFactory,
      logger: this.#log,
      maxViewers: max,
      admission: options.admission,
      keyframePatienceMs: options.keyframePatienceMs,
      streamProfileLevelId: () => this.#profileLevelId ?? this.#source.profileLevelId,
      sendAudio: options.audioSource !== undefined,
      receiveAudio: options.receiveAudio,
      dataChannels: options.dataChannels,
      fastStart: options.fastStart,
      renditions: options.source.renditions,
      adaptation: options.adaptation,
    });
    this.#viewers.on("audio", (e) => this.#emit("audio", e));
    this.#viewers.on("dataChannel", (e) => this.#emit("dataChannel", e));
    this.#viewers.on("message", (e) => this.#emit("message", e));
    this.#viewers.on("dataChannelClosed", (e) => this.#emit("dataChannelClosed", e));
    this.#viewers.on("joined", (e) => this.#emit("viewerJoined", e));
    this.#viewers.on("state", (e) => this.#emit("viewer", e));
    this.#viewers.on("left", (e) => {
      this.#emit("viewerLeft", e);
      this.#updateTargetBitrate();
    });
    this.#viewers.on("estimate", (e) => {
      this.#emit("estimate", e);
      this.#updateTargetBitrate();
    });
    this.#viewers.on("rendition", (e) => this.#emit("rendition", e));
    this.#viewers.on("error", (e) => this.#emit("error", e));
    this.#viewers.on("keyframe", () => this.#requestKeyframe());
    this.#viewers.on("receiving", ({ receiving }) => this.#setIdle(!receiving));
  }

  /** Signaling state. */
  get state(): SignalingState {
    return this.signaling.state;
  }

  /** Frames received from the source so far (of a ladder, its top rung's: one per instant). */
  get framesIn(): number {
    return this.#framesIn;
  }

  /** Viewers holding a seat, and offers still waiting for their viewer's first ICE check. */
  get seats(): { seated: number; pending: number } {
    return this.#viewers.seats;
  }

  /** Counters of every current viewer. */
  viewers(): ViewerStats[] {
    return this.#viewers.stats();
  }

  /**
   * Send a message to a viewer on its data channel `channel` (an id or label; default its first
   * open one, the KVS SDK viewer's `kvsDataChannel`). Throws
   * {@link import("./peer/errors.ts").DataChannelError} naming why it cannot.
   *
   * @example
   * ```ts
   * import type { Master } from "./master.ts";
   * declare const master: Master;
   * master.on("message", ({ viewerId, data }) => master.send(viewerId, data)); // echo
   * ```
   */
  send(viewerId: string, data: string | Uint8Array, channel?: number | string): void {
    this.#viewers.send(viewerId, data, channel);
  }

  /**
   * Send a message to every viewer with an open data channel; returns how many it went to.
   *
   * @example
   * ```ts
   * import type { Master } from "./master.ts";
   * declare const master: Master;
   * setInterval(() => master.broadcast(JSON.stringify({ at: Date.now() })), 1000);
   * ```
   */
  broadcast(data: string | Uint8Array, channel?: number | string): number {
    return this.#viewers.broadcast(data, channel);
  }

  /**
   * Subscribe to an event; returns an unsubscribe function. A listener that throws is logged
   * and does not disturb the master.
   */
  on<K extends keyof MasterEventMap>(type: K, listener: MasterListener<K>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, set = new Set());
    set.add(listener as (d: unknown) => void);
    return () => set.delete(listener as (d: unknown) => void);
  }

  /** Resolve when signaling reaches `state`; reject after `timeoutMs` or on close. */
  waitForState(state: SignalingState, timeoutMs = 30_000): Promise<void> {
    return this.signaling.waitForState(state, timeoutMs);
  }

  /** @internal Start signaling and the source (called by {@link startMaster}). */
  start(): void {
    this.#factory.prepare?.().catch((e) =>
      this.#log.warn("Preparing the media sessions failed; the first viewer will retry", {
        error: e,
      })
    );
    this.signaling.start();
    this.#source.start((frame) => this.#onFrame(frame));
    this.#audio?.start((packet) => this.#viewers.writeAudio(packet));
    this.#setIdle(!this.#viewers.receiving);
  }

  /** Tell the source whether anyone receives its frames (a file loop rests meanwhile). */
  #setIdle(idle: boolean): void {
    if (this.#closed) return;
    try {
      this.#source.idle?.(idle);
    } catch (e) {
      this.#log.warn("The video source failed an idle change", { error: e });
    }
    try {
      this.#audio?.idle?.(idle);
    } catch (e) {
      this.#log.warn("The audio source failed an idle change", { error: e });
    }
  }

  /** Stop the source, close every session and the signaling connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#keyframeTimer !== undefined) clearTimeout(this.#keyframeTimer);
    try {
      await this.#source.stop();
    } catch (e) {
      this.#log.warn("The video source failed to stop", { error: e });
    }
    try {
      await this.#audio?.stop();
    } catch (e) {
      this.#log.warn("The audio source failed to stop", { error: e });
    }
    this.#viewers.close("master shutting down");
    await this.signaling.close();
  }

  /**
   * Tell a source that takes one the lowest estimate among the viewers receiving video (the
   * slowest viewer's pace), throttled by {@link TargetBitrate}: at once when it moved by more
   * than 10 %, else at most every 2 s. Looked at whenever an estimate arrives or a viewer leaves.
   */
  #updateTargetBitrate(): void {
    if (this.#closed || !this.#source.setTargetBitrate) return;
    const lowest = this.#viewers.lowestEstimate();
    const bps = lowest === undefined ? undefined : this.#targetBitrate.offer(lowest);
    if (bps === undefined) return;
    try {
      this.#source.setTargetBitrate(bps);
    } catch (e) {
      this.#log.warn("The video source failed a target bitrate", { error: e });
    }
  }

  #onFrame(frame: EncodedFrame): void {
    // A ladder's instant counts once (its top rung), and the stream's profile is the top rung's.
    if ((frame.rendition ?? 0) !== 0) {
      this.#viewers.writeFrame(frame);
      return;
    }
    this.#framesIn++;
    if (frame.keyframe) {
      this.#profileLevelId = spsProfileLevelId(frame.data) ?? this.#profileLevelId;
    }
    this.#viewers.writeFrame(frame);
  }

  /** Ask the source for an IDR, at most once per `keyframeRequestIntervalMs`. */
  #requestKeyframe(): void {
    if (this.#closed || this.#keyframeTimer !== undefined) return;
    const wait = this.#lastKeyframeRequest + this.#keyframeIntervalMs - performance.now();
    const ask = () => {
      this.#keyframeTimer = undefined;
      this.#lastKeyframeRequest = performance.now();
      try {
        this.#source.requestKeyframe?.();
      } catch (e) {
        this.#log.warn("The video source failed a keyframe request", { error: e });
      }
    };
    if (wait <= 0) ask();
    else this.#keyframeTimer = setTimeout(ask, wait);
  }

  #emit<K extends keyof MasterEventMap>(type: K, detail: MasterEventMap[K]): void {
    for (const fn of this.#listeners.get(type) ?? []) {
      try {
        fn(detail);
      } catch (e) {
        this.#log.error(`A ${type} listener threw`, { error: e });
      }
    }
  }
}

/**
 * A master-level failure (bad options, a session that could not take a frame).
 *
 * @example
 * ```ts
 * import { MasterError } from "./master.ts";
 * const e = new MasterError("maxViewers must be an integer from 1 to 10, got 11");
 * console.log(e.code); // "MASTER"
 * ```
 */
export class MasterError extends KvsError {
  /** Describe the failure. */
  constructor(message: string, options?: ErrorOptions) {
    super("MASTER", message, options);
  }
}

/**
 * Start a master: signaling runs its state machine to Connected (and keeps it there), every
 * viewer's offer gets a media session, and the source's frames go to every connected viewer.
 *
 * @example
 * ```ts
 * import { startMaster } from "./master.ts";
 * import { FileVideoSource } from "./media/mod.ts";
 * import type { SignalingControlPlane } from "./aws/types.ts";
 * import type { PeerSessionFactory } from "./peer/types.ts";
 * declare const controlPlane: SignalingControlPlane;
 * declare const peerSessionFactory: PeerSessionFactory;
 * const master = await startMaster({
 *   channel: "demo-channel",
 *   region: "us-west-2",
 *   controlPlane,
 *   peerSessionFactory,
 *   source: await FileVideoSource.open({ dir: "samples/h264" }),
 * });
 * await master.waitForState("Connected");
 * ```
 */
export function startMaster(options: MasterOptions): Promise<Master> {
  const master = new Master(options);
  master.start();
  return Promise.resolve(master);
}
