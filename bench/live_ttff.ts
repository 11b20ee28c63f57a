/**
 * `deno task bench:ttff`: time to first frame from a LIVE encoder with a 2 s GOP, our master
 * against the werift reference master, the same Chromium viewers in the same run.
 *
 * The source, the same command for both: ffmpeg's `testsrc2` 1280x720 at 25 fps (`-re`), libx264
 * ultrafast/zerolatency, constrained baseline, an IDR every 50 frames (2 s, no scene-cut IDRs),
 * access unit delimiters, Annex-B on stdout. Each master runs its own encoder:
 * - **ours**: the master command (`main()` of cli/master.ts, in `bench/cli_master_proc.ts`) with
 *   `--video-command '<encoder>'`, on loopback (host candidates on 127.0.0.1/::1, no public STUN
 *   server). A viewer joining mid-GOP is sent the current GOP from its IDR at once;
 * - **werift**: `bench/werift_master.mjs --video-command '<encoder>'` under Node (werift 0.25.2,
 *   installed with npm into `bench/.build` on first use): access units split at the delimiters
 *   and sent as they arrive; a viewer joining mid-GOP waits for the encoder's next IDR, werift's
 *   common behaviour (no GOP is kept).
 *
 * For each master (one at a time, each a separate process on the emulator: IoT over mutual TLS,
 * SigV4 control plane and signaling, no TURN), once it is connected and its encoder has run for
 * `--warmup` seconds: `--rounds` rounds, each of them a join of every size of `--viewers` (1 viewer,
 * then 3 joining at once by default). Before each join a random wait within one GOP (the same
 * seeded sequence for both masters), so joins land at random phases of the GOP. The viewers are
 * headless Chromium (`/usr/bin/chromium` through `npm:playwright-core`) on the viewer page of
 * `web/` (official KVS WebRTC JS SDK), one browser context each, with audio recvonly and an idle
 * data channel as in bench/fair_load.ts. TTFF is the page's own `viewerState.ttffMs`: offer sent
 * → first decoded frame (requestVideoFrameCallback). An init script notes when the page's
 * RTCPeerConnection got connected (DTLS done), to split TTFF into connecting and waiting for a
 * decodable frame. Then the pages play 5 s more, and Chromium's `freezeCount` and
 * `totalFreezesDuration` of the video say whether a viewer froze once its first frame was up (a
 * catch-up it could not keep up with, a queue dropped); first frame + frozen time is about when it
 * played smoothly. After a join the pages stop (the viewer SDK closes its peer connection) and
 * close; the next join waits until the master has no session left (at most 10 s; werift
 * reports its sessions each second, ours logs each viewer joining and leaving).
 *
 * Prints a table: per size, median and max TTFF, median offer → connected and connected → first
 * frame, freezes in the 5 s after it, joins that got no frame in 15 s, and the ratio ours/werift;
 * then every join's TTFF.
 *
 * Usage: deno run -A bench/live_ttff.ts [--rounds 5] [--viewers 1,3] [--warmup 4]
 *   [--seed 17] [--only ours|werift] [--master-log <file>: our master's log, at debug level]
 *   [--no-pin]
 *
 * CPUs: viewers are other machines in production, but here they share the master's CPUs, and
 * Chromium raises its own browser and GPU processes' priority (nice -8 when it may): three pages
 * decoding 720p on a 2-core machine starved the master process for up to a second at a time
 * (event-loop stalls measured at 300–985 ms), which says nothing about either master. So, where
 * `taskset` exists and there are at least 2 CPUs, the browser runs on the last CPU and each master
 * (with its encoder, a child process) on the others — the same for both masters. `--no-pin`
 * shares every CPU between them instead.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Browser, Page } from "playwright-core";
import type { Emulator } from "../src/emulator/mod.ts";
import { seededRandom } from "../tests/support/link_emulator.ts";
import { masterCommand, type MasterKind, masterKinds, spawnMaster } from "./master_process.ts";
import { benchViewerUrl, closeViewerPage, openViewerPage, pollPages } from "./viewer_pages.ts";
import { startViewerStage } from "./viewer_stage.ts";
import { bounded, have, prepareWerift, ROOT, sleep } from "./werift_setup.ts";

const root = ROOT;

const args = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "5" },
    viewers: { type: "string", default: "1,3" },
    warmup: { type: "string", default: "4" },
    seed: { type: "string", default: "17" },
    only: { type: "string" },
    "master-log": { type: "string" },
    "no-pin": { type: "boolean", default: false },
  },
});
const ROUNDS = Math.floor(Number(args.values.rounds));
const SIZES = args.values.viewers!.split(",").map(Number).filter((n) => n > 0);
const WARMUP_S = Number(args.values.warmup);
const SEED = Math.floor(Number(args.values.seed)) >>> 0;
/** CPUs for the masters and for the browser (undefined: not pinned). */
const PIN = args.values["no-pin"] ? undefined : await cpuSplit();
if (
  !(ROUNDS >= 1 && ROUNDS <= 20) || SIZES.length === 0 || SIZES.some((n) => n > 5) ||
  !(WARMUP_S >= 0 && WARMUP_S <= 30)
) {
  console.error("--rounds 1 to 20, --viewers sizes of 1 to 5 (e.g. 1,3), --warmup 0 to 30 s");
  Deno.exit(2);
}

