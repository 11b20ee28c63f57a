/**
 * The master command: `deno task master [channel] [options]`. With no arguments it works from
 * the environment alone, like the KVS C SDK sample, and prints each signaling state transition
 * (`[SIGNALING] State: …`). Ctrl-C closes it cleanly.
 *
 * @example
 * ```ts
 * import { main } from "./master.ts";
 * const code = await main(["--help"], {});
 * ```
 *
 * @module
 */
import {
  type AudioSource,
  CommandAudioSource,
  CommandVideoSource,
  createAwsServices,
  createLogger,
  type CredentialProvider,
  type CredentialsError,
  EndpointCache,
  fatalCredentialsError,
  FileAudioSource,
  FileVideoSource,
  type Logger,
  type LogSink,
  type Master,
  oneLine,
  type PeerSessionFactory,
  redact,
  type SignalingClient,
  type SignalingControlPlane,
  startMaster,
  StreamAudioSource,
  StreamVideoSource,
  type VideoSource,
  WasmPeerSessionFactory,
  type WebSocketFactory,
} from "../mod.ts";
import {
  awsServicesOptions,
  ConfigError,
  describeConfig,
  helpText,
  type MasterConfig,
  parseConfig,
  resolveFramesDirs,
  resolveSampleAudio,
  wantsHelp,
} from "./config.ts";
import { ViewerAudioRecorder } from "./record_audio.ts";
import { SETTINGS } from "./settings.ts";

/**
 * The services the master needs, built from the configuration.
 *
 * @example
 * ```ts
 * import type { MasterServices } from "./master.ts";
 * import type { SignalingControlPlane } from "../src/aws/types.ts";
 * declare const controlPlane: SignalingControlPlane;
 * const services: MasterServices = { controlPlane };
 * ```
 */
export interface MasterServices {
  /** Credentials (IoT or keys). */
  credentials?: CredentialProvider;
  /** Control plane (`KvsClient`). */
  controlPlane: SignalingControlPlane;
  /** The CA bundle's certificates, read once: for the signaling WebSocket and TURN over TLS. */
  caCerts?: string[];
  /** Release what the services hold (TLS clients). */
  close?(): void;
}

/**
 * What {@link main} can be given instead of its defaults (tests, embedding).
 *
 * @example
 * ```ts
 * import { main, type MasterCliDeps } from "./master.ts";
 * const deps: MasterCliDeps = { print: (text) => console.log(text) };
 * await main(["--help"], {}, deps);
 * ```
 */
export interface MasterCliDeps {
  /** Build the credential provider and control plane. */
  services?: (config: MasterConfig, logger: Logger) => MasterServices | Promise<MasterServices>;
  /** Makes each viewer's media session. Default: sessions wholly in the WASM core. */
  peerSessionFactory?: PeerSessionFactory;
  /** Log sink. Default: stderr. */
  logSink?: LogSink;
  /** Where `--help` and fatal configuration errors go. Default: `console.log`/`console.error`. */
  print?: (text: string) => void;
  /** Stop signal. Default: SIGINT / SIGTERM. */
  signal?: AbortSignal;
  /** WebSocket factory for the signaling client. */
  webSocketFactory?: WebSocketFactory;
  /** Called once the client exists (tests observe it). */
  onClient?: (client: SignalingClient) => void;
  /** What `--video-source -` reads. Default: `Deno.stdin.readable`. */
  stdin?: ReadableStream<Uint8Array>;
}

/**
 * Open the configured video source: the encoder command, stdin (`-`), a frames folder (or its
 * URL), the folders of a ladder (comma-separated, highest first; the default: the 720p and 360p
 * samples) or an Annex-B `.h264` file. A missing path throws an `Error` saying so.
 *
 * @example
 * ```ts
 * import { openVideoSource } from "./master.ts";
 * import { parseConfig } from "./config.ts";
 * import { silentLogger } from "../mod.ts";
 * const config = parseConfig(["--video-source", "samples/h264"], {
 *   AWS_ACCESS_KEY_ID: "AKID",
 *   AWS_SECRET_ACCESS_KEY: "secret",
 * });
 * const source = await openVideoSource(config, silentLogger);
 * ```
 */
export async function openVideoSource(
  config: MasterConfig,
  logger: Logger,
  stdin?: ReadableStream<Uint8Array>,
): Promise<VideoSource> {
  if (config.videoCommand !== undefined) {
    return new CommandVideoSource({ command: config.videoCommand, logger });
  }
  if (config.videoSource === "-") {
    return new StreamVideoSource({ stream: stdin ?? Deno.stdin.readable, name: "stdin", logger });
  }
  const paths = await resolveFramesDirs(config.videoSource);
  if (paths.length > 1) {
    for (const path of paths) {
      if (!isUrl(path) && !(await statPath(path)).isDirectory) {
        throw new Error(`video source ${path} is not a folder: a ladder is made of frame folders`);
      }
    }
    return await FileVideoSource.openLadder({ rungs: paths, fps: config.fps, logger });
  }
  const path = paths[0];
  if (isUrl(path)) return await FileVideoSource.open({ dir: path, fps: config.fps, logger });
  const info = await statPath(path);
  return info.isDirectory
    ? await FileVideoSource.open({ dir: path, fps: config.fps, logger })
    : await FileVideoSource.openFile(path, { fps: config.fps, logger });
}

