/**
 * Checks SigV4 signatures the way AWS does, with an implementation independent of the client's:
 * the official `@smithy/signature-v4` recomputes each signature from the request as received.
 *
 * @module
 */
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";

/**
 * Secret of an access key the emulator issued, and when it stops working.
 *
 * @example
 * ```ts
 * import type { IssuedKey } from "./sigv4_verify.ts";
 * const key: IssuedKey = { secretAccessKey: "…", sessionToken: "…", expiresAt: Date.now() + 3600_000 };
 * ```
 */
export interface IssuedKey {
  /** The secret the signature must be made with. */
  secretAccessKey: string;
  /** Required in the request (`x-amz-security-token`) for temporary keys. */
  sessionToken?: string;
  /** ms since the epoch; absent for long-term keys. */
  expiresAt?: number;
}

/**
 * Why a request was refused: HTTP status, AWS error type and message, as AWS words them.
 *
 * @example
 * ```ts
 * import type { AuthFailure } from "./sigv4_verify.ts";
 * const f: AuthFailure = { status: 403, type: "ExpiredTokenException", message: "expired" };
 * ```
 */
export interface AuthFailure {
  /** HTTP status (400 or 403). */
  status: number;
  /** AWS error type for `x-amzn-ErrorType`. */
  type: string;
  /** AWS's wording for the `{"message"}` body. */
  message: string;
}

/**
 * The parts of a received request a signature covers.
 *
 * @example
 * ```ts
 * import type { ReceivedRequest } from "./sigv4_verify.ts";
 * const req: ReceivedRequest = {
 *   method: "POST", url: new URL("https://127.0.0.1:1/x"), headers: new Headers(), body: "{}",
 * };
 * ```
 */
export interface ReceivedRequest {
  /** HTTP method. */
  method: string;
  /** Full URL as received (host, path, query). */
  url: URL;
  /** Headers as received. */
  headers: Headers;
  /** Body text (empty for GET). */
  body: string;
}

const FIVE_MIN = 5 * 60_000;

function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, "");
}

function parseAmzDate(s: string | null): number | undefined {
  const m = s?.match(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/);
  if (!m) return undefined;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
}

function fail(status: number, type: string, message: string): AuthFailure {
  return { status, type, message };
}

/**
 * Verifies header-signed and query-presigned SigV4 requests for one service.
 *
 * @example
 * ```ts
 * import { SigV4Verifier } from "./sigv4_verify.ts";
 * const keys = new Map([["AKIDEXAMPLE", { secretAccessKey: "secret" }]]);
 * const verifier = new SigV4Verifier({ service: "kinesisvideo", keys, now: () => Date.now() });
 * ```
 */
export class SigV4Verifier {
  readonly #service: string;
  readonly #region?: string;
  readonly #keys: Map<string, IssuedKey>;
  readonly #now: () => number;

  /**
   * `keys` is read at each check, so keys issued later are accepted. With `region`, a credential
   * scoped to another region is refused, as AWS's regional endpoints refuse it.
   */
  constructor(
    options: { service: string; region?: string; keys: Map<string, IssuedKey>; now: () => number },
  ) {
    this.#service = options.service;
    this.#region = options.region;
    this.#keys = options.keys;
    this.#now = options.now;
  }