type Kind = MasterKind;
const KINDS: Kind[] = masterKinds(args.values.only);

/** Frames per second and GOP of the encoder. */
const FPS = 25;
const GOP_FRAMES = 50;
const GOP_MS = GOP_FRAMES / FPS * 1000;
/** The live encoder, the same for both masters (`exec`: a stop signal reaches ffmpeg itself). */
const ENCODER = "exec ffmpeg -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=25 " +
  "-pix_fmt yuv420p -c:v libx264 -profile:v baseline -preset ultrafast -tune zerolatency " +
  `-g ${GOP_FRAMES} -keyint_min ${GOP_FRAMES} -sc_threshold 0 -bf 0 -x264-params aud=1 ` +
  "-bsf:v h264_mp4toannexb -f h264 -";
/** A joiner without a decoded frame after this long counts as never decoding. */
const FIRST_FRAME_TIMEOUT_MS = 15_000;
/** At most this long for the master's sessions to end after a join's pages closed. */
const DRAIN_TIMEOUT_MS = 10_000;
/** The goal of issue 17 for our master: first frame at most this long after the offer. */
const TARGET_MS = 300;
/** After a join's last first frame, its pages play this long before their freezes are read. */
const WATCH_MS = 5000;

// ---- masters -------------------------------------------------------------------------------

interface MasterProcess {
  kind: Kind;
  channel: string;
  /** Sessions open: werift reports them each second, ours logs each joining and leaving. */
  sessions(): number;
  /** The master's warnings and errors so far (lines of its stderr). */
  warnings(): string[];
  /** The master's stderr so far (its last 4000 characters). */
  stderr(): string;
  /** Whether the master logged an offer from this client (ours; undefined: werift, not known). */
  sawOffer(clientId: string): boolean | undefined;
  stop(): Promise<void>;
}

async function startMasterProcess(
  kind: Kind,
  env: Record<string, string>,
  caCertPath: string,
): Promise<MasterProcess> {
  const channel = `ttff-${kind}-${crypto.randomUUID().slice(0, 8)}`;
  const argv = kind === "ours"
    ? [
      `${root}bench/cli_master_proc.ts`,
      channel,
      "--video-command",
      ENCODER,
      "--audio-source",
      "none",
      "--no-endpoint-cache",
      // Info: the lines of viewers joining and leaving, counted below (debug with --master-log).
      "--log-level",
      args.values["master-log"] ? "debug" : "info",
    ]
    : [channel, "--video-command", ENCODER];
  const warnings: string[] = [];
  /** Our master's sessions, from its log: "Viewer <id> joined", "Viewer <id> left: …". */
  const joined = new Set<string>();
  const offers = new Set<string>();
  let sessions = 0;
  const logFile = kind === "ours" && args.values["master-log"]
    ? Deno.open(args.values["master-log"], { create: true, write: true, truncate: true })
    : undefined;
  logFile?.catch(() => {});
  const master = await spawnMaster(
    masterCommand(kind, argv, { env, caCertPath, cpus: PIN?.masters }),
    {
      name: kind,
      onStderr: async (chunk) => {
        await (await logFile)?.write(new TextEncoder().encode(chunk));
      },
      onStderrLine: (l) => {
        // A page closing ends its SCTP association: expected here, not a warning worth a note.
        const expected = /SCTP association ended: the viewer closed it/.test(l);
        if (/ (WARN|ERROR) |^error|failed/.test(l) && !expected && warnings.length < 50) {
          warnings.push(l.trim());
        }
        const offer = l.match(/\] Offer from (\S+)$/);
        if (offer && offers.size < 10_000) offers.add(offer[1]);
        const m = l.match(/\] Viewer (\S+) (joined$|left: )/);
        if (kind !== "ours" || !m) return;
        if (m[2] === "joined") joined.add(m[1]);
        else joined.delete(m[1]);
        sessions = joined.size;
      },
      onStats: (stats) => sessions = Number((stats as { viewers?: unknown }).viewers),
    },
  );
  return {
    kind,
    channel,
    sessions: () => sessions,
    sawOffer: (id) => kind === "ours" ? offers.has(id) : undefined,
    warnings: () => [...warnings],
    stderr: master.stderr,
    stop: master.stop,
  };
}

