/**
 * The master command's configuration: the settings table folded over flags and environment
 * (see `settings.ts`), then the choices between settings (IoT credentials or keys, the thing name
 * as the default channel). The library takes the result as plain values.
 *
 * @module
 */
import type {
  AwsServicesOptions,
  IotCredentialsConfig,
  IotSettingNames,
  Logger,
  LogLevel,
  StaticCredentialsConfig,
} from "../mod.ts";
import { redact } from "../mod.ts";
import {
  ConfigError,
  type EnvVars,
  foldSettings,
  parseSetting,
  type Setting,
  type SettingName,
  settingName,
  SETTINGS,
  type SettingValues,
} from "./settings.ts";

export { helpText, wantsHelp } from "./help.ts";
export { ConfigError, type EnvVars } from "./settings.ts";

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
  /**
   * Where the video comes from (`--video-source` / `AWS_KVS_VIDEO_SOURCE`, or `--frames`): a
   * folder of `frame-NNNN.h264` access units, folders of a ladder separated by commas (highest
   * first; by default the 720p and 360p samples), `-` for Annex-B H.264 on stdin, or an Annex-B
   * `.h264` file. Unused when {@link MasterConfig.videoCommand} is set.
   */
  videoSource: string;
  /**
   * Encoder command run with `sh -c`, its stdout read as Annex-B H.264
   * (`--video-command` / `AWS_KVS_VIDEO_COMMAND`); restarted with backoff when it exits.
   */
  videoCommand?: string;
  /** Frames per second of a frames folder or `.h264` file (live sources keep their own). */
  fps: number;
  /**
   * Where the audio comes from (`--audio-source` / `AWS_KVS_AUDIO_SOURCE`): an Ogg/Opus file or
   * URL (looped), `-` for Ogg/Opus on stdin, or `none`. Undefined: the sample tones when the
   * video is the sample frames, none otherwise. Unused when {@link MasterConfig.audioCommand}
   * is set.
   */
  audioSource?: string;
  /** Encoder command run with `sh -c`, its stdout read as Ogg/Opus (`--audio-command`). */
  audioCommand?: string;
  /** Take viewers' audio (false with `--no-viewer-audio`). */
  viewerAudio: boolean;
  /** Folder where each viewer's audio is recorded as Ogg/Opus (`--record-viewer-audio`). */
  recordViewerAudio?: string;
  /** Data channels: `echo` each message back to its sender, or `off` (`--data-channel`). */
  dataChannel: "echo" | "off";
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

/** IoT settings: any of them given means IoT credentials; the first three are needed then. */
const IOT: SettingName[] = [
  "iot-credential-endpoint",
  "iot-role-alias",
  "iot-thing-name",
  "iot-cert",
  "iot-private-key",
];
const IOT_NEEDED = IOT.slice(0, 3);
const KEYS: SettingName[] = ["access-key-id", "secret-access-key", "session-token"];

/** `A, B and optionally C (or --a, --b, --c)`: the variables and flags of `names`. */
function ways(names: SettingName[], optional: SettingName[] = []): string {
  const env = (n: SettingName) => (SETTINGS[n] as Setting).env?.join(", ") ?? `--${n}`;
  const needed = names.filter((n) => !optional.includes(n)).map(env).join(", ");
  const extra = optional.length ? ` and optionally ${optional.map(env).join(", ")}` : "";
  return `${needed}${extra} (or ${names.map((n) => `--${n}`).join(", ")})`;
}

