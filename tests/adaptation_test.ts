// Each viewer on the rung of the ladder its bandwidth carries: the policy driven by a simulated
// estimate over the samples' real 720p/360p ladder, then the same through Viewers and the
// master with in-memory sessions (real sessions need a browser; what is under test here is the
// choice of frames each session is given, which these record).
import assert from "node:assert/strict";
import { type EncodedFrame, FileVideoSource, type VideoSource } from "../src/media/mod.ts";
import {
  type AdaptationOptions,
  LadderInstants,
  RenditionSelector,
  type RenditionSwitch,
  Viewers,
  type ViewersEventMap,
  type ViewerSignaling,
} from "../src/viewers/mod.ts";
import type { SignalingEventMap, SignalingListener } from "../src/signaling/client.ts";
import {
  type PeerConnectionState,
  type PeerSession,
  type PeerSessionCallbacks,
  type PeerSessionFactory,
  type PeerSessionOptions,
  type PeerStats,
  zeroPeerStats,
} from "../src/peer/types.ts";
import { type MasterEventMap, startMaster } from "../src/master.ts";
import { SimClock } from "./support/sim_clock.ts";
import { until } from "./support/until.ts";
import {
  CountingCredentials,
  deliver,
  ScriptedControlPlane,
  WsServer,
} from "./support/signaling_fixture.ts";

const HIGH = new URL("../samples/h264/", import.meta.url).pathname;
const LOW = new URL("../samples/h264-360p/", import.meta.url).pathname;
/** The samples' nominal bitrates, so the thresholds are round: down below 2.64 Mb/s, up above 3. */
const RUNGS = [{ dir: HIGH, bitrateBps: 2_400_000 }, { dir: LOW, bitrateBps: 800_000 }];
const M = 1_000_000;

/**
 * A viewer's frames: it starts at an IDR, gets one frame per instant, and changes rung only at
 * an IDR of the rung it moves to. Returns the indexes where it changed and to which rung.
 */
function oneRungAtATime(frames: readonly EncodedFrame[]): { at: number; to: number }[] {
  assert.ok(frames.length > 0, "frames were sent");
  assert.equal(frames[0].keyframe, true, "the first frame is an IDR");
  const changes: { at: number; to: number }[] = [];
  for (let i = 1; i < frames.length; i++) {
    assert.ok(frames[i].timestampUs > frames[i - 1].timestampUs, `frame ${i}: one per instant`);
    const [was, is] = [frames[i - 1].rendition ?? 0, frames[i].rendition ?? 0];
    if (was === is) continue;
    assert.equal(frames[i].keyframe, true, `frame ${i}: moved to rung ${is} on a P-frame`);
    changes.push({ at: i, to: is });
  }
  return changes;
}

interface SelectorRun {
  /** The frame chosen at each instant. */
  chosen: EncodedFrame[];
  /** Switches, with the instant (tick) they took effect. */
  switches: (RenditionSwitch & { tick: number })[];
}

/**
 * The real ladder on a simulated clock for `seconds`, one selector choosing from its instants;
 * `estimate(t)` is the viewer's estimate at `t` s (given to the selector when it changes, as a
 * session reports it), `keyframeRequests` the ticks before which the viewer asks for an IDR.
 */
