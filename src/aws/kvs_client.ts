/**
 * The KVS signaling control plane: Describe, Create, Get Endpoint, Get ICE Server
 * Configuration, Delete, and the presigned signaling URL.
 *
 * @module
 */
import type { CredentialProvider } from "../credentials/types.ts";
import { fetchFailureReason, readPemFile } from "../credentials/pem.ts";
import { type Logger, redact, silentLogger } from "../log.ts";
import { ClockSkew } from "./clock.ts";
import { AwsNetworkError, AwsResponseError, AwsServiceError } from "./errors.ts";
import { isRetryable, RetryPolicy, type RetryPolicyOptions } from "./retry.ts";
import { presignUrl, signJsonPost } from "./sigv4.ts";
import type { ChannelInfo, IceServer, SignalingControlPlane, SignalingEndpoints } from "./types.ts";

/** Options of {@link KvsClient}. */
export interface KvsClientOptions {
  /** AWS region, e.g. `us-west-2`. */
  region: string;
  /** Where signing keys come from; refreshed once after a 401/403. */
  credentials: CredentialProvider;
  /**
   * Control-plane endpoint override (an emulator, another stage). Default: the region's,
   * `https://kinesisvideo.<region>.amazonaws.com` (see {@link controlPlaneEndpoint}).
   */
  endpoint?: string;
  /** HTTP client for every call, e.g. from {@link createCaHttpClient}. */
  httpClient?: Deno.HttpClient;
  /** Retries of 5xx/throttling/network failures. */
  retry?: RetryPolicyOptions;
  /** Give up one attempt after this long, ms (default 10 s). */
  timeoutMs?: number;
  /** Clock offsets per endpoint (shared with other clients if you like). */
  clock?: ClockSkew;
  /** ClientId for Get ICE Server Configuration when none is given. Default `ProducerMaster`. */
  clientId?: string;
  /** Logger for retries and clock corrections (default silent). */
  logger?: Logger;
}

/**
 * The control-plane endpoint for `region`: `override` when given (trailing slashes dropped), else
 * the region's standard endpoint.
 *
 * @example
 * ```ts
 * import { controlPlaneEndpoint } from "./kvs_client.ts";
 * controlPlaneEndpoint("us-west-2"); // "https://kinesisvideo.us-west-2.amazonaws.com"
 * controlPlaneEndpoint("us-west-2", "https://127.0.0.1:4443/"); // "https://127.0.0.1:4443"
 * ```
 */
