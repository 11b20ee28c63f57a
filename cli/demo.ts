/**
 * The offline demo: `deno task demo`. Starts the local KVS emulator (with coturn when
 * installed), a master streaming the sample H.264 frames through it with IoT credentials over
 * mutual TLS — the same path as against AWS — and a viewer web page using the official KVS
 * WebRTC JS SDK, then prints the page's URL. Ctrl-C stops everything.
 *
 * @example
 * ```ts
 * import { startDemo } from "./demo.ts";
 * const demo = await startDemo({ loopbackOnly: true });
 * console.log(demo.openUrl);
 * await demo.close();
 * ```
 *
 * @module
 */
import {
  createAwsServices,
  createLogger,
  FileAudioSource,
  FileVideoSource,
  type Logger,
  type Master,
  type MasterOptions,
  type PeerSessionFactory,
  startMaster,
  type VideoSource,
  WasmPeerSessionFactory,
} from "../mod.ts";
import { type Emulator, type EmulatorOptions, startEmulator } from "../src/emulator/mod.ts";
import {
  awsServicesOptions,
  parseConfig,
  resolveSampleAudio,
  shippedFramesDirs,
} from "./config.ts";
import { envSetting, SETTINGS } from "./settings.ts";
import { echoMessages } from "./master.ts";
import { serveViewer, viewerPageUrl, type ViewerServer } from "../web/serve.ts";

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** Channel name (default: the master command's, `demo-channel`). */
  channel?: string;
  /**
   * Frames folder, or the folders of a ladder, highest first (default: the master command's,
   * the 720p and 360p samples shipped next to this module: each viewer gets the rung its
   * bandwidth carries).
   */
  frames?: string | readonly string[];
  /**
   * A video source of your own instead of `frames` (e.g. a live encoder's
   * `CommandVideoSource`); the demo then sends no audio, and closing it stops the source.
   */
  videoSource?: VideoSource;
  /** Frames per second (default: the master command's, 25). */
  fps?: number;
  /** Send the sample tones with the sample frames (default true; never with other frames). */
  audio?: boolean;
  /** Port of the URL to open (default 0: any free port). */
  port?: number;
  /** Offer only 127.0.0.1 candidates (headless tests). Default false. */
  loopbackOnly?: boolean;
  /** Emulator state folder (default `.kvs-emulator`). */
  stateDir?: string;
  /** Media sessions (default: wholly in the WASM core). */
  peerSessionFactory?: PeerSessionFactory;
  /** Start coturn when installed (default "auto"). */
  turn?: boolean | "auto";
  /** Master settings: seats, admission, adaptation to each viewer's bandwidth. */
  master?: Pick<MasterOptions, "maxViewers" | "admission" | "adaptation">;
  /** More emulator settings (short credential lifetimes, TURN allocation lifetime, …). */
  emulator?: Omit<EmulatorOptions, "stateDir" | "turn" | "logger">;
  logger?: Logger;
}

/**
 * A running demo.
 *
 * @example
 * ```ts
 * import type { Demo } from "./demo.ts";
 * declare const demo: Demo;
 * console.log(demo.openUrl, demo.master.viewers());
 * ```
 */
export interface Demo {
  /** The viewer page with its parameters, emulator viewer keys included: keep it out of logs. */
  viewerUrl: string;
  /** Open this in a browser: it redirects to {@link Demo.viewerUrl}, so no key is printed. */
  openUrl: string;
  /** The page's base URL (add your own parameters with `viewerPageUrl`). */
  pageUrl: string;
  emulator: Emulator;
  master: Master;
  viewer: ViewerServer;
  close(): Promise<void>;
}

