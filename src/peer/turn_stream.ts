/**
 * Byte streams to TURN servers over TCP or TLS (RFC 6062 framing is the core's): open one, write
 * whole chunks in order, read until it closes.
 *
 * @module
 */
import type { IceUrl } from "./ice_servers.ts";

/** A stream to one TURN server, with its writes chained so they never interleave. */
export class TurnStream {
  readonly conn: Deno.Conn;
  #writing: Promise<unknown> = Promise.resolve();

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /**
   * Connect to `server` at `ip` (TLS for `turns:`, verified against `caCerts` or the system's).
   *
   * @example
   * ```ts
   * import { TurnStream } from "./turn_stream.ts";
   * import { parseIceUrl } from "./ice_servers.ts";
   * const server = parseIceUrl("turn:127.0.0.1:3478?transport=tcp")!;
   * const stream = await TurnStream.open(server, "127.0.0.1");
   * stream.close();
   * ```
   */
  static async open(server: IceUrl, ip: string, caCerts?: string[]): Promise<TurnStream> {
    const conn = server.secure
      ? await Deno.connectTls({ hostname: server.host, port: server.port, caCerts })
      : await Deno.connect({ hostname: ip, port: server.port, transport: "tcp" });
    return new TurnStream(conn);
  }

  /** Queue a copy of `bytes` behind earlier writes; failures end nothing here (reads see them). */
  write(bytes: Uint8Array): void {
    const own = bytes.slice();
    this.#writing = this.#writing.then(() => writeAll(this.conn, own)).catch(() => {});
  }

  /**
   * Hand each chunk read to `onChunk` until the stream ends or `stopped()`; resolves then.
   * `onChunk` may throw to stop reading.
   */
  async read(onChunk: (chunk: Uint8Array) => void, stopped: () => boolean): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    while (!stopped()) {
      let n: number | null;
      try {
        n = await this.conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) return;
      onChunk(buf.subarray(0, n));
    }
  }

  /** Close the connection (twice is fine). */
  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/** Write every byte (a stream write may take only part). */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}
