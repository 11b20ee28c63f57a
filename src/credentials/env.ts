/**
 * Credentials from the standard AWS environment variables.
 *
 * @module
 */
import type { AwsCredentials, CredentialProvider } from "./types.ts";
import { CredentialsError } from "./errors.ts";

type Env = Record<string, string | undefined>;

/**
 * Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional `AWS_SESSION_TOKEN` on each
 * call (so a rotated environment is picked up). A missing variable is named in the error.
 *
 * @example
 * ```ts
 * import { EnvCredentialProvider } from "./env.ts";
 * const provider = new EnvCredentialProvider({
 *   AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
 *   AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
 * });
 * console.log((await provider.getCredentials()).accessKeyId);
 * ```
 */
export class EnvCredentialProvider implements CredentialProvider {
  readonly #env: () => Env;

  /** `env` defaults to the process environment (needs `--allow-env`). */
  constructor(env?: Env) {
    this.#env = env ? () => env : () => Deno.env.toObject();
  }

  /** The credentials in the environment now. */
  getCredentials(): Promise<AwsCredentials> {
    const env = this.#env();
    for (const name of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]) {
      if (!env[name]?.trim()) {
        return Promise.reject(
          new CredentialsError("CREDENTIALS_MISSING", `${name} is not set`, { setting: name }),
        );
      }
    }
    const token = env.AWS_SESSION_TOKEN?.trim();
    return Promise.resolve({
      accessKeyId: env.AWS_ACCESS_KEY_ID!.trim(),
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY!.trim(),
      ...(token ? { sessionToken: token } : {}),
    });
  }
}
