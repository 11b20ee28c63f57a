/**
 * The master's signaling client: the public face of the signaling state machine
 * (`machine.ts`, the C SDK's state names and error routing) and its driver (`driver.ts`), which
 * runs the machine's commands against the KVS control plane, the endpoint cache, the ICE server
 * cache (`ice_config.ts`) and the signaling WebSocket (`socket.ts`). The client decodes the
 * viewers' messages into events and encodes ours.
 *
 * Cold start takes at most four sequential round trips to Connected: credentials → Describe →
 * Get Endpoint → (ICE config ∥ WebSocket open). With a fresh endpoint cache entry, Describe and
 * Get Endpoint are skipped.
 *
 * A connection that carried no message for `idleReconnectMs` (9 min, under the service's 10 min
 * idle limit) is replaced proactively, make-before-break, as is every connection at
 * `maxConnectionAgeMs` (55 min, under the 1 h limit); see `socket.ts` for the keep-alive.
 *
 * Credentials are fetched again only when they near expiry or the service refused them (401/403
 * on a call or on the WebSocket upgrade), not after every failed connection. Deno shows a refused
 * upgrade's status only over HTTP/1.1; when it is hidden, three failed connections lead back to
 * Describe Channel, where a control-plane 401/403 gets new credentials. One failed connection
 * to an endpoint from the endpoint cache drops that entry and describes the channel again; a
 * freshly fetched endpoint is given three tries. A credential failure that cannot heal on its own
 * ({@link import("../credentials/errors.ts").CredentialsError} with `fatal`) stops the client.
 *
 * @module
 */
import type { IceServer, SignalingControlPlane } from "../aws/types.ts";
import type { CredentialProvider } from "../credentials/types.ts";
import { KvsError } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import { SignalingDriver } from "./driver.ts";
import type { EndpointCache } from "./endpoint_cache.ts";
import { SignalingError } from "./errors.ts";
import {
  type CandidatePayload,
  decodeSignalingMessage,
  encodeAnswer,
  encodeCandidate,
  type ReceivedSignalingMessage,
  SignalingMessageError,
  type SignalingStatusResponse,
} from "./messages.ts";
import { describeError, type WebSocketFactory } from "./socket.ts";
import type { SignalingState } from "./states.ts";

export type { WebSocketFactory, WebSocketLike } from "./socket.ts";

/**
 * Events of {@link SignalingClient} and their payloads.
 *
 * @example
 * ```ts
 * import type { SignalingEventMap } from "./client.ts";
 * const onOffer = (e: SignalingEventMap["offer"]) => console.log(e.viewerId, e.sdp.length);
 * ```
 */
export interface SignalingEventMap {
  /** A state transition. */
  state: { state: SignalingState; previous: SignalingState };
  /** A viewer's offer. */
  offer: { viewerId: string; sdp: string };
  /**
   * A viewer's trickled candidate, as it arrived: it may come before that viewer's offer (the
   * service does not keep their order), so whoever answers offers holds such candidates.
   */
  candidate: { viewerId: string; candidate: CandidatePayload };
  /** The service rejected a message we sent. */
  status: { viewerId?: string; statusResponse: SignalingStatusResponse };
  /** New ICE servers (after a refresh or RECONNECT_ICE_SERVER). */
  iceServers: { iceServers: IceServer[] };
  /**
   * Something failed; the client retries on its own, unless the error is a fatal
   * {@link import("../credentials/errors.ts").CredentialsError}: then the client has stopped
   * (see {@link SignalingClient.fatalError}).
   */
  error: { error: KvsError; state: SignalingState };
}

/**
 * Options of {@link SignalingClient}.
 *
 * @example
 * ```ts
 * import type { SignalingClientOptions } from "./client.ts";
 * import type { SignalingControlPlane } from "../aws/types.ts";
 * declare const controlPlane: SignalingControlPlane;
 * const options: SignalingClientOptions = {
 *   channelName: "demo-channel",
 *   region: "us-west-2",
 *   controlPlane,
 *   endpointCache: false,
 * };
 * ```
 */
