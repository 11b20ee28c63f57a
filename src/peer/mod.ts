/**
 * Peer sessions for the master: the WASM media core (ICE with TURN, DTLS-SRTP, H.264 → RTP, RTCP) behind
 * {@linkcode WasmPeerSessionFactory}, and werift with the core as its sender behind
 * {@linkcode WeriftSessionFactory}.
 *
 * @example
 * ```ts
 * import { WasmPeerSessionFactory } from "./mod.ts";
 * const factory = new WasmPeerSessionFactory({ loopbackOnly: true });
 * ```
 *
 * @module
 */
export type * from "./types.ts";
export * from "./wasm_session.ts";
export * from "./werift_session.ts";
export * from "./media_core.ts";
