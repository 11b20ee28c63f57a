/**
 * The impaired-link scenario shared by `tests/impaired_link_test.ts` and
 * `bench/impaired_link.ts`: one relay-only Chromium viewer (the viewer page of `web/`, official
 * KVS JS SDK) whose only TURN server is a {@link UdpLink} in front of the emulator's coturn, so
 * every packet between coturn and the browser, both ways, crosses the impaired link.
 *
 * The page is not changed. The test harness rewrites the answer of
 * `/v1/get-ice-server-config` the page fetches (Playwright route): only the `turn:…?transport=udp`
 * URLs stay, their port replaced by the link's. An init script keeps the page's
 * RTCPeerConnections and records, in the page:
 *
 * - every 100 ms, `getStats()` inbound-rtp video: framesDecoded (framesPresented where the
 *   browser has it), frameWidth/frameHeight, jitterBufferDelay, nackCount, pliCount, …;
 * - every presented frame (`requestVideoFrameCallback` on the page's `<video>`): its
 *   presentation time and size. Without it, frames counted by the stats stand in.
 *
 * {@link runLinkScenario} plays: join (link lifted) until the viewer decodes, a baseline, the
 * impairment, then the link lifted; {@link analyzeLinkRun} turns what was recorded into
 * {@link LinkFigures} (gaps, freeze time, rendition switches, bytes offered to the link by the
 * TURN → viewer direction against the link rate) and {@link formatFigures} prints them.
 *
 * @module
 */
import type { Browser, BrowserContext } from "playwright-core";
import {
  type LinkCounters,
  type LinkLimits,
  type LinkSeries,
  maxWindowBps,
  seriesTotal,
  type UdpLink,
} from "./link_emulator.ts";
import { bounded } from "./until.ts";
import { loadViewerPage, type ViewerPage, type ViewerStatus, viewerUrl } from "./browser.ts";

/**
 * The link the issue describes: 1.5 Mbit/s (a queue of 250 ms at that rate), 2 % loss, 40 ms
 * one-way delay, both ways.
 *
 * @example
 * ```ts
 * import { IMPAIRED_LINK } from "./link_scenario.ts";
 * console.log(IMPAIRED_LINK.rateBps); // 1 500 000
 * ```
 */
export const IMPAIRED_LINK: Readonly<LinkLimits> = Object.freeze({
  rateBps: 1_500_000,
  queueMs: 250,
  lossRate: 0.02,
  delayMs: 40,
});

/** Gaps between presented frames longer than this count as freezes, ms. */
export const FREEZE_GAP_MS = 200;

/**
 * Runs in the page before its scripts (an init script): keeps every RTCPeerConnection, samples
 * inbound-rtp video every 100 ms and logs presented frames, into `globalThis.__linkProbe`
 * (bounded: the latest 20 000 of each).
 */
const PAGE_PROBE = `(() => {
  if (globalThis.__linkProbe) return;
  const MAX = 20000;
  const probe = { stats: [], frames: [], keys: null, rvfc: false };
  globalThis.__linkProbe = probe;
  const epoch = (t) => performance.timeOrigin + t;
  const Original = globalThis.RTCPeerConnection;
  const pcs = [];
  if (Original) {
    globalThis.RTCPeerConnection = class extends Original {
      constructor(...a) {
        super(...a);
        pcs.push(this);
      }
    };
  }
  let busy = false;
  setInterval(() => {
    const pc = pcs[pcs.length - 1];
    if (!pc || busy) return;
    busy = true;
    pc.getStats().then((report) => {
      let rtt = null;
      report.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) {
          const pair = report.get(s.selectedCandidatePairId);
          if (pair && typeof pair.currentRoundTripTime === "number") rtt = pair.currentRoundTripTime * 1000;
        }
      });
      report.forEach((s) => {
        if (s.type !== "inbound-rtp" || s.kind !== "video") return;
        if (!probe.keys) probe.keys = Object.keys(s).sort();
        probe.stats.push({
          t: epoch(performance.now()),
          framesDecoded: s.framesDecoded ?? 0,
          framesPresented: s.framesPresented ?? null,
          framesReceived: s.framesReceived ?? 0,
          framesDropped: s.framesDropped ?? 0,
          frameWidth: s.frameWidth ?? 0,
          frameHeight: s.frameHeight ?? 0,
          jitterBufferDelay: s.jitterBufferDelay ?? 0,
          jitterBufferEmittedCount: s.jitterBufferEmittedCount ?? 0,
          nackCount: s.nackCount ?? 0,
          pliCount: s.pliCount ?? 0,
          firCount: s.firCount ?? 0,
          packetsLost: s.packetsLost ?? 0,
          packetsReceived: s.packetsReceived ?? 0,
          bytesReceived: s.bytesReceived ?? 0,
          keyFramesDecoded: s.keyFramesDecoded ?? 0,
          rttMs: rtt,
        });
        if (probe.stats.length > MAX) probe.stats.shift();
      });
    }).catch(() => {}).finally(() => busy = false);
  }, 100);
  const watch = () => {
    const video = document.getElementById("video");
    if (!video || !("requestVideoFrameCallback" in video)) return;
    probe.rvfc = true;
    const onFrame = (_now, m) => {
      probe.frames.push([epoch(m.presentationTime ?? _now), m.presentedFrames ?? 0, m.width, m.height]);
      if (probe.frames.length > MAX) probe.frames.shift();
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  if (document.readyState === "loading") addEventListener("DOMContentLoaded", watch);
  else watch();
})();`;

