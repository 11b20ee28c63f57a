/**
 * Credential providers: static keys, the AWS environment variables, and the AWS IoT credential
 * provider over mutual TLS, behind one refreshing cache.
 *
 * Failures are {@link CredentialsError}s; `fatal` tells those that cannot heal on their own
 * (files, a key that does not match, a certificate out of its validity period, an IoT 403/404
 * before any success) from those worth retrying (network, 5xx, throttling, a later 403/404).
 *
 * @example
 * ```ts
 * import { EnvCredentialProvider, IotCredentialProvider } from "./mod.ts";
 * const provider = Deno.env.get("AWS_IOT_CORE_CREDENTIAL_ENDPOINT")
 *   ? new IotCredentialProvider({
 *     endpoint: Deno.env.get("AWS_IOT_CORE_CREDENTIAL_ENDPOINT")!,
 *     roleAlias: Deno.env.get("AWS_IOT_CORE_ROLE_ALIAS")!,
 *     thingName: Deno.env.get("AWS_IOT_CORE_THING_NAME")!,
 *   })
 *   : new EnvCredentialProvider();
 * ```
 *
 * @module
 */
export type * from "./types.ts";
export * from "./errors.ts";
export * from "./pem.ts";
export * from "./certificate.ts";
export * from "./static.ts";
export * from "./env.ts";
export * from "./refresh.ts";
export * from "./iot.ts";
