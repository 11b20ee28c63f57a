// The master behind a TURN-only policy: its sessions offer and use only relay candidates from the
// real coturn the emulator runs (over UDP, TCP and TLS), Chromium plays the video through them,
// and TURN credentials that run out every few seconds are replaced in live allocations.
import assert from "node:assert/strict";
import { startDemo } from "../cli/demo.ts";
import { createLogger, silentLogger } from "../src/log.ts";
import type { PeerSessionFactory } from "../src/peer/types.ts";
import { WasmPeerSessionFactory, type WasmPeerSessionOptions } from "../src/peer/wasm_session.ts";
import { launchBrowser, type ViewerPage } from "./support/browser.ts";

/** A relay-only factory trusting the emulator's CA (known once the emulator has made it). */
function relayOnly(
  more: WasmPeerSessionOptions = {},
): { factory: PeerSessionFactory; trust(caPem: string): void } {
  let inner: WasmPeerSessionFactory | undefined;
  return {
    factory: { create: (o) => inner!.create(o) },
    trust(caPem) {
      inner = new WasmPeerSessionFactory({
        loopbackOnly: true,
        iceTransportPolicy: "relay",
        turnCaCerts: [caPem],
        silenceTimeoutMs: 4000,
        ...more,
      });
    },
  };
}

async function frames(v: ViewerPage): Promise<number> {
  return (await v.status()).framesDecoded;
}

Deno.test({
  name: "TURN-only master: media flows through its relay over udp, tcp and tls",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const relay = relayOnly();
    const demo = await startDemo({
      loopbackOnly: true,
      stateDir: new URL("../.kvs-emulator/", import.meta.url).pathname,
      channel: `turn-${crypto.randomUUID().slice(0, 8)}`,
      peerSessionFactory: relay.factory,
      logger: silentLogger,
      turn: true,
    });
    relay.trust(await Deno.readTextFile(demo.emulator.env().AWS_KVS_CACERT_PATH));
    const browser = await launchBrowser();
    try {
      await demo.master.waitForState("Connected", 15_000);
      const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
      for (const transport of ["udp", "tcp", "tls"] as const) {
        await t.step(`over ${transport}`, async () => {
          // The ICE configuration lists only this way to reach TURN.
          demo.emulator.faults.turnTransports = [transport];
          const v = await browser.openViewer({ pageUrl: demo.pageUrl, params });
          try {
            const s = await v.waitFor((x) => x.framesDecoded >= 10, 20_000, "relayed frames");
            assert.equal(s.remoteCandidateType, "relay", "the viewer reaches us at our relay");
            const ours = demo.master.viewers().find((x) => x.viewerId === s.clientId);
            assert.match(ours?.selectedPair ?? "", /^relay#\d+ -> /);
          } finally {
            await v.close();
            demo.emulator.faults.turnTransports = undefined;
          }
        });
      }
    } finally {
      await browser.close();
      await demo.close();
    }
  },
});

/** The master's allocations in coturn's log: credential expiry, refreshes, refusals. */
function masterAllocations(log: string[]) {
  const all = new Map<string, { expiry: number; refreshed: number; refused: string[] }>();
  for (const line of log) {
    const m = line.match(/session (\d+): .*(?:username=<|user <)(\d+):ProducerMaster/);
    if (!m) continue;
    const [, session, expiry] = m;
    if (/: new, /.test(line)) {
      all.set(session, { expiry: Number(expiry), refreshed: 0, refused: [] });
    }
    const a = all.get(session);
    if (!a) continue;
    if (/REFRESH processed, success/.test(line)) a.refreshed++;
    const err = line.match(/error (\d{3}: .*)$/);
    if (err) a.refused.push(err[1]);
  }
  return [...all.values()];
}

Deno.test({
  name: "TURN credentials past their Ttl: live relays keep refreshing, new viewers get fresh ones",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // Credentials valid 4 s, fetched again every 2 s; the master refreshes its allocations every
    // 2 s. An allocation stays bound to the credential that made it (RFC 8656: another username
    // is refused with 441), so live relays keep theirs while new sessions take the fresh ones.
    const warnings: string[] = [];
    const relay = relayOnly({ turnRefreshIntervalSeconds: 2 });
    const demo = await startDemo({
      loopbackOnly: true,
      stateDir: new URL("../.kvs-emulator/", import.meta.url).pathname,
      channel: `turn-ttl-${crypto.randomUUID().slice(0, 8)}`,
      peerSessionFactory: relay.factory,
      logger: createLogger({
        level: "warn",
        sink: (r) => void (r.level === "warn" && warnings.push(r.message)),
      }),
      turn: true,
      emulator: { iceServerTtlSeconds: 4, turnLog: true },
    });
    relay.trust(await Deno.readTextFile(demo.emulator.env().AWS_KVS_CACERT_PATH));
    const browser = await launchBrowser();
    try {
      await demo.master.waitForState("Connected", 15_000);
      demo.emulator.faults.turnTransports = ["udp"];
      const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
      const first = await browser.openViewer({ pageUrl: demo.pageUrl, params });
      try {
        await first.waitFor((x) => x.framesDecoded >= 10, 20_000, "relayed frames");
        const before = await frames(first);
        // Two and a half credential lifetimes.
        await new Promise((r) => setTimeout(r, 10_000));
        const after = await frames(first);
        assert.ok(after >= before + 150, `playing: ${before} → ${after} frames in 10 s`);
        const [a] = masterAllocations(demo.emulator.turn!.log());
        assert.ok(a, "coturn saw the master's allocation");
        assert.ok(a.refreshed >= 3, `${a.refreshed} refreshes in 10 s`);
        assert.deepEqual(a.refused, [], "coturn refused requests of a live allocation");

        // A viewer joining now is relayed with credentials fetched after the first expired.
        const second = await browser.openViewer({ pageUrl: demo.pageUrl, params });
        try {
          await second.waitFor((x) => x.framesDecoded >= 10, 20_000, "second relayed viewer");
          const all = masterAllocations(demo.emulator.turn!.log());
          const newest = all[all.length - 1];
          assert.ok(all.length >= 2, "a second allocation");
          assert.ok(
            newest.expiry >= a.expiry + 6,
            `the new allocation's credential expires at ${newest.expiry}, the first at ${a.expiry}`,
          );
        } finally {
          await second.close();
        }
        assert.deepEqual(warnings.filter((w) => w.includes("TURN")), []);
      } finally {
        await first.close();
      }
    } finally {
      await browser.close();
      await demo.close();
    }
  },
});
