/**
 * The base of every error this module throws. Each layer subclasses it with what a user can
 * act on (file path, env var, HTTP status, AWS error type, signaling state).
 *
 * @module
 */

/**
 * Base class of this module's errors. `code` is a stable machine-readable name.
 *
 * @example
 * ```ts
 * import { KvsError } from "./errors.ts";
 * try {
 *   throw new KvsError("CONFIG", "AWS_DEFAULT_REGION is not set");
 * } catch (e) {
 *   if (e instanceof KvsError) console.log(e.code);
 * }
 * ```
 */
export class KvsError extends Error {
  /** Stable machine-readable error name, e.g. `IOT_TLS`, `AWS_HTTP`, `SIGNALING_MESSAGE`. */
  readonly code: string;
  /** An error with a stable `code` and a message a user can act on. */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
