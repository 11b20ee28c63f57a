// Cost fuzzing of every parser a viewer's bytes reach: the SDP offer parser and the refusal
// answer (src/peer/sdp.ts), the signaling message decoder (src/signaling/messages.ts) and the
// media core's candidate parser, driven through a real session's addRemoteCandidate. Each input
// shape (tests/support/hostile.ts) is built at a size and at 16 times that size: both must parse
// or fail with the parser's documented error, and the cost per KB at 16 times the size must stay
// within a few times the cost per KB at the small size. A quadratic parser's cost per KB grows
// about 16-fold; a linear one's stays about the same (allocation and GC make it vary, up to
// about 5× on a loaded machine).
// Crashes and hangs are caught too, with an absolute bound per KB.
//
// Seeded: a failure names its seed and case. `FUZZ_SEED=<seed> deno test -A
// tests/parser_cost_fuzz_test.ts` replays a run; `FUZZ_CASES` sets the shapes drawn per parser.
import assert from "node:assert/strict";
import { createLogger } from "../src/log.ts";
import { OfferRejectedError } from "../src/peer/errors.ts";
import { MAX_OFFER_LENGTH, parseOffer, refusalAnswer } from "../src/peer/sdp.ts";
import type { PeerSession } from "../src/peer/types.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";
import {
  decodeSignalingMessage,
  MAX_SIGNALING_MESSAGE_BYTES,
  SignalingMessageError,
} from "../src/signaling/messages.ts";
import {
  CHROMIUM_OFFER_NO_CANDIDATES,
  type Hostile,
  hostileCandidate,
  hostileMessage,
  hostileOffer,
  Rng,
  worstCandidates,
  worstMessages,
  worstOffers,
} from "./support/hostile.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 1_000_000);
const CASES = Number(Deno.env.get("FUZZ_CASES") ?? "60");

/**
 * Most the cost per KB may grow from the small size to 16 times it. Linear parsers measure
 * 0.1–2.7 (fixed costs shrink per KB; allocation and GC grow a little), up to 5.5 with both
 * cores busy with other work; quadratic ones 12 to 50 (a lazy `(.+?)\s*$` on a candidate line
 * 12–14, on an SDP attribute 44).
 */
const MAX_GROWTH = 8;
/** Absolute bound for one input (best of three runs), whatever the machine's load: a hang. */
const maxMs = (chars: number) => 100 + 4 * chars / 1024;

/** A parser under test: `run` throws only for an undocumented failure. */
interface Target {
  name: string;
  /** Small size of the hostile part, characters (the large size is 16 times it) … */
  budget: number;
  /** … made smaller when the large input would exceed what the parser accepts at all. */
  limit: number;
  /** Size as {@link Target.limit} counts it (default: characters). */
  size?(input: string): number;
  run(input: string): void;
  /** Checks on the result (its failures are the test's too), outside the timed runs. */
  check?(input: string): void;
  /** Checks once every input ran. */
  after?(): void;
}

function expected<E>(cls: new (...a: never[]) => E, f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof cls)) throw e;
  }
}

/** ms that `n` calls of `f` take together. */
function chunk(f: () => void, n: number): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  return performance.now() - t0;
}

interface Verdict {
  growth: number;
  small: number;
  large: number;
  smallMs: number;
  largeMs: number;
}

/**
 * Build `h` at its small and large sizes, run `target` on both (its failures are the test's),
 * bound each by {@link maxMs}, and compare the cost per KB at both sizes. Each round times the
 * large input against as many small ones as make the same size, so both spans are alike (a
 * loaded machine preempts long spans more than short ones); the best of each is kept, over 5
 * rounds, or up to 40 while the growth exceeds {@link MAX_GROWTH}.
 */
