/**
 * The endpoint cache file (`.SignalingCache_v0`, as the C SDK names it): one CSV line per
 * channel, `channel,region,role,ARN,wss,https,time-ms`, and an eighth field, the control-plane
 * endpoint override, only for entries fetched through one (an emulator, a test stage), so lines of
 * the standard endpoint keep the seven-field layout. Entries are keyed by channel, region, role
 * and endpoint override. A fresh entry lets a restart skip Describe Channel and Get Channel
 * Endpoint. Entries live 10 h; the signaling client drops one as soon as a connection to its
 * endpoint fails. A corrupt file is ignored with a warning and rewritten on the next store.
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
  /**
   * Control-plane endpoint override the entry was fetched through; absent for the region's
   * standard endpoint. Part of the key.
   */
  endpoint?: string;
}

/**
 * What identifies a cache entry: channel, region, role and control-plane endpoint override.
 *
 * @example
 * ```ts
 * import type { EndpointCacheKey } from "./endpoint_cache.ts";
 * const key: EndpointCacheKey = {
 *   channelName: "demo-channel", region: "us-west-2", role: "MASTER",
 *   endpoint: "https://127.0.0.1:4443",
 * };
 * ```
 */
export type EndpointCacheKey = Pick<
  EndpointCacheEntry,
  "channelName" | "region" | "role" | "endpoint"
>;

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
const FIELDS_WITH_ENDPOINT = 8;

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

  /**
   * The fresh entry for a channel, or `undefined`. `endpoint` is the control-plane endpoint
   * override (omit it for the region's standard endpoint): entries of other endpoints never match.
   */
  async lookup(
    channelName: string,
    region: string,
    role: "MASTER" | "VIEWER",
    endpoint?: string,
  ): Promise<EndpointCacheEntry | undefined> {
    const now = this.#now();
    const key = { channelName, region, role, endpoint };
    return (await this.entries()).find((e) =>
      sameKey(e, key) && now - e.storedAt < this.#ttl && e.storedAt <= now + 60_000
    );
  }

  /** Add or replace the entry of a channel. Values holding a comma are not cached. */
  async store(entry: EndpointCacheEntry): Promise<void> {
    const values = [entry.channelName, entry.channelArn, entry.wss, entry.https, entry.endpoint];
    if (values.some((v) => v?.includes(",") || v?.includes("\n"))) {
      this.#log.warn(`Endpoint cache: an entry of ${entry.channelName} cannot be written as CSV`);
      return;
    }
    const others = (await this.entries()).filter((e) => !sameKey(e, entry));
    await this.#write([...others, entry]);
  }

  /**
   * Remove the entry of a channel (a connection to its endpoint failed, a 404 with its ARN, the
   * channel was deleted). `endpoint` as for {@link EndpointCache.lookup}.
   */
  async invalidate(
    channelName: string,
    region: string,
    role: "MASTER" | "VIEWER",
    endpoint?: string,
  ): Promise<void> {
    const all = await this.entries();
    const kept = all.filter((e) => !sameKey(e, { channelName, region, role, endpoint }));
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

function sameKey(a: EndpointCacheKey, b: EndpointCacheKey): boolean {
  return a.channelName === b.channelName && a.region === b.region && a.role === b.role &&
    (a.endpoint || undefined) === (b.endpoint || undefined);
}

function formatLine(e: EndpointCacheEntry): string {
  const fields = [e.channelName, e.region, e.role, e.channelArn, e.wss, e.https];
  fields.push(String(e.storedAt));
  if (e.endpoint) fields.push(e.endpoint);
  return fields.join(",");
}

function parseLine(line: string): EndpointCacheEntry | undefined {
  const parts = line.split(",");
  if (parts.length !== FIELDS && parts.length !== FIELDS_WITH_ENDPOINT) return undefined;
  const [channelName, region, role, channelArn, wss, https, time, endpoint] = parts.map((p) =>
    p.trim()
  );
  if (!channelName || !region || (role !== "MASTER" && role !== "VIEWER")) return undefined;
  if (!channelArn.startsWith("arn:")) return undefined;
  if (!validUrl(wss, ["wss:", "ws:"]) || !validUrl(https, ["https:", "http:"])) return undefined;
  if (!/^\d{1,16}$/.test(time)) return undefined;
  if (endpoint !== undefined && !validUrl(endpoint, ["https:", "http:"])) return undefined;
  const entry: EndpointCacheEntry = {
    channelName,
    region,
    role,
    channelArn,
    wss,
    https,
    storedAt: Number(time),
  };
  if (endpoint !== undefined) entry.endpoint = endpoint;
  return entry;
}
