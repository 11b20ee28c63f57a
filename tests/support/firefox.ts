/**
 * Headless Firefox ESR for tests: opens the viewer page (`web/`) and reads its status, with the
 * same {@link TestBrowser} / {@link ViewerPage} shape as Chromium's `launchBrowser()`
 * (`browser.ts`), so one scenario runs on either browser.
 *
 * Drives Debian's `/usr/bin/firefox-esr` (`apt-get install -y firefox-esr libavcodec59`) with
 * `npm:puppeteer-core` over WebDriver BiDi (no browser download; Playwright's Firefox needs its
 * own patched build). Every wait is bounded, and every browser is closed by `close()` or, at the
 * latest, by a watchdog after `maxLifetimeMs` (the process is killed if closing hangs).
 *
 * What Firefox needs here, each found by trying it on the test machine (Firefox ESR 153):
 *
 * - **H.264.** Firefox receives WebRTC H.264 without the OpenH264 plugin (which it would
 *   download) only through the platform decoder, Debian's FFmpeg (`libavcodec59`), and only with
 *   `media.webrtc.hw.h264.enabled = true` and `gfx.blacklist.webrtc.hw.acceleration.h264 = 1`.
 *   Without them its offer and `RTCRtpReceiver.getCapabilities("video")` list no H.264.
 * - **Real host addresses.** `media.peerconnection.ice.obfuscate_host_addresses = false`:
 *   otherwise host candidates are mDNS names (`<uuid>.local`) that the master cannot resolve.
 * - **A non-loopback interface and a route towards 8.8.8.8.** Firefox gathers no candidate at
 *   all when `lo` is the only interface, `media.peerconnection.ice.loopback = true` and
 *   `media.peerconnection.ice.force_interface = "lo"` notwithstanding. A veth pair whose two ends
 *   stay in the root namespace is not enough either: Firefox finds its default IPv4 address by
 *   routing towards 8.8.8.8 and gathers nothing while that has no route. A veth pair plus the
 *   host route `8.8.8.8/32 dev kvsff0` is enough (tried in an `unshare -n` namespace holding
 *   only `lo`), and so is any ordinary network interface with a default route (the test
 *   machine's `eth0`). {@link ensureFirefoxNetwork} checks with `ip route get 8.8.8.8` (which
 *   sends nothing) and only when nothing answers creates `kvsff0`/`kvsff1` with 198.18.96.1/30
 *   (RFC 2544 benchmarking space, unlikely to collide; 192.0.2.0/24 is the test machine's own
 *   network) and that route, idempotently. A packet to 8.8.8.8 had no way out before and
 *   has none after.
 * - **Fake media and no prompts.** `media.navigator.streams.fake`,
 *   `media.navigator.permission.disabled`, autoplay allowed (`media.autoplay.default = 0`).
 * - **Loopback TURN.** `media.peerconnection.ice.loopback = true` lets Firefox use the
 *   emulator's coturn on 127.0.0.1 (over UDP and TCP).
 * - **TURN over TLS.** Firefox ignores a `turns:` URL whose host is an IP address (it gathers
 *   no relay candidate from `turns:127.0.0.1:…`; `turns:localhost:…` works), and checks the
 *   server's certificate: WebDriver BiDi's `acceptInsecureCerts` (set here, like Chromium's
 *   `--ignore-certificate-errors`) lets the emulator's private CA pass.
 *
 * @example
 * ```ts
 * import { firefoxUnavailable, launchFirefox } from "./firefox.ts";
 * const why = await firefoxUnavailable();
 * if (why) console.log(`skipped: ${why}`);
 * else {
 *   const browser = await launchFirefox();
 *   try {
 *     const viewer = await browser.openViewer({ pageUrl: "http://127.0.0.1:8080/" });
 *     console.log((await viewer.status()).state);
 *   } finally {
 *     await browser.close();
 *   }
 * }
 * ```
 *
 * @module
 */
