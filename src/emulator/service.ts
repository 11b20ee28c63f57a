/**
 * The emulated KVS service: control plane, `/v1/get-ice-server-config` and the signaling
 * WebSocket relay, every request SigV4-verified by {@link SigV4Verifier}, with fault injection.
 *
 * @module
 */
import { type Logger, silentLogger } from "../log.ts";
import { type AuthFailure, type IssuedKey, SigV4Verifier } from "./sigv4_verify.ts";
import type { TurnServer } from "./turn.ts";
import { ControlPlane, type TurnTransport } from "./control_plane.ts";
import { isFailure } from "./errors.ts";
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

interface Peer {
  socket: WebSocket;
  channelArn: string;
  clientId?: string;
  opened: number;
  timers: ReturnType<typeof setTimeout>[];
  idle?: ReturnType<typeof setTimeout>;
}

const MAX_MESSAGE = 10 * 1024;
const MAX_VIEWERS = 10;

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
  /** Longest a signaling connection lives (ms). */
  maxConnectionMs: number;
  /** Idle signaling connections close after this (ms). */
  idleTimeoutMs: number;
  readonly #verifier: SigV4Verifier;
  readonly #control: ControlPlane;
  readonly #masters = new Map<string, Peer>();
  readonly #viewers = new Map<string, Map<string, Peer>>();
  readonly #log: Logger;
  readonly #faults = new FaultQueue();

  /** Configure the service. */
  constructor(options: KvsServiceOptions) {
    this.maxConnectionMs = options.maxConnectionMs;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.#log = options.logger ?? silentLogger;
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
    const arns = new Set([...this.#masters.keys(), ...this.#viewers.keys()]);
    return [...arns].map((arn) => ({
      channelArn: arn,
      master: this.#masters.has(arn),
      viewers: [...(this.#viewers.get(arn)?.keys() ?? [])],
    }));
  }

  /** Close every master socket at once (code 1011), as a dropped connection. */
  dropMasters(): number {
    let n = 0;
    for (const peer of [...this.#masters.values()]) {
      this.#closePeer(peer, 1011, "connection dropped");
      n++;
    }
    return n;
  }

  /**
   * Send a service message (`GO_AWAY`, `RECONNECT_ICE_SERVER`) to every master; with
   * `closeAfterMs`, also close those connections that long afterwards (1000), as AWS does after
   * `GO_AWAY`.
   */
  notifyMasters(messageType: "GO_AWAY" | "RECONNECT_ICE_SERVER", closeAfterMs?: number): number {
    let n = 0;
    for (const peer of this.#masters.values()) {
      this.#send(peer, { messageType, messagePayload: "" });
      if (closeAfterMs !== undefined) {
        peer.timers.push(
          setTimeout(() => this.#closePeer(peer, 1000, "going away"), closeAfterMs),
        );
      }
      n++;
    }
    return n;
  }

  /** Close everything. */
  closeAll(): void {
    for (const p of [...this.#masters.values()]) this.#closePeer(p, 1001, "emulator closing");
    for (const m of this.#viewers.values()) {
      for (const p of [...m.values()]) this.#closePeer(p, 1001, "emulator closing");
    }
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
          this.#closeChannel(this.#control.delete(input));
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

  #closeChannel(arn: string): void {
    const master = this.#masters.get(arn);
    if (master) this.#closePeer(master, 1000, "channel deleted");
    for (const p of [...(this.#viewers.get(arn)?.values() ?? [])]) {
      this.#closePeer(p, 1000, "channel deleted");
    }
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
    const arn = url.searchParams.get("X-Amz-ChannelARN");
    const clientId = url.searchParams.get("X-Amz-ClientId") ?? undefined;
    if (!arn) {
      return refuse({
        status: 400,
        type: "InvalidArgumentException",
        message: "X-Amz-ChannelARN is required",
      });
    }
    try {
      this.#control.channelByArn(arn);
    } catch (e) {
      if (isFailure(e)) return refuse(e);
      throw e;
    }
    const viewers = this.#viewers.get(arn) ?? new Map<string, Peer>();
    if (clientId !== undefined) {
      if (!/^[a-zA-Z0-9_.-]{1,256}$/.test(clientId)) {
        return refuse({
          status: 400,
          type: "InvalidArgumentException",
          message: "X-Amz-ClientId is invalid",
        });
      }
      if (!viewers.has(clientId) && viewers.size >= MAX_VIEWERS) {
        return refuse({
          status: 400,
          type: "ClientLimitExceededException",
          message: `The channel already has ${MAX_VIEWERS} viewers connected.`,
        });
      }
    }
    const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout: 0 });
    const peer: Peer = { socket, channelArn: arn, clientId, opened: Date.now(), timers: [] };
    socket.addEventListener("open", () => {
      this.#record("GET", "/ (websocket)", 101, accessKeyOfQuery(url));
      if (clientId === undefined) {
        const old = this.#masters.get(arn);
        this.#masters.set(arn, peer);
        if (old) this.#closePeer(old, 1000, "replaced by a new master connection");
      } else {
        const old = viewers.get(clientId);
        viewers.set(clientId, peer);
        this.#viewers.set(arn, viewers);
        if (old) this.#closePeer(old, 1000, "replaced by a new connection");
      }
      peer.timers.push(
        setTimeout(
          () => this.#closePeer(peer, 1000, "maximum connection duration reached"),
          this.maxConnectionMs,
        ),
      );
      this.#touch(peer);
    });
    socket.addEventListener("message", (ev) => this.#onMessage(peer, ev.data));
    socket.addEventListener("close", () => this.#forget(peer));
    socket.addEventListener("error", () => this.#forget(peer));
    return response;
  }

  #touch(peer: Peer): void {
    if (peer.idle !== undefined) clearTimeout(peer.idle);
    peer.idle = setTimeout(
      () => this.#closePeer(peer, 1000, "idle timeout"),
      this.idleTimeoutMs,
    );
  }

  #forget(peer: Peer): void {
    for (const t of peer.timers) clearTimeout(t);
    if (peer.idle !== undefined) clearTimeout(peer.idle);
    peer.timers = [];
    peer.idle = undefined;
    if (peer.clientId === undefined) {
      if (this.#masters.get(peer.channelArn) === peer) this.#masters.delete(peer.channelArn);
    } else {
      const viewers = this.#viewers.get(peer.channelArn);
      if (viewers?.get(peer.clientId) === peer) viewers.delete(peer.clientId);
      if (viewers?.size === 0) this.#viewers.delete(peer.channelArn);
    }
  }

  #closePeer(peer: Peer, code: number, reason: string): void {
    this.#forget(peer);
    try {
      peer.socket.close(code, reason);
    } catch { /* already closing */ }
  }

  #send(peer: Peer, message: unknown): void {
    if (peer.socket.readyState !== WebSocket.OPEN) return;
    peer.socket.send(JSON.stringify(message));
  }

  #status(peer: Peer, correlationId: unknown, errorType: string, description: string): void {
    this.#log.debug(`signaling message refused: ${description}`);
    if (typeof correlationId !== "string" || !correlationId) return;
    this.#send(peer, {
      messageType: "STATUS_RESPONSE",
      statusResponse: { correlationId, errorType, statusCode: "400", description },
    });
  }

  #onMessage(peer: Peer, data: unknown): void {
    this.#touch(peer);
    if (typeof data !== "string") {
      return this.#status(peer, undefined, "InvalidArgumentException", "binary frames refused");
    }
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(data);
      if (!msg || typeof msg !== "object") throw new Error("not an object");
    } catch {
      return this.#status(peer, undefined, "InvalidArgumentException", "message is not JSON");
    }
    const { action, recipientClientId, messagePayload, correlationId } = msg;
    if (new TextEncoder().encode(data).length > MAX_MESSAGE) {
      return this.#status(peer, correlationId, "InvalidArgumentException", "message too large");
    }
    if (action !== "SDP_OFFER" && action !== "SDP_ANSWER" && action !== "ICE_CANDIDATE") {
      return this.#status(peer, correlationId, "InvalidArgumentException", "unknown action");
    }
    if (typeof messagePayload !== "string" || !messagePayload || !isBase64(messagePayload)) {
      return this.#status(
        peer,
        correlationId,
        "InvalidArgumentException",
        "messagePayload must be base64",
      );
    }
    if (peer.clientId === undefined) {
      if (typeof recipientClientId !== "string" || !recipientClientId) {
        return this.#status(
          peer,
          correlationId,
          "InvalidArgumentException",
          "recipientClientId is required for messages from the master",
        );
      }
      const viewer = this.#viewers.get(peer.channelArn)?.get(recipientClientId);
      if (!viewer) {
        return this.#status(
          peer,
          correlationId,
          "InvalidArgumentException",
          `recipient ${recipientClientId} is not connected`,
        );
      }
      this.#send(viewer, { messageType: action, messagePayload });
    } else {
      const master = this.#masters.get(peer.channelArn);
      if (!master) {
        return this.#status(
          peer,
          correlationId,
          "InvalidArgumentException",
          "no master is connected",
        );
      }
      this.#send(master, { senderClientId: peer.clientId, messageType: action, messagePayload });
    }
  }
}

function isBase64(s: string): boolean {
  return s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
}

function accessKeyOf(auth: string | null): string | undefined {
  return auth?.match(/Credential=([^/]+)\//)?.[1];
}

function accessKeyOfQuery(url: URL): string | undefined {
  return url.searchParams.get("X-Amz-Credential")?.split("/")[0];
}
