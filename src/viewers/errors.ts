/**
 * Errors of the viewers layer.
 *
 * @module
 */
import { KvsError } from "../errors.ts";

/**
 * An offer could not be answered (refused viewer, session creation or SDP failure), or a
 * viewer's session failed.
 *
 * @example
 * ```ts
 * import { OfferError } from "./errors.ts";
 * const e = new OfferError("viewer-11", "the master already serves 10 viewers");
 * console.log(e.viewerId, e.code); // "viewer-11" "OFFER"
 * ```
 */
export class OfferError extends KvsError {
  /** The viewer whose offer failed. */
  readonly viewerId: string;
  /** Name the viewer whose offer failed. */
  constructor(viewerId: string, message: string, options?: ErrorOptions) {
    super("OFFER", message, options);
    this.viewerId = viewerId;
  }
}
