/**
 * The signaling WebSocket's lifecycle: open a new connection next to the current one, make it
 * current (the old one retires, make-before-break), hold outgoing messages while there is none,
 * and watch the current one while Connected.
 *
 * Keep-alive: Deno's `WebSocket` has no ping API and the KVS signaling protocol has no
 * application-level ping action (an unknown action only earns an error reply), so no keep-alive
 * frames are sent. Pings the service sends are answered by the runtime. While watched, the socket
 * is checked every `keepAliveMs` (10 s), and a connection that carried no message for `idleMs`
 * (the client uses 9 min, under the service's 10 min idle limit) or reached `maxAgeMs` (55 min,
 * under the 1 h limit) is reported so the client replaces it. A new master connection replaces
 * the old one on the service.
 *
 * @module
 */
import { type Logger, redact, silentLogger } from "../log.ts";
import { SignalingConnectError, upgradeStatus } from "./errors.ts";

/**
 * The part of a WebSocket the client uses (the global `WebSocket` satisfies it).
 *
 * @example
 * ```ts
 * import type { WebSocketLike } from "./socket.ts";
 * const ws: WebSocketLike = new WebSocket("wss://m-1.example/");
 * ```
 */
export interface WebSocketLike {
  /** `WebSocket.OPEN` (1) when messages can be sent. */
  readonly readyState: number;
  /** Send one text frame. */
  send(data: string): void;
  /** Close the connection. */
  close(code?: number, reason?: string): void;
  /** Listen for open, message, close and error events. */
  addEventListener(
    type: "open" | "message" | "close" | "error",
    listener: (ev: Event) => void,
  ): void;
}

/**
 * Opens a WebSocket to a presigned URL.
 *
 * @example
 * ```ts
 * import type { WebSocketFactory } from "./socket.ts";
 * const factory: WebSocketFactory = (url) => new WebSocket(url);
 * ```
 */
export type WebSocketFactory = (url: string) => WebSocketLike;

/**
 * The global `WebSocket`, through an HTTP client trusting `caCerts` (PEM) when given
 * (`AWS_KVS_CACERT_PATH`).
 *
 * @example
 * ```ts
 * import { defaultWebSocketFactory } from "./socket.ts";
 * const factory = defaultWebSocketFactory();
 * ```
 */
export function defaultWebSocketFactory(caCerts?: string[]): WebSocketFactory {
  if (!caCerts || caCerts.length === 0) return (url) => new WebSocket(url);
  return (url) => {
    const client = Deno.createHttpClient({ caCerts });
    // Deno's WebSocket accepts an HTTP client carrying extra CA certificates.
    const Ctor = WebSocket as unknown as new (u: string, o: unknown) => WebSocket;
    const ws = new Ctor(url, { client });
    ws.addEventListener("close", () => client.close());
    return ws;
  };
}

/**
 * An error's message, with its cause's.
 *
 * @example
 * ```ts
 * import { describeError } from "./socket.ts";
 * describeError(new Error("upgrade failed", { cause: new Error("403") })); // "upgrade failed (403)"
 * ```
 */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const cause = e.cause instanceof Error ? ` (${e.cause.message})` : "";
    return `${e.message}${cause}`;
  }
  return String(e);
}

/**
 * Options of {@link SignalingSocket}.
 *
 * @example
 * ```ts
 * import type { SignalingSocketOptions } from "./socket.ts";
 * const options: SignalingSocketOptions = {
 *   factory: (url) => new WebSocket(url),
 *   signal: new AbortController().signal,
 *   onMessage: (data, current) => console.log(current, data),
 *   onClosed: () => console.log("closed"),
 * };
 * ```
 */
