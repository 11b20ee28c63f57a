/**
 * AWS calls of a KVS master: SigV4 signing (aws4fetch), clock-skew correction, retries with
 * full-jitter backoff, and the signaling control-plane client.
 *
 * @example
 * ```ts
 * import { KvsClient } from "./mod.ts";
 * import { EnvCredentialProvider } from "../credentials/mod.ts";
 * const kvs = new KvsClient({ region: "us-west-2", credentials: new EnvCredentialProvider() });
 * ```
 *
 * @module
 */
export type * from "./types.ts";
export * from "./errors.ts";
export * from "./clock.ts";
export * from "./retry.ts";
export * from "./sigv4.ts";
export * from "./kvs_client.ts";
