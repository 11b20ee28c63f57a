/**
 * The C library through Deno's FFI, where it pays: many datagrams in one system call
 * (`sendmmsg(2)`, on the descriptor of a `Deno.DatagramConn`), and freed memory handed back
 * (`malloc_trim(3)`). Linux only, and only with FFI permission
 * (`--allow-ffi`, included in `-A`); everywhere else {@link Sendmmsg.forSocket} returns
 * `undefined` and callers keep Deno's portable `send()`.
 *
 * Why: Deno's `send()` is one asynchronous operation (a promise, a runtime op) per datagram;
 * a master streaming to ten viewers sends ~2,600 datagrams a second, and that bookkeeping, not
 * the kernel, was the larger part of its CPU. One `sendmmsg` per frame per viewer replaces it.
 * The call is made with `MSG_DONTWAIT` and never blocks: whatever the kernel does not take
 * (full socket buffer, an error) the caller sends the portable way, in order.
 *
 * @module
 */

import { ipv6Bytes } from "./ip.ts";

const MSG_DONTWAIT = 0x40;
/** Messages per call. */
const MAX = 256;
/** `struct mmsghdr` on LP64 Linux: a 56-byte `msghdr`, `unsigned int msg_len`, padding. */
const MMSGHDR = 64;
/** A `sockaddr_in6`, the larger of the two address structures (28 bytes), rounded up. */
const NAME = 32;

const SYMBOLS = {
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  malloc_trim: { parameters: ["usize"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>;

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  try {
    if (Deno.build.os !== "linux") return libc;
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return libc;
    libc = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch {
    libc = null;
  }
  return libc;
}

let trimTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * Give memory the C library holds freed back to the system, a few seconds from now (calls
 * within that time are merged). glibc keeps what a thread freed in that thread's arena; the
 * engine's background threads (compilers, garbage collector) free a lot once, when the first
 * viewer's code is optimized, and without this it stays counted against the process. Linux with
 * FFI permission only; elsewhere nothing happens.
 *
 * @example
 * ```ts
 * import { trimMemorySoon } from "./libc.ts";
 * trimMemorySoon(); // e.g. after a viewer connected
 * ```
 */
export function trimMemorySoon(delayMs = 3000): void {
  if (trimTimer !== undefined || !loadLibc()) return;
  trimTimer = setTimeout(() => {
    trimTimer = undefined;
    loadLibc()?.symbols.malloc_trim(0n);
  }, delayMs);
  Deno.unrefTimer(trimTimer);
}

let holders = 0;
let trimInterval: ReturnType<typeof setInterval> | undefined;

/**
 * Keep giving freed memory back to the system every `intervalMs` while at least one holder
 * (e.g. a streaming session) is alive; returns the release function (idempotent). The engine's
 * background threads free memory whenever they optimize code or collect garbage, and glibc keeps
 * it in their arenas: a one-off trim after a viewer connects catches the first such release,
 * not the later ones (measured: one arena grew by 12 MB twenty seconds into a viewer's stream,
 * all of it freed memory). A trim took 0.1–0.8 ms in a master of ~100 MB and up to 14 ms in a
 * 400 MB process: every 10 s, that is at most a fraction of a percent of the main thread.
 * After the last holder leaves, one more trim follows. Linux with FFI permission only.
 *
 * @example
 * ```ts
 * import { holdMemoryTrim } from "./libc.ts";
 * const release = holdMemoryTrim(); // when a session starts streaming
 * release(); // when it closes
 * ```
 */
export function holdMemoryTrim(intervalMs = 10_000): () => void {
  if (!loadLibc()) return () => {};
  if (holders++ === 0) {
    trimInterval = setInterval(() => loadLibc()?.symbols.malloc_trim(0n), intervalMs);
    Deno.unrefTimer(trimInterval);
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--holders > 0) return;
    clearInterval(trimInterval);
    trimInterval = undefined;
    trimMemorySoon();
  };
}

/** The descriptor of the UDP socket bound to `port` in this process, from /proc. */
function descriptorOf(port: number, family: "IPv4" | "IPv6"): number | undefined {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const table = Deno.readTextFileSync(family === "IPv4" ? "/proc/net/udp" : "/proc/net/udp6");
  const inodes = new Set<string>();
  for (const line of table.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(hex) && f[9]) inodes.add(`socket:[${f[9]}]`);
  }
  if (inodes.size === 0) return undefined;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (inodes.has(Deno.readLinkSync(`/proc/self/fd/${e.name}`))) return Number(e.name);
    } catch { /* closed meanwhile */ }
  }
  return undefined;
}

/**
 * The memory address of a view's first byte. Use it only for buffers larger than 64 bytes (V8
 * keeps those outside its moving heap) and only while the buffer is alive.
 */
export function addressOf(view: Uint8Array | Uint32Array): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(view)));
}

