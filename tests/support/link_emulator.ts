/**
 * A user-space UDP link for tests and benchmarks: clients send to the link's front port on
 * 127.0.0.1, and the link forwards to one target (e.g. a TURN server's UDP port) through a socket
 * of its own per client, like a NAT. Each direction has its own impairments:
 *
 * - a rate limit (`rateBps`, UDP payload bits per second) with a bounded queue in front of it
 *   (`queueBytes`, or `queueMs` of the rate; a packet that does not fit is dropped: tail drop);
 * - random loss (`lossRate`) on the wire, after the queue (a lost packet used its link time),
 *   drawn from a seeded generator, so one seed gives the same losses for the same packets;
 * - a one-way delay `delayMs` plus a uniform `[0, jitterMs)`, so a packet is never early; packets
 *   keep their order unless `reorder` is set.
 *
 * Departure times are computed on a virtual clock (a packet leaves the rate limiter when the one
 * before it has been serialized), and one scheduler with one timer sends whatever is due, so a
 * late timer makes a small burst but never changes the rate over time. Memory is bounded: the
 * queue by its limit, packets in flight by `maxInFlight`, the time series by `maxBins`.
 *
 * Counters per direction: packets and bytes in (offered), forwarded, dropped by the queue,
 * dropped by loss; and a time series of bytes offered and delivered per bin (100 ms), from which
 * {@link maxWindowBps} computes the highest rate over any window (e.g. 1 s).
 *
 * `up` is client → target, `down` is target → client.
 *
 * @example
 * ```ts
 * import { startUdpLink } from "./link_emulator.ts";
 * const link = startUdpLink({ target: { port: 3478 }, seed: 7 });
 * link.setLimits({ rateBps: 1_500_000, lossRate: 0.02, delayMs: 40 });
 * // … clients use 127.0.0.1:link.port instead of 127.0.0.1:3478 …
 * link.lift();
 * console.log(link.counters("down"));
 * await link.close();
 * ```
 *
 * @module
 */

/**
 * The impairments of one direction. Unset fields mean no such impairment.
 *
 * @example
 * ```ts
 * import type { LinkLimits } from "./link_emulator.ts";
 * const dsl: LinkLimits = { rateBps: 1_500_000, queueMs: 250, lossRate: 0.02, delayMs: 40 };
 * ```
 */
export interface LinkLimits {
  /** Rate limit, bits of UDP payload per second (unset, 0 or Infinity: none). */
  rateBps?: number;
  /** Most bytes waiting for the rate limiter; more are dropped (default: `queueMs` of the rate). */
  queueBytes?: number;
  /** Queue limit as time at the rate, ms, when `queueBytes` is unset (default 200). */
  queueMs?: number;
  /** Share of packets lost on the wire, 0–1. */
  lossRate?: number;
  /** One-way delay, ms. */
  delayMs?: number;
  /** Extra delay, uniform in [0, jitterMs), ms. */
  jitterMs?: number;
  /** Let jitter reorder packets (default false: a packet never overtakes an earlier one). */
  reorder?: boolean;
}

/**
 * A direction of the link: `up` is client → target, `down` is target → client.
 *
 * @example
 * ```ts
 * import type { LinkDirection } from "./link_emulator.ts";
 * const towardsViewer: LinkDirection = "down";
 * ```
 */
export type LinkDirection = "up" | "down";

/**
 * Counters of one direction since the link started.
 *
 * @example
 * ```ts
 * import type { LinkCounters } from "./link_emulator.ts";
 * declare const c: LinkCounters;
 * const lossShare = c.packetsDroppedLoss / (c.packetsForwarded + c.packetsDroppedLoss);
 * ```
 */
export interface LinkCounters {
  /** Packets and bytes offered to the link. */
  packetsIn: number;
  bytesIn: number;
  /** Packets and bytes sent out of the far end. */
  packetsForwarded: number;
  bytesForwarded: number;
  /** Dropped at the tail of a full queue (or over `maxInFlight`). */
  packetsDroppedQueue: number;
  bytesDroppedQueue: number;
  /** Dropped by random loss. */
  packetsDroppedLoss: number;
  bytesDroppedLoss: number;
  /** Sends the socket refused. */
  sendErrors: number;
  /** The most bytes that waited for the rate limiter at once. */
  peakQueueBytes: number;
  /** Smallest and largest time from arrival to send, ms (NaN before the first packet). */
  minTransitMs: number;
  maxTransitMs: number;
  /** Largest time a packet was sent after it was due (the scheduler's timer accuracy), ms. */
  maxLatenessMs: number;
}