function isUrl(path: string): boolean {
  return /^https?:\/\//.test(path);
}

/** `Deno.stat`, its failure an `Error` naming the video source. */
async function statPath(path: string): Promise<Deno.FileInfo> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "does not exist"
      : `cannot be read (${(e as Error).message})`;
    throw new Error(`video source ${path} ${why}`, { cause: e });
  }
}

/**
 * The audio source the configuration names, and the video source to give the master with it:
 * `--audio-command`, `--audio-source -` (stdin), a file or URL (looped; kept in step with a
 * looping frames folder of the same length), `none`, or by default the sample tones with the
 * sample frames (no audio with any other video). A missing file throws an `Error` saying so.
 *
 * @example
 * ```ts
 * import { openAudioSource, openVideoSource } from "./master.ts";
 * import { parseConfig } from "./config.ts";
 * import { silentLogger } from "../mod.ts";
 * const config = parseConfig([], { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s" });
 * const { audio, video } = await openAudioSource(
 *   config,
 *   silentLogger,
 *   await openVideoSource(config, silentLogger),
 * );
 * ```
 */
export async function openAudioSource(
  config: MasterConfig,
  logger: Logger,
  video: VideoSource,
  stdin?: ReadableStream<Uint8Array>,
): Promise<{ audio?: AudioSource; video: VideoSource }> {
  if (config.audioCommand !== undefined) {
    return { audio: new CommandAudioSource({ command: config.audioCommand, logger }), video };
  }
  if (config.audioSource === "none") return { video };
  if (config.audioSource === "-") {
    const stream = stdin ?? Deno.stdin.readable;
    return { audio: new StreamAudioSource({ stream, name: "stdin", logger }), video };
  }
  const sampleVideo = config.videoCommand === undefined &&
    config.videoSource === SETTINGS["video-source"].default && video instanceof FileVideoSource;
  const path = config.audioSource ?? (sampleVideo ? await resolveSampleAudio() : undefined);
  if (path === undefined) return { video };
  const audio = await FileAudioSource.open({ path, logger });
  if (!(video instanceof FileVideoSource)) return { audio, video };
  try {
    return { audio, video: audio.follow(video) };
  } catch (e) {
    logger.warn(`The audio loops on its own: ${(e as Error).message}`);
    return { audio, video };
  }
}

/**
 * `--data-channel echo`: every message a viewer sends on a data channel goes back to it on the
 * same channel (a viewer page times the round trip). A message that cannot go back (the
 * viewer's queue is full, it left) is logged at debug and dropped.
 *
 * @example
 * ```ts
 * import { echoMessages } from "./master.ts";
 * import { type Master, silentLogger } from "../mod.ts";
 * declare const master: Master;
 * echoMessages(master, silentLogger);
 * ```
 */
export function echoMessages(master: Master, logger: Logger): () => void {
  return master.on("message", ({ viewerId, channel, data }) => {
    try {
      master.send(viewerId, data, channel.id);
    } catch (e) {
      logger.debug(`Viewer ${viewerId}: echo on ${channel.label} dropped: ${(e as Error).message}`);
    }
  });
}

/**
 * Exit codes of {@link main}.
 *
 * @example
 * ```ts
 * import { EXIT, main } from "./master.ts";
 * if ((await main(["--help"], {})) === EXIT.OK) console.log("ok");
 * ```
 */
export const EXIT = { OK: 0, FAILURE: 1, CONFIG: 2 } as const;

async function defaultServices(config: MasterConfig, logger: Logger): Promise<MasterServices> {
  return await createAwsServices(awsServicesOptions(config, logger));
}

function stopSignal(given?: AbortSignal): { signal: AbortSignal; dispose(): void } {
  if (given) return { signal: given, dispose() {} };
  const controller = new AbortController();
  const stop = () => controller.abort();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  return {
    signal: controller.signal,
    dispose: () => signals.forEach((s) => Deno.removeSignalListener(s, stop)),
  };
}

/**
 * Run the master until stopped. Returns the exit code: 0 after a clean stop, 1 for a startup
 * failure, 2 for a configuration error (printed with a pointer to `--help`) or a credential
 * failure that cannot heal on its own: a missing or unparsable certificate, key or CA file, a key
 * that does not match its certificate, a certificate expired or not yet valid, an IoT 403 or 404
 * before any request succeeded. Those are printed as one line naming the file and the flag or
 * environment variable it came from. Everything else (network, 5xx, throttling, an IoT 403/404
 * after an earlier success) is retried with backoff and logged at warn.
 *
 * @example
 * ```ts
 * import { main } from "./master.ts";
 * const controller = new AbortController();
 * setTimeout(() => controller.abort(), 1000);
 * await main([], Deno.env.toObject(), { signal: controller.signal });
 * ```
 */
