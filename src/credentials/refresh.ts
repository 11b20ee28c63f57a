/**
 * A cache in front of a credential source that refreshes ahead of expiry.
 *
 * @module
 */
import type { AwsCredentials, CredentialProvider, GetCredentialsOptions } from "./types.ts";
import { CredentialsError } from "./errors.ts";
import { type Logger, silentLogger } from "../log.ts";

/** Options of {@link RefreshingCredentialProvider}. */
export interface RefreshOptions {
  /**
   * Refresh this long before expiry at most, ms (default 5 min). Short lifetimes refresh at 80 %
   * of their life instead, so one-minute credentials are not refreshed on every call.
   */
  refreshAheadMs?: number;
  /**
   * Extra random lead, up to this share of the lead time (default 0.2), so a fleet of devices
   * does not refresh in the same second.
   */
  jitter?: number;
  /** Never hand out credentials closer than this to expiry, ms (default 10 s). */
  minValidityMs?: number;
  /** Clock (default `Date.now`). */
  now?: () => number;
  /** Random source in [0, 1) (default `Math.random`). */
  random?: () => number;
  /** Logger (default silent). */
  logger?: Logger;
}

/**
 * Caches credentials from `fetch` until shortly before they expire. Callers arriving while a
 * fetch is in flight share it. When a refresh fails but the cached credentials are still valid,
 * they keep being served (and the next call tries again); the error surfaces only when nothing
 * valid is left. `forceRefresh` (after AWS answers 401/403) always fetches.
 *
 * @example
 * ```ts
 * import { RefreshingCredentialProvider } from "./refresh.ts";
 * const provider = new RefreshingCredentialProvider(async () => ({
 *   accessKeyId: "ASIAEXAMPLE",
 *   secretAccessKey: "secret",
 *   sessionToken: "token",
 *   expiration: new Date(Date.now() + 3600_000),
 * }));
 * const a = await provider.getCredentials();
 * const b = await provider.getCredentials(); // cached: the same object's values
 * ```
 */
export class RefreshingCredentialProvider implements CredentialProvider {
  readonly #fetch: () => Promise<AwsCredentials>;
  readonly #aheadMs: number;
  readonly #jitter: number;
  readonly #minValidityMs: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #log: Logger;
  #cached: AwsCredentials | undefined;
  #refreshAt = 0;
  #inflight: Promise<AwsCredentials> | undefined;
  #fetches = 0;

  /** Wrap `fetch`, which returns fresh credentials (with `expiration` for temporary ones). */
  constructor(fetch: () => Promise<AwsCredentials>, options: RefreshOptions = {}) {
    this.#fetch = fetch;
    this.#aheadMs = options.refreshAheadMs ?? 5 * 60_000;
    this.#jitter = options.jitter ?? 0.2;
    this.#minValidityMs = options.minValidityMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#log = options.logger ?? silentLogger;
  }

  /** Number of fetches made so far. */
  get fetches(): number {
    return this.#fetches;
  }

  /** When the cached credentials will be refreshed (ms since the epoch), if any are cached. */
  get refreshAt(): number | undefined {
    return this.#cached ? this.#refreshAt : undefined;
  }

  /** Valid credentials: cached, or fetched now. */
  async getCredentials(options: GetCredentialsOptions = {}): Promise<AwsCredentials> {
    const now = this.#now();
    const cached = this.#cached;
    if (!options.forceRefresh && cached && now < this.#refreshAt) return { ...cached };
    try {
      return { ...(await this.#refresh()) };
    } catch (error) {
      if (!options.forceRefresh && cached && this.#usable(cached, this.#now())) {
        this.#log.warn("Credential refresh failed; the current credentials are still valid", {
          error,
          expiration: cached.expiration?.toISOString(),
        });
        return { ...cached };
      }
      throw error;
    }
  }

  /** Forget the cached credentials. */
  clear(): void {
    this.#cached = undefined;
  }

  #usable(c: AwsCredentials, now: number): boolean {
    return !c.expiration || c.expiration.getTime() - now > this.#minValidityMs;
  }

  #refresh(): Promise<AwsCredentials> {
    if (this.#inflight) return this.#inflight;
    this.#fetches++;
    const p = (async () => {
      try {
        const fresh = await this.#fetch();
        const now = this.#now();
        if (fresh.expiration && !this.#usable(fresh, now)) {
          throw new CredentialsError(
            "CREDENTIALS_EXPIRED",
            `the credential source returned credentials expiring at ` +
              `${fresh.expiration.toISOString()}, already expired or about to (local clock ` +
              `${new Date(now).toISOString()})`,
          );
        }
        this.#cached = fresh;
        this.#refreshAt = this.#schedule(fresh, now);
        this.#log.debug("Credentials refreshed", {
          accessKeyId: fresh.accessKeyId,
          expiration: fresh.expiration?.toISOString(),
          refreshAt: new Date(this.#refreshAt).toISOString(),
        });
        return fresh;
      } finally {
        this.#inflight = undefined;
      }
    })();
    this.#inflight = p;
    return p;
  }

  #schedule(c: AwsCredentials, now: number): number {
    if (!c.expiration) return Infinity;
    const exp = c.expiration.getTime();
    const life = exp - now;
    const lead = Math.min(this.#aheadMs, life * 0.2);
    return exp - lead - lead * this.#jitter * this.#random();
  }
}
