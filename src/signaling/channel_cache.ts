/**
 * The endpoint cache entry of one master's channel: the {@link EndpointCache} key (channel,
 * region, role MASTER, control-plane endpoint override) fixed once, and the reads and writes
 * run one after the other, so an invalidation never overtakes the store before it.
 *
 * @module
 */
import { controlPlaneEndpoint } from "../aws/kvs_client.ts";
import type { SignalingEndpoints } from "../aws/types.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { EndpointCache, EndpointCacheEntry } from "./endpoint_cache.ts";

/**
 * Options of {@link ChannelEndpointCache}.
 *
 * @example
 * ```ts
 * import type { ChannelEndpointCacheOptions } from "./channel_cache.ts";
 * const options: ChannelEndpointCacheOptions = {
 *   channelName: "demo-channel",
 *   region: "us-west-2",
 *   endpoint: "https://127.0.0.1:4443",
 * };
 * ```
 */
export interface ChannelEndpointCacheOptions {
  /** Channel name. */
  channelName: string;
  /** AWS region. */
  region: string;
  /**
   * The control-plane endpoint in use. Part of the key unless it is the region's standard
   * endpoint, so entries fetched through another endpoint (an emulator, a stage) are never used.
   */
  endpoint?: string;
  /** Logger for failed operations. Default silent. */
  logger?: Logger;
}

/**
 * One channel's entry in an endpoint cache (or nothing, when the cache is disabled).
 *
 * @example
 * ```ts
 * import { ChannelEndpointCache } from "./channel_cache.ts";
 * import { EndpointCache } from "./endpoint_cache.ts";
 * const cache = new EndpointCache({ path: await Deno.makeTempFile() });
 * const entry = new ChannelEndpointCache(cache, { channelName: "demo-channel", region: "us-west-2" });
 * void entry.store("arn:aws:kinesisvideo:us-west-2:1:channel/demo-channel/1", {
 *   wss: "wss://m-1.example",
 *   https: "https://r-1.example",
 * });
 * console.log((await entry.lookup())?.wss); // "wss://m-1.example"
 * ```
 */
export class ChannelEndpointCache {
  /** The control-plane endpoint override in the key, when there is one. */
  readonly override: string | undefined;
  readonly #cache: EndpointCache | undefined;
  readonly #o: ChannelEndpointCacheOptions;
  readonly #log: Logger;
  #last: Promise<unknown> = Promise.resolve();

  /** Bind `cache` (or `undefined`: no cache) to one channel's key. */
  constructor(cache: EndpointCache | undefined, options: ChannelEndpointCacheOptions) {
    this.#cache = cache;
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    const override = options.endpoint?.trim().replace(/\/+$/, "");
    this.override = override && override !== controlPlaneEndpoint(options.region)
      ? override
      : undefined;
  }

  /** The fresh entry, or `undefined` (a failed read is logged and counts as a miss). */
  lookup(): Promise<EndpointCacheEntry | undefined> {
    const { channelName, region } = this.#o;
    return this.#then(() => this.#cache?.lookup(channelName, region, "MASTER", this.override));
  }

  /** Store the channel's ARN and endpoints (with the time now). */
  store(channelArn: string, endpoints: SignalingEndpoints): Promise<void> {
    return this.#then(() =>
      this.#cache?.store({
        channelName: this.#o.channelName,
        region: this.#o.region,
        role: "MASTER",
        channelArn,
        wss: endpoints.wss,
        https: endpoints.https,
        storedAt: Date.now(),
        ...(this.override ? { endpoint: this.override } : {}),
      })
    );
  }

  /** Drop the entry (its endpoint failed, its ARN is stale, the channel was deleted). */
  invalidate(): Promise<void> {
    const { channelName, region } = this.#o;
    return this.#then(() => this.#cache?.invalidate(channelName, region, "MASTER", this.override));
  }

  /** Resolves once the operations started so far are done. */
  settled(): Promise<void> {
    return this.#last.then(() => {});
  }

  #then<T>(fn: () => Promise<T> | undefined): Promise<T | undefined> {
    const run = this.#last.then(fn).catch((e) => {
      this.#log.warn("Endpoint cache operation failed", { error: e });
      return undefined;
    });
    this.#last = run;
    return run;
  }
}
