/**
 * The benches' viewers: the viewer page of `web/` (official KVS WebRTC JS SDK) in headless
 * Chromium (see `bench/viewer_stage.ts`), one browser context per page, and bounded polls of what
 * the pages report.
 *
 * @module
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { Emulator } from "../src/emulator/mod.ts";
import { viewerPageUrl } from "../web/serve.ts";
import { bounded, sleep } from "./werift_setup.ts";

/**
 * The viewer page for `channel` on the emulator, started at once without a STUN server, audio
 * recvonly (no microphone) and an idle data channel (no pings).
 *
 * @example
 * ```ts
 * import { benchViewerUrl } from "./viewer_pages.ts";
 * const url = benchViewerUrl("http://127.0.0.1:8080/", {
 *   region: "us-west-2",
 *   browserControlPlaneUrl: "https://127.0.0.1:4443",
 *   viewerCredentials: { accessKeyId: "AKID", secretAccessKey: "secret" },
 * }, "my-channel");
 * ```
 */
export function benchViewerUrl(
  pageUrl: string,
  emu: Pick<Emulator, "region" | "browserControlPlaneUrl" | "viewerCredentials">,
  channel: string,
): string {
  const page = new URL(viewerPageUrl(pageUrl, {
    channel,
    region: emu.region,
    endpoint: emu.browserControlPlaneUrl,
    accessKeyId: emu.viewerCredentials.accessKeyId,
    secretAccessKey: emu.viewerCredentials.secretAccessKey,
    stun: false,
    autostart: true,
  }));
  page.searchParams.set("mic", "0");
  page.searchParams.set("ping", "0");
  return page.href;
}

/**
 * Options of {@link openViewerPage}.
 *
 * @example
 * ```ts
 * import type { ViewerPageOptions } from "./viewer_pages.ts";
 * const options: ViewerPageOptions = { initScript: "globalThis.marked = true;", grantMedia: true };
 * ```
 */
export interface ViewerPageOptions {
  /** Script (source text) run in the page before its own scripts. */
  initScript: string;
  /** Allow camera and microphone for the page's origin first (default false). */
  grantMedia?: boolean;
}

/**
 * A viewer page in its own browser context.
 *
 * @example
 * ```ts
 * import type { ViewerContext } from "./viewer_pages.ts";
 * declare const viewer: ViewerContext;
 * console.log(viewer.page.url());
 * ```
 */
export interface ViewerContext {
  /** The page's own browser context (closing it closes the page). */
  context: BrowserContext;
  /** The viewer page, loaded. */
  page: Page;
}

/**
 * Open `url` in a new context of `browser` (the page loaded within 20 s); on failure the context
 * is closed again.
 *
 * @example
 * ```ts
 * import type { Browser } from "playwright-core";
 * import { closeViewerPage, openViewerPage } from "./viewer_pages.ts";
 * declare const browser: Browser;
 * const viewer = await openViewerPage(browser, "http://127.0.0.1:8080/", { initScript: "" });
 * await closeViewerPage(viewer.context);
 * ```
 */
export async function openViewerPage(
  browser: Browser,
  url: string,
  options: ViewerPageOptions,
): Promise<ViewerContext> {
  const context = await browser.newContext();
  try {
    if (options.grantMedia) {
      await context.grantPermissions(["camera", "microphone"], { origin: new URL(url).origin });
    }
    await context.addInitScript({ content: options.initScript });
    const page = await context.newPage();
    await page.goto(url, { timeout: 20_000, waitUntil: "load" });
    return { context, page };
  } catch (e) {
    await closeViewerPage(context);
    throw e;
  }
}

/**
 * Close a viewer page's context (at most 10 s; never throws).
 *
 * @example
 * ```ts
 * import { closeViewerPage, type ViewerContext } from "./viewer_pages.ts";
 * declare const viewer: ViewerContext;
 * await closeViewerPage(viewer.context);
 * ```
 */
export async function closeViewerPage(context: BrowserContext): Promise<void> {
  await bounded(context.close(), 10_000, "close viewer").catch(() => {});
}

/**
 * Read every page with `read` every `intervalMs` until `done` holds for all of them or
 * `timeoutMs` has passed; the last reads.
 *
 * @example
 * ```ts
 * import { pollPages } from "./viewer_pages.ts";
 * const states = await pollPages(
 *   () => Promise.resolve([{ frames: 1 }, { frames: 0 }]),
 *   (s) => s.frames > 0,
 *   1000,
 *   100,
 * );
 * ```
 */
export async function pollPages<T>(
  read: () => Promise<T[]>,
  done: (state: T) => boolean,
  timeoutMs: number,
  intervalMs: number,
): Promise<T[]> {
  const deadline = performance.now() + timeoutMs;
  let states = await read();
  while (!states.every(done) && performance.now() < deadline) {
    await sleep(intervalMs);
    states = await read();
  }
  return states;
}
