/**
 * Builds a master's AWS side from its configuration: the credential provider (AWS IoT over
 * mutual TLS when its settings are present, else keys) and the SigV4 control-plane client, both
 * trusting the CA bundle of `AWS_KVS_CACERT_PATH` when one is given.
 *
 * @module
 */
import { createCaHttpClient, KvsClient } from "./aws/kvs_client.ts";
import { readPemFile } from "./credentials/pem.ts";
import { IotCredentialProvider } from "./credentials/iot.ts";
import { StaticCredentialProvider } from "./credentials/static.ts";
import type { CredentialProvider } from "./credentials/types.ts";
import type { MasterConfig } from "./config.ts";
import { type Logger, silentLogger } from "./log.ts";

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
  /** The CA bundle's certificates, for the signaling WebSocket. */
  caCerts?: string[];
  /** Release TLS clients. */
  close(): void;
}

/**
 * Create the credential provider and control-plane client for `config`. A missing or unreadable
 * CA bundle throws a fatal {@link import("./credentials/errors.ts").CredentialsError}; errors
 * name the flag or variable each path came from (`config.sources`).
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * import { createAwsServices } from "./services.ts";
 * const config = parseConfig([], Deno.env.toObject());
 * const services = await createAwsServices(config);
 * const info = await services.controlPlane.describeSignalingChannel(config.channelName);
 * services.close();
 * ```
 */
export async function createAwsServices(
  config: MasterConfig,
  logger: Logger = silentLogger,
): Promise<AwsServices> {
  const from = config.sources ?? {};
  const caSetting = from["ca-cert"] ?? "AWS_KVS_CACERT_PATH";
  const caCerts = config.caCertPath
    ? [await readPemFile(config.caCertPath, caSetting, "CA bundle")]
    : undefined;
  let iot: IotCredentialProvider | undefined;
  let credentials: CredentialProvider;
  if (config.credentials.kind === "iot") {
    const c = config.credentials;
    iot = new IotCredentialProvider({
      endpoint: c.endpoint,
      roleAlias: c.roleAlias,
      thingName: c.thingName,
      certPath: c.certPath,
      keyPath: c.keyPath,
      caCertPath: config.caCertPath,
      logger: logger.child("credentials"),
      settings: {
        endpoint: from["iot-credential-endpoint"],
        roleAlias: from["iot-role-alias"],
        thingName: from["iot-thing-name"],
        cert: from["iot-cert"],
        key: from["iot-private-key"],
        caCert: from["ca-cert"],
      },
    });
    credentials = iot;
  } else {
    credentials = new StaticCredentialProvider({
      accessKeyId: config.credentials.accessKeyId,
      secretAccessKey: config.credentials.secretAccessKey,
      sessionToken: config.credentials.sessionToken,
    });
  }
  const httpClient = config.caCertPath
    ? await createCaHttpClient(config.caCertPath, caSetting)
    : undefined;
  const controlPlane = new KvsClient({
    region: config.region,
    credentials,
    endpoint: config.endpointUrl,
    httpClient,
    logger: logger.child("aws"),
  });
  return {
    credentials,
    controlPlane,
    caCerts,
    close() {
      iot?.close();
      httpClient?.close();
    },
  };
}