/** IoT credentials when any IoT setting is given, else keys, else an error naming both ways. */
function credentialsOf(
  v: SettingValues,
  given: ReadonlySet<SettingName>,
): IotCredentialsConfig | StaticCredentialsConfig {
  if (IOT.some((n) => given.has(n))) {
    const missing = IOT_NEEDED.filter((n) => v[n] === undefined);
    if (missing.length > 0) {
      throw new ConfigError(
        missing.map(settingName).join(", "),
        `IoT credentials need ${
          missing.map(settingName).join(" and ")
        } (set with the other IoT settings)`,
      );
    }
    return {
      kind: "iot",
      endpoint: v["iot-credential-endpoint"]!,
      certPath: v["iot-cert"],
      keyPath: v["iot-private-key"],
      roleAlias: v["iot-role-alias"]!,
      thingName: v["iot-thing-name"]!,
    };
  }
  const accessKeyId = v["access-key-id"];
  const secretAccessKey = v["secret-access-key"];
  if (accessKeyId && secretAccessKey) {
    return { kind: "keys", accessKeyId, secretAccessKey, sessionToken: v["session-token"] };
  }
  if (accessKeyId || secretAccessKey) {
    const which = settingName(accessKeyId ? "secret-access-key" : "access-key-id");
    throw new ConfigError(which, `${which} is not set (both keys are needed)`);
  }
  throw new ConfigError(
    "credentials",
    `No AWS credentials. Either set AWS IoT credentials: ${ways(IOT)}; or set keys: ` +
      `${ways(KEYS, ["session-token"])}.`,
  );
}

/**
 * The video source setting: `--frames` is another name for `--video-source`; a command excludes
 * both. `sources["video-source"]` names where the value came from.
 */
function videoSourceOf(
  v: SettingValues,
  given: ReadonlySet<SettingName>,
  sources: Record<string, string>,
): string {
  let source = v["video-source"];
  if (v.frames !== undefined) {
    if (given.has("video-source") && v.frames !== source) {
      throw new ConfigError(
        "--frames",
        `--frames "${v.frames}" and ${sources["video-source"]} "${source}" disagree: give one`,
      );
    }
    source = v.frames;
    sources["video-source"] = "--frames";
  }
  if (v["video-command"] !== undefined && (given.has("video-source") || given.has("frames"))) {
    const from = sources["video-source"];
    throw new ConfigError(
      `${from}, ${sources["video-command"]}`,
      `${from} and ${sources["video-command"]} are both set: give one video source`,
    );
  }
  return source;
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
  const { values: v, sources, given } = foldSettings(args, env);
  const credentials = credentialsOf(v, given);
  // Like the C SDK sample, IoT credentials make the thing name the default channel.
  const channelName = credentials.kind === "iot" && !given.has("channel")
    ? parseSetting("channel", credentials.thingName)
    : v.channel;
  const videoSource = videoSourceOf(v, given, sources);
  if (v["audio-command"] !== undefined && given.has("audio-source")) {
    const [a, b] = [sources["audio-source"], sources["audio-command"]];
    throw new ConfigError(`${a}, ${b}`, `${a} and ${b} are both set: give one audio source`);
  }
  if (v["audio-source"] === "-" && videoSource === "-" && v["video-command"] === undefined) {
    throw new ConfigError(
      sources["audio-source"],
      "audio and video cannot both be read from stdin: give one of them a file or a command",
    );
  }
  return {
    channelName,
    region: v.region,
    credentials,
    iceTransportPolicy: v["ice-transport-policy"],
    caCertPath: v["ca-cert"],
    endpointUrl: v["endpoint-url"],
    logLevel: v["log-level"],
    logSdp: v["debug-log-sdp"],
    videoSource,
    videoCommand: v["video-command"],
    fps: v.fps,
    audioSource: v["audio-source"],
    audioCommand: v["audio-command"],
    viewerAudio: !v["no-viewer-audio"],
    recordViewerAudio: v["record-viewer-audio"],
    dataChannel: v["data-channel"],
    endpointCache: !v["no-endpoint-cache"],
    endpointCacheFile: v["endpoint-cache-file"],
    sources,
  };
}

/**
 * What the library's `createAwsServices` needs from the configuration, with the names each
 * setting came from for its error messages.
 *
 * @example
 * ```ts
 * import { createAwsServices } from "../mod.ts";
 * import { awsServicesOptions, parseConfig } from "./config.ts";
 * const config = parseConfig([], Deno.env.toObject());
 * const aws = await createAwsServices(awsServicesOptions(config));
 * aws.close();
 * ```
 */
