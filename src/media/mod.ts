/**
 * Media sources: H.264 Annex-B scanning, a paced looping file source (one folder, or a ladder of
 * renditions), a byte-stream source for external encoders, and the per-viewer keyframe gate.
 *
 * @example
 * ```ts
 * import { FileVideoSource, KeyframeGate } from "./mod.ts";
 * const source = await FileVideoSource.open({ dir: "samples/h264" });
 * const gate = new KeyframeGate();
 * source.start((frame) => {
 *   if (gate.pass(frame)) console.log("send", frame.data.length);
 * });
 * setTimeout(() => source.stop(), 500);
 * ```
 *
 * @module
 */
export type * from "./types.ts";
export * from "./h264.ts";
export * from "./access_unit_splitter.ts";
export * from "./errors.ts";
export * from "./pacer.ts";
export * from "./file_source.ts";
export * from "./ladder.ts";
export * from "./sps.ts";
export * from "./stream_source.ts";
export * from "./parameter_sets.ts";
export * from "./restarting_command.ts";
export * from "./command_source.ts";
export * from "./keyframe_gate.ts";
export * from "./gop_cache.ts";
export * from "./target_bitrate.ts";
export * from "./opus.ts";
export * from "./ogg.ts";
export * from "./opus_headers.ts";
export * from "./ogg_opus_reader.ts";
export * from "./ogg_opus_writer.ts";
export type * from "./audio_types.ts";
export * from "./audio_timestamps.ts";
export * from "./file_audio_source.ts";
export * from "./stream_audio_source.ts";
export * from "./command_audio_source.ts";
