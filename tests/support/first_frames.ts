/**
 * A {@link PeerSessionFactory} that records the first frame each connected session was given
 * (tests assert it is an IDR, with its parameter sets), around a real factory.
 *
 * @module
 */
import type { EncodedFrame } from "../../src/media/types.ts";
import type { PeerSessionFactory } from "../../src/peer/types.ts";
import { WasmPeerSessionFactory } from "../../src/peer/wasm_session.ts";

/** Records each viewer's first frame, by viewer id; sessions come from `inner`. */
export class FirstFrames implements PeerSessionFactory {
  readonly first = new Map<string, EncodedFrame>();
  readonly #inner: PeerSessionFactory;

  /** Wrap `inner` (default: WASM sessions on loopback). */
  constructor(inner: PeerSessionFactory = new WasmPeerSessionFactory({ loopbackOnly: true })) {
    this.#inner = inner;
  }

  async create(o: Parameters<PeerSessionFactory["create"]>[0]) {
    const s = await this.#inner.create(o);
    return {
      viewerId: s.viewerId,
      acceptOffer: (sdp: string) => s.acceptOffer(sdp),
      addRemoteCandidate: (c: Parameters<typeof s.addRemoteCandidate>[0]) =>
        s.addRemoteCandidate(c),
      writeFrame: (f: EncodedFrame) => {
        if (!this.first.has(o.viewerId) && s.stats().state === "connected") {
          this.first.set(o.viewerId, f);
        }
        s.writeFrame(f);
      },
      stats: () => s.stats(),
      close: (r?: string) => s.close(r),
    };
  }
}
