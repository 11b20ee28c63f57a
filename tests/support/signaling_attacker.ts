/**
 * A worker that attacks a channel's signaling with viewer credentials: `concurrency` connections
 * at a time, each under a new client id, each sending a script of frames (offers, candidates)
 * as fast as the WebSocket drains (or the target reads, see {@link AttackOrder.consumed}), then
 * closing for the next one. It runs on its own thread, so
 * what it costs does not count against the process under attack.
 *
 * Post an {@link AttackOrder}; the worker answers with {@link AttackReport} when `seconds` are
 * over (and every script was sent).
 *
 * @example
 * ```ts
 * import type { AttackOrder, AttackReport } from "./signaling_attacker.ts";
 * declare const order: AttackOrder;
 * const worker = new Worker(new URL("./signaling_attacker.ts", import.meta.url), { type: "module" });
 * const report = new Promise<AttackReport>((r) => worker.onmessage = (e) => r(e.data));
 * worker.postMessage(order);
 * console.log(await report);
 * worker.terminate();
 * ```
 *
 * @module
 */
import { presignUrl } from "../../src/aws/sigv4.ts";
import type { AwsCredentials } from "../../src/credentials/types.ts";

/** What to attack, with what, for how long. */
export interface AttackOrder {
  /** The signaling endpoint for viewers (`wss://…` or `ws://…`). */
  wss: string;
  channelArn: string;
  region: string;
  credentials: AwsCredentials;
  /**
   * Frames each connection sends, in order. The attack takes the scripts in turn, each for an
   * equal share of {@link AttackOrder.seconds}: every connection opened in script `k`'s share
   * sends script `k` (or an earlier one no connection took yet), so each script's inputs arrive
   * together, as densely as they can.
   */
  scripts: string[][];
  /** Client ids are `${prefix}-${i}`. */
  prefix: string;
  /** Connections open at once. */
  concurrency: number;
  seconds: number;
  /**
   * Flow control: an `Int32Array` over this buffer holds, at index 0, how many frames the
   * target has read (the test counts them). At most `window` frames are then in flight, so the
   * attack goes as fast as the target reads — what a service that pushes back on a flooding
   * client lets through — instead of piling up in the service's queue to the target. Frames the
   * target never counts (250 ms without progress) are written off.
   */
  consumed?: SharedArrayBuffer;
  window?: number;
}

/** What was sent. */
export interface AttackReport {
  connections: number;
  /** Connections refused or failed before opening. */
  failed: number;
  frames: number;
  bytes: number;
  /** Connections that sent each script. */
  byScript: number[];
  /** Frames the target never counted as read (flow control gave up waiting for them). */
  uncounted: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function attack(o: AttackOrder): Promise<AttackReport> {
  const report: AttackReport = {
    connections: 0,
    failed: 0,
    frames: 0,
    bytes: 0,
    byScript: o.scripts.map(() => 0),
    uncounted: 0,
  };
  const start = performance.now();
  const end = start + o.seconds * 1000;
  // Past `end`, connections still start for scripts none took yet (a starved machine), up to
  // twice as long.
  const last = start + o.seconds * 3000;
  const share = o.seconds * 1000 / o.scripts.length;
  const consumed = o.consumed ? new Int32Array(o.consumed) : undefined;
  const window = o.window ?? 64;
  /** Frames in flight: sent, not yet read. */
  const inFlight = () =>
    consumed ? report.frames - report.uncounted - Atomics.load(consumed, 0) : 0;
  let progress = { read: 0, at: start };
  /** Whether to wait before the next frame; after 250 ms without progress, the rest is lost. */
  const full = () => {
    if (inFlight() < window) return false;
    const read = Atomics.load(consumed!, 0);
    if (read !== progress.read) progress = { read, at: performance.now() };
    else if (performance.now() - progress.at > 250) {
      report.uncounted += inFlight();
      return false;
    }
    return true;
  };
  let next = 0;
  const taken = o.scripts.map(() => 0);
  const connection = async () => {
    for (;;) {
      const now = performance.now();
      if (now >= last || (now >= end && taken.every((n) => n > 0))) break;
      const i = next++;
      // The current script, or one whose whole share went by before any connection took it.
      const due = Math.min(o.scripts.length - 1, Math.floor((now - start) / share));
      const skipped = taken.findIndex((n, j) => j < due && n === 0);
      const k = skipped >= 0 ? skipped : due;
      const script = o.scripts[k];
      taken[k]++;
      const url = await presignUrl(o.credentials, {
        url: `${o.wss}?X-Amz-ChannelARN=${encodeURIComponent(o.channelArn)}` +
          `&X-Amz-ClientId=${o.prefix}-${i}`,
        region: o.region,
      });
      await new Promise<void>((done) => {
        const ws = new WebSocket(url);
        ws.onerror = () => {
          if (ws.readyState !== WebSocket.OPEN) {
            report.failed++;
            taken[k]--; // never opened: the script is still to be taken
          }
          done();
        };
        ws.onclose = () => done();
        ws.onopen = async () => {
          report.connections++;
          report.byScript[k]++;
          // A connection sends its whole script, even past `end`.
          for (const frame of script) {
            while (
              ws.readyState === WebSocket.OPEN && performance.now() < last &&
              (ws.bufferedAmount > 64 * 1024 || full())
            ) await sleep(1);
            if (performance.now() >= last || ws.readyState !== WebSocket.OPEN) break;
            ws.send(frame);
            report.frames++;
            report.bytes += frame.length;
          }
          while (ws.bufferedAmount > 0 && ws.readyState === WebSocket.OPEN) await sleep(1);
          ws.close();
          done();
        };
      });
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, connection));
  return report;
}

// Only as a worker: `self` is then the worker's scope.
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<AttackOrder>) => void) | null;
    postMessage(report: AttackReport): void;
  };
  scope.onmessage = async (e) => scope.postMessage(await attack(e.data));
}