/**
 * The CPU split (see the module's doc): the browser on the last CPU, the masters on the others;
 * undefined with fewer than 2 CPUs or no `taskset`.
 */
async function cpuSplit(): Promise<{ masters: string; browser: string } | undefined> {
  const n = navigator.hardwareConcurrency;
  if (n < 2 || !(await have("taskset"))) return undefined;
  return { masters: n === 2 ? "0" : `0-${n - 2}`, browser: String(n - 1) };
}

// ---- viewers -------------------------------------------------------------------------------

/**
 * Notes when (performance.now()) the page's offer was set (its setLocalDescription resolved: the
 * page sends the offer right after), the answer applied (setRemoteDescription resolved), ICE got
 * connected and its RTCPeerConnection got connected (DTLS done).
 */
const NOTE_TIMES = `(() => {
  const Original = globalThis.RTCPeerConnection;
  if (!Original || globalThis.__benchTimes) return;
  const t = { offer: null, answer: null, ice: null, connected: null };
  globalThis.__benchTimes = t;
  globalThis.RTCPeerConnection = class extends Original {
    constructor(...a) {
      super(...a);
      globalThis.__benchPc = this;
      this.addEventListener("connectionstatechange", () => {
        if (this.connectionState === "connected" && t.connected === null) {
          t.connected = performance.now();
        }
      });
      this.addEventListener("iceconnectionstatechange", () => {
        const s = this.iceConnectionState;
        if ((s === "connected" || s === "completed") && t.ice === null) t.ice = performance.now();
      });
    }
    setLocalDescription(...a) {
      const done = super.setLocalDescription(...a);
      done.then(() => { if (t.offer === null) t.offer = performance.now(); }, () => {});
      return done;
    }
    setRemoteDescription(...a) {
      const done = super.setRemoteDescription(...a);
      done.then(() => { if (t.answer === null) t.answer = performance.now(); }, () => {});
      return done;
    }
  };
})();`;

/** A joiner's first frame, from its page. */
interface Join {
  /** Offer sent → first decoded frame, ms (the page's viewerState.ttffMs; null: none in time). */
  ttffMs: number | null;
  /** Offer set → peer connection connected, ms (null: not connected). */
  connectedMs: number | null;
  /** Offer set → answer applied, ms (null: none). */
  answerMs: number | null;
  /** Offer set → ICE connected, ms (null: not connected). */
  iceMs: number | null;
  /** Freezes in the video's stats once it played {@link WATCH_MS} (null: not read). */
  freezes: number | null;
  /** Their total duration, ms (null: not read). */
  frozenMs: number | null;
  /** The page's state (playing, error, …). */
  state: string;
  /** The page's signaling client id. */
  clientId: string | null;
  error: string | null;
}

/** What the page knows now (state `unreachable` when it does not answer). */
async function view(page: Page): Promise<Join> {
  try {
    return await bounded(
      page.evaluate(() => {
        const g = globalThis as unknown as {
          __benchTimes?: {
            offer: number | null;
            answer: number | null;
            ice: number | null;
            connected: number | null;
          };
          viewerState?: {
            state: string;
            error: string | null;
            ttffMs: number | null;
            clientId: string | null;
          };
        };
        const t = g.__benchTimes;
        return {
          ttffMs: g.viewerState?.ttffMs ?? null,
          connectedMs: t?.offer != null && t.connected != null ? t.connected - t.offer : null,
          answerMs: t?.offer != null && t.answer != null ? t.answer - t.offer : null,
          iceMs: t?.offer != null && t.ice != null ? t.ice - t.offer : null,
          freezes: null,
          frozenMs: null,
          state: g.viewerState?.state ?? "unknown",
          clientId: g.viewerState?.clientId ?? null,
          error: g.viewerState?.error ?? null,
        };
      }),
      5000,
      "viewer page",
    );
  } catch {
    return {
      ttffMs: null,
      connectedMs: null,
      answerMs: null,
      iceMs: null,
      freezes: null,
      frozenMs: null,
      state: "unreachable",
      clientId: null,
      error: null,
    };
  }
}

