/**
 * The master's configuration from command-line flags and environment variables, with the KVS C
 * SDK samples' environment names. Flags win over the environment.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { KvsError } from "./errors.ts";
import { type LogLevel, parseLogLevel } from "./log.ts";
import type { IotCredentialsConfig, StaticCredentialsConfig } from "./services.ts";

/**
 * A setting is missing or invalid. `setting` names the flag and/or environment variable.
 *
 * @example
 * ```ts
 * import { ConfigError, parseConfig } from "./config.ts";
 * try {
 *   parseConfig([], {});
 * } catch (e) {
 *   if (e instanceof ConfigError) console.error(e.message);
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
 * The master's whole configuration.
 *
 * @example
 * ```ts
 * import { type MasterConfig, parseConfig } from "./config.ts";
 * const config: MasterConfig = parseConfig(["demo-channel", "--fps", "30"], {
 *   AWS_ACCESS_KEY_ID: "AKID",
 *   AWS_SECRET_ACCESS_KEY: "secret",
 * });
 * ```
 */
export interface MasterConfig {
  /** Signaling channel name. */
  channelName: string;
  /** AWS region (`AWS_DEFAULT_REGION` / `AWS_REGION`). */
  region: string;
  /** IoT credentials or keys. */
  credentials: IotCredentialsConfig | StaticCredentialsConfig;
  /** CA bundle for IoT, HTTPS and WSS connections (`AWS_KVS_CACERT_PATH`). */
  caCertPath?: string;
  /** Control-plane endpoint override (`AWS_ENDPOINT_URL_KINESIS_VIDEO` / `CONTROL_PLANE_URI`). */
  endpointUrl?: string;
  /** Log level (`AWS_KVS_LOG_LEVEL`). */
  logLevel: LogLevel;
  /** Log SDP bodies at debug (`DEBUG_LOG_SDP`). */
  logSdp: boolean;
  /** Folder of `frame-NNNN.h264` access units. */
  framesDir: string;
  /** Frames per second of the file source. */
  fps: number;
  /** Use the endpoint cache file. */
  endpointCache: boolean;
  /** Path of the endpoint cache file (default `.SignalingCache_v0`). */
  endpointCacheFile: string;
  /** `relay`: offer and use TURN relay candidates only (`AWS_KVS_ICE_TRANSPORT_POLICY`). */
  iceTransportPolicy: "all" | "relay";
  /**
   * Where each setting's value came from, by flag name without dashes: the flag (`--iot-cert`),
   * the environment variable (`AWS_IOT_CORE_CERT`), or `the default of --iot-cert /
   * AWS_IOT_CORE_CERT`. Error messages name it, so a path given as a flag is not blamed on a
   * variable. Filled by {@link parseConfig}.
   */
  sources?: Readonly<Record<string, string>>;
}

interface Setting {
  flag: string;
  env?: string[];
  help: string;
  boolean?: boolean;
  secret?: boolean;
  default?: string;
}

