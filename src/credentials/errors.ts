/**
 * Errors of the credential providers, and which of them can heal.
 *
 * @module
 */
import { KvsError } from "../errors.ts";

/**
 * Credentials could not be obtained. `setting` names the flag or environment variable at fault
 * when there is one, `path` the file; `status` is the HTTP status of the credential endpoint's
 * refusal.
 *
 * `fatal` says whether the failure can heal on its own. Fatal (retrying is pointless until a
 * person fixes a file or a setting): a missing, unreadable or unparsable certificate or key file,
 * a key that does not match its certificate, a certificate that has expired or is not valid yet
 * (both checked locally before any request), static credentials that have expired, and an IoT
 * 403 or 404 before any request of the provider ever succeeded. Not fatal (retry with backoff):
 * network and TLS failures, 5xx, throttling, a malformed answer, and an IoT 403 or 404 after an
 * earlier success (a policy or role alias may be changing).
 *
 * Codes: `CREDENTIALS_MISSING` (a setting is absent), `CREDENTIALS_FILE` (a PEM file is
 * missing, unreadable, not PEM, or not a certificate or key), `IOT_KEY_MISMATCH`,
 * `IOT_CERT_EXPIRED`, `IOT_CERT_NOT_YET_VALID`, `IOT_TLS` (connection or TLS handshake
 * refused), `IOT_FORBIDDEN` (403), `IOT_ROLE_ALIAS` (404), `IOT_HTTP` (other statuses),
 * `IOT_RESPONSE` (malformed body), `CREDENTIALS_EXPIRED`.
 *
 * @example
 * ```ts
 * import { CredentialsError } from "./errors.ts";
 * const e = new CredentialsError("CREDENTIALS_FILE", "device certificate file c.pem does not exist", {
 *   setting: "AWS_IOT_CORE_CERT",
 *   path: "c.pem",
 *   fatal: true,
 * });
 * console.log(e.code, e.setting, e.fatal); // CREDENTIALS_FILE AWS_IOT_CORE_CERT true
 * ```
 */
export class CredentialsError extends KvsError {
  /** Flag or environment variable at fault. */
  readonly setting?: string;
  /** File at fault, when there is one. */
  readonly path?: string;
  /** HTTP status of the refusal, when there was one. */
  readonly status?: number;
  /** The failure cannot heal on its own: stop and report it instead of retrying. */
  readonly fatal: boolean;
  /** Describe the failure; `setting`, `path`, `status` when known; `fatal` defaults to false. */
  constructor(
    code: string,
    message: string,
    options: ErrorOptions & {
      setting?: string;
      path?: string;
      status?: number;
      fatal?: boolean;
    } = {},
  ) {
    super(code, message, options);
    this.setting = options.setting;
    this.path = options.path;
    this.status = options.status;
    this.fatal = options.fatal ?? false;
  }
}

/**
 * The fatal {@link CredentialsError} in `error` or its chain of causes, if there is one: what a
 * caller checks to tell "stop and tell a person" from "retry with backoff".
 *
 * @example
 * ```ts
 * import { CredentialsError, fatalCredentialsError } from "./errors.ts";
 * const e = new CredentialsError("IOT_ROLE_ALIAS", "role alias not found", { fatal: true });
 * fatalCredentialsError(new Error("Describe failed", { cause: e })) === e; // true
 * fatalCredentialsError(new Error("socket closed")); // undefined
 * ```
 */
export function fatalCredentialsError(error: unknown): CredentialsError | undefined {
  let cur: unknown = error;
  for (let depth = 0; depth < 5 && cur instanceof Error; depth++) {
    if (cur instanceof CredentialsError && cur.fatal) return cur;
    cur = cur.cause;
  }
  return undefined;
}
