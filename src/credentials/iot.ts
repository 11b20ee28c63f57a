/**
 * Temporary AWS credentials from the AWS IoT credential provider, over mutual TLS with the
 * device's X.509 certificate.
 *
 * @module
 */
import type { AwsCredentials, CredentialProvider, GetCredentialsOptions } from "./types.ts";
import { CredentialsError } from "./errors.ts";
import {
  checkCertificateValidity,
  type DeviceCertificate,
  loadDeviceCertificate,
} from "./certificate.ts";
import { fetchFailureReason, readPemFile } from "./pem.ts";
import { RefreshingCredentialProvider, type RefreshOptions } from "./refresh.ts";
import { type Logger, silentLogger } from "../log.ts";

/** Options of {@link IotCredentialProvider}. */
export interface IotCredentialProviderOptions extends RefreshOptions {
  /**
   * Credential endpoint: `<prefix>.credentials.iot.<region>.amazonaws.com`, with or without
   * `https://` and a port (`AWS_IOT_CORE_CREDENTIAL_ENDPOINT`).
   */
  endpoint: string;
  /** Role alias (`AWS_IOT_CORE_ROLE_ALIAS`). */
  roleAlias: string;
  /** Thing name, sent as `x-amzn-iot-thingname` (`AWS_IOT_CORE_THING_NAME`). */
  thingName: string;
  /** Device certificate PEM (`AWS_IOT_CORE_CERT`). Default `certificate.pem`. */
  certPath?: string;
  /** Device private key PEM (`AWS_IOT_CORE_PRIVATE_KEY`). Default `private.key`. */
  keyPath?: string;
  /** CA bundle that signs the endpoint's certificate (`AWS_KVS_CACERT_PATH`); default system roots. */
  caCertPath?: string;
  /**
   * The CA bundle's certificates (PEM text) when the caller has read it already: used instead of
   * reading `caCertPath`, so one process reads its CA bundle once.
   */
  caCerts?: string[];
  /** Give up a request after this long, ms (default 10 s). */
  timeoutMs?: number;
  /**
   * Where each setting came from, named in error messages (e.g. `--iot-cert` when the path was
   * given as a flag). Defaults: the C SDK sample's environment variable names.
   */
  settings?: IotSettingNames;
}

/**
 * The flag or environment variable each IoT setting came from, for error messages.
 *
 * @example
 * ```ts
 * import type { IotSettingNames } from "./iot.ts";
 * const settings: IotSettingNames = { cert: "--iot-cert", roleAlias: "AWS_IOT_CORE_ROLE_ALIAS" };
 * ```
 */
export interface IotSettingNames {
  /** Default `AWS_IOT_CORE_CREDENTIAL_ENDPOINT`. */
  endpoint?: string;
  /** Default `AWS_IOT_CORE_ROLE_ALIAS`. */
  roleAlias?: string;
  /** Default `AWS_IOT_CORE_THING_NAME`. */
  thingName?: string;
  /** Default `AWS_IOT_CORE_CERT`. */
  cert?: string;
  /** Default `AWS_IOT_CORE_PRIVATE_KEY`. */
  key?: string;
  /** Default `AWS_KVS_CACERT_PATH`. */
  caCert?: string;
}

const DEFAULT_SETTINGS: Required<IotSettingNames> = {
  endpoint: "AWS_IOT_CORE_CREDENTIAL_ENDPOINT",
  roleAlias: "AWS_IOT_CORE_ROLE_ALIAS",
  thingName: "AWS_IOT_CORE_THING_NAME",
  cert: "AWS_IOT_CORE_CERT",
  key: "AWS_IOT_CORE_PRIVATE_KEY",
  caCert: "AWS_KVS_CACERT_PATH",
};

