/**
 * What every credential provider returns.
 *
 * @module
 */

/**
 * AWS credentials, temporary (with `sessionToken` and `expiration`) or long-term.
 *
 * @example
 * ```ts
 * import type { AwsCredentials } from "./types.ts";
 * const creds: AwsCredentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };
 * ```
 */
export interface AwsCredentials {
  /** Access key id (`AKIA…` long-term, `ASIA…` temporary). */
  accessKeyId: string;
  /** Secret access key. Never logged. */
  secretAccessKey: string;
  /** Session token of temporary credentials. Never logged. */
  sessionToken?: string;
  /** When temporary credentials stop working. */
  expiration?: Date;
}

/** Options of {@link CredentialProvider.getCredentials}. */
export interface GetCredentialsOptions {
  /** Ignore any cached value and fetch new credentials (after a 401/403). */
  forceRefresh?: boolean;
}

/**
 * Source of AWS credentials. Implementations cache and refresh ahead of expiry; concurrent
 * callers share one refresh.
 *
 * @example
 * ```ts
 * import type { CredentialProvider } from "./types.ts";
 * const provider: CredentialProvider = {
 *   getCredentials: () => Promise.resolve({ accessKeyId: "AKID", secretAccessKey: "s" }),
 * };
 * ```
 */
export interface CredentialProvider {
  /** Current valid credentials. */
  getCredentials(options?: GetCredentialsOptions): Promise<AwsCredentials>;
}
