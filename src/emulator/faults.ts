/**
 * Fault injection and the request log of the emulated KVS service: the failures tests ask for
 * ({@link FaultQueue}) and the requests the service answered ({@link recordRequest}), without
 * secrets.
 *
 * @module
 */
import type { AuthFailure } from "./sigv4_verify.ts";

/**
 * One request the emulator answered (no secrets).
 *
 * @example
 * ```ts
 * import type { RequestLogEntry } from "./faults.ts";
 * declare const log: RequestLogEntry[];
 * const refused = log.filter((e) => e.status >= 400).map((e) => `${e.path} ${e.errorType}`);
 * ```
 */
export interface RequestLogEntry {
  /** When it was answered (ms since the epoch, real clock). */
  time: number;
  /** HTTP method (`GET` for WebSocket upgrades). */
  method: string;
  /** Path, e.g. `/describeSignalingChannel` or `/ (websocket)`. */
  path: string;
  /** HTTP status sent (101 for an accepted WebSocket). */
  status: number;
  /** Access key of the signature, when there was one. */
  accessKeyId?: string;
  /** AWS error type of a refusal, e.g. `ExpiredTokenException`. */
  errorType?: string;
}

/**
 * Append one answered request to `log`, keeping only the last 2000.
 *
 * @example
 * ```ts
 * import { recordRequest, type RequestLogEntry } from "./faults.ts";
 * const log: RequestLogEntry[] = [];
 * recordRequest(log, "POST", "/describeSignalingChannel", 404, "AKIAEXAMPLE", "ResourceNotFoundException");
 * ```
 */
export function recordRequest(
  log: RequestLogEntry[],
  method: string,
  path: string,
  status: number,
  keyId?: string,
  errorType?: string,
): void {
  log.push({ time: Date.now(), method, path, status, accessKeyId: keyId, errorType });
  if (log.length > 2000) log.splice(0, log.length - 2000);
}

/**
 * A fault the next control-plane requests suffer: `5xx` (500 `InternalFailure`), `throttle`
 * (400 `ClientLimitExceededException`) or `403` (`AccessDeniedException`).
 *
 * @example
 * ```ts
 * import type { InjectedFault } from "./faults.ts";
 * const kind: InjectedFault = "throttle";
 * ```
 */
export type InjectedFault = "5xx" | "throttle" | "403";

/**
 * Faults waiting for the next requests, each as the AWS refusal it becomes.
 *
 * @example
 * ```ts
 * import { FaultQueue } from "./faults.ts";
 * const faults = new FaultQueue();
 * faults.add(1, "throttle", ["/describeSignalingChannel"]);
 * faults.take("/describeSignalingChannel"); // 400 ClientLimitExceededException
 * faults.take("/describeSignalingChannel"); // undefined
 * ```
 */
export class FaultQueue {
  #faults: { kind: InjectedFault; remaining: number; paths?: string[] }[] = [];

  /** Make the next `count` requests (optionally only to `paths`) fail with `kind`. */
  add(count: number, kind: InjectedFault, paths?: string[]): void {
    this.#faults.push({ kind, remaining: count, paths });
  }

  /**
   * The refusal a request to `path` gets, if a fault is waiting for it; with `onlyWhenListed`,
   * only faults whose `paths` list `path` apply.
   */
  take(path: string, onlyWhenListed = false): AuthFailure | undefined {
    const f = this.#faults.find((x) =>
      x.remaining > 0 && (x.paths ? x.paths.includes(path) : !onlyWhenListed)
    );
    if (!f) return undefined;
    f.remaining--;
    this.#faults = this.#faults.filter((x) => x.remaining > 0);
    switch (f.kind) {
      case "5xx":
        return {
          status: 500,
          type: "InternalFailure",
          message: "The request processing has failed because of an unknown error.",
        };
      case "throttle":
        return {
          status: 400,
          type: "ClientLimitExceededException",
          message: "Your request has been throttled because you have exceeded the limit of " +
            "allowed client calls. Try making the call later.",
        };
      case "403":
        return {
          status: 403,
          type: "AccessDeniedException",
          message: "You do not have required permissions to perform this operation.",
        };
    }
  }
}
