/**
 * Headless Chromium for tests: opens the viewer page (`web/`) and reads its status.
 *
 * Drives the system's `/usr/bin/chromium` with `npm:playwright-core` (no browser download).
 * Every wait is bounded, and every browser is closed by `close()` or, at the latest, by a
 * watchdog after `maxLifetimeMs`. `TestBrowser` and `ViewerPage` are shared with the Firefox
 * helper (`firefox.ts`), so one scenario can run on either browser.
 *
 * @module
 */
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { viewerPageUrl } from "../../web/serve.ts";
import { have } from "./have.ts";

/** What the viewer page reports in `window.viewerState` / `#status`. */
export interface ViewerStatus {
  state: string;
  framesDecoded: number;
  codec: string | null;
  width: number;
  height: number;
  ttffMs: number | null;
  error: string | null;
  step?: string | null;
  clientId?: string | null;
  signaling?: string;
  connectionState?: string;
  iceConnectionState?: string;
  selectedPair?: string | null;
  localCandidateType?: string | null;
  remoteCandidateType?: string | null;
  bitrateKbps?: number;
  sdkVersion?: string | null;
  [key: string]: unknown;
}

/** The viewer page's `audio` status (see web/viewer.js). */
export interface AudioStatus {
  state: string;
  direction: string;
  currentDirection: string | null;
  microphone: string;
  packetsReceived: number;
  totalSamplesReceived: number;
  concealedSamples: number;
  codec: string | null;
}

/** The viewer page's `dataChannel` status (see web/viewer.js). */
export interface DataChannelStatus {
  label: string;
  state: string;
  readyState: string;
  sent: number;
  echoed: number;
  received: number;
  lastRttMs: number | null;
  medianRttMs: number | null;
  pingsRequested: number;
}

/** The page's audio status, if a session started. */
export const audioOf = (s: ViewerStatus): AudioStatus | null => s.audio as AudioStatus | null;
/** The page's data channel status, if a session started. */
export const channelOf = (s: ViewerStatus): DataChannelStatus | null =>
  s.dataChannel as DataChannelStatus | null;

/** Chromium flags for WebRTC on loopback in a container. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--allow-loopback-in-peer-connection",
  "--disable-features=LocalNetworkAccessChecks",
  "--ignore-certificate-errors",
  "--use-fake-ui-for-media-stream",
  "--autoplay-policy=no-user-gesture-required",
];

/** The system's Chromium (`$CHROMIUM_PATH`, else `/usr/bin/chromium`). */
export const chromiumPath = (): string => Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

const wrappers = new Map<string, Promise<string>>();

/**
 * An executable that starts Chromium `path` unable to raise its own priority and, with `cpus`
 * (a `taskset` list), on those CPUs only.
 *
 * Run as root, Chromium puts its browser, GPU and audio threads at nice -8: next to a master in
 * the same test process on a 2-core machine that starved the master's event loop for 0.5 s at a
 * time (the audio and video sources then skip ahead, and a test reads that as our fault). So, as
 * root and where `setpriv` exists, it starts without `CAP_SYS_NICE`; otherwise (a user cannot
 * raise priority anyway) `path` itself, unless pinned.
 *
 * @example
 * ```ts
 * import { chromiumExecutable, chromiumPath } from "./browser.ts";
 * console.log(await chromiumExecutable(chromiumPath())); // a wrapper script, or the path
 * ```
 */
export function chromiumExecutable(path: string, cpus?: string): Promise<string> {
  const key = `${path}\0${cpus ?? ""}`;
  let made = wrappers.get(key);
  if (!made) {
    made = makeWrapper(path, cpus);
    wrappers.set(key, made);
  }
  return made;
}

async function makeWrapper(path: string, cpus: string | undefined): Promise<string> {
  const prefix: string[] = [];
  if (cpus !== undefined && await have("taskset")) prefix.push(`taskset -c ${cpus}`);
  if (Deno.uid() === 0 && await have("setpriv")) {
    prefix.push("setpriv --bounding-set -sys_nice --inh-caps -sys_nice");
  }
  if (prefix.length === 0) return path;
  // One file per distinct script, shared by every test process (named by its content's hash,
  // written whole under a temporary name, then renamed into place): nothing left per run.
  const script = `#!/bin/sh\nexec ${prefix.join(" ")} '${path}' "$@"\n`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < script.length; i++) hash = Math.imul(hash ^ script.charCodeAt(i), 0x01000193);
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/kvs-chromium-wrappers-${Deno.uid()}`;
  const wrapper = `${dir}/${(hash >>> 0).toString(16)}.sh`;
  if (await Deno.readTextFile(wrapper).then((t) => t === script, () => false)) return wrapper;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const partial = `${wrapper}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(partial, script, { mode: 0o755 });
  await Deno.rename(partial, wrapper);
  return wrapper;
}

