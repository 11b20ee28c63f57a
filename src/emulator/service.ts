/**
 * The emulated KVS service: control plane, `/v1/get-ice-server-config` and the signaling
 * WebSocket relay, every request SigV4-verified by {@link SigV4Verifier}, with fault injection.
 * This module answers HTTP: CORS, SigV4, injected faults, the request log and AWS's error shape;
 * the operations are the {@link ControlPlane}'s (control_plane.ts), the WebSocket connections the
 * {@link SignalingRelay}'s (relay.ts).
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { type AuthFailure, type IssuedKey, SigV4Verifier } from "./sigv4_verify.ts";
import type { TurnServer } from "./turn.ts";
import { ControlPlane, type TurnTransport } from "./control_plane.ts";
import { isFailure } from "./errors.ts";
import { SignalingRelay } from "./relay.ts";
import { FaultQueue, type InjectedFault, recordRequest, type RequestLogEntry } from "./faults.ts";

/**
 * Settings of {@link KvsService}.
 *
 * @example
 * ```ts
 * import type { KvsServiceOptions } from "./service.ts";
 * const options: KvsServiceOptions = {
 *   region: "us-west-2", account: "123456789012", keys: new Map(), plainTcpTurn: false,
 *   iceServerTtlSeconds: 300, maxConnectionMs: 3600_000, idleTimeoutMs: 600_000,
 *   channelCreatingMs: 100,
 * };
 * ```
 */
export interface KvsServiceOptions {
  /** Region of channel ARNs. */
  region: string;
  /** Account id of channel ARNs. */
  account: string;
  /** Accepted access keys; read at each request, so keys added later work. */
  keys: Map<string, IssuedKey>;
  /** The TURN server the ICE configuration points at. */
  turn?: TurnServer;
  /** Add `turn:…?transport=tcp` to each ICE server (AWS lists only UDP and TLS). */
  plainTcpTurn: boolean;
  /** `Ttl` of each ICE server, seconds. */
  iceServerTtlSeconds: number;
  /** Longest signaling connection, ms. */
  maxConnectionMs: number;
  /** Idle signaling connections close after this, ms. */
  idleTimeoutMs: number;
  /** How long a new channel stays `CREATING`, ms. */
  channelCreatingMs: number;
  /** Where refused signaling messages are noted (debug). */
  logger?: Logger;
}

const CORS: Record<string, string> = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "POST, GET, OPTIONS",
  "access-control-allow-headers":
    "authorization, content-type, x-amz-date, x-amz-security-token, x-amz-user-agent, " +
    "x-amz-content-sha256, amz-sdk-invocation-id, amz-sdk-request",
  "access-control-expose-headers": "x-amzn-ErrorType, x-amzn-RequestId, Date",
  "access-control-max-age": "600",
};

/**
 * The service state and its HTTP/WebSocket handler.
 *
 * @example
 * ```ts
 * import { KvsService } from "./service.ts";
 * const service = new KvsService({
 *   region: "us-west-2", account: "123456789012", keys: new Map(), plainTcpTurn: false,
 *   iceServerTtlSeconds: 300, maxConnectionMs: 3600_000, idleTimeoutMs: 600_000,
 *   channelCreatingMs: 100,
 * });
 * const server = Deno.serve({ port: 0, hostname: "127.0.0.1" }, (req) => service.handle(req, "http"));
 * ```
 */
export class KvsService {
  /** Requests answered, oldest first (bounded to the last 2000). */
  readonly requests: RequestLogEntry[] = [];
  /** Added to the emulator's clock (ms): the service's `Date` and signature checks use it. */
  clockSkewMs = 0;
  readonly #verifier: SigV4Verifier;
  readonly #control: ControlPlane;
  readonly #relay: SignalingRelay;
  readonly #faults = new FaultQueue();

