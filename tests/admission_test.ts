// Seats go to viewers that prove they are there. The bookkeeping alone (seats, the admission
// window, the queue of waiting offers, per-client budgets), then the whole product under attack:
// the emulator, our master and a real Chromium viewer, while clients with viewer credentials
// connect to signaling 20 times a second, each sending an offer and never doing ICE.
import assert from "node:assert/strict";
import { startDemo } from "../cli/demo.ts";
import { KvsClient } from "../src/aws/kvs_client.ts";
import { presignUrl } from "../src/aws/sigv4.ts";
import { StaticCredentialProvider } from "../src/credentials/static.ts";
import { createLogger, type LogRecord } from "../src/log.ts";
import { Admission } from "../src/viewers/admission.ts";
import { launchBrowser } from "./support/browser.ts";
import { until } from "./support/until.ts";

Deno.test("admission: seats, the admission window, the queue and budgets", async (t) => {
  await t.step(
    "an offer waits for proof; proof takes a seat; with every seat taken, refusal",
    () => {
      const a = new Admission({ seats: 2 });
      const v1 = a.offer("v1", 0);
      assert.equal(v1.kind, "admit");
      assert.deepEqual({ seated: a.seated, pending: a.pending }, { seated: 0, pending: 1 });
      if (v1.kind === "admit") {
        assert.equal(v1.deadline, 5000);
        assert.equal(a.verified("v1", v1.ticket, 300), true);
        assert.equal(a.verified("v1", v1.ticket, 400), true, "proving twice changes nothing");
      }
      const v2 = a.offer("v2", 500);
      if (v2.kind !== "admit") throw new Error(v2.kind);
      const v3 = a.offer("v3", 600);
      assert.equal(v3.kind, "admit", "two seats, one taken: v3 may wait too");
      assert.equal(a.verified("v2", v2.ticket, 700), true);
      if (v3.kind === "admit") {
        assert.equal(a.verified("v3", v3.ticket, 800), false, "no seat left when v3 proves");
      }
      const v4 = a.offer("v4", 900);
      assert.deepEqual(v4, { kind: "refuse", reason: "the master already serves 2 viewers" });
    },
  );

  await t.step(
    "the window: an offer unproven after 5 s loses its place and cannot come back",
    () => {
      const a = new Admission({ seats: 1, admissionWindowMs: 5000 });
      const v = a.offer("v", 0);
      if (v.kind !== "admit") throw new Error(v.kind);
      assert.equal(a.expire("v", v.ticket, 4999), false);
      assert.equal(a.expire("v", v.ticket, 5000), true);
      assert.equal(a.pending, 0);
      assert.equal(a.verified("v", v.ticket, 5001), false, "a late proof does not seat it");
      const late = a.offer("w", 6000);
      if (late.kind !== "admit") throw new Error(late.kind);
      assert.equal(a.verified("w", late.ticket, 11_001), false, "proof after the window");
    },
  );

  await t.step(
    "a full queue: the oldest offer that had its chance gives way; none other does",
    () => {
      const a = new Admission({ seats: 3, maxPending: 2, answerGraceMs: 500 });
      const s = a.offer("seated", 0);
      if (s.kind === "admit") a.verified("seated", s.ticket, 1);
      const p1 = a.offer("p1", 10);
      const p2 = a.offer("p2", 20);
      if (p1.kind !== "admit" || p2.kind !== "admit") throw new Error("admitted");
      assert.equal(p1.displaced, undefined);
      // Neither has been answered yet: nobody is pushed out, the newcomer is refused.
      assert.deepEqual(a.offer("p3", 30), {
        kind: "refuse",
        reason: "2 offers are already waiting for their viewers",
      });
      a.answered("p1", p1.ticket, 40);
      a.answered("p2", p2.ticket, 60);
      assert.equal(a.offer("p4", 400).kind, "refuse", "p1 answered 360 ms ago: still its turn");
      const p5 = a.offer("p5", 540);
      assert.equal(p5.kind === "admit" && p5.displaced, "p1", "answered 500 ms ago: it gives way");
      if (p5.kind === "admit") a.answered("p5", p5.ticket, 545);
      const p6 = a.offer("p6", 1100);
      assert.equal(p6.kind === "admit" && p6.displaced, "p2", "the oldest that had its chance");
      assert.deepEqual({ seated: a.seated, pending: a.pending }, { seated: 1, pending: 2 });
      assert.equal(a.verified("p1", p1.ticket, 1200), false, "a displaced offer cannot come back");
      // A seated viewer's new offer is never held up by the queue.
      assert.equal(a.offer("seated", 1300).kind, "admit");
    },
  );

  await t.step("a client offering again replaces its own entry only, seat included", () => {
    const a = new Admission({ seats: 1 });
    const first = a.offer("v", 0);
    if (first.kind === "admit") a.verified("v", first.ticket, 10);
    const again = a.offer("v", 3000);
    assert.equal(again.kind, "admit", "its own seat is not counted against it");
    assert.deepEqual({ seated: a.seated, pending: a.pending }, { seated: 0, pending: 1 });
    if (first.kind === "admit") {
      a.leave("v", first.ticket); // the replaced session closing frees nothing of the new one
      assert.equal(a.pending, 1);
    }
    if (again.kind === "admit") assert.equal(a.verified("v", again.ticket, 3100), true);
    assert.equal(a.offer("other", 3200).kind, "refuse");
  });

  await t.step("budgets: offers and candidates per client id, refilled over time", () => {
    const a = new Admission({
      seats: 10,
      offerBurst: 3,
      offerIntervalMs: 2000,
      candidateBurst: 5,
      candidatesPerSecond: 10,
    });
    const kinds = [0, 1, 2, 3].map((i) => a.offer("greedy", i).kind);
    assert.deepEqual(kinds, ["admit", "admit", "admit", "drop"]);
    assert.equal(a.offer("greedy", 1000).kind, "drop", "half a token after 1 s");
    assert.equal(a.offer("greedy", 2100).kind, "admit", "one token after 2 s");
    assert.equal(a.offer("someone-else", 2100).kind, "admit", "budgets are per client");
    const taken = Array.from({ length: 7 }, () => a.candidate("greedy", 3000));
    assert.deepEqual(taken, [true, true, true, true, true, false, false]);
    assert.equal(a.candidate("greedy", 3100), true, "10 a second: one more after 100 ms");
    assert.equal(a.candidate("greedy", 3100), false);
  });

  await t.step("the budgets remembered are bounded", () => {
    const a = new Admission({ seats: 10, maxTrackedClients: 3, offerBurst: 1 });
    for (const id of ["a", "b", "c", "d"]) a.offer(id, 0);
    // "a" was forgotten (least recently used), so it has a full budget again; "d" has not.
    assert.equal(a.offer("a", 1).kind, "admit");
    assert.equal(a.offer("d", 1).kind, "drop");
  });

  await t.step("limits are validated", () => {
    assert.throws(() => new Admission({ seats: 0 }), /seats must be a positive integer, got 0/);
    assert.throws(
      () => new Admission({ seats: 1, admissionWindowMs: NaN }),
      /admissionWindowMs must be a positive number/,
    );
  });
});