export interface SignalingClientOptions {
  /** Channel name. */
  channelName: string;
  /** AWS region (for the STUN server and the endpoint cache key). */
  region: string;
  /** Control plane, e.g. `KvsClient`. */
  controlPlane: SignalingControlPlane;
  /** Credentials, refreshed in Get Security Credentials (forced after a 401/403). */
  credentials?: CredentialProvider;
  /** ClientId for Get ICE Server Configuration. Default `ProducerMaster`. */
  clientId?: string;
  /** Logger; state transitions at info. Default silent. */
  logger?: Logger;
  /** Log SDP bodies at debug (`DEBUG_LOG_SDP`). */
  logSdp?: boolean;
  /** WebSocket factory. Default: the global `WebSocket`, with `caCerts` when given. */
  webSocketFactory?: WebSocketFactory;
  /** Extra CA certificates (PEM) for the default WebSocket factory (`AWS_KVS_CACERT_PATH`). */
  caCerts?: string[];
  /** Endpoint cache, or `false` to disable. Default: `.SignalingCache_v0` in the cwd. */
  endpointCache?: EndpointCache | false;
  /**
   * Control-plane endpoint override, part of the endpoint cache key, so entries fetched through
   * another endpoint (an emulator, another stage) are never used. Default: the control plane's
   * `endpoint` when it has one other than the region's standard endpoint.
   */
  endpointOverride?: string;
  /** Create the channel when Describe says it does not exist. Default true. */
  createChannel?: boolean;
  /** STUN URL added to the ICE servers, or `false`. Default the region's KVS STUN server. */
  stunUrl?: string | false;
  /** Replace the connection after this long (ms). Default 55 min. */
  maxConnectionAgeMs?: number;
  /** Replace a connection that carried no message for this long (ms). Default 9 min. */
  idleReconnectMs?: number;
  /** Socket liveness check period (ms). Default 10 s. */
  keepAliveIntervalMs?: number;
  /** Give up opening a WebSocket after this long (ms). Default 10 s. */
  connectTimeoutMs?: number;
  /** Wait between Describe calls while the channel is not ACTIVE (ms). Default 1 s. */
  describePollMs?: number;
  /** Reconnect backoff: base, cap, healthy period (ms). Defaults 100, 10 000, 30 000. */
  backoff?: { baseMs?: number; capMs?: number; healthyMs?: number };
  /** Outgoing messages held while reconnecting. Default 256. */
  maxOutbox?: number;
  /** Random source in [0, 1). */
  random?: () => number;
}

/**
 * A listener of {@link SignalingClient} events of type `K`.
 *
 * @example
 * ```ts
 * import type { SignalingListener } from "./client.ts";
 * const onState: SignalingListener<"state"> = ({ state, previous }) => console.log(previous, state);
 * ```
 */
export type SignalingListener<K extends keyof SignalingEventMap> = (
  detail: SignalingEventMap[K],
) => void;

/**
 * Signaling client of a KVS master. Never throws out of its loop: failures become `error`
 * events and retries. A credential failure that cannot heal on its own (a missing or broken
 * certificate file, a key that does not match, an expired certificate, an IoT 403/404 before any
 * success) is the exception: it is emitted as an `error` event with `error.fatal` set, the client
 * stops, {@link SignalingClient.fatalError} holds it and {@link SignalingClient.waitForState}
 * rejects with it. The caller reports it (it is logged at debug only).
 *
 * @example
 * ```ts
 * import { SignalingClient } from "./client.ts";
 * import type { SignalingControlPlane } from "../aws/types.ts";
 * declare const controlPlane: SignalingControlPlane;
 * const client = new SignalingClient({ channelName: "demo-channel", region: "us-west-2", controlPlane });
 * client.on("state", ({ state }) => console.log(state));
 * client.on("offer", ({ viewerId, sdp }) => client.sendAnswer(viewerId, sdp));
 * client.start();
 * await client.waitForState("Connected", 30_000);
 * await client.close();
 * ```
 */
export class SignalingClient {
  readonly #o: SignalingClientOptions;
  readonly #log: Logger;
  readonly #listeners = new Map<string, Set<(d: unknown) => void>>();
  readonly #driver: SignalingDriver;

