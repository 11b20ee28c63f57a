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

/**
 * A data channel call that was refused: no data channels with this viewer (not negotiated, or
 * DTLS not up yet), no open channel with that id, a message larger than the viewer takes, or
 * too much already waiting to be acknowledged. The message names which; the session goes on.
 *
 * @example
 * ```ts
 * import { DataChannelError } from "./errors.ts";
 * const e = new DataChannelError("no open channel has id 3");
 * console.log(e.code); // "PEER_DATA_CHANNEL"
 * ```
 */
export class DataChannelError extends KvsError {
  /** Say why the call was refused. */
  constructor(message: string, options?: ErrorOptions) {
    super("PEER_DATA_CHANNEL", message, options);
  }
}
