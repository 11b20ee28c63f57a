/**
 * A master's viewers: who gets a seat ({@link Admission}), each viewer's record
 * ({@link Viewer}) and their one owner ({@link Viewers}), which turns offers into peer sessions
 * and fans frames out, each viewer on the rendition of a ladder its bandwidth carries
 * ({@link RenditionSelector}).
 *
 * @example
 * ```ts
 * import { Admission } from "./mod.ts";
 * const admission = new Admission({ seats: 10 });
 * console.log(admission.offer("viewer-1", performance.now()).kind); // "admit"
 * ```
 *
 * @module
 */
export * from "./admission.ts";
export * from "./errors.ts";
export * from "./viewer.ts";
export * from "./viewers.ts";
export * from "./rendition_selector.ts";
export * from "./ladder_instants.ts";
export type { ViewerAdmissionOptions } from "./types.ts";
export * from "./early_candidates.ts";
