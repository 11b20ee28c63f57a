// The core's instance pool keeps a few idle instances, never every one a burst of sessions made:
// a flood of offers must not leave its sessions' memory behind.
import assert from "node:assert/strict";
import { silentLogger } from "../src/log.ts";
import { mediaCoreMemoryBytes } from "../src/peer/media_core.ts";
import type { PeerSession } from "../src/peer/types.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";

const offer = (await Deno.readTextFile(new URL("fixtures/chromium_offer.sdp", import.meta.url)))
  .split("\r\n").filter((l) => !l.startsWith("a=candidate:")).join("\r\n");

Deno.test("core pool: bursts of 30 sessions leave no more than a few idle instances", async () => {
  const factory = new WasmPeerSessionFactory({ loopbackOnly: true });
  await factory.prepare();
  const callbacks = {
    onLocalCandidate: () => {},
    onStateChange: () => {},
    onKeyframeRequest: () => {},
    onClosed: () => {},
  };
  const rounds: number[] = [];
  for (let round = 0; round < 4; round++) {
    const sessions: PeerSession[] = [];
    for (let i = 0; i < 30; i++) {
      const s = await factory.create({
        viewerId: `v${i}`,
        iceServers: [],
        logger: silentLogger,
        callbacks,
      });
      await s.acceptOffer(offer);
      sessions.push(s);
    }
    const busy = mediaCoreMemoryBytes();
    for (const s of sessions) s.close("round over");
    await new Promise((r) => setTimeout(r, 50)); // the background refill, if any
    rounds.push(mediaCoreMemoryBytes());
    assert.ok(busy > rounds.at(-1)! * 5, `30 sessions ${busy} B, after ${rounds.at(-1)} B`);
  }
  // Before: every instance past the 16th stayed counted and alive (40 → 58 → 77 → 95 MB).
  assert.ok(rounds.every((b) => b <= 4 * 4 * 1024 * 1024), `after each round: ${rounds} B`);
  assert.ok(rounds[3] <= rounds[0] + 1024 * 1024, `no growth round to round: ${rounds}`);
});