/**
 * Gets 1-hour (the role alias's setting) credentials with
 * `GET https://<endpoint>/role-aliases/<alias>/credentials` and header `x-amzn-iot-thingname`,
 * authenticated by the device certificate, and refreshes them ahead of expiry (see
 * {@link RefreshingCredentialProvider}). Errors name what to fix: the PEM file and its setting,
 * a key that does not match the certificate, a certificate outside its validity period, a refused
 * TLS handshake (with its reason), 403 (certificate not attached or not allowed), 404 (unknown
 * role alias), a malformed body.
 *
 * Before the first request the certificate and key are checked locally (they parse, the key is
 * the certificate's, see {@link loadDeviceCertificate}); before every request, the certificate's
 * validity dates. Those failures, and a 403 or 404 before any request ever succeeded, are
 * {@link CredentialsError.fatal}: retrying cannot help. Network and TLS failures, 5xx,
 * throttling, and a 403 or 404 after an earlier success (a policy being changed) are not: the
 * caller retries with backoff.
 *
 * @example
 * ```ts
 * import { IotCredentialProvider } from "./iot.ts";
 * const provider = new IotCredentialProvider({
 *   endpoint: "c1example.credentials.iot.us-west-2.amazonaws.com",
 *   roleAlias: "KvsCameraIoTRoleAlias",
 *   thingName: "camera-1",
 *   certPath: "certificate.pem",
 *   keyPath: "private.key",
 *   caCertPath: "cacert.pem",
 * });
 * const creds = await provider.getCredentials();
 * ```
 */
export class IotCredentialProvider implements CredentialProvider {
  readonly #options: IotCredentialProviderOptions;
  readonly #cache: RefreshingCredentialProvider;
  readonly #url: string;
  readonly #log: Logger;
  readonly #names: Required<IotSettingNames>;
  readonly #now: () => number;
  #client: Deno.HttpClient | undefined;
  #device: DeviceCertificate | undefined;
  #succeeded = false;

  /** Validate the settings; files are read on the first request. */
  constructor(options: IotCredentialProviderOptions) {
    const names = { ...DEFAULT_SETTINGS };
    for (const [k, v] of Object.entries(options.settings ?? {})) {
      if (v) names[k as keyof IotSettingNames] = v;
    }
    for (
      const [value, setting] of [
        [options.endpoint, names.endpoint],
        [options.roleAlias, names.roleAlias],
        [options.thingName, names.thingName],
      ] as const
    ) {
      if (!value?.trim()) {
        throw new CredentialsError("CREDENTIALS_MISSING", `${setting} is not set`, {
          setting,
          fatal: true,
        });
      }
    }
    this.#options = options;
    this.#names = names;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger ?? silentLogger;
    this.#url = iotCredentialsUrl(options.endpoint, options.roleAlias, names.endpoint);
    this.#cache = new RefreshingCredentialProvider(() => this.#request(), options);
  }

  /**
   * A provider from the C SDK sample's environment: `AWS_IOT_CORE_CREDENTIAL_ENDPOINT`,
   * `AWS_IOT_CORE_ROLE_ALIAS`, `AWS_IOT_CORE_THING_NAME`, `AWS_IOT_CORE_CERT`,
   * `AWS_IOT_CORE_PRIVATE_KEY`, `AWS_KVS_CACERT_PATH`. A missing setting is named in the error.
   * `env` is whatever the caller passes (the provider reads no environment itself); give
   * `caCerts` when the CA bundle has been read already.
   *
   * @example
   * ```ts
   * import { IotCredentialProvider } from "./iot.ts";
   * const provider = IotCredentialProvider.fromEnv(Deno.env.toObject());
   * ```
   */
  static fromEnv(
    env: Record<string, string | undefined>,
    options: RefreshOptions & { timeoutMs?: number; caCerts?: string[] } = {},
  ): IotCredentialProvider {
    return new IotCredentialProvider({
      ...options,
      endpoint: env.AWS_IOT_CORE_CREDENTIAL_ENDPOINT ?? "",
      roleAlias: env.AWS_IOT_CORE_ROLE_ALIAS ?? "",
      thingName: env.AWS_IOT_CORE_THING_NAME ?? "",
      certPath: env.AWS_IOT_CORE_CERT,
      keyPath: env.AWS_IOT_CORE_PRIVATE_KEY,
      caCertPath: env.AWS_KVS_CACERT_PATH,
    });
  }