async function runSelector(o: {
  seconds: number;
  estimate?: (t: number) => number | undefined;
  keyframeRequests?: number[];
  adaptation?: AdaptationOptions;
}): Promise<SelectorRun> {
  const clock = new SimClock();
  const source = await FileVideoSource.openLadder({ rungs: RUNGS, clock });
  const selector = new RenditionSelector(source.renditions, { now: clock.now, ...o.adaptation });
  const run: SelectorRun = { chosen: [], switches: [] };
  const instants = new LadderInstants(2, (frames) => {
    const { frame, switched } = selector.choose(frames);
    assert.ok(frame, `instant ${run.chosen.length}: a frame for the viewer`);
    if (switched) run.switches.push({ ...switched, tick: run.chosen.length });
    run.chosen.push(frame);
  });
  let given: number | undefined;
  const before = (tick: number) => {
    const bps = o.estimate?.(tick * 0.04);
    if (bps !== undefined && bps !== given) selector.estimate(given = bps);
    if (o.keyframeRequests?.includes(tick)) selector.keyframeRequested();
  };
  before(0);
  source.start((f) => instants.push(f)); // tick 0 at once
  const ticks = Math.round(o.seconds * 25);
  for (let tick = 1; tick < ticks; tick++) {
    before(tick);
    clock.advance(40);
  }
  source.stop();
  assert.equal(run.chosen.length, ticks, "one frame per instant");
  assert.deepEqual(
    oneRungAtATime(run.chosen).map((c) => c.at),
    run.switches.map((s) => s.tick),
  );
  return run;
}

const brief = (run: SelectorRun) => run.switches.map((s) => [s.tick, s.to, s.reason]);

Deno.test("selector: down at the next 360p IDR once the estimate stayed low 0.5 s", async () => {
  // 1.5 Mb/s from 3.3 s: held low from 3.28 s, decided at 3.8 s (tick 95), mid-GOP; the 720p
  // frames go on until the 360p IDR at 4 s (tick 100).
  const run = await runSelector({ seconds: 6, estimate: (t) => t < 3.3 ? 5 * M : 1.5 * M });
  assert.deepEqual(brief(run), [[100, 1, "estimate-low"]]);
  assert.ok(run.chosen.slice(0, 100).every((f) => f.rendition === 0));
  assert.ok(run.chosen.slice(100).every((f) => f.rendition === 1));
});

Deno.test("selector: up only after the estimate stayed high for 4 s, the hold starting over", async () => {
  const run = await runSelector({
    seconds: 12,
    // Low at first (down at the IDR at 1 s), then above 3 Mb/s from 2.1 s, a dip to 2.9 Mb/s
    // at 5.6–6.6 s (between the thresholds: no move, but the 4 s start over), high again.
    estimate: (t) => t < 2.1 ? 1.5 * M : t < 5.6 ? 3.5 * M : t < 6.6 ? 2.9 * M : 3.5 * M,
  });
  // Held high from 6.6 s: up at the first 720p IDR after 10.6 s, at 11 s (tick 275). Without
  // the dip it would have gone up at 7 s (tick 175).
  assert.deepEqual(brief(run), [[25, 1, "estimate-low"], [275, 0, "estimate-high"]]);
});

Deno.test("selector: no flapping with an estimate wavering around a threshold", async (t) => {
  await t.step("around 2.64 Mb/s (720p × 1.1), faster than the 0.5 s hold: no move", async () => {
    const run = await runSelector({
      seconds: 20,
      estimate: (t) => Math.floor(t / 0.3) % 2 === 0 ? 2.8 * M : 2.5 * M,
    });
    assert.deepEqual(brief(run), []);
  });
  await t.step("around 2.64 Mb/s, 2 s each side: down once, never back up", async () => {
    const run = await runSelector({
      seconds: 30,
      estimate: (t) => Math.floor(t / 2) % 2 === 0 ? 2.8 * M : 2.5 * M,
    });
    assert.deepEqual(brief(run), [[75, 1, "estimate-low"]]); // low from 2 s, IDR at 3 s
  });
  await t.step("around 3 Mb/s (720p × 1.25) on 360p, 1 s each side: never up", async () => {
    const run = await runSelector({
      seconds: 30,
      adaptation: { start: "lowest" },
      estimate: (t) => Math.floor(t) % 2 === 0 ? 3.1 * M : 2.9 * M,
    });
    assert.deepEqual(brief(run), []);
    assert.ok(run.chosen.every((f) => f.rendition === 1), "started and stayed on 360p");
  });
  await t.step(
    "a pending switch is dropped when the estimate recovers before the IDR",
    async () => {
      const run = await runSelector({
        seconds: 3,
        estimate: (t) => t < 0.1 ? 5 * M : t < 0.8 ? 2 * M : 2.8 * M,
      });
      assert.deepEqual(brief(run), []);
    },
  );
});

