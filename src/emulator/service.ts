/**
 * The emulated KVS service: control plane, `/v1/get-ice-server-config` and the signaling
 * WebSocket relay, every request SigV4-verified by {@link SigV4Verifier}, with fault injection.
 *
 * @module
 */
import { type Logger, silentLogger } from "../log.ts";
import { type AuthFailure, type IssuedKey, SigV4Verifier } from "./sigv4_verify.ts";
import type { TurnServer } from "./turn.ts";
import { FaultQueue, type InjectedFault, recordRequest, type RequestLogEntry } from "./faults.ts";

/**
 * How a client reaches the TURN server.
 *
 * @example
 * ```ts
 * import type { TurnTransport } from "./service.ts";
 * const onlyTcp: TurnTransport[] = ["tcp"];
 * ```
 */
export type TurnTransport = "udp" | "tcp" | "tls" | "dtls";

function turnTransportOf(uri: string): TurnTransport {
  const tcp = /transport=tcp/.test(uri);
  if (uri.startsWith("turns:")) return tcp ? "tls" : "dtls";
  return tcp ? "tcp" : "udp";
}

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

interface Channel {
  name: string;
  arn: string;
  status: "CREATING" | "ACTIVE";
  created: number;
  version: string;
  ttl: number;
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
  /**
   * When set, ICE configurations list only these ways to reach TURN: `udp` (`turn:…?transport=udp`),
   * `tcp` (`turn:…?transport=tcp`), `tls` (`turns:…?transport=tcp`), `dtls`
   * (`turns:…?transport=udp`). For tests of one relay transport at a time.
   */
  turnTransports: TurnTransport[] | undefined;
  /** Longest a signaling connection lives (ms). */
  maxConnectionMs: number;
  /** Idle signaling connections close after this (ms). */
  idleTimeoutMs: number;
  readonly #o: KvsServiceOptions;
  readonly #verifier: SigV4Verifier;
  readonly #channels = new Map<string, Channel>();
  readonly #masters = new Map<string, Peer>();
  readonly #viewers = new Map<string, Map<string, Peer>>();
  readonly #log: Logger;
  readonly #faults = new FaultQueue();