/**
 * Start the emulator, the master and the viewer page.
 *
 * @example
 * ```ts
 * import { startDemo } from "./demo.ts";
 * const demo = await startDemo();
 * await demo.master.waitForState("Connected");
 * await demo.close();
 * ```
 */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const log = options.logger ?? createLogger({ level: "info", component: "demo" });
  const channel = options.channel ?? SETTINGS.channel.default;
  const emulator = await startEmulator({
    ...options.emulator,
    stateDir: options.stateDir,
    turn: options.turn ?? "auto",
    plainTcpTurn: true,
    logger: log.child("emulator"),
  });
  const closers: (() => unknown)[] = [() => emulator.close()];
  const close = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    // The master configured as `deno task master` would be from the emulator's environment.
    const config = parseConfig([channel], emulator.env());
    const aws = await createAwsServices(awsServicesOptions(config, log));
    closers.push(() => aws.close());
    const dirs = typeof options.frames === "string"
      ? [options.frames]
      : options.frames ?? shippedFramesDirs();
    const fps = options.fps ?? config.fps;
    const frames = options.videoSource
      ? undefined
      : dirs.length > 1
      ? await FileVideoSource.openLadder({ rungs: dirs, fps, logger: log.child("media") })
      : await FileVideoSource.open({ dir: dirs[0], fps, logger: log.child("media") });
    // The sample tones with the sample frames, in step (unless audio is off or other frames).
    const audio = !frames || options.audio === false || options.frames !== undefined
      ? undefined
      : await FileAudioSource.open({
        path: await resolveSampleAudio(),
        logger: log.child("media"),
      });
    const master = await startMaster({
      channel,
      region: emulator.region,
      source: frames ? (audio ? audio.follow(frames) : frames) : options.videoSource!,
      audioSource: audio,
      controlPlane: aws.controlPlane,
      credentials: aws.credentials,
      peerSessionFactory: options.peerSessionFactory ??
        new WasmPeerSessionFactory({
          loopbackOnly: options.loopbackOnly,
          // The emulator's coturn presents a certificate from the emulator's CA.
          turnCaCerts: aws.caCerts,
        }),
      logger: log.child("master"),
      ...options.master,
      signaling: {
        caCerts: aws.caCerts,
        endpointCache: false,
        stunUrl: false, // offline: no public STUN server to reach
      },
    });
    closers.push(() => master.close());
    echoMessages(master, log);
    const viewer = await serveViewer();
    closers.push(() => viewer.close());
    const viewerUrl = viewerPageUrl(viewer.url, {
      channel,
      region: emulator.region,
      endpoint: emulator.browserControlPlaneUrl,
      accessKeyId: emulator.viewerCredentials.accessKeyId,
      secretAccessKey: emulator.viewerCredentials.secretAccessKey,
      autostart: true,
    });
    const redirect = Deno.serve(
      { hostname: "127.0.0.1", port: options.port ?? 0, onListen() {} },
      () => Response.redirect(viewerUrl, 302),
    );
    closers.push(() => redirect.shutdown());
    const openUrl = `http://127.0.0.1:${redirect.addr.port}/`;
    return { viewerUrl, openUrl, pageUrl: viewer.url, emulator, master, viewer, close };
  } catch (e) {
    await close();
    throw e;
  }
}

if (import.meta.main) {
  const { ensureDeps } = await import("../tools/ensure_deps.ts");
  await ensureDeps("demo", true);
  const log = createLogger({
    level: envSetting("log-level", Deno.env.toObject()),
    component: "demo",
  });
  const port = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 0);
  const demo = await startDemo({ logger: log, port });
  demo.master.on("viewer", ({ viewerId, state }) => log.info(`Viewer ${viewerId}: ${state}`));
  await demo.master.waitForState("Connected", 30_000);
  console.log(`\nOpen the viewer page (video starts by itself):\n\n  ${demo.openUrl}\n`);
  console.log("Press Ctrl-C to stop.");
  const stop = new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGINT", () => resolve());
    Deno.addSignalListener("SIGTERM", () => resolve());
  });
  await stop;
  await demo.close();
  Deno.exit(0);
}