export function controlPlaneEndpoint(region: string, override?: string): string {
  const given = override?.trim();
  if (given) return given.replace(/\/+$/, "");
  const suffix = region.startsWith("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
  return `https://kinesisvideo.${region}.${suffix}`;
}

/**
 * An HTTP client trusting the CA bundle at `caCertPath` (`AWS_KVS_CACERT_PATH`) in addition to
 * the system roots. Use the same for the control plane and the signaling WebSocket. `setting`
 * names where the path came from in errors.
 *
 * @example
 * ```ts
 * import { createCaHttpClient } from "./kvs_client.ts";
 * const client = await createCaHttpClient("cacert.pem");
 * const ws = new WebSocket("wss://127.0.0.1:4443/", { client } as unknown as string[]);
 * ```
 */
export async function createCaHttpClient(
  caCertPath: string,
  setting = "AWS_KVS_CACERT_PATH",
): Promise<Deno.HttpClient> {
  const ca = await readPemFile(caCertPath, setting, "CA bundle");
  return Deno.createHttpClient({ caCerts: [ca] });
}

interface CallOptions {
  operation: string;
  url: string;
  body: unknown;
  signal?: AbortSignal;
}

/**
 * SigV4-signed client of the KVS control plane (service `kinesisvideo`). Each call: signs with
 * the current credentials at the endpoint's skew-corrected time; on 401/403 gets credentials
 * again (forced) and retries once; on a clock error re-signs with the offset learned from the
 * `Date` header; retries 5xx, throttling and network failures with full-jitter backoff; maps
 * AWS error bodies to {@link AwsServiceError}.
 *
 * @example
 * ```ts
 * import { KvsClient } from "./kvs_client.ts";
 * import { EnvCredentialProvider } from "../credentials/env.ts";
 * const kvs = new KvsClient({ region: "us-west-2", credentials: new EnvCredentialProvider() });
 * const info = await kvs.describeSignalingChannel("demo-channel");
 * const endpoints = await kvs.getSignalingChannelEndpoint(info.ChannelARN, "MASTER");
 * const ice = await kvs.getIceServerConfig(endpoints.https, info.ChannelARN, "ProducerMaster");
 * ```
 */
export class KvsClient implements SignalingControlPlane {
  /** Control-plane endpoint in use. */
  readonly endpoint: string;
  /** Region. */
  readonly region: string;
  readonly #credentials: CredentialProvider;
  readonly #client?: Deno.HttpClient;
  readonly #retry: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #clock: ClockSkew;
  readonly #clientId: string;
  readonly #log: Logger;

  /** Configure; nothing is sent until a call. */
  constructor(options: KvsClientOptions) {
    this.region = options.region;
    this.endpoint = controlPlaneEndpoint(options.region, options.endpoint);
    this.#credentials = options.credentials;
    this.#client = options.httpClient;
    this.#retry = new RetryPolicy(options.retry);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#clock = options.clock ?? new ClockSkew();
    this.#clientId = options.clientId ?? "ProducerMaster";
    this.#log = options.logger ?? silentLogger;
  }

  /** The clock offsets learned so far. */
  get clock(): ClockSkew {
    return this.#clock;
  }

  /** `POST /describeSignalingChannel`. */
  async describeSignalingChannel(channelName: string): Promise<ChannelInfo> {
    const body = await this.#call({
      operation: "DescribeSignalingChannel",
      url: `${this.endpoint}/describeSignalingChannel`,
      body: { ChannelName: channelName },
    });
    const info = (body as { ChannelInfo?: ChannelInfo }).ChannelInfo;
    if (!info || typeof info.ChannelARN !== "string" || typeof info.ChannelStatus !== "string") {
      throw new AwsResponseError(
        "DescribeSignalingChannel",
        "ChannelInfo with ChannelARN and ChannelStatus missing",
      );
    }
    return info;
  }

  /** `POST /createSignalingChannel` (SINGLE_MASTER, MessageTtlSeconds 60). */
  async createSignalingChannel(channelName: string): Promise<string> {
    const body = await this.#call({
      operation: "CreateSignalingChannel",
      url: `${this.endpoint}/createSignalingChannel`,
      body: {
        ChannelName: channelName,
        ChannelType: "SINGLE_MASTER",
        SingleMasterConfiguration: { MessageTtlSeconds: 60 },
      },
    });
    const arn = (body as { ChannelARN?: unknown }).ChannelARN;
    if (typeof arn !== "string" || !arn) {
      throw new AwsResponseError("CreateSignalingChannel", "ChannelARN missing");
    }
    return arn;
  }

  /** `POST /getSignalingChannelEndpoint` with Protocols WSS and HTTPS. */
  async getSignalingChannelEndpoint(
    channelArn: string,
    role: "MASTER" | "VIEWER",
  ): Promise<SignalingEndpoints> {
    const body = await this.#call({
      operation: "GetSignalingChannelEndpoint",
      url: `${this.endpoint}/getSignalingChannelEndpoint`,
      body: {
        ChannelARN: channelArn,
        SingleMasterChannelEndpointConfiguration: { Protocols: ["WSS", "HTTPS"], Role: role },
      },
    });
    const list = (body as { ResourceEndpointList?: unknown }).ResourceEndpointList;
    if (!Array.isArray(list)) {
      throw new AwsResponseError("GetSignalingChannelEndpoint", "ResourceEndpointList missing");
    }
    const find = (p: string) =>
      list.find((e) => e?.Protocol === p && typeof e.ResourceEndpoint === "string")
        ?.ResourceEndpoint as string | undefined;
    const wss = find("WSS");
    const https = find("HTTPS");
    if (!wss || !https) {
      throw new AwsResponseError(
        "GetSignalingChannelEndpoint",
        `expected WSS and HTTPS endpoints, got ${list.map((e) => e?.Protocol).join(", ")}`,
      );
    }
    return { wss, https };
  }

  /** `POST <https>/v1/get-ice-server-config` with Service TURN. */
  async getIceServerConfig(
    httpsEndpoint: string,
    channelArn: string,
    clientId: string = this.#clientId,
  ): Promise<IceServer[]> {
    const body = await this.#call({
      operation: "GetIceServerConfig",
      url: `${httpsEndpoint.replace(/\/+$/, "")}/v1/get-ice-server-config`,
      body: { ChannelARN: channelArn, ClientId: clientId, Service: "TURN" },
    });
    const list = (body as { IceServerList?: unknown }).IceServerList;
    if (!Array.isArray(list)) {
      throw new AwsResponseError("GetIceServerConfig", "IceServerList is not an array");
    }
    return list.map((s, i) => {
      if (!s || !Array.isArray(s.Uris) || !s.Uris.every((u: unknown) => typeof u === "string")) {
        throw new AwsResponseError("GetIceServerConfig", `IceServerList[${i}].Uris is missing`);
      }
      return {
        urls: s.Uris as string[],
        username: typeof s.Username === "string" ? s.Username : undefined,
        credential: typeof s.Password === "string" ? s.Password : undefined,
        ttlSeconds: typeof s.Ttl === "number" ? s.Ttl : undefined,
      };
    });
  }

  /** `POST /deleteSignalingChannel`. */
  async deleteSignalingChannel(channelArn: string, currentVersion?: string): Promise<void> {
    await this.#call({
      operation: "DeleteSignalingChannel",
      url: `${this.endpoint}/deleteSignalingChannel`,
      body: {
        ChannelARN: channelArn,
        ...(currentVersion ? { CurrentVersion: currentVersion } : {}),
      },
    });
  }

  /** Presigned `wss://…/?X-Amz-ChannelARN=…[&X-Amz-ClientId=…]` (299 s). */
  async presignSignalingUrl(
    wssEndpoint: string,
    channelArn: string,
    clientId?: string,
  ): Promise<string> {
    const url = new URL(wssEndpoint);
    if (url.pathname === "") url.pathname = "/";
    url.searchParams.set("X-Amz-ChannelARN", channelArn);
    if (clientId) url.searchParams.set("X-Amz-ClientId", clientId);
    const creds = await this.#credentials.getCredentials();
    return await presignUrl(creds, {
      url: url.href,
      region: this.region,
      time: this.#clock.now(url.host),
    });
  }

  async #call(call: CallOptions): Promise<unknown> {
    const text = JSON.stringify(call.body);
    const host = new URL(call.url).host;
    let authRetried = false;
    let skewRetried = false;
    for (let attempt = 0;; attempt++) {
      const creds = await this.#credentials.getCredentials({ forceRefresh: authRetried });
      const signed = await signJsonPost(creds, {
        url: call.url,
        body: text,
        region: this.region,
        time: this.#clock.now(host),
      });
      let res: Response;
      try {
        res = await fetch(signed.url, {
          method: "POST",
          headers: signed.headers,
          body: text,
          client: this.#client,
          signal: call.signal ?? AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (cause) {
        const reason = cause instanceof DOMException && cause.name === "TimeoutError"
          ? `no answer within ${this.#timeoutMs} ms`
          : fetchFailureReason(cause);
        if (attempt + 1 < this.#retry.maxAttempts) {
          this.#log.warn(`${call.operation}: ${reason}; retrying`);
          await this.#retry.wait(attempt);
          continue;
        }
        throw new AwsNetworkError(call.operation, call.url, reason, { cause });
      }
      const skewChanged = this.#clock.learn(host, res.headers.get("date"));
      const body = await res.text();
      if (res.ok) {
        if (!body.trim()) return {};
        try {
          return JSON.parse(body);
        } catch (cause) {
          throw new AwsResponseError(call.operation, "the response body is not JSON", { cause });
        }
      }
      const error = parseAwsError(call.operation, res, body);
      this.#log.debug(redact(error.message));
      if ((res.status === 401 || res.status === 403) && skewChanged && !skewRetried) {
        skewRetried = true;
        this.#log.warn(
          `${call.operation}: clock off by ${Math.round(this.#clock.offset(host) / 1000)} s ` +
            `from ${host}; signing again with the corrected time`,
        );
        attempt--;
        continue;
      }
      if ((res.status === 401 || res.status === 403) && !authRetried) {
        authRetried = true;
        this.#log.info(`${call.operation}: ${error.errorType}; getting credentials again`);
        attempt--;
        continue;
      }
      if (isRetryable(res.status, error.errorType) && attempt + 1 < this.#retry.maxAttempts) {
        this.#log.warn(`${call.operation}: ${res.status} ${error.errorType}; retrying`);
        await this.#retry.wait(attempt);
        continue;
      }
      throw error;
    }
  }
}

