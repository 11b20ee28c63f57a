/**
 * Candidates that arrive before their viewer's offer (the service does not keep the order of the
 * two), held for it: a bounded number per client id, for a bounded number of client ids (the
 * oldest are dropped first).
 *
 * @module
 */
import type { IceCandidateInit } from "../peer/types.ts";

/**
 * Early candidates by client id.
 *
 * @example
 * ```ts
 * import { EarlyCandidates } from "./early_candidates.ts";
 * const early = new EarlyCandidates(64, 32);
 * early.hold("viewer-1", { candidate: "candidate:1 1 udp 1 192.0.2.1 5000 typ host" });
 * console.log(early.take("viewer-1").length); // 1
 * ```
 */
export class EarlyCandidates {
  readonly #perViewer: number;
  readonly #viewers: number;
  readonly #held = new Map<string, IceCandidateInit[]>();

  /** Hold at most `perViewer` candidates for each of at most `viewers` client ids. */
  constructor(perViewer: number, viewers: number) {
    this.#perViewer = perViewer;
    this.#viewers = viewers;
  }

  /**
   * Hold a candidate. Returns what had to give way, if anything: `"viewer"` (another client id's
   * candidates were dropped to make room, named in `dropped`) or `"full"` (this one was dropped).
   */
  hold(
    viewerId: string,
    candidate: IceCandidateInit,
  ): { dropped: "viewer"; viewerId: string } | { dropped: "full" } | undefined {
    let queue = this.#held.get(viewerId);
    let gaveWay: { dropped: "viewer"; viewerId: string } | undefined;
    if (!queue) {
      if (this.#held.size >= this.#viewers) {
        const oldest = this.#held.keys().next().value!;
        this.#held.delete(oldest);
        gaveWay = { dropped: "viewer", viewerId: oldest };
      }
      this.#held.set(viewerId, queue = []);
    }
    if (queue.length >= this.#perViewer) return { dropped: "full" };
    queue.push(candidate);
    return gaveWay;
  }

  /** The candidates held for `viewerId`, in arrival order; they are no longer held. */
  take(viewerId: string): IceCandidateInit[] {
    const queue = this.#held.get(viewerId) ?? [];
    this.#held.delete(viewerId);
    return queue;
  }

  /** Drop everything. */
  clear(): void {
    this.#held.clear();
  }
}