  /** Configure the service. */
  constructor(options: KvsServiceOptions) {
    this.#verifier = new SigV4Verifier({
      service: "kinesisvideo",
      region: options.region,
      keys: options.keys,
      now: () => this.now(),
    });
    this.#control = new ControlPlane({
      region: options.region,
      account: options.account,
      turn: options.turn,
      plainTcpTurn: options.plainTcpTurn,
      iceServerTtlSeconds: options.iceServerTtlSeconds,
      channelCreatingMs: options.channelCreatingMs,
      now: () => this.now(),
    });
    this.#relay = new SignalingRelay({
      maxConnectionMs: options.maxConnectionMs,
      idleTimeoutMs: options.idleTimeoutMs,
      requests: this.requests,
      requireChannel: (arn) => {
        this.#control.channelByArn(arn);
      },
      logger: options.logger,
    });
  }

  /**
   * When set, ICE configurations list only these ways to reach TURN: `udp` (`turn:…?transport=udp`),
   * `tcp` (`turn:…?transport=tcp`), `tls` (`turns:…?transport=tcp`), `dtls`
   * (`turns:…?transport=udp`). For tests of one relay transport at a time.
   */
  get turnTransports(): TurnTransport[] | undefined {
    return this.#control.turnTransports;
  }
  set turnTransports(v: TurnTransport[] | undefined) {
    this.#control.turnTransports = v;
  }

  /** Longest a signaling connection lives (ms). */
  get maxConnectionMs(): number {
    return this.#relay.maxConnectionMs;
  }
  set maxConnectionMs(v: number) {
    this.#relay.maxConnectionMs = v;
  }

  /** Idle signaling connections close after this (ms). */
  get idleTimeoutMs(): number {
    return this.#relay.idleTimeoutMs;
  }
  set idleTimeoutMs(v: number) {
    this.#relay.idleTimeoutMs = v;
  }

  /** The service's clock (with skew). */
  now(): number {
    return Date.now() + this.clockSkewMs;
  }

  /**
   * Make the next `count` control-plane requests (optionally only to `paths`) fail. Signaling
   * WebSocket upgrades (path `/`) fail only when `paths` lists `/`.
   */
  failNext(count: number, kind: InjectedFault, paths?: string[]): void {
    this.#faults.add(count, kind, paths);
  }

  /** Channels that exist. */
  channels(): { name: string; arn: string; status: string }[] {
    return this.#control.channels();
  }

  /** Connected clients per channel. */
  connections(): { channelArn: string; master: boolean; viewers: string[] }[] {
    return this.#relay.connections();
  }

  /** Close every master socket at once (code 1011), as a dropped connection. */
  dropMasters(): number {
    return this.#relay.dropMasters();
  }

  /**
   * Send a service message (`GO_AWAY`, `RECONNECT_ICE_SERVER`) to every master; with
   * `closeAfterMs`, also close those connections that long afterwards (1000), as AWS does after
   * `GO_AWAY`.
   */
  notifyMasters(messageType: "GO_AWAY" | "RECONNECT_ICE_SERVER", closeAfterMs?: number): number {
    return this.#relay.notifyMasters(messageType, closeAfterMs);
  }

  /** Close everything. */
  closeAll(): void {
    this.#relay.closeAll();
  }

  /** Answer one request that arrived on an `https` or `http` listener. */
  async handle(req: Request, scheme: "https" | "http"): Promise<Response> {
    const url = new URL(req.url);
    if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: CORS });
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      return await this.#upgrade(req, url);
    }
    const body = req.method === "POST" ? await req.text() : "";
    const keyId = accessKeyOf(req.headers.get("authorization"));
    const done = (status: number, payload: unknown, errorType?: string) => {
      this.#record(req.method, url.pathname, status, keyId, errorType);
      const headers: Record<string, string> = {
        ...CORS,
        "content-type": "application/json",
        date: new Date(this.now()).toUTCString(),
        "x-amzn-requestid": crypto.randomUUID(),
      };
      if (errorType) headers["x-amzn-ErrorType"] = `${errorType}:http://internal.amazon.com/`;
      return new Response(JSON.stringify(payload), { status, headers });
    };
    const error = (f: AuthFailure) => done(f.status, { message: f.message }, f.type);
    if (req.method !== "POST") {
      return error({ status: 404, type: "UnknownOperationException", message: "Not Found" });
    }
    const auth = await this.#verifier.verifyHeaders({
      method: req.method,
      url,
      headers: req.headers,
      body,
    });
    if (auth) return error(auth);
    const fault = this.#faults.take(url.pathname);
    if (fault) return error(fault);
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body);
      if (!input || typeof input !== "object") throw new Error("not an object");
    } catch {
      return error({
        status: 400,
        type: "SerializationException",
        message: "Request body is not a JSON object",
      });
    }
    try {
      switch (url.pathname) {
        case "/describeSignalingChannel":
          return done(200, { ChannelInfo: this.#control.describe(input) });
        case "/createSignalingChannel":
          return done(200, { ChannelARN: this.#control.create(input) });
        case "/getSignalingChannelEndpoint":
          return done(200, this.#control.endpoints(input, url, scheme));
        case "/deleteSignalingChannel":
          this.#relay.closeChannel(this.#control.delete(input));
          return done(200, {});
        case "/listSignalingChannels":
          return done(200, this.#control.list(input));
        case "/v1/get-ice-server-config":
          return done(200, await this.#control.iceConfig(input));
        default:
          return error({
            status: 404,
            type: "UnknownOperationException",
            message: `Unknown operation ${url.pathname}`,
          });
      }
    } catch (e) {
      if (isFailure(e)) return error(e);
      throw e;
    }
  }

  #record(method: string, path: string, status: number, keyId?: string, errorType?: string) {
    recordRequest(this.requests, method, path, status, keyId, errorType);
  }

  async #upgrade(req: Request, url: URL): Promise<Response> {
    const refuse = (f: AuthFailure) => {
      this.#record("GET", "/ (websocket)", f.status, undefined, f.type);
      return new Response(JSON.stringify({ message: f.message }), {
        status: f.status,
        headers: { ...CORS, "x-amzn-ErrorType": f.type, date: new Date(this.now()).toUTCString() },
      });
    };
    const auth = await this.#verifier.verifyQuery({
      method: "GET",
      url,
      headers: req.headers,
      body: "",
    });
    if (auth) return refuse(auth);
    const fault = this.#faults.take(url.pathname, true);
    if (fault) return refuse(fault);
    const accepted = this.#relay.accept(req, url);
    return accepted instanceof Response ? accepted : refuse(accepted);
  }
}

function accessKeyOf(auth: string | null): string | undefined {
  return auth?.match(/Credential=([^/]+)\//)?.[1];
}