function measure(target: Target, h: Hostile, where: string): Verdict {
  // An input over the parser's size limit is refused at once: keep the large one within it.
  const size = target.size ?? ((s: string) => s.length);
  let budget = target.budget;
  let large = h.build(16 * budget);
  for (let i = 0; i < 20 && size(large) > target.limit; i++) {
    budget *= 0.8;
    large = h.build(16 * budget);
  }
  assert.ok(size(large) <= target.limit, `${where}: ${h.what} fits ${target.name}'s limit`);
  const small = h.build(budget);
  let once = 0;
  for (const input of [small, large]) {
    try {
      target.check?.(input);
      // The best of three: one run may stall on a machine busy with other work.
      once = Infinity;
      for (let attempt = 0; attempt < 3 && once > maxMs(input.length); attempt++) {
        once = Math.min(once, chunk(() => target.run(input), 1));
      }
    } catch (e) {
      throw new Error(
        `${where}: ${target.name} threw for ${h.what} (${input.length} characters): ${
          (e as Error)?.stack ?? e
        }\ninput starts ${JSON.stringify(input.slice(0, 200))}`,
      );
    }
    assert.ok(
      once <= maxMs(input.length),
      `${where}: ${target.name} took ${
        once.toFixed(1)
      } ms for ${h.what} (${input.length} characters)`,
    );
  }
  // Spans of at least about 0.2 ms, so the timer's resolution does not matter.
  const reps = Math.min(200, Math.max(1, Math.ceil(0.2 / Math.max(once, 0.001))));
  const smalls = reps * Math.max(1, Math.round(large.length / small.length));
  // Untimed rounds first: the engine optimizes each input's path after a few runs.
  for (let round = 0; round < 3; round++) {
    chunk(() => target.run(small), smalls);
    chunk(() => target.run(large), reps);
  }
  let smallMs = Infinity;
  let largeMs = Infinity;
  let growth = Infinity;
  for (let round = 0; round < 40 && (round < 5 || growth > MAX_GROWTH); round++) {
    smallMs = Math.min(smallMs, chunk(() => target.run(small), smalls) / smalls);
    largeMs = Math.min(largeMs, chunk(() => target.run(large), reps) / reps);
    growth = (largeMs / large.length) / (smallMs / small.length);
  }
  return { growth, small: small.length, large: large.length, smallMs, largeMs };
}

function assertLinear(target: Target, h: Hostile, where: string): Verdict {
  const v = measure(target, h, where);
  assert.ok(
    v.growth <= MAX_GROWTH,
    `${where}: ${target.name} costs super-linear time for ${h.what}: ${v.smallMs.toFixed(3)} ms ` +
      `for ${v.small} characters, ${v.largeMs.toFixed(3)} ms for ${v.large} (cost per KB ×` +
      `${v.growth.toFixed(1)}, at most ×${MAX_GROWTH})`,
  );
  return v;
}

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length;
/** The largest frame the decoder reads (base64 payload and envelope of a 10 KB message). */
const DECODER_LIMIT = Math.ceil(MAX_SIGNALING_MESSAGE_BYTES * 4 / 3) + 1024;

const parseOfferTarget: Target = {
  name: "parseOffer",
  budget: 3300,
  limit: MAX_OFFER_LENGTH,
  run: (sdp) => expected(OfferRejectedError, () => parseOffer(sdp)),
  check(sdp) {
    try {
      const o = parseOffer(sdp);
      const pt = o.video?.payloadType ?? o.audio?.payloadType ?? 0;
      assert.ok(Number.isInteger(pt) && pt <= 127);
      assert.ok(o.iceUfrag.length <= 256 && o.icePwd.length <= 256 && o.candidates.length <= 64);
    } catch { /* refused: checked by run */ }
  },
};

const refusalTarget: Target = {
  name: "refusalAnswer",
  budget: 3300,
  limit: MAX_OFFER_LENGTH,
  run: (sdp) => void refusalAnswer(sdp, "the master already serves 10 viewers"),
  check(sdp) {
    const answer = refusalAnswer(sdp, "the master already serves 10 viewers");
    if (answer === undefined) return;
    // Nothing but short printable tokens from the offer is echoed.
    for (const line of answer.split("\r\n").slice(0, -1)) {
      assert.match(line, /^[\x20-\x7e]{1,220}$/, `answer line ${JSON.stringify(line)}`);
    }
  },
};