/**
 * Bytes per bin of one direction: offered to the link (by arrival time) and delivered out of its
 * far end (by send time). Bin `i` covers `[startMs + i * binMs, startMs + (i + 1) * binMs)`, on
 * the clock of `performance.now()`; `startEpochMs` is `startMs` on the wall clock (ms since the
 * epoch, as `performance.timeOrigin + performance.now()`), to line it up with other processes.
 *
 * @example
 * ```ts
 * import type { LinkSeries } from "./link_emulator.ts";
 * declare const s: LinkSeries;
 * const totalDelivered = s.delivered.reduce((a, b) => a + b, 0);
 * ```
 */
export interface LinkSeries {
  binMs: number;
  startMs: number;
  startEpochMs: number;
  offered: number[];
  delivered: number[];
}

/**
 * Options of {@link startUdpLink}.
 *
 * @example
 * ```ts
 * import type { UdpLinkOptions } from "./link_emulator.ts";
 * const o: UdpLinkOptions = { target: { port: 3478 }, down: { rateBps: 1e6 }, seed: 1 };
 * ```
 */
export interface UdpLinkOptions {
  /** Where packets from clients go (hostname default 127.0.0.1; must be in 127.0.0.0/8). */
  target: { hostname?: string; port: number };
  /** Front port on 127.0.0.1 (default 0: any free port). */
  port?: number;
  /** Seed of the loss and jitter generators (default 1). */
  seed?: number;
  /** Impairments client → target (default none). */
  up?: LinkLimits;
  /** Impairments target → client (default none). */
  down?: LinkLimits;
  /** Time series bin, ms (default 100). */
  binMs?: number;
  /** Most bins kept per direction; older ones are dropped (default 36 000: 1 h of 100 ms). */
  maxBins?: number;
  /** Most packets queued or in flight per direction; more are dropped (default 20 000). */
  maxInFlight?: number;
  /** Most clients (each gets a socket towards the target); packets of more are ignored (16). */
  maxClients?: number;
}

/**
 * A running link; see the module documentation.
 *
 * @example
 * ```ts
 * import { maxWindowBps, type UdpLink } from "./link_emulator.ts";
 * declare const link: UdpLink;
 * const peak = maxWindowBps(link.series("down"), "delivered", { windowMs: 1000 });
 * ```
 */
export interface UdpLink {
  /** The front port clients send to, on 127.0.0.1. */
  readonly port: number;
  /**
   * Replace the impairments of `direction` (default both) from now on; packets already queued
   * keep their schedule. Fields left out mean none.
   */
  setLimits(limits: LinkLimits, direction?: LinkDirection | "both"): void;
  /** No impairments in either direction (`setLimits({})`). */
  lift(): void;
  /** The current impairments of a direction. */
  limits(direction: LinkDirection): LinkLimits;
  /** A copy of a direction's counters. */
  counters(direction: LinkDirection): LinkCounters;
  /** A copy of a direction's time series. */
  series(direction: LinkDirection): LinkSeries;
  /** Clients seen (addresses that sent to the front port). */
  clients(): number;
  /** Stop forwarding and close every socket; queued packets are discarded. */
  close(): Promise<void>;
}

/**
 * A seeded generator of numbers in [0, 1) (mulberry32): the same seed gives the same sequence.
 *
 * @example
 * ```ts
 * import { seededRandom } from "./link_emulator.ts";
 * const a = seededRandom(42), b = seededRandom(42);
 * console.assert(a() === b());
 * ```
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The highest rate over any window of `windowMs` (a whole number of bins) of a series, bits per
 * second; only windows wholly inside `[fromMs, toMs)` (the series' clock) count. 0 when no window
 * fits.
 *
 * @example
 * ```ts
 * import { maxWindowBps } from "./link_emulator.ts";
 * const s = { binMs: 100, startMs: 0, startEpochMs: 0, offered: Array(20).fill(12_500), delivered: [] };
 * console.log(maxWindowBps(s, "offered", { windowMs: 1000 })); // 1 000 000
 * ```
 */
