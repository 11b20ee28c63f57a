/**
 * The master's signaling client: a state machine over the KVS control plane and the signaling
 * WebSocket, with the C SDK's state names and error routing.
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
import { controlPlaneEndpoint } from "../aws/kvs_client.ts";
import type { IceServer, SignalingControlPlane, SignalingEndpoints } from "../aws/types.ts";
import { fatalCredentialsError } from "../credentials/errors.ts";
import type { CredentialProvider } from "../credentials/types.ts";
import { KvsError } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import { Backoff } from "./backoff.ts";
import { EndpointCache } from "./endpoint_cache.ts";
import { classifyControlPlaneError, SignalingConnectError, SignalingError } from "./errors.ts";
import { IceConfig } from "./ice_config.ts";
import {
  type CandidatePayload,
  decodeSignalingMessage,
  encodeAnswer,
  encodeCandidate,
  type ReceivedSignalingMessage,
  SignalingMessageError,
  type SignalingStatusResponse,
} from "./messages.ts";
import {
  defaultWebSocketFactory,
  describeError,
  SignalingSocket,
  type WebSocketFactory,
} from "./socket.ts";
import { type SignalingState, stateLogLine } from "./states.ts";

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

/** A listener of {@link SignalingClient} events of type `K`. */
export type SignalingListener<K extends keyof SignalingEventMap> = (
  detail: SignalingEventMap[K],
) => void;
type Wake = "closed" | "goaway" | "ice" | "maxage" | "idle" | "shutdown";

class Deferred<T> {
  resolve!: (v: T) => void;
  readonly promise: Promise<T>;
  constructor() {
    this.promise = new Promise<T>((r) => this.resolve = r);
  }
}

