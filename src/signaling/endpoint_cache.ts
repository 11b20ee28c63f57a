/**
 * The endpoint cache file (`.SignalingCache_v0`, as the C SDK names it): one CSV line per
 * channel, `channel,region,role,ARN,wss,https,time-ms`. A fresh entry lets a restart skip
 * Describe Channel and Get Channel Endpoint. Entries live 10 h. A corrupt file is ignored with a
 * warning and rewritten on the next store.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";

/**
 * Default file name, as the C SDK names it.
 *
 * @example
 * ```ts
 * import { DEFAULT_ENDPOINT_CACHE_FILE, EndpointCache } from "./endpoint_cache.ts";
 * new EndpointCache({ path: DEFAULT_ENDPOINT_CACHE_FILE });
 * ```
 */
export const DEFAULT_ENDPOINT_CACHE_FILE = ".SignalingCache_v0";
/**
 * Default time to live: 10 h.
 *
 * @example
 * ```ts
 * import { DEFAULT_ENDPOINT_CACHE_TTL_MS } from "./endpoint_cache.ts";
 * console.log(DEFAULT_ENDPOINT_CACHE_TTL_MS / 3_600_000); // 10
 * ```
 */
export const DEFAULT_ENDPOINT_CACHE_TTL_MS = 10 * 60 * 60 * 1000;

/**
 * One cached channel.
 *
 * @example
 * ```ts
 * import type { EndpointCacheEntry } from "./endpoint_cache.ts";
 * const entry: EndpointCacheEntry = {
 *   channelName: "demo-channel", region: "us-west-2", role: "MASTER",
 *   channelArn: "arn:aws:kinesisvideo:us-west-2:1:channel/demo-channel/1",
 *   wss: "wss://m-1.example", https: "https://r-1.example", storedAt: Date.now(),
 * };
 * ```
 */
export interface EndpointCacheEntry {
  /** Channel name. */
  channelName: string;
  /** AWS region. */
  region: string;
  /** Role the endpoints were fetched for. */
  role: "MASTER" | "VIEWER";
  /** Channel ARN. */
  channelArn: string;
  /** WSS endpoint. */
  wss: string;
  /** HTTPS endpoint. */
  https: string;
  /** Wall-clock ms when the entry was stored. */
  storedAt: number;
}

/**
 * Options of {@link EndpointCache}.
 *
 * @example
 * ```ts
 * import { EndpointCache, type EndpointCacheOptions } from "./endpoint_cache.ts";
 * const options: EndpointCacheOptions = { path: "/var/lib/kvs/.SignalingCache_v0", ttlMs: 3_600_000 };
 * new EndpointCache(options);
 * ```
 */
export interface EndpointCacheOptions {
  /** File path. Default {@link DEFAULT_ENDPOINT_CACHE_FILE} in the working directory. */
  path?: string;
  /** Entry lifetime in ms. Default 10 h. */
  ttlMs?: number;
  /** Logger for warnings about a corrupt or unwritable file. */
  logger?: Logger;
  /** Wall clock in ms. Default `Date.now`. */
  now?: () => number;
}

const FIELDS = 7;

function validUrl(value: string, schemes: string[]): boolean {
  try {
    return schemes.includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

/**
 * Reads and writes the endpoint cache file. All methods swallow I/O errors (logging a warning):
 * the cache is an optimisation, never a reason to fail.
 *
 * @example
 * ```ts
 * import { EndpointCache } from "./endpoint_cache.ts";
 * const cache = new EndpointCache({ path: await Deno.makeTempFile() });
 * await cache.store({
 *   channelName: "demo-channel", region: "us-west-2", role: "MASTER",
 *   channelArn: "arn:aws:kinesisvideo:us-west-2:1:channel/demo-channel/1",
 *   wss: "wss://m-1.example", https: "https://r-1.example", storedAt: Date.now(),
 * });
 * const hit = await cache.lookup("demo-channel", "us-west-2", "MASTER");
 * ```
 */
export class EndpointCache {
  /** Path of the cache file. */
  readonly path: string;
  readonly #ttl: number;
  readonly #log: Logger;
  readonly #now: () => number;

  /** Create a cache over `options.path`. */
  constructor(options: EndpointCacheOptions = {}) {
    this.path = options.path ?? DEFAULT_ENDPOINT_CACHE_FILE;
    this.#ttl = options.ttlMs ?? DEFAULT_ENDPOINT_CACHE_TTL_MS;
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
  }

  /** Every well-formed entry in the file (expired ones included). Corrupt lines are skipped. */
  async entries(): Promise<EndpointCacheEntry[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        this.#log.warn(`Endpoint cache ${this.path} unreadable, ignoring it`, { error: e });
      }
      return [];
    }
    const out: EndpointCacheEntry[] = [];
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
    lines.forEach((line, i) => {
      const entry = parseLine(line);
      if (entry) out.push(entry);
      else this.#log.warn(`Endpoint cache ${this.path} line ${i + 1} is corrupt, ignoring it`);
    });
    return out;
  }

  /** The fresh entry for a channel, or `undefined`. */
  async lookup(
    channelName: string,
    region: string,
    role: "MASTER" | "VIEWER",
  ): Promise<EndpointCacheEntry | undefined> {
    const now = this.#now();
    return (await this.entries()).find((e) =>
      e.channelName === channelName && e.region === region && e.role === role &&
      now - e.storedAt < this.#ttl && e.storedAt <= now + 60_000
    );
  }

  /** Add or replace the entry of a channel. */
  async store(entry: EndpointCacheEntry): Promise<void> {
    const others = (await this.entries()).filter((e) => !sameKey(e, entry));
    await this.#write([...others, entry]);
  }

  /** Remove the entry of a channel (after a 404 with its cached ARN). */
  async invalidate(channelName: string, region: string, role: "MASTER" | "VIEWER"): Promise<void> {
    const all = await this.entries();
    const kept = all.filter((e) => !sameKey(e, { channelName, region, role }));
    if (kept.length !== all.length) await this.#write(kept);
  }

  async #write(entries: EndpointCacheEntry[]): Promise<void> {
    const text = entries.map(formatLine).join("\n") + (entries.length ? "\n" : "");
    try {
      const tmp = `${this.path}.tmp-${crypto.randomUUID()}`;
      await Deno.writeTextFile(tmp, text);
      await Deno.rename(tmp, this.path);
    } catch (e) {
      this.#log.warn(`Endpoint cache ${this.path} not written`, { error: e });
    }
  }
}

function sameKey(
  a: Pick<EndpointCacheEntry, "channelName" | "region" | "role">,
  b: Pick<EndpointCacheEntry, "channelName" | "region" | "role">,
): boolean {
  return a.channelName === b.channelName && a.region === b.region && a.role === b.role;
}

function formatLine(e: EndpointCacheEntry): string {
  return [e.channelName, e.region, e.role, e.channelArn, e.wss, e.https, String(e.storedAt)]
    .join(",");
}

function parseLine(line: string): EndpointCacheEntry | undefined {
  const parts = line.split(",");
  if (parts.length !== FIELDS) return undefined;
  const [channelName, region, role, channelArn, wss, https, time] = parts.map((p) => p.trim());
  if (!channelName || !region || (role !== "MASTER" && role !== "VIEWER")) return undefined;
  if (!channelArn.startsWith("arn:")) return undefined;
  if (!validUrl(wss, ["wss:", "ws:"]) || !validUrl(https, ["https:", "http:"])) return undefined;
  if (!/^\d{1,16}$/.test(time)) return undefined;
  return { channelName, region, role, channelArn, wss, https, storedAt: Number(time) };
}
