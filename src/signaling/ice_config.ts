/**
 * The ICE server configuration of a master: TURN servers from Get ICE Server Configuration,
 * kept with their Ttl, plus the region's STUN server. A refresh is due at Ttl − 30 s (as the C
 * SDK does), or at half the Ttl when that is under a minute.
 *
 * @module
 */
import type { IceServer, SignalingControlPlane } from "../aws/types.ts";
import { type Logger, silentLogger } from "../log.ts";

/**
 * The region's KVS STUN server, e.g. `stun:stun.kinesisvideo.us-west-2.amazonaws.com:443`.
 *
 * @example
 * ```ts
 * import { defaultStunUrl } from "./ice_config.ts";
 * defaultStunUrl("cn-north-1"); // "stun:stun.kinesisvideo.cn-north-1.amazonaws.com.cn:443"
 * ```
 */
export function defaultStunUrl(region: string): string {
  const suffix = region.startsWith("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
  return `stun:stun.kinesisvideo.${region}.${suffix}:443`;
}

/**
 * Options of {@link IceConfig}.
 *
 * @example
 * ```ts
 * import type { IceConfigOptions } from "./ice_config.ts";
 * import type { SignalingControlPlane } from "../aws/types.ts";
 * declare const controlPlane: SignalingControlPlane;
 * const options: IceConfigOptions = { controlPlane, region: "us-west-2", stunUrl: false };
 * ```
 */
export interface IceConfigOptions {
  /** Control plane that answers Get ICE Server Configuration. */
  controlPlane: SignalingControlPlane;
  /** AWS region, for the default STUN server. */
  region: string;
  /** ClientId of the request. Default `ProducerMaster`. */
  clientId?: string;
  /** STUN URL added to the servers, or `false`. Default the region's KVS STUN server. */
  stunUrl?: string | false;
  /** Logger. Default silent. */
  logger?: Logger;
  /** Monotonic clock in ms. Default `performance.now`. */
  now?: () => number;
}

/**
 * The ICE servers of the last Get ICE Server Configuration and when to fetch them again.
 *
 * @example
 * ```ts
 * import { IceConfig } from "./ice_config.ts";
 * import type { SignalingControlPlane } from "../aws/types.ts";
 * declare const controlPlane: SignalingControlPlane;
 * const ice = new IceConfig({ controlPlane, region: "us-west-2" });
 * await ice.fetch("https://r-1.example", "arn:aws:kinesisvideo:us-west-2:1:channel/demo/1");
 * console.log(ice.iceServers(), ice.refreshInMs());
 * ```
 */
export class IceConfig {
  readonly #o: IceConfigOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  #turn: IceServer[] = [];
  #fetchedAt = -Infinity;
  #ttlMs = 0;

  /** Create an empty configuration (STUN only). */
  constructor(options: IceConfigOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Fetch the TURN servers of a channel and keep them. Errors are the control plane's. */
  async fetch(httpsEndpoint: string, channelArn: string): Promise<void> {
    const servers = await this.#o.controlPlane.getIceServerConfig(
      httpsEndpoint,
      channelArn,
      this.#o.clientId ?? "ProducerMaster",
    );
    this.#turn = servers;
    this.#fetchedAt = this.#now();
    const ttls = servers.map((s) => s.ttlSeconds).filter((t): t is number => t !== undefined);
    this.#ttlMs = (ttls.length ? Math.min(...ttls) : 300) * 1000;
    this.#log.debug(`ICE servers: ${servers.length} TURN, Ttl ${this.#ttlMs / 1000} s`);
  }

  /** How long the servers just fetched stay fresh (ms): their Ttl, 0 without TURN servers. */
  get freshForMs(): number {
    return this.#turn.length > 0 ? this.#ttlMs : 0;
  }

  /** Whether there are TURN servers within their Ttl. */
  fresh(): boolean {
    return this.#turn.length > 0 && this.#now() - this.#fetchedAt < this.#ttlMs;
  }

  /** Time until a refresh is due (ms): Ttl − 30 s, or half the Ttl when that is under a minute. */
  refreshInMs(): number {
    const ttl = this.#ttlMs;
    const lead = ttl >= 60_000 ? ttl - 30_000 : ttl / 2;
    return Math.max(0, this.#fetchedAt + lead - this.#now());
  }

  /** Call `due` once when a refresh is due. Returns the function that cancels it. */
  watch(due: () => void): () => void {
    const timer = setTimeout(due, this.refreshInMs());
    return () => clearTimeout(timer);
  }

  /** The TURN servers (copies) plus the STUN server. */
  iceServers(): IceServer[] {
    const out = this.#turn.map((s) => ({ ...s, urls: [...s.urls] }));
    const stun = this.#o.stunUrl === undefined ? defaultStunUrl(this.#o.region) : this.#o.stunUrl;
    if (stun) out.push({ urls: [stun] });
    return out;
  }
}