/**
 * Sends runs of datagrams with one `sendmmsg` call each. Each datagram is given by the address
 * and length of its bytes ({@link addressOf}), which must stay alive and unchanged during the
 * call.
 *
 * @example
 * ```ts
 * import { addressOf, Sendmmsg } from "./libc.ts";
 * const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
 * const buf = new Uint8Array(1500);
 * const batch = Sendmmsg.forSocket(socket); // undefined off Linux or without --allow-ffi
 * const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 9 };
 * const at = addressOf(buf);
 * console.log(batch?.send([at, at + 100], [100, 50], [to, to], 0, 2)); // 2
 * socket.close();
 * ```
 */
export class Sendmmsg {
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #hdr = new Uint32Array((MAX * MMSGHDR) / 4);
  readonly #iov = new Uint32Array(MAX * 4);
  readonly #names = new Uint8Array(MAX * NAME);
  readonly #hdrAt: number;
  readonly #iovAt: number;
  readonly #namesAt: number;

  private constructor(lib: Libc, fd: number) {
    this.#libc = lib;
    this.#fd = fd;
    this.#hdrAt = addressOf(this.#hdr);
    this.#iovAt = addressOf(this.#iov);
    this.#namesAt = addressOf(this.#names);
  }

  /**
   * Batch sending for `socket`. `undefined` where it is not available: not Linux, no FFI
   * permission, or the socket's descriptor not found.
   */
  static forSocket(socket: Deno.DatagramConn): Sendmmsg | undefined {
    const lib = loadLibc();
    if (!lib) return undefined;
    try {
      const a = socket.addr as Deno.NetAddr;
      const fd = descriptorOf(a.port, a.hostname.includes(":") ? "IPv6" : "IPv4");
      return fd === undefined ? undefined : new Sendmmsg(lib, fd);
    } catch {
      return undefined;
    }
  }

  /**
   * Send datagrams `from` … `to - 1`: datagram `i` is `lengths[i]` bytes at memory address
   * `at[i]`, for `addrs[i]`. Returns how many the kernel took, in order (0 when it took none or
   * failed at the first); the caller sends the rest another way.
   */
  send(
    at: readonly number[],
    lengths: readonly number[],
    addrs: readonly Deno.NetAddr[],
    from: number,
    to: number,
  ): number {
    const hdr = this.#hdr, iov = this.#iov, names = this.#names;
    let sent = 0;
    for (let start = from; start < to;) {
      const count = Math.min(MAX, to - start);
      let last: Deno.NetAddr | undefined;
      let name = 0;
      let nameLen = 0;
      for (let k = 0; k < count; k++) {
        const i = start + k;
        const a = addrs[i];
        if (a !== last) {
          last = a;
          name = this.#namesAt + k * NAME;
          nameLen = writeSockaddr(names, k * NAME, a);
          if (nameLen === 0) return sent; // not an address this path can write
        }
        put(iov, k * 4, at[i]);
        put(iov, k * 4 + 2, lengths[i]);
        const h = (k * MMSGHDR) / 4;
        put(hdr, h, name); // msg_name
        hdr[h + 2] = nameLen; // msg_namelen
        hdr[h + 3] = 0;
        put(hdr, h + 4, this.#iovAt + k * 16); // msg_iov
        put(hdr, h + 6, 1); // msg_iovlen
        put(hdr, h + 8, 0); // msg_control
        put(hdr, h + 10, 0); // msg_controllen
        put(hdr, h + 12, 0); // msg_flags, msg_len
        put(hdr, h + 14, 0);
      }
      const n = this.#libc.symbols.sendmmsg(this.#fd, hdr, count, MSG_DONTWAIT);
      if (n <= 0) return sent;
      sent += n;
      if (n < count) return sent;
      start += count;
    }
    return sent;
  }
}

/** Write a 64-bit little-endian value (< 2^53) as two 32-bit words. */
function put(words: Uint32Array, at: number, value: number): void {
  words[at] = value >>> 0;
  words[at + 1] = Math.floor(value / 0x1_0000_0000);
}

/**
 * A `sockaddr_in` or `sockaddr_in6` for `a` at `off`; returns its length (0: cannot). The
 * family must be the socket's: an IPv6 destination on an IPv4 socket fails in the kernel, and
 * its datagram then goes the portable way (which fails the same way, and is counted).
 */
function writeSockaddr(b: Uint8Array, off: number, a: Deno.NetAddr): number {
  const v4 = a.hostname.split(".");
  if (v4.length === 4 && !a.hostname.includes(":")) {
    b[off] = 2; // AF_INET, little-endian sa_family_t
    b[off + 1] = 0;
    b[off + 2] = a.port >> 8;
    b[off + 3] = a.port & 255;
    for (let i = 0; i < 4; i++) b[off + 4 + i] = Number(v4[i]) & 255;
    b.fill(0, off + 8, off + 16);
    return 16;
  }
  const v6 = ipv6Bytes(a.hostname);
  if (!v6) return 0; // not an address this path writes: it goes the portable way
  b[off] = 10; // AF_INET6 (Linux)
  b[off + 1] = 0;
  b[off + 2] = a.port >> 8;
  b[off + 3] = a.port & 255;
  b.fill(0, off + 4, off + 8); // sin6_flowinfo
  b.set(v6, off + 8);
  b.fill(0, off + 24, off + 28); // sin6_scope_id
  return 28;
}