/**
 * Page script (text, for `page.evaluate`): an `RTCPeerConnection` kept as `globalThis.pc`, a
 * recvonly transceiver per kind, and its offer once ICE gathering completed (at most 3 s): the
 * SDP, candidates in it.
 *
 * @example
 * ```ts
 * import { gatheredOfferScript } from "./browser.ts";
 * console.log(gatheredOfferScript(["video", "audio"]).length > 0);
 * ```
 */
export function gatheredOfferScript(kinds: readonly ("video" | "audio")[]): string {
  return `(async () => {
    const pc = new RTCPeerConnection();
    globalThis.pc = pc;
    for (const kind of ${JSON.stringify(kinds)}) pc.addTransceiver(kind, { direction: "recvonly" });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((r) => {
      if (pc.iceGatheringState === "complete") r();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r();
      setTimeout(r, 3000);
    });
    return pc.localDescription.sdp;
  })()`;
}

/** Options of {@link launchBrowser}. */
export interface LaunchOptions {
  /** Chromium binary (default `/usr/bin/chromium` or `$CHROMIUM_PATH`). */
  executablePath?: string;
  /** Extra flags. */
  args?: string[];
  /** Launch timeout, ms (default 30 000). */
  launchTimeoutMs?: number;
  /** Kill the browser after this long even if nobody closed it, ms (default 180 000). */
  maxLifetimeMs?: number;
}

/** Options of {@link TestBrowser.openViewer}. */
export interface OpenViewerOptions {
  /** Base URL of the viewer server (`serveViewer().url`). */
  pageUrl: string;
  /** Query parameters; omitted ones keep the page's defaults. */
  params?: Record<string, string | boolean | undefined>;
  /** Page load timeout, ms (default 15 000). */
  loadTimeoutMs?: number;
  /**
   * Script (source text) run in the page before its own scripts, e.g. to wrap
   * `RTCPeerConnection` (Chromium only).
   */
  initScript?: string;
}

/**
 * One open viewer page. `P` is the automation library's page: Playwright's for Chromium
 * (default), Puppeteer's for Firefox.
 */
export interface ViewerPage<P = Page> {
  /** The automation library's page (for screenshots or evaluation). */
  page: P;
  /** Console lines the page printed (`type: text`). */
  console: string[];
  /** The page's current status. */
  status(): Promise<ViewerStatus>;
  /**
   * Poll the status until `pred` holds; throws after `timeoutMs` with the last status, or at
   * once if the page reports an error state and `pred` does not accept it.
   */
  waitFor(
    pred: (s: ViewerStatus) => boolean,
    timeoutMs: number,
    what?: string,
  ): Promise<ViewerStatus>;
  /** Close this page (and its browser context). */
  close(): Promise<void>;
}

/**
 * A launched test browser. `B` and `P` are the automation library's browser and page:
 * Playwright's for Chromium (default), Puppeteer's for Firefox. A scenario written against
 * `TestBrowser<unknown, unknown>` runs on either.
 */
export interface TestBrowser<B = Browser, P = Page> {
  /** The automation library's browser. */
  browser: B;
  /** Open the viewer page in a fresh context with camera/microphone allowed. */
  openViewer(options: OpenViewerOptions): Promise<ViewerPage<P>>;
  /** Close the browser and every page. */
  close(): Promise<void>;
}

/** The page URL {@link TestBrowser.openViewer} loads: `pageUrl` with the defined `params`. */
export function viewerUrl(o: OpenViewerOptions): string {
  const params: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(o.params ?? {})) if (v !== undefined) params[k] = v;
  return viewerPageUrl(o.pageUrl, params as never);
}

/**
 * Runs inside the page (`page.evaluate`): the page's `viewerState` as plain JSON, or null
 * before the page script ran. Self-contained, as evaluated functions must be.
 */
export function readViewerState(): unknown {
  const s = (globalThis as unknown as { viewerState?: unknown }).viewerState;
  return JSON.parse(JSON.stringify(s ?? null));
}

/**
 * Poll `status()` every 100 ms until `pred` holds; throws after `timeoutMs` with the last
 * status, or at once if the page reports an error state and `pred` does not accept it.
 */
