/**
 * Errors of the signaling client, and how it classifies control-plane errors.
 *
 * @module
 */
import { KvsError } from "../errors.ts";
import type { SignalingState } from "./states.ts";

/**
 * A signaling step failed. `state` names the state it failed in; `cause` holds the original.
 *
 * @example
 * ```ts
 * import { SignalingError } from "./errors.ts";
 * const e = new SignalingError("Describe Channel", "describe failed: HTTP 500");
 * console.log(e.state, e.code); // "Describe Channel" "SIGNALING"
 * ```
 */
export class SignalingError extends KvsError {
  /** The state the failure happened in. */
  readonly state: SignalingState;
  /** Say in which state what failed. */
  constructor(state: SignalingState, message: string, options?: ErrorOptions) {
    super("SIGNALING", message, options);
    this.state = state;
  }
}

/**
 * The signaling WebSocket could not be opened (refused, TLS failure, HTTP 403 on upgrade,
 * timeout). `status` is the HTTP status of a refused upgrade when the runtime tells it: Deno
 * does in the error event's message for an HTTP/1.1 upgrade, but not for a WebSocket over HTTP/2
 * (a TLS server that offers h2, as `Deno.serve` does), and browsers never do.
 *
 * @example
 * ```ts
 * import { SignalingConnectError } from "./errors.ts";
 * const e = new SignalingConnectError("WebSocket to wss://m-1.example failed", { status: 403 });
 * console.log(e.code, e.status); // "SIGNALING_CONNECT" 403
 * ```
 */
export class SignalingConnectError extends KvsError {
  /** HTTP status of the refused upgrade, when known. */
  readonly status?: number;
  /** Describe why the WebSocket could not be opened. */
  constructor(message: string, options: ErrorOptions & { status?: number } = {}) {
    super("SIGNALING_CONNECT", message, options);
    this.status = options.status;
  }
}

/**
 * The HTTP status in a failed WebSocket's error text, e.g. Deno's
 * `failed to connect to WebSocket: Invalid status code: 403`; `undefined` when there is none.
 *
 * @example
 * ```ts
 * import { upgradeStatus } from "./errors.ts";
 * upgradeStatus("NetworkError: failed to connect to WebSocket: Invalid status code: 403"); // 403
 * upgradeStatus("NetworkError: failed to connect to WebSocket: tcp connect error"); // undefined
 * ```
 */
export function upgradeStatus(text: string): number | undefined {
  const m = /status code:?\s*(\d{3})\b/i.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * How a control-plane error is routed.
 *
 * @example
 * ```ts
 * import { classifyControlPlaneError, type ErrorKind } from "./errors.ts";
 * const kind: ErrorKind = classifyControlPlaneError(new Error("ResourceNotFoundException")); // "not-found"
 * ```
 */
export type ErrorKind = "auth" | "not-found" | "retry";

const AUTH_TYPES = new Set([
  "AccessDeniedException",
  "NotAuthorizedException",
  "UnrecognizedClientException",
  "ExpiredTokenException",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "InvalidClientTokenId",
  "MissingAuthenticationTokenException",
  "IncompleteSignatureException",
]);

function prop(e: unknown, names: string[]): unknown {
  if (typeof e !== "object" || e === null) return undefined;
  const rec = e as Record<string, unknown>;
  for (const n of names) if (rec[n] !== undefined) return rec[n];
  return undefined;
}

/**
 * Classify an error from a {@link import("../aws/types.ts").SignalingControlPlane} call as the C
 * SDK routes it: 401/403 → `auth` (get credentials again), 404 / `ResourceNotFoundException` →
 * `not-found`, anything else → `retry` with backoff. Reads `status`/`statusCode` and
 * `errorType`/`awsErrorType` properties when present, else the message.
 *
 * @example
 * ```ts
 * import { classifyControlPlaneError } from "./errors.ts";
 * classifyControlPlaneError(Object.assign(new Error("x"), { status: 403 })); // "auth"
 * ```
 */
export function classifyControlPlaneError(error: unknown): ErrorKind {
  let cur: unknown = error;
  for (let depth = 0; depth < 4 && cur; depth++) {
    const status = Number(prop(cur, ["status", "statusCode", "httpStatus"]));
    const type = String(prop(cur, ["errorType", "awsErrorType", "awsCode"]) ?? "");
    if (status === 401 || status === 403 || AUTH_TYPES.has(type)) return "auth";
    if (status === 404 || type === "ResourceNotFoundException") return "not-found";
    if (Number.isFinite(status) && status > 0) return "retry";
    const msg = cur instanceof Error ? cur.message : "";
    if (/ResourceNotFoundException/.test(msg)) return "not-found";
    if (/\b(?:401|403)\b|AccessDenied|NotAuthorized|ExpiredToken|SignatureDoesNotMatch/.test(msg)) {
      return "auth";
    }
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return "retry";
}

/**
 * A signaling message that could not be encoded or decoded. `field` names what is wrong.
 *
 * @example
 * ```ts
 * import { decodeSignalingMessage, SignalingMessageError } from "./messages.ts";
 * try {
 *   decodeSignalingMessage("{not json");
 * } catch (e) {
 *   if (e instanceof SignalingMessageError) console.log(e.field); // "message"
 * }
 * ```
 */
export class SignalingMessageError extends KvsError {
  /** The part of the message at fault, e.g. `messagePayload`, `messageType`, `sdp`. */
  readonly field: string;
  /** Name the field at fault. */
  constructor(field: string, message: string, options?: ErrorOptions) {
    super("SIGNALING_MESSAGE", message, options);
    this.field = field;
  }
}
