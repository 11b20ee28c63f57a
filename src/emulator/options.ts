/**
 * The options of `startEmulator` (emulator.ts) and their validation.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { EmulatorError } from "./errors.ts";

/**
 * Options of {@link startEmulator}. Every field has a default that behaves like AWS.
 *
 * @example
 * ```ts
 * import type { EmulatorOptions } from "./mod.ts";
 * const options: EmulatorOptions = { turn: false, credentialLifetimeSeconds: 60 };
 * ```
 */
export interface EmulatorOptions {
  /** Where certificates are kept between runs (default `.kvs-emulator` in the cwd). */
  stateDir?: string;
  /** Region in ARNs and the credential scope (default `us-west-2`). */
  region?: string;
  /** The device's thing name (default `kvs-emulator-thing`). */
  thingName?: string;
  /** The role alias (default `KvsCameraIoTRoleAlias`). */
  roleAlias?: string;
  /** Lifetime of IoT credentials, seconds (default 3600). */
  credentialLifetimeSeconds?: number;
  /** Start coturn: `"auto"` (default) when installed, `true` required, `false` never. */
  turn?: boolean | "auto";
  /** Also list `turn:…?transport=tcp` (AWS lists UDP and TLS only). Default false. */
  plainTcpTurn?: boolean;
  /** `Ttl` of ICE server credentials, seconds (default 300). */
  iceServerTtlSeconds?: number;
  /** Keep coturn's per-request log, readable from `emulator.turn.log()`. Default false. */
  turnLog?: boolean;
  /** Longest signaling connection, ms (default 1 h). */
  maxConnectionMs?: number;
  /** Idle signaling connections close after this, ms (default 10 min). */
  idleTimeoutMs?: number;
  /** A new channel stays CREATING this long, ms (default 100). */
  channelCreatingMs?: number;
  /** Long-term viewer keys to accept (default: a fresh random `AKIA…` pair each start). */
  viewerCredentials?: { accessKeyId: string; secretAccessKey: string };
  /** Where start-up, TURN and refused-message lines go (default: silent). */
  logger?: Logger;
}

/**
 * Refuse options `startEmulator` cannot honour, with an {@link EmulatorError}
 * (`EMULATOR_OPTIONS`) naming the option, its value and the rule.
 *
 * @example
 * ```ts
 * import { checkOptions } from "./options.ts";
 * checkOptions({ idleTimeoutMs: 60_000 }, "us-west-2", "kvs-emulator-thing", "KvsCameraIoTRoleAlias");
 * ```
 */
export function checkOptions(
  options: EmulatorOptions,
  region: string,
  thingName: string,
  roleAlias: string,
): void {
  const bad = (what: string, value: unknown, rule: string) => {
    throw new EmulatorError(
      "EMULATOR_OPTIONS",
      `startEmulator: ${what} ${JSON.stringify(value)} is invalid: ${rule}`,
    );
  };
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) bad("region", region, "like us-west-2");
  if (!/^[a-zA-Z0-9:_-]{1,128}$/.test(thingName)) {
    bad("thingName", thingName, "1-128 of a-z A-Z 0-9 : _ -");
  }
  if (!/^[\w=,@-]{1,128}$/.test(roleAlias)) bad("roleAlias", roleAlias, "1-128 of \\w = , @ -");
  for (
    const key of [
      "credentialLifetimeSeconds",
      "iceServerTtlSeconds",
      "maxConnectionMs",
      "idleTimeoutMs",
    ] as const
  ) {
    const v = options[key];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) bad(key, v, "a positive number");
  }
  const creating = options.channelCreatingMs;
  if (creating !== undefined && !(Number.isFinite(creating) && creating >= 0)) {
    bad("channelCreatingMs", creating, "zero or more");
  }
  if (options.turn !== undefined && ![true, false, "auto"].includes(options.turn)) {
    bad("turn", options.turn, 'true, false or "auto"');
  }
}
