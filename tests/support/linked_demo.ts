/**
 * The set-up the link tests share: the demo (master + emulator with coturn, loopback only), a
 * {@link import("./link_emulator.ts").UdpLink} in front of coturn, and one relay-only Chromium
 * viewer whose TURN server is the link ({@link openLinkedViewer}); everything closed afterwards,
 * whatever happens.
 *
 * @module
 */
import { type Demo, startDemo } from "../../cli/demo.ts";
import { silentLogger } from "../../src/log.ts";
import { launchBrowser } from "./browser.ts";
import { startUdpLink, type UdpLink } from "./link_emulator.ts";
import { type LinkedViewer, openLinkedViewer } from "./link_scenario.ts";

/** Options of {@link withLinkedViewer}. */
export interface LinkedDemoOptions {
  /** Channel name prefix (a random suffix is added). */
  channel: string;
  /** The link's random seed (its losses). */
  seed: number;
  /** Frames folder(s) for the master (default: the demo's, the samples' ladder). */
  frames?: string | readonly string[];
  /** The browser's whole lifetime, ms. */
  maxLifetimeMs: number;
}

/** What {@link withLinkedViewer} hands over, all running. */
export interface LinkedDemo {
  demo: Demo;
  link: UdpLink;
  viewer: LinkedViewer;
}

/**
 * Run `fn` with the demo connected to signaling and one linked viewer's page open (not yet
 * necessarily playing); close the page, browser, link and demo after it.
 *
 * @example
 * ```ts
 * import { withLinkedViewer } from "./linked_demo.ts";
 * await withLinkedViewer({ channel: "x", seed: 1, maxLifetimeMs: 60_000 }, async ({ viewer }) => {
 *   await viewer.waitFor((s) => s.framesDecoded > 0, 30_000, "a frame");
 * });
 * ```
 */
export async function withLinkedViewer<T>(
  o: LinkedDemoOptions,
  fn: (d: LinkedDemo) => Promise<T>,
): Promise<T> {
  const demo = await startDemo({
    loopbackOnly: true,
    stateDir: new URL("../../.kvs-emulator/", import.meta.url).pathname,
    channel: `${o.channel}-${crypto.randomUUID().slice(0, 8)}`,
    logger: silentLogger,
    turn: true,
    frames: o.frames,
  });
  const turnPort = demo.emulator.turn!.port;
  const link = startUdpLink({ target: { port: turnPort }, seed: o.seed });
  const browser = await launchBrowser({ maxLifetimeMs: o.maxLifetimeMs });
  try {
    await demo.master.waitForState("Connected", 15_000);
    const viewer = await openLinkedViewer(browser.browser, {
      pageUrl: demo.pageUrl,
      params: Object.fromEntries(new URL(demo.viewerUrl).searchParams),
      turnPort,
      linkPort: link.port,
    });
    try {
      return await fn({ demo, link, viewer });
    } finally {
      await viewer.close();
    }
  } finally {
    await browser.close();
    await link.close();
    await demo.close();
  }
}