/** The page's video freezes so far, from its peer connection's stats (undefined: none read). */
async function freezes(page: Page): Promise<{ count: number; ms: number } | undefined> {
  try {
    return await bounded(
      page.evaluate(async () => {
        const pc = (globalThis as unknown as {
          __benchPc?: { getStats(): Promise<Map<string, Record<string, unknown>>> };
        }).__benchPc;
        if (!pc) return undefined;
        for (const r of (await pc.getStats()).values()) {
          if (r.type === "inbound-rtp" && r.kind === "video") {
            return {
              count: Number(r.freezeCount ?? 0),
              ms: Number(r.totalFreezesDuration ?? 0) * 1000,
            };
          }
        }
        return undefined;
      }),
      5000,
      "viewer stats",
    );
  } catch {
    return undefined;
  }
}

// ---- one master, every round ---------------------------------------------------------------

interface MasterResult {
  kind: Kind;
  /** Joins by size. */
  joins: Map<number, Join[]>;
  notes: string[];
}

async function measureMaster(
  kind: Kind,
  browser: Browser,
  emu: Emulator,
  pageUrl: string,
): Promise<MasterResult> {
  const master = await startMasterProcess(kind, emu.env(), emu.pki.caCertPath);
  const joins = new Map<number, Join[]>(SIZES.map((n) => [n, []]));
  const notes: string[] = [];
  /** Pages closed → no session left in the master, ms, per join. */
  const drains: number[] = [];
  // mulberry32: the same join phases for both masters from one seed.
  const rng = seededRandom(SEED);
  const t0 = performance.now();
  try {
    const url = benchViewerUrl(pageUrl, emu, master.channel);
    await sleep(WARMUP_S * 1000);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const n of SIZES) {
        // A random phase of the GOP, then n viewers at once.
        await sleep(rng() * GOP_MS);
        const opened = await Promise.allSettled(
          Array.from({ length: n }, () => openViewerPage(browser, url, { initScript: NOTE_TIMES })),
        );
        const viewers = opened.flatMap((o) => o.status === "fulfilled" ? [o.value] : []);
        for (const o of opened) {
          if (o.status === "rejected") notes.push(`round ${round}, ${n}: page: ${o.reason}`);
        }
        try {
          const done = (v: Join) => v.ttffMs !== null || v.state === "error";
          const views = await pollPages(
            () => Promise.all(viewers.map((v) => view(v.page))),
            done,
            FIRST_FRAME_TIMEOUT_MS,
            100,
          );
          // Then the pages play on: do they freeze once the first frame is up (a catch-up the
          // browser cannot keep up with, a queue dropped)? Chromium's freezeCount and
          // totalFreezesDuration of the video, WATCH_MS after the last first frame.
          if (views.some((v) => v.ttffMs !== null)) {
            await sleep(WATCH_MS);
            await Promise.all(views.map(async (v, i) => {
              if (v.ttffMs === null) return;
              const f = await freezes(viewers[i].page);
              v.freezes = f?.count ?? null;
              v.frozenMs = f?.ms ?? null;
            }));
          }
          joins.get(n)!.push(...views);
          for (const [i, v] of views.entries()) {
            if (v.ttffMs !== null) continue;
            notes.push(
              `round ${round}, ${n} viewer(s): viewer ${i + 1} got no frame in ` +
                `${FIRST_FRAME_TIMEOUT_MS / 1000} s (page ${v.state}` +
                `${v.error ? `: ${v.error}` : ""}` +
                (v.clientId === null ? "" : `; ${v.clientId}`) +
                (master.sawOffer(v.clientId ?? "") === false
                  ? ", its offer never reached the master"
                  : "") +
                ")",
            );
          }
          console.error(
            `  ${kind} round ${round}, ${n} viewer${n > 1 ? "s" : ""}: TTFF ` +
              views.map((v) => v.ttffMs === null ? "none" : v.ttffMs.toFixed(0)).join(", ") +
              " ms (connected at " + views.map((v) => v.connectedMs?.toFixed(0) ?? "–").join(", ") +
              "); frozen " + views.map((v) => v.frozenMs?.toFixed(0) ?? "–").join(", ") +
              ` ms in the ${WATCH_MS / 1000} s after`,
          );
        } finally {
          await Promise.all(viewers.map(async (v) => {
            await bounded(
              v.page.evaluate(() => {
                (globalThis as unknown as { viewer?: { stop(): void } }).viewer?.stop();
              }),
              5000,
              "stop viewer",
            ).catch(() => {});
            await closeViewerPage(v.context);
          }));
        }
        // The next join starts with no session left (werift reports them once a second).
        const closedAt = performance.now();
        await sleep(500);
        while (master.sessions() > 0 && performance.now() < closedAt + DRAIN_TIMEOUT_MS) {
          await sleep(100);
        }
        drains.push(performance.now() - closedAt);
        if (master.sessions() > 0) {
          notes.push(
            `round ${round}, ${n}: ${master.sessions()} sessions still open ` +
              `${DRAIN_TIMEOUT_MS / 1000} s after the pages closed`,
          );
        }
      }
    }
    const warnings = master.warnings();
    if (warnings.length) notes.push(`the master's warnings and errors:`, ...warnings);
    console.error(
      `  ${kind}: ${((performance.now() - t0) / 1000).toFixed(0)} s; sessions ended ` +
        `${median(drains).toFixed(0)} ms (median), ${max(drains).toFixed(0)} ms (max) after ` +
        `the pages closed`,
    );
    return { kind, joins, notes };
  } catch (e) {
    throw new Error(`${kind}: ${(e as Error).message}\n${master.stderr().trim()}`);
  } finally {
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

function max(xs: number[]): number {
  const s = xs.filter(Number.isFinite);
  return s.length ? Math.max(...s) : NaN;
}

function num(x: number): string {
  return Number.isFinite(x) ? x.toFixed(0) : "–";
}

function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "–";
  return (a / b).toFixed(2) + "×";
}

