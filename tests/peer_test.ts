// Media sessions facing bad input: offers without H.264, malformed SDP and candidates.
import assert from "node:assert/strict";
import { silentLogger } from "../src/log.ts";
import type { PeerSessionCallbacks } from "../src/peer/types.ts";
import { OfferRejectedError, WeriftSessionFactory } from "./support/werift_session.ts";

function callbacks(): PeerSessionCallbacks & { closed: string[] } {
  const closed: string[] = [];
  return {
    closed,
    onLocalCandidate() {},
    onStateChange() {},
    onKeyframeRequest() {},
    onClosed: (r) => closed.push(r),
  };
}

async function offerFrom(codec: "VP8" | "H264"): Promise<string> {
  const { RTCPeerConnection, RTCRtpCodecParameters } = await import("werift");
  const pc = new RTCPeerConnection({
    codecs: {
      video: [
        new RTCRtpCodecParameters({
          mimeType: `video/${codec}`,
          clockRate: 90000,
          ...(codec === "H264"
            ? { parameters: "profile-level-id=42e01f;packetization-mode=1" }
            : {}),
        }),
      ],
    },
  });
  pc.addTransceiver("video", { direction: "recvonly" });
  await pc.setLocalDescription(await pc.createOffer());
  const sdp = pc.localDescription!.sdp;
  await pc.close();
  return sdp;
}

Deno.test({
  name: "peer session: bad offers are refused clearly, bad candidates ignored",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const factory = new WeriftSessionFactory({ loopbackOnly: true });
    const make = async () => {
      const cb = callbacks();
      const s = await factory.create({
        viewerId: "v",
        iceServers: [],
        logger: silentLogger,
        callbacks: cb,
      });
      return { s, cb };
    };

    await t.step("an offer without H.264 names what is missing", async () => {
      const { s } = await make();
      await assert.rejects(s.acceptOffer(await offerFrom("VP8")), (e: unknown) => {
        assert.ok(e instanceof OfferRejectedError);
        assert.match(e.message, /no H\.264 video with packetization-mode=1/);
        return true;
      });
      s.close();
    });

    await t.step("text that is not SDP is refused", async () => {
      const { s } = await make();
      await assert.rejects(s.acceptOffer("hello"), OfferRejectedError);
      await assert.rejects(
        s.acceptOffer(
          "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n" +
            "a=fmtp:96 packetization-mode=1\r\n",
        ),
        OfferRejectedError,
      );
      s.close();
    });

    await t.step("a good offer is answered; junk and mDNS candidates do not throw", async () => {
      const { s, cb } = await make();
      const answer = await s.acceptOffer(await offerFrom("H264"));
      assert.match(answer, /a=rtpmap:\d+ H264\/90000/);
      assert.match(answer, /a=sendonly/);
      for (
        const candidate of [
          "garbage",
          "candidate:1 1 udp 1 1.2.3.4",
          "candidate:1 1 udp 2122260223 abcd.local 50000 typ host",
          "",
        ]
      ) {
        s.addRemoteCandidate({ candidate, sdpMid: "0", sdpMLineIndex: 0 });
      }
      await new Promise((r) => setTimeout(r, 100));
      s.close("done");
      assert.deepEqual(cb.closed, ["done"]);
      assert.equal(s.stats().state, "closed");
    });
  },
});
