// Every session has a deadline from its offer: a viewer that sends no candidate, or whose only
// ways in are a STUN or TURN server that cannot be resolved or does not answer, frees its seat
// when the ICE connect timeout runs out — nothing has to arrive first to start the clock.
import assert from "node:assert/strict";
import { silentLogger } from "../src/log.ts";
import type { IceServer } from "../src/aws/types.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";
import { until } from "./support/until.ts";

const offer = (await Deno.readTextFile(new URL("fixtures/chromium_offer.sdp", import.meta.url)))
  .split("\r\n")
  .filter((l) => !l.startsWith("a=candidate:"))
  .join("\r\n");

/** A UDP port nobody answers on. */
function silentPort(): number {
  const s = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
}

Deno.test("a session ends at its ICE deadline whatever does not happen", async (t) => {
  const quiet = silentPort();
  const cases: [string, IceServer[]][] = [
    ["no candidates, no ICE servers", []],
    ["an unresolvable STUN server", [{ urls: ["stun:stun.nonexistent.invalid:3478"] }]],
    ["a TURN server that does not answer (UDP)", [{
      urls: [`turn:127.0.0.1:${quiet}?transport=udp`],
      username: "u",
      credential: "p",
    }]],
    ["a TURN server that refuses the connection (TCP)", [{
      urls: [`turn:127.0.0.1:${quiet}?transport=tcp`],
      username: "u",
      credential: "p",
    }]],
  ];
  const factory = new WasmPeerSessionFactory({ loopbackOnly: true, iceConnectTimeoutMs: 1500 });
  for (const [what, iceServers] of cases) {
    await t.step(what, async () => {
      let closed: string | undefined;
      const session = await factory.create({
        viewerId: "silent",
        iceServers,
        logger: silentLogger,
        callbacks: {
          onLocalCandidate: () => {},
          onStateChange: () => {},
          onKeyframeRequest: () => {},
          onClosed: (reason) => closed = reason,
        },
      });
      const t0 = performance.now();
      try {
        await session.acceptOffer(offer);
        await until(() => closed !== undefined, "the session to end", 6000);
        const ms = performance.now() - t0;
        assert.match(closed!, /ICE failed: no candidate pair was nominated within 1\.5 s/);
        assert.ok(ms >= 1400 && ms < 4000, `ended after ${ms.toFixed(0)} ms`);
        assert.equal(session.stats().state, "closed");
      } finally {
        session.close("test over");
      }
    });
  }
});
