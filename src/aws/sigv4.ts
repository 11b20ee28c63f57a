/**
 * SigV4 signing with aws4fetch: signed JSON POSTs and presigned WebSocket URLs.
 *
 * @module
 */
import { AwsV4Signer } from "aws4fetch";
import type { AwsCredentials } from "../credentials/types.ts";
import { amzDate } from "./clock.ts";

/** What {@link signJsonPost} signs. */
export interface SignJsonPostOptions {
  /** Full URL, e.g. `https://kinesisvideo.us-west-2.amazonaws.com/describeSignalingChannel`. */
  url: string;
  /** JSON text of the body. */
  body: string;
  /** AWS region of the credential scope. */
  region: string;
  /** Default `kinesisvideo`. */
  service?: string;
  /** Signing time, ms since the epoch (corrected for clock skew). Default now. */
  time?: number;
}

/**
 * Sign a JSON `POST` (headers `host`, `x-amz-date`, `x-amz-security-token` for temporary
 * credentials, `content-type`, `authorization`). Returns the method, URL, headers and body to
 * send.
 *
 * @example
 * ```ts
 * import { signJsonPost } from "./sigv4.ts";
 * const signed = await signJsonPost(
 *   { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
 *   {
 *     url: "https://kinesisvideo.us-west-2.amazonaws.com/describeSignalingChannel",
 *     body: JSON.stringify({ ChannelName: "demo-channel" }),
 *     region: "us-west-2",
 *   },
 * );
 * console.log(signed.headers.get("authorization")?.startsWith("AWS4-HMAC-SHA256"));
 * ```
 */
export async function signJsonPost(
  credentials: AwsCredentials,
  options: SignJsonPostOptions,
): Promise<{ method: string; url: URL; headers: Headers; body: string }> {
  const signer = new AwsV4Signer({
    method: "POST",
    url: options.url,
    headers: { "content-type": "application/json" },
    body: options.body,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
    service: options.service ?? "kinesisvideo",
    region: options.region,
    datetime: amzDate(options.time ?? Date.now()),
  });
  const signed = await signer.sign();
  return { method: signed.method, url: signed.url, headers: signed.headers, body: options.body };
}

/** What {@link presignUrl} signs. */
export interface PresignOptions {
  /** URL with its own query already set, e.g. `wss://m-….kinesisvideo…/?X-Amz-ChannelARN=…`. */
  url: string;
  /** AWS region of the credential scope. */
  region: string;
  /** Default `kinesisvideo`. */
  service?: string;
  /** Lifetime of the URL, seconds (default 299, as the KVS JS SDK uses). */
  expiresSeconds?: number;
  /** Signing time, ms since the epoch. Default now. */
  time?: number;
}

/**
 * Presign a URL in its query string: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
 * `X-Amz-Expires`, `X-Amz-SignedHeaders=host`, the security token inside the canonical query,
 * then `X-Amz-Signature`.
 *
 * @example
 * ```ts
 * import { presignUrl } from "./sigv4.ts";
 * const url = await presignUrl(
 *   { accessKeyId: "ASIAEXAMPLE", secretAccessKey: "secret", sessionToken: "token" },
 *   {
 *     url: "wss://m-1234.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-ChannelARN=arn%3Aaws%3A…",
 *     region: "us-west-2",
 *   },
 * );
 * ```
 */
export async function presignUrl(
  credentials: AwsCredentials,
  options: PresignOptions,
): Promise<string> {
  const url = new URL(options.url);
  url.searchParams.set("X-Amz-Expires", String(options.expiresSeconds ?? 299));
  const signer = new AwsV4Signer({
    method: "GET",
    url: url.href,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
    service: options.service ?? "kinesisvideo",
    region: options.region,
    datetime: amzDate(options.time ?? Date.now()),
    signQuery: true,
  });
  return (await signer.sign()).url.href;
}