/** Thrown inside the loop when the ICE fetch that ran in parallel with Connecting failed. */
class IceStageFailure {
  constructor(readonly error: unknown) {}
}

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
  readonly #cp: SignalingControlPlane;
  readonly #log: Logger;
  readonly #cache: EndpointCache | undefined;
  readonly #override: string | undefined;
  readonly #socket: SignalingSocket;
  readonly #ice: IceConfig;
  readonly #reconnect: Backoff;
  readonly #retry: Backoff;
  readonly #listeners = new Map<string, Set<(d: unknown) => void>>();

  #state: SignalingState = "New";
  #loop: Promise<void> | undefined;
  #closed = false;
  #fatal: KvsError | undefined;
  #abort = new AbortController();

  #arn: string | undefined;
  #version: string | undefined;
  #endpoints: SignalingEndpoints | undefined;
  #fromCache = false;
  #forceCredentials = false;
  #credentialsExpiration: Date | undefined;
  /** The current socket is being replaced (GO_AWAY, age, idle): reconnect even if it is open. */
  #replacing = false;
  #connectFailures = 0;

  #icePending: Promise<void> | undefined;

  #wake: Deferred<Wake> | undefined;
  #pendingWake: Wake | undefined;

  /** Create a client; nothing happens until {@link SignalingClient.start}. */
  constructor(options: SignalingClientOptions) {
    this.#o = options;
    this.#cp = options.controlPlane;
    this.#log = options.logger ?? silentLogger;
    this.#cache = options.endpointCache === false
      ? undefined
      : options.endpointCache ?? new EndpointCache({ logger: this.#log });
    const cpEndpoint = options.endpointOverride ?? options.controlPlane.endpoint;
    const override = cpEndpoint?.trim().replace(/\/+$/, "");
    this.#override = override && override !== controlPlaneEndpoint(options.region)
      ? override
      : undefined;
    this.#socket = new SignalingSocket({
      factory: options.webSocketFactory ?? defaultWebSocketFactory(options.caCerts),
      signal: this.#abort.signal,
      logger: this.#log,
      connectTimeoutMs: options.connectTimeoutMs,
      maxOutbox: options.maxOutbox,
      onMessage: (data, current) => this.#onMessage(data, current),
      onClosed: () => this.#notify("closed"),
    });
    this.#ice = new IceConfig({
      controlPlane: options.controlPlane,
      region: options.region,
      clientId: options.clientId,
      stunUrl: options.stunUrl,
      logger: this.#log,
    });
    const b = options.backoff ?? {};
    this.#reconnect = new Backoff({ ...b, random: options.random });
    this.#retry = new Backoff({ ...b, random: options.random });
  }

  /** Current state. */
  get state(): SignalingState {
    return this.#state;
  }

  /** Channel ARN once known. */
  get channelArn(): string | undefined {
    return this.#arn;
  }

  /** Whether the last Describe/Get Endpoint was skipped thanks to the endpoint cache. */
  get usedEndpointCache(): boolean {
    return this.#fromCache;
  }

  /**
   * The failure that stopped the client because it cannot heal on its own (a fatal
   * {@link import("../credentials/errors.ts").CredentialsError}), or `undefined`.
   */
  get fatalError(): KvsError | undefined {
    return this.#fatal;
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
    if (this.#loop || this.#closed) return;
    this.#loop = this.#run().catch((e) => {
      this.#log.error("Signaling loop stopped unexpectedly", { error: e });
    });
  }

  /**
   * Resolve when the client reaches `state`; reject with {@link SignalingError} after
   * `timeoutMs` or when the client is closed first, or with the fatal error that stopped it.
   */
  waitForState(state: SignalingState, timeoutMs = 30_000): Promise<void> {
    if (this.#state === state) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        off();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(
        () =>
          done(new SignalingError(this.#state, `state ${state} not reached in ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onClose = () =>
        done(
          this.#fatal ??
            new SignalingError(this.#state, `client closed before reaching ${state}`),
        );
      const unsubscribe = this.on("state", (s) => {
        if (s.state === state) done();
      });
      const off = () => {
        unsubscribe();
        this.#abort.signal.removeEventListener("abort", onClose);
      };
      if (this.#closed || this.#fatal) return onClose();
      this.#abort.signal.addEventListener("abort", onClose, { once: true });
    });
  }

  /**
   * The current ICE servers: TURN servers from the last Get ICE Server Configuration plus the
   * region's STUN server.
   */
  iceServers(): IceServer[] {
    return this.#ice.iceServers();
  }

  /**
   * Send our answer to a viewer. Throws {@link import("./messages.ts").SignalingMessageError}
   * for an empty viewer id or an answer over 10 KB; while reconnecting the message is held and
   * sent once Connected.
   */
  sendAnswer(viewerId: string, sdp: string): void {
    if (this.#o.logSdp) this.#log.debug(`SDP answer for ${viewerId}`, { sdp });
    this.#send(encodeAnswer(viewerId, sdp));
  }

  /** Trickle one of our candidates to a viewer (held while reconnecting). */
  sendCandidate(viewerId: string, candidate: CandidatePayload): void {
    this.#send(encodeCandidate(viewerId, candidate));
  }

  /** Stop: close the socket, cancel timers, end the loop. */
  async close(): Promise<void> {
    if (this.#closed) {
      await this.#loop;
      return;
    }
    this.#closed = true;
    this.#abort.abort();
    this.#notify("shutdown");
    await this.#loop;
    this.#socket.close();
  }

  /** Stop the client, then delete the channel (state Delete). Errors are thrown to the caller. */
  async deleteChannel(): Promise<void> {
    await this.close();
    this.#setState("Delete");
    try {
      let arn = this.#arn;
      let version = this.#version;
      if (!arn || !version) {
        const info = await this.#cp.describeSignalingChannel(this.#o.channelName);
        arn = info.ChannelARN;
        version = info.Version;
      }
      await this.#cp.deleteSignalingChannel(arn, version);
      await this.#invalidateCache();
    } catch (e) {
      throw e instanceof KvsError ? e : new SignalingError(
        "Delete",
        `deleting channel ${this.#o.channelName} failed: ${describeError(e)}`,
        { cause: e },
      );
    }
  }

  // ---------------------------------------------------------------- loop

  async #run(): Promise<void> {
    let state: SignalingState | undefined = "Get Security Credentials";
    while (!this.#closed && state) {
      this.#setState(state);
      try {
        state = await this.#step(state);
      } catch (e) {
        if (this.#closed) break;
        state = await this.#route(state, e);
      }
    }
    this.#clearWake();
    if (this.#fatal) {
      this.#abort.abort();
      this.#socket.close();
    }
  }

  async #step(state: SignalingState): Promise<SignalingState> {
    switch (state) {
      case "Get Security Credentials": {
        const force = this.#forceCredentials;
        this.#forceCredentials = false;
        if (this.#o.credentials) {
          const creds = await this.#o.credentials.getCredentials({ forceRefresh: force });
          this.#credentialsExpiration = creds.expiration;
        }
        if (!this.#arn || !this.#endpoints) {
          const hit = await this.#cache?.lookup(
            this.#o.channelName,
            this.#o.region,
            "MASTER",
            this.#override,
          );
          if (hit) {
            this.#arn = hit.channelArn;
            this.#endpoints = { wss: hit.wss, https: hit.https };
            this.#fromCache = true;
            this.#log.debug(`Endpoint cache hit for ${this.#o.channelName}`);
          }
        }
        if (!this.#arn) return "Describe Channel";
        if (!this.#endpoints) return "Get Channel Endpoint";
        return this.#ice.fresh() ? "Ready" : "Get ICE Server Configuration";
      }
      case "Describe Channel": {
        let info;
        try {
          info = await this.#cp.describeSignalingChannel(this.#o.channelName);
        } catch (e) {
          if (classifyControlPlaneError(e) === "not-found" && this.#o.createChannel !== false) {
            return "Create Channel";
          }
          throw e;
        }
        this.#arn = info.ChannelARN;
        this.#version = info.Version;
        this.#fromCache = false;
        if (info.ChannelStatus !== "ACTIVE") {
          this.#log.info(`Channel ${info.ChannelName} is ${info.ChannelStatus}, waiting`);
          await this.#sleep(this.#o.describePollMs ?? 1000);
          return "Describe Channel";
        }
        this.#retry.reset();
        return "Get Channel Endpoint";
      }
      case "Create Channel": {
        this.#arn = await this.#cp.createSignalingChannel(this.#o.channelName);
        this.#log.info(`Created channel ${this.#o.channelName}`);
        return "Describe Channel";
      }
      case "Get Channel Endpoint": {
        const arn = this.#arn!;
        this.#endpoints = await this.#cp.getSignalingChannelEndpoint(arn, "MASTER");
        this.#fromCache = false;
        await this.#cache?.store({
          channelName: this.#o.channelName,
          region: this.#o.region,
          role: "MASTER",
          channelArn: arn,
          wss: this.#endpoints.wss,
          https: this.#endpoints.https,
          storedAt: Date.now(),
          ...(this.#override ? { endpoint: this.#override } : {}),
        });
        this.#retry.reset();
        return "Get ICE Server Configuration";
      }
      case "Get ICE Server Configuration": {
        const fetch = this.#fetchIce();
        if (this.#socket.isOpen && !this.#replacing) {
          await fetch.catch((e) => Promise.reject(new IceStageFailure(e)));
          return "Connected";
        }
        // Cold path: fetch in parallel with opening the socket; Connecting awaits both.
        fetch.catch(() => {});
        this.#icePending = fetch;
        return "Ready";
      }
      case "Ready":
        if (!this.#icePending && !this.#ice.fresh()) return "Get ICE Server Configuration";
        return "Connecting";
      case "Connecting": {
        const pending = this.#icePending;
        this.#icePending = undefined;
        try {
          const { wss } = this.#endpoints!;
          await this.#socket.open(await this.#cp.presignSignalingUrl(wss, this.#arn!), wss);
        } catch (e) {
          await pending?.catch(() => {});
          throw e;
        }
        if (pending) {
          try {
            await pending;
          } catch (e) {
            this.#socket.discard();
            throw new IceStageFailure(e);
          }
        }
        if (this.#closed) {
          this.#socket.discard();
          return "Connecting";
        }
        this.#socket.install();
        this.#pendingWake = undefined;
        this.#replacing = false;
        return "Connected";
      }
      case "Connected": {
        this.#connectFailures = 0;
        this.#retry.reset();
        this.#reconnect.succeeded();
        this.#socket.flush();
        const why = await this.#waitConnected();
        switch (why) {
          case "shutdown":
            return "Connected";
          case "closed":
            return "Disconnected";
          case "goaway":
            this.#replacing = true;
            this.#log.info("GO_AWAY received: reconnecting through Describe Channel");
            return "Describe Channel";
          case "ice":
            return "Get ICE Server Configuration";
          case "maxage":
            this.#replacing = true;
            this.#log.info("Connection nearing its 1 h limit: replacing it");
            return "Ready";
          case "idle":
            this.#replacing = true;
            this.#log.info("Connection idle: replacing it before the service closes it");
            return "Ready";
        }
        return "Disconnected";
      }
      case "Disconnected": {
        const delay = this.#reconnect.next();
        this.#log.debug(`Reconnecting in ${delay} ms (attempt ${this.#reconnect.attempt})`);
        await this.#sleep(delay);
        if (this.#connectFailures >= 3) {
          // The endpoint may have moved or the channel may be gone: start over.
          this.#log.info(
            `${this.#connectFailures} failed connections: describing the channel again`,
          );
          await this.#forgetEndpoints();
        }
        // New credentials only when the service refused them or they are about to expire.
        if (this.#forceCredentials || this.#credentialsExpiring()) {
          return "Get Security Credentials";
        }
        if (!this.#arn) return "Describe Channel";
        if (!this.#endpoints) return "Get Channel Endpoint";
        return "Ready";
      }
      default:
        return "Get Security Credentials";
    }
  }

  /** The next state after a failure, or `undefined` when the failure is fatal. */
  async #route(state: SignalingState, thrown: unknown): Promise<SignalingState | undefined> {
    let failedIn = state;
    let e = thrown;
    if (thrown instanceof IceStageFailure) {
      failedIn = "Get ICE Server Configuration";
      e = thrown.error;
    }
    const fatal = fatalCredentialsError(e);
    if (fatal) {
      // Nothing to retry: a file or a setting must be fixed. The caller reports it.
      this.#fatal = fatal;
      this.#log.debug(`${failedIn} failed and cannot recover on its own: stopping`);
      this.#emit("error", { error: fatal, state: failedIn });
      return undefined;
    }
    const error = e instanceof KvsError
      ? e
      : new SignalingError(failedIn, `${failedIn} failed: ${describeError(e)}`, { cause: e });
    this.#log.warn(`${failedIn} failed: ${describeError(error)}`);
    this.#emit("error", { error, state: failedIn });

    if (e instanceof SignalingConnectError) {
      this.#connectFailures++;
      if (e.status === 401 || e.status === 403) this.#forceCredentials = true;
      if (this.#fromCache) {
        // A cached endpoint that fails once is not worth more tries: describe the channel again.
        this.#log.info("Connection to the cached endpoint failed: describing the channel again");
        await this.#forgetEndpoints();
      }
      return "Disconnected";
    }
    const kind = classifyControlPlaneError(e);
    if (kind === "not-found" && this.#arn) {
      // Stale ARN (cached or deleted channel): forget it and describe again.
      await this.#forgetEndpoints();
      await this.#sleep(this.#retry.next());
      return "Describe Channel";
    }
    await this.#sleep(this.#retry.next());
    if (kind === "auth") {
      this.#forceCredentials = true;
      return "Get Security Credentials";
    }
    if (failedIn === "Get ICE Server Configuration" && this.#socket.isOpen && !this.#replacing) {
      // The socket is fine; keep serving on it and try the refresh again later.
      return "Connected";
    }
    return failedIn;
  }

  /** Forget the channel's ARN and endpoints, and drop them from the endpoint cache. */
  async #forgetEndpoints(): Promise<void> {
    this.#arn = undefined;
    this.#endpoints = undefined;
    this.#fromCache = false;
    this.#connectFailures = 0;
    await this.#invalidateCache();
  }

  #invalidateCache(): Promise<void> {
    return this.#cache?.invalidate(this.#o.channelName, this.#o.region, "MASTER", this.#override) ??
      Promise.resolve();
  }

  #setState(state: SignalingState): void {
    const previous = this.#state;
    this.#state = state;
    this.#log.info(stateLogLine(state));
    this.#emit("state", { state, previous });
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

  #sleep(ms: number): Promise<void> {
    if (this.#closed || ms <= 0) return Promise.resolve();
    const signal = this.#abort.signal;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        resolve();
      };
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  // ---------------------------------------------------------------- ICE

  async #fetchIce(): Promise<void> {
    await this.#ice.fetch(this.#endpoints!.https, this.#arn!);
    this.#emit("iceServers", { iceServers: this.iceServers() });
  }

  #credentialsExpiring(): boolean {
    const exp = this.#credentialsExpiration;
    return exp !== undefined && exp.getTime() - Date.now() < 60_000;
  }

  // ---------------------------------------------------------------- socket

  #send(text: string): void {
    this.#socket.send(text, this.#state === "Disconnected");
  }

  // ---------------------------------------------------------------- Connected

  #notify(why: Wake): void {
    if (this.#wake) {
      const w = this.#wake;
      this.#wake = undefined;
      w.resolve(why);
    } else {
      // Remember it for when the loop returns to Connected.
      if (this.#pendingWake === undefined || why === "shutdown" || why === "closed") {
        this.#pendingWake = why;
      }
    }
  }

  #clearWake(): void {
    this.#wake?.resolve("shutdown");
    this.#wake = undefined;
  }

  async #waitConnected(): Promise<Wake> {
    if (this.#closed) return "shutdown";
    if (!this.#socket.isOpen) return "closed";
    const pending = this.#pendingWake;
    this.#pendingWake = undefined;
    if (pending) return pending;
    const wake = new Deferred<Wake>();
    this.#wake = wake;
    const limits = {
      maxAgeMs: this.#o.maxConnectionAgeMs ?? 55 * 60_000,
      idleMs: this.#o.idleReconnectMs ?? 9 * 60_000,
      keepAliveMs: this.#o.keepAliveIntervalMs ?? 10_000,
    };
    const unwatch = [
      this.#socket.watch(limits, (why) => {
        this.#notify(why === "socket-closed" ? "closed" : why === "max-age" ? "maxage" : "idle");
      }),
      this.#ice.watch(() => this.#notify("ice")),
    ];
    try {
      return await wake.promise;
    } finally {
      unwatch.forEach((stop) => stop());
      if (this.#wake === wake) this.#wake = undefined;
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
        : new SignalingError(this.#state, describeError(e), { cause: e });
      this.#log.warn(`Ignoring signaling message: ${error.message}`);
      this.#emit("error", { error, state: this.#state });
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
        if (current) this.#notify("goaway");
        break;
      case "RECONNECT_ICE_SERVER":
        this.#log.info("RECONNECT_ICE_SERVER received: refreshing ICE servers");
        this.#notify("ice");
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