export interface SignalingSocketOptions {
  /** Opens the WebSockets. */
  factory: WebSocketFactory;
  /** Aborts a connection being opened (the client closed). */
  signal: AbortSignal;
  /** Logger. Default silent. */
  logger?: Logger;
  /** Give up opening after this long (ms). Default 10 s. */
  connectTimeoutMs?: number;
  /** Outgoing messages held while there is no open connection. Default 256. */
  maxOutbox?: number;
  /** A message from any connection of ours; `current` when it came on the current one. */
  onMessage(data: unknown, current: boolean): void;
  /** The current connection closed. */
  onClosed(): void;
}

/**
 * Limits watched on the current connection, in ms.
 *
 * @example
 * ```ts
 * import type { SocketLimits } from "./socket.ts";
 * const limits: SocketLimits = { maxAgeMs: 55 * 60_000, idleMs: 9 * 60_000, keepAliveMs: 10_000 };
 * ```
 */
export interface SocketLimits {
  /** Report `max-age` this long after the connection opened. */
  maxAgeMs: number;
  /** Report `idle` when no message went either way for this long. */
  idleMs: number;
  /** How often to check the connection is still open and not idle. */
  keepAliveMs: number;
}

const OPEN = 1;

/**
 * The signaling connections of one client: at most one current, one being opened, and retiring
 * ones that are closing, plus the outbox.
 *
 * @example
 * ```ts
 * import { SignalingSocket } from "./socket.ts";
 * const socket = new SignalingSocket({
 *   factory: (url) => new WebSocket(url),
 *   signal: new AbortController().signal,
 *   onMessage: (data) => console.log(data),
 *   onClosed: () => console.log("closed"),
 * });
 * socket.send('{"action":"SDP_ANSWER"}'); // held until a connection is current
 * ```
 */
export class SignalingSocket {
  readonly #o: SignalingSocketOptions;
  readonly #log: Logger;
  #ws: WebSocketLike | undefined;
  #opening: WebSocketLike | undefined;
  #openedAt = 0;
  #lastActivity = 0;
  #retiring = new Set<WebSocketLike>();
  #outbox: string[] = [];

  /** Create the holder; nothing is opened yet. */
  constructor(options: SignalingSocketOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
  }

  /** Whether the current connection is open. */
  get isOpen(): boolean {
    return this.#ws !== undefined && this.#ws.readyState === OPEN;
  }

