/**
 * Errors of the credential providers.
 *
 * @module
 */
import { KvsError } from "../errors.ts";

/**
 * Credentials could not be obtained. `setting` names the file, flag or environment variable at
 * fault when there is one; `status` is the HTTP status of the credential endpoint's refusal.
 *
 * Codes: `CREDENTIALS_MISSING` (a setting is absent), `CREDENTIALS_FILE` (a PEM file is
 * missing, unreadable or not PEM), `IOT_KEY_MISMATCH`, `IOT_TLS` (connection or TLS handshake
 * refused), `IOT_FORBIDDEN` (403), `IOT_ROLE_ALIAS` (404), `IOT_HTTP` (other statuses),
 * `IOT_RESPONSE` (malformed body), `CREDENTIALS_EXPIRED`.
 *
 * @example
 * ```ts
 * import { CredentialsError } from "./errors.ts";
 * const e = new CredentialsError("CREDENTIALS_MISSING", "AWS_ACCESS_KEY_ID is not set", {
 *   setting: "AWS_ACCESS_KEY_ID",
 * });
 * console.log(e.code, e.setting);
 * ```
 */
export class CredentialsError extends KvsError {
  /** File path, flag or environment variable at fault. */
  readonly setting?: string;
  /** HTTP status of the refusal, when there was one. */
  readonly status?: number;
  /** Describe the failure; `setting` and `status` when known. */
  constructor(
    code: string,
    message: string,
    options: ErrorOptions & { setting?: string; status?: number } = {},
  ) {
    super(code, message, options);
    this.setting = options.setting;
    this.status = options.status;
  }
}
