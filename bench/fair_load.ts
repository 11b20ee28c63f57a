/**
 * `deno task bench:load`: a master under load, ours against the strongest pure-TypeScript
 * reference, driven by the same real browser viewers in the same run.
 *
 * The two masters, each a separate process measured alone:
 * - **ours**: `bench/master_proc.ts` (Deno): `startMaster` with `WasmPeerSessionFactory` — the
 *   product, with ICE, DTLS and H.264 → RTP → SRTP in the WASM media core;
 * - **werift**: `bench/werift_master.mjs` under Node (werift's home runtime): werift
 *   RTCPeerConnections for SDP, ICE and DTLS, each frame packetized once by werift's
 *   H264Packetizer and the same RtpPackets sent by every viewer's RTCRtpSender (its own SRTP).
 *   It signs in with IoT credentials and SigV4 like ours. werift is installed with npm into
 *   `bench/.build` on first use.
 *
 * Both stream `samples/h264` (720p25, Annex-B, one file per frame, IDR every 25 frames) looped
 * at 25 fps; every viewer starts at an IDR, PLIs make the source jump to its next IDR (at most
 * one request per 500 ms). With it both send the Opus packets of `samples/opus/tones.opus`
 * (20 ms each, looped in step with the video), and both answer the viewer's data channel and
 * would echo its messages (the viewers send none: the channel is open and idle). Ours opens the
 * file as the master command does (`FileAudioSource.follow`); for werift the parent reads the
 * packets once with our Ogg Opus reader into `bench/.build/` and the Node master makes one
 * RtpPacket of each and hands it to every viewer's audio RTCRtpSender (its own SRTP).
 * Everything runs on loopback against the local emulator (`src/emulator/`: IoT over mutual TLS,
 * SigV4-checked control plane and signaling, no TURN).
 *
 * Viewers: headless Chromium (`/usr/bin/chromium` through `npm:playwright-core`, the flags of
 * tests/support/browser.ts and tests/e2e_test.ts) opening the viewer page of `web/` (official KVS WebRTC JS SDK), one
 * page in its own browser context per viewer. The page offers video recvonly, audio recvonly
 * (`mic=0`) and the `kvsDataChannel` data channel, and sends no message on it (`ping=0`). The
 * page is not changed: an init script keeps the page's RTCPeerConnections, and `getStats()`
 * inbound-rtp video gives framesDecoded, nackCount, pliCount, firCount, inbound-rtp audio the
 * audio packets received; the data channel's state is the page's `viewerState.dataChannel.state`;
 * TTFF (offer sent → first decoded frame) is the page's own `viewerState.ttffMs`.
 *
 * For each master (the order alternates between runs), after the master is connected to
 * signaling with no viewer: CPU over a short idle window and memory; then for each N of
 * `--viewers` (viewers join to reach N, each step keeps the previous viewers): wait until all
 * N decode, receive audio and have their data channel open (at most 30 s; the rest count as
 * never decoding), let it settle, then over the `--window`: the master process's CPU share of
 * one core (utime + stime of every thread, from `/proc/<pid>/stat`), its PSS at the end
 * (`/proc/<pid>/smaps_rollup`) and the growth per viewer over the idle PSS, the NACKs, PLIs and
 * FIRs the viewers sent, the frames they decoded and the audio packets they received during the
 * window (from the browsers), how many never decoded a frame, and how many data channels were
 * open at its end — so the table shows both masters did the same work.
 * The browsers are separate processes and are not counted. Each master's own session counters
 * over the same window give the frames and audio packets it sent per viewer and second (rows
 * "sent"; the viewers' inbound-rtp audio also counts packets lost on the way), and its packets
 * sent, NACKs and PLIs received and data channel messages are printed for cross-checking.
 *
 * Usage: deno run -A bench/fair_load.ts [--runs 1] [--viewers 1,3,10] [--window 20]
 *   [--settle 3] [--frames samples/h264] [--audio samples/opus/tones.opus] [--only ours|werift]
 * With `--runs` > 1, the table shows the median of the runs.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { Emulator } from "../src/emulator/mod.ts";
import { masterCommand, type MasterKind, masterKinds, spawnMaster } from "./master_process.ts";
import { benchViewerUrl, closeViewerPage, openViewerPage, pollPages } from "./viewer_pages.ts";
import { startViewerStage } from "./viewer_stage.ts";
import { bounded, BUILD, prepareWerift, ROOT, sleep } from "./werift_setup.ts";

const root = ROOT;
const build = BUILD;

const args = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "1" },
    viewers: { type: "string", default: "1,3,10" },
    window: { type: "string", default: "20" },
    settle: { type: "string", default: "3" },
    frames: { type: "string", default: `${root}samples/h264` },
    audio: { type: "string", default: `${root}samples/opus/tones.opus` },
    only: { type: "string" },
  },
});
const RUNS = Math.max(1, Number(args.values.runs));
const STEPS = args.values.viewers!.split(",").map(Number).filter((n) => n > 0)
  .sort((a, b) => a - b);
const WINDOW_S = Number(args.values.window);
const SETTLE_S = Number(args.values.settle);
const FRAMES = args.values.frames!;
const AUDIO = args.values.audio!;
/** The Opus packets of `AUDIO` for the werift master: records of a 2-byte length and a packet. */
const OPUS_PACKETS = `${build}/audio.opus-packets`;
const JOIN_TIMEOUT_MS = 30_000;
/** Joiners slower than this to their first frame get a line in the notes. */
const SLOW_TTFF_MS = 3000;
const IDLE_S = 3;
if (STEPS.length === 0 || STEPS.at(-1)! > 10 || !(WINDOW_S > 0)) {
  console.error("--viewers takes 1 to 10 viewers per step (e.g. 1,3,10); --window seconds > 0");
  Deno.exit(2);
}