/**
 * Map an AWS JSON error answer to {@link AwsServiceError}: type from `x-amzn-ErrorType` (before
 * any `:`) or the body's `__type` (after any `#`), message from `message`/`Message`.
 *
 * @example
 * ```ts
 * import { parseAwsError } from "./kvs_client.ts";
 * const res = new Response('{"message":"not found"}', {
 *   status: 404,
 *   headers: { "x-amzn-ErrorType": "ResourceNotFoundException:http://internal.amazon.com/" },
 * });
 * parseAwsError("DescribeSignalingChannel", res, '{"message":"not found"}').errorType;
 * // "ResourceNotFoundException"
 * ```
 */
export function parseAwsError(operation: string, res: Response, body: string): AwsServiceError {
  let json: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(body);
    if (parsed && typeof parsed === "object") json = parsed;
  } catch { /* not JSON */ }
  const header = res.headers.get("x-amzn-errortype")?.split(":")[0];
  const bodyType = typeof json.__type === "string" ? json.__type.split("#").pop() : undefined;
  const message = [json.message, json.Message].find((m) => typeof m === "string") as
    | string
    | undefined;
  return new AwsServiceError({
    operation,
    status: res.status,
    errorType: header || bodyType || `HTTP${res.status}`,
    message: message ?? (body.trim().slice(0, 200) || res.statusText || "no message"),
    requestId: res.headers.get("x-amzn-requestid") ?? undefined,
  });
}
