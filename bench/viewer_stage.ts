/**
 * The stage of a bench whose masters stream to Chromium viewer pages: the local emulator (IoT
 * over mutual TLS, SigV4-checked control plane and signaling, no TURN), the viewer page's
 * server and the viewers' headless Chromium (`/usr/bin/chromium` through `npm:playwright-core`,
 * the flags of tests/support/browser.ts), with one teardown for every way the run ends — at its
 * end, on SIGINT or SIGTERM (exit 130), or when the whole run outlives its bound (exit 1).
 *
 * @module
 */
import { type Browser, chromium } from "playwright-core";
import { type Emulator, startEmulator } from "../src/emulator/mod.ts";
import { CHROMIUM_ARGS, chromiumExecutable, chromiumPath } from "../tests/support/browser.ts";
import { serveViewer, type ViewerServer } from "../web/serve.ts";
import { killMasters } from "./master_process.ts";
import { bounded, ROOT } from "./werift_setup.ts";

/**
 * A running stage (see {@link startViewerStage}).
 *
 * @example
 * ```ts
 * import type { ViewerStage } from "./viewer_stage.ts";
 * declare const stage: ViewerStage;
 * const browser = await stage.launchBrowser();
 * console.log(stage.emu.region, stage.server.url, browser.version());
 * await stage.shutdown();
 * ```
 */
export interface ViewerStage {
  /** The emulator, its state in `.kvs-emulator/` of the repository. */
  emu: Emulator;
  /** The viewer page's server. */
  server: ViewerServer;
  /** The viewers' browser, once launched: the teardown closes it. */
  browser: Browser | undefined;
  /**
   * Launch the viewers' browser (at most 30 s) as {@link ViewerStage.browser}. As
   * tests/e2e_test.ts: one local address per viewer, so its ICE pair does not move between
   * interfaces mid-stream (werift keeps sending on the pair it nominated first). With `cpus` (a
   * `taskset` list) on those CPUs only; never at a raised priority (see `chromiumExecutable`).
   */
  launchBrowser(cpus?: string): Promise<Browser>;
  /**
   * The teardown (once; every step bounded): SIGKILL the masters still running, close the
   * browser, the viewer server and the emulator.
   */
  shutdown(): Promise<void>;
}

/**
 * Start the emulator and the viewer server, and bound the whole run to `limitMs`: then, or on
 * SIGINT or SIGTERM, the stage is torn down and the process exits. `name` prefixes the message
 * printed when the bound is reached.
 *
 * @example
 * ```ts
 * import { startViewerStage } from "./viewer_stage.ts";
 * const stage = await startViewerStage("my_bench", 10 * 60_000);
 * try {
 *   console.log(stage.server.url);
 * } finally {
 *   await stage.shutdown();
 * }
 * ```
 */
export async function startViewerStage(name: string, limitMs: number): Promise<ViewerStage> {
  const emu = await startEmulator({ stateDir: `${ROOT}.kvs-emulator`, turn: false });
  const server = await serveViewer();
  let shuttingDown = false;
  const stage: ViewerStage = {
    emu,
    server,
    browser: undefined,
    launchBrowser: async (cpus?: string) => {
      stage.browser = await chromium.launch({
        executablePath: await chromiumExecutable(chromiumPath(), cpus),
        args: [
          ...CHROMIUM_ARGS,
          "--force-webrtc-ip-handling-policy=default_public_interface_only",
        ],
        timeout: 30_000,
        headless: true,
      });
      return stage.browser;
    },
    shutdown: async () => {
      if (shuttingDown) return;
      shuttingDown = true;
      clearTimeout(watchdog);
      killMasters();
      const browser = stage.browser;
      await bounded(browser?.close() ?? Promise.resolve(), 15_000, "close browser").catch(() => {});
      await bounded(server.close(), 5000, "close viewer server").catch(() => {});
      await bounded(emu.close(), 10_000, "close emulator").catch(() => {});
    },
  };
  // Everything is bounded; this is the last resort: the whole run may take at most this long.
  const watchdog = setTimeout(async () => {
    console.error(`${name}: overall time limit reached, stopping`);
    await stage.shutdown();
    Deno.exit(1);
  }, limitMs);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, async () => {
      await stage.shutdown();
      Deno.exit(130);
    });
  }
  return stage;
}