type Kind = MasterKind;
const KINDS: Kind[] = masterKinds(args.values.only);

// ---- /proc ---------------------------------------------------------------------------------

const CLK_TCK = 100;

/** utime + stime of every thread of `pid`, in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** Proportional set size of `pid`, kB. */
function pssKb(pid: number): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`).match(/^Pss:\s+(\d+) kB/m);
  return m ? Number(m[1]) : NaN;
}

/** CPU share of one core used by `pid` while `during` runs, %. */
async function cpuPercent(pid: number, during: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  const c0 = cpuTicks(pid);
  await during();
  const seconds = (performance.now() - t0) / 1000;
  return (cpuTicks(pid) - c0) / CLK_TCK / seconds * 100;
}

// ---- masters -------------------------------------------------------------------------------

/** One session as a master reports it. */
interface SessionStats {
  viewerId: string;
  state: string;
  packetsSent: number;
  framesSent: number;
  nacksReceived: number;
  plisReceived: number;
  firsReceived?: number;
  packetsRetransmitted: number;
  audioPacketsSent?: number;
  dataMessagesReceived?: number;
  /** The master's own offer → answer time for this session, ms (ours reports it). */
  offerToAnswerMs?: number;
}

interface MasterLine {
  viewers: number;
  hotPaths: string[];
  packets: number;
  stats: SessionStats[];
}

interface MasterProcess {
  kind: Kind;
  pid: number;
  channel: string;
  runtime: string;
  /** The last stats line. */
  last(): MasterLine;
  /** The next stats line (the master prints one a second). */
  next(): Promise<MasterLine>;
  /** The master's stderr so far (for failures). */
  stderr(): string;
  /** Lines the master printed about sessions ending or failing, so far. */
  events(): string[];
  stop(): Promise<void>;
}

async function startMasterProcess(
  kind: Kind,
  env: Record<string, string>,
  caCertPath: string,
  nodeRuntime: string,
): Promise<MasterProcess> {
  const channel = `fair-${kind}-${crypto.randomUUID().slice(0, 8)}`;
  const argv = kind === "ours"
    ? [
      // Experiments only (e.g. V8 tiering flags); the published figures use none.
      ...(Deno.env.get("BENCH_OURS_V8_FLAGS")
        ? [`--v8-flags=${Deno.env.get("BENCH_OURS_V8_FLAGS")}`]
        : []),
      `${root}bench/master_proc.ts`,
      channel,
      "wasm",
      FRAMES,
      AUDIO,
    ]
    : [channel, FRAMES, "25", OPUS_PACKETS];
  const events: string[] = [];
  let last: MasterLine = { viewers: 0, hotPaths: [], packets: 0, stats: [] };
  let waiters: ((l: MasterLine) => void)[] = [];
  const master = await spawnMaster(masterCommand(kind, argv, { env, caCertPath }), {
    name: kind,
    onStderrLine: (l) => {
      if (/ left: |^error/.test(l)) events.push(l.trim());
    },
    onStats: (stats) => {
      last = stats as MasterLine;
      const w = waiters;
      waiters = [];
      for (const f of w) f(last);
    },
  });
  return {
    kind,
    pid: master.pid,
    channel,
    runtime: kind === "ours" ? `Deno ${Deno.version.deno}` : nodeRuntime,
    last: () => last,
    next: () =>
      bounded(new Promise<MasterLine>((r) => waiters.push(r)), 5000, `${kind} master stats`)
        .catch(() => last),
    stderr: master.stderr,
    events: () => [...events],
    stop: master.stop,
  };
}

// ---- viewers -------------------------------------------------------------------------------

/**
 * Keeps every RTCPeerConnection the page makes, for getStats() from the benchmark, and notes
 * when (performance.now()) its offer was set and its ICE and peer connection got connected.
 */
const KEEP_PEER_CONNECTIONS = `(() => {
  const Original = globalThis.RTCPeerConnection;
  if (!Original || globalThis.__benchPcs) return;
  const list = [];
  globalThis.__benchPcs = list;
  globalThis.RTCPeerConnection = class extends Original {
    constructor(...a) {
      super(...a);
      const t = { offer: null, ice: null, peer: null };
      this.__benchTimes = t;
      list.push(this);
      this.addEventListener("iceconnectionstatechange", () => {
        if (this.iceConnectionState === "connected" && t.ice === null) t.ice = performance.now();
      });
      this.addEventListener("connectionstatechange", () => {
        if (this.connectionState === "connected" && t.peer === null) t.peer = performance.now();
      });
    }
    setLocalDescription(...a) {
      if (this.__benchTimes.offer === null) this.__benchTimes.offer = performance.now();
      return super.setLocalDescription(...a);
    }
  };
})();`;

/** What a viewer page reports. */
interface PageStats {
  state: string;
  clientId: string | null;
  connectionState: string;
  error: string | null;
  ttffMs: number | null;
  framesDecoded: number;
  nackCount: number;
  pliCount: number;
  firCount: number;
  packetsLost: number;
  packetsReceived: number;
  /** inbound-rtp audio packetsReceived, packetsLost. */
  audioPacketsReceived: number;
  audioPacketsLost: number;
  /** The page's `viewerState.audio.state` (negotiated, receiving, absent) or `none`. */
  audioState: string;
  /** The page's `viewerState.dataChannel.state` (open, absent, …) or `none`. */
  dataChannelState: string;
  /** Offer set → ICE connected, → peer (DTLS) connected, ms. */
  iceMs: number | null;
  dtlsMs: number | null;
}

interface Viewer {
  context: BrowserContext;
  page: Page;
  /** Current stats; when the page cannot answer, the last ones with state `unreachable`. */
  stats(): Promise<PageStats>;
  /** Whether any stats so far showed a decoded frame. */
  everDecoded: boolean;
  close(): Promise<void>;
}

const EMPTY_STATS: PageStats = {
  state: "unreachable",
  clientId: null,
  connectionState: "unknown",
  error: null,
  ttffMs: null,
  framesDecoded: 0,
  nackCount: 0,
  pliCount: 0,
  firCount: 0,
  packetsLost: 0,
  packetsReceived: 0,
  audioPacketsReceived: 0,
  audioPacketsLost: 0,
  audioState: "none",
  dataChannelState: "none",
  iceMs: null,
  dtlsMs: null,
};

async function openViewer(browser: Browser, url: string): Promise<Viewer> {
  const { context, page } = await openViewerPage(browser, url, {
    initScript: KEEP_PEER_CONNECTIONS,
    grantMedia: true,
  });
  let last: PageStats = { ...EMPTY_STATS };
  const stats = async (): Promise<PageStats> => {
    try {
      last = await bounded(
        // The counters start from EMPTY_STATS, handed in: the function runs in the page.
        page.evaluate(async (empty: PageStats) => {
          const g = globalThis as unknown as {
            __benchPcs?: {
              getStats(): Promise<Map<string, Record<string, unknown>>>;
              __benchTimes: { offer: number | null; ice: number | null; peer: number | null };
            }[];
            viewerState?: {
              state: string;
              error: string | null;
              ttffMs: number | null;
              clientId: string | null;
              connectionState: string;
              audio: { state: string } | null;
              dataChannel: { state: string } | null;
            };
          };
          const out: PageStats = {
            ...empty,
            state: g.viewerState?.state ?? "unknown",
            clientId: g.viewerState?.clientId ?? null,
            connectionState: g.viewerState?.connectionState ?? "unknown",
            error: g.viewerState?.error ?? null,
            ttffMs: g.viewerState?.ttffMs ?? null,
            audioState: g.viewerState?.audio?.state ?? "none",
            dataChannelState: g.viewerState?.dataChannel?.state ?? "none",
          };
          for (const pc of g.__benchPcs ?? []) {
            const t = pc.__benchTimes;
            if (t.offer !== null && t.ice !== null) out.iceMs = t.ice - t.offer;
            if (t.offer !== null && t.peer !== null) out.dtlsMs = t.peer - t.offer;
            const report = await pc.getStats();
            report.forEach((r: Record<string, unknown>) => {
              if (r.type !== "inbound-rtp") return;
              if (r.kind === "audio") {
                out.audioPacketsReceived += Number(r.packetsReceived ?? 0);
                out.audioPacketsLost += Number(r.packetsLost ?? 0);
                return;
              }
              if (r.kind !== "video") return;
              for (
                const k of [
                  "framesDecoded",
                  "nackCount",
                  "pliCount",
                  "firCount",
                  "packetsLost",
                  "packetsReceived",
                ] as const
              ) out[k] += Number(r[k] ?? 0);
            });
          }
          return out;
        }, EMPTY_STATS),
        10_000,
        "viewer page stats",
      );
      if (last.framesDecoded > 0) viewer.everDecoded = true;
      return last;
    } catch {
      return { ...last, state: "unreachable" };
    }
  };
  const viewer: Viewer = {
    context,
    page,
    stats,
    everDecoded: false,
    close: () => closeViewerPage(context),
  };
  return viewer;
}

// ---- one master, every step ----------------------------------------------------------------

interface StepResult {
  viewers: number;
  cpuPct: number;
  pssMb: number;
  pssPerViewerMb: number;
  /** TTFF of the viewers that joined in this step, ms (NaN: never decoded). */
  ttffMs: number[];
  decodedFpsPerViewer: number;
  nacks: number;
  plis: number;
  firs: number;
  neverDecoded: number;
  /** Viewers that had decoded before but decoded nothing during the window. */
  stalled: number;
  /** Audio packets the viewers received during the window (sum; inbound-rtp audio). */
  audioPackets: number;
  /** The same per viewer and second. */
  audioPpsPerViewer: number;
  /** Audio packets the viewers counted lost during the window (sum). */
  audioLost: number;
  /** Audio packets the master sent per viewer and second over its counters' window. */
  masterAudioPpsPerViewer: number;
  /** Frames the master sent per viewer and second over the same window. */
  masterFpsPerViewer: number;
  /** Viewers that received no audio packet during the window. */
  withoutAudio: number;
  /** Viewers whose data channel was open at the end of the window. */
  dataChannelsOpen: number;
  /** The master's own counters over the window (sum over sessions). */
  master: {
    sessions: number;
    packetsSent: number;
    audioPacketsSent: number;
    /** Data channel messages received (and echoed): 0 on an idle channel. */
    dataMessagesReceived: number;
    nacksReceived: number;
    plisReceived: number;
  };
  /** Offer → answer inside the master, ms, for every current session (ours reports it). */
  offerToAnswerMs: number[];
}

interface MasterResult {
  kind: Kind;
  runtime: string;
  idleCpuPct: number;
  idlePssMb: number;
  steps: StepResult[];
  notes: string[];
}

function sumSessions(line: MasterLine) {
  const s = line.stats ?? [];
  return {
    sessions: s.length,
    packetsSent: s.reduce((a, x) => a + x.packetsSent, 0),
    framesSent: s.reduce((a, x) => a + x.framesSent, 0),
    audioPacketsSent: s.reduce((a, x) => a + (x.audioPacketsSent ?? 0), 0),
    dataMessagesReceived: s.reduce((a, x) => a + (x.dataMessagesReceived ?? 0), 0),
    nacksReceived: s.reduce((a, x) => a + x.nacksReceived, 0),
    plisReceived: s.reduce((a, x) => a + x.plisReceived + (x.firsReceived ?? 0), 0),
    offerToAnswerMs: s.map((x) => x.offerToAnswerMs ?? NaN),
  };
}

async function measureMaster(
  kind: Kind,
  browser: Browser,
  emu: Emulator,
  pageUrl: string,
  nodeRuntime: string,
): Promise<MasterResult> {
  const master = await startMasterProcess(kind, emu.env(), emu.pki.caCertPath, nodeRuntime);
  const viewers: Viewer[] = [];
  const notes: string[] = [];
  try {
    await sleep(2000);
    const idleCpuPct = await cpuPercent(master.pid, () => sleep(IDLE_S * 1000));
    const idlePss = pssKb(master.pid);
    // Audio recvonly (no microphone) and an idle data channel (no pings).
    const url = benchViewerUrl(pageUrl, emu, master.channel);
    const steps: StepResult[] = [];
    let eventsSeen = 0;
    for (const n of STEPS) {
      const joining: Viewer[] = [];
      while (viewers.length < n) {
        const v = await openViewer(browser, url);
        viewers.push(v);
        joining.push(v);
      }
      const up = (s: PageStats) =>
        s.framesDecoded > 0 && s.audioPacketsReceived > 0 && s.dataChannelState === "open";
      const states = await pollPages(
        () => Promise.all(viewers.map((v) => v.stats())),
        up,
        JOIN_TIMEOUT_MS,
        250,
      );
      for (const [i, s] of states.entries()) {
        if (!up(s)) {
          notes.push(
            `N=${n}: viewer ${i + 1} after ${JOIN_TIMEOUT_MS / 1000} s: ${s.framesDecoded} ` +
              `frames decoded, ${s.audioPacketsReceived} audio packets (audio ${s.audioState}), ` +
              `data channel ${s.dataChannelState} (page state ${s.state}` +
              `${s.error ? `: ${s.error}` : ""})`,
          );
        }
      }
      await sleep(SETTLE_S * 1000);
      // The master prints its counters once a second: the window starts and ends on a line.
      const m0 = sumSessions(await master.next());
      const m0At = performance.now();
      const before = await Promise.all(viewers.map((v) => v.stats()));
      let seconds = 0;
      const cpuPct = await cpuPercent(master.pid, async () => {
        const t0 = performance.now();
        await sleep(WINDOW_S * 1000);
        seconds = (performance.now() - t0) / 1000;
      });
      const pss = pssKb(master.pid);
      const after = await Promise.all(viewers.map((v) => v.stats()));
      const m1 = sumSessions(await master.next());
      const masterSeconds = (performance.now() - m0At) / 1000;
      // Counters only grow; a page whose connection was replaced would start again from zero.
      const perViewer = (k: keyof PageStats, i: number) =>
        Math.max(0, (after[i][k] as number) - (before[i][k] as number));
      const delta = (k: keyof PageStats) => after.reduce((a, _, i) => a + perViewer(k, i), 0);
      const stalled = after.filter((_, i) =>
        viewers[i].everDecoded && perViewer("framesDecoded", i) === 0
      ).length;
      for (const [i, s] of after.entries()) {
        if (
          s.state !== "playing" || (viewers[i].everDecoded && !perViewer("framesDecoded", i)) ||
          !perViewer("audioPacketsReceived", i) || s.dataChannelState !== "open"
        ) {
          notes.push(
            `N=${n}: viewer ${i + 1} (${s.clientId}) at the end of the window: page ${s.state}, ` +
              `peer ${s.connectionState}, ${perViewer("framesDecoded", i)} frames decoded and ` +
              `${perViewer("audioPacketsReceived", i)} audio packets received in the window, ` +
              `data channel ${s.dataChannelState}${s.error ? `, error ${s.error}` : ""}`,
          );
        }
      }
      for (const e of master.events().slice(eventsSeen)) notes.push(`N=${n}: master: ${e}`);
      eventsSeen = master.events().length;
      const joinedTtff = await Promise.all(joining.map((v) => v.stats()));
      for (const s of joinedTtff) {
        if ((s.ttffMs ?? Infinity) < SLOW_TTFF_MS) continue;
        const ms = (x: number | null) => x === null ? "never" : `${x.toFixed(0)} ms`;
        notes.push(
          `N=${n}: slow first frame for ${s.clientId}: TTFF ${ms(s.ttffMs)}, ICE connected ` +
            `${ms(s.iceMs)}, DTLS ${ms(s.dtlsMs)} after the offer; since joining it sent ` +
            `${s.nackCount} NACKs, ${s.pliCount} PLIs, ${s.firCount} FIRs`,
        );
      }
      steps.push({
        viewers: n,
        cpuPct,
        pssMb: pss / 1024,
        pssPerViewerMb: (pss - idlePss) / 1024 / n,
        ttffMs: joinedTtff.map((s) => s.ttffMs ?? NaN),
        decodedFpsPerViewer: delta("framesDecoded") / n / seconds,
        nacks: delta("nackCount"),
        plis: delta("pliCount"),
        firs: delta("firCount"),
        neverDecoded: viewers.filter((v) => !v.everDecoded).length,
        stalled,
        audioPackets: delta("audioPacketsReceived"),
        audioPpsPerViewer: delta("audioPacketsReceived") / n / seconds,
        audioLost: delta("audioPacketsLost"),
        masterAudioPpsPerViewer: (m1.audioPacketsSent - m0.audioPacketsSent) / n / masterSeconds,
        masterFpsPerViewer: (m1.framesSent - m0.framesSent) / n / masterSeconds,
        withoutAudio: after.filter((_, i) => !perViewer("audioPacketsReceived", i)).length,
        dataChannelsOpen: after.filter((s) => s.dataChannelState === "open").length,
        master: {
          sessions: m1.sessions,
          packetsSent: m1.packetsSent - m0.packetsSent,
          audioPacketsSent: m1.audioPacketsSent - m0.audioPacketsSent,
          dataMessagesReceived: m1.dataMessagesReceived - m0.dataMessagesReceived,
          nacksReceived: m1.nacksReceived - m0.nacksReceived,
          plisReceived: m1.plisReceived - m0.plisReceived,
        },
        offerToAnswerMs: m1.offerToAnswerMs,
      });
      console.error(
        `  ${kind} N=${n}: CPU ${cpuPct.toFixed(1)} %, PSS ${(pss / 1024).toFixed(1)} MB, ` +
          `decoded ${(delta("framesDecoded") / n / seconds).toFixed(1)} fps/viewer, ` +
          `audio ${(delta("audioPacketsReceived") / n / seconds).toFixed(1)} pkt/s/viewer, ` +
          `data channels open ${after.filter((s) => s.dataChannelState === "open").length}/${n}, ` +
          `NACK ${delta("nackCount")}, PLI ${delta("pliCount")}`,
      );
    }
    return {
      kind,
      runtime: master.runtime,
      idleCpuPct,
      idlePssMb: idlePss / 1024,
      steps,
      notes,
    };
  } finally {
    await Promise.all(viewers.map((v) => v.close()));
    await master.stop();
  }
}

// ---- report --------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function num(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "–";
}

function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return "–";
  if (b === 0) return a === 0 ? "=" : "∞";
  return (a / b).toFixed(2) + "×";
}

function report(results: MasterResult[][], nodeRuntime: string): void {
  const of = (kind: Kind) => results.map((r) => r.find((x) => x.kind === kind));
  const ours = of("ours");
  const ref = of("werift");
  const pick = (rs: (MasterResult | undefined)[], f: (r: MasterResult) => number) =>
    median(rs.filter((r): r is MasterResult => !!r).map(f));
  const step = (r: MasterResult, n: number) => r.steps.find((s) => s.viewers === n);
  const rows: [string, string, string, string][] = [];
  const row = (label: string, f: (r: MasterResult) => number, digits = 1) => {
    const a = pick(ours, f);
    const b = pick(ref, f);
    rows.push([label, num(a, digits), num(b, digits), ratio(a, b)]);
  };
  rows.push(["connected, no viewer", "", "", ""]);
  row("  CPU % of one core", (r) => r.idleCpuPct);
  row("  PSS MB", (r) => r.idlePssMb);
  for (const n of STEPS) {
    const s = (r: MasterResult) => step(r, n);
    rows.push([`${n} viewer${n > 1 ? "s" : ""}`, "", "", ""]);
    row("  CPU % of one core", (r) => s(r)?.cpuPct ?? NaN);
    row("  PSS MB", (r) => s(r)?.pssMb ?? NaN);
    row("  PSS growth per viewer MB", (r) => s(r)?.pssPerViewerMb ?? NaN, 2);
    row("  TTFF ms, median of joiners", (r) => median(s(r)?.ttffMs ?? []), 0);
    row("  TTFF ms, slowest joiner", (r) => Math.max(...(s(r)?.ttffMs ?? [NaN])), 0);
    row("  offer → answer ms in the master", (r) => median(s(r)?.offerToAnswerMs ?? []));
    row("  frames/s per viewer, sent", (r) => s(r)?.masterFpsPerViewer ?? NaN);
    row("  decoded fps per viewer", (r) => s(r)?.decodedFpsPerViewer ?? NaN);
    row("  audio pkts viewers got, window", (r) => s(r)?.audioPackets ?? NaN, 0);
    row("  audio pkts/s per viewer, got", (r) => s(r)?.audioPpsPerViewer ?? NaN);
    row("  audio pkts lost (viewers' count)", (r) => s(r)?.audioLost ?? NaN, 0);
    row("  audio pkts/s per viewer, sent", (r) => s(r)?.masterAudioPpsPerViewer ?? NaN);
    row("  viewers without audio (window)", (r) => s(r)?.withoutAudio ?? NaN, 0);
    row(`  data channels open (of ${n})`, (r) => s(r)?.dataChannelsOpen ?? NaN, 0);
    row("  NACKs sent by viewers", (r) => s(r)?.nacks ?? NaN, 0);
    row("  PLIs sent by viewers", (r) => s(r)?.plis ?? NaN, 0);
    row("  FIRs sent by viewers", (r) => s(r)?.firs ?? NaN, 0);
    row("  viewers never decoding", (r) => s(r)?.neverDecoded ?? NaN, 0);
    row("  viewers stalled in window", (r) => s(r)?.stalled ?? NaN, 0);
  }
  const date = new Date().toISOString().replace("T", " ").slice(0, 16) + " UTC";
  console.log(
    `\nMaster under load, same Chromium viewers (official KVS JS SDK page) — ${date}` +
      `\n720p25 ${FRAMES.replace(root, "")} + Opus ${AUDIO.replace(root, "")} (20 ms) looped, ` +
      `idle data channel, loopback + emulator, ${WINDOW_S} s windows, ` +
      `${RUNS} run${RUNS > 1 ? "s (medians)" : ""}; master process only (utime+stime, PSS)` +
      `\nours: Deno ${Deno.version.deno} + WASM core; werift: ${nodeRuntime}, werift 0.25.2, ` +
      `packetize once + fan out`,
  );
  const w = [32, 10, 10, 12];
  const line = (c: string[]) =>
    c.map((x, i) => i === 0 ? x.padEnd(w[i]) : x.padStart(w[i])).join("  ");
  console.log(line(["", "ours", "werift", "ours/werift"]));
  console.log(line(w.map((n) => "-".repeat(n))));
  for (const r of rows) console.log(line(r));

  console.log(
    "\nThe masters' own session counters over each window (sum over sessions; last run; " +
      "packets sent, data channel messages received):",
  );
  console.log(
    line(["", "sessions", "video pkts", "NACKs rcvd"]) + "  " + "PLI/FIR rcvd".padStart(12) +
      "  " + "audio pkts".padStart(10) + "  " + "data msgs".padStart(10),
  );
  for (const res of results.at(-1)!) {
    for (const s of res.steps) {
      console.log(
        line([
          `${res.kind} N=${s.viewers}`,
          String(s.master.sessions),
          String(s.master.packetsSent),
          String(s.master.nacksReceived),
        ]) + "  " + String(s.master.plisReceived).padStart(12) + "  " +
          String(s.master.audioPacketsSent).padStart(10) + "  " +
          String(s.master.dataMessagesReceived).padStart(10),
      );
    }
  }
  const notes = results.flatMap((r, i) =>
    r.flatMap((m) => m.notes.map((n) => `run ${i + 1} ${m.kind}: ${n}`))
  );
  if (notes.length) {
    console.log("\nNotes:");
    for (const n of notes) console.log(`  ${n}`);
  }
}

// ---- main ----------------------------------------------------------------------------------

const nodeRuntime = KINDS.includes("werift")
  ? await prepareWerift({ opus: AUDIO, out: OPUS_PACKETS })
  : "";
// The whole run may take at most this long.
const perMasterS = 15 + IDLE_S + STEPS.length * (JOIN_TIMEOUT_MS / 1000 + SETTLE_S + WINDOW_S + 15);
const stage = await startViewerStage(
  "fair_load",
  (RUNS * KINDS.length * perMasterS * 1.5 + 120) * 1000,
);
const { emu, server } = stage;

try {
  const browser = await stage.launchBrowser();
  const results: MasterResult[][] = [];
  for (let r = 0; r < RUNS; r++) {
    // Alternate the order so neither master always runs on a warmer machine.
    const order = r % 2 === 0 ? KINDS : [...KINDS].reverse();
    const runResults: MasterResult[] = [];
    for (const kind of order) {
      console.error(`run ${r + 1}/${RUNS}: ${kind} master, viewers ${STEPS.join(", ")}`);
      runResults.push(await measureMaster(kind, browser, emu, server.url, nodeRuntime));
      await sleep(2000);
    }
    results.push(runResults);
  }
  report(results, nodeRuntime);
} finally {
  await stage.shutdown();
}
Deno.exit(0);
