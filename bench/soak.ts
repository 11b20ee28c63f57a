/**
 * Soak run (`deno task soak`, default 10 minutes): a master streams the samples through the
 * emulator whose IoT credentials last one minute, while werift viewers join, receive video and
 * leave one after another. Reports failed requests that reached the user (error events),
 * credential refreshes, viewer cycles, and the master's RSS and open file descriptors at the
 * start and the end (sockets and handles must return to baseline).
 *
 * With `--hostile`, attackers holding the channel's viewer credentials run beside the honest
 * viewers (see `bench/soak_hostile.ts`: offer flood, vanishing viewers, datagram spray, forged
 * DTLS) for the run but its first and last sixth (at most 15 s each, calm, for comparison), while
 * two more honest werift viewers play from start to end. Reported besides: the honest viewers'
 * longest gaps between RTP packets and between frames in each phase, the seats and places in the
 * admission queue hostile clients held, how fast the seats of vanished viewers came back, the
 * attackers' counts, and the event loop's longest stall (the master and the honest viewers share
 * it; the attackers have their own).
 *
 * Usage: deno run -A bench/soak.ts [--minutes 10] [--cycles 300 (hostile: 15 a minute)]
 *   [--hot-path wasm|werift]
 *   [--hostile] [--offers-per-second 22] [--spray-per-second 1000] [--dtls-per-second 100]
 *   [--vanish-every-ms 3000] [--attacks flood,vanish,spray,dtls]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createCaHttpClient, KvsClient } from "../src/aws/kvs_client.ts";
import { IotCredentialProvider } from "../src/credentials/iot.ts";
import { StaticCredentialProvider } from "../src/credentials/static.ts";
import { startEmulator } from "../src/emulator/mod.ts";
import { createLogger } from "../src/log.ts";
import { startMaster } from "../src/master.ts";
import { FileVideoSource } from "../src/media/file_source.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";
import { mediaCoreMemoryBytes } from "../src/peer/media_core.ts";
import { WeriftSessionFactory } from "../tests/support/werift_session.ts";
import type { HostileConfig, HostileReport } from "./soak_hostile.ts";
import { connectWeriftViewer, type WeriftViewer } from "./werift_viewer.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "10" },
    cycles: { type: "string" },
    "hot-path": { type: "string", default: "wasm" },
    hostile: { type: "boolean", default: false },
    "offers-per-second": { type: "string", default: "22" },
    "spray-per-second": { type: "string", default: "1000" },
    "dtls-per-second": { type: "string", default: "100" },
    "vanish-every-ms": { type: "string", default: "3000" },
    attacks: { type: "string", default: "flood,vanish,spray,dtls" },
  },
});
const HOSTILE = args.values.hostile;
const MINUTES = Number(args.values.minutes);
// Under attack one honest viewer joins every 4 s by default: werift sends no DTLS close_notify, so
// each one gone keeps its seat until the master hears nothing for 8 s, and the honest viewers
// alone must leave room for the attackers to take (10 seats).
const CYCLES = Number(args.values.cycles ?? (HOSTILE ? MINUTES * 15 : 300));
const HOT_PATH = args.values["hot-path"] === "werift" ? "werift" : "wasm";
const root = new URL("../", import.meta.url).pathname;

const warnings = { count: 0, first: [] as string[] };
const emu = await startEmulator({
  stateDir: `${root}.kvs-emulator`,
  turn: false,
  credentialLifetimeSeconds: 60,
});
const env = emu.env();
const http = await createCaHttpClient(env.AWS_KVS_CACERT_PATH);
const credentials = IotCredentialProvider.fromEnv(env);
const channel = `soak-${crypto.randomUUID().slice(0, 6)}`;
const master = await startMaster({
  channel,
  region: emu.region,
  credentials,
  controlPlane: new KvsClient({
    region: emu.region,
    credentials,
    endpoint: emu.controlPlaneUrl,
    httpClient: http,
  }),
  source: await FileVideoSource.open({ dir: `${root}samples/h264` }),
  peerSessionFactory: HOT_PATH === "werift"
    ? new WeriftSessionFactory({ loopbackOnly: true, hotPath: "werift" })
    : new WasmPeerSessionFactory({ loopbackOnly: true }),
  signaling: {
    caCerts: [await Deno.readTextFile(env.AWS_KVS_CACERT_PATH)],
    endpointCache: false,
    stunUrl: false,
  },
  // Under attack, count what the master warns about (notices are summarized, so few lines).
  logger: HOSTILE
    ? createLogger({
      level: "warn",
      component: "soak",
      sink: (r) => {
        warnings.count++;
        if (warnings.first.length < 5) warnings.first.push(r.message.slice(0, 200));
      },
    })
    : undefined,
});
const errors: string[] = [];
/** Error events about hostile clients (refused offers above all), by kind. */
const hostileErrors: Record<string, number> = {};
const isHostile = (id: string | undefined) => /^(flood|vanish)-/.test(id ?? "");
master.on("error", ({ error, viewerId }) => {
  if (HOSTILE && isHostile(viewerId)) {
    const kind = / refused: /.test(error.message) ? "offer refused" : error.code;
    hostileErrors[kind] = (hostileErrors[kind] ?? 0) + 1;
  } else errors.push(error.message);
});
await master.waitForState("Connected", 30_000);
const viewerKvs = new KvsClient({
  region: emu.region,
  credentials: new StaticCredentialProvider(emu.viewerCredentials),
  endpoint: emu.controlPlaneUrl,
  httpClient: http,
});
const arn = emu.channels().find((c) => c.name === channel)!.arn;