// Puppeteer drives Firefox only (Chromium runs on Playwright), so it is imported here alone.
// deno-lint-ignore no-import-prefix
import puppeteer from "npm:puppeteer-core@^25.16.0";
// deno-lint-ignore no-import-prefix
import type { Browser, BrowserContext, Page } from "npm:puppeteer-core@^25.16.0";
import {
  type OpenViewerOptions,
  pollViewerStatus,
  readViewerState,
  type TestBrowser,
  type ViewerPage,
  type ViewerStatus,
  viewerUrl,
} from "./browser.ts";

/** Debian's Firefox ESR. */
export const FIREFOX_PATH = "/usr/bin/firefox-esr";

/** Preferences (about:config) every test Firefox gets; see the module documentation. */
export const FIREFOX_PREFS: Readonly<Record<string, boolean | number | string>> = {
  // H.264 through the system's FFmpeg: without both, Firefox offers no H.264 at all.
  "media.webrtc.hw.h264.enabled": true,
  "gfx.blacklist.webrtc.hw.acceleration.h264": 1,
  // Candidates with real addresses instead of mDNS names.
  "media.peerconnection.ice.obfuscate_host_addresses": false,
  // TURN (and peers) on 127.0.0.1.
  "media.peerconnection.ice.loopback": true,
  // A fake camera and microphone, granted without a prompt.
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  // Play (audio included) without a user gesture.
  "media.autoplay.default": 0,
  "media.autoplay.blocking_policy": 0,
  // Quiet, offline.
  "browser.shell.checkDefaultBrowser": false,
  "app.update.enabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "network.captive-portal-service.enabled": false,
};

/** Name of the veth end {@link ensureFirefoxNetwork} creates. */
export const FIREFOX_VETH = "kvsff0";
/** Its address (RFC 2544 benchmarking space). */
export const FIREFOX_VETH_ADDRESS = "198.18.96.1";
/** Firefox finds its default IPv4 address by routing towards this one. */
const PROBE = "8.8.8.8";

/** What {@link ensureFirefoxNetwork} found or did. */
export interface FirefoxNetwork {
  /** The IPv4 address Firefox will gather as a host candidate. */
  address: string;
  /** `existing`: the machine's own route; `veth`: the helper's veth pair (new or kept). */
  via: "existing" | "veth";
  /** One line for the test log. */
  note: string;
}

/** Run `ip` (iproute2); `missing` when it is not installed. */
async function ip(...args: string[]): Promise<{ ok: boolean; out: string; missing?: boolean }> {
  try {
    const r = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
    const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    return { ok: r.success, out: text.trim() };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { ok: false, out: "", missing: true };
    throw e;
  }
}

/** The source address of the route towards {@link PROBE}, or null when there is none. */
async function probeSource(): Promise<string | null> {
  const r = await ip("-4", "route", "get", PROBE);
  const src = r.ok ? /\bsrc (\d+\.\d+\.\d+\.\d+)/.exec(r.out)?.[1] : undefined;
  return src && !src.startsWith("127.") ? src : null;
}

/**
 * Make sure Firefox will gather a host candidate: keep the machine's route towards 8.8.8.8
 * when it has one with a non-loopback source, or else create (idempotently) the veth pair
 * `kvsff0`/`kvsff1`, 198.18.96.1/30 on `kvsff0`, and the host route `8.8.8.8/32 dev kvsff0`.
 * Needs `ip` (iproute2) and CAP_NET_ADMIN for the veth; throws one line saying which is missing.
 *
 * @example
 * ```ts
 * import { ensureFirefoxNetwork } from "./firefox.ts";
 * const net = await ensureFirefoxNetwork();
 * console.log(net.note); // e.g. "Firefox gathers 192.0.2.2 (the machine's route to 8.8.8.8)"
 * ```
 */