  /**
   * Open a new connection to the presigned `url` of `endpoint` (named in errors), next to the
   * current one; {@link SignalingSocket.install} makes it current. Rejects with
   * {@link SignalingConnectError} (carrying the HTTP status of a refused upgrade when known).
   */
  async open(url: string, endpoint: string): Promise<void> {
    this.discard();
    this.#log.debug(`Opening ${redact(url)}`);
    const signal = this.#o.signal;
    if (signal.aborted) throw new SignalingConnectError(`WebSocket to ${endpoint} aborted`);
    let ws: WebSocketLike;
    try {
      ws = this.#o.factory(url);
    } catch (e) {
      throw new SignalingConnectError(`WebSocket to ${endpoint} failed: ${describeError(e)}`, {
        cause: e,
      });
    }
    this.#opening = ws;
    const timeoutMs = this.#o.connectTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (why: string, status?: number) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        if (this.#opening === ws) this.#opening = undefined;
        closeQuietly(ws);
        reject(new SignalingConnectError(`WebSocket to ${endpoint} ${why}`, { status }));
      };
      const onAbort = () => fail("aborted: client closed");
      const timer = setTimeout(() => fail(`not open after ${timeoutMs} ms`), timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });
      ws.addEventListener("open", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
      ws.addEventListener("error", (ev) => {
        const msg = (ev as ErrorEvent).message;
        const status = msg ? upgradeStatus(msg) : undefined;
        fail(
          status !== undefined
            ? `refused: HTTP ${status} on upgrade`
            : `failed${msg ? `: ${msg}` : ""} (refused, TLS failure or HTTP 403 on upgrade)`,
          status,
        );
      });
      ws.addEventListener("close", (ev) => {
        const ce = ev as CloseEvent;
        fail(`closed before opening (code ${ce.code}${ce.reason ? `, ${ce.reason}` : ""})`);
      });
      ws.addEventListener("message", (ev) => this.#onMessage(ws, (ev as MessageEvent).data));
      ws.addEventListener("close", (ev) => this.#onClose(ws, ev as CloseEvent));
    });
    this.#log.debug(`Signaling socket open`);
  }

  /** Make the connection just opened current; the previous one retires (closed quietly). */
  install(): void {
    const ws = this.#opening;
    if (!ws) return;
    this.#opening = undefined;
    const old = this.#ws;
    this.#ws = ws;
    this.#openedAt = performance.now();
    this.#lastActivity = this.#openedAt;
    if (old) this.#retire(old);
  }

  /** Close the connection just opened (or being opened) without using it. */
  discard(): void {
    const ws = this.#opening;
    this.#opening = undefined;
    if (ws) closeQuietly(ws);
  }

  /**
   * Send a text frame on the current connection, or hold it (oldest dropped beyond `maxOutbox`)
   * when there is none open, the send fails or `hold` is set.
   */
  send(text: string, hold = false): void {
    if (!hold && this.isOpen) {
      try {
        this.#ws!.send(text);
        this.#lastActivity = performance.now();
        return;
      } catch (e) {
        this.#log.warn("Send failed, holding the message until reconnected", { error: e });
      }
    }
    if (this.#outbox.length >= (this.#o.maxOutbox ?? 256)) {
      this.#outbox.shift();
      this.#log.warn("Outgoing signaling queue full: dropped the oldest message");
    }
    this.#outbox.push(text);
  }

  /** Send the held messages, in order. */
  flush(): void {
    const out = this.#outbox;
    this.#outbox = [];
    for (const text of out) this.send(text);
  }

  /**
   * Watch the current connection: `wake` gets `max-age`, `idle`, or `socket-closed` (found
   * closed by the periodic check) once. Returns the function that stops watching.
   */
  watch(
    limits: SocketLimits,
    wake: (why: "socket-closed" | "max-age" | "idle") => void,
  ): () => void {
    const stop = () => {
      clearTimeout(age);
      clearInterval(tick);
    };
    const once = (why: "socket-closed" | "max-age" | "idle") => {
      stop();
      wake(why);
    };
    const age = setTimeout(
      () => once("max-age"),
      Math.max(0, this.#openedAt + limits.maxAgeMs - performance.now()),
    );
    const tick = setInterval(() => {
      if (!this.isOpen) once("socket-closed");
      else if (performance.now() - this.#lastActivity >= limits.idleMs) once("idle");
    }, Math.min(limits.keepAliveMs, limits.idleMs));
    return stop;
  }

  /** Close every connection (the client stopped). */
  close(): void {
    this.discard();
    if (this.#ws) this.#retire(this.#ws);
    this.#ws = undefined;
    for (const ws of this.#retiring) closeQuietly(ws);
  }

  #retire(ws: WebSocketLike): void {
    this.#retiring.add(ws);
    closeQuietly(ws);
  }

  #onMessage(ws: WebSocketLike, data: unknown): void {
    const current = ws === this.#ws;
    if (current) this.#lastActivity = performance.now();
    this.#o.onMessage(data, current);
  }

  #onClose(ws: WebSocketLike, ev: CloseEvent): void {
    if (this.#retiring.delete(ws)) return;
    if (ws !== this.#ws) return;
    this.#log.info(
      `Signaling socket closed (code ${ev.code}${ev.reason ? `, ${ev.reason}` : ""}, ` +
        `${ev.wasClean ? "clean" : "abrupt"})`,
    );
    this.#o.onClosed();
  }
}

function closeQuietly(ws: WebSocketLike): void {
  try {
    if (ws.readyState <= OPEN) ws.close(1000, "replaced");
  } catch {
    // Already closing.
  }
}
