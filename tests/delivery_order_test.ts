// Ten WASM sessions at once, each played by an independent WebRTC stack (werift) over real ICE +
// DTLS-SRTP on loopback: every viewer's RTP packets must arrive in the order the core made them,
// none sent twice and none dropped by the sender, while the 720p samples go to all ten.
import assert from "node:assert/strict";
import { silentLogger } from "../src/log.ts";
import { FileVideoSource } from "../src/media/file_source.ts";
import type { IceCandidateInit, PeerSession } from "../src/peer/types.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";
import { until } from "./support/until.ts";
import { isLoopbackCandidate, loopbackPeer } from "./support/werift_peer.ts";

const VIEWERS = 10;

interface Arrivals {
  /** Sequence numbers in arrival order, extended past 16 bits. */
  seqs: number[];
  ssrcs: Set<number>;
}

for (const sendmmsg of [true, false]) {
  Deno.test({
    name:
      `10 WASM sessions: every viewer gets each frame's packets in order, none lost or repeated (${
        sendmmsg ? "sendmmsg" : "one send() per datagram"
      })`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => tenViewers(sendmmsg),
  });
}

async function tenViewers(sendmmsg: boolean) {
  {
    const source = await FileVideoSource.open({
      dir: new URL("../samples/h264", import.meta.url).pathname,
    });
    const factory = new WasmPeerSessionFactory({ loopbackOnly: true, sendmmsg });
    const sessions: PeerSession[] = [];
    const peers: Awaited<ReturnType<typeof loopbackPeer>>[] = [];
    const arrivals: Arrivals[] = [];
    const states: string[] = [];
    const transceivers: { receiver: { nackEnabled: unknown } }[] = [];
    try {
      for (let i = 0; i < VIEWERS; i++) {
        const pc = await loopbackPeer();
        peers.push(pc);
        // These viewers never NACK (see the answer below), so no packet is ever sent twice: any
        // late arrival is the sender's order.
        const got: Arrivals = { seqs: [], ssrcs: new Set() };
        arrivals.push(got);
        states.push("new");
        let last = -1;
        const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
        transceivers.push(transceiver);
        transceiver.onTrack.subscribe((track) =>
          track.onReceiveRtp.subscribe((rtp) => {
            got.ssrcs.add(rtp.header.ssrc);
            // Unwrap the 16-bit sequence number relative to the previous arrival.
            let seq = rtp.header.sequenceNumber;
            if (last >= 0) {
              const prev = last & 0xffff;
              const delta = ((seq - prev + 0x8000) & 0xffff) - 0x8000;
              seq = last + delta;
            }
            got.seqs.push(seq);
            last = Math.max(last, seq);
          })
        );
        const session = await factory.create({
          viewerId: `viewer-${i}`,
          iceServers: [],
          logger: silentLogger,
          callbacks: {
            onLocalCandidate: (c: IceCandidateInit) => {
              pc.addIceCandidate({ candidate: c.candidate, sdpMid: c.sdpMid ?? undefined })
                .catch(() => {});
            },
            onStateChange: (s) => states[i] = s,
            onKeyframeRequest: () => {},
            onClosed: () => states[i] = "closed",
          },
        });
        sessions.push(session);
        pc.onIceCandidate.subscribe((c) => {
          if (c && isLoopbackCandidate(c)) session.addRemoteCandidate(c.toJSON());
        });
        await pc.setLocalDescription(await pc.createOffer());
        const answer = await session.acceptOffer(pc.localDescription!.sdp);
        // Without the answer's NACK feedback lines the viewer asks for nothing again.
        const noNack = answer.replace(/a=rtcp-fb:\d+ nack( pli)?\r\n/g, "");
        await pc.setRemoteDescription({ type: "answer", sdp: noNack });
      }
      await until(() => states.every((s) => s === "connected"), "ten connected sessions", 20_000);
      assert.ok(transceivers.every((t) => !t.receiver.nackEnabled), "viewers that do not NACK");

      // 100 frames of 720p (IDRs of ~50 datagrams), each frame to all ten sessions in turn.
      const frames = source.frames;
      const start = frames.findIndex((f) => f.keyframe);
      const t0 = performance.now();
      for (let n = 0; n < 100; n++) {
        const f = frames[(start + n) % frames.length];
        const frame = { data: f.data, keyframe: f.keyframe, timestampUs: n * 40_000 };
        for (const s of sessions) s.writeFrame(frame);
        // A frame every 100 ms: each frame is still one burst per session (what reordered), and
        // the ten viewers in this process get time to read their sockets on a loaded machine.
        const wait = t0 + (n + 1) * 100 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const sent = sessions.map((s) => s.stats().packetsSent);
      await until(() => arrivals.every((a, i) => a.seqs.length >= sent[i]), "every packet", 5_000)
        .catch(() => {}); // the assertions below say what is missing
      for (const [i, a] of arrivals.entries()) {
        const outOfOrder = a.seqs.filter((s, k) => k > 0 && s < a.seqs[k - 1]).length;
        const distinct = new Set(a.seqs);
        const span = Math.max(...a.seqs) - Math.min(...a.seqs) + 1;
        const st = sessions[i].stats();
        assert.equal(st.sendErrors, 0, `viewer ${i}: send errors`);
        assert.equal(st.datagramsDropped, 0, `viewer ${i}: dropped`);
        assert.equal(a.ssrcs.size, 1, `viewer ${i}: one SSRC`);
        assert.ok(sent[i] > 1000, `viewer ${i}: ${sent[i]} packets sent`);
        assert.equal(outOfOrder, 0, `viewer ${i}: ${outOfOrder} of ${a.seqs.length} out of order`);
        assert.equal(distinct.size, a.seqs.length, `viewer ${i}: duplicates`);
        // Every datagram left (no send error, none dropped: checked above). The ten viewers
        // share this test process, and on a saturated machine their sockets can overflow while
        // it is stalled (5 % of one viewer's was seen with the whole suite running beside it):
        // missing at the receiver is theirs, bounded loosely (and makes no reordering).
        const missing = sent[i] - a.seqs.length;
        assert.ok(
          missing >= 0 && missing <= Math.max(3, sent[i] * 0.1),
          `viewer ${i}: ${a.seqs.length} of ${sent[i]} arrived`,
        );
        assert.ok(span <= sent[i], `viewer ${i}: sequence numbers beyond those sent`);

        assert.equal(st.nacksReceived, 0, `viewer ${i}: NACKs`);
        assert.equal(st.packetsRetransmitted, 0, `viewer ${i}: retransmissions`);
        // This test runs with -A on Linux: FFI is there, so frames leave in sendmmsg batches.
        if (sendmmsg) assert.ok(st.datagramsBatched! > sent[i] / 2, `viewer ${i}: batched`);
        else assert.equal(st.datagramsBatched, 0);
      }
    } finally {
      for (const s of sessions) s.close("test over");
      for (const pc of peers) await pc.close().catch(() => {});
    }
  }
}
