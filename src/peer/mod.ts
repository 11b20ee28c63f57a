/**
 * Peer sessions for the master: the WASM media core (ICE with TURN, DTLS-SRTP, H.264 → RTP, RTCP)
 * behind {@linkcode WasmPeerSessionFactory}. Nothing here loads another WebRTC stack.
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
export * from "./errors.ts";
export * from "./wasm_session.ts";
export {
  type CandidateResult,
  type MediaCoreCounters,
  type MediaCoreDatagram,
  MediaCoreError,
  type MediaCoreEvent,
  mediaCoreMemoryBytes,
  mediaCoreModule,
  type MediaCoreOutput,
  MediaCoreSession,
  type MediaCoreSessionOptions,
  type MediaCoreTurnServer,
  prepareMediaCore,
  type SrtpProfile,
} from "./media_core.ts";
