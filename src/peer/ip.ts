/**
 * IP address text as the peer modules need it: IPv6 text to its 16 bytes (for the media core's
 * binary addresses and `sockaddr_in6`), and which interface addresses make useful IPv6 host
 * candidates.
 *
 * @module
 */

/**
 * The 16 bytes of an IPv6 address in text form (`2001:db8::1`, `::1`, `::ffff:192.0.2.1`),
 * or `undefined` when `text` is not one. A zone (`%eth0`) is not accepted.
 *
 * @example
 * ```ts
 * import { ipv6Bytes } from "./ip.ts";
 * console.log(ipv6Bytes("::1")?.[15]); // 1
 * console.log(ipv6Bytes("127.0.0.1")); // undefined
 * ```
 */
export function ipv6Bytes(text: string): Uint8Array | undefined {
  if (!text.includes(":") || text.includes("%")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const words = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const groups = part.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes(".")) {
        const q = g.split(".");
        if (q.length !== 4 || !q.every((x) => /^\d{1,3}$/.test(x) && Number(x) < 256)) return;
        out.push((Number(q[0]) << 8) | Number(q[1]), (Number(q[2]) << 8) | Number(q[3]));
      } else if (/^[0-9a-f]{1,4}$/i.test(g)) {
        out.push(parseInt(g, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 255;
  });
  return out;
}

/**
 * Whether an interface's IPv6 address makes a host candidate a viewer can use: not link-local
 * (`fe80::/10`, which needs an interface scope a candidate cannot carry), not unspecified, not
 * IPv4-mapped, and not loopback unless `loopback` is allowed.
 *
 * @example
 * ```ts
 * import { usableIPv6Host } from "./ip.ts";
 * console.log(usableIPv6Host("2001:db8::7")); // true
 * console.log(usableIPv6Host("fe80::1")); // false
 * console.log(usableIPv6Host("::1"), usableIPv6Host("::1", true)); // false true
 * ```
 */
export function usableIPv6Host(address: string, loopback = false): boolean {
  const b = ipv6Bytes(address);
  if (!b) return false;
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return false; // link-local
  const zeroes = b.subarray(0, 15).every((x) => x === 0);
  if (zeroes && b[15] <= 1) return loopback && b[15] === 1; // ::1 loopback, :: unspecified
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return !mapped;
}
