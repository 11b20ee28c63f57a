/**
 * The signaling state machine, pure: `next(state, event)` returns the new state and the commands
 * a driver runs (calls, socket work, waits, events). It does no I/O, starts no timer and reads
 * no clock: time comes in every event as `now` (monotonic ms). The states are the C SDK's, and so
 * is the error routing: 401/403 → Get Security Credentials, Describe 404 → Create Channel,
 * GO_AWAY → Describe Channel, RECONNECT_ICE_SERVER → Get ICE Server Configuration, socket drop →
 * Disconnected → Ready → Connecting, full-jitter backoff (the driver draws the jitter).
 *
 * @module
 */
import { backoffCeiling } from "./backoff.ts";
import type {
  SignalingAwait,
  SignalingCommand,
  SignalingEvent,
  SignalingFailure,
  SignalingMachineConfig,
  SignalingMachineState,
  SignalingTransition,
  SignalingWake,
} from "./machine_types.ts";
import type { SignalingState } from "./states.ts";

export type * from "./machine_types.ts";

/**
 * The state before `started`: New, nothing known. Defaults: create the channel, poll Describe
 * every second, backoff 100 ms · 2ⁿ capped at 10 s, reset after 30 s Connected.
 *
 * @example
 * ```ts
 * import { initialSignalingState } from "./machine.ts";
 * initialSignalingState({ createChannel: false }).config.createChannel; // false
 * ```
 */
export function initialSignalingState(
  config: Partial<SignalingMachineConfig> = {},
): SignalingMachineState {
  return {
    config: {
      createChannel: true,
      describePollMs: 1000,
      backoffBaseMs: 100,
      backoffCapMs: 10_000,
      healthyMs: 30_000,
      ...config,
    },
    state: "New",
    awaiting: "start",
    stopped: false,
    fromCache: false,
    forceCredentials: false,
    icePending: false,
    socketOpen: false,
    replacing: false,
    connectFailures: 0,
    retryAttempt: 0,
    reconnectAttempt: 0,
  };
}

type Draft = { -readonly [K in keyof SignalingMachineState]: SignalingMachineState[K] };

/** Where each wake leads from Connected, and why the socket is replaced (if it is). */
const WAKES: Record<SignalingWake, [SignalingState, string?]> = {
  "socket-closed": ["Disconnected"],
  goaway: ["Describe Channel", "GO_AWAY received: reconnecting through Describe Channel"],
  "reconnect-ice": ["Get ICE Server Configuration"],
  "ice-expiring": ["Get ICE Server Configuration"],
  "max-age": ["Ready", "Connection nearing its 1 h limit: replacing it"],
  idle: ["Ready", "Connection idle: replacing it before the service closes it"],
};

/**
 * One step: the new state and the commands for `event`. Pure: `state` is not changed, nothing
 * is read but the arguments. Events that do not fit the state (a late result after `close`, a
 * result nobody waits for) change nothing.
 *
 * @example
 * ```ts
 * import { initialSignalingState, next } from "./machine.ts";
 * const { state, commands } = next(initialSignalingState(), { type: "started", now: 0 });
 * console.log(state.state); // "Get Security Credentials"
 * console.log(commands.map((c) => c.type)); // ["emit-state", "fetch-credentials"]
 * ```
 */
export function next(state: SignalingMachineState, event: SignalingEvent): SignalingTransition {
  const m = new Step(state, event.now);
  m.handle(event);
  return { state: m.d, commands: m.out };
}

class Step {
  readonly d: Draft;
  readonly out: SignalingCommand[] = [];
  constructor(state: SignalingMachineState, readonly now: number) {
    this.d = { ...state };
  }