export function maxWindowBps(
  series: LinkSeries,
  kind: "offered" | "delivered",
  options: { windowMs?: number; fromMs?: number; toMs?: number } = {},
): number {
  const bins = series[kind];
  const per = Math.max(1, Math.round((options.windowMs ?? 1000) / series.binMs));
  const first = Math.max(
    0,
    Math.ceil(((options.fromMs ?? -Infinity) - series.startMs) / series.binMs),
  );
  const end = Math.min(
    bins.length,
    Math.floor(((options.toMs ?? Infinity) - series.startMs) / series.binMs),
  );
  let best = 0;
  let sum = 0;
  for (let i = first; i < end; i++) {
    sum += bins[i] ?? 0;
    if (i - first >= per) sum -= bins[i - per] ?? 0;
    if (i - first >= per - 1) best = Math.max(best, sum);
  }
  return best * 8 / (per * series.binMs / 1000);
}

/**
 * Total bytes of a series' bins wholly inside `[fromMs, toMs)`, and the time they cover.
 *
 * @example
 * ```ts
 * import { seriesTotal } from "./link_emulator.ts";
 * const s = { binMs: 100, startMs: 0, startEpochMs: 0, offered: [1, 2, 3], delivered: [] };
 * console.log(seriesTotal(s, "offered", 100, 300)); // { bytes: 5, ms: 200 }
 * ```
 */
export function seriesTotal(
  series: LinkSeries,
  kind: "offered" | "delivered",
  fromMs = -Infinity,
  toMs = Infinity,
): { bytes: number; ms: number } {
  const bins = series[kind];
  const first = Math.max(0, Math.ceil((fromMs - series.startMs) / series.binMs));
  const end = Math.min(bins.length, Math.floor((toMs - series.startMs) / series.binMs));
  let bytes = 0;
  for (let i = first; i < end; i++) bytes += bins[i] ?? 0;
  return { bytes, ms: Math.max(0, end - first) * series.binMs };
}

const LOOPBACK = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** A packet on its way. */
interface InFlight {
  at: number;
  seq: number;
  arrived: number;
  data: Uint8Array;
  dir: Direction;
  client: Client;
}

/** A client of the front port and its own socket towards the target. */
interface Client {
  addr: Deno.NetAddr;
  back: Deno.DatagramConn;
}

