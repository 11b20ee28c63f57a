/**
 * Signaling for a KVS WebRTC master: message codec, state machine client, endpoint cache.
 *
 * @example
 * ```ts
 * import { SignalingClient, SIGNALING_STATES } from "./mod.ts";
 * console.log(SIGNALING_STATES.length, typeof SignalingClient);
 * ```
 *
 * @module
 */
export * from "./messages.ts";
export * from "./states.ts";
export * from "./errors.ts";
export * from "./backoff.ts";
export * from "./endpoint_cache.ts";
export * from "./client.ts";
