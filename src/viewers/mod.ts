/**
 * Viewers of a master: who gets a seat ({@link Admission}) and how each viewer's offer becomes a
 * peer session ({@link OfferBridge}).
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
export * from "./offer_bridge.ts";