/** A signaling frame as the master reads it: decoded, then its offer parsed. */
const messageTarget: Target = {
  name: "decodeSignalingMessage",
  budget: 600,
  limit: DECODER_LIMIT,
  size: utf8Bytes,
  run(text) {
    expected(SignalingMessageError, () => {
      const m = decodeSignalingMessage(text);
      if (m.type === "SDP_OFFER") expected(OfferRejectedError, () => parseOffer(m.sdp));
    });
  },
  check(text) {
    // The same bytes as a binary frame decode alike.
    expected(SignalingMessageError, () => decodeSignalingMessage(new TextEncoder().encode(text)));
  },
};

Deno.test({
  name: `parser cost fuzz: hostile offers, candidates and messages cost linear time (seed ${SEED})`,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const closed: string[] = [];
    const logged = { warn: 0, debug: 0 };
    const logger = createLogger({
      level: "debug",
      sink: (r) => r.level === "warn" ? logged.warn++ : logged.debug++,
      component: "fuzz",
    });
    // A session as a viewer's offer makes it; its ICE clock long enough for the whole test.
    const session: PeerSession = await new WasmPeerSessionFactory({
      loopbackOnly: true,
      iceConnectTimeoutMs: 600_000,
    }).create({
      viewerId: "fuzz",
      iceServers: [],
      logger,
      callbacks: {
        onLocalCandidate() {},
        onStateChange() {},
        onKeyframeRequest() {},
        onClosed: (reason) => closed.push(reason),
      },
    });
    await session.acceptOffer(CHROMIUM_OFFER_NO_CANDIDATES);
    const candidateTarget: Target = {
      name: "addRemoteCandidate (the media core's candidate parser)",
      budget: 500,
      // What fits an ICE_CANDIDATE message.
      limit: MAX_SIGNALING_MESSAGE_BYTES,
      size: utf8Bytes,
      run(line) {
        session.addRemoteCandidate({ candidate: line, sdpMid: "0", sdpMLineIndex: 0 });
      },
      check(line) {
        assert.deepEqual(closed, [], `the session survives ${JSON.stringify(line.slice(0, 100))}`);
      },
      after() {
        assert.ok(logged.warn > 0, "refused candidates were logged");
        assert.ok(logged.debug > 0, "unused ones too");
      },
    };
    const families: [Target[], (r: Rng) => Hostile, Hostile[]][] = [
      [[parseOfferTarget, refusalTarget], hostileOffer, [
        ...worstOffers(),
        ...worstOffers(CHROMIUM_OFFER_NO_CANDIDATES).slice(0, 2),
      ]],
      [[messageTarget], hostileMessage, worstMessages()],
      [[candidateTarget], hostileCandidate, worstCandidates()],
    ];
    const started = performance.now();
    let worst = { growth: 0, what: "" };
    const note = (target: Target, h: Hostile, v: Verdict) => {
      if (v.growth > worst.growth) {
        worst = { growth: v.growth, what: `${target.name}, ${h.what}` };
      }
    };
    try {
      for (const [targets, draw, known] of families) {
        for (const target of targets) {
          await t.step(target.name, () => {
            // Warm up: the first runs compile and optimize the parser.
            const warm = draw(new Rng(SEED));
            for (let i = 0; i < 20; i++) target.run(warm.build(target.budget));
            known.forEach((h, i) => note(target, h, assertLinear(target, h, `worst input ${i}`)));
            const r = new Rng(SEED);
            for (let i = 0; i < CASES; i++) {
              const seed = r.seed();
              const h = draw(new Rng(seed));
              note(target, h, assertLinear(target, h, `seed ${SEED}, case ${i} (${seed})`));
            }
            target.after?.();
          });
        }
      }
    } finally {
      session.close();
    }
    console.log(
      `${((performance.now() - started) / 1000).toFixed(1)} s; largest growth of cost per KB ` +
        `×${worst.growth.toFixed(2)} (${worst.what}); seed ${SEED}`,
    );
  },
});