  /** Check an `Authorization: AWS4-HMAC-SHA256 …` request; `undefined` when it is valid. */
  async verifyHeaders(req: ReceivedRequest): Promise<AuthFailure | undefined> {
    const auth = req.headers.get("authorization");
    if (!auth) {
      return fail(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
    }
    const m = auth.match(
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/,
    );
    if (!m) {
      return fail(
        400,
        "IncompleteSignatureException",
        "Authorization header requires Credential, SignedHeaders and Signature",
      );
    }
    const [, keyId, , region, service, signedHeaders, signature] = m;
    const date = parseAmzDate(req.headers.get("x-amz-date"));
    if (date === undefined) {
      return fail(400, "IncompleteSignatureException", "Missing or malformed X-Amz-Date header");
    }
    const pre = this.#checkKey(keyId, service, region, req.headers.get("x-amz-security-token"));
    if (pre) return pre;
    const skew = this.#checkSkew(date);
    if (skew) return skew;
    const names = signedHeaders.split(";");
    if (!names.includes("host")) {
      return fail(403, "InvalidSignatureException", "'Host' must be a signed header");
    }
    const headers: Record<string, string> = {};
    for (const n of names) {
      const v = n === "host" ? req.headers.get("host") ?? req.url.host : req.headers.get(n);
      if (v === null) {
        return fail(403, "InvalidSignatureException", `Signed header ${n} is missing`);
      }
      headers[n] = v;
    }
    const key = this.#keys.get(keyId)!;
    const signer = this.#signer(region, keyId, key);
    const signed = await signer.sign({
      method: req.method,
      protocol: req.url.protocol,
      hostname: req.url.hostname,
      port: req.url.port ? Number(req.url.port) : undefined,
      path: req.url.pathname,
      query: queryObject(req.url.searchParams),
      headers,
      body: req.body,
    }, { signingDate: new Date(date), signableHeaders: new Set(names) });
    const expected = String(signed.headers["authorization"] ?? "").match(/Signature=([0-9a-f]+)/)
      ?.[1];
    if (expected !== signature) {
      return fail(
        403,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. " +
          "Check your AWS Secret Access Key and signing method.",
      );
    }
    return undefined;
  }

  /** Check a presigned URL (`X-Amz-Signature` in the query); `undefined` when it is valid. */
  async verifyQuery(req: ReceivedRequest): Promise<AuthFailure | undefined> {
    const q = req.url.searchParams;
    const credential = q.get("X-Amz-Credential");
    const signature = q.get("X-Amz-Signature");
    if (q.get("X-Amz-Algorithm") !== "AWS4-HMAC-SHA256" || !credential || !signature) {
      return fail(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
    }
    const m = credential.match(/^([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request$/);
    const date = parseAmzDate(q.get("X-Amz-Date"));
    const expires = Number(q.get("X-Amz-Expires"));
    const names = (q.get("X-Amz-SignedHeaders") ?? "").split(";");
    if (!m || date === undefined || !Number.isInteger(expires) || expires <= 0) {
      return fail(400, "IncompleteSignatureException", "Malformed presigned query");
    }
    if (expires > 604800) {
      return fail(400, "AuthorizationQueryParametersError", "X-Amz-Expires must be <= 604800");
    }
    const [, keyId, , region, service] = m;
    const pre = this.#checkKey(keyId, service, region, q.get("X-Amz-Security-Token"));
    if (pre) return pre;
    const now = this.#now();
    if (date - now > FIVE_MIN) return this.#checkSkew(date);
    if (now > date + expires * 1000) {
      return fail(403, "InvalidSignatureException", `Signature expired: ${amzDate(date)}`);
    }
    const query: Record<string, string> = {};
    for (const [k, v] of q) {
      if (
        !["X-Amz-Signature", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date"].includes(k) &&
        !["X-Amz-SignedHeaders", "X-Amz-Expires", "X-Amz-Security-Token"].includes(k)
      ) query[k] = v;
    }
    const headers: Record<string, string> = {};
    for (const n of names) {
      const v = n === "host" ? req.headers.get("host") ?? req.url.host : req.headers.get(n);
      if (v !== null) headers[n] = v;
    }
    const key = this.#keys.get(keyId)!;
    const presigned = await this.#signer(region, keyId, key).presign({
      method: req.method,
      protocol: req.url.protocol,
      hostname: req.url.hostname,
      port: req.url.port ? Number(req.url.port) : undefined,
      path: req.url.pathname,
      query,
      headers,
    }, { signingDate: new Date(date), expiresIn: expires, signableHeaders: new Set(names) });
    if (presigned.query?.["X-Amz-Signature"] !== signature) {
      return fail(
        403,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided.",
      );
    }
    return undefined;
  }

  #signer(region: string, keyId: string, key: IssuedKey): SignatureV4 {
    return new SignatureV4({
      service: this.#service,
      region,
      sha256: Sha256,
      // AWS's JSON services do not require x-amz-content-sha256: sign only what the client did.
      applyChecksum: false,
      credentials: {
        accessKeyId: keyId,
        secretAccessKey: key.secretAccessKey,
        sessionToken: key.sessionToken,
      },
    });
  }

  #checkKey(
    keyId: string,
    service: string,
    region: string,
    token: string | null,
  ): AuthFailure | undefined {
    if (this.#region !== undefined && region !== this.#region) {
      return fail(
        403,
        "InvalidSignatureException",
        `Credential should be scoped to a valid region, not '${region}'. `,
      );
    }
    if (service !== this.#service) {
      return fail(
        403,
        "InvalidSignatureException",
        `Credential should be scoped to correct service: '${this.#service}'.`,
      );
    }
    const key = this.#keys.get(keyId);
    if (!key) {
      return fail(
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    if (key.sessionToken !== undefined && token !== key.sessionToken) {
      return fail(
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    if (key.expiresAt !== undefined && key.expiresAt <= this.#now()) {
      return fail(
        403,
        "ExpiredTokenException",
        "The security token included in the request is expired",
      );
    }
    return undefined;
  }

  #checkSkew(date: number): AuthFailure | undefined {
    const now = this.#now();
    if (Math.abs(now - date) <= FIVE_MIN) return undefined;
    const message = date < now
      ? `Signature expired: ${amzDate(date)} is now earlier than ${amzDate(now - FIVE_MIN)} ` +
        `(${amzDate(now)} - 5 min.)`
      : `Signature not yet current: ${amzDate(date)} is still later than ` +
        `${amzDate(now + FIVE_MIN)} (${amzDate(now)} + 5 min.)`;
    return fail(403, "InvalidSignatureException", message);
  }
}

function queryObject(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of params) out[k] = v;
  return out;
}