/** A base64 of UTF-8 JSON, as KVS signaling carries payloads. */
function payload(value: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return btoa(String.fromCharCode(...bytes));
}

Deno.test({
  name: "hostile viewers: a real viewer plays within 2 s while 20 offers a second never connect",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const logs: LogRecord[] = [];
    const demo = await startDemo({
      loopbackOnly: true,
      turn: false,
      stateDir: new URL("../.kvs-emulator/", import.meta.url).pathname,
      channel: `hostile-${crypto.randomUUID().slice(0, 8)}`,
      master: { maxViewers: 2 },
      logger: createLogger({ level: "info", sink: (r) => logs.push(r), component: "test" }),
    });
    const browser = await launchBrowser();
    const offer = (await Deno.readTextFile(new URL("fixtures/chromium_offer.sdp", import.meta.url)))
      .split("\r\n").filter((l) => !l.startsWith("a=candidate:")).join("\r\n");
    const creds = new StaticCredentialProvider(demo.emulator.viewerCredentials);
    const region = demo.emulator.region;
    const kvs = new KvsClient({
      region,
      credentials: creds,
      endpoint: demo.emulator.browserControlPlaneUrl,
    });
    const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
    const sockets = new Set<WebSocket>();
    let flooding = true;
    let sentOffers = 0;
    const seatSamples: { seated: number; pending: number }[] = [];
    try {
      await demo.master.waitForState("Connected", 15_000);
      const { ChannelARN } = await kvs.describeSignalingChannel(params.channel);
      const { wss: WSS } = await kvs.getSignalingChannelEndpoint(ChannelARN, "VIEWER");
      // An attacker with viewer credentials: a new client id every 50 ms, one offer each, then
      // gone after 300 ms (the service allows 10 viewer connections at once); no ICE at all.
      const flood = (async () => {
        const started = performance.now();
        for (let i = 0; flooding && performance.now() - started < 20_000; i++) {
          const clientId = `hostile-${i}`;
          const url = await presignUrl(await creds.getCredentials(), {
            url: `${WSS}?X-Amz-ChannelARN=${encodeURIComponent(ChannelARN)}` +
              `&X-Amz-ClientId=${clientId}`,
            region,
          });
          const ws = new WebSocket(url);
          sockets.add(ws);
          ws.onopen = () => {
            ws.send(JSON.stringify({
              action: "SDP_OFFER",
              recipientClientId: "",
              messagePayload: payload({ type: "offer", sdp: offer }),
            }));
            sentOffers++;
          };
          ws.onerror = () => {};
          setTimeout(() => {
            ws.close();
            sockets.delete(ws);
          }, 300);
          seatSamples.push(demo.master.seats);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();

      await t.step("the honest viewer's first frame comes within 2 s of its offer", async () => {
        await until(() => sentOffers >= 20, "the flood to be under way", 5000);
        const viewer = await browser.openViewer({ pageUrl: demo.pageUrl, params });
        try {
          const s = await viewer.waitFor((s) => s.framesDecoded >= 10, 15_000, "10 frames");
          assert.ok(s.ttffMs !== null && s.ttffMs <= 2000, `TTFF ${s.ttffMs} ms under the flood`);
          // It keeps playing while the flood goes on.
          const before = s.framesDecoded;
          await new Promise((r) => setTimeout(r, 2000));
          const after = await viewer.status();
          assert.ok(after.framesDecoded - before >= 35, `${after.framesDecoded - before} in 2 s`);
          const seated = demo.master.viewers().filter((v) => v.state === "connected");
          assert.deepEqual(seated.map((v) => v.viewerId), [s.clientId]);
          console.log(
            `TTFF ${s.ttffMs?.toFixed(0)} ms with ${sentOffers} hostile offers sent so far`,
          );
        } finally {
          await viewer.close();
        }
      });

      await t.step(
        "hostile offers never held a seat, waited at most 20 at once, and leave",
        async () => {
          flooding = false;
          await flood;
          assert.ok(sentOffers >= 60, `${sentOffers} hostile offers`);
          assert.ok(seatSamples.every((s) => s.pending <= 20 && s.seated <= 1), "bounded queue");
          await until(() => demo.master.seats.pending === 0, "waiting offers released", 7000);
          const left = demo.master.viewers().filter((v) => !v.viewerId.startsWith("hostile-"));
          assert.equal(demo.master.viewers().length, left.length, "no hostile session is left");
          const warnings = logs.filter((r) => r.level === "warn" || r.level === "error");
          assert.ok(
            warnings.length < sentOffers / 4,
            `${warnings.length} warnings for ${sentOffers} offers: notices are summarized`,
          );
        },
      );
    } finally {
      flooding = false;
      for (const ws of sockets) ws.close();
      await browser.close();
      await demo.close();
    }
  },
});

Deno.test({
  name: "a refused viewer is told why at once",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const demo = await startDemo({
      loopbackOnly: true,
      turn: false,
      stateDir: new URL("../.kvs-emulator/", import.meta.url).pathname,
      channel: `full-${crypto.randomUUID().slice(0, 8)}`,
      master: { maxViewers: 1 },
      logger: createLogger({ level: "error", sink: () => {}, component: "test" }),
    });
    const browser = await launchBrowser();
    const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
    try {
      await demo.master.waitForState("Connected", 15_000);
      const first = await browser.openViewer({ pageUrl: demo.pageUrl, params });
      await first.waitFor((s) => s.framesDecoded >= 1, 15_000, "the first viewer playing");
      const t0 = performance.now();
      const second = await browser.openViewer({ pageUrl: demo.pageUrl, params });
      const s = await second.waitFor((s) => s.state === "error", 10_000, "the refusal");
      assert.match(
        s.error ?? "",
        /answer: the master refused this viewer: refused: the master already serves 1 viewers/,
      );
      assert.ok(performance.now() - t0 < 5000, "told at once, not after an ICE timeout");
      assert.equal((await first.status()).state, "playing", "the seated viewer plays on");
    } finally {
      await browser.close();
      await demo.close();
    }
  },
});
