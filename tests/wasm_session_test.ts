// Sessions wholly in the WASM core (ICE, DTLS, SRTP, RTCP) played by headless Chromium through
// the emulator, the master and the official JS SDK viewer page.
import assert from "node:assert/strict";
import { startDemo } from "../cli/demo.ts";
import { silentLogger } from "../src/log.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";
import { launchBrowser } from "./support/browser.ts";

Deno.test({
  name:
    "WASM sessions: Chromium decodes the samples over ICE + DTLS-SRTP from the core; RTT from RTCP",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const demo = await startDemo({
      loopbackOnly: true,
      stateDir: new URL("../.kvs-emulator/", import.meta.url).pathname,
      channel: `wasm-${crypto.randomUUID().slice(0, 8)}`,
      peerSessionFactory: new WasmPeerSessionFactory({
        loopbackOnly: true,
        silenceTimeoutMs: 2000,
      }),
      logger: silentLogger,
      turn: false,
    });
    const browser = await launchBrowser();
    try {
      await demo.master.waitForState("Connected", 15_000);
      const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
      const v = await browser.openViewer({ pageUrl: demo.pageUrl, params });
      try {
        const s = await v.waitFor((x) => x.framesDecoded >= 25 && x.width > 0, 20_000, "frames");
        assert.equal(s.codec, "H264");
        // A rung of the sample ladder: 720p, or 360p once the estimate says so (a loaded machine).
        assert.ok([1280, 640].includes(s.width), `width ${s.width}`);
        const stats = demo.master.viewers()[0];
        assert.equal(stats.hotPath, "wasm");
        assert.ok(stats.packetsSent > 0);
        assert.equal(stats.srtpProfile, "AesCm128HmacSha1_80");
        // Our sender reports come back in Chromium's receiver reports: a round-trip time.
        const end = performance.now() + 5000;
        while (demo.master.viewers()[0]?.rttMs === undefined && performance.now() < end) {
          await new Promise((r) => setTimeout(r, 100));
        }
        const rtt = demo.master.viewers()[0]?.rttMs;
        assert.ok(rtt !== undefined && rtt >= 0 && rtt < 1000, `rtt ${rtt}`);
        // Chromium's transport-wide feedback reaches the estimator: on loopback the estimate
        // stays above what is sent (no false congestion), probes raised it, nothing was dropped.
        const seen: string[] = [];
        for (let i = 0; i < 8; i++) {
          await new Promise((r) => setTimeout(r, 500));
          const x = demo.master.viewers()[0];
          seen.push(
            `est ${((x.estimateBps ?? 0) / 1e6).toFixed(2)} acked ${
              ((x.ackedBps ?? 0) / 1e6).toFixed(2)
            } sent ${((x.sendingBps ?? 0) / 1e6).toFixed(2)} Mbit/s`,
          );
        }
        const cc = demo.master.viewers()[0];
        console.log(seen.join("\n"));
        assert.ok(cc.ackedBps !== undefined && cc.ackedBps > 0, "no transport-wide feedback read");
        assert.ok((cc.probesSent ?? 0) >= 1, "no probe");
        assert.equal(cc.pacerDropped, 0, "video dropped on loopback");
        assert.ok(
          cc.estimateBps! > cc.sendingBps!,
          `estimate ${cc.estimateBps} below what is sent (${cc.sendingBps}) on loopback`,
        );
        console.log(
          `TTFF ${s.ttffMs?.toFixed(0)} ms, first packet ${
            stats.timeToFirstPacketMs?.toFixed(0)
          } ms, RTT ${rtt?.toFixed(1)} ms, ${s.selectedPair}`,
        );
      } finally {
        await v.close();
      }
      // A closed page sends nothing more: its session ends and frees its seat.
      const end = performance.now() + 8000;
      while (demo.master.viewers().length > 0 && performance.now() < end) {
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(demo.master.viewers().length, 0, "session of a closed page still held");
    } finally {
      await browser.close();
      await demo.close();
    }
  },
});
