/**
 * The vocabulary of the signaling state machine ({@link import("./machine.ts").next}): its
 * settings, state, events and commands. Plain data only.
 *
 * @module
 */
import type { SignalingEndpoints } from "../aws/types.ts";
import type { ErrorKind } from "./errors.ts";
import type { SignalingState } from "./states.ts";

/**
 * Fixed settings of the machine.
 *
 * @example
 * ```ts
 * import { initialSignalingState, type SignalingMachineConfig } from "./machine.ts";
 * const config: SignalingMachineConfig = {
 *   createChannel: true, describePollMs: 1000, backoffBaseMs: 100, backoffCapMs: 10_000,
 *   healthyMs: 30_000,
 * };
 * initialSignalingState(config);
 * ```
 */
export interface SignalingMachineConfig {
  /** Create the channel when Describe says it does not exist. */
  readonly createChannel: boolean;
  /** Wait between Describe calls while the channel is not ACTIVE (ms). */
  readonly describePollMs: number;
  /** First backoff ceiling (ms). */
  readonly backoffBaseMs: number;
  /** Largest backoff ceiling (ms). */
  readonly backoffCapMs: number;
  /** A connection that lasts this long resets the reconnect backoff (ms). */
  readonly healthyMs: number;
}

/**
 * Why a call failed, as the machine routes it: `auth` (401/403), `not-found` (404), `retry`
 * (anything else), `connect` (the WebSocket did not open; `status` of a refused upgrade when
 * known), `fatal` (a credential failure that cannot heal on its own: the machine stops).
 *
 * @example
 * ```ts
 * import type { SignalingFailure } from "./machine.ts";
 * const refused: SignalingFailure = { kind: "connect", status: 403, error: new Error("403") };
 * ```
 */
export interface SignalingFailure {
  /** How to route it. */
  readonly kind: ErrorKind | "connect" | "fatal";
  /** What was thrown; reported as it is. */
  readonly error: unknown;
  /** HTTP status of a refused WebSocket upgrade. */
  readonly status?: number;
}

/**
 * The call a result or failure belongs to.
 *
 * @example
 * ```ts
 * import type { SignalingCall } from "./machine.ts";
 * const call: SignalingCall = "describe";
 * ```
 */
export type SignalingCall = "credentials" | "describe" | "create" | "endpoint" | "ice" | "socket";

/**
 * Something that can end a Connected period: the socket closed, GO_AWAY, new ICE servers needed
 * (RECONNECT_ICE_SERVER or the refresh time), the connection's age or idle limit.
 *
 * @example
 * ```ts
 * import type { SignalingWake } from "./machine.ts";
 * const why: SignalingWake = "goaway";
 * ```
 */
export type SignalingWake =
  | "socket-closed"
  | "goaway"
  | "reconnect-ice"
  | "ice-expiring"
  | "max-age"
  | "idle";

/**
 * An input of {@link next}: a result of a command (`credentials-ok`, `cache-hit`/`cache-miss`,
 * `describe-ok`, `created`, `endpoint-ok`, `ice-ok`, `socket-open`, `failed`, `waited`), a
 * {@link SignalingWake}, or a request (`started`, `close`, `delete`). `now` is a monotonic
 * clock in ms; `expiresInMs` and `freshForMs` are counted from it.
 *
 * @example
 * ```ts
 * import type { SignalingEvent } from "./machine.ts";
 * const events: SignalingEvent[] = [
 *   { type: "started", now: 0 },
 *   { type: "failed", now: 5, call: "describe", kind: "auth", error: new Error("403") },
 * ];
 * ```
 */
export type SignalingEvent =
  | { type: "started" | "cache-miss" | "socket-open" | "waited" | "close" | "delete"; now: number }
  | { type: SignalingWake; now: number }
  | { type: "credentials-ok"; now: number; expiresInMs?: number }
  | { type: "cache-hit"; now: number; channelArn: string; endpoints: SignalingEndpoints }
  | { type: "describe-ok"; now: number; channelArn: string; version: string; status: string }
  | { type: "created"; now: number; channelArn: string }
  | { type: "endpoint-ok"; now: number; endpoints: SignalingEndpoints }
  | { type: "ice-ok"; now: number; freshForMs: number }
  | ({ type: "failed"; now: number; call: SignalingCall } & SignalingFailure);

/**
 * Work for the driver, run in order. Calls (`fetch-credentials`, `lookup-cache`, `describe`,
 * `create`, `get-endpoint`, `get-ice`, `open-socket`) and `wait` answer with an event; the rest
 * (`emit-state`, `log`, `report-error`, `fatal`, cache writes, socket and timer work,
 * `delete-channel`) do not. A `wait` with `jitter` lasts a random time in [0, ms).
 *
 * @example
 * ```ts
 * import type { SignalingCommand } from "./machine.ts";
 * const cmd: SignalingCommand = { type: "wait", ms: 100, jitter: true };
 * ```
 */
