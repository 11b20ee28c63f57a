/**
 * The signaling WebSocket relay of the emulated KVS service: one master and up to ten viewers per
 * channel, messages routed between them in AWS's shapes, `STATUS_RESPONSE` for refused messages,
 * `GO_AWAY` and `RECONNECT_ICE_SERVER`, and the idle and maximum-age limits of a connection.
 * Upgrades reach it SigV4-verified.
 *
 * @module
 */
import { type Logger, silentLogger } from "../log.ts";
import { isFailure } from "./errors.ts";
import { recordRequest, type RequestLogEntry } from "./faults.ts";
import type { AuthFailure } from "./sigv4_verify.ts";

/**
 * Settings of {@link SignalingRelay}.
 *
 * @example
 * ```ts
 * import type { SignalingRelayOptions } from "./relay.ts";
 * const options: SignalingRelayOptions = {
 *   maxConnectionMs: 3600_000, idleTimeoutMs: 600_000, requests: [], requireChannel: () => {},
 * };
 * ```
 */
export interface SignalingRelayOptions {
  /** Longest signaling connection, ms. */
  maxConnectionMs: number;
  /** Idle signaling connections close after this, ms. */
  idleTimeoutMs: number;
  /** Where accepted upgrades are logged (status 101). */
  requests: RequestLogEntry[];
  /** Throws the AWS refusal (`failure` of errors.ts) when no channel has this ARN. */
  requireChannel: (arn: string) => void;
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

/**
 * The signaling connections of every channel and the messages between them.
 *
 * @example
 * ```ts
 * import { SignalingRelay } from "./relay.ts";
 * const relay = new SignalingRelay({
 *   maxConnectionMs: 3600_000, idleTimeoutMs: 600_000, requests: [], requireChannel: () => {},
 * });
 * Deno.serve({ port: 0, hostname: "127.0.0.1" }, (req) => {
 *   const accepted = relay.accept(req, new URL(req.url));
 *   return accepted instanceof Response ? accepted : new Response(accepted.message, { status: accepted.status });
 * });
 * ```
 */
export class SignalingRelay {
  /** Longest a signaling connection lives (ms). */
  maxConnectionMs: number;
  /** Idle signaling connections close after this (ms). */
  idleTimeoutMs: number;
  readonly #o: SignalingRelayOptions;
  readonly #masters = new Map<string, Peer>();
  readonly #viewers = new Map<string, Map<string, Peer>>();
  readonly #log: Logger;

  /** Configure the relay; it starts without connections. */
  constructor(options: SignalingRelayOptions) {
    this.#o = options;
    this.maxConnectionMs = options.maxConnectionMs;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.#log = options.logger ?? silentLogger;
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

  /** Close a deleted channel's connections (1000). */
  closeChannel(arn: string): void {
    const master = this.#masters.get(arn);
    if (master) this.#closePeer(master, 1000, "channel deleted");
    for (const p of [...(this.#viewers.get(arn)?.values() ?? [])]) {
      this.#closePeer(p, 1000, "channel deleted");
    }
  }

  /**
   * Take a signaling WebSocket upgrade whose signature was verified: the WebSocket's response, or
   * the refusal to answer with (`X-Amz-ChannelARN` missing or unknown, `X-Amz-ClientId` invalid,
   * the channel's viewers full). A new master or a viewer with a connected client id replaces the
   * old connection.
   */
  accept(req: Request, url: URL): Response | AuthFailure {
    const arn = url.searchParams.get("X-Amz-ChannelARN");
    const clientId = url.searchParams.get("X-Amz-ClientId") ?? undefined;
    if (!arn) {
      return {
        status: 400,
        type: "InvalidArgumentException",
        message: "X-Amz-ChannelARN is required",
      };
    }
    try {
      this.#o.requireChannel(arn);
    } catch (e) {
      if (isFailure(e)) return e;
      throw e;
    }
    if (clientId !== undefined) {
      const viewers = this.#viewers.get(arn);
      if (!/^[a-zA-Z0-9_.-]{1,256}$/.test(clientId)) {
        return {
          status: 400,
          type: "InvalidArgumentException",
          message: "X-Amz-ClientId is invalid",
        };
      }
      if (viewers && !viewers.has(clientId) && viewers.size >= MAX_VIEWERS) {
        return {
          status: 400,
          type: "ClientLimitExceededException",
          message: `The channel already has ${MAX_VIEWERS} viewers connected.`,
        };
      }
    }
    const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout: 0 });
    const peer: Peer = { socket, channelArn: arn, clientId, opened: Date.now(), timers: [] };
    socket.addEventListener("open", () => {
      recordRequest(this.#o.requests, "GET", "/ (websocket)", 101, accessKeyOfQuery(url));
      if (clientId === undefined) {
        const old = this.#masters.get(arn);
        this.#masters.set(arn, peer);
        if (old) this.#closePeer(old, 1000, "replaced by a new master connection");
      } else {
        // The channel's map as it is now: viewers opening at once, or the last one leaving
        // meanwhile, must not leave this one in a map that is no longer the channel's.
        const viewers = this.#viewers.get(arn) ?? new Map<string, Peer>();
        this.#viewers.set(arn, viewers);
        const old = viewers.get(clientId);
        viewers.set(clientId, peer);
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

function accessKeyOfQuery(url: URL): string | undefined {
  return url.searchParams.get("X-Amz-Credential")?.split("/")[0];
}
