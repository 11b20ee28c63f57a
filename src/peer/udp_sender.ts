/**
 * Ordered, loss-free sending of one session's datagrams on a Deno UDP socket.
 *
 * `Deno.DatagramConn.send()` is asynchronous, and sends issued together without awaiting are not
 * written in the order they were issued: a burst of a frame's RTP packets then reaches the viewer
 * out of order, which it takes for loss (NACKs, then PLIs). This queue keeps one send in flight
 * per socket and issues the next when it completes, so datagrams leave in the order the media
 * core produced them. Sessions run side by side, so the event loop still has one send in flight
 * per viewer. Failures are counted and reported once, never swallowed; a queue at its bound (the
 * socket cannot keep up) drops new datagrams and counts them.
 *
 * @module
 */
import { addressOf, Sendmmsg } from "./libc.ts";

/** Datagrams a socket carries one at a time before it looks for its batch path. */
const BATCH_AFTER = 32;

/** Counters of an {@link OrderedDatagramSender}. */
export interface DatagramSendStats {
  /** Datagrams the socket accepted. */
  sent: number;
  /** Bytes of those datagrams. */
  bytes: number;
  /** Of the datagrams sent, those that left in `sendmmsg` batches (the rest: one `send()` each). */
  batched: number;
  /** Sends the socket refused (the reason of the latest is {@link DatagramSendStats.lastError}). */
  errors: number;
  /** Datagrams dropped unsent because the queue was at its bound (the newest are dropped). */
  dropped: number;
  /** The most recent send error's message. */
  lastError?: string;
  /** Datagrams waiting now. */
  queued: number;
}

/** Options of {@link OrderedDatagramSender}. */
export interface OrderedDatagramSenderOptions {
  /** Most datagrams waiting; more are dropped (default 8192, ~10 MB). */
  maxQueued?: number;
  /**
   * Send each flushed run of datagrams with one `sendmmsg(2)` call where that is available
   * (Linux with FFI permission; see `libc.ts`), default true. Elsewhere, and for what the
   * kernel does not take at once, Deno's portable `send()`.
   */
  batch?: boolean;
  /** Bytes of the ring buffer datagrams are copied into (default 256 KiB). */
  ringBytes?: number;
  /** Called on the first send error, and then on every 1000th (so logs are not flooded). */
  onError?: (error: Error, stats: DatagramSendStats) => void;
}

/**
 * Sends datagrams on one UDP socket strictly in the order given. Each datagram is copied once
 * into a ring buffer the sender owns (so the caller's buffer can be reused at once, and nothing
 * is allocated per datagram); one that does not fit gets a buffer of its own. Datagrams queued
 * together go out on {@link OrderedDatagramSender.flush} (or at the end of the current task),
 * with one system call where the platform allows it.
 *
 * @example
 * ```ts
 * import { OrderedDatagramSender } from "./udp_sender.ts";
 * const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
 * const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 9 };
 * const sender = new OrderedDatagramSender(socket);
 * for (let i = 0; i < 3; i++) sender.send(new Uint8Array([i]), to);
 * sender.flush();
 * await sender.drained();
 * console.log(sender.stats().sent); // 3
 * socket.close();
 * ```
 */
