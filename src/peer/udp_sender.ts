/**
 * Ordered, loss-free sending of one session's datagrams on a Deno UDP socket.
 *
 * `Deno.DatagramConn.send()` is asynchronous, and sends issued together without awaiting are not
 * written in the order they were issued: a burst of a frame's RTP packets then reaches the viewer
 * out of order, which it takes for loss (NACKs, then PLIs). This queue keeps one send in flight
 * per socket and issues the next when it completes, so datagrams leave in the order the media
 * core produced them. Sessions run side by side, so the event loop still has one send in flight
 * per viewer. Failures are counted and reported once, never swallowed; a queue that grows past
 * its bound (the socket cannot keep up) drops the oldest datagrams and counts them.
 *
 * @module
 */

/** Counters of an {@link OrderedDatagramSender}. */
export interface DatagramSendStats {
  /** Datagrams the socket accepted. */
  sent: number;
  /** Bytes of those datagrams. */
  bytes: number;
  /** Sends the socket refused (the reason of the latest is {@link DatagramSendStats.lastError}). */
  errors: number;
  /** Datagrams dropped unsent because the queue was over its bound. */
  dropped: number;
  /** The most recent send error's message. */
  lastError?: string;
  /** Datagrams waiting now. */
  queued: number;
}

/** Options of {@link OrderedDatagramSender}. */
export interface OrderedDatagramSenderOptions {
  /** Most datagrams waiting before the oldest are dropped (default 8192, ~10 MB). */
  maxQueued?: number;
  /** Called on the first send error, and then on every 1000th (so logs are not flooded). */
  onError?: (error: Error, stats: DatagramSendStats) => void;
}

/**
 * Sends datagrams on one UDP socket strictly in the order given.
 *
 * @example
 * ```ts
 * import { OrderedDatagramSender } from "./udp_sender.ts";
 * const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
 * const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 9 };
 * const sender = new OrderedDatagramSender(socket);
 * for (let i = 0; i < 3; i++) sender.send(new Uint8Array([i]), to);
 * await sender.drained();
 * console.log(sender.stats().sent); // 3
 * socket.close();
 * ```
 */
export class OrderedDatagramSender {
  readonly #socket: Deno.DatagramConn;
  readonly #max: number;
  readonly #onError?: (error: Error, stats: DatagramSendStats) => void;
  #data: Uint8Array[] = [];
  #to: Deno.NetAddr[] = [];
  #head = 0;
  #running = false;
  #closed = false;
  #idle: (() => void)[] = [];
  #stats: DatagramSendStats = { sent: 0, bytes: 0, errors: 0, dropped: 0, queued: 0 };

  /** Send on `socket` (which stays the caller's to close). */
  constructor(socket: Deno.DatagramConn, options: OrderedDatagramSenderOptions = {}) {
    this.#socket = socket;
    this.#max = options.maxQueued ?? 8192;
    this.#onError = options.onError;
  }

  /**
   * Queue `data` for `to`. `data` must stay unchanged until sent: hand over a buffer of your
   * own, not a view into memory that is reused.
   */
  send(data: Uint8Array, to: Deno.NetAddr): void {
    if (this.#closed) return;
    this.#data.push(data);
    this.#to.push(to);
    if (this.#data.length - this.#head > this.#max) {
      this.#head++;
      this.#stats.dropped++;
    }
    if (!this.#running) this.#pump();
  }

  /** Counters. */
  stats(): DatagramSendStats {
    return { ...this.#stats, queued: this.#data.length - this.#head };
  }

  /** Resolves when nothing is waiting. */
  drained(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Drop what waits and send nothing more. */
  close(): void {
    this.#closed = true;
    this.#data = [];
    this.#to = [];
    this.#head = 0;
  }

  async #pump(): Promise<void> {
    this.#running = true;
    while (!this.#closed && this.#head < this.#data.length) {
      const i = this.#head++;
      const data = this.#data[i];
      try {
        await this.#socket.send(data, this.#to[i]);
        this.#stats.sent++;
        this.#stats.bytes += data.length;
      } catch (e) {
        if (this.#closed) break;
        const error = e instanceof Error ? e : new Error(String(e));
        this.#stats.errors++;
        this.#stats.lastError = error.message;
        if (this.#stats.errors % 1000 === 1) this.#onError?.(error, this.stats());
      }
      if (this.#head > 1024 && this.#head * 2 > this.#data.length) {
        this.#data = this.#data.slice(this.#head);
        this.#to = this.#to.slice(this.#head);
        this.#head = 0;
      }
    }
    if (this.#head >= this.#data.length) {
      this.#data.length = 0;
      this.#to.length = 0;
      this.#head = 0;
    }
    this.#running = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
