/**
 * Errors of the peer layer.
 *
 * @module
 */
import { KvsError } from "../errors.ts";

/**
 * An SDP offer the session cannot answer: not SDP, too big, no H.264 video with
 * packetization-mode=1, missing or malformed ICE credentials or fingerprint. The message names
 * what is wrong.
 *
 * @example
 * ```ts
 * import { OfferRejectedError } from "./errors.ts";
 * const e = new OfferRejectedError("the offer has no H.264 video");
 * console.log(e.code); // "PEER_OFFER"
 * ```
 */
export class OfferRejectedError extends KvsError {
  /** Say what is wrong with the offer. */
  constructor(message: string, options?: ErrorOptions) {
    super("PEER_OFFER", message, options);
  }
}
