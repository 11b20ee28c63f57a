/**
 * Builds a master's AWS side from plain values: the credential provider (AWS IoT over mutual TLS,
 * or keys) and the SigV4 control-plane client. The CA bundle, when one is given, is read once:
 * its text goes to the IoT provider and to the caller (signaling WebSocket, TURN over TLS), and
 * one HTTP client trusting it serves the control plane. Nothing here reads the environment.
 *
 * @module
 */
import { KvsClient } from "./aws/kvs_client.ts";
import { readPemFile } from "./credentials/pem.ts";
import { IotCredentialProvider, type IotSettingNames } from "./credentials/iot.ts";
import { StaticCredentialProvider } from "./credentials/static.ts";
import type { CredentialProvider } from "./credentials/types.ts";
import { type Logger, silentLogger } from "./log.ts";

/**
 * Credentials from the AWS IoT credential provider (X.509 certificate over mutual TLS).
 *
 * @example
 * ```ts
 * import type { IotCredentialsConfig } from "./services.ts";
 * const iot: IotCredentialsConfig = {
 *   kind: "iot",
 *   endpoint: "https://c1.credentials.iot.us-west-2.amazonaws.com",
 *   certPath: "certificate.pem",
 *   keyPath: "private.key",
 *   roleAlias: "KvsCameraIoTRoleAlias",
 *   thingName: "camera-1",
 * };
 * ```
 */
export interface IotCredentialsConfig {
  /** IoT credentials over mutual TLS. */
  kind: "iot";
  /** `https://<prefix>.credentials.iot.<region>.amazonaws.com` (scheme added when missing). */
  endpoint: string;
  /** Device certificate PEM path. */
  certPath: string;
  /** Device private key PEM path. */
  keyPath: string;
  /** Role alias (`AWS_IOT_CORE_ROLE_ALIAS`). */
  roleAlias: string;
  /** Thing name (`AWS_IOT_CORE_THING_NAME`). */
  thingName: string;
}

/**
 * Long-term or temporary keys.
 *
 * @example
 * ```ts
 * import type { StaticCredentialsConfig } from "./services.ts";
 * const keys: StaticCredentialsConfig = { kind: "keys", accessKeyId: "AKID", secretAccessKey: "secret" };
 * ```
 */
export interface StaticCredentialsConfig {
  /** Static or temporary keys. */
  kind: "keys";
  /** Access key id (`AWS_ACCESS_KEY_ID`). */
  accessKeyId: string;
  /** Never logged. */
  secretAccessKey: string;
  /** Never logged. */
  sessionToken?: string;
}

/**
 * Options of {@link createAwsServices}: plain values, wherever they came from.
 *
 * @example
 * ```ts
 * import type { AwsServicesOptions } from "./services.ts";
 * const options: AwsServicesOptions = {
 *   region: "us-west-2",
 *   credentials: { kind: "keys", accessKeyId: "AKID", secretAccessKey: "secret" },
 *   caCertPath: "cacert.pem",
 * };
 * ```
 */
export interface AwsServicesOptions {
  /** AWS region, e.g. `us-west-2`. */
  region: string;
  /** IoT credentials or keys. */
  credentials: IotCredentialsConfig | StaticCredentialsConfig;
  /** Control-plane endpoint override. Default: the region's standard endpoint. */
  endpoint?: string;
  /** CA bundle (PEM) for IoT, HTTPS, WSS and TURN over TLS, read once. Default: system roots. */
  caCertPath?: string;
  /**
   * The flag or environment variable each path and name came from, named in errors (e.g.
   * `--iot-cert`). Defaults: the C SDK sample's environment variable names.
   */
  settings?: IotSettingNames;
  /** Logger of the credential provider and the control plane. Default silent. */
  logger?: Logger;
}

/**
 * The AWS side of a master.
 *
 * @example
 * ```ts
 * import type { AwsServices } from "./services.ts";
 * declare const services: AwsServices;
 * await services.credentials.getCredentials();
 * services.close();
 * ```
 */
export interface AwsServices {
  /** Credential provider (IoT or keys). */
  credentials: CredentialProvider;
  /** SigV4 control-plane client. */
  controlPlane: KvsClient;
  /** The CA bundle's certificates, for the signaling WebSocket and TURN over TLS. */
  caCerts?: string[];
  /** The HTTP client trusting the CA bundle (the control plane's), when one was given. */
  httpClient?: Deno.HttpClient;
  /** Release TLS clients. */
  close(): void;
}

/**
 * Create the credential provider and control-plane client. A missing or unreadable CA bundle
 * throws a fatal {@link import("./credentials/errors.ts").CredentialsError} naming the file and
 * `settings.caCert`; the IoT provider's errors name the other settings the same way.
 *
 * @example
 * ```ts
 * import { createAwsServices } from "./services.ts";
 * const services = await createAwsServices({
 *   region: "us-west-2",
 *   credentials: {
 *     kind: "iot",
 *     endpoint: "https://c1.credentials.iot.us-west-2.amazonaws.com",
 *     certPath: "certificate.pem",
 *     keyPath: "private.key",
 *     roleAlias: "KvsCameraIoTRoleAlias",
 *     thingName: "camera-1",
 *   },
 *   caCertPath: "cacert.pem",
 * });
 * const info = await services.controlPlane.describeSignalingChannel("camera-1");
 * services.close();
 * ```
 */
export async function createAwsServices(options: AwsServicesOptions): Promise<AwsServices> {
  const logger = options.logger ?? silentLogger;
  const settings = options.settings ?? {};
  const caCerts = options.caCertPath
    ? [
      await readPemFile(options.caCertPath, settings.caCert ?? "AWS_KVS_CACERT_PATH", "CA bundle"),
    ]
    : undefined;
  let iot: IotCredentialProvider | undefined;
  let credentials: CredentialProvider;
  if (options.credentials.kind === "iot") {
    const c = options.credentials;
    iot = new IotCredentialProvider({
      endpoint: c.endpoint,
      roleAlias: c.roleAlias,
      thingName: c.thingName,
      certPath: c.certPath,
      keyPath: c.keyPath,
      caCertPath: options.caCertPath,
      caCerts,
      logger: logger.child("credentials"),
      settings,
    });
    credentials = iot;
  } else {
    credentials = new StaticCredentialProvider({
      accessKeyId: options.credentials.accessKeyId,
      secretAccessKey: options.credentials.secretAccessKey,
      sessionToken: options.credentials.sessionToken,
    });
  }
  const httpClient = caCerts ? Deno.createHttpClient({ caCerts }) : undefined;
  const controlPlane = new KvsClient({
    region: options.region,
    credentials,
    endpoint: options.endpoint,
    httpClient,
    logger: logger.child("aws"),
  });
  return {
    credentials,
    controlPlane,
    caCerts,
    httpClient,
    close() {
      iot?.close();
      httpClient?.close();
    },
  };
}
