/**
 * A {@link PeerSessionFactory} backed by werift, an independent WebRTC stack, for testing the
 * signaling side end to end with real ICE and DTLS on loopback. It answers offers; it sends no
 * media.
 *
 * @module
 */
import {
  type IceCandidateInit,
  type PeerConnectionState,
  type PeerSession,
  type PeerSessionFactory,
  type PeerSessionOptions,
  type PeerStats,
  zeroPeerStats,
} from "../../src/peer/types.ts";

type Werift = typeof import("werift");

/** werift configured for loopback only. */
export async function loopbackPeer(): Promise<InstanceType<Werift["RTCPeerConnection"]>> {
  const { RTCPeerConnection, RTCRtpCodecParameters } = await import("werift");
  return new RTCPeerConnection({
    codecs: {
      video: [
        new RTCRtpCodecParameters({
          mimeType: "video/H264",
          clockRate: 90000,
          parameters: "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1",
        }),
      ],
    },
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceInterfaceAddresses: { udp4: "127.0.0.1" },
    iceUseIpv6: false,
  });
}

/** Only loopback candidates are exchanged: network tests stay on 127.0.0.0/8. */
export function isLoopbackCandidate(c: { candidate?: string } | undefined): boolean {
  return / 127\.0\.0\.1 /.test(c?.candidate ?? "");
}

/** Sessions made so far, for assertions. */
export class WeriftPeerSessionFactory implements PeerSessionFactory {
  readonly created: { viewerId: string; iceServers: number; states: PeerConnectionState[] }[] = [];

  async create(options: PeerSessionOptions): Promise<PeerSession> {
    const pc = await loopbackPeer();
    const record = {
      viewerId: options.viewerId,
      iceServers: options.iceServers.length,
      states: [] as PeerConnectionState[],
    };
    this.created.push(record);
    pc.onIceCandidate.subscribe((c) => {
      if (c && isLoopbackCandidate(c)) options.callbacks.onLocalCandidate(c.toJSON());
    });
    pc.connectionStateChange.subscribe((s) => {
      record.states.push(s as PeerConnectionState);
      options.callbacks.onStateChange(s as PeerConnectionState);
    });
    let closed = false;
    return {
      viewerId: options.viewerId,
      async acceptOffer(offerSdp: string): Promise<string> {
        await pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
        await pc.setLocalDescription(await pc.createAnswer());
        return pc.localDescription!.sdp;
      },
      addRemoteCandidate(candidate: IceCandidateInit): void {
        pc.addIceCandidate({
          candidate: candidate.candidate,
          sdpMid: candidate.sdpMid ?? undefined,
          sdpMLineIndex: candidate.sdpMLineIndex ?? undefined,
        }).catch(() => {});
      },
      writeFrame() {},
      stats(): PeerStats {
        return zeroPeerStats(record.states.at(-1) ?? "new");
      },
      close(reason?: string): void {
        if (closed) return;
        closed = true;
        pc.close().catch(() => {});
        options.callbacks.onClosed(reason ?? "closed");
      },
    };
  }
}
