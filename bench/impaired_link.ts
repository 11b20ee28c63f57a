/**
 * `deno task bench:link`: our master and the werift master (bench/werift_master.mjs under Node),
 * in the same run, each streaming the 720p samples (≈2.4 Mbit/s, with the sample tones) to one
 * relay-only headless Chromium viewer (the viewer page of `web/`, official KVS JS SDK) whose
 * only TURN server is a user-space link (tests/support/link_emulator.ts) in front of the
 * emulator's coturn. Both masters run as their own processes, started as `deno task bench:load`
 * starts them, and see the same scenario (tests/support/link_scenario.ts): playing over the
 * lifted link, then `--impaired` s at 1.5 Mbit/s (250 ms queue), 2 % loss and 40 ms each way,
 * then `--lifted` s lifted again; the link's loss generator has the same seed for both.
 *
 * For each master it prints:
 * - freeze time: from the impairment start to the end, the sum of the gaps between presented
 *   frames (requestVideoFrameCallback on the page's `<video>`) longer than 200 ms, each counted
 *   whole (the part in the window), and how many such gaps;
 * - the longest gap: after 5 s of impairment (gaps ending then count whole), in the whole
 *   impairment, after the lift;
 * - rendition switches: impairment start → first frame of at most 360 lines, lift → first frame
 *   of at least 720 lines ("none" when it never happens);
 * - bytes offered to the link by the TURN → viewer direction (what the master pushed, TURN
 *   framing included) during the impairment: the highest 1 s window (after 5 s, and overall) and
 *   the mean, against the link rate; what the link delivered; the viewer's NACKs, PLIs, jitter
 *   buffer delay and candidate pair round trip;
 * then ratios ours / werift.
 *
 * Usage: deno run -A bench/impaired_link.ts [--only ours|werift] [--baseline 3] [--impaired 15]
 *   [--lifted 10] [--seed 17]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { startEmulator } from "../src/emulator/mod.ts";
import { launchBrowser } from "../tests/support/browser.ts";
import { startUdpLink } from "../tests/support/link_emulator.ts";
import {
  analyzeLinkRun,
  formatFigures,
  IMPAIRED_LINK,
  type LinkFigures,
  openLinkedViewer,
  runLinkScenario,
} from "../tests/support/link_scenario.ts";
import { serveViewer } from "../web/serve.ts";
import { masterCommand, type MasterKind, masterKinds, spawnMaster } from "./master_process.ts";
import { BUILD, prepareWerift, ROOT, run, sleep } from "./werift_setup.ts";

const root = ROOT;
const build = BUILD;
const FRAMES = `${root}samples/h264`;
const AUDIO = `${root}samples/opus/tones.opus`;
const OPUS_PACKETS = `${build}/audio.opus-packets`;

const args = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string" },
    baseline: { type: "string", default: "3" },
    impaired: { type: "string", default: "15" },
    lifted: { type: "string", default: "10" },
    seed: { type: "string", default: "17" },
  },
});
const PHASES = {
  baselineMs: Number(args.values.baseline) * 1000,
  impairedMs: Number(args.values.impaired) * 1000,
  liftedMs: Number(args.values.lifted) * 1000,
};
const SEED = Number(args.values.seed);
if (
  !Object.values(PHASES).every((x) => x > 0 && x <= 120_000) || !Number.isInteger(SEED) ||
  (args.values.only && !["ours", "werift"].includes(args.values.only))
) {
  console.error("phases are seconds in (0, 120], --seed an integer, --only ours or werift");
  Deno.exit(2);
}
type Kind = MasterKind;
const KINDS: Kind[] = masterKinds(args.values.only);

/** A master process: ours (bench/master_proc.ts) or werift's, with its last stats line. */
interface MasterProcess {
  channel: string;
  /** The master's own counters for its sessions, from its latest stats line. */
  last(): { stats: Record<string, number | string>[] };
  stderr(): string;
  stop(): Promise<void>;
}

async function startMaster(kind: Kind, env: Record<string, string>, ca: string) {
  const channel = `link-${kind}-${crypto.randomUUID().slice(0, 8)}`;
  const argv = kind === "ours"
    ? [`${root}bench/master_proc.ts`, channel, "wasm", FRAMES, AUDIO]
    : [channel, FRAMES, "25", OPUS_PACKETS];
  let last = { stats: [] as Record<string, number | string>[] };
  const master = await spawnMaster(masterCommand(kind, argv, { env, caCertPath: ca }), {
    name: kind,
    onStats: (stats) => last = stats as typeof last,
  });
  return {
    channel,
    last: () => last,
    stderr: master.stderr,
    stop: master.stop,
  } satisfies MasterProcess;
}