export function awsServicesOptions(config: MasterConfig, logger?: Logger): AwsServicesOptions {
  return {
    region: config.region,
    credentials: config.credentials,
    endpoint: config.endpointUrl,
    caCertPath: config.caCertPath,
    settings: iotSettingNames(config),
    logger,
  };
}

/**
 * The names each IoT setting came from (`config.sources`), for the library's error messages.
 *
 * @example
 * ```ts
 * import { iotSettingNames, parseConfig } from "./config.ts";
 * const config = parseConfig(["--iot-cert", "c.pem"], {
 *   AWS_IOT_CORE_CREDENTIAL_ENDPOINT: "c1.credentials.iot.us-west-2.amazonaws.com",
 *   AWS_IOT_CORE_ROLE_ALIAS: "alias",
 *   AWS_IOT_CORE_THING_NAME: "thing",
 * });
 * iotSettingNames(config).cert; // "--iot-cert"
 * ```
 */
export function iotSettingNames(config: MasterConfig): IotSettingNames {
  const from = config.sources ?? {};
  return {
    endpoint: from["iot-credential-endpoint"],
    roleAlias: from["iot-role-alias"],
    thingName: from["iot-thing-name"],
    cert: from["iot-cert"],
    key: from["iot-private-key"],
    caCert: from["ca-cert"],
  };
}

/**
 * The frame folders (or file) `--video-source` names: one, or the rungs of a ladder separated
 * by commas (a path that exists as given is one, commas and all). The default's folders are
 * those of the working directory when there, else those shipped next to this module (paths in
 * a checkout, https URLs from JSR).
 *
 * @example
 * ```ts
 * import { resolveFramesDirs } from "./config.ts";
 * await resolveFramesDirs("samples/h264,samples/h264-360p"); // ["samples/h264", "samples/h264-360p"]
 * await resolveFramesDirs("camera.h264"); // ["camera.h264"]
 * ```
 */
export async function resolveFramesDirs(source: string): Promise<string[]> {
  const split = (s: string) => s.split(",").map((p) => p.trim()).filter((p) => p !== "");
  if (source === SETTINGS["video-source"].default) {
    const shipped = shippedFramesDirs();
    return await Promise.all(
      split(source).map(async (dir, i) => {
        try {
          await Deno.stat(dir);
          return dir;
        } catch {
          return shipped[i];
        }
      }),
    );
  }
  if (!source.includes(",")) return [source];
  try {
    await Deno.stat(source);
    return [source];
  } catch {
    return split(source);
  }
}

/**
 * The sample tones (`samples/opus/tones.opus`, the sound of the sample frames): the file in the
 * working directory when there is one, else the one shipped next to this module.
 *
 * @example
 * ```ts
 * import { resolveSampleAudio } from "./config.ts";
 * console.log(await resolveSampleAudio()); // samples/opus/tones.opus
 * ```
 */
export async function resolveSampleAudio(): Promise<string> {
  const local = "samples/opus/tones.opus";
  try {
    await Deno.stat(local);
    return local;
  } catch {
    const shipped = new URL(`../${local}`, import.meta.url);
    return shipped.protocol === "file:" ? shipped.pathname : shipped.href;
  }
}

/**
 * The default frame folders shipped next to this module: the 720p and 360p samples, a ladder.
 *
 * @example
 * ```ts
 * import { shippedFramesDirs } from "./config.ts";
 * console.log(shippedFramesDirs()); // [".../samples/h264/", ".../samples/h264-360p/"]
 * ```
 */
export function shippedFramesDirs(): string[] {
  return SETTINGS["video-source"].default.split(",").map((dir) => {
    const shipped = new URL(`../${dir}/`, import.meta.url);
    return shipped.protocol === "file:" ? shipped.pathname : shipped.href;
  });
}

/**
 * The configuration as safe to print: secrets replaced (a password in the video command's URLs
 * too).
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
  const videoCommand = config.videoCommand === undefined ? undefined : redact(config.videoCommand);
  const audioCommand = config.audioCommand === undefined ? undefined : redact(config.audioCommand);
  return { ...config, credentials, videoCommand, audioCommand };
}