export async function ensureFirefoxNetwork(): Promise<FirefoxNetwork> {
  const probe = await ip("-4", "route", "get", PROBE);
  if (probe.missing) {
    const nonLoopback = Deno.networkInterfaces().find((i) =>
      i.family === "IPv4" && !i.address.startsWith("127.")
    );
    if (nonLoopback) {
      return {
        address: nonLoopback.address,
        via: "existing",
        note: `\`ip\` missing: assuming Firefox gathers ${nonLoopback.address}`,
      };
    }
    throw new Error(
      "Firefox gathers no ICE candidate with only a loopback interface, and `ip` (iproute2) " +
        "is missing to create a veth pair: apt-get install iproute2",
    );
  }
  const existing = await probeSource();
  if (existing === FIREFOX_VETH_ADDRESS) {
    return {
      address: existing,
      via: "veth",
      note: `Firefox gathers ${existing} on veth ${FIREFOX_VETH} (made earlier; route to ${PROBE})`,
    };
  }
  if (existing) {
    return {
      address: existing,
      via: "existing",
      note: `Firefox gathers ${existing} (the machine's route to ${PROBE})`,
    };
  }
  const steps: string[][] = [];
  const link = await ip("-4", "-o", "addr", "show", "dev", FIREFOX_VETH);
  if (!link.ok) {
    steps.push(["link", "add", FIREFOX_VETH, "type", "veth", "peer", "name", "kvsff1"]);
  }
  if (!link.ok || !link.out.includes(`${FIREFOX_VETH_ADDRESS}/`)) {
    steps.push(["addr", "add", `${FIREFOX_VETH_ADDRESS}/30`, "dev", FIREFOX_VETH]);
  }
  steps.push(["link", "set", FIREFOX_VETH, "up"], ["link", "set", "kvsff1", "up"]);
  steps.push(["route", "replace", `${PROBE}/32`, "dev", FIREFOX_VETH]);
  for (const args of steps) {
    const r = await ip(...args);
    if (!r.ok) {
      const perm = /not permitted|permission/i.test(r.out) ? " (needs root or CAP_NET_ADMIN)" : "";
      throw new Error(
        `Firefox gathers no ICE candidate with only a loopback interface, and creating its ` +
          `veth pair failed${perm}: ip ${args.join(" ")}: ${r.out}`,
      );
    }
  }
  const now = await probeSource();
  if (now !== FIREFOX_VETH_ADDRESS) {
    throw new Error(
      `veth ${FIREFOX_VETH} is set up but the route to ${PROBE} leaves from ${now ?? "nowhere"}`,
    );
  }
  return {
    address: FIREFOX_VETH_ADDRESS,
    via: "veth",
    note: `Firefox gathers ${FIREFOX_VETH_ADDRESS} on veth ${FIREFOX_VETH} (route to ${PROBE})`,
  };
}

/**
 * Why Firefox tests cannot run here (no Firefox ESR, or no FFmpeg for its H.264 decoder), or
 * null when they can.
 *
 * @example
 * ```ts
 * import { firefoxUnavailable } from "./firefox.ts";
 * console.log((await firefoxUnavailable()) ?? "Firefox ESR is here");
 * ```
 */
export async function firefoxUnavailable(executablePath = firefoxPath()): Promise<string | null> {
  const exists = async (p: string) => await Deno.stat(p).then((s) => s.isFile, () => false);
  if (!(await exists(executablePath))) {
    return `${executablePath} not found: apt-get install -y firefox-esr libavcodec59`;
  }
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]) {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (/^libavcodec\.so\.\d+/.test(e.name)) return null;
      }
    } catch {
      // no such folder
    }
  }
  return "no libavcodec for Firefox's H.264 decoder: apt-get install -y libavcodec59";
}

function firefoxPath(): string {
  return Deno.env.get("FIREFOX_PATH") ?? FIREFOX_PATH;
}

