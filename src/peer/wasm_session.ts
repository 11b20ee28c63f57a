/**
 * Peer sessions entirely in the WASM media core — ICE (controlled agent, host, server-reflexive
 * and TURN relay candidates, consent freshness), DTLS-SRTP with the viewer's fingerprint
 * checked, H.264 → RTP → SRTP — driven by Deno UDP sockets (IPv4, and IPv6 where the host has
 * it), TCP/TLS streams to TURN servers, and timers.
 *
 * @module
 */
import { prepareMediaCore } from "./media_core.ts";
import type { PeerSession, PeerSessionFactory, PeerSessionOptions } from "./types.ts";
import { trimMemorySoon } from "./libc.ts";
import { type HostSocket, WasmPeerSession } from "./session_driver.ts";
import { usableIPv6Host } from "./ip.ts";

/** Options of {@link WasmPeerSessionFactory}. */
export interface WasmPeerSessionOptions {
  /**
   * Host candidates on 127.0.0.1 and ::1 only (tests). Default: every non-loopback IPv4
   * address, and every IPv6 address that is neither loopback nor link-local.
   */
  loopbackOnly?: boolean;
  /**
   * End a session when nothing that authenticates as the viewer (an ICE check with its
   * credentials, SRTCP under its keys) arrived for this long, ms (default 8000). Browsers send
   * both every second or so; other bytes, which anyone can send, do not count.
   */
  silenceTimeoutMs?: number;
  /**
   * `relay`: offer and use only TURN relay candidates — for networks where only the TURN server
   * is reachable, or to keep the device's addresses private. Default `all`.
   */
  iceTransportPolicy?: "all" | "relay";
  /** Extra CA certificates (PEM) to trust for `turns:` servers, e.g. a private TURN server. */
  turnCaCerts?: string[];
  /**
   * Refresh TURN allocations at least this often, seconds (default: at half the lifetime the
   * server grants, usually 5 min). Shorter keeps NAT mappings towards the TURN server alive.
   */
  turnRefreshIntervalSeconds?: number;
  /**
   * Offer SRTP AEAD_AES_128_GCM too (default false). A viewer listing it first then gets it, and
   * in WebAssembly it costs about 1.5× the CPU of AES_CM_128_HMAC_SHA1_80, which every WebRTC
   * endpoint implements. (Chromium lists AES-CM first.)
   */
  allowAesGcm?: boolean;
  /**
   * Send each frame's datagrams with one `sendmmsg(2)` call where that is available (Linux,
   * FFI permission), default true; otherwise, and when false, one Deno `send()` per datagram.
   * Either way a session's datagrams leave in order.
   */
  sendmmsg?: boolean;
  /**
   * End a session whose viewer nominated no candidate pair this long after its offer, ms
   * (default 30 000). The clock runs from the offer whatever happens next (no candidates,
   * unreachable STUN or TURN servers), so an offer that never connects frees its seat.
   */
  iceConnectTimeoutMs?: number;
}

export {
  type MediaDirection,
  type OfferedAudio,
  type OfferedData,
  type OfferedVideo,
  type ParsedOffer,
  parseOffer,
  type ParseOfferOptions,
} from "./sdp.ts";
export { type IceUrl, parseIceUrl } from "./ice_servers.ts";

/**
 * Makes {@link PeerSession}s that run wholly in the WASM core.
 *
 * @example
 * ```ts
 * import { WasmPeerSessionFactory } from "./wasm_session.ts";
 * const factory = new WasmPeerSessionFactory({ loopbackOnly: true });
 * const relayOnly = new WasmPeerSessionFactory({ iceTransportPolicy: "relay" });
 * ```
 */
export class WasmPeerSessionFactory implements PeerSessionFactory {
  readonly #o: WasmPeerSessionOptions;

  /** Configure; nothing is bound until a session is made. */
  constructor(options: WasmPeerSessionOptions = {}) {
    this.#o = options;
  }

  /** Compile the core, make the process's DTLS certificate and an idle instance (warm start). */
  async prepare(): Promise<void> {
    await prepareMediaCore();
    trimMemorySoon();
  }

  /**
   * Create one viewer's session and its UDP sockets: one IPv4 socket, and one IPv6 socket when
   * the host has an IPv6 address to offer (`::1` with `loopbackOnly`). Without IPv6 (none
   * configured, or binding fails) the session is IPv4-only, as before, with a debug line.
   */
  create(options: PeerSessionOptions): Promise<PeerSession> {
    const loopback = this.#o.loopbackOnly ?? false;
    const v4 = Deno.listenDatagram({
      hostname: loopback ? "127.0.0.1" : "0.0.0.0",
      port: 0,
      transport: "udp",
    });
    const interfaces = loopback ? [] : Deno.networkInterfaces();
    const addresses4 = loopback ? ["127.0.0.1"] : unique(
      interfaces.filter((i) => i.family === "IPv4" && !i.address.startsWith("127."))
        .map((i) => i.address),
    );
    const addresses6 = loopback ? ["::1"] : unique(
      interfaces.filter((i) => i.family === "IPv6" && usableIPv6Host(i.address))
        .map((i) => i.address),
    );
    let v6: HostSocket | undefined;
    if (addresses6.length > 0) {
      // Deno's socket on "::" is dual-stack (IPV6_V6ONLY off, the Linux default): IPv4 arrivals
      // show as ::ffff:a.b.c.d, which the session drops — its IPv6 port is offered for IPv6 only.
      const hostname = loopback ? "::1" : "::";
      try {
        const socket = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
        v6 = { socket, port: (socket.addr as Deno.NetAddr).port, addresses: addresses6 };
      } catch (e) {
        options.logger.debug(
          `Viewer ${options.viewerId}: no IPv6 socket (${hostname}: ${(e as Error).message}); ` +
            "IPv4 only",
        );
      }
    }
    const host4 = { socket: v4, port: (v4.addr as Deno.NetAddr).port, addresses: addresses4 };
    return Promise.resolve(new WasmPeerSession(options, host4, v6, this.#o));
  }
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}
