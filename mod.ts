/**
 * Stream live H.264 from a device to browsers through Amazon Kinesis Video Streams WebRTC.
 *
 * The layers, in the order a master uses them: credentials (static keys, environment, AWS IoT
 * over mutual TLS) → control plane (SigV4-signed KVS calls) → signaling (the state machine over
 * the WebSocket) → peer sessions (the WASM media core: ICE, DTLS-SRTP, H.264 → RTP) → media
 * sources (sample files, encoder pipes), all joined by {@link startMaster}.
 *
 * @example
 * ```ts
 * import { FileVideoSource, startMaster } from "@kvs-webrtc/master";
 * import { WasmPeerSessionFactory } from "@kvs-webrtc/master";
 * import type { SignalingControlPlane } from "@kvs-webrtc/master";
 * declare const controlPlane: SignalingControlPlane;
 * const peerSessionFactory = new WasmPeerSessionFactory();
 * const master = await startMaster({
 *   channel: "demo-channel",
 *   region: "us-west-2",
 *   controlPlane,
 *   peerSessionFactory,
 *   source: await FileVideoSource.open({ dir: "samples/h264" }),
 * });
 * master.on("state", ({ state }) => console.log("[SIGNALING] State:", state));
 * ```
 *
 * @module
 */
export * from "./src/log.ts";
export * from "./src/errors.ts";
export * from "./src/credentials/mod.ts";
export * from "./src/aws/mod.ts";
export * from "./src/signaling/mod.ts";
export * from "./src/viewers/mod.ts";
export * from "./src/media/mod.ts";
export * from "./src/peer/mod.ts";
export * from "./src/services.ts";
export * from "./src/master.ts";
