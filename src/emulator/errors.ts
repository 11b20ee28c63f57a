/**
 * The emulator's own error type, and the AWS refusals its service handlers throw.
 *
 * @module
 */
import { KvsError } from "../errors.ts";
import type { AuthFailure } from "./sigv4_verify.ts";

/**
 * The emulator could not start or keep running: certificates (`EMULATOR_PKI`), ports
 * (`EMULATOR_PORT`) or the TURN server (`EMULATOR_TURN`). The message says what to install or fix.
 *
 * @example
 * ```ts
 * import { EmulatorError } from "./errors.ts";
 * try {
 *   throw new EmulatorError("EMULATOR_TURN", "turnserver (coturn) is not installed");
 * } catch (e) {
 *   if (e instanceof EmulatorError) console.log(e.code, e.message);
 * }
 * ```
 */
export class EmulatorError extends KvsError {}

/**
 * An AWS refusal thrown by the service's handlers: the status, `x-amzn-ErrorType` and message of
 * the answer. {@link isFailure} tells it from a bug.
 *
 * @example
 * ```ts
 * import { failure } from "./errors.ts";
 * throw failure(400, "InvalidArgumentException", "ChannelName is invalid");
 * ```
 */
export function failure(
  status: number,
  type: string,
  message: string,
): AuthFailure & { kvs: true } {
  return { status, type, message, kvs: true };
}

/**
 * Whether `e` was thrown by {@link failure}.
 *
 * @example
 * ```ts
 * import { failure, isFailure } from "./errors.ts";
 * try {
 *   throw failure(404, "ResourceNotFoundException", "The requested channel is not found or not active.");
 * } catch (e) {
 *   if (isFailure(e)) console.log(e.status, e.type);
 * }
 * ```
 */
export function isFailure(e: unknown): e is AuthFailure {
  return typeof e === "object" && e !== null && (e as { kvs?: boolean }).kvs === true;
}