/**
 * One getStats sample of the viewer's inbound-rtp video (`t`: ms since the epoch).
 *
 * @example
 * ```ts
 * import type { StatsSample } from "./link_scenario.ts";
 * declare const s: StatsSample;
 * console.log(s.framesDecoded, s.frameHeight);
 * ```
 */
export interface StatsSample {
  t: number;
  framesDecoded: number;
  /** `framesPresented` where the browser reports it, else null. */
  framesPresented: number | null;
  framesReceived: number;
  framesDropped: number;
  frameWidth: number;
  frameHeight: number;
  /** Seconds, cumulative (divide by jitterBufferEmittedCount for the mean). */
  jitterBufferDelay: number;
  jitterBufferEmittedCount: number;
  nackCount: number;
  pliCount: number;
  firCount: number;
  packetsLost: number;
  packetsReceived: number;
  bytesReceived: number;
  keyFramesDecoded: number;
  /** The selected candidate pair's currentRoundTripTime, ms (null before one). */
  rttMs: number | null;
}

/**
 * What the page recorded: stats samples, presented frames (`[epoch ms, presentedFrames, width,
 * height]`), the inbound-rtp keys the browser reports, whether requestVideoFrameCallback ran.
 *
 * @example
 * ```ts
 * import type { PageProbe } from "./link_scenario.ts";
 * declare const p: PageProbe;
 * console.log(p.frames.length, p.rvfc);
 * ```
 */
export interface PageProbe {
  stats: StatsSample[];
  frames: [number, number, number, number][];
  keys: string[] | null;
  rvfc: boolean;
}

/**
 * A viewer page whose TURN server is the link.
 *
 * @example
 * ```ts
 * import type { LinkedViewer } from "./link_scenario.ts";
 * declare const v: LinkedViewer;
 * await v.waitFor((s) => s.framesDecoded > 0, 20_000, "first frame");
 * console.log(v.iceConfigsRewritten(), (await v.probe()).frames.length);
 * await v.close();
 * ```
 */
export interface LinkedViewer extends ViewerPage {
  /** Everything the page recorded so far. */
  probe(): Promise<PageProbe>;
  /** How many ICE configurations the page fetched (and got rewritten). */
  iceConfigsRewritten(): number;
}

/**
 * Options of {@link openLinkedViewer}.
 *
 * @example
 * ```ts
 * import type { LinkedViewerOptions } from "./link_scenario.ts";
 * declare const o: LinkedViewerOptions;
 * console.log(o.turnPort, o.linkPort);
 * ```
 */
export interface LinkedViewerOptions {
  /** The viewer page's base URL (`serveViewer().url`). */
  pageUrl: string;
  /** Page parameters (channel, region, endpoint, keys, …); `forceTurn` and `autostart` are set. */
  params: Record<string, string | boolean | undefined>;
  /** coturn's UDP port, as the emulator's ICE configuration lists it. */
  turnPort: number;
  /** The link's front port, which the page gets instead. */
  linkPort: number;
}