const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
/** What the open descriptors are: sockets named by protocol and local port (TCP with state). */
const fdTargets = (): string[] => {
  const sockets = new Map<string, string>();
  for (const proto of ["udp", "tcp", "udp6", "tcp6"]) {
    try {
      for (const line of Deno.readTextFileSync(`/proc/self/net/${proto}`).split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length < 10) continue;
        const port = parseInt(f[1].split(":")[1], 16);
        sockets.set(f[9], `${proto} :${port}${proto.startsWith("tcp") ? ` state ${f[3]}` : ""}`);
      }
    } catch { /* not Linux */ }
  }
  const out: string[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      out.push(sockets.get(target.match(/^socket:\[(\d+)\]$/)?.[1] ?? "") ?? target);
    } catch { /* closed meanwhile */ }
  }
  return out;
};
/** Descriptors in `b` and not in `a` (as multisets). */
const fdsAdded = (a: string[], b: string[]) => {
  const left = [...a];
  return b.filter((t) => {
    const i = left.indexOf(t);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
};
const gc = (globalThis as { gc?: () => void }).gc;
const memory = () => {
  gc?.();
  const m = Deno.memoryUsage();
  return {
    rss: m.rss / 1024 / 1024,
    heap: m.heapUsed / 1024 / 1024,
    external: m.external / 1024 / 1024,
  };
};
const idle = async () => {
  const end = performance.now() + 45_000;
  while (master.viewers().length > 0 && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
  }
};

/** Honest viewers whose connection the signaling service refused (its 10 per channel). */
let joinsRefused = 0;
/** Honest viewers that left (their sessions live on until the master notices). */
const departed = new Set<string>();
/** Honest viewers that received no video, with what they saw. */
const failedCycles: { id: string; packets: number; connected: boolean }[] = [];

/** One viewer: connect, receive 10 RTP packets, leave. Returns whether it received video. */
async function cycle(id: string): Promise<boolean> {
  let viewer: WeriftViewer;
  try {
    viewer = await connectWeriftViewer(viewerKvs, http, arn, id);
  } catch (e) {
    // Under attack the flood's connections may fill the service's 10 viewer connections.
    if (!HOSTILE) throw e;
    joinsRefused++;
    return false;
  }
  const end = performance.now() + 15_000;
  while (viewer.packets < 10 && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const connected = viewer.connected();
  await viewer.close();
  departed.add(id);
  if (viewer.packets < 10 && failedCycles.length < 10) {
    failedCycles.push({ id, packets: viewer.packets, connected });
  }
  return viewer.packets >= 10;
}

/** The longest gaps an honest viewer saw in each phase, ms: between RTP packets, between frames. */
interface Gaps {
  packet: number;
  frame: number;
  packets: number;
  /** Gaps between frames longer than 100, 250 and 500 ms. */
  over: [number, number, number];
}

/**
 * Honest viewers playing from start to end, and the attackers' worker in the middle of the run.
 * `finish()` stops the attackers (if they have not stopped), closes the honest viewers and
 * returns the figures.
 */
async function startHostile(worker: Worker) {
  const phases = ["before", "during", "after"] as const;
  type Phase = typeof phases[number];
  let phase: Phase = "before";
  const fresh = () =>
    Object.fromEntries(
      phases.map((p) => [p, { packet: 0, frame: 0, packets: 0, over: [0, 0, 0] }]),
    ) as Record<
      Phase,
      Gaps
    >;
  const watchers: {
    id: string;
    viewer: WeriftViewer;
    gaps: Record<Phase, Gaps>;
    last?: number;
    lastFrame?: number;
    ts?: number;
  }[] = [];
  for (const id of ["honest-0", "honest-1"]) {
    const w = { id, gaps: fresh() } as (typeof watchers)[number];
    w.viewer = await connectWeriftViewer(viewerKvs, http, arn, id, {
      onRtp: (ts) => {
        const now = performance.now();
        const g = w.gaps[phase];
        g.packets++;
        if (w.last !== undefined) g.packet = Math.max(g.packet, now - w.last);
        w.last = now;
        if (ts !== w.ts) {
          if (w.lastFrame !== undefined) {
            const gap = now - w.lastFrame;
            g.frame = Math.max(g.frame, gap);
            [100, 250, 500].forEach((limit, i) => gap > limit && g.over[i]++);
          }
          w.lastFrame = now;
          w.ts = ts;
        }
      },
    });
    watchers.push(w);
  }
  const t0 = performance.now();
  while (watchers.some((w) => w.viewer.packets < 10) && performance.now() - t0 < 15_000) {
    await new Promise((r) => setTimeout(r, 50));
  }
  // The event loop the master and the honest viewers share: its longest stall in each phase.
  const stall: Record<Phase, number> = { before: 0, during: 0, after: 0 };
  let tick = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    stall[phase] = Math.max(stall[phase], now - tick - 10);
    tick = now;
  }, 10);
  // Seats: sampled every 100 ms.
  const vanishedAt = new Map<string, number>();
  const leftAt = new Map<string, { at: number; reason: string }>();
  const honestLeft: string[] = [];
  const seats = {
    samples: 0,
    maxSeated: 0,
    maxPending: 0,
    maxHostileSeated: 0,
    maxFloodSeated: 0,
    maxVanishedSeated: 0,
    maxDepartedHonestSeated: 0,
    maxSignalingViewers: 0,
  };
  const signalingViewers = () => emu.connections().find((c) => c.channelArn === arn)?.viewers ?? [];
  const cycleEnds: Record<string, number> = {};
  const cycleEndById = new Map<string, string>();
  const offLeft = master.on("viewerLeft", ({ viewerId, reason }) => {
    if (viewerId.startsWith("vanish-")) leftAt.set(viewerId, { at: Date.now(), reason });
    if (/^v\d+$/.test(viewerId)) {
      cycleEnds[reason] = (cycleEnds[reason] ?? 0) + 1;
      cycleEndById.set(viewerId, reason);
    }
    if (viewerId.startsWith("honest-") && phase !== "after") {
      honestLeft.push(`${viewerId}: ${reason}`);
    }
  });
  const sampler = setInterval(() => {
    const s = master.seats;
    const viewers = master.viewers();
    const connected = viewers.filter((v) => v.state === "connected");
    const honest = connected.filter((v) => !isHostile(v.viewerId)).length;
    seats.samples++;
    seats.maxSignalingViewers = Math.max(seats.maxSignalingViewers, signalingViewers().length);
    seats.maxSeated = Math.max(seats.maxSeated, s.seated);
    seats.maxPending = Math.max(seats.maxPending, s.pending);
    seats.maxHostileSeated = Math.max(seats.maxHostileSeated, s.seated - honest);
    seats.maxFloodSeated = Math.max(
      seats.maxFloodSeated,
      connected.filter((v) => v.viewerId.startsWith("flood-")).length,
    );
    seats.maxDepartedHonestSeated = Math.max(
      seats.maxDepartedHonestSeated,
      connected.filter((v) => departed.has(v.viewerId)).length,
    );
    seats.maxVanishedSeated = Math.max(
      seats.maxVanishedSeated,
      viewers.filter((v) => vanishedAt.has(v.viewerId) && !leftAt.has(v.viewerId)).length,
    );
  }, 100);
  // What an attacker on the path sees of the honest viewers: the master's ports their media
  // comes from (taken from their answers; the core's pair names only the viewer's side).
  const honestPorts = () => watchers.flatMap((w) => [...w.viewer.masterPorts]);
  const calm = Math.min(15, MINUTES * 10);
  const seconds = Math.max(5, MINUTES * 60 - 2 * calm);
  const config: HostileConfig = {
    region: emu.region,
    controlPlaneUrl: emu.controlPlaneUrl,
    browserControlPlaneUrl: emu.browserControlPlaneUrl,
    caCertPath: env.AWS_KVS_CACERT_PATH,
    viewerCredentials: emu.viewerCredentials,
    channelArn: arn,
    seconds,
    offersPerSecond: Number(args.values["offers-per-second"]),
    sprayPerSecond: Number(args.values["spray-per-second"]),
    dtlsPerSecond: Number(args.values["dtls-per-second"]),
    vanishEveryMs: Number(args.values["vanish-every-ms"]),
    attacks: args.values.attacks.split(",") as HostileConfig["attacks"],
  };
  let portsTimer: ReturnType<typeof setInterval> | undefined;
  let attackStopped = 0;
  const report = new Promise<HostileReport>((resolve, reject) => {
    worker.onmessage = (e) => {
      const m = e.data;
      if (m.kind === "vanished") vanishedAt.set(m.viewerId, m.at);
      else if (m.kind === "report") {
        phase = "after";
        attackStopped = performance.now();
        cpuAt.after = mainThreadCpu();
        clearInterval(portsTimer);
        resolve(m.report);
      } else if (m.kind === "failed") reject(new Error(m.error));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
  });
  report.catch(() => {});
  const watchStarted = performance.now();
  let attackStarted = watchStarted;
  // The thread the master and the honest viewers run on: CPU time, and time spent runnable but
  // waiting for a core (the machine's other work), s, read at each phase's start.
  const mainThreadCpu = () => {
    const f = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/schedstat`).split(" ");
    return { run: Number(f[0]) / 1e9, wait: Number(f[1]) / 1e9 };
  };
  const zero = { run: 0, wait: 0 };
  const cpuAt = { before: mainThreadCpu(), during: zero, after: zero, end: zero };
  const starting = setTimeout(() => {
    phase = "during";
    attackStarted = performance.now();
    cpuAt.during = mainThreadCpu();
    worker.postMessage({ kind: "honest", ports: honestPorts() });
    portsTimer = setInterval(
      () => worker.postMessage({ kind: "honest", ports: honestPorts() }),
      1000,
    );
    worker.postMessage({ kind: "start", config });
  }, calm * 1000);

  return {
    async finish() {
      clearTimeout(starting);
      worker.postMessage({ kind: "stop" });
      let attack: HostileReport | string;
      try {
        attack = await Promise.race([
          report,
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error("no report within 30 s of stop")), 30_000)
          ),
        ]);
      } catch (e) {
        attack = `the attackers failed: ${(e as Error).message}`;
      }
      clearInterval(portsTimer);
      phase = "after";
      if (!attackStopped) {
        attackStopped = performance.now();
        cpuAt.after = mainThreadCpu();
      }
      const playing = watchers.map((w) => ({
        msSinceLastPacket: Math.round(performance.now() - (w.last ?? 0)),
        sessionState: master.viewers().find((v) => v.viewerId === w.id)?.state ?? "gone",
      }));
      const watchEnded = performance.now();
      cpuAt.end = mainThreadCpu();
      const viewersConnected = signalingViewers();
      for (const w of watchers) await w.viewer.close();
      // The admission window (5 s) passes after the last hostile offer before anything is read.
      const wait = attackStopped + 6000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      clearInterval(ticker);
      clearInterval(sampler);
      offLeft();
      const release = [...vanishedAt].map(([id, at]) => {
        const left = leftAt.get(id);
        return left ? left.at - at : Infinity;
      }).sort((a, b) => a - b);
      const reasons: Record<string, number> = {};
      for (const [id] of vanishedAt) {
        const reason = leftAt.get(id)?.reason ?? "still there";
        reasons[reason] = (reasons[reason] ?? 0) + 1;
      }
      const round = (n: number) => Math.round(n);
      const pct = (cpuSeconds: number, ms: number) => Number((cpuSeconds / ms * 1e5).toFixed(1));
      return {
        phaseSeconds: {
          before: round((attackStarted - watchStarted) / 1000),
          during: round((attackStopped - attackStarted) / 1000),
          after: round((watchEnded - attackStopped) / 1000),
        },
        honestViewers: watchers.map((w, i) => ({
          id: w.id,
          longestPacketGapMs: Object.fromEntries(
            phases.map((p) => [p, round(w.gaps[p].packet)]),
          ),
          longestFrameGapMs: Object.fromEntries(phases.map((p) => [p, round(w.gaps[p].frame)])),
          frameGapsOver100_250_500Ms: Object.fromEntries(
            phases.map((p) => [p, w.gaps[p].over.join(" / ")]),
          ),
          packets: Object.fromEntries(phases.map((p) => [p, w.gaps[p].packets])),
          keptPlaying: phases.every((p) => w.gaps[p].packets > 0) &&
            playing[i].msSinceLastPacket < 1000 && playing[i].sessionState === "connected",
          ...playing[i],
        })),
        honestSessionsEndedEarly: honestLeft,
        eventLoopLongestStallMs: Object.fromEntries(phases.map((p) => [p, round(stall[p])])),
        // That thread (master and honest viewers): % of the time it ran, and % of the time it
        // was ready to run but waited for a core, in each phase.
        mainThreadRunningPercent: {
          before: pct(cpuAt.during.run - cpuAt.before.run, attackStarted - watchStarted),
          during: pct(cpuAt.after.run - cpuAt.during.run, attackStopped - attackStarted),
          after: pct(cpuAt.end.run - cpuAt.after.run, watchEnded - attackStopped),
        },
        mainThreadWaitingForACorePercent: {
          before: pct(cpuAt.during.wait - cpuAt.before.wait, attackStarted - watchStarted),
          during: pct(cpuAt.after.wait - cpuAt.during.wait, attackStopped - attackStarted),
          after: pct(cpuAt.end.wait - cpuAt.after.wait, watchEnded - attackStopped),
        },
        seats: {
          samplesEvery100Ms: seats.samples,
          maxSeated: seats.maxSeated,
          maxHeldByHostileClients: seats.maxHostileSeated,
          maxHeldByFloodingClients: seats.maxFloodSeated,
          maxHeldByVanishedViewers: seats.maxVanishedSeated,
          // werift sends no DTLS close_notify when it closes: the master notices silence.
          maxHeldByHonestViewersGone: seats.maxDepartedHonestSeated,
          maxPending: seats.maxPending,
        },
        vanishedViewersSeatBack: {
          count: release.length,
          medianMs: round(release[Math.floor(release.length / 2)] ?? 0),
          maxMs: round(release.at(-1) ?? 0),
          reasons,
        },
        // The signaling service's viewer connections (it allows 10 per channel): most at once,
        // and those still open when the honest viewers closed theirs, attacks over.
        signalingViewerConnections: {
          max: seats.maxSignalingViewers,
          refusedForTheLimit:
            emu.requests.filter((r) => r.errorType === "ClientLimitExceededException").length,
          afterTheAttacks: viewersConnected,
        },
        errorEventsAboutHostileClients: hostileErrors,
        honestJoinsRefusedBySignaling: joinsRefused,
        // How the sessions of the honest viewers that joined and left ended, on the master.
        honestCycleSessionsEnded: cycleEnds,
        honestCyclesWithoutVideo: failedCycles.map((f) => ({
          ...f,
          sessionEnded: cycleEndById.get(f.id),
        })),
        masterWarnings: warnings,
        attackers: attack,
      };
    },
  };
}

// The attackers' worker exists (idle) before the baseline: the runtime's first worker opens
// descriptors of its own for good, and the worker's memory is there at both ends.
const attackers = HOSTILE
  ? await (async () => {
    const w = new Worker(new URL("./soak_hostile.ts", import.meta.url).href, { type: "module" });
    await new Promise((resolve) => {
      w.onmessage = resolve;
      w.postMessage({ kind: "hello" });
    });
    return w;
  })()
  : undefined;

// Warm up once, then take the baseline with no session left.
await cycle("warmup");
await idle();
const load = () => Deno.loadavg().map((n) => n.toFixed(2)).join(" ");
/** CPU time of this process (master, honest viewers, attackers' worker), s. */
const cpuSeconds = () => {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};
const loadAtStart = load();
const cpuAtStart = cpuSeconds();
const base = {
  ...memory(),
  wasm: mediaCoreMemoryBytes(),
  fds: fds(),
  fdTargets: fdTargets(),
  viewers: master.viewers().length,
};
const started = performance.now();
const hostile = attackers ? await startHostile(attackers) : undefined;
// GO_AWAY every 40 s: the master goes through the control plane again with whatever
// credentials it holds, so expired ones would show as refused requests.
const goAways = setInterval(() => emu.faults.goAway(), 40_000);
const deadline = started + MINUTES * 60_000;
let cycles = 0;
let ok = 0;
while (performance.now() < deadline && cycles < CYCLES) {
  if (await cycle(`v${cycles}`)) ok++;
  cycles++;
  // Spread the cycles over the run, so credentials expire many times meanwhile.
  const due = started + (cycles * MINUTES * 60_000) / CYCLES;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
clearInterval(goAways);
const loadAtEnd = load();
const cpuUsed = cpuSeconds() - cpuAtStart;
const hostileSummary = await hostile?.finish();
// Sessions of departed viewers end on ICE consent loss: give them time to go.
await idle();
await new Promise((r) => setTimeout(r, 2000));
const after = {
  ...memory(),
  wasm: mediaCoreMemoryBytes(),
  fds: fds(),
  fdTargets: fdTargets(),
  viewers: master.viewers().length,
  seats: master.seats,
};
// Whatever the attackers' worker still held goes with it: what is left after that is the master's.
attackers?.terminate();
if (attackers) await new Promise((r) => setTimeout(r, 2000));
const fdsWithoutAttackers = attackers ? fdTargets() : undefined;
const rssWithoutAttackers = attackers ? memory().rss : undefined;
const iotOk = emu.iotRequests.filter((r) => r.status === 200).length;
const expired = emu.requests.filter((r) => r.errorType === "ExpiredTokenException").length;
console.log(JSON.stringify(
  {
    minutes: ((performance.now() - started) / 60_000).toFixed(1),
    cycles,
    viewersReceivingVideo: ok,
    errorEvents: errors.length,
    firstErrors: errors.slice(0, 3),
    iotCredentialFetches: iotOk,
    requestsRefusedForExpiredToken: expired,
    rssMb: {
      start: base.rss.toFixed(1),
      end: after.rss.toFixed(1),
      ...(rssWithoutAttackers !== undefined
        ? { endOnceTheAttackersWorkerIsGone: rssWithoutAttackers.toFixed(1) }
        : {}),
    },
    heapMb: { start: base.heap.toFixed(1), end: after.heap.toFixed(1) },
    externalMb: { start: base.external.toFixed(1), end: after.external.toFixed(1) },
    // Linear memory of the media core's session instances (part of RSS, not of the heap).
    wasmMb: { start: (base.wasm / 1e6).toFixed(1), end: (after.wasm / 1e6).toFixed(1) },
    hotPath: HOT_PATH,
    openFds: {
      start: base.fds,
      end: after.fds,
      // Which descriptors differ, when some do.
      ...(after.fds !== base.fds
        ? {
          added: fdsAdded(base.fdTargets, after.fdTargets),
          gone: fdsAdded(after.fdTargets, base.fdTargets),
        }
        : {}),
      ...(fdsWithoutAttackers
        ? {
          endOnceTheAttackersWorkerIsGone: fdsWithoutAttackers.length,
          addedThen: fdsAdded(base.fdTargets, fdsWithoutAttackers),
        }
        : {}),
    },
    sessions: { start: base.viewers, end: after.viewers },
    seatsAtEnd: after.seats,
    signalingState: master.state,
    loadAverage: { start: loadAtStart, end: loadAtEnd },
    cpuPercentOfACore: Number((100 * cpuUsed / ((performance.now() - started) / 1000)).toFixed(1)),
    ...(hostileSummary ? { hostile: hostileSummary } : {}),
  },
  null,
  2,
));
await master.close();
credentials.close();
http.close();
await emu.close();
Deno.exit(0);