  /** Configure the service. */
  constructor(options: KvsServiceOptions) {
    this.#o = options;
    this.maxConnectionMs = options.maxConnectionMs;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.#log = options.logger ?? silentLogger;
    this.#verifier = new SigV4Verifier({
      service: "kinesisvideo",
      region: options.region,
      keys: options.keys,
      now: () => this.now(),
    });
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
    for (const c of this.#channels.values()) this.#settle(c);
    return [...this.#channels.values()].map((c) => ({
      name: c.name,
      arn: c.arn,
      status: c.status,
    }));
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
          return done(200, { ChannelInfo: this.#describe(input) });
        case "/createSignalingChannel":
          return done(200, { ChannelARN: this.#create(input) });
        case "/getSignalingChannelEndpoint":
          return done(200, this.#endpoints(input, url, scheme));
        case "/deleteSignalingChannel":
          this.#delete(input);
          return done(200, {});
        case "/listSignalingChannels":
          return done(200, this.#list(input));
        case "/v1/get-ice-server-config":
          return done(200, await this.#iceConfig(input));
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

  #channelByName(name: unknown): Channel {
    if (typeof name !== "string" || !/^[a-zA-Z0-9_.-]{1,256}$/.test(name)) {
      throw failure(400, "InvalidArgumentException", "ChannelName is invalid");
    }
    const c = this.#channels.get(name);
    if (!c) {
      throw failure(
        404,
        "ResourceNotFoundException",
        "The requested channel is not found or not active.",
      );
    }
    return c;
  }

  #channelByArn(arn: unknown): Channel {
    const c = [...this.#channels.values()].find((x) => x.arn === arn);
    if (typeof arn !== "string" || !c) {
      throw failure(
        404,
        "ResourceNotFoundException",
        "The requested channel is not found or not active.",
      );
    }
    return c;
  }

  #describe(input: Record<string, unknown>) {
    const c = input.ChannelARN !== undefined
      ? this.#channelByArn(input.ChannelARN)
      : this.#channelByName(input.ChannelName);
    return this.#info(c);
  }

  #list(input: Record<string, unknown>) {
    const cond = input.ChannelNameCondition as
      | { ComparisonOperator?: unknown; ComparisonValue?: unknown }
      | undefined;
    const prefix = cond?.ComparisonValue;
    if (cond && (cond.ComparisonOperator !== "BEGINS_WITH" || typeof prefix !== "string")) {
      throw failure(
        400,
        "InvalidArgumentException",
        "ChannelNameCondition needs ComparisonOperator BEGINS_WITH and a ComparisonValue",
      );
    }
    const max = input.MaxResults === undefined ? 10_000 : Number(input.MaxResults);
    if (!Number.isInteger(max) || max < 1 || max > 10_000) {
      throw failure(400, "InvalidArgumentException", "MaxResults must be 1 to 10000");
    }
    const start = typeof input.NextToken === "string" ? Number(input.NextToken) : 0;
    const all = [...this.#channels.values()]
      .filter((c) => typeof prefix !== "string" || c.name.startsWith(prefix))
      .sort((a, b) => a.name.localeCompare(b.name));
    const page = all.slice(start, start + max).map((c) => this.#info(c));
    return start + max < all.length
      ? { ChannelInfoList: page, NextToken: String(start + max) }
      : { ChannelInfoList: page };
  }

  #info(c: Channel) {
    this.#settle(c);
    return {
      ChannelARN: c.arn,
      ChannelName: c.name,
      ChannelStatus: c.status,
      ChannelType: "SINGLE_MASTER",
      CreationTime: c.created / 1000,
      SingleMasterConfiguration: { MessageTtlSeconds: c.ttl },
      Version: c.version,
    };
  }

  /** A channel is `CREATING` for `channelCreatingMs`, then `ACTIVE`, whoever asks first. */
  #settle(c: Channel): void {
    if (c.status === "CREATING" && this.now() - c.created >= this.#o.channelCreatingMs) {
      c.status = "ACTIVE";
    }
  }

  #create(input: Record<string, unknown>): string {
    const name = input.ChannelName;
    if (typeof name !== "string" || !/^[a-zA-Z0-9_.-]{1,256}$/.test(name)) {
      throw failure(400, "InvalidArgumentException", "ChannelName is invalid");
    }
    if (input.ChannelType !== undefined && input.ChannelType !== "SINGLE_MASTER") {
      throw failure(400, "InvalidArgumentException", "ChannelType must be SINGLE_MASTER");
    }
    if (this.#channels.has(name)) {
      throw failure(400, "ResourceInUseException", `The channel ${name} already exists.`);
    }
    const created = this.now();
    const ttl = Number(
      (input.SingleMasterConfiguration as { MessageTtlSeconds?: number } | undefined)
        ?.MessageTtlSeconds ?? 60,
    );
    const c: Channel = {
      name,
      arn: `arn:aws:kinesisvideo:${this.#o.region}:${this.#o.account}:channel/${name}/${created}`,
      status: this.#o.channelCreatingMs > 0 ? "CREATING" : "ACTIVE",
      created,
      version: crypto.randomUUID().replaceAll("-", "").slice(0, 20),
      ttl,
    };
    this.#channels.set(name, c);
    return c.arn;
  }

  #delete(input: Record<string, unknown>): void {
    const c = this.#channelByArn(input.ChannelARN);
    if (input.CurrentVersion !== undefined && input.CurrentVersion !== c.version) {
      throw failure(400, "VersionMismatchException", "The channel version does not match.");
    }
    this.#channels.delete(c.name);
    const master = this.#masters.get(c.arn);
    if (master) this.#closePeer(master, 1000, "channel deleted");
    for (const p of [...(this.#viewers.get(c.arn)?.values() ?? [])]) {
      this.#closePeer(p, 1000, "channel deleted");
    }
  }

  #endpoints(input: Record<string, unknown>, url: URL, scheme: "https" | "http") {
    const c = this.#channelByArn(input.ChannelARN);
    this.#settle(c);
    if (c.status !== "ACTIVE") {
      throw failure(404, "ResourceNotFoundException", "The channel is not active.");
    }
    const conf = input.SingleMasterChannelEndpointConfiguration as
      | { Protocols?: unknown; Role?: unknown }
      | undefined;
    const role = conf?.Role ?? "MASTER";
    if (role !== "MASTER" && role !== "VIEWER") {
      throw failure(400, "InvalidArgumentException", "Role must be MASTER or VIEWER");
    }
    const protocols = Array.isArray(conf?.Protocols) ? conf.Protocols : ["WSS", "HTTPS"];
    const ws = scheme === "https" ? "wss" : "ws";
    const list = [];
    if (protocols.includes("HTTPS")) {
      list.push({ Protocol: "HTTPS", ResourceEndpoint: `${scheme}://${url.host}` });
    }
    if (protocols.includes("WSS")) {
      list.push({ Protocol: "WSS", ResourceEndpoint: `${ws}://${url.host}` });
    }
    return { ResourceEndpointList: list };
  }

  async #iceConfig(input: Record<string, unknown>) {
    this.#channelByArn(input.ChannelARN);
    if (input.Service !== undefined && input.Service !== "TURN") {
      throw failure(400, "InvalidArgumentException", "Service must be TURN");
    }
    const clientId = typeof input.ClientId === "string" ? input.ClientId : "client";
    const turn = this.#o.turn;
    if (!turn) return { IceServerList: [] };
    const ttl = this.#o.iceServerTtlSeconds;
    const list = [];
    for (let i = 0; i < 2; i++) {
      const { username, password } = await turn.credentials(`${clientId}-${i}`, ttl);
      const uris = [
        `turn:127.0.0.1:${turn.port}?transport=udp`,
        `turns:127.0.0.1:${turn.tlsPort}?transport=udp`,
        `turns:127.0.0.1:${turn.tlsPort}?transport=tcp`,
      ];
      if (this.#o.plainTcpTurn || this.turnTransports?.includes("tcp")) {
        uris.push(`turn:127.0.0.1:${turn.port}?transport=tcp`);
      }
      const only = this.turnTransports;
      list.push({
        Uris: only ? uris.filter((u) => only.includes(turnTransportOf(u))) : uris,
        Username: username,
        Password: password,
        Ttl: ttl,
      });
    }
    return { IceServerList: list };
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
      this.#channelByArn(arn);
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

function failure(status: number, type: string, message: string): AuthFailure & { kvs: true } {
  return { status, type, message, kvs: true };
}

function isFailure(e: unknown): e is AuthFailure {
  return typeof e === "object" && e !== null && (e as { kvs?: boolean }).kvs === true;
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