/**
 * `turn:` URLs over UDP to `turnPort` with the port replaced by `linkPort`; everything else
 * (TLS, TCP, other servers) removed. Servers left without a URL are dropped.
 *
 * @example
 * ```ts
 * import { rewriteIceServers } from "./link_scenario.ts";
 * const out = rewriteIceServers({
 *   IceServerList: [{ Uris: ["turn:127.0.0.1:3478?transport=udp", "turns:127.0.0.1:5349?transport=tcp"] }],
 * }, 3478, 40000);
 * console.log(out.IceServerList[0].Uris); // ["turn:127.0.0.1:40000?transport=udp"]
 * ```
 */
export function rewriteIceServers(
  config: { IceServerList?: { Uris?: string[]; [k: string]: unknown }[]; [k: string]: unknown },
  turnPort: number,
  linkPort: number,
): { IceServerList: { Uris: string[]; [k: string]: unknown }[]; [k: string]: unknown } {
  const list = (config.IceServerList ?? []).map((s) => ({
    ...s,
    Uris: (s.Uris ?? [])
      .filter((u) => u === `turn:127.0.0.1:${turnPort}?transport=udp`)
      .map(() => `turn:127.0.0.1:${linkPort}?transport=udp`),
  })).filter((s) => s.Uris.length > 0);
  return { ...config, IceServerList: list };
}

/**
 * Open the viewer page relay-only in a fresh context of `browser`, its TURN server the link.
 *
 * @example
 * ```ts
 * import { launchBrowser } from "./browser.ts";
 * import { openLinkedViewer } from "./link_scenario.ts";
 * const browser = await launchBrowser();
 * const v = await openLinkedViewer(browser.browser, {
 *   pageUrl: "http://127.0.0.1:8080/", params: {}, turnPort: 3478, linkPort: 40000,
 * });
 * await v.close();
 * await browser.close();
 * ```
 */