export class OrderedDatagramSender {
  readonly #socket: Deno.DatagramConn;
  readonly #max: number;
  readonly #onError?: (error: Error, stats: DatagramSendStats) => void;
  readonly #ringSize: number;
  #ring: Uint8Array | undefined;
  /** Ring offsets: end of the last datagram sent, end of the last one queued. */
  #r = 0;
  #w = 0;
  /** Queued datagrams that live in the ring. */
  #inRing = 0;
  /** Queued datagrams: bytes, ring offset (-1: a buffer of their own), length, destination. */
  #data: Uint8Array[] = [];
  #off: number[] = [];
  /** Memory addresses of the queued datagrams, for the sendmmsg path (when it is in use). */
  #at: number[] = [];
  #ringAt = 0;
  #len: number[] = [];
  #to: Deno.NetAddr[] = [];
  #head = 0;
  #running = false;
  #closed = false;
  #flushQueued = false;
  /**
   * The sendmmsg path; null where unavailable or not wanted, undefined until the socket has
   * carried {@link BATCH_AFTER} datagrams (finding its descriptor reads /proc: sessions that
   * never stream, such as refused or abandoned offers, never pay for it).
   */
  #batch: Sendmmsg | null | undefined;
  #wanted: boolean;
  #count = 0;
  #idle: (() => void)[] = [];
  #stats: DatagramSendStats = {
    sent: 0,
    bytes: 0,
    batched: 0,
    errors: 0,
    dropped: 0,
    queued: 0,
  };

  /** Send on `socket` (which stays the caller's to close). */
  constructor(socket: Deno.DatagramConn, options: OrderedDatagramSenderOptions = {}) {
    this.#socket = socket;
    this.#max = options.maxQueued ?? 8192;
    this.#onError = options.onError;
    this.#ringSize = options.ringBytes ?? 256 * 1024;
    this.#wanted = options.batch ?? true;
    this.#batch = this.#wanted ? undefined : null;
  }

  /**
   * Queue a copy of `data` for `to` (`data` may be reused as soon as this returns). It leaves
   * on the next {@link OrderedDatagramSender.flush}, at the latest at the end of the current
   * task.
   */
  send(data: Uint8Array, to: Deno.NetAddr): void {
    if (this.#closed) return;
    if (
      this.#batch === undefined && ++this.#count > BATCH_AFTER && this.#head === this.#data.length
    ) {
      this.#batch = Sendmmsg.forSocket(this.#socket) ?? null;
      if (this.#batch && this.#ring) this.#ringAt = addressOf(this.#ring);
    }
    if (this.#data.length - this.#head >= this.#max) {
      this.#stats.dropped++; // the socket cannot keep up: drop at the tail, as a full buffer would
      return;
    }
    const at = this.#place(data.length);
    if (at < 0) {
      // Big ones (> a quarter of the ring, or when it is full) get a buffer of their own: an
      // ArrayBuffer of its own, which V8 keeps outside its moving heap, so its address holds.
      const own = new Uint8Array(new ArrayBuffer(Math.max(1, data.length)), 0, data.length);
      own.set(data);
      this.#data.push(own);
      this.#off.push(-1);
      this.#at.push(this.#batch ? addressOf(own) : 0);
    } else {
      const ring = this.#ring!;
      ring.set(data, at);
      this.#data.push(ring.subarray(at, at + data.length));
      this.#off.push(at);
      this.#at.push(this.#batch ? this.#ringAt + at : 0);
      this.#w = at + data.length;
      this.#inRing++;
    }
    this.#len.push(data.length);
    this.#to.push(to);
    if (!this.#flushQueued && !this.#running) {
      this.#flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  /**
   * Send what is queued: the leading run of datagrams in the ring with one `sendmmsg` call
   * where available, the rest through Deno's `send()`, one at a time, in order.
   */
  flush(): void {
    this.#flushQueued = false;
    if (this.#closed || this.#running || this.#head >= this.#data.length) return;
    if (this.#batch) {
      const n = this.#batch.send(this.#at, this.#len, this.#to, this.#head, this.#data.length);
      for (let i = this.#head; i < this.#head + n; i++) {
        this.#stats.sent++;
        this.#stats.batched++;
        this.#stats.bytes += this.#len[i];
        this.#done(i);
      }
      this.#head += n;
      if (this.#head >= this.#data.length) {
        this.#reset();
        return;
      }
    }
    this.#pump();
  }

  /** Where `len` bytes fit in the ring without touching unsent ones, or -1. */
  #place(len: number): number {
    const size = this.#ringSize;
    if (len === 0 || len > size / 4) return -1;
    if (!this.#ring) {
      this.#ring = new Uint8Array(size);
      if (this.#batch) this.#ringAt = addressOf(this.#ring);
    }
    if (this.#inRing === 0) this.#r = this.#w = 0;
    const r = this.#r, w = this.#w;
    if (w >= r) {
      if (w + len <= size) return w;
      return len < r ? 0 : -1;
    }
    return w + len < r ? w : -1;
  }

  /** Entry `i` left the queue: its ring bytes are free. */
  #done(i: number): void {
    const at = this.#off[i];
    if (at >= 0) {
      this.#r = at + this.#len[i];
      this.#inRing--;
    }
  }

  /** Empty the queue's arrays (nothing is waiting). */
  #reset(): void {
    this.#data.length = 0;
    this.#off.length = 0;
    this.#at.length = 0;
    this.#len.length = 0;
    this.#to.length = 0;
    this.#head = 0;
  }

  /** Counters. */
  stats(): DatagramSendStats {
    return { ...this.#stats, queued: this.#data.length - this.#head };
  }

  /** Resolves when nothing is waiting (flushing what is queued). */
  drained(): Promise<void> {
    if (!this.#running) this.flush();
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Drop what waits and send nothing more. */
  close(): void {
    this.#closed = true;
    this.#reset();
    this.#ring = undefined;
    this.#batch = null;
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
      if (this.#closed) break;
      this.#done(i);
      if (this.#head > 1024 && this.#head * 2 > this.#data.length) {
        this.#data = this.#data.slice(this.#head);
        this.#off = this.#off.slice(this.#head);
        this.#at = this.#at.slice(this.#head);
        this.#len = this.#len.slice(this.#head);
        this.#to = this.#to.slice(this.#head);
        this.#head = 0;
      }
    }
    if (this.#head >= this.#data.length) this.#reset();
    this.#running = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