/** A binary min-heap of packets by due time, then arrival order. */
class Schedule {
  #a: InFlight[] = [];
  get size(): number {
    return this.#a.length;
  }
  peek(): InFlight | undefined {
    return this.#a[0];
  }
  #less(i: number, j: number): boolean {
    const x = this.#a[i], y = this.#a[j];
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }
  push(p: InFlight): void {
    const a = this.#a;
    a.push(p);
    for (let i = a.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!this.#less(i, parent)) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }
  pop(): InFlight | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && this.#less(l, m)) m = l;
        if (r < a.length && this.#less(r, m)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
  clear(): void {
    this.#a = [];
  }
}

function emptyCounters(): LinkCounters {
  return {
    packetsIn: 0,
    bytesIn: 0,
    packetsForwarded: 0,
    bytesForwarded: 0,
    packetsDroppedQueue: 0,
    bytesDroppedQueue: 0,
    packetsDroppedLoss: 0,
    bytesDroppedLoss: 0,
    sendErrors: 0,
    peakQueueBytes: 0,
    minTransitMs: NaN,
    maxTransitMs: NaN,
    maxLatenessMs: 0,
  };
}

function checkLimits(l: LinkLimits): LinkLimits {
  const nonNegative = (k: keyof LinkLimits) => {
    const v = l[k];
    if (v !== undefined && typeof v === "number" && !(v >= 0)) {
      throw new RangeError(`link limit ${k} ${v}: must be 0 or more`);
    }
  };
  for (const k of ["rateBps", "queueBytes", "queueMs", "delayMs", "jitterMs"] as const) {
    nonNegative(k);
  }
  if (l.lossRate !== undefined && !(l.lossRate >= 0 && l.lossRate <= 1)) {
    throw new RangeError(`link limit lossRate ${l.lossRate}: must be within 0–1`);
  }
  return { ...l };
}

/** One direction: its impairments, state and counters. */
class Direction {
  limits: LinkLimits;
  readonly counters = emptyCounters();
  readonly offered: number[] = [];
  readonly delivered: number[] = [];
  /** Index of `offered[0]` / `delivered[0]` since the link started (older bins dropped). */
  binBase = 0;
  /** When (virtual clock) the rate limiter is free again. */
  busyUntil = 0;
  /** Due time of the latest packet scheduled (for order). */
  lastDue = 0;
  inFlight = 0;
  readonly loss: () => number;
  readonly jitter: () => number;

  constructor(limits: LinkLimits, seed: number) {
    this.limits = checkLimits(limits);
    this.loss = seededRandom(seed);
    this.jitter = seededRandom(seed ^ 0x5bd1e995);
  }
}

/**
 * Start a link on 127.0.0.1 in front of `options.target`; see the module documentation.
 *
 * @example
 * ```ts
 * import { startUdpLink } from "./link_emulator.ts";
 * const link = startUdpLink({ target: { port: 3478 }, down: { rateBps: 2e6, delayMs: 20 } });
 * console.log(`turn:127.0.0.1:${link.port}?transport=udp`);
 * await link.close();
 * ```
 */
export function startUdpLink(options: UdpLinkOptions): UdpLink {
  const targetHost = options.target.hostname ?? "127.0.0.1";
  if (!LOOPBACK.test(targetHost)) {
    throw new RangeError(`link target ${targetHost}: only 127.0.0.0/8 addresses`);
  }
  const target: Deno.NetAddr = {
    transport: "udp",
    hostname: targetHost,
    port: options.target.port,
  };
  const binMs = options.binMs ?? 100;
  const maxBins = options.maxBins ?? 36_000;
  const maxInFlight = options.maxInFlight ?? 20_000;
  const maxClients = options.maxClients ?? 16;
  const seed = options.seed ?? 1;
  const dirs: Record<LinkDirection, Direction> = {
    up: new Direction(options.up ?? {}, seed),
    down: new Direction(options.down ?? {}, seed + 0x9e3779b9),
  };
  const startMs = performance.now();
  const startEpochMs = performance.timeOrigin + startMs;
  const front = Deno.listenDatagram({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    transport: "udp",
  });
  const clients = new Map<string, Client>();
  const schedule = new Schedule();
  let seq = 0;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt = Infinity;
  let draining = false;

  const addToBin = (d: Direction, bins: number[], t: number, bytes: number) => {
    const index = Math.floor((t - startMs) / binMs) - d.binBase;
    if (index < 0) return;
    // Both series of a direction have the same bins, and drop their oldest together.
    while (d.offered.length <= index) {
      d.offered.push(0);
      d.delivered.push(0);
    }
    bins[index] += bytes;
    if (d.offered.length > maxBins) {
      const drop = d.offered.length - maxBins;
      d.offered.splice(0, drop);
      d.delivered.splice(0, drop);
      d.binBase += drop;
    }
  };

  const arm = () => {
    if (closed) return;
    const next = schedule.peek();
    if (!next) return;
    if (timer !== undefined && timerAt <= next.at) return;
    clearTimeout(timer);
    timerAt = next.at;
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = Infinity;
      drain();
    }, Math.max(0, next.at - performance.now()));
  };

  /** Send every packet that is due, one send at a time (sends issued together may reorder). */
  const drain = async () => {
    if (draining) return;
    draining = true;
    try {
      for (;;) {
        const next = schedule.peek();
        if (closed || !next || next.at > performance.now()) break;
        schedule.pop();
        const d = next.dir;
        d.inFlight--;
        const c = d.counters;
        try {
          if (d === dirs.up) await next.client.back.send(next.data, target);
          else await front.send(next.data, next.client.addr);
        } catch {
          if (closed) break;
          c.sendErrors++;
          continue;
        }
        const now = performance.now();
        c.packetsForwarded++;
        c.bytesForwarded += next.data.length;
        c.maxLatenessMs = Math.max(c.maxLatenessMs, now - next.at);
        const transit = now - next.arrived;
        c.minTransitMs = Number.isNaN(c.minTransitMs) ? transit : Math.min(c.minTransitMs, transit);
        c.maxTransitMs = Number.isNaN(c.maxTransitMs) ? transit : Math.max(c.maxTransitMs, transit);
        addToBin(d, d.delivered, now, next.data.length);
      }
    } finally {
      draining = false;
      arm();
    }
  };

  /** A packet arrived for direction `d`: queue, loss, delay, then into the schedule. */
  const admit = (d: Direction, client: Client, data: Uint8Array) => {
    const now = performance.now();
    const n = data.length;
    const c = d.counters;
    const l = d.limits;
    c.packetsIn++;
    c.bytesIn += n;
    addToBin(d, d.offered, now, n);
    if (d.inFlight >= maxInFlight) {
      c.packetsDroppedQueue++;
      c.bytesDroppedQueue += n;
      return;
    }
    let departs = now;
    const rate = l.rateBps ?? 0;
    if (rate > 0 && Number.isFinite(rate)) {
      const start = Math.max(now, d.busyUntil);
      const queued = (start - now) * rate / 8000;
      const limit = l.queueBytes ?? rate * (l.queueMs ?? 200) / 8000;
      if (queued + n > limit) {
        c.packetsDroppedQueue++;
        c.bytesDroppedQueue += n;
        return;
      }
      c.peakQueueBytes = Math.max(c.peakQueueBytes, Math.round(queued + n));
      d.busyUntil = start + n * 8000 / rate;
      departs = d.busyUntil;
    }
    if ((l.lossRate ?? 0) > 0 && d.loss() < l.lossRate!) {
      c.packetsDroppedLoss++;
      c.bytesDroppedLoss += n;
      return;
    }
    let at = departs + (l.delayMs ?? 0) + ((l.jitterMs ?? 0) > 0 ? d.jitter() * l.jitterMs! : 0);
    if (!l.reorder) at = Math.max(at, d.lastDue);
    d.lastDue = Math.max(d.lastDue, at);
    d.inFlight++;
    schedule.push({ at, seq: seq++, arrived: now, data, dir: d, client });
    if (at <= now && !draining) drain();
    else arm();
  };

  const clientOf = (addr: Deno.NetAddr): Client | undefined => {
    const key = `${addr.hostname}:${addr.port}`;
    let c = clients.get(key);
    if (c || clients.size >= maxClients) return c;
    const back = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    c = { addr, back };
    clients.set(key, c);
    const client = c;
    // What the target sends back to this client's socket goes down the link.
    (async () => {
      const buf = new Uint8Array(65536);
      while (!closed) {
        let got: [Uint8Array, Deno.Addr];
        try {
          got = await back.receive(buf);
        } catch {
          return;
        }
        const from = got[1] as Deno.NetAddr;
        if (from.port !== target.port || from.hostname !== target.hostname) continue;
        admit(dirs.down, client, got[0].slice());
      }
    })();
    return c;
  };

  const receiving = (async () => {
    const buf = new Uint8Array(65536);
    while (!closed) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await front.receive(buf);
      } catch {
        return;
      }
      const client = clientOf(got[1] as Deno.NetAddr);
      if (client) admit(dirs.up, client, got[0].slice());
    }
  })();

  return {
    port: (front.addr as Deno.NetAddr).port,
    setLimits(limits, direction = "both") {
      const checked = checkLimits(limits);
      for (const k of direction === "both" ? ["up", "down"] as const : [direction]) {
        dirs[k].limits = { ...checked };
      }
    },
    lift() {
      this.setLimits({});
    },
    limits: (direction) => ({ ...dirs[direction].limits }),
    counters: (direction) => ({ ...dirs[direction].counters }),
    series(direction) {
      const d = dirs[direction];
      return {
        binMs,
        startMs: startMs + d.binBase * binMs,
        startEpochMs: startEpochMs + d.binBase * binMs,
        offered: [...d.offered],
        delivered: [...d.delivered],
      };
    },
    clients: () => clients.size,
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      schedule.clear();
      front.close();
      for (const c of clients.values()) c.back.close();
      await receiving;
    },
  };
}