export async function openLinkedViewer(
  browser: Browser,
  o: LinkedViewerOptions,
): Promise<LinkedViewer> {
  const context: BrowserContext = await browser.newContext();
  let rewritten = 0;
  try {
    const origin = new URL(o.pageUrl).origin;
    await context.grantPermissions(["camera", "microphone"], { origin });
    await context.addInitScript({ content: PAGE_PROBE });
    await context.route("**/v1/get-ice-server-config", async (route) => {
      try {
        const response = await route.fetch({ timeout: 10_000 });
        if (!response.ok()) return await route.fulfill({ response });
        const json = rewriteIceServers(await response.json(), o.turnPort, o.linkPort);
        rewritten++;
        await route.fulfill({ response, json });
      } catch {
        await route.abort().catch(() => {});
      }
    });
    const page = await context.newPage();
    const url = viewerUrl({
      pageUrl: o.pageUrl,
      params: { ...o.params, forceTurn: "1", autostart: "1" },
    });
    const viewer = await loadViewerPage(page, url, 20_000);
    return {
      ...viewer,
      probe: async () =>
        await bounded(
          page.evaluate(() => {
            const p = (globalThis as unknown as { __linkProbe?: unknown }).__linkProbe;
            return JSON.parse(JSON.stringify(p ?? { stats: [], frames: [], keys: null }));
          }),
          15_000,
          "page probe",
        ) as PageProbe,
      iceConfigsRewritten: () => rewritten,
      close: () => bounded(context.close(), 10_000, "close viewer").catch(() => {}),
    };
  } catch (e) {
    await bounded(context.close(), 10_000, "close viewer").catch(() => {});
    throw e;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const epochNow = () => performance.timeOrigin + performance.now();

/**
 * The phases of {@link runLinkScenario}, ms.
 *
 * @example
 * ```ts
 * import type { LinkPhases } from "./link_scenario.ts";
 * const p: LinkPhases = { baselineMs: 3000, impairedMs: 15_000, liftedMs: 10_000 };
 * ```
 */
export interface LinkPhases {
  /** Playing over the lifted link before the impairment. */
  baselineMs: number;
  /** With the impairment. */
  impairedMs: number;
  /** Lifted again. */
  liftedMs: number;
}

/**
 * What one run recorded. Times are ms since the epoch.
 *
 * @example
 * ```ts
 * import type { LinkRun } from "./link_scenario.ts";
 * declare const run: LinkRun;
 * console.log(run.liftAt - run.impairAt);
 * ```
 */
export interface LinkRun {
  limits: LinkLimits;
  /** The viewer decoded its first frames. */
  playingAt: number;
  impairAt: number;
  liftAt: number;
  endAt: number;
  probe: PageProbe;
  /** The link's series and counters at the end; `down` is TURN → viewer. */
  down: { series: LinkSeries; counters: LinkCounters };
  up: { series: LinkSeries; counters: LinkCounters };
  /** The link's counters when the impairment started and when it was lifted. */
  atImpair: { down: LinkCounters; up: LinkCounters };
  atLift: { down: LinkCounters; up: LinkCounters };
  /** The page's status at the end. */
  status: ViewerStatus;
}

/**
 * Play the scenario on a viewer that is already playing: baseline (link lifted), impairment
 * (`limits` both ways), lifted. Calls `onPhase` as each phase starts.
 *
 * @example
 * ```ts
 * import { IMPAIRED_LINK, runLinkScenario, type LinkedViewer } from "./link_scenario.ts";
 * import type { UdpLink } from "./link_emulator.ts";
 * declare const viewer: LinkedViewer, link: UdpLink;
 * const run = await runLinkScenario(viewer, link, IMPAIRED_LINK, {
 *   baselineMs: 3000, impairedMs: 15_000, liftedMs: 10_000,
 * });
 * ```
 */
export async function runLinkScenario(
  viewer: LinkedViewer,
  link: UdpLink,
  limits: LinkLimits,
  phases: LinkPhases,
  onPhase?: (phase: "baseline" | "impaired" | "lifted", status: ViewerStatus) => void,
): Promise<LinkRun> {
  link.lift();
  const playingAt = epochNow();
  onPhase?.("baseline", await viewer.status());
  await sleep(phases.baselineMs);
  const atImpair = { down: link.counters("down"), up: link.counters("up") };
  link.setLimits(limits);
  const impairAt = epochNow();
  onPhase?.("impaired", await viewer.status());
  await sleep(phases.impairedMs);
  const atLift = { down: link.counters("down"), up: link.counters("up") };
  link.lift();
  const liftAt = epochNow();
  onPhase?.("lifted", await viewer.status());
  await sleep(phases.liftedMs);
  const endAt = epochNow();
  // The page's last samples are at most 100 ms old: wait for one after the end.
  await sleep(250);
  return {
    limits: { ...limits },
    playingAt,
    impairAt,
    liftAt,
    endAt,
    probe: await viewer.probe(),
    down: { series: link.series("down"), counters: link.counters("down") },
    up: { series: link.series("up"), counters: link.counters("up") },
    atImpair,
    atLift,
    status: await viewer.status(),
  };
}

/**
 * The figures of one run. Gaps are between consecutive presented frames; a window's trailing gap
 * (its end minus its last frame) counts too, so a picture that never comes back is a gap.
 *
 * @example
 * ```ts
 * import type { LinkFigures } from "./link_scenario.ts";
 * declare const f: LinkFigures;
 * console.log(f.longestGapMs.impairedAfterSettle, f.offered.maxBps / f.rateBps);
 * ```
 */
export interface LinkFigures {
  rateBps: number;
  /** Where presented frames came from. */
  framesFrom: "requestVideoFrameCallback" | "framesPresented" | "framesDecoded";
  /** Presented frames per phase. */
  frames: { baseline: number; impaired: number; lifted: number };
  /** Longest gaps, ms: impairment after `settleMs`, the whole impairment, after the lift. */
  longestGapMs: { baseline: number; impaired: number; impairedAfterSettle: number; lifted: number };
  /**
   * From the impairment to the end: the sum of the gaps longer than {@link FREEZE_GAP_MS}
   * (each counted whole), and how many.
   */
  freezeMs: number;
  freezes: number;
  /** Impairment start → first frame of at most 360 lines, ms; null if none. */
  toLowMs: number | null;
  /** Lift → first frame of at least 720 lines, ms; null if none. */
  toHighMs: number | null;
  /** Frame heights over time: each change, ms from the impairment start. */
  heights: { atMs: number; height: number }[];
  /**
   * Bytes the TURN → viewer direction offered to the link during the impairment (what the
   * master pushed, TURN framing included): highest 1 s window, after `settleMs`, and the mean.
   */
  offered: { maxBps: number; maxBpsAfterSettle: number; meanBps: number };
  /** Delivered by the link towards the viewer during the impairment: highest 1 s window, mean. */
  delivered: { maxBps: number; meanBps: number; liftedMeanBps: number; baselineMeanBps: number };
  /** The link's counters at the end: down (TURN → viewer) and up. */
  down: LinkCounters;
  up: LinkCounters;
  /** What the link did during the impairment, each way. */
  impaired: { down: PhaseCounts; up: PhaseCounts };
  /**
   * Median round trip time of the viewer's selected candidate pair per phase (samples from 2 s
   * into each), ms; null without samples.
   */
  rttMs: { baseline: number | null; impaired: number | null; lifted: number | null };
  /** The viewer's inbound-rtp during the impairment (deltas) and after the lift. */
  viewer: {
    nacks: number;
    plis: number;
    packetsLost: number;
    /** Mean jitter buffer delay, ms, per phase (null without frames emitted). */
    jitterBufferMs: { baseline: number | null; impaired: number | null; lifted: number | null };
    framesDecoded: number;
    keyFramesDecoded: number;
  };
  settleMs: number;
}

/**
 * Counter deltas of one direction over a phase.
 *
 * @example
 * ```ts
 * import type { PhaseCounts } from "./link_scenario.ts";
 * declare const p: PhaseCounts;
 * console.log(`${(p.lossShare * 100).toFixed(1)} % lost`);
 * ```
 */
export interface PhaseCounts {
  packetsIn: number;
  bytesIn: number;
  queueDrops: number;
  lossDrops: number;
  /** Random losses over the packets that got past the queue. */
  lossShare: number;
}

function phaseCounts(a: LinkCounters, b: LinkCounters): PhaseCounts {
  const packetsIn = b.packetsIn - a.packetsIn;
  const queueDrops = b.packetsDroppedQueue - a.packetsDroppedQueue;
  const lossDrops = b.packetsDroppedLoss - a.packetsDroppedLoss;
  return {
    packetsIn,
    bytesIn: b.bytesIn - a.bytesIn,
    queueDrops,
    lossDrops,
    lossShare: lossDrops / Math.max(1, packetsIn - queueDrops),
  };
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Gaps between `times` (sorted) within `[from, to)`: each the part of a gap between two frames
 * (or between the last frame and `to`) that lies in the window.
 */
function gaps(times: number[], from: number, to: number): number[] {
  const out: number[] = [];
  let prev = -Infinity;
  for (const t of times) {
    if (t >= to) break;
    if (t >= from) out.push(t - Math.max(prev, from));
    prev = t;
  }
  out.push(to - Math.max(prev, from));
  return out.filter((g) => g > 0);
}

/** The sample at or just before `t` (the first one if none). */
function sampleAt(stats: StatsSample[], t: number): StatsSample | undefined {
  let best: StatsSample | undefined = stats[0];
  for (const s of stats) {
    if (s.t <= t) best = s;
    else break;
  }
  return best;
}

/**
 * Figures of a run (see {@link LinkFigures}); `settleMs` (default 5000) is the time adaptation
 * gets after the impairment starts before its gaps and offered bytes are held to a bound.
 *
 * @example
 * ```ts
 * import { analyzeLinkRun, formatFigures, type LinkRun } from "./link_scenario.ts";
 * declare const run: LinkRun;
 * console.log(formatFigures("ours", analyzeLinkRun(run)));
 * ```
 */
export function analyzeLinkRun(run: LinkRun, settleMs = 5000): LinkFigures {
  const { probe, impairAt, liftAt, endAt, playingAt } = run;
  const rateBps = run.limits.rateBps ?? 0;
  // Presented frames: requestVideoFrameCallback, else the stats' counters.
  let framesFrom: LinkFigures["framesFrom"] = "requestVideoFrameCallback";
  let frames = probe.frames.map(([t, , , h]) => ({ t, h }));
  if (!probe.rvfc || frames.length === 0) {
    const key = probe.stats.some((s) => s.framesPresented !== null)
      ? "framesPresented"
      : "framesDecoded";
    framesFrom = key;
    frames = [];
    let prev = 0;
    for (const s of probe.stats) {
      const n = Number(s[key] ?? 0);
      if (n > prev && prev > 0) frames.push({ t: s.t, h: s.frameHeight });
      prev = Math.max(prev, n);
    }
  }
  frames.sort((a, b) => a.t - b.t);
  const times = frames.map((f) => f.t);
  const count = (from: number, to: number) => times.filter((t) => t >= from && t < to).length;
  const longest = (from: number, to: number) => Math.max(0, ...gaps(times, from, to));
  // Gaps that end after the settle time count whole (a freeze that began before it included).
  const settleAt = impairAt + settleMs;
  const afterSettle = (() => {
    let best = 0;
    let prev: number | undefined;
    for (const t of times) {
      if (t >= liftAt) break;
      if (prev !== undefined && t >= settleAt) best = Math.max(best, t - prev);
      prev = t;
    }
    if (prev !== undefined) best = Math.max(best, liftAt - prev);
    return best;
  })();
  const freezeGaps = gaps(times, impairAt, endAt).filter((g) => g > FREEZE_GAP_MS);
  const toLow = frames.find((f) => f.t >= impairAt && f.h > 0 && f.h <= 360);
  const toHigh = frames.find((f) => f.t >= liftAt && f.h >= 720);
  const heights: { atMs: number; height: number }[] = [];
  for (const f of frames) {
    if (f.t < playingAt || f.h <= 0) continue;
    if (heights.at(-1)?.height !== f.h) {
      heights.push({ atMs: Math.round(f.t - impairAt), height: f.h });
    }
  }
  // The link's series are on this process's performance clock; the marks are epoch ms.
  const toLink = (s: LinkSeries, t: number) => t - s.startEpochMs + s.startMs;
  const down = run.down.series;
  const [dImpair, dSettle, dLift, dEnd, dPlay] = [impairAt, settleAt, liftAt, endAt, playingAt]
    .map((t) => toLink(down, t));
  const mean = (kind: "offered" | "delivered", from: number, to: number) => {
    const { bytes, ms } = seriesTotal(down, kind, from, to);
    return ms > 0 ? bytes * 8000 / ms : 0;
  };
  const c = run.down.counters;
  const s0 = sampleAt(probe.stats, playingAt);
  const s1 = sampleAt(probe.stats, impairAt);
  const s2 = sampleAt(probe.stats, liftAt);
  const s3 = sampleAt(probe.stats, endAt);
  const jb = (a?: StatsSample, b?: StatsSample) => {
    if (!a || !b) return null;
    const n = b.jitterBufferEmittedCount - a.jitterBufferEmittedCount;
    return n > 0 ? (b.jitterBufferDelay - a.jitterBufferDelay) * 1000 / n : null;
  };
  const rtt = (from: number, to: number) =>
    median(
      probe.stats.filter((x) => x.t >= from + 2000 && x.t < to && x.rttMs !== null)
        .map((x) => x.rttMs!),
    );
  const delta = (k: keyof StatsSample) => Number(s2?.[k] ?? 0) - Number(s1?.[k] ?? 0);
  return {
    rateBps,
    framesFrom,
    frames: {
      baseline: count(playingAt, impairAt),
      impaired: count(impairAt, liftAt),
      lifted: count(liftAt, endAt),
    },
    longestGapMs: {
      baseline: longest(playingAt, impairAt),
      impaired: longest(impairAt, liftAt),
      impairedAfterSettle: afterSettle,
      lifted: longest(liftAt, endAt),
    },
    freezeMs: freezeGaps.reduce((a, b) => a + b, 0),
    freezes: freezeGaps.length,
    toLowMs: toLow ? toLow.t - impairAt : null,
    toHighMs: toHigh ? toHigh.t - liftAt : null,
    heights,
    offered: {
      maxBps: maxWindowBps(down, "offered", { fromMs: dImpair, toMs: dLift }),
      maxBpsAfterSettle: maxWindowBps(down, "offered", { fromMs: dSettle, toMs: dLift }),
      meanBps: mean("offered", dImpair, dLift),
    },
    delivered: {
      maxBps: maxWindowBps(down, "delivered", { fromMs: dImpair, toMs: dLift }),
      meanBps: mean("delivered", dImpair, dLift),
      liftedMeanBps: mean("delivered", dLift, dEnd),
      baselineMeanBps: mean("delivered", dPlay, dImpair),
    },
    down: c,
    up: run.up.counters,
    impaired: {
      down: phaseCounts(run.atImpair.down, run.atLift.down),
      up: phaseCounts(run.atImpair.up, run.atLift.up),
    },
    rttMs: {
      baseline: rtt(playingAt, impairAt),
      impaired: rtt(impairAt, liftAt),
      lifted: rtt(liftAt, endAt),
    },
    viewer: {
      nacks: delta("nackCount"),
      plis: delta("pliCount") + delta("firCount"),
      packetsLost: delta("packetsLost"),
      jitterBufferMs: { baseline: jb(s0, s1), impaired: jb(s1, s2), lifted: jb(s2, s3) },
      framesDecoded: delta("framesDecoded"),
      keyFramesDecoded: delta("keyFramesDecoded"),
    },
    settleMs,
  };
}

const mbps = (bps: number) => `${(bps / 1e6).toFixed(2)} Mbit/s`;
const ms = (x: number | null) => x === null ? "none" : `${Math.round(x)} ms`;

/**
 * The figures as a few lines, the first a one-line summary starting with `name`.
 *
 * @example
 * ```ts
 * import { formatFigures, type LinkFigures } from "./link_scenario.ts";
 * declare const f: LinkFigures;
 * console.log(formatFigures("ours", f));
 * ```
 */
export function formatFigures(name: string, f: LinkFigures): string {
  const h = f.heights.map((x) => `${x.height}@${(x.atMs / 1000).toFixed(1)}s`).join(" ");
  const jb = f.viewer.jitterBufferMs;
  const dn = f.impaired.down, up = f.impaired.up;
  const rtts = [f.rttMs.baseline, f.rttMs.impaired, f.rttMs.lifted]
    .map((x) => x === null ? "-" : x.toFixed(0)).join("/");
  const jbs = [jb.baseline, jb.impaired, jb.lifted].map((x) => x === null ? "-" : x.toFixed(0));
  return [
    `${name}: offered ${mbps(f.offered.maxBps)} max 1 s (${
      mbps(f.offered.maxBpsAfterSettle)
    } after ` +
    `${f.settleMs / 1000} s, mean ${mbps(f.offered.meanBps)}) into a ${mbps(f.rateBps)} link ` +
    `(${(f.offered.maxBpsAfterSettle / f.rateBps).toFixed(2)}×); longest gap ` +
    `${ms(f.longestGapMs.impairedAfterSettle)} after ${f.settleMs / 1000} s of impairment ` +
    `(${ms(f.longestGapMs.impaired)} in all, ${ms(f.longestGapMs.lifted)} after the lift); ` +
    `freeze ${ms(f.freezeMs)} in ${f.freezes} gaps > ${FREEZE_GAP_MS} ms; ` +
    `to 360 lines ${ms(f.toLowMs)}, ${
      f.toLowMs === null ? "first 720-line frame" : "back to 720"
    } ` +
    `${ms(f.toHighMs)} after the lift`,
    `  frames presented (${f.framesFrom}): baseline ${f.frames.baseline}, impaired ` +
    `${f.frames.impaired}, lifted ${f.frames.lifted}; heights ${h || "none"}`,
    `  link towards the viewer while impaired: delivered max ${mbps(f.delivered.maxBps)} ` +
    `(mean ${mbps(f.delivered.meanBps)}; baseline ${mbps(f.delivered.baselineMeanBps)}, ` +
    `lifted ${mbps(f.delivered.liftedMeanBps)}); packets in ${dn.packetsIn}, queue drops ` +
    `${dn.queueDrops}, random losses ${dn.lossDrops} (${(dn.lossShare * 100).toFixed(1)} %); ` +
    `peak queue ${f.down.peakQueueBytes} B; up: ${up.packetsIn} packets, ${up.lossDrops} lost ` +
    `(${(up.lossShare * 100).toFixed(1)} %); pair RTT ms baseline/impaired/lifted ${rtts}`,
    `  viewer while impaired: NACKs ${f.viewer.nacks}, PLIs/FIRs ${f.viewer.plis}, packets lost ` +
    `${f.viewer.packetsLost}, frames decoded ${f.viewer.framesDecoded} ` +
    `(${f.viewer.keyFramesDecoded} key); jitter buffer ms baseline/impaired/lifted ${
      jbs.join("/")
    }`,
  ].join("\n");
}