  /** The URL requested, e.g. `https://…/role-aliases/<alias>/credentials`. */
  get url(): string {
    return this.#url;
  }

  /** Number of requests made to the credential endpoint. */
  get fetches(): number {
    return this.#cache.fetches;
  }

  /** Valid credentials, from the cache or a new request. */
  getCredentials(options?: GetCredentialsOptions): Promise<AwsCredentials> {
    return this.#cache.getCredentials(options);
  }

  /** Release the TLS client. */
  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  /** Whether a request has succeeded: from then on a 403 or 404 is retried, not fatal. */
  get succeeded(): boolean {
    return this.#succeeded;
  }

  async #httpClient(): Promise<Deno.HttpClient> {
    if (this.#client) return this.#client;
    const certPath = this.#options.certPath ?? "certificate.pem";
    const keyPath = this.#options.keyPath ?? "private.key";
    const names = this.#names;
    const device = await loadDeviceCertificate({
      certPath,
      keyPath,
      certSetting: names.cert,
      keySetting: names.key,
    });
    const caCerts = this.#options.caCerts ??
      (this.#options.caCertPath
        ? [await readPemFile(this.#options.caCertPath, names.caCert, "CA bundle")]
        : undefined);
    try {
      this.#client = Deno.createHttpClient({
        cert: device.certPem,
        key: device.keyPem,
        ...(caCerts ? { caCerts } : {}),
      });
    } catch (cause) {
      throw new CredentialsError(
        "IOT_KEY_MISMATCH",
        `device private key ${keyPath} (set by ${names.key}) cannot be used with ` +
          `certificate ${certPath} (set by ${names.cert}): ${(cause as Error).message}`,
        { cause, setting: names.key, path: keyPath, fatal: true },
      );
    }
    this.#device = device;
    return this.#client;
  }

  async #request(): Promise<AwsCredentials> {
    const client = await this.#httpClient();
    checkCertificateValidity(this.#device!, this.#now());
    const { thingName, roleAlias } = this.#options;
    const names = this.#names;
    let res: Response;
    try {
      res = await fetch(this.#url, {
        client,
        headers: { "x-amzn-iot-thingname": thingName, accept: "application/json" },
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 10_000),
      });
    } catch (cause) {
      const reason = cause instanceof DOMException && cause.name === "TimeoutError"
        ? `no answer within ${this.#options.timeoutMs ?? 10_000} ms`
        : fetchFailureReason(cause);
      throw new CredentialsError(
        "IOT_TLS",
        `IoT credential endpoint ${this.#url} could not be reached or refused the TLS ` +
          `handshake: ${reason}. Check ${names.endpoint}, the device certificate ` +
          `(${names.cert} / ${names.key}) and the CA bundle (${names.caCert})`,
        { cause, setting: names.endpoint },
      );
    }
    const text = await res.text();
    if (!res.ok) {
      const detail = awsMessage(text);
      // Before any success a refusal is a setting to fix; after one, a policy being changed.
      const fatal = !this.#succeeded;
      if (res.status === 403) {
        throw new CredentialsError(
          "IOT_FORBIDDEN",
          `IoT credential provider refused thing "${thingName}" (${names.thingName}) with role ` +
            `alias "${roleAlias}" (403${detail}): is the certificate active, attached to the ` +
            `thing, and allowed iot:AssumeRoleWithCertificate on the role alias?`,
          { status: 403, setting: names.thingName, fatal },
        );
      }
      if (res.status === 404) {
        throw new CredentialsError(
          "IOT_ROLE_ALIAS",
          `IoT role alias "${roleAlias}" not found (404${detail}); check ${names.roleAlias}`,
          { status: 404, setting: names.roleAlias, fatal },
        );
      }
      throw new CredentialsError(
        "IOT_HTTP",
        `IoT credential endpoint answered ${res.status}${detail}`,
        { status: res.status },
      );
    }
    const creds = parseIotCredentials(text);
    this.#succeeded = true;
    this.#log.info("Got IoT credentials", {
      accessKeyId: creds.accessKeyId,
      expiration: creds.expiration?.toISOString(),
    });
    return creds;
  }
}

