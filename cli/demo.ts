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
import { IotCredentialProvider } from "../src/credentials/iot.ts";
import { createCaHttpClient, KvsClient } from "../src/aws/kvs_client.ts";
import { type Emulator, type EmulatorOptions, startEmulator } from "../src/emulator/mod.ts";
import { createLogger, type Logger, parseLogLevel } from "../src/log.ts";
import { type Master, type MasterOptions, startMaster } from "../src/master.ts";
import { FileVideoSource } from "../src/media/file_source.ts";
import type { PeerSessionFactory } from "../src/peer/types.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";
import { serveViewer, viewerPageUrl, type ViewerServer } from "../web/serve.ts";

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** Channel name (default `demo-channel`). */
  channel?: string;
  /** Frames folder (default the repository's `samples/h264`). */
  frames?: string;
  /** Frames per second (default 25). */
  fps?: number;
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
  /** Master settings: seats and admission. */
  master?: Pick<MasterOptions, "maxViewers" | "admission">;
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
  const channel = options.channel ?? "demo-channel";
  const frames = options.frames ?? new URL("../samples/h264", import.meta.url).pathname;
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
    const env = emulator.env();
    const credentials = IotCredentialProvider.fromEnv(env, { logger: log.child("credentials") });
    closers.push(() => credentials.close());
    const httpClient = await createCaHttpClient(env.AWS_KVS_CACERT_PATH);
    closers.push(() => httpClient.close());
    const controlPlane = new KvsClient({
      region: emulator.region,
      credentials,
      endpoint: emulator.controlPlaneUrl,
      httpClient,
      logger: log.child("aws"),
    });
    const source = await FileVideoSource.open({
      dir: frames,
      fps: options.fps ?? 25,
      logger: log.child("media"),
    });
    const master = await startMaster({
      channel,
      region: emulator.region,
      source,
      controlPlane,
      credentials,
      peerSessionFactory: options.peerSessionFactory ??
        new WasmPeerSessionFactory({
          loopbackOnly: options.loopbackOnly,
          // The emulator's coturn presents a certificate from the emulator's CA.
          turnCaCerts: [await Deno.readTextFile(env.AWS_KVS_CACERT_PATH)],
        }),
      logger: log.child("master"),
      ...options.master,
      signaling: {
        caCerts: [await Deno.readTextFile(env.AWS_KVS_CACERT_PATH)],
        endpointCache: false,
        stunUrl: false, // offline: no public STUN server to reach
      },
    });
    closers.push(() => master.close());
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
    level: parseLogLevel(Deno.env.get("AWS_KVS_LOG_LEVEL")),
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
