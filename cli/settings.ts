/**
 * The master command's settings, each declared once: its flag, the environment variables it is
 * read from (the KVS C SDK samples' names, first set wins), its default, its help line and its
 * parser. {@link foldSettings} turns arguments and environment into values and the source of each;
 * `help.ts` prints the table. Flags win over the environment.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { KvsError, type LogLevel, parseLogLevel } from "../mod.ts";

/**
 * A setting is missing or invalid. `setting` names the flag and/or environment variable.
 *
 * @example
 * ```ts
 * import { ConfigError, foldSettings } from "./settings.ts";
 * try {
 *   foldSettings(["--fps", "fast"], {});
 * } catch (e) {
 *   if (e instanceof ConfigError) console.error(e.setting, e.message); // --fps …
 * }
 * ```
 */
export class ConfigError extends KvsError {
  /** Flag and/or environment variable at fault, e.g. `--fps`. */
  readonly setting: string;
  /** Name the flag or environment variable at fault. */
  constructor(setting: string, message: string, options?: ErrorOptions) {
    super("CONFIG", message, options);
    this.setting = setting;
  }
}

/**
 * Environment variables, e.g. `Deno.env.toObject()`.
 *
 * @example
 * ```ts
 * import type { EnvVars } from "./settings.ts";
 * const env: EnvVars = { AWS_DEFAULT_REGION: "eu-west-1" };
 * ```
 */
export type EnvVars = Record<string, string | undefined>;

/**
 * One setting of the table.
 *
 * @example
 * ```ts
 * import type { Setting } from "./settings.ts";
 * const fps: Setting<number> = { help: "Frames per second", default: "25", parse: Number };
 * ```
 */
export interface Setting<T = unknown> {
  /** Environment variables it is read from, first set wins. */
  readonly env?: readonly string[];
  /** One line for `--help`. */
  readonly help: string;
  /** Default, as text: shown by `--help` and parsed like a given value. */
  readonly default?: string;
  /** A switch without a value; from the environment, `1`, `true`, `yes` or `on` set it. */
  readonly boolean?: boolean;
  /** Also the first positional argument (the channel name). */
  readonly positional?: boolean;
  /**
   * Check and convert a given or default value. Throw an `Error` whose message starts with the
   * quoted value (`"abc" must be …`): the error reported names the setting before it.
   */
  readonly parse?: (text: string) => T;
}

const CHANNEL_NAME = /^[a-zA-Z0-9_.-]{1,256}$/;
const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

function check(ok: boolean, text: string, why: string): void {
  if (!ok) throw new Error(`"${text}" ${why}`);
}

