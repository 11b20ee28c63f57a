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
  /** The master's UDP ports, from the answer's and the trickled candidates. */
  masterPorts: Set<number>;
  /** Whether ICE and DTLS completed. */
  connected(): boolean;
  close(): Promise<void>;
  /**
   * Disappear without a word: from now on nothing leaves (no DTLS alert, no RTCP BYE, no ICE
   * check) and nothing received is looked at; then the peer and its sockets are torn down.
   */
  vanish(): Promise<void>;
}

/** Options of {@link connectWeriftViewer}. */
export interface WeriftViewerOptions {
  /** Called for each RTP packet received, with its RTP timestamp. */
  onRtp?: (rtpTimestamp: number) => void;
}

/** The UDP ports of `a=candidate` lines (or candidate strings) in `text`. */
export function candidatePorts(text: string): number[] {
  return [...text.matchAll(/candidate:\S+ \d+ udp \d+ \S+ (\d+) typ/gi)].map((m) => Number(m[1]));
}

/** Join `arn` as viewer `clientId`, with `kvs` signing as a viewer. */
export async function connectWeriftViewer(
  kvs: KvsClient,
  http: Deno.HttpClient,
  arn: string,
  clientId: string,
  options: WeriftViewerOptions = {},
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
    masterPorts: new Set(),
    connected: () => pc.connectionState === "connected",
    close: async () => {
      ws.close();
      await pc.close().catch(() => {});
    },
    vanish: async () => {
      for (const t of pc.iceTransports) {
        // werift's ICE connection keeps one protocol (and UDP transport) per local address.
        const { protocols } = t.connection as unknown as {
          protocols: { transport?: { send: () => Promise<void>; onData: () => void } }[];
        };
        for (const { transport } of protocols) {
          if (!transport) continue;
          transport.send = () => Promise.resolve();
          transport.onData = () => {};
        }
      }
      ws.onmessage = null;
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
    track.onReceiveRtp.subscribe((rtp) => {
      if (viewer.packets++ === 0) viewer.firstPacketMs = performance.now() - offerAt;
      options.onRtp?.(rtp.header.timestamp);
    })
  );
  pc.onIceCandidate.subscribe((c) => {
    if (c && / 127\.0\.0\.1 /.test(c.candidate ?? "")) send("ICE_CANDIDATE", c.toJSON());
  });
  ws.onmessage = async (ev) => {
    const msg = JSON.parse(ev.data);
    if (!msg.messagePayload) return;
    const payload = JSON.parse(Buffer.from(msg.messagePayload, "base64").toString());
    if (msg.messageType === "SDP_ANSWER") {
      for (const port of candidatePorts(String(payload.sdp))) viewer.masterPorts.add(port);
      await pc.setRemoteDescription(payload);
    } else if (msg.messageType === "ICE_CANDIDATE") {
      for (const port of candidatePorts(String(payload.candidate))) viewer.masterPorts.add(port);
      await pc.addIceCandidate(payload).catch(() => {});
    }
  };
  await pc.setLocalDescription(await pc.createOffer());
  offerAt = performance.now();
  send("SDP_OFFER", { type: "offer", sdp: pc.localDescription!.sdp });
  return viewer;
}