export async function pollViewerStatus(
  status: () => Promise<ViewerStatus>,
  pred: (s: ViewerStatus) => boolean,
  timeoutMs: number,
  what = "condition",
): Promise<ViewerStatus> {
  const deadline = performance.now() + timeoutMs;
  let last: ViewerStatus | null = null;
  for (;;) {
    last = await status();
    if (last && pred(last)) return last;
    if (last?.state === "error") {
      throw new Error(`viewer page error while waiting for ${what}: ${last.error}`);
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last status: ${JSON.stringify(last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Load the viewer page at `url` in `page` (Chromium), noting its console lines: a
 * {@link ViewerPage} but for `close`, which is the caller's (it owns the page's context).
 *
 * @example
 * ```ts
 * import type { Page } from "playwright-core";
 * import { loadViewerPage } from "./browser.ts";
 * declare const page: Page;
 * const viewer = await loadViewerPage(page, "http://127.0.0.1:8080/?autostart=1", 15_000);
 * await viewer.waitFor((s) => s.framesDecoded > 0, 10_000, "first frames");
 * ```
 */
export async function loadViewerPage(
  page: Page,
  url: string,
  loadTimeoutMs: number,
): Promise<Omit<ViewerPage, "close">> {
  const lines: string[] = [];
  page.on("console", (m) => lines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => lines.push(`pageerror: ${e.message}`));
  await page.goto(url, { timeout: loadTimeoutMs, waitUntil: "load" });
  const status = async () => await page.evaluate(readViewerState) as ViewerStatus;
  return {
    page,
    console: lines,
    status,
    waitFor: (pred, timeoutMs, what) => pollViewerStatus(status, pred, timeoutMs, what),
  };
}

/**
 * Launch headless Chromium with the WebRTC loopback flags.
 *
 * @example
 * ```ts
 * import { launchBrowser } from "./browser.ts";
 * const browser = await launchBrowser();
 * try {
 *   const viewer = await browser.openViewer({ pageUrl: "http://127.0.0.1:8080/" });
 *   console.log((await viewer.status()).state);
 * } finally {
 *   await browser.close();
 * }
 * ```
 */
export async function launchBrowser(options: LaunchOptions = {}): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: await chromiumExecutable(options.executablePath ?? chromiumPath()),
    args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
    timeout: options.launchTimeoutMs ?? 30_000,
    headless: true,
  });
  const contexts = new Set<BrowserContext>();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    clearTimeout(watchdog);
    for (const c of contexts) await c.close().catch(() => {});
    await browser.close().catch(() => {});
  };
  const watchdog = setTimeout(() => {
    console.error("test browser outlived its maximum lifetime: closing it");
    close();
  }, options.maxLifetimeMs ?? 180_000);
  Deno.unrefTimer(watchdog);

  const openViewer = async (o: OpenViewerOptions): Promise<ViewerPage> => {
    const context = await browser.newContext();
    contexts.add(context);
    const origin = new URL(o.pageUrl).origin;
    await context.grantPermissions(["camera", "microphone"], { origin });
    if (o.initScript) await context.addInitScript(o.initScript);
    const page = await context.newPage();
    const viewer = await loadViewerPage(page, viewerUrl(o), o.loadTimeoutMs ?? 15_000);
    return {
      ...viewer,
      close: async () => {
        contexts.delete(context);
        await context.close().catch(() => {});
      },
    };
  };
  return { browser, openViewer, close };
}

/** A viewer page with its own browser; `close()` closes both. */
export interface StandaloneViewer extends ViewerPage {
  /** The browser it runs in. */
  browser: TestBrowser;
}

/**
 * Launch a browser and open one viewer page in it.
 *
 * @example
 * ```ts
 * import { openViewer } from "./browser.ts";
 * const viewer = await openViewer({ pageUrl: "http://127.0.0.1:8080/", params: { autostart: "1" } });
 * try {
 *   await viewer.waitFor((s) => s.framesDecoded > 0, 10_000, "first frames");
 * } finally {
 *   await viewer.close();
 * }
 * ```
 */
export async function openViewer(
  options: OpenViewerOptions & LaunchOptions,
): Promise<StandaloneViewer> {
  const browser = await launchBrowser(options);
  try {
    const viewer = await browser.openViewer(options);
    return {
      ...viewer,
      browser,
      close: async () => {
        await viewer.close();
        await browser.close();
      },
    };
  } catch (e) {
    await browser.close();
    throw e;
  }
}
