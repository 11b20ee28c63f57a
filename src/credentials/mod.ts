/**
 * Credential providers: static keys, the AWS environment variables, and the AWS IoT credential
 * provider over mutual TLS, behind one refreshing cache.
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
export * from "./static.ts";
export * from "./env.ts";
export * from "./refresh.ts";
export * from "./iot.ts";