function report(results: MasterResult[], nodeRuntime: string): void {
  const get = (kind: Kind) => results.find((r) => r.kind === kind);
  const rows: string[][] = [];
  const row = (label: string, f: (j: Join[]) => number, n: number, withRatio = true) => {
    const a = get("ours") ? f(get("ours")!.joins.get(n)!) : NaN;
    const b = get("werift") ? f(get("werift")!.joins.get(n)!) : NaN;
    rows.push([label, num(a), num(b), withRatio ? ratio(a, b) : ""]);
  };
  const ttff = (j: Join[]) => j.map((x) => x.ttffMs ?? NaN);
  const connected = (j: Join[]) => j.map((x) => x.connectedMs ?? NaN);
  type Mark = "answerMs" | "iceMs" | "connectedMs";
  const between = (j: Join[], a: Mark, b: Mark) =>
    j.map((x) => x[a] !== null && x[b] !== null ? x[b]! - x[a]! : NaN);
  const afterConnected = (j: Join[]) =>
    j.map((x) => x.ttffMs !== null && x.connectedMs !== null ? x.ttffMs - x.connectedMs : NaN);
  for (const n of SIZES) {
    rows.push([
      `${n} viewer${n > 1 ? "s joining at once" : ""} (${ROUNDS * n} joins)`,
      "",
      "",
      "",
    ]);
    row("  TTFF ms, median", (j) => median(ttff(j)), n);
    row("  TTFF ms, max", (j) => max(ttff(j)), n);
    row("  offer → answer applied ms, median", (j) => median(j.map((x) => x.answerMs ?? NaN)), n);
    row("  answer → ICE connected ms, median", (j) => median(between(j, "answerMs", "iceMs")), n);
    row("  ICE → DTLS connected ms, median", (j) => median(between(j, "iceMs", "connectedMs")), n);
    row("  offer → connected ms, median", (j) => median(connected(j)), n);
    row("  connected → first frame ms, median", (j) => median(afterConnected(j)), n);
    row(
      `  freezes, ${WATCH_MS / 1000} s after first frame`,
      (j) => j.reduce((a, x) => a + (x.freezes ?? 0), 0),
      n,
      false,
    );
    row(
      "  first frame + frozen ms, median",
      (j) =>
        median(
          j.map((x) => x.ttffMs !== null && x.frozenMs !== null ? x.ttffMs + x.frozenMs : NaN),
        ),
      n,
    );
    row(
      `  frozen ms, ${WATCH_MS / 1000} s after first frame, max`,
      (j) => max(j.map((x) => x.frozenMs ?? NaN)),
      n,
      false,
    );
    row("  joins without a frame", (j) => j.filter((x) => x.ttffMs === null).length, n, false);
  }
  const date = new Date().toISOString().replace("T", " ").slice(0, 16) + " UTC";
  console.log(
    `\nTime to first frame from a live encoder, 2 s GOP — ${date}` +
      `\nffmpeg testsrc2 1280x720 25 fps, libx264 ultrafast zerolatency baseline, IDR every ` +
      `${GOP_FRAMES} frames, AUDs; each master runs its own encoder` +
      `\njoins after ${WARMUP_S} s of encoding, ${ROUNDS} rounds, each join at a random GOP phase ` +
      `(seed ${SEED}); Chromium viewers (official KVS JS SDK page), loopback + emulator` +
      (PIN
        ? `\nCPUs: the browser on CPU ${PIN.browser}, each master and its encoder on ${PIN.masters}`
        : "\nCPUs: shared by the browser and the masters (not pinned)") +
      `\nTTFF: offer sent → first decoded frame (the page's viewerState.ttffMs)` +
      `\nours: Deno ${Deno.version.deno}, the master command with --video-command (GOP from its ` +
      `IDR at once)${
        nodeRuntime ? `; werift: ${nodeRuntime}, werift 0.25.2 (waits for the next IDR)` : ""
      }`,
  );
  const w = [40, 8, 8, 12];
  const line = (c: string[]) =>
    c.map((x, i) => i === 0 ? x.padEnd(w[i]) : x.padStart(w[i])).join("  ");
  console.log(line(["", "ours", "werift", "ours/werift"]));
  console.log(line(w.map((n) => "-".repeat(n))));
  for (const r of rows) console.log(line(r));
  const ours = get("ours");
  if (ours) {
    const all = [...ours.joins.values()].flat();
    const worst = all.some((j) => j.ttffMs === null) ? Infinity : max(ttff(all));
    console.log(
      `\nOurs against the goal (first frame ≤ ${TARGET_MS} ms after the offer): median ` +
        `${num(median(ttff(all)))} ms, max ${num(worst)} ms over ${all.length} joins: ` +
        `${worst <= TARGET_MS ? "met" : median(ttff(all)) <= TARGET_MS ? "median met" : "not met"}`,
    );
  }
  console.log("\nEvery join's TTFF, ms (in order; - : no frame):");
  for (const r of results) {
    for (const [n, list] of r.joins) {
      console.log(
        `  ${r.kind.padEnd(6)} ${n} viewer${n > 1 ? "s" : " "}: ` +
          list.map((j) => j.ttffMs === null ? "-" : j.ttffMs.toFixed(0)).join(" "),
      );
    }
  }
  const notes = results.flatMap((r) => r.notes.map((n) => `${r.kind}: ${n}`));
  if (notes.length) {
    console.log("\nNotes:");
    for (const n of notes) console.log(`  ${n}`);
  }
}