const SETTINGS: Setting[] = [
  {
    flag: "channel",
    help: "Signaling channel name (or the first argument)",
    default: "demo-channel",
  },
  {
    flag: "region",
    env: ["AWS_DEFAULT_REGION", "AWS_REGION"],
    help: "AWS region",
    default: "us-west-2",
  },
  {
    flag: "iot-credential-endpoint",
    env: ["AWS_IOT_CORE_CREDENTIAL_ENDPOINT"],
    help: "IoT credential provider endpoint (<prefix>.credentials.iot.<region>.amazonaws.com)",
  },
  {
    flag: "iot-cert",
    env: ["AWS_IOT_CORE_CERT"],
    help: "Device certificate PEM",
    default: "certificate.pem",
  },
  {
    flag: "iot-private-key",
    env: ["AWS_IOT_CORE_PRIVATE_KEY"],
    help: "Device private key PEM",
    default: "private.key",
  },
  { flag: "iot-role-alias", env: ["AWS_IOT_CORE_ROLE_ALIAS"], help: "IoT role alias" },
  {
    flag: "iot-thing-name",
    env: ["AWS_IOT_CORE_THING_NAME"],
    help: "IoT thing name (also the default channel name with IoT credentials)",
  },
  { flag: "ca-cert", env: ["AWS_KVS_CACERT_PATH"], help: "CA bundle for IoT, HTTPS and WSS" },
  { flag: "access-key-id", env: ["AWS_ACCESS_KEY_ID"], help: "AWS access key id" },
  {
    flag: "secret-access-key",
    env: ["AWS_SECRET_ACCESS_KEY"],
    help: "AWS secret access key (prefer the environment)",
    secret: true,
  },
  {
    flag: "session-token",
    env: ["AWS_SESSION_TOKEN"],
    help: "Session token of temporary keys (prefer the environment)",
    secret: true,
  },
  {
    flag: "endpoint-url",
    env: ["AWS_ENDPOINT_URL_KINESIS_VIDEO", "CONTROL_PLANE_URI"],
    help: "Control-plane endpoint override",
  },
  {
    flag: "log-level",
    env: ["AWS_KVS_LOG_LEVEL"],
    help: "trace|debug|info|warn|error|silent or 1-7",
    default: "info",
  },
  { flag: "debug-log-sdp", env: ["DEBUG_LOG_SDP"], help: "Log SDP bodies at debug", boolean: true },
  { flag: "frames", help: "Folder of frame-NNNN.h264 access units", default: "samples/h264" },
  { flag: "fps", help: "Frames per second", default: "25" },
  {
    flag: "ice-transport-policy",
    env: ["AWS_KVS_ICE_TRANSPORT_POLICY"],
    help: "all | relay (TURN relay candidates only: TURN-only networks, private addresses)",
    default: "all",
  },
  {
    flag: "no-endpoint-cache",
    help: "Do not read or write the endpoint cache file",
    boolean: true,
  },
  {
    flag: "endpoint-cache-file",
    help: "Endpoint cache file",
    default: ".SignalingCache_v0",
  },
  { flag: "help", help: "Show this help", boolean: true },
];

/**
 * The `--help` text: usage, every flag with its environment variable and default.
 *
 * @example
 * ```ts
 * import { helpText } from "./config.ts";
 * console.log(helpText("master"));
 * ```
 */
export function helpText(program = "deno task master"): string {
  const rows = SETTINGS.map((s) => {
    const left = `  --${s.flag}${s.boolean ? "" : " <value>"}`;
    const env = s.env ? `  [env ${s.env.join(", ")}]` : "";
    const def = s.default ? `  (default ${s.default})` : "";
    return `${left.padEnd(36)} ${s.help}${env}${def}`;
  });
  return [
    `Usage: ${program} [channel-name] [options]`,
    "",
    "Streams H.264 to browsers through Amazon Kinesis Video Streams WebRTC as the channel's master.",
    "With no arguments it works from the environment alone, like the KVS C SDK sample.",
    "",
    "Options:",
    ...rows,
    "",
    "Credentials (one of):",
    "  AWS IoT: AWS_IOT_CORE_CREDENTIAL_ENDPOINT, AWS_IOT_CORE_ROLE_ALIAS, AWS_IOT_CORE_THING_NAME,",
    "           AWS_IOT_CORE_CERT, AWS_IOT_CORE_PRIVATE_KEY (or the --iot-* flags)",
    "  Keys:    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional)",
    "",
    "Example (real AWS, IoT credentials):",
    "  export AWS_DEFAULT_REGION=us-west-2 AWS_KVS_CACERT_PATH=cacert.pem",
    "  export AWS_IOT_CORE_CREDENTIAL_ENDPOINT=<prefix>.credentials.iot.us-west-2.amazonaws.com",
    "  export AWS_IOT_CORE_ROLE_ALIAS=<role-alias> AWS_IOT_CORE_THING_NAME=<thing-name>",
    "  export AWS_IOT_CORE_CERT=certificate.pem AWS_IOT_CORE_PRIVATE_KEY=private.key",
    `  ${program} demo-channel`,
  ].join("\n");
}

/**
 * Whether the arguments ask for help (`--help` / `-h`), without validating anything else.
 *
 * @example
 * ```ts
 * import { wantsHelp } from "./config.ts";
 * wantsHelp(["--help"]); // true
 * ```
 */