export type SignalingCommand =
  | { type: "emit-state"; state: SignalingState; previous: SignalingState }
  | { type: "log"; level: "info" | "debug"; message: string }
  | { type: "report-error" | "fatal"; error: unknown; state: SignalingState }
  | { type: "fetch-credentials"; force: boolean }
  | { type: "lookup-cache" | "invalidate-cache" | "describe" | "create" }
  | { type: "store-cache"; channelArn: string; endpoints: SignalingEndpoints }
  | { type: "get-endpoint"; channelArn: string }
  | { type: "get-ice"; channelArn: string; https: string }
  | { type: "open-socket"; channelArn: string; wss: string }
  | { type: "install-socket" | "discard-socket" | "flush-outbox" | "watch" | "unwatch" }
  | { type: "wait"; ms: number; jitter: boolean; reconnectAttempt?: number }
  | { type: "delete-channel"; channelArn?: string; version?: string };

/**
 * What the machine waits for: a call's result, a `waited` event, a {@link SignalingWake}
 * (`events`, while Connected), or nothing (stopped).
 *
 * @example
 * ```ts
 * import type { SignalingAwait } from "./machine.ts";
 * const awaiting: SignalingAwait = "connect";
 * ```
 */
export type SignalingAwait =
  | "start"
  | "credentials"
  | "cache"
  | "describe"
  | "describe-poll"
  | "create"
  | "endpoint"
  | "ice"
  | "connect"
  | "events"
  | "reconnect-wait"
  | "retry-wait"
  | "nothing";

/**
 * The machine's whole state: the public state name and what the next steps depend on. Plain
 * data; {@link next} never changes it in place.
 *
 * @example
 * ```ts
 * import { initialSignalingState } from "./machine.ts";
 * const s = initialSignalingState();
 * console.log(s.state, s.awaiting); // "New" "start"
 * ```
 */
export interface SignalingMachineState {
  /** Fixed settings. */
  readonly config: SignalingMachineConfig;
  /** The public state name. */
  readonly state: SignalingState;
  /** What the machine waits for. */
  readonly awaiting: SignalingAwait;
  /** Closed, or stopped by a fatal failure: every event but `delete` is ignored. */
  readonly stopped: boolean;
  /** Channel ARN, once known. */
  readonly channelArn?: string;
  /** Channel version from Describe (to delete it). */
  readonly version?: string;
  /** Endpoints, once known. */
  readonly endpoints?: SignalingEndpoints;
  /** Whether the ARN and endpoints came from the endpoint cache. */
  readonly fromCache: boolean;
  /** The next credential fetch must bypass the provider's cache (after a 401/403). */
  readonly forceCredentials: boolean;
  /** When the credentials expire (`now` clock), if they do. */
  readonly credentialsExpireAt?: number;
  /** Until when the ICE servers are fresh (`now` clock). */
  readonly iceFreshUntil?: number;
  /** An ICE fetch runs alongside the coming Connecting. */
  readonly icePending: boolean;
  /** The current socket is open. */
  readonly socketOpen: boolean;
  /** The current socket is being replaced (GO_AWAY, age, idle): reconnect even if it is open. */
  readonly replacing: boolean;
  /** Failed connections since the last success or endpoint lookup. */
  readonly connectFailures: number;
  /** Attempt count of the control-plane retry backoff. */
  readonly retryAttempt: number;
  /** Attempt count of the reconnect backoff. */
  readonly reconnectAttempt: number;
  /** Start of the current healthy (Connected) period (`now` clock). */
  readonly healthySince?: number;
  /** A wake that came outside Connected, handled on the next return to it. */
  readonly pendingWake?: SignalingWake;
  /** Connecting: the socket's and the parallel ICE fetch's progress. */
  readonly connecting?: {
    readonly socket: "opening" | "open" | SignalingFailure;
    readonly ice: "pending" | "done" | SignalingFailure;
  };
  /** The state to enter after the retry wait. */
  readonly retryTo?: SignalingState;
}

/**
 * The result of {@link next}.
 *
 * @example
 * ```ts
 * import { initialSignalingState, next, type SignalingTransition } from "./machine.ts";
 * const t: SignalingTransition = next(initialSignalingState(), { type: "started", now: 0 });
 * ```
 */
export interface SignalingTransition {
  /** The new state. */
  readonly state: SignalingMachineState;
  /** What the driver must do, in order. */
  readonly commands: SignalingCommand[];
}