  /** Create a client; nothing happens until {@link SignalingClient.start}. */
  constructor(options: SignalingClientOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#driver = new SignalingDriver(options, this.#log, {
      emit: (type, detail) => this.#emit(type, detail),
      message: (data, current) => this.#onMessage(data, current),
    });
  }

  /** Current state. */
  get state(): SignalingState {
    return this.#driver.state;
  }

  /** Channel ARN once known. */
  get channelArn(): string | undefined {
    return this.#driver.machine.channelArn;
  }

  /** Whether the last Describe/Get Endpoint was skipped thanks to the endpoint cache. */
  get usedEndpointCache(): boolean {
    return this.#driver.machine.fromCache;
  }

  /**
   * The failure that stopped the client because it cannot heal on its own (a fatal
   * {@link import("../credentials/errors.ts").CredentialsError}), or `undefined`.
   */
  get fatalError(): KvsError | undefined {
    return this.#driver.fatalError;
  }

  /**
   * Subscribe to an event; returns an unsubscribe function. A listener that throws is logged
   * and does not disturb the client.
   */
  on<K extends keyof SignalingEventMap>(type: K, listener: SignalingListener<K>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, set = new Set());
    const fn = listener as (d: unknown) => void;
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Start the state machine (idempotent). */
  start(): void {
    this.#driver.start();
  }

  /**
   * Resolve when the client reaches `state`; reject with {@link SignalingError} after
   * `timeoutMs` or when the client is closed first, or with the fatal error that stopped it.
   */
  waitForState(state: SignalingState, timeoutMs = 30_000): Promise<void> {
    if (this.state === state) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        off();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(
        () => done(new SignalingError(this.state, `state ${state} not reached in ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onClose = () =>
        done(
          this.fatalError ??
            new SignalingError(this.state, `client closed before reaching ${state}`),
        );
      const unsubscribe = this.on("state", (s) => {
        if (s.state === state) done();
      });
      const off = () => {
        unsubscribe();
        this.#driver.signal.removeEventListener("abort", onClose);
      };
      if (this.#driver.signal.aborted) return onClose();
      this.#driver.signal.addEventListener("abort", onClose, { once: true });
    });
  }

  /**
   * The current ICE servers: TURN servers from the last Get ICE Server Configuration plus the
   * region's STUN server.
   */
  iceServers(): IceServer[] {
    return this.#driver.iceServers();
  }

  /**
   * Send our answer to a viewer. Throws {@link import("./messages.ts").SignalingMessageError}
   * for an empty viewer id or an answer over 10 KB; while reconnecting the message is held and
   * sent once Connected.
   */
  sendAnswer(viewerId: string, sdp: string): void {
    if (this.#o.logSdp) this.#log.debug(`SDP answer for ${viewerId}`, { sdp });
    this.#driver.send(encodeAnswer(viewerId, sdp));
  }

  /** Trickle one of our candidates to a viewer (held while reconnecting). */
  sendCandidate(viewerId: string, candidate: CandidatePayload): void {
    this.#driver.send(encodeCandidate(viewerId, candidate));
  }

  /** Stop: close the socket, cancel timers, let the calls in flight end. */
  close(): Promise<void> {
    return this.#driver.close();
  }

  /** Stop the client, then delete the channel (state Delete). Errors are thrown to the caller. */
  deleteChannel(): Promise<void> {
    return this.#driver.deleteChannel();
  }

  #emit<K extends keyof SignalingEventMap>(type: K, detail: SignalingEventMap[K]): void {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(detail);
      } catch (e) {
        this.#log.error(`A ${type} listener threw`, { error: e });
      }
    }
  }

  // ---------------------------------------------------------------- messages

  #onMessage(data: unknown, current: boolean): void {
    let msg: ReceivedSignalingMessage;
    try {
      if (typeof data !== "string") {
        throw new SignalingMessageError(
          "message",
          "binary signaling frame ignored (the service sends JSON text frames)",
        );
      }
      msg = decodeSignalingMessage(data);
    } catch (e) {
      const error = e instanceof KvsError
        ? e
        : new SignalingError(this.state, describeError(e), { cause: e });
      this.#log.warn(`Ignoring signaling message: ${error.message}`);
      this.#emit("error", { error, state: this.state });
      return;
    }
    switch (msg.type) {
      case "SDP_OFFER": {
        const viewerId = msg.senderClientId;
        this.#log.info(`Offer from ${viewerId}`);
        if (this.#o.logSdp) this.#log.debug(`SDP offer from ${viewerId}`, { sdp: msg.sdp });
        this.#emit("offer", { viewerId, sdp: msg.sdp });
        break;
      }
      case "ICE_CANDIDATE":
        this.#emit("candidate", { viewerId: msg.senderClientId, candidate: msg.candidate });
        break;
      case "GO_AWAY":
        if (current) this.#driver.dispatch({ type: "goaway" });
        break;
      case "RECONNECT_ICE_SERVER":
        this.#log.info("RECONNECT_ICE_SERVER received: refreshing ICE servers");
        this.#driver.dispatch({ type: "reconnect-ice" });
        break;
      case "STATUS_RESPONSE":
        this.#log.warn("Signaling status response", { ...msg.statusResponse });
        this.#emit("status", {
          viewerId: msg.senderClientId,
          statusResponse: msg.statusResponse ?? {},
        });
        break;
      case "SDP_ANSWER":
        this.#log.warn(`Unexpected SDP_ANSWER from ${msg.senderClientId} ignored (we are master)`);
        break;
    }
  }
}
