/**
 * Fixed credentials (long-term keys, or temporary ones managed by the caller).
 *
 * @module
 */
import type { AwsCredentials, CredentialProvider } from "./types.ts";
import { CredentialsError } from "./errors.ts";

/**
 * Always returns the same credentials. Expired temporary credentials are refused with a clear,
 * fatal error (they cannot renew themselves) instead of letting AWS reject every request.
 *
 * @example
 * ```ts
 * import { StaticCredentialProvider } from "./static.ts";
 * const provider = new StaticCredentialProvider({
 *   accessKeyId: "AKIDEXAMPLE",
 *   secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
 * });
 * const creds = await provider.getCredentials();
 * ```
 */
export class StaticCredentialProvider implements CredentialProvider {
  readonly #credentials: AwsCredentials;
  readonly #now: () => number;

  /** Validate and keep `credentials`; `now` is for tests (default `Date.now`). */
  constructor(credentials: AwsCredentials, now: () => number = Date.now) {
    if (!credentials.accessKeyId) {
      throw new CredentialsError("CREDENTIALS_MISSING", "the access key id is empty", {
        setting: "accessKeyId",
      });
    }
    if (!credentials.secretAccessKey) {
      throw new CredentialsError("CREDENTIALS_MISSING", "the secret access key is empty", {
        setting: "secretAccessKey",
      });
    }
    this.#credentials = { ...credentials };
    this.#now = now;
  }

  /** The credentials, unless they carry an expiration that has passed. */
  getCredentials(): Promise<AwsCredentials> {
    const exp = this.#credentials.expiration;
    if (exp && exp.getTime() <= this.#now()) {
      return Promise.reject(
        new CredentialsError(
          "CREDENTIALS_EXPIRED",
          `the credentials of ${this.#credentials.accessKeyId} expired at ${exp.toISOString()}`,
          { fatal: true },
        ),
      );
    }
    return Promise.resolve({ ...this.#credentials });
  }
}
