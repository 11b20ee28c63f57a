/**
 * The driver of the signaling state machine ({@link import("./machine.ts").next}): it feeds
 * events to the machine and runs the commands that come back, against the KVS control plane, the
 * endpoint cache, the ICE server cache ({@link IceConfig}) and the signaling WebSocket
 * ({@link SignalingSocket}); results, failures, socket events and timers become events again.
 * Events raised while commands run (a listener, a socket) queue up and follow in order.
 *
 * @module
 */
import type { IceServer, SignalingControlPlane } from "../aws/types.ts";
import { fatalCredentialsError } from "../credentials/errors.ts";
import { KvsError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { SignalingClientOptions, SignalingEventMap } from "./client.ts";
import { ChannelEndpointCache } from "./channel_cache.ts";
import { EndpointCache } from "./endpoint_cache.ts";
import { classifyControlPlaneError, SignalingConnectError, SignalingError } from "./errors.ts";
import { IceConfig } from "./ice_config.ts";
import {
  initialSignalingState,
  next,
  type SignalingCall,
  type SignalingCommand,
  type SignalingEvent,
  type SignalingFailure,
  type SignalingMachineState,
} from "./machine.ts";
import {
  defaultWebSocketFactory,
  describeError,
  SignalingSocket,
  type SocketLimits,
} from "./socket.ts";
import { type SignalingState, stateLogLine } from "./states.ts";

/**
 * An event of the machine without its time: {@link SignalingDriver.dispatch} stamps it.
 *
 * @example
 * ```ts
 * import type { SignalingInput } from "./driver.ts";
 * const input: SignalingInput = { type: "goaway" };
 * ```
 */
export type SignalingInput = SignalingEvent extends infer E
  ? E extends unknown ? Omit<E, "now"> : never
  : never;

/**
 * What the driver tells its client.
 *
 * @example
 * ```ts
 * import type { SignalingDriverHooks } from "./driver.ts";
 * const hooks: SignalingDriverHooks = {
 *   emit: (type, detail) => console.log(type, detail),
 *   message: (data) => console.log(data),
 * };
 * ```
 */
export interface SignalingDriverHooks {
  /** Emit a client event: a state, an error, new ICE servers. */
  emit<K extends keyof SignalingEventMap>(type: K, detail: SignalingEventMap[K]): void;
  /** A message arrived on one of the sockets; `current` when on the current one. */
  message(data: unknown, current: boolean): void;
}

/** How the machine routes what a call threw. */
function failureOf(e: unknown): SignalingFailure {
  const fatal = fatalCredentialsError(e);
  if (fatal) return { kind: "fatal", error: fatal };
  if (e instanceof SignalingConnectError) return { kind: "connect", error: e, status: e.status };
  return { kind: classifyControlPlaneError(e), error: e };
}

/**
 * Runs one signaling client's state machine. {@link import("./client.ts").SignalingClient} is
 * its public face.
 *
 * @example
 * ```ts
 * import { SignalingDriver } from "./driver.ts";
 * import { silentLogger } from "../log.ts";
 * import type { SignalingControlPlane } from "../aws/types.ts";
 * declare const controlPlane: SignalingControlPlane;
 * const driver = new SignalingDriver(
 *   { channelName: "demo-channel", region: "us-west-2", controlPlane, endpointCache: false },
 *   silentLogger,
 *   { emit: (type, detail) => console.log(type, detail), message: () => {} },
 * );
 * driver.start();
 * await driver.close();
 * ```
 */
export class SignalingDriver {
  readonly #o: SignalingClientOptions;
  readonly #cp: SignalingControlPlane;
  readonly #log: Logger;
  readonly #hooks: SignalingDriverHooks;
  readonly #cache: ChannelEndpointCache;
  readonly #socket: SignalingSocket;
  readonly #ice: IceConfig;
  readonly #random: () => number;
  readonly #limits: SocketLimits;
  readonly #abort = new AbortController();

  #m: SignalingMachineState;
  /** The last state announced (the machine may be a few transitions ahead while they are). */
  #state: SignalingState = "New";
  readonly #queue: SignalingEvent[] = [];
  #dispatching = false;
  #started = false;
  #closed = false;
  #fatal: KvsError | undefined;
  /** Calls, waits and cache operations in flight. */
  readonly #inflight = new Set<Promise<void>>();
  #unwatch: (() => void) | undefined;
  #deletion: Promise<void> | undefined;

  /** Set up the machine, the socket and the ICE cache; nothing runs before `start`. */
  constructor(options: SignalingClientOptions, logger: Logger, hooks: SignalingDriverHooks) {
    this.#o = options;
    this.#cp = options.controlPlane;
    this.#log = logger;
    this.#hooks = hooks;
    const cache = options.endpointCache === false
      ? undefined
      : options.endpointCache ?? new EndpointCache({ logger: this.#log });
    this.#cache = new ChannelEndpointCache(cache, {
      channelName: options.channelName,
      region: options.region,
      endpoint: options.endpointOverride ?? options.controlPlane.endpoint,
      logger: this.#log,
    });
    this.#socket = new SignalingSocket({
      factory: options.webSocketFactory ?? defaultWebSocketFactory(options.caCerts),
      signal: this.#abort.signal,
      logger: this.#log,
      connectTimeoutMs: options.connectTimeoutMs,
      maxOutbox: options.maxOutbox,
      onMessage: (data, current) => hooks.message(data, current),
      onClosed: () => this.dispatch({ type: "socket-closed" }),
    });
    this.#ice = new IceConfig({
      controlPlane: options.controlPlane,
      region: options.region,
      clientId: options.clientId,
      stunUrl: options.stunUrl,
      logger: this.#log,
    });
    this.#random = options.random ?? Math.random;
    this.#limits = {
      maxAgeMs: options.maxConnectionAgeMs ?? 55 * 60_000,
      idleMs: options.idleReconnectMs ?? 9 * 60_000,
      keepAliveMs: options.keepAliveIntervalMs ?? 10_000,
    };
    const b = options.backoff ?? {};
    this.#m = initialSignalingState({
      createChannel: options.createChannel !== false,
      describePollMs: options.describePollMs ?? 1000,
      backoffBaseMs: b.baseMs ?? 100,
      backoffCapMs: b.capMs ?? 10_000,
      healthyMs: b.healthyMs ?? 30_000,
    });
  }

  /** Aborted when the driver stops: closed, or a fatal failure. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** The last state announced. */
  get state(): SignalingState {
    return this.#state;
  }

  /** The machine's state (channel ARN, endpoint cache use, …). */
  get machine(): SignalingMachineState {
    return this.#m;
  }

  /** The fatal failure that stopped the driver, if any. */
  get fatalError(): KvsError | undefined {
    return this.#fatal;
  }

  /** Start the machine (idempotent; not after close). */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.dispatch({ type: "started" });
  }

  /** The ICE servers in use. */
  iceServers(): IceServer[] {
    return this.#ice.iceServers();
  }

  /** Send an encoded message, or hold it while Disconnected or without an open socket. */
  send(text: string): void {
    this.#socket.send(text, this.#state === "Disconnected");
  }

  /** Stop: close the socket, cancel timers and waits, let the calls in flight end. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#abort.abort();
      this.dispatch({ type: "close" });
    }
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    this.#unwatch?.();
    this.#socket.close();
  }

  /** Stop, then delete the channel (state Delete). Errors are thrown to the caller. */
  async deleteChannel(): Promise<void> {
    await this.close();
    this.dispatch({ type: "delete" });
    await this.#deletion;
  }

  /** Feed an event to the machine and run its commands; events raised meanwhile queue up. */
  dispatch(input: SignalingInput): void {
    this.#queue.push({ ...input, now: performance.now() } as SignalingEvent);
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      for (let event; (event = this.#queue.shift());) {
        const { state, commands } = next(this.#m, event);
        this.#m = state;
        for (const command of commands) this.#run(command);
      }
    } catch (e) {
      this.#log.error("Signaling step failed unexpectedly", { error: e });
    } finally {
      this.#dispatching = false;
    }
  }

  #run(c: SignalingCommand): void {
    const name = this.#o.channelName;
    switch (c.type) {
      case "emit-state": {
        this.#state = c.state;
        this.#log.info(stateLogLine(c.state));
        return this.#hooks.emit("state", { state: c.state, previous: c.previous });
      }
      case "log":
        return this.#log[c.level](c.message);
      case "report-error": {
        const error = c.error instanceof KvsError ? c.error : new SignalingError(
          c.state,
          `${c.state} failed: ${describeError(c.error)}`,
          { cause: c.error },
        );
        this.#log.warn(`${c.state} failed: ${describeError(error)}`);
        return this.#hooks.emit("error", { error, state: c.state });
      }
      case "fatal":
        // Nothing to retry: a file or a setting must be fixed. The caller reports it.
        this.#fatal = c.error as KvsError;
        this.#log.debug(`${c.state} failed and cannot recover on its own: stopping`);
        this.#hooks.emit("error", { error: this.#fatal, state: c.state });
        this.#abort.abort();
        return this.#socket.close();
      case "fetch-credentials":
        return this.#call("credentials", async () => {
          const creds = await this.#o.credentials?.getCredentials({ forceRefresh: c.force });
          const expiration = creds?.expiration?.getTime();
          return {
            type: "credentials-ok",
            expiresInMs: expiration === undefined ? undefined : expiration - Date.now(),
          };
        });
      case "lookup-cache":
        return this.#track(
          this.#cache.lookup().then((hit) => {
            if (hit) this.#log.debug(`Endpoint cache hit for ${name}`);
            this.dispatch(
              hit
                ? { type: "cache-hit", channelArn: hit.channelArn, endpoints: hit }
                : { type: "cache-miss" },
            );
          }),
        );
      case "store-cache":
        return this.#track(this.#cache.store(c.channelArn, c.endpoints));
      case "invalidate-cache":
        return this.#track(this.#cache.invalidate());
      case "describe":
        return this.#call("describe", async () => {
          const info = await this.#cp.describeSignalingChannel(name);
          if (info.ChannelStatus !== "ACTIVE") {
            this.#log.info(`Channel ${info.ChannelName} is ${info.ChannelStatus}, waiting`);
          }
          const { ChannelARN: channelArn, Version: version, ChannelStatus: status } = info;
          return { type: "describe-ok", channelArn, version, status };
        });
      case "create":
        return this.#call("create", async () => {
          const channelArn = await this.#cp.createSignalingChannel(name);
          this.#log.info(`Created channel ${name}`);
          return { type: "created", channelArn };
        });
      case "get-endpoint":
        return this.#call("endpoint", async () => ({
          type: "endpoint-ok",
          endpoints: await this.#cp.getSignalingChannelEndpoint(c.channelArn, "MASTER"),
        }));
      case "get-ice":
        return this.#call("ice", async () => {
          await this.#ice.fetch(c.https, c.channelArn);
          this.#hooks.emit("iceServers", { iceServers: this.iceServers() });
          return { type: "ice-ok", freshForMs: this.#ice.freshForMs };
        });
      case "open-socket":
        return this.#call("socket", async () => {
          await this.#socket.open(await this.#cp.presignSignalingUrl(c.wss, c.channelArn), c.wss);
          return { type: "socket-open" };
        });
      case "install-socket":
        return this.#socket.install();
      case "discard-socket":
        return this.#socket.discard();
      case "flush-outbox":
        return this.#socket.flush();
      case "watch": {
        const stops = [
          this.#socket.watch(this.#limits, (why) => this.dispatch({ type: why })),
          this.#ice.watch(() => this.dispatch({ type: "ice-expiring" })),
        ];
        this.#unwatch = () => stops.forEach((stop) => stop());
        return;
      }
      case "unwatch":
        this.#unwatch?.();
        this.#unwatch = undefined;
        return;
      case "wait": {
        const ms = c.jitter ? Math.floor(this.#random() * c.ms) : c.ms;
        if (c.reconnectAttempt) {
          this.#log.debug(`Reconnecting in ${ms} ms (attempt ${c.reconnectAttempt})`);
        }
        return this.#track(this.#sleep(ms).then(() => this.dispatch({ type: "waited" })));
      }
      case "delete-channel":
        this.#deletion = this.#delete(c.channelArn, c.version);
        return;
    }
  }

  /** Run a call once the cache writes before it are done; its result goes to the machine. */
  #call(call: SignalingCall, fn: () => Promise<SignalingInput>): void {
    if (this.#closed) return;
    this.#track(
      this.#cache.settled().then(fn).then(
        (event) => this.dispatch(event),
        (e) => this.dispatch({ type: "failed", call, ...failureOf(e) }),
      ),
    );
  }

  #track(p: Promise<void>): void {
    this.#inflight.add(p);
    p.finally(() => this.#inflight.delete(p)).catch(() => {});
  }

  async #delete(channelArn?: string, version?: string): Promise<void> {
    try {
      if (!channelArn || !version) {
        const info = await this.#cp.describeSignalingChannel(this.#o.channelName);
        channelArn = info.ChannelARN;
        version = info.Version;
      }
      await this.#cp.deleteSignalingChannel(channelArn, version);
      await this.#cache.invalidate();
    } catch (e) {
      throw e instanceof KvsError ? e : new SignalingError(
        "Delete",
        `deleting channel ${this.#o.channelName} failed: ${describeError(e)}`,
        { cause: e },
      );
    }
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#abort.signal;
    if (signal.aborted || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