const emu = await startEmulator({ turn: true, stateDir: `${root}.kvs-emulator/` });
const server = await serveViewer();
const browser = await launchBrowser({ maxLifetimeMs: 10 * 60_000 });
const results: { kind: Kind; figures?: LinkFigures; error?: string }[] = [];
try {
  if (KINDS.includes("werift")) await prepareWerift({ opus: AUDIO, out: OPUS_PACKETS });
  console.error(
    `impaired link: ${IMPAIRED_LINK.rateBps! / 1e6} Mbit/s (${IMPAIRED_LINK.queueMs} ms queue), ` +
      `${IMPAIRED_LINK.lossRate! * 100} % loss, ${IMPAIRED_LINK.delayMs} ms each way for ` +
      `${PHASES.impairedMs / 1000} s after ${PHASES.baselineMs / 1000} s lifted, then ` +
      `${PHASES.liftedMs / 1000} s lifted; seed ${SEED}; Deno ${Deno.version.deno}, ` +
      `${(await run("node", ["--version"]).catch(() => "no node")).trim()}`,
  );
  for (const kind of KINDS) {
    const master = await startMaster(kind, emu.env(), emu.pki.caCertPath);
    const turnPort = emu.turn!.port;
    const link = startUdpLink({ target: { port: turnPort }, seed: SEED });
    try {
      const viewer = await openLinkedViewer(browser.browser, {
        pageUrl: server.url,
        params: {
          channel: master.channel,
          region: emu.region,
          endpoint: emu.browserControlPlaneUrl,
          accessKeyId: emu.viewerCredentials.accessKeyId,
          secretAccessKey: emu.viewerCredentials.secretAccessKey,
          stun: "0",
          mic: "0",
          ping: "0",
        },
        turnPort,
        linkPort: link.port,
      });
      try {
        await viewer.waitFor((s) => s.framesDecoded >= 25 && s.height > 0, 30_000, "playing");
        const r = await runLinkScenario(
          viewer,
          link,
          IMPAIRED_LINK,
          PHASES,
          (phase) => console.error(`  ${kind}: ${phase}`),
        );
        const figures = analyzeLinkRun(r);
        results.push({ kind, figures });
        const s = master.last().stats[0] ?? {};
        console.log(formatFigures(kind, figures));
        console.log(
          `  master counters: packets sent ${s.packetsSent}, NACKs received ` +
            `${s.nacksReceived}, retransmitted ${s.packetsRetransmitted}, PLIs ` +
            `${s.plisReceived}; viewer pair ${r.status.selectedPair}`,
        );
      } finally {
        await viewer.close();
      }
    } catch (e) {
      results.push({ kind, error: (e as Error).message });
      console.log(`${kind}: failed: ${(e as Error).message}\n${master.stderr().slice(-1500)}`);
    } finally {
      await link.close();
      await master.stop();
      await sleep(500);
    }
  }
} finally {
  await browser.close();
  await server.close();
  await emu.close();
}

const ours = results.find((r) => r.kind === "ours")?.figures;
const werift = results.find((r) => r.kind === "werift")?.figures;
if (ours && werift) {
  const ratio = (a: number | null, b: number | null) =>
    a === null || b === null
      ? "n/a"
      : b === 0
      ? (a === 0 ? "1.00×" : "∞")
      : `${(a / b).toFixed(2)}×`;
  const row = (what: string, f: (x: LinkFigures) => number | null, unit: string) => {
    const fmt = (x: number | null) => x === null ? "none" : `${Math.round(x)} ${unit}`;
    return `  ${what.padEnd(34)} ${fmt(f(ours)).padStart(14)} ${fmt(f(werift)).padStart(14)} ` +
      `${ratio(f(ours), f(werift)).padStart(8)}`;
  };
  console.log(
    [
      `ours vs werift (${IMPAIRED_LINK.rateBps! / 1e6} Mbit/s link):`,
      `  ${"".padEnd(34)} ${"ours".padStart(14)} ${"werift".padStart(14)} ${"ratio".padStart(8)}`,
      row("freeze time (gaps > 200 ms)", (x) => x.freezeMs, "ms"),
      row("longest gap after 5 s impaired", (x) => x.longestGapMs.impairedAfterSettle, "ms"),
      row("longest gap after the lift", (x) => x.longestGapMs.lifted, "ms"),
      row("frames presented while impaired", (x) => x.frames.impaired, ""),
      row("to 360 lines", (x) => x.toLowMs, "ms"),
      row("lift to a 720-line frame", (x) => x.toHighMs, "ms"),
      row("offered, max 1 s after 5 s", (x) => x.offered.maxBpsAfterSettle / 1000, "kbit/s"),
      row("offered, mean while impaired", (x) => x.offered.meanBps / 1000, "kbit/s"),
      row("delivered, mean while impaired", (x) => x.delivered.meanBps / 1000, "kbit/s"),
    ].join("\n"),
  );
  console.log(
    `ratio ours/werift: freeze ${ratio(ours.freezeMs, werift.freezeMs)}, longest gap ` +
      `${ratio(ours.longestGapMs.impairedAfterSettle, werift.longestGapMs.impairedAfterSettle)}, ` +
      `offered ${ratio(ours.offered.maxBpsAfterSettle, werift.offered.maxBpsAfterSettle)}`,
  );
}
Deno.exit(results.some((r) => r.error) ? 1 : 0);
