/**
 * Master under load, for `deno task bench`: CPU share (of one core) and RSS of a master process
 * streaming the 720p25 samples to 1, 5 and 10 viewers through the emulator, with our sessions
 * (wholly in the WASM core) and with werift's, measured in the same run; plus offer → first RTP
 * packet at the viewer.
 * Viewers are werift peers in this process (not counted in the master's figures).
 *
 * Usage: deno run -A bench/master_load.ts [--window 10]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createCaHttpClient, KvsClient } from "../src/aws/kvs_client.ts";
import { StaticCredentialProvider } from "../src/credentials/static.ts";
import { startEmulator } from "../src/emulator/mod.ts";
import { connectWeriftViewer, type WeriftViewer } from "./werift_viewer.ts";

const args = parseArgs({ args: Deno.args, options: { window: { type: "string", default: "10" } } });
const WINDOW_S = Number(args.values.window);
const root = new URL("../", import.meta.url).pathname;
const emu = await startEmulator({ stateDir: `${root}.kvs-emulator`, turn: false });
const http = await createCaHttpClient(emu.pki.caCertPath);
const kvs = new KvsClient({
  region: emu.region,
  credentials: new StaticCredentialProvider(emu.viewerCredentials),
  endpoint: emu.controlPlaneUrl,
  httpClient: http,
});

function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function rssKb(pid: number): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : NaN;
}

async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

interface Row {
  viewers: number;
  cpuPct: number;
  rssMb: number;
  receiving: number;
  /** Sessions the master held at the end of the window, and their hot paths. */
  sessions: number;
  hotPaths: string;
  firstPacketMs: number[];
}

async function run(hotPath: "wasm" | "werift"): Promise<Row[]> {
  const channel = `bench-${hotPath}-${crypto.randomUUID().slice(0, 6)}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}bench/master_proc.ts`, channel, hotPath],
    env: emu.env(),
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  while (!buffered.includes("READY")) {
    const { value, done } = await lines.read();
    if (done) throw new Error("master process ended before READY");
    buffered += value;
  }
  let last = { viewers: 0, hotPaths: [] as string[] };
  (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) break;
      const line = value.trim().split("\n").at(-1);
      if (line?.startsWith("{")) last = JSON.parse(line);
    }
  })();
  const arn = emu.channels().find((c) => c.name === channel)!.arn;
  const viewers: WeriftViewer[] = [];
  const rows: Row[] = [];
  try {
    for (const n of [1, 5, 10]) {
      while (viewers.length < n) {
        viewers.push(await connectWeriftViewer(kvs, http, arn, `v${viewers.length}`));
      }
      await until(() => viewers.every((v) => v.packets > 0), 20_000);
      await new Promise((r) => setTimeout(r, 2000));
      const t0 = performance.now();
      const c0 = cpuTicks(child.pid);
      await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
      const seconds = (performance.now() - t0) / 1000;
      const cpu = (cpuTicks(child.pid) - c0) / 100 / seconds;
      rows.push({
        viewers: n,
        cpuPct: cpu * 100,
        rssMb: rssKb(child.pid) / 1024,
        receiving: viewers.filter((v) => v.packets > 0).length,
        sessions: last.viewers,
        hotPaths: last.hotPaths.join("+"),
        firstPacketMs: viewers.map((v) => v.firstPacketMs ?? NaN),
      });
    }
  } finally {
    for (const v of viewers) await v.close();
    child.kill();
    await child.status;
  }
  return rows;
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

try {
  const ours = await run("wasm");
  const ref = await run("werift");
  console.log(`\nMaster under load: 720p25 samples, ${WINDOW_S} s windows, one master process`);
  console.log(
    "viewers  ours CPU%  werift CPU%  CPU ratio  ours RSS MB  werift RSS MB  sessions (media)",
  );
  for (const [i, o] of ours.entries()) {
    const r = ref[i];
    console.log(
      `${String(o.viewers).padStart(7)}  ${o.cpuPct.toFixed(1).padStart(9)}  ${
        r.cpuPct.toFixed(1).padStart(11)
      }  ${(o.cpuPct / r.cpuPct).toFixed(2).padStart(9)}  ${o.rssMb.toFixed(1).padStart(11)}  ${
        r.rssMb.toFixed(1).padStart(13)
      }  ${o.sessions} (${o.hotPaths}) / ${r.sessions} (${r.hotPaths})`,
    );
  }
  console.log(
    `offer → first RTP packet at the viewer (median of ${ours.at(-1)!.firstPacketMs.length}): ` +
      `ours ${median(ours.at(-1)!.firstPacketMs).toFixed(0)} ms, werift ${
        median(ref.at(-1)!.firstPacketMs).toFixed(0)
      } ms`,
  );
  console.log(
    "Goals: 10 viewers ≤ 10% of one core, ≤ 2 MB RSS per viewer, CPU ≤ 0.5× werift's.",
  );
} finally {
  http.close();
  await emu.close();
}