function httpUrl(text: string): boolean {
  try {
    return ["https:", "http:"].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

/**
 * Every setting of the master command, by flag name (without dashes).
 *
 * @example
 * ```ts
 * import { SETTINGS } from "./settings.ts";
 * console.log(SETTINGS.fps.default, SETTINGS.region.env); // "25" ["AWS_DEFAULT_REGION", "AWS_REGION"]
 * ```
 */
export const SETTINGS = {
  channel: {
    help: "Signaling channel name (or the first argument)",
    default: "demo-channel",
    positional: true,
    parse: (t: string): string => {
      check(
        CHANNEL_NAME.test(t),
        t,
        "is invalid: 1-256 characters of a-z, A-Z, 0-9, '_', '.', '-'",
      );
      return t;
    },
  },
  region: {
    env: ["AWS_DEFAULT_REGION", "AWS_REGION"],
    help: "AWS region",
    default: "us-west-2",
    parse: (t: string): string => {
      check(AWS_REGION.test(t), t, "is not an AWS region");
      return t;
    },
  },
  "iot-credential-endpoint": {
    env: ["AWS_IOT_CORE_CREDENTIAL_ENDPOINT"],
    help: "IoT credential provider endpoint (<prefix>.credentials.iot.<region>.amazonaws.com)",
    parse: (t: string): string => {
      const url = /^https?:\/\//.test(t) ? t : `https://${t}`;
      check(URL.canParse(url), url, "is not a host name or URL");
      return url;
    },
  },
  "iot-cert": {
    env: ["AWS_IOT_CORE_CERT"],
    help: "Device certificate PEM",
    default: "certificate.pem",
  },
  "iot-private-key": {
    env: ["AWS_IOT_CORE_PRIVATE_KEY"],
    help: "Device private key PEM",
    default: "private.key",
  },
  "iot-role-alias": { env: ["AWS_IOT_CORE_ROLE_ALIAS"], help: "IoT role alias" },
  "iot-thing-name": {
    env: ["AWS_IOT_CORE_THING_NAME"],
    help: "IoT thing name (also the default channel name with IoT credentials)",
  },
  "ca-cert": { env: ["AWS_KVS_CACERT_PATH"], help: "CA bundle for IoT, HTTPS and WSS" },
  "access-key-id": { env: ["AWS_ACCESS_KEY_ID"], help: "AWS access key id" },
  "secret-access-key": {
    env: ["AWS_SECRET_ACCESS_KEY"],
    help: "AWS secret access key (prefer the environment)",
  },
  "session-token": {
    env: ["AWS_SESSION_TOKEN"],
    help: "Session token of temporary keys (prefer the environment)",
  },
  "endpoint-url": {
    env: ["AWS_ENDPOINT_URL_KINESIS_VIDEO", "CONTROL_PLANE_URI"],
    help: "Control-plane endpoint override",
    parse: (t: string): string => {
      check(httpUrl(t), t, "is not an http(s) URL");
      return t;
    },
  },
  "log-level": {
    env: ["AWS_KVS_LOG_LEVEL"],
    help: "trace|debug|info|warn|error|silent or 1-7",
    default: "info",
    parse: (t: string): LogLevel => parseLogLevel(t),
  },
  "debug-log-sdp": { env: ["DEBUG_LOG_SDP"], help: "Log SDP bodies at debug", boolean: true },
  "video-source": {
    env: ["AWS_KVS_VIDEO_SOURCE"],
    help: "Folder of frame-NNNN.h264 access units, dir1,dir2 (the folders of a ladder, highest " +
      "first), - (Annex-B H.264 on stdin) or an .h264 file",
    default: "samples/h264,samples/h264-360p",
  },
  frames: { help: "Same as --video-source (kept for older scripts)" },
  "video-command": {
    env: ["AWS_KVS_VIDEO_COMMAND"],
    help: "Encoder command (run with sh -c) writing Annex-B H.264 to stdout; restarted if it exits",
    parse: (t: string): string => {
      check(t.trim() !== "", t, "is empty");
      return t;
    },
  },
  "audio-source": {
    env: ["AWS_KVS_AUDIO_SOURCE"],
    help: "Ogg/Opus file or URL looped to viewers, - (Ogg/Opus on stdin), or none; " +
      "default: the sample tones with the sample video, none with other video",
  },
  "audio-command": {
    env: ["AWS_KVS_AUDIO_COMMAND"],
    help: "Encoder command (run with sh -c) writing Ogg/Opus to stdout; restarted if it exits",
    parse: (t: string): string => {
      check(t.trim() !== "", t, "is empty");
      return t;
    },
  },
  "no-viewer-audio": {
    help: "Do not take viewers' microphones (their audio sections are answered send-only)",
    boolean: true,
  },
  "data-channel": {
    env: ["AWS_KVS_DATA_CHANNEL"],
    help: "echo (send each viewer's data channel messages back to it) | off (refuse data channels)",
    default: "echo",
    parse: (t: string): "echo" | "off" => {
      check(t === "echo" || t === "off", t, "must be echo or off");
      return t as "echo" | "off";
    },
  },
  "record-viewer-audio": {
    env: ["AWS_KVS_RECORD_VIEWER_AUDIO"],
    help: "Folder where each viewer's audio is written as an Ogg/Opus file",
  },
  fps: {
    help: "Frames per second of a frames folder or .h264 file (live sources keep their own)",
    default: "25",
    parse: (t: string): number => {
      const fps = Number(t);
      check(Number.isFinite(fps) && fps > 0 && fps <= 240, t, "must be a number between 0 and 240");
      return fps;
    },
  },
  "ice-transport-policy": {
    env: ["AWS_KVS_ICE_TRANSPORT_POLICY"],
    help: "all | relay (TURN relay candidates only: TURN-only networks, private addresses)",
    default: "all",
    parse: (t: string): "all" | "relay" => {
      check(t === "all" || t === "relay", t, "must be all or relay");
      return t as "all" | "relay";
    },
  },
  "no-endpoint-cache": { help: "Do not read or write the endpoint cache file", boolean: true },
  "endpoint-cache-file": { help: "Endpoint cache file", default: ".SignalingCache_v0" },
  help: { help: "Show this help", boolean: true },
} as const satisfies Record<string, Setting>;

/**
 * A setting's flag name, e.g. `iot-cert`.
 *
 * @example
 * ```ts
 * import type { SettingName } from "./settings.ts";
 * const name: SettingName = "iot-cert";
 * ```
 */
export type SettingName = keyof typeof SETTINGS;

type ValueOf<S> = S extends { boolean: true } ? boolean
  : S extends { parse: (text: string) => infer T } ? T
  : string;

/**
 * The folded values: a setting with a default (or a switch) always has one.
 *
 * @example
 * ```ts
 * import type { SettingValues } from "./settings.ts";
 * declare const values: SettingValues;
 * const fps: number = values.fps;
 * const caCert: string | undefined = values["ca-cert"];
 * ```
 */
export type SettingValues = {
  -readonly [K in SettingName]: (typeof SETTINGS)[K] extends { boolean: true } | { default: string }
    ? ValueOf<(typeof SETTINGS)[K]>
    : ValueOf<(typeof SETTINGS)[K]> | undefined;
};

const TABLE: [SettingName, Setting][] = Object.entries(SETTINGS) as [SettingName, Setting][];

/**
 * How errors and help name a setting: its flag and environment variables.
 *
 * @example
 * ```ts
 * import { settingName } from "./settings.ts";
 * settingName("region"); // "--region / AWS_DEFAULT_REGION / AWS_REGION"
 * ```
 */
export function settingName(name: SettingName): string {
  const s: Setting = SETTINGS[name];
  return s.env ? `--${name} / ${s.env.join(" / ")}` : `--${name}`;
}

/**
 * Parse `text` as setting `name`; a bad value throws {@link ConfigError} naming the setting.
 *
 * @example
 * ```ts
 * import { parseSetting } from "./settings.ts";
 * parseSetting("fps", "30"); // 30
 * ```
 */
export function parseSetting<K extends SettingName>(
  name: K,
  text: string,
): NonNullable<SettingValues[K]> {
  const s: Setting = SETTINGS[name];
  if (!s.parse) return text as NonNullable<SettingValues[K]>;
  try {
    return s.parse(text) as NonNullable<SettingValues[K]>;
  } catch (cause) {
    const n = settingName(name);
    throw new ConfigError(n, `${n} ${(cause as Error).message}`, { cause });
  }
}

/**
 * What {@link foldSettings} found.
 *
 * @example
 * ```ts
 * import { foldSettings, type FoldedSettings } from "./settings.ts";
 * const folded: FoldedSettings = foldSettings([], { AWS_REGION: "eu-west-1" });
 * folded.given.has("region"); // true
 * ```
 */
export interface FoldedSettings {
  /** Every setting's value: given, from the environment, or its default. */
  values: SettingValues;
  /**
   * Where each value setting came from: the flag (`--iot-cert`), the environment variable
   * (`AWS_IOT_CORE_CERT`), or `the default of --iot-cert / AWS_IOT_CORE_CERT`.
   */
  sources: Record<string, string>;
  /** The settings given as a flag, an argument or an environment variable. */
  given: ReadonlySet<SettingName>;
}

/** The first of `s.env` set (not blank) in `env`. */
function envName(s: Setting, env: EnvVars): string | undefined {
  return (s.env ?? []).find((n) => env[n] !== undefined && env[n]!.trim() !== "");
}

/**
 * One setting from the environment alone, else its default (commands with fewer flags, such as
 * the demo, use it for the log level).
 *
 * @example
 * ```ts
 * import { envSetting } from "./settings.ts";
 * envSetting("log-level", { AWS_KVS_LOG_LEVEL: "2" }); // "debug"
 * ```
 */
export function envSetting<K extends SettingName>(name: K, env: EnvVars): SettingValues[K] {
  const s: Setting = SETTINGS[name];
  const from = envName(s, env);
  if (s.boolean) return truthy(from && env[from]) as SettingValues[K];
  const text = from ? env[from]!.trim() : s.default;
  return (text === undefined ? undefined : parseSetting(name, text)) as SettingValues[K];
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
}

/**
 * Fold the table over `args` (flags, the optional channel name) and `env`: each setting takes its
 * flag, else its first environment variable set, else its default, and goes through its parser.
 * Throws {@link ConfigError} for an unknown flag, a stray argument or an invalid value.
 *
 * @example
 * ```ts
 * import { foldSettings } from "./settings.ts";
 * const { values, sources } = foldSettings(["cam-1", "--fps", "30"], { AWS_REGION: "eu-west-1" });
 * console.log(values.channel, values.fps, values.region, sources.region); // cam-1 30 eu-west-1 AWS_REGION
 * ```
 */
export function foldSettings(args: string[], env: EnvVars): FoldedSettings {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, s] of TABLE) options[name] = { type: s.boolean ? "boolean" : "string" };
  options.help.short = "h";
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (cause) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    throw new ConfigError("arguments", `${msg.split("\n")[0]} (see --help)`, { cause });
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>;
  const [positional, ...extra] = parsed.positionals;
  if (extra.length > 0) {
    throw new ConfigError(
      "arguments",
      `unexpected arguments ${extra.join(" ")}: only the channel name is positional`,
    );
  }

  const values: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  const given = new Set<SettingName>();
  for (const [name, s] of TABLE) {
    const fromEnv = envName(s, env);
    if (s.boolean) {
      values[name] = flags[name] === true || truthy(fromEnv && env[fromEnv]);
      if (values[name]) given.add(name);
      continue;
    }
    let flag = flags[name] as string | undefined;
    if (s.positional && positional !== undefined) {
      if (flag !== undefined && flag !== positional) {
        throw new ConfigError(
          `--${name}`,
          `${name} given twice: "${positional}" and --${name} "${flag}"`,
        );
      }
      flag = positional;
    }
    const text = flag ? flag : fromEnv ? env[fromEnv]!.trim() : s.default;
    sources[name] = flag ? `--${name}` : fromEnv ?? `the default of ${settingName(name)}`;
    if (flag || fromEnv) given.add(name);
    values[name] = text === undefined ? undefined : parseSetting(name, text);
  }
  return { values: values as SettingValues, sources, given };
}