/**
 * The credentials URL for an endpoint given as a host, `host:port` or URL.
 *
 * @example
 * ```ts
 * import { iotCredentialsUrl } from "./iot.ts";
 * iotCredentialsUrl("c1.credentials.iot.us-west-2.amazonaws.com", "Alias");
 * // "https://c1.credentials.iot.us-west-2.amazonaws.com/role-aliases/Alias/credentials"
 * ```
 */
export function iotCredentialsUrl(
  endpoint: string,
  roleAlias: string,
  setting = "AWS_IOT_CORE_CREDENTIAL_ENDPOINT",
): string {
  const base = /^[a-z]+:\/\//i.test(endpoint.trim())
    ? endpoint.trim()
    : `https://${endpoint.trim()}`;
  let url: URL;
  try {
    url = new URL(base);
  } catch (cause) {
    throw new CredentialsError(
      "CREDENTIALS_MISSING",
      `${setting} "${endpoint}" is not a host name or URL`,
      { cause, setting, fatal: true },
    );
  }
  return `${url.origin}/role-aliases/${encodeURIComponent(roleAlias)}/credentials`;
}

/**
 * Parse the credential provider's body
 * `{"credentials":{"accessKeyId","secretAccessKey","sessionToken","expiration"}}`. Throws
 * {@link CredentialsError} (`IOT_RESPONSE`) naming the missing or malformed field.
 *
 * @example
 * ```ts
 * import { parseIotCredentials } from "./iot.ts";
 * const c = parseIotCredentials(JSON.stringify({ credentials: {
 *   accessKeyId: "ASIAEXAMPLE", secretAccessKey: "s", sessionToken: "t",
 *   expiration: "2030-01-01T00:00:00Z",
 * } }));
 * console.log(c.expiration?.toISOString());
 * ```
 */
export function parseIotCredentials(text: string): AwsCredentials {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    throw new CredentialsError(
      "IOT_RESPONSE",
      `IoT credential endpoint returned a body that is not JSON (${text.length} bytes)`,
      { cause },
    );
  }
  const c = (body as { credentials?: Record<string, unknown> } | null)?.credentials;
  if (!c || typeof c !== "object") {
    throw new CredentialsError("IOT_RESPONSE", 'IoT credential response has no "credentials"');
  }
  for (const field of ["accessKeyId", "secretAccessKey", "sessionToken", "expiration"]) {
    if (typeof c[field] !== "string" || !(c[field] as string)) {
      throw new CredentialsError(
        "IOT_RESPONSE",
        `IoT credential response has no credentials.${field}`,
      );
    }
  }
  const expiration = new Date(c.expiration as string);
  if (Number.isNaN(expiration.getTime())) {
    throw new CredentialsError(
      "IOT_RESPONSE",
      `IoT credential response has an unreadable expiration "${String(c.expiration)}"`,
    );
  }
  return {
    accessKeyId: c.accessKeyId as string,
    secretAccessKey: c.secretAccessKey as string,
    sessionToken: c.sessionToken as string,
    expiration,
  };
}

function awsMessage(text: string): string {
  try {
    const body = JSON.parse(text);
    const m = body?.message ?? body?.Message;
    if (typeof m === "string" && m) return `: ${m.slice(0, 200)}`;
  } catch { /* not JSON */ }
  return "";
}
