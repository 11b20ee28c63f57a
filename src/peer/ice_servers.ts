/**
 * ICE server URLs (`stun:`, `turn:`, `turns:`; RFC 7064/7065) as a master uses them, and the
 * plan of which servers a session asks: each distinct server and transport once, STUN skipped
 * when only relays may be used, TURN only with credentials.
 *
 * @module
 */
import type { IceServer } from "../aws/types.ts";
import { ipv6Bytes } from "./ip.ts";

/** A `stun:`/`turn:`/`turns:` URL, as a master uses it. */
export interface IceUrl {
  /** `stun` or `turn`. */
  kind: "stun" | "turn";
  /** `turns:` (TLS). */
  secure: boolean;
  /** Host name, IPv4 address, or IPv6 address (without the URL's brackets). */
  host: string;
  /** Port (default 3478, or 5349 for `turns:`). */
  port: number;
  /** How the server is reached. */
  transport: "udp" | "tcp";
}

/**
 * Parse an ICE server URL (RFC 7064/7065); an IPv6 address is written in brackets
 * (`stun:[2001:db8::1]:3478`). Returns `undefined` for what a master does not use: `turns:` over
 * UDP (DTLS), other schemes, malformed addresses.
 *
 * @example
 * ```ts
 * import { parseIceUrl } from "./ice_servers.ts";
 * console.log(parseIceUrl("turns:turn.example.com:443?transport=tcp"));
 * // { kind: "turn", secure: true, host: "turn.example.com", port: 443, transport: "tcp" }
 * console.log(parseIceUrl("stun:[::1]:3478")?.host); // "::1"
 * ```
 */
export function parseIceUrl(url: string): IceUrl | undefined {
  const m = url.match(
    /^(stuns?|turns?):(\[[0-9a-f:.]+\]|[^:?\[\]]+)(?::(\d+))?(?:\?transport=(udp|tcp))?$/i,
  );
  if (!m) return undefined;
  const bracketed = m[2].startsWith("[");
  const host = bracketed ? m[2].slice(1, -1) : m[2];
  if (bracketed && !ipv6Bytes(host)) return undefined;
  const scheme = m[1].toLowerCase();
  const secure = scheme.endsWith("s");
  const kind = scheme.startsWith("stun") ? "stun" : "turn";
  const transport = (m[4]?.toLowerCase() ?? (secure ? "tcp" : "udp")) as "udp" | "tcp";
  if (secure && transport === "udp") return undefined;
  if (kind === "stun" && (secure || transport === "tcp")) return undefined;
  const port = m[3] ? Number(m[3]) : secure ? 5349 : 3478;
  if (port < 1 || port > 65535) return undefined;
  return { kind, secure, host, port, transport };
}

/** One server a session asks for a candidate. */
export interface IceServerUse {
  /** The URL as configured (for logs). */
  url: string;
  /** The URL parsed. */
  server: IceUrl;
  /** TURN credentials. */
  username?: string;
  /** TURN credentials. */
  credential?: string;
}

/**
 * The servers a session asks, in order: each server and transport once (a second allocation
 * from the same 5-tuple is refused), STUN only when host-side candidates may be used, TURN only
 * with credentials; `skipped` names URLs not used and why.
 *
 * @example
 * ```ts
 * import { planIceServers } from "./ice_servers.ts";
 * const { use, skipped } = planIceServers(
 *   [{ urls: ["stun:stun.example.com", "turns:turn.example.com:443?transport=udp"] }],
 *   false,
 * );
 * console.log(use.length, skipped); // 1 ["turns:turn.example.com:443?transport=udp"]
 * ```
 */
export function planIceServers(
  servers: IceServer[],
  relayOnly: boolean,
): { use: IceServerUse[]; skipped: string[] } {
  const use: IceServerUse[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const s of servers) {
    for (const url of s.urls) {
      const u = parseIceUrl(url);
      if (!u) {
        skipped.push(url);
        continue;
      }
      const key = `${u.kind}:${u.secure}:${u.host}:${u.port}:${u.transport}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (u.kind === "stun") {
        if (!relayOnly) use.push({ url, server: u });
      } else if (s.username && s.credential) {
        use.push({ url, server: u, username: s.username, credential: s.credential });
      }
    }
  }
  return { use, skipped };
}

/**
 * The address a session reaches `host` at: an IPv4 or IPv6 literal as it is, a name by its
 * IPv4 address (DNS `A`; names are not looked up for IPv6, the IPv4 socket always exists).
 *
 * @example
 * ```ts
 * import { resolveHost } from "./ice_servers.ts";
 * console.log(await resolveHost("::1")); // { ip: "::1", family: "IPv6" }
 * ```
 */
export async function resolveHost(host: string): Promise<{ ip: string; family: "IPv4" | "IPv6" }> {
  if (ipv6Bytes(host)) return { ip: host, family: "IPv6" };
  return { ip: await resolveIPv4(host), family: "IPv4" };
}

/**
 * The IPv4 address of a host name (an IPv4 literal as it is).
 *
 * @example
 * ```ts
 * import { resolveIPv4 } from "./ice_servers.ts";
 * console.log(await resolveIPv4("127.0.0.1")); // "127.0.0.1"
 * ```
 */
export async function resolveIPv4(host: string): Promise<string> {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return host;
  const [first] = await Deno.resolveDns(host, "A");
  if (!first) throw new Error(`${host} has no IPv4 address`);
  return first;
}