Deno.test("selector: a keyframe request at a marginal estimate goes down at the next IDR", async (t) => {
  await t.step("2.8 Mb/s (under 720p × 1.25): down at once, no hold", async () => {
    const run = await runSelector({ seconds: 3, estimate: () => 2.8 * M, keyframeRequests: [40] });
    assert.deepEqual(brief(run), [[50, 1, "congestion"]]);
  });
  await t.step("4 Mb/s, or no estimate: a lost picture is no reason to move", async () => {
    const high = await runSelector({ seconds: 3, estimate: () => 4 * M, keyframeRequests: [40] });
    assert.deepEqual(brief(high), []);
    const none = await runSelector({ seconds: 3, keyframeRequests: [40] });
    assert.deepEqual(brief(none), []);
  });
  await t.step("without an estimate a viewer stays where it started", async () => {
    const top = await runSelector({ seconds: 4 });
    assert.ok(top.chosen.every((f) => f.rendition === 0));
    const low = await runSelector({ seconds: 4, adaptation: { start: "lowest" } });
    assert.ok(low.chosen.every((f) => f.rendition === 1));
  });
});

// ---- Viewers and the master, with in-memory sessions ----

/** A session that records the frames it is given; the test plays the core's callbacks. */
class MemorySession implements PeerSession {
  readonly frames: EncodedFrame[] = [];
  #state: PeerConnectionState = "new";
  constructor(readonly viewerId: string, readonly callbacks: PeerSessionCallbacks) {}
  acceptOffer(): Promise<string> {
    return Promise.resolve("v=0\r\n");
  }
  addRemoteCandidate(): void {}
  writeFrame(frame: EncodedFrame): void {
    this.frames.push(frame);
  }
  stats(): PeerStats {
    return { ...zeroPeerStats(this.#state), framesSent: this.frames.length };
  }
  close(): void {
    this.#state = "closed";
  }
  /** ICE and DTLS done, as the core reports it. */
  connect(): void {
    this.#state = "connected";
    this.callbacks.onVerified?.();
    this.callbacks.onStateChange("connected");
  }
}

class MemorySessions implements PeerSessionFactory {
  readonly sessions = new Map<string, MemorySession>();
  create(o: PeerSessionOptions): Promise<PeerSession> {
    const s = new MemorySession(o.viewerId, o.callbacks);
    this.sessions.set(o.viewerId, s);
    return Promise.resolve(s);
  }
}

/** Offers in, answers out, in memory. */
class MemorySignaling implements ViewerSignaling {
  readonly answered: string[] = [];
  readonly #offer = new Set<SignalingListener<"offer">>();
  on<K extends keyof SignalingEventMap>(type: K, listener: SignalingListener<K>): () => void {
    if (type !== "offer") return () => {};
    const fn = listener as SignalingListener<"offer">;
    this.#offer.add(fn);
    return () => this.#offer.delete(fn);
  }
  sendAnswer(viewerId: string): void {
    this.answered.push(viewerId);
  }
  sendCandidate(): void {}
  iceServers(): [] {
    return [];
  }
  offer(viewerId: string): void {
    for (const fn of this.#offer) fn({ viewerId, sdp: "v=0\r\n" });
  }
}

/** The ladder on a simulated clock feeding `viewers`, ticked by the test. */
async function ladderFeeding(viewers: Viewers, clock: SimClock) {
  const source = await FileVideoSource.openLadder({ rungs: RUNGS, clock });
  let ticks = 0;
  source.start((f) => {
    if (f.rendition === 0) ticks++;
    viewers.writeFrame(f);
  });
  return {
    source,
    /** Instants sent so far; the next one is tick `ticks`. */
    get ticks() {
      return ticks;
    },
    /** Run until instant `tick` has been sent. */
    until(tick: number) {
      for (let i = 0; ticks <= tick && i < 10_000; i++) clock.advance(40);
    },
  };
}

async function join(
  viewerId: string,
  signaling: MemorySignaling,
  factory: MemorySessions,
): Promise<MemorySession> {
  signaling.offer(viewerId);
  await until(() => signaling.answered.includes(viewerId), `the answer to ${viewerId}`, 5000);
  const session = factory.sessions.get(viewerId)!;
  session.connect();
  return session;
}

Deno.test("viewers: each session gets one rendition at a time, switching at IDRs", async () => {
  const clock = new SimClock();
  const signaling = new MemorySignaling();
  const factory = new MemorySessions();
  const source = await FileVideoSource.openLadder({ rungs: RUNGS });
  const viewers = new Viewers({
    signaling,
    factory,
    renditions: source.renditions,
    adaptation: { now: clock.now },
  });
  const events: ViewersEventMap["rendition"][] = [];
  const estimates: ViewersEventMap["estimate"][] = [];
  viewers.on("rendition", (e) => events.push(e));
  viewers.on("estimate", (e) => estimates.push(e));
  const feed = await ladderFeeding(viewers, clock);
  try {
    feed.until(10);
    // a joins mid-GOP: its catch-up is the top rung's GOP so far (instants 0–10).
    const a = await join("a", signaling, factory);
    await until(() => a.frames.length === 11, "a's catch-up", 5000);
    assert.ok(a.frames.every((f) => f.rendition === 0));
    assert.equal(viewers.stats()[0].framesCaughtUp, 11);

    feed.until(19);
    a.callbacks.onEstimate!(1.5 * M); // low from tick 20: decided at tick 32, IDR at tick 50
    feed.until(60);
    const b = await join("b", signaling, factory); // starts on the top rung, from its GOP (50–60)
    await until(() => b.frames.length === 11, "b's catch-up", 5000);
    assert.ok(b.frames.every((f) => f.rendition === 0));
    b.callbacks.onEstimate!(4 * M);
    feed.until(64);
    // b loses a picture: its GOP (50–64) is sent to it again at once, nobody else is touched.
    b.callbacks.onKeyframeRequest("viewer");
    await until(() => b.frames.length === 11 + 4 + 15, "b's GOP again", 5000);
    feed.until(69);
    // b loses another in the same GOP: only b waits for the next IDR (75), on its own rung.
    b.callbacks.onKeyframeRequest("viewer");
    feed.until(79);
    a.callbacks.onEstimate!(3.5 * M); // high from tick 80: up at the first IDR after 7.2 s (200)
    feed.until(209);
    // b's session drops its queue and asks for an IDR while its estimate barely covers 720p.
    b.callbacks.onEstimate!(2.8 * M);
    b.callbacks.onKeyframeRequest("congestion");
    feed.until(230);

    const changesA = oneRungAtATime(a.frames);
    const changesB = oneRungAtATime(b.frames);
    // a: 11 caught up + one frame for each of instants 11–230; down at 50, up at 200.
    assert.equal(a.frames.length, 231);
    assert.deepEqual(changesA, [{ at: 50, to: 1 }, { at: 200, to: 0 }]);
    // b: 11 caught up + 61–64, the GOP 50–64 again (stamped between 64 and 65), 65–69,
    // nothing until the IDR at 75, each instant to 209, then nothing until the 360p IDR at 225
    // (its session's queue was dropped: it waits for an IDR anyway).
    const replayed = b.frames.slice(15, 30);
    assert.ok(replayed.every((f, i) => f.data === b.frames[i].data), "the frames it had, from 50");
    assert.equal(replayed[0].keyframe, true);
    assert.ok(replayed.every((f) => f.rendition === 0), "a lost picture does not move b");
    assert.ok(replayed[0].timestampUs > b.frames[14].timestampUs, "after what b had");
    assert.ok(replayed[14].timestampUs < b.frames[30].timestampUs, "before the next live frame");
    assert.equal(b.frames[30].timestampUs - b.frames[14].timestampUs, 40_000, "65 follows 64");
    const bIdrAfterRequest = 30 + 5;
    assert.equal(b.frames.length, bIdrAfterRequest + (209 - 75 + 1) + (230 - 225 + 1));
    assert.equal(b.frames[bIdrAfterRequest].keyframe, true);
    assert.equal(b.frames[bIdrAfterRequest].rendition, 0, "a lost picture does not move b");
    assert.equal(
      b.frames[bIdrAfterRequest].timestampUs - b.frames[34].timestampUs,
      6 * 40_000,
      "69 → 75",
    );
    assert.deepEqual(changesB, [{ at: bIdrAfterRequest + (209 - 75 + 1), to: 1 }]);

    assert.deepEqual(events, [
      { viewerId: "a", rendition: 1, label: "360p", previous: 0, reason: "estimate-low" },
      { viewerId: "a", rendition: 0, label: "720p", previous: 1, reason: "estimate-high" },
      { viewerId: "b", rendition: 1, label: "360p", previous: 0, reason: "congestion" },
    ]);
    assert.deepEqual(estimates.map((e) => [e.viewerId, e.bps]), [
      ["a", 1.5 * M],
      ["b", 4 * M],
      ["a", 3.5 * M],
      ["b", 2.8 * M],
    ]);
    const stats = Object.fromEntries(viewers.stats().map((s) => [s.viewerId, s]));
    assert.deepEqual(
      [stats.a.rendition, stats.a.renditionLabel, stats.a.renditionSwitches, stats.a.estimateBps],
      [0, "720p", 2, 3.5 * M],
    );
    assert.deepEqual(
      [stats.b.rendition, stats.b.renditionLabel, stats.b.renditionSwitches, stats.b.estimateBps],
      [1, "360p", 1, 2.8 * M],
    );
    assert.equal(stats.b.keyframeRequests, 3);
    assert.equal(stats.b.keyframesFromCache, 1);
    assert.equal(stats.b.framesSkippedForKeyframe, (75 - 70) + (225 - 210));
    assert.equal(viewers.lowestEstimate(), 2.8 * M);
  } finally {
    feed.source.stop();
    viewers.close();
  }
});

Deno.test("viewers: a viewer starting on the lowest rung catches up from that rung's GOP", async () => {
  const clock = new SimClock();
  const signaling = new MemorySignaling();
  const factory = new MemorySessions();
  const source = await FileVideoSource.openLadder({ rungs: RUNGS });
  const viewers = new Viewers({
    signaling,
    factory,
    renditions: source.renditions,
    adaptation: { now: clock.now, start: "lowest" },
  });
  const feed = await ladderFeeding(viewers, clock);
  try {
    feed.until(40);
    const c = await join("c", signaling, factory);
    await until(() => c.frames.length === 16, "c's catch-up (instants 25–40)", 5000);
    feed.until(60);
    assert.equal(c.frames.length, 36);
    assert.ok(c.frames.every((f) => f.rendition === 1), "only 360p");
    assert.deepEqual(c.frames[0].data, await Deno.readFile(`${LOW}frame-0026.h264`));
    assert.deepEqual(oneRungAtATime(c.frames), []);
    assert.equal(viewers.stats()[0].renditionLabel, "360p");
  } finally {
    feed.source.stop();
    viewers.close();
  }
});

Deno.test("viewers: without a ladder every frame goes, as before", async () => {
  const clock = new SimClock();
  const signaling = new MemorySignaling();
  const factory = new MemorySessions();
  const source = await FileVideoSource.open({ dir: LOW, clock });
  const viewers = new Viewers({ signaling, factory, renditions: source.renditions });
  source.start((f) => viewers.writeFrame(f));
  try {
    const d = await join("d", signaling, factory);
    for (let i = 0; i < 30; i++) clock.advance(40);
    d.callbacks.onEstimate!(100_000); // far below the only rendition: nothing to switch to
    for (let i = 0; i < 30; i++) clock.advance(40);
    assert.equal(d.frames.length, 61);
    assert.ok(d.frames.every((f, i) => f.data === source.frames[i].data && !("rendition" in f)));
    const [stats] = viewers.stats();
    assert.deepEqual(
      [stats.rendition, stats.renditionLabel, stats.renditionSwitches, stats.estimateBps],
      [undefined, undefined, 0, 100_000],
    );
  } finally {
    source.stop();
    viewers.close();
  }
});

Deno.test("master: estimate and rendition events, the lowest estimate to the source", async () => {
  const server = new WsServer();
  const clock = new SimClock();
  const ladder = await FileVideoSource.openLadder({ rungs: RUNGS, clock });
  const targets: number[] = [];
  const source: VideoSource = {
    codec: "h264",
    renditions: ladder.renditions,
    profileLevelId: ladder.profileLevelId,
    start: (onFrame) => ladder.start(onFrame),
    stop: () => ladder.stop(),
    idle: (idle) => ladder.idle(idle),
    requestKeyframe: () => ladder.requestKeyframe(),
    setTargetBitrate: (bps) => targets.push(bps),
  };
  const factory = new MemorySessions();
  const master = await startMaster({
    channel: "demo-channel",
    region: "us-west-2",
    controlPlane: new ScriptedControlPlane(server.url),
    credentials: new CountingCredentials(),
    peerSessionFactory: factory,
    source,
    adaptation: { now: clock.now },
    signaling: { endpointCache: false, stunUrl: false },
  });
  const events: { [K in "estimate" | "rendition"]: MasterEventMap[K][] } = {
    estimate: [],
    rendition: [],
  };
  master.on("estimate", (e) => events.estimate.push(e));
  master.on("rendition", (e) => events.rendition.push(e));
  try {
    await master.waitForState("Connected", 10_000);
    const conn = await server.conn(0);
    const connect = async (viewerId: string) => {
      deliver(conn, "SDP_OFFER", viewerId, { type: "offer", sdp: "v=0\r\n" });
      await until(() => factory.sessions.has(viewerId), `${viewerId}'s session`, 5000);
      const s = factory.sessions.get(viewerId)!;
      await until(
        () => conn.received.some((m) => m.includes('"SDP_ANSWER"') && m.includes(viewerId)),
        `${viewerId}'s answer`,
        5000,
      );
      s.connect();
      return s;
    };
    clock.advance(1000); // the ladder rests (no viewer) after its first instant
    const v1 = await connect("v1");
    const v2 = await connect("v2");
    v1.callbacks.onEstimate!(2 * M);
    v2.callbacks.onEstimate!(5 * M);
    v2.callbacks.onEstimate!(1 * M);
    v2.callbacks.onEstimate!(1.05 * M); // 5 %: not worth re-tuning an encoder for
    assert.deepEqual(targets, [2 * M, 1 * M]);
    v2.callbacks.onClosed("gone"); // the slowest left: the next slowest sets the pace
    assert.deepEqual(targets, [2 * M, 1 * M, 2 * M]);
    for (let i = 0; i < 50; i++) clock.advance(40); // v1 below 2.64 Mb/s: down at an IDR
    assert.deepEqual(events.estimate.map((e) => [e.viewerId, e.bps]), [
      ["v1", 2 * M],
      ["v2", 5 * M],
      ["v2", 1 * M],
      ["v2", 1.05 * M],
    ]);
    assert.deepEqual(events.rendition, [
      { viewerId: "v1", rendition: 1, label: "360p", previous: 0, reason: "estimate-low" },
    ]);
    const [stats] = master.viewers();
    assert.deepEqual([stats.viewerId, stats.renditionLabel, stats.renditionSwitches], [
      "v1",
      "360p",
      1,
    ]);
    oneRungAtATime(v1.frames);
  } finally {
    await master.close();
    await server.close();
  }
});
