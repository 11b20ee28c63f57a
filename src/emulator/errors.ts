/**
 * The emulator's own error type.
 *
 * @module
 */
import { KvsError } from "../errors.ts";

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
