/**
 * The signaling client's states, named as the KVS C SDK names them in its logs.
 *
 * @module
 */

/**
 * Every state of {@link SignalingState}, in cold-start order.
 *
 * @example
 * ```ts
 * import { SIGNALING_STATES } from "./states.ts";
 * console.log(SIGNALING_STATES[0]); // "New"
 * ```
 */
export const SIGNALING_STATES = [
  "New",
  "Get Security Credentials",
  "Describe Channel",
  "Create Channel",
  "Get Channel Endpoint",
  "Get ICE Server Configuration",
  "Ready",
  "Connecting",
  "Connected",
  "Disconnected",
  "Delete",
] as const;

/**
 * A signaling state name.
 *
 * @example
 * ```ts
 * import type { SignalingState } from "./states.ts";
 * const s: SignalingState = "Connected";
 * ```
 */
export type SignalingState = typeof SIGNALING_STATES[number];

/**
 * Whether `value` is a state name.
 *
 * @example
 * ```ts
 * import { isSignalingState } from "./states.ts";
 * isSignalingState("Ready"); // true
 * ```
 */
export function isSignalingState(value: unknown): value is SignalingState {
  return typeof value === "string" && (SIGNALING_STATES as readonly string[]).includes(value);
}

/**
 * The log line the C SDK prints on a transition, e.g. `[SIGNALING] State: Connected`.
 *
 * @example
 * ```ts
 * import { stateLogLine } from "./states.ts";
 * stateLogLine("Ready"); // "[SIGNALING] State: Ready"
 * ```
 */
export function stateLogLine(state: SignalingState): string {
  return `[SIGNALING] State: ${state}`;
}