  handle(e: SignalingEvent): void {
    const d = this.d;
    if (e.type === "delete") {
      this.out.push({ type: "emit-state", state: "Delete", previous: d.state });
      this.out.push({ type: "delete-channel", channelArn: d.channelArn, version: d.version });
      d.state = "Delete";
      return this.#stop();
    }
    if (d.stopped) return;
    if (e.type === "ice-ok") {
      d.iceFreshUntil = e.freshForMs > 0 ? this.now + e.freshForMs : undefined;
    }
    switch (e.type) {
      case "started":
        if (d.awaiting === "start") this.enter("Get Security Credentials");
        return;
      case "close":
        if (d.awaiting === "events") this.out.push({ type: "unwatch" });
        this.#stop();
        return;
      case "credentials-ok":
        if (d.awaiting !== "credentials") return;
        d.credentialsExpireAt = e.expiresInMs === undefined ? undefined : this.now + e.expiresInMs;
        if (d.channelArn && d.endpoints) return this.#afterCredentials();
        d.awaiting = "cache";
        this.out.push({ type: "lookup-cache" });
        return;
      case "cache-hit":
      case "cache-miss":
        if (d.awaiting !== "cache") return;
        if (e.type === "cache-hit") {
          d.channelArn = e.channelArn;
          d.endpoints = e.endpoints;
          d.fromCache = true;
        }
        return this.#afterCredentials();
      case "describe-ok":
        if (d.awaiting !== "describe") return;
        d.channelArn = e.channelArn;
        d.version = e.version;
        d.fromCache = false;
        if (e.status !== "ACTIVE") {
          return this.#await("describe-poll", {
            type: "wait",
            ms: d.config.describePollMs,
            jitter: false,
          });
        }
        d.retryAttempt = 0;
        return this.enter("Get Channel Endpoint");
      case "created":
        if (d.awaiting !== "create") return;
        d.channelArn = e.channelArn;
        return this.enter("Describe Channel");
      case "endpoint-ok":
        if (d.awaiting !== "endpoint") return;
        d.endpoints = e.endpoints;
        d.fromCache = false;
        this.out.push({ type: "store-cache", channelArn: d.channelArn!, endpoints: e.endpoints });
        d.retryAttempt = 0;
        return this.enter("Get ICE Server Configuration");
      case "ice-ok":
        if (d.awaiting === "ice") return this.enter("Connected");
        if (d.awaiting === "connect") return this.#connecting({ ice: "done" });
        return;
      case "socket-open":
        if (d.awaiting === "connect") this.#connecting({ socket: "open" });
        return;
      case "failed":
        return this.#failed(e);
      case "waited":
        if (d.awaiting === "describe-poll") return this.enter("Describe Channel");
        if (d.awaiting === "reconnect-wait") return this.#afterReconnectWait();
        if (d.awaiting === "retry-wait") return this.#afterRetryWait();
        return;
      default:
        return this.#wake(e.type);
    }
  }

  /** Enter `state` (again, if it is the current one) and start its work. */
  enter(target: SignalingState): void {
    const d = this.d;
    // Every path learns the ARN and endpoints first; without them, describe the channel.
    const missing = (target === "Get Channel Endpoint" && !d.channelArn) ||
      ((target === "Connecting" || target === "Get ICE Server Configuration") &&
        !(d.channelArn && d.endpoints));
    const state = missing ? "Describe Channel" : target;
    this.out.push({ type: "emit-state", state, previous: d.state });
    d.state = state;
    d.connecting = undefined;
    switch (state) {
      case "Get Security Credentials":
        this.#await("credentials", { type: "fetch-credentials", force: d.forceCredentials });
        d.forceCredentials = false;
        return;
      case "Describe Channel":
        return this.#await("describe", { type: "describe" });
      case "Create Channel":
        return this.#await("create", { type: "create" });
      case "Get Channel Endpoint":
        return this.#await("endpoint", { type: "get-endpoint", channelArn: d.channelArn! });
      case "Get ICE Server Configuration": {
        this.out.push({ type: "get-ice", channelArn: d.channelArn!, https: d.endpoints!.https });
        if (d.socketOpen && !d.replacing) {
          // Refresh on a working socket: keep it, return to Connected once fetched.
          d.awaiting = "ice";
          return;
        }
        // Cold path: the fetch runs in parallel with opening the socket; Connecting awaits both.
        d.icePending = true;
        return this.enter("Ready");
      }
      case "Ready":
        if (!d.icePending && !this.#iceFresh()) return this.enter("Get ICE Server Configuration");
        return this.enter("Connecting");
      case "Connecting":
        d.connecting = { socket: "opening", ice: d.icePending ? "pending" : "done" };
        d.icePending = false;
        return this.#await("connect", {
          type: "open-socket",
          channelArn: d.channelArn!,
          wss: d.endpoints!.wss,
        });
      case "Connected":
        return this.#enterConnected();
      case "Disconnected":
        return this.#enterDisconnected();
    }
  }

  #await(awaiting: SignalingAwait, command: SignalingCommand): void {
    this.d.awaiting = awaiting;
    this.out.push(command);
  }

  #iceFresh(): boolean {
    return this.d.iceFreshUntil !== undefined && this.now < this.d.iceFreshUntil;
  }

  #afterCredentials(): void {
    const d = this.d;
    if (!d.channelArn) return this.enter("Describe Channel");
    if (!d.endpoints) return this.enter("Get Channel Endpoint");
    this.enter(this.#iceFresh() ? "Ready" : "Get ICE Server Configuration");
  }

  /** Connecting waits for the socket, then for the ICE fetch that runs alongside. */
  #connecting(update: Partial<NonNullable<SignalingMachineState["connecting"]>>): void {
    const d = this.d;
    const c = { ...d.connecting!, ...update };
    d.connecting = c;
    if (c.socket === "opening" || c.ice === "pending") return;
    if (c.socket !== "open") return this.#route("Connecting", c.socket);
    if (c.ice !== "done") {
      this.out.push({ type: "discard-socket" });
      return this.#route("Get ICE Server Configuration", c.ice);
    }
    this.out.push({ type: "install-socket" });
    d.socketOpen = true;
    d.pendingWake = undefined;
    d.replacing = false;
    this.enter("Connected");
  }

  #enterConnected(): void {
    const d = this.d;
    d.connectFailures = 0;
    d.retryAttempt = 0;
    d.healthySince = this.now;
    this.out.push({ type: "flush-outbox" });
    if (!d.socketOpen) return this.enter("Disconnected");
    const pending = d.pendingWake;
    d.pendingWake = undefined;
    if (pending) return this.#act(pending);
    this.#await("events", { type: "watch" });
  }

  #wake(why: SignalingWake): void {
    const d = this.d;
    if (why === "socket-closed") d.socketOpen = false;
    if (d.awaiting === "events") {
      this.out.push({ type: "unwatch" });
      return this.#act(why);
    }
    // Remember it for when the machine returns to Connected.
    if (d.pendingWake === undefined || why === "socket-closed") d.pendingWake = why;
  }

  #act(why: SignalingWake): void {
    const [to, replacing] = WAKES[why];
    if (replacing) {
      this.d.replacing = true;
      this.#info(replacing);
    }
    this.enter(to);
  }

  #enterDisconnected(): void {
    const d = this.d;
    const { backoffBaseMs, backoffCapMs, healthyMs } = d.config;
    if (d.healthySince !== undefined && this.now - d.healthySince >= healthyMs) {
      d.reconnectAttempt = 0;
    }
    const ms = backoffCeiling(d.reconnectAttempt, backoffBaseMs, backoffCapMs);
    d.reconnectAttempt++;
    d.healthySince = undefined;
    this.#await("reconnect-wait", {
      type: "wait",
      ms,
      jitter: true,
      reconnectAttempt: d.reconnectAttempt,
    });
  }

  #afterReconnectWait(): void {
    const d = this.d;
    if (d.connectFailures >= 3) {
      // The endpoint may have moved or the channel may be gone: start over.
      this.#info(`${d.connectFailures} failed connections: describing the channel again`);
      this.#forgetEndpoints();
    }
    // New credentials only when the service refused them or they are about to expire.
    const expiring = d.credentialsExpireAt !== undefined &&
      d.credentialsExpireAt - this.now < 60_000;
    if (d.forceCredentials || expiring) return this.enter("Get Security Credentials");
    if (!d.channelArn) return this.enter("Describe Channel");
    if (!d.endpoints) return this.enter("Get Channel Endpoint");
    this.enter("Ready");
  }

  #failed(e: Extract<SignalingEvent, { type: "failed" }>): void {
    const d = this.d;
    const failure: SignalingFailure = { kind: e.kind, error: e.error, status: e.status };
    if (e.call === "ice" && d.awaiting === "connect") return this.#connecting({ ice: failure });
    if (d.awaiting !== (e.call === "socket" ? "connect" : e.call)) return;
    if (e.call === "socket") return this.#connecting({ socket: failure });
    if (e.call === "describe" && e.kind === "not-found" && d.config.createChannel) {
      return this.enter("Create Channel");
    }
    this.#route(e.call === "ice" ? "Get ICE Server Configuration" : d.state, failure);
  }

  /** Route a failure in `failedIn`: report it, then retry, reconnect or stop. */
  #route(failedIn: SignalingState, f: SignalingFailure): void {
    const d = this.d;
    if (f.kind === "fatal") {
      // Nothing to retry: a file or a setting must be fixed. The caller reports it.
      this.out.push({ type: "fatal", error: f.error, state: failedIn });
      return this.#stop();
    }
    this.out.push({ type: "report-error", error: f.error, state: failedIn });
    if (f.kind === "connect") {
      d.connectFailures++;
      if (f.status === 401 || f.status === 403) d.forceCredentials = true;
      if (d.fromCache) {
        // A cached endpoint that fails once is not worth more tries: describe the channel again.
        this.#info("Connection to the cached endpoint failed: describing the channel again");
        this.#forgetEndpoints();
      }
      return this.enter("Disconnected");
    }
    let to = failedIn;
    if (f.kind === "not-found" && d.channelArn) {
      // Stale ARN (cached or deleted channel): forget it and describe again.
      this.#forgetEndpoints();
      to = "Describe Channel";
    } else if (f.kind === "auth") {
      d.forceCredentials = true;
      to = "Get Security Credentials";
    }
    const ms = backoffCeiling(d.retryAttempt, d.config.backoffBaseMs, d.config.backoffCapMs);
    d.retryAttempt++;
    d.retryTo = to;
    this.#await("retry-wait", { type: "wait", ms, jitter: true });
  }

  #afterRetryWait(): void {
    const d = this.d;
    const to = d.retryTo ?? d.state;
    d.retryTo = undefined;
    if (to === "Get ICE Server Configuration" && d.socketOpen && !d.replacing) {
      // The socket is fine; keep serving on it and try the refresh again later.
      return this.enter("Connected");
    }
    this.enter(to);
  }

  #forgetEndpoints(): void {
    const d = this.d;
    d.channelArn = undefined;
    d.endpoints = undefined;
    d.fromCache = false;
    d.connectFailures = 0;
    this.out.push({ type: "invalidate-cache" });
  }

  #info(message: string): void {
    this.out.push({ type: "log", level: "info", message });
  }

  #stop(): void {
    this.d.stopped = true;
    this.d.awaiting = "nothing";
  }
}