/** Options of {@link launchFirefox}. */
export interface FirefoxLaunchOptions {
  /** Firefox binary (default `/usr/bin/firefox-esr` or `$FIREFOX_PATH`). */
  executablePath?: string;
  /** More preferences, or overrides of {@link FIREFOX_PREFS} (e.g. the H.264 ones off). */
  prefs?: Record<string, boolean | number | string>;
  /** Launch timeout, ms (default 30 000). */
  launchTimeoutMs?: number;
  /** Timeout of each command sent to the browser, ms (default 30 000). */
  protocolTimeoutMs?: number;
  /** Kill the browser after this long even if nobody closed it, ms (default 180 000). */
  maxLifetimeMs?: number;
  /** Run {@link ensureFirefoxNetwork} first (default true). */
  network?: boolean;
}

/** A launched Firefox: the shared test-browser shape, with what was done for its network. */
export interface TestFirefox extends TestBrowser<Browser, Page> {
  /** What {@link ensureFirefoxNetwork} found or did (null with `network: false`). */
  network: FirefoxNetwork | null;
}

/**
 * Launch headless Firefox ESR with {@link FIREFOX_PREFS}, after making sure it will gather an
 * ICE candidate ({@link ensureFirefoxNetwork}).
 *
 * @example
 * ```ts
 * import { launchFirefox } from "./firefox.ts";
 * const browser = await launchFirefox();
 * try {
 *   const viewer = await browser.openViewer({ pageUrl: "http://127.0.0.1:8080/" });
 *   await viewer.waitFor((s) => s.state === "idle", 5_000, "the idle page");
 * } finally {
 *   await browser.close();
 * }
 * ```
 */
export async function launchFirefox(options: FirefoxLaunchOptions = {}): Promise<TestFirefox> {
  const network = options.network === false ? null : await ensureFirefoxNetwork();
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: options.executablePath ?? firefoxPath(),
    headless: true,
    timeout: options.launchTimeoutMs ?? 30_000,
    protocolTimeout: options.protocolTimeoutMs ?? 30_000,
    extraPrefsFirefox: { ...FIREFOX_PREFS, ...options.prefs },
    // Certificates from a private CA accepted (the emulator's), as Chromium's
    // --ignore-certificate-errors: this reaches Firefox's TURN over TLS too.
    acceptInsecureCerts: true,
  });
  const contexts = new Set<BrowserContext>();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    clearTimeout(watchdog);
    const graceful = (async () => {
      for (const c of contexts) await c.close().catch(() => {});
      await browser.close().catch(() => {});
    })();
    let timer: number | undefined;
    const late = new Promise<"late">((r) => timer = Number(setTimeout(() => r("late"), 10_000)));
    if (await Promise.race([graceful.then(() => "done" as const), late]) === "late") {
      console.error("test Firefox did not close in 10 s: killing it");
      browser.process()?.kill("SIGKILL");
    }
    clearTimeout(timer);
  };
  const watchdog = Number(setTimeout(() => {
    console.error("test Firefox outlived its maximum lifetime: closing it");
    close();
  }, options.maxLifetimeMs ?? 180_000));
  Deno.unrefTimer(watchdog);

  const openViewer = async (o: OpenViewerOptions): Promise<ViewerPage<Page>> => {
    const context = await browser.createBrowserContext();
    contexts.add(context);
    try {
      const page = await context.newPage();
      const lines: string[] = [];
      page.on("console", (m) => lines.push(`${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => lines.push(`pageerror: ${(e as Error).message ?? e}`));
      await page.goto(viewerUrl(o), { timeout: o.loadTimeoutMs ?? 15_000, waitUntil: "load" });
      const status = async () => await page.evaluate(readViewerState) as ViewerStatus;
      return {
        page,
        console: lines,
        status,
        waitFor: (pred, timeoutMs, what) => pollViewerStatus(status, pred, timeoutMs, what),
        close: async () => {
          contexts.delete(context);
          await context.close().catch(() => {});
        },
      };
    } catch (e) {
      contexts.delete(context);
      await context.close().catch(() => {});
      throw e;
    }
  };
  return { browser, network, openViewer, close };
}