export async function main(
  args: string[],
  env: Record<string, string | undefined>,
  deps: MasterCliDeps = {},
): Promise<number> {
  const print = deps.print ?? ((t: string) => console.log(t));
  const printError = deps.print ?? ((t: string) => console.error(t));
  if (wantsHelp(args)) {
    print(helpText());
    return EXIT.OK;
  }
  let config: MasterConfig;
  try {
    config = parseConfig(args, env);
  } catch (e) {
    if (e instanceof ConfigError) {
      printError(`Configuration error: ${e.message}\nRun with --help for every option.`);
      return EXIT.CONFIG;
    }
    throw e;
  }
  const log = createLogger({ level: config.logLevel, sink: deps.logSink, component: "master" });
  log.info(`Channel ${config.channelName} in ${config.region}`, describeConfig(config));

  /** The one line printed for a failure that cannot heal on its own. */
  const fatalLine = (e: CredentialsError) =>
    printError(`Configuration error: ${oneLine(redact(e.message))}`);

  let services: MasterServices;
  try {
    services = await (deps.services ?? defaultServices)(config, log);
  } catch (e) {
    const fatal = fatalCredentialsError(e);
    if (fatal) {
      fatalLine(fatal);
      return EXIT.CONFIG;
    }
    log.error(`Startup failed: ${e instanceof Error ? e.message : String(e)}`);
    return e instanceof ConfigError ? EXIT.CONFIG : EXIT.FAILURE;
  }
  const caCerts = services.caCerts;

  let source: VideoSource;
  try {
    source = await openVideoSource(config, log.child("media"), deps.stdin);
  } catch (e) {
    services.close?.();
    const from = config.videoCommand
      ? config.sources?.["video-command"] ?? "--video-command"
      : config.sources?.["video-source"] ?? "--video-source";
    printError(`Configuration error: ${oneLine(redact((e as Error).message))} (${from})`);
    return EXIT.CONFIG;
  }

  let audio: AudioSource | undefined;
  try {
    ({ audio, video: source } = await openAudioSource(
      config,
      log.child("media"),
      source,
      deps.stdin,
    ));
  } catch (e) {
    services.close?.();
    await source.stop();
    const from = config.audioCommand
      ? config.sources?.["audio-command"] ?? "--audio-command"
      : config.sources?.["audio-source"] ?? "--audio-source";
    printError(`Configuration error: ${oneLine(redact((e as Error).message))} (${from})`);
    return EXIT.CONFIG;
  }

  const master = await startMaster({
    channel: config.channelName,
    region: config.region,
    source,
    audioSource: audio,
    receiveAudio: config.viewerAudio,
    dataChannels: config.dataChannel !== "off",
    controlPlane: services.controlPlane,
    credentials: services.credentials,
    peerSessionFactory: deps.peerSessionFactory ??
      new WasmPeerSessionFactory({
        iceTransportPolicy: config.iceTransportPolicy,
        turnCaCerts: caCerts,
      }),
    logger: log,
    signaling: {
      logSdp: config.logSdp,
      caCerts,
      webSocketFactory: deps.webSocketFactory,
      endpointCache: config.endpointCache
        ? new EndpointCache({ path: config.endpointCacheFile, logger: log })
        : false,
    },
  });
  deps.onClient?.(master.signaling);
  master.on("viewerJoined", ({ viewerId }) => log.info(`Viewer ${viewerId} joined`));
  if (config.dataChannel === "echo") echoMessages(master, log);
  const recorder = config.recordViewerAudio === undefined
    ? undefined
    : new ViewerAudioRecorder(config.recordViewerAudio, log.child("record"));
  if (recorder) {
    master.on("audio", ({ viewerId, packet }) => recorder.write(viewerId, packet));
    master.on("viewerLeft", ({ viewerId }) => recorder.close(viewerId));
  }

  // Run until stopped, or until signaling stops on a failure that cannot heal on its own.
  const stop = stopSignal(deps.signal);
  const fatal = await new Promise<CredentialsError | undefined>((resolve) => {
    const check = () => {
      const f = fatalCredentialsError(master.signaling.fatalError);
      if (f) resolve(f);
    };
    master.signaling.on("error", check);
    check();
    if (stop.signal.aborted) resolve(undefined);
    stop.signal.addEventListener("abort", () => resolve(undefined), { once: true });
  });
  if (fatal) fatalLine(fatal);
  else log.info("Stopping");
  await master.close();
  recorder?.closeAll();
  services.close?.();
  stop.dispose();
  if (fatal) return EXIT.CONFIG;
  log.info("Stopped");
  return EXIT.OK;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, Deno.env.toObject()));
}
