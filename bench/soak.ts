/**
 * Soak run (`deno task soak`, default 10 minutes): a master streams the samples through the
 * emulator whose IoT credentials last one minute, while werift viewers join, receive video and
 * leave one after another. Reports failed requests that reached the user (error events),
 * credential refreshes, viewer cycles, and the master's RSS and open file descriptors at the
 * start and the end (sockets and handles must return to baseline).
 *
 * Usage: deno run -A bench/soak.ts [--minutes 10] [--cycles 300] [--hot-path wasm|werift]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createCaHttpClient, KvsClient } from "../src/aws/kvs_client.ts";
import { IotCredentialProvider } from "../src/credentials/iot.ts";
import { StaticCredentialProvider } from "../src/credentials/static.ts";
import { startEmulator } from "../src/emulator/mod.ts";
import { startMaster } from "../src/master.ts";
import { FileVideoSource } from "../src/media/file_source.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";
import { mediaCoreMemoryBytes } from "../src/peer/media_core.ts";
import { WeriftSessionFactory } from "../tests/support/werift_session.ts";
import { connectWeriftViewer } from "./werift_viewer.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "10" },
    cycles: { type: "string", default: "300" },
    "hot-path": { type: "string", default: "wasm" },
  },
});
const MINUTES = Number(args.values.minutes);
const CYCLES = Number(args.values.cycles);
const HOT_PATH = args.values["hot-path"] === "werift" ? "werift" : "wasm";
const root = new URL("../", import.meta.url).pathname;

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
});
const errors: string[] = [];
master.on("error", ({ error }) => errors.push(error.message));
await master.waitForState("Connected", 30_000);
const viewerKvs = new KvsClient({
  region: emu.region,
  credentials: new StaticCredentialProvider(emu.viewerCredentials),
  endpoint: emu.controlPlaneUrl,
  httpClient: http,
});
const arn = emu.channels().find((c) => c.name === channel)!.arn;

const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
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

/** One viewer: connect, receive 10 RTP packets, leave. Returns whether it received video. */
async function cycle(id: string): Promise<boolean> {
  const viewer = await connectWeriftViewer(viewerKvs, http, arn, id);
  const end = performance.now() + 15_000;
  while (viewer.packets < 10 && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await viewer.close();
  return viewer.packets >= 10;
}

// Warm up once, then take the baseline with no session left.
await cycle("warmup");
await idle();
const base = {
  ...memory(),
  wasm: mediaCoreMemoryBytes(),
  fds: fds(),
  viewers: master.viewers().length,
};
const started = performance.now();
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
// Sessions of departed viewers end on ICE consent loss: give them time to go.
await idle();
await new Promise((r) => setTimeout(r, 2000));
const after = {
  ...memory(),
  wasm: mediaCoreMemoryBytes(),
  fds: fds(),
  viewers: master.viewers().length,
};
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
    rssMb: { start: base.rss.toFixed(1), end: after.rss.toFixed(1) },
    heapMb: { start: base.heap.toFixed(1), end: after.heap.toFixed(1) },
    externalMb: { start: base.external.toFixed(1), end: after.external.toFixed(1) },
    // Linear memory of the media core's session instances (part of RSS, not of the heap).
    wasmMb: { start: (base.wasm / 1e6).toFixed(1), end: (after.wasm / 1e6).toFixed(1) },
    hotPath: HOT_PATH,
    openFds: { start: base.fds, end: after.fds },
    sessions: { start: base.viewers, end: after.viewers },
    signalingState: master.state,
  },
  null,
  2,
));
await master.close();
credentials.close();
http.close();
await emu.close();
Deno.exit(0);