export function wantsHelp(args: string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

/** Environment variables, e.g. `Deno.env.toObject()`. */
export type EnvVars = Record<string, string | undefined>;

function truthy(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
}

/**
 * Build the configuration from `args` (flags, optional channel name) and `env`. Throws
 * {@link ConfigError} naming the flag/variable at fault; with no credentials at all, the error
 * lists both ways to provide them.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const config = parseConfig(["my-channel"], {
 *   AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
 *   AWS_SECRET_ACCESS_KEY: "secret",
 *   AWS_DEFAULT_REGION: "eu-west-1",
 * });
 * console.log(config.channelName, config.region, config.credentials.kind); // my-channel eu-west-1 keys
 * ```
 */
export function parseConfig(args: string[], env: EnvVars): MasterConfig {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const s of SETTINGS) {
    options[s.flag] = { type: s.boolean ? "boolean" : "string" };
  }
  options.help.short = "h";
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (cause) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    throw new ConfigError("arguments", `${msg.split("\n")[0]} (see --help)`, { cause });
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (parsed.positionals.length > 1) {
    throw new ConfigError(
      "arguments",
      `unexpected arguments ${
        parsed.positionals.slice(1).join(" ")
      }: only the channel name is positional`,
    );
  }

  const get = (flag: string): string | undefined => {
    const s = SETTINGS.find((x) => x.flag === flag)!;
    const v = values[flag];
    if (typeof v === "string" && v !== "") return v;
    for (const name of s.env ?? []) {
      const e = env[name];
      if (e !== undefined && e.trim() !== "") return e.trim();
    }
    return undefined;
  };
  const name = (flag: string): string => {
    const s = SETTINGS.find((x) => x.flag === flag)!;
    return s.env ? `--${flag} / ${s.env.join(" / ")}` : `--${flag}`;
  };
  /** The flag or environment variable `get(flag)` took its value from. */
  const source = (flag: string): string => {
    const s = SETTINGS.find((x) => x.flag === flag)!;
    const v = values[flag];
    if (typeof v === "string" && v !== "") return `--${flag}`;
    for (const n of s.env ?? []) {
      if (env[n] !== undefined && env[n]!.trim() !== "") return n;
    }
    return `the default of ${name(flag)}`;
  };
  const sources: Record<string, string> = {};
  for (const s of SETTINGS) if (!s.boolean) sources[s.flag] = source(s.flag);

  // Credentials: IoT if any IoT setting is given, else keys, else a clear error.
  let credentials: MasterConfig["credentials"];
  const iotFlags = ["iot-credential-endpoint", "iot-role-alias", "iot-thing-name"];
  const anyIot = iotFlags.some((f) => get(f) !== undefined) ||
    ["iot-cert", "iot-private-key"].some((f) =>
      values[f] !== undefined || env[SETTINGS.find((s) => s.flag === f)!.env![0]] !== undefined
    );
  if (anyIot) {
    const missing = iotFlags.filter((f) => get(f) === undefined);
    if (missing.length > 0) {
      throw new ConfigError(
        missing.map(name).join(", "),
        `IoT credentials need ${missing.map(name).join(" and ")} (set with the other IoT settings)`,
      );
    }
    let endpoint = get("iot-credential-endpoint")!;
    if (!/^https?:\/\//.test(endpoint)) endpoint = `https://${endpoint}`;
    try {
      new URL(endpoint);
    } catch (cause) {
      throw new ConfigError(
        name("iot-credential-endpoint"),
        `${name("iot-credential-endpoint")} "${endpoint}" is not a host name or URL`,
        { cause },
      );
    }
    credentials = {
      kind: "iot",
      endpoint,
      certPath: get("iot-cert") ?? "certificate.pem",
      keyPath: get("iot-private-key") ?? "private.key",
      roleAlias: get("iot-role-alias")!,
      thingName: get("iot-thing-name")!,
    };
  } else {
    const accessKeyId = get("access-key-id");
    const secretAccessKey = get("secret-access-key");
    if (accessKeyId && secretAccessKey) {
      credentials = {
        kind: "keys",
        accessKeyId,
        secretAccessKey,
        sessionToken: get("session-token"),
      };
    } else if (accessKeyId || secretAccessKey) {
      const which = accessKeyId ? "secret-access-key" : "access-key-id";
      throw new ConfigError(name(which), `${name(which)} is not set (both keys are needed)`);
    } else {
      throw new ConfigError(
        "credentials",
        "No AWS credentials. Either set AWS IoT credentials: AWS_IOT_CORE_CREDENTIAL_ENDPOINT, " +
          "AWS_IOT_CORE_ROLE_ALIAS, AWS_IOT_CORE_THING_NAME, AWS_IOT_CORE_CERT, " +
          "AWS_IOT_CORE_PRIVATE_KEY (or --iot-credential-endpoint, --iot-role-alias, " +
          "--iot-thing-name, --iot-cert, --iot-private-key); or set keys: AWS_ACCESS_KEY_ID, " +
          "AWS_SECRET_ACCESS_KEY and optionally AWS_SESSION_TOKEN (or --access-key-id, " +
          "--secret-access-key, --session-token).",
      );
    }
  }

  const positional = parsed.positionals[0];
  const flagChannel = values.channel as string | undefined;
  if (positional !== undefined && flagChannel !== undefined && positional !== flagChannel) {
    throw new ConfigError(
      "--channel",
      `channel given twice: "${positional}" and --channel "${flagChannel}"`,
    );
  }
  const channelName = positional ?? flagChannel ??
    (credentials.kind === "iot" ? credentials.thingName : "demo-channel");
  if (!/^[a-zA-Z0-9_.-]{1,256}$/.test(channelName)) {
    throw new ConfigError(
      "--channel",
      `channel name "${channelName}" is invalid: 1-256 characters of a-z, A-Z, 0-9, '_', '.', '-'`,
    );
  }

  const region = get("region") ?? "us-west-2";
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw new ConfigError(name("region"), `${name("region")} "${region}" is not an AWS region`);
  }

  const endpointUrl = get("endpoint-url");
  if (endpointUrl !== undefined) {
    let ok = false;
    try {
      ok = ["https:", "http:"].includes(new URL(endpointUrl).protocol);
    } catch { /* reported below */ }
    if (!ok) {
      throw new ConfigError(
        name("endpoint-url"),
        `${name("endpoint-url")} "${endpointUrl}" is not an http(s) URL`,
      );
    }
  }

  let logLevel: LogLevel;
  try {
    logLevel = parseLogLevel(get("log-level"), "info");
  } catch (cause) {
    throw new ConfigError(name("log-level"), `${name("log-level")} ${(cause as Error).message}`, {
      cause,
    });
  }

  const fpsText = get("fps") ?? "25";
  const fps = Number(fpsText);
  if (!Number.isFinite(fps) || fps <= 0 || fps > 240) {
    throw new ConfigError("--fps", `--fps "${fpsText}" must be a number between 0 and 240`);
  }

  const policy = get("ice-transport-policy") ?? "all";
  if (policy !== "all" && policy !== "relay") {
    throw new ConfigError(
      name("ice-transport-policy"),
      `${name("ice-transport-policy")} "${policy}" must be all or relay`,
    );
  }

  return {
    channelName,
    region,
    credentials,
    iceTransportPolicy: policy,
    caCertPath: get("ca-cert"),
    endpointUrl,
    logLevel,
    logSdp: values["debug-log-sdp"] === true || truthy(env.DEBUG_LOG_SDP),
    framesDir: get("frames") ?? "samples/h264",
    fps,
    endpointCache: values["no-endpoint-cache"] !== true,
    endpointCacheFile: get("endpoint-cache-file") ?? ".SignalingCache_v0",
    sources,
  };
}

/**
 * The configuration as safe to print: secrets replaced.
 *
 * @example
 * ```ts
 * import { describeConfig, parseConfig } from "./config.ts";
 * const c = parseConfig([], { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s" });
 * console.log(describeConfig(c).credentials); // { kind: "keys", accessKeyId: "AKID", ... }
 * ```
 */
export function describeConfig(config: MasterConfig): Record<string, unknown> {
  const c = config.credentials;
  const credentials = c.kind === "keys"
    ? {
      kind: c.kind,
      accessKeyId: c.accessKeyId,
      secretAccessKey: "<redacted>",
      sessionToken: c.sessionToken ? "<redacted>" : undefined,
    }
    : { ...c };
  return { ...config, credentials };
}
