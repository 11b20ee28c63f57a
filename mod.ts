/**
 * Stream live H.264 from a device to browsers through Amazon Kinesis Video Streams WebRTC.
 *
 * @module
 */
export * from "./src/log.ts";
export * from "./src/errors.ts";
export type * from "./src/credentials/types.ts";
export type * from "./src/aws/types.ts";
export type * from "./src/media/types.ts";
export type * from "./src/peer/types.ts";