// ---- main ----------------------------------------------------------------------------------

const started = performance.now();
if (!(await have("ffmpeg"))) {
  console.error("live_ttff: needs ffmpeg (with libx264) on the PATH");
  Deno.exit(2);
}
const nodeRuntime = KINDS.includes("werift") ? await prepareWerift() : "";
// The whole run may take at most this long.
const perJoinS = GOP_MS / 1000 + FIRST_FRAME_TIMEOUT_MS / 1000 + DRAIN_TIMEOUT_MS / 1000 + 10;
const limitS = KINDS.length * (70 + WARMUP_S + ROUNDS * SIZES.length * perJoinS) + 60;
const stage = await startViewerStage("live_ttff", limitS * 1000);
const { emu, server } = stage;

try {
  const browser = await stage.launchBrowser(PIN?.browser);
  const results: MasterResult[] = [];
  for (const kind of KINDS) {
    console.error(`${kind} master: ${ROUNDS} rounds of ${SIZES.join(", ")} viewer(s)`);
    results.push(await measureMaster(kind, browser, emu, server.url));
  }
  report(results, nodeRuntime);
  console.error(`live_ttff: ${((performance.now() - started) / 1000).toFixed(0)} s in all`);
} finally {
  await stage.shutdown();
}
Deno.exit(0);
