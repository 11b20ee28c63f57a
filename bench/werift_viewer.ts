/**
 * A werift viewer that joins a channel through the KVS signaling service (or the emulator) as a
 * real viewer does: presigned WebSocket with a ClientId, SDP offer, trickled candidates, and
 * counts the RTP packets it receives. Shared by the load and soak runs.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { KvsClient } from "../src/aws/kvs_client.ts";
import { loopbackPeer } from "../tests/support/werift_peer.ts";

/** A connected viewer. */
export interface WeriftViewer {
  /** RTP packets received so far. */
  packets: number;
  /** Offer sent → first RTP packet, ms. */
  firstPacketMs?: number;
  close(): Promise<void>;
}

/** Join `arn` as viewer `clientId`, with `kvs` signing as a viewer. */
export async function connectWeriftViewer(
  kvs: KvsClient,
  http: Deno.HttpClient,
  arn: string,
  clientId: string,
): Promise<WeriftViewer> {
  const ep = await kvs.getSignalingChannelEndpoint(arn, "VIEWER");
  const ws = new WebSocket(await kvs.presignSignalingUrl(ep.wss, arn, clientId), {
    client: http,
  } as unknown as string[]);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const pc = await loopbackPeer();
  const viewer: WeriftViewer = {
    packets: 0,
    close: async () => {
      ws.close();
      await pc.close().catch(() => {});
    },
  };
  const send = (action: string, payload: unknown) =>
    ws.send(JSON.stringify({
      action,
      messagePayload: Buffer.from(JSON.stringify(payload)).toString("base64"),
    }));
  let offerAt = 0;
  const t = pc.addTransceiver("video", { direction: "recvonly" });
  t.onTrack.subscribe((track) =>
    track.onReceiveRtp.subscribe(() => {
      if (viewer.packets++ === 0) viewer.firstPacketMs = performance.now() - offerAt;
    })
  );
  pc.onIceCandidate.subscribe((c) => {
    if (c && / 127\.0\.0\.1 /.test(c.candidate ?? "")) send("ICE_CANDIDATE", c.toJSON());
  });
  ws.onmessage = async (ev) => {
    const msg = JSON.parse(ev.data);
    if (!msg.messagePayload) return;
    const payload = JSON.parse(Buffer.from(msg.messagePayload, "base64").toString());
    if (msg.messageType === "SDP_ANSWER") await pc.setRemoteDescription(payload);
    else if (msg.messageType === "ICE_CANDIDATE") await pc.addIceCandidate(payload).catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  offerAt = performance.now();
  send("SDP_OFFER", { type: "offer", sdp: pc.localDescription!.sdp });
  return viewer;
}
