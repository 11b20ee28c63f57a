// Firefox ESR as a tested viewer: the demo (emulator, our master streaming the samples, the
// viewer page on the official KVS JS SDK) played in headless Firefox, directly and relayed
// through coturn; the page's message when Firefox lacks its H.264 prefs; and the page's audio
// and data channel against a master that answers them (a werift stand-in), in Chromium and
// Firefox alike.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type Demo, startDemo } from "../cli/demo.ts";
import { createLogger } from "../src/log.ts";
import type { EncodedFrame } from "../src/media/types.ts";
import type {
  IceCandidateInit,
  PeerConnectionState,
  PeerSession,
  PeerSessionFactory,
  PeerSessionOptions,
  PeerStats,
} from "../src/peer/types.ts";
import { zeroPeerStats } from "../src/peer/types.ts";
import { launchBrowser, type TestBrowser, type ViewerStatus } from "./support/browser.ts";
import { ensureFirefoxNetwork, firefoxUnavailable, launchFirefox } from "./support/firefox.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;

/** Why Firefox cannot run here (printed, and its tests ignored), or null. */
const firefoxMissing = await (async () => {
  const why = await firefoxUnavailable();
  if (why) return why;
  try {
    await ensureFirefoxNetwork();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
})();
if (firefoxMissing) console.warn(`Firefox tests skipped: ${firefoxMissing}`);

interface AudioStatus {
  state: string;
  direction: string;
  currentDirection: string | null;
  microphone: string;
  packetsReceived: number;
  totalSamplesReceived: number;
  concealedSamples: number;
  codec: string | null;
}

interface DataChannelStatus {
  label: string;
  state: string;
  readyState: string;
  sent: number;
  echoed: number;
  received: number;
  lastRttMs: number | null;
  medianRttMs: number | null;
  pingsRequested: number;
}

const audioOf = (s: ViewerStatus) => s.audio as AudioStatus | null;
const channelOf = (s: ViewerStatus) => s.dataChannel as DataChannelStatus | null;

/**
 * Runs in the page: start the viewer with `turns:127.0.0.1:` URLs given as `turns:localhost:`
 * (Firefox ignores a `turns:` URL whose host is an IP address; the emulator's certificate names
 * both). Self-contained, as evaluated functions must be; no DOM types in this program.
 */
function startWithTurnsHostName(params: Record<string, string>): void {
  type Server = { urls: string | string[] };
  type Config = { iceServers?: Server[] };
  const g = globalThis as unknown as {
    RTCPeerConnection: new (c?: Config) => unknown;
    viewer: { start(p: Record<string, string>): void };
  };
  const Native = g.RTCPeerConnection;
  const named = (u: string) => u.replace(/^turns:127\.0\.0\.1:/, "turns:localhost:");
  g.RTCPeerConnection = function (c?: Config) {
    const iceServers = c?.iceServers?.map((s) => ({ ...s, urls: [s.urls].flat().map(named) }));
    return new Native({ ...c, iceServers });
  } as unknown as typeof Native;
  g.viewer.start(params);
}

function demoLogger(logs: unknown[]) {
  return createLogger({ level: "debug", sink: (r) => logs.push(r), component: "firefox" });
}

Deno.test({
  name: "end to end in headless Firefox ESR: H.264 decoded, directly and through coturn",
  ignore: firefoxMissing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const logs: unknown[] = [];
    // Firefox's host candidate is a non-loopback address, and it does not use a master's
    // 127.0.0.1 candidate (with loopbackOnly it reaches the master only as a peer-reflexive
    // address or through TURN): the master offers its non-loopback addresses, as outside tests,
    // and the pair is host to host.
    const demo: Demo = await startDemo({
      loopbackOnly: false,
      stateDir: STATE,
      channel: `firefox-${crypto.randomUUID().slice(0, 8)}`,
      logger: demoLogger(logs),
    });
    let browser: Awaited<ReturnType<typeof launchFirefox>> | undefined;
    const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
    try {
      browser = await launchFirefox();
      console.log(browser.network?.note);
      await demo.master.waitForState("Connected", 15_000);

      await t.step("Firefox decodes the 1280×720 samples from a host candidate", async () => {
        const v = await browser!.openViewer({ pageUrl: demo.pageUrl, params });
        try {
          const s = await v.waitFor(
            (s) => s.framesDecoded >= 25 && s.width > 0,
            20_000,
            "25 decoded frames",
          );
          assert.equal(s.codec, "H264");
          assert.equal(s.width, 1280);
          assert.equal(s.height, 720);
          assert.ok(s.ttffMs !== null && s.ttffMs > 0, `ttff ${s.ttffMs}`);
          assert.equal(s.localCandidateType, "host", s.selectedPair ?? "no pair");
          const stats = demo.master.viewers().find((x) => x.viewerId === s.clientId);
          assert.ok(stats, "the master lists the viewer");
          assert.equal(stats.state, "connected");
          assert.equal(stats.hotPath, "wasm");
          // Decoding goes on.
          const later = await v.waitFor(
            (x) => x.framesDecoded >= s.framesDecoded + 25,
            10_000,
            "25 more frames",
          );
          // Audio and the data channel are offered; whatever the master answers, the page
          // reports them (today's master declines both: absent) and the video plays.
          const a = audioOf(later);
          const d = channelOf(later);
          assert.ok(a && ["absent", "negotiated", "receiving"].includes(a.state), a?.state);
          assert.ok(d && d.label === "kvsDataChannel" && d.state !== "offered", d?.state);
          console.log(
            `Firefox TTFF ${s.ttffMs?.toFixed(0)} ms, ${s.selectedPair}; audio ${a.state}, ` +
              `data channel ${d.state}`,
          );
        } catch (e) {
          console.log(v.console.join("\n"));
          throw e;
        } finally {
          await v.close();
        }
      });

      if (demo.emulator.turn) {
        for (const transport of ["udp", "tcp", "tls"] as const) {
          await t.step(`relay only through coturn over ${transport}`, async () => {
            // The ICE configuration lists only this way to reach TURN.
            demo.emulator.faults.turnTransports = [transport];
            const relayed = { ...params, forceTurn: "1" };
            const v = await browser!.openViewer({
              pageUrl: demo.pageUrl,
              params: transport === "tls" ? { ...relayed, autostart: undefined } : relayed,
            });
            try {
              if (transport === "tls") {
                // The emulator lists turns:127.0.0.1, which Firefox ignores.
                await v.page.evaluate(startWithTurnsHostName, relayed);
              }
              const s = await v.waitFor(
                (s) => s.framesDecoded >= 10 && s.width > 0,
                20_000,
                `relayed frames over ${transport}`,
              );
              assert.equal(s.localCandidateType, "relay", s.selectedPair ?? "no pair");
              assert.equal(s.width, 1280);
              assert.equal(s.height, 720);
            } finally {
              await v.close();
              demo.emulator.faults.turnTransports = undefined;
            }
          });
        }
      }
    } catch (e) {
      console.log(logs.map((l) => JSON.stringify(l)).join("\n").slice(-20000));
      throw e;
    } finally {
      await browser?.close();
      await demo.close();
    }
  },
});

Deno.test({
  name: "Firefox without its H.264 prefs: the page says which two prefs to set",
  ignore: firefoxMissing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const demo = await startDemo({
      loopbackOnly: false,
      stateDir: STATE,
      channel: `firefox-noh264-${crypto.randomUUID().slice(0, 8)}`,
      turn: false,
      logger: demoLogger([]),
    });
    const browser = await launchFirefox({
      prefs: {
        "media.webrtc.hw.h264.enabled": false,
        "gfx.blacklist.webrtc.hw.acceleration.h264": 0,
      },
    });
    try {
      await demo.master.waitForState("Connected", 15_000);
      const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
      const v = await browser.openViewer({ pageUrl: demo.pageUrl, params });
      const s = await v.waitFor((s) => s.state === "error", 15_000, "the error state");
      assert.match(s.error ?? "", /no H\.264 decoder for WebRTC/);
      assert.match(s.error ?? "", /about:config/);
      assert.match(s.error ?? "", /media\.webrtc\.hw\.h264\.enabled to true/);
      assert.match(s.error ?? "", /gfx\.blacklist\.webrtc\.hw\.acceleration\.h264 to 1/);
      await v.close();
    } finally {
      await browser.close();
      await demo.close();
    }
  },
});

// --- A master that answers audio and data channels -------------------------------------------

type Werift = typeof import("werift");
type Pc = InstanceType<Werift["RTCPeerConnection"]>;

/** What the stand-in master saw of one viewer. */
interface EchoViewer {
  labels: string[];
  messagesEchoed: number;
  audioPacketsReceived: number;
}

/**
 * Sessions on werift that answer the way the master soon will: H.264 video (sent), Opus audio
 * (20 ms silence frames sent, whatever the viewer sends counted), and every data channel the
 * viewer opens echoing each message back. A stand-in to test the page, not a product part.
 */
class EchoSessionFactory implements PeerSessionFactory {
  readonly viewers = new Map<string, EchoViewer>();

  async create(o: PeerSessionOptions): Promise<PeerSession> {
    const w = await import("werift");
    const pc: Pc = new w.RTCPeerConnection({
      codecs: {
        video: [
          new w.RTCRtpCodecParameters({
            mimeType: "video/H264",
            clockRate: 90000,
            rtcpFeedback: [{ type: "nack" }, { type: "nack", parameter: "pli" }],
            parameters: "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1",
          }),
        ],
        audio: [
          new w.RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2 }),
        ],
      },
      iceServers: o.iceServers.flatMap((s) =>
        s.urls.filter((u) => !u.startsWith("turns:")).map((urls) => ({
          urls,
          username: s.username,
          credential: s.credential,
        }))
      ),
      iceUseIpv6: false,
    });
    const seen: EchoViewer = { labels: [], messagesEchoed: 0, audioPacketsReceived: 0 };
    this.viewers.set(o.viewerId, seen);
    return new EchoSession(w, pc, o, seen);
  }
}

class EchoSession implements PeerSession {
  readonly viewerId: string;
  #state: PeerConnectionState = "new";
  #closed = false;
  #video: InstanceType<Werift["RTCRtpSender"]> | undefined;
  #packetizer: InstanceType<Werift["H264Packetizer"]>;
  #audioTimer: ReturnType<typeof setInterval> | undefined;
  #stats = zeroPeerStats("new");

  constructor(
    private readonly w: Werift,
    private readonly pc: Pc,
    private readonly o: PeerSessionOptions,
    seen: EchoViewer,
  ) {
    this.viewerId = o.viewerId;
    this.#packetizer = new w.H264Packetizer({
      payloadType: 96,
      maxPayloadSize: 1100,
      inputFormat: "annexb",
    });
    pc.onIceCandidate.subscribe((c) => {
      if (!c || this.#closed) return;
      const j = c.toJSON();
      o.callbacks.onLocalCandidate({
        candidate: j.candidate ?? "",
        sdpMid: j.sdpMid ?? null,
        sdpMLineIndex: j.sdpMLineIndex ?? null,
      });
    });
    pc.connectionStateChange.subscribe((s) => {
      if (this.#closed || s === this.#state) return;
      this.#state = s as PeerConnectionState;
      o.callbacks.onStateChange(this.#state);
      if (s === "connected") o.callbacks.onVerified?.();
      if (s === "failed") this.close("ICE failed");
    });
    pc.onDataChannel.subscribe((channel) => {
      seen.labels.push(channel.label);
      channel.onMessage.subscribe((m) => {
        channel.send(m);
        seen.messagesEchoed++;
      });
    });
    pc.onTrack.subscribe((track) => {
      if (track.kind === "audio") track.onReceiveRtp.subscribe(() => seen.audioPacketsReceived++);
    });
  }

  async acceptOffer(offerSdp: string): Promise<string> {
    await this.pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
    for (const t of this.pc.getTransceivers()) {
      if (t.kind === "video") {
        t.setDirection("sendonly");
        this.#video = t.sender;
        t.sender.onRtcp.subscribe(() => {});
      } else if (t.kind === "audio") {
        const offered = t.direction;
        t.setDirection(offered === "sendrecv" || offered === "recvonly" ? "sendrecv" : "sendonly");
        this.#startAudio(t.sender);
      }
    }
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    return this.pc.localDescription!.sdp;
  }

  /** 20 ms Opus silence frames (TOC 0xf8: CELT fullband 20 ms; then 0xff 0xfe). */
  #startAudio(sender: InstanceType<Werift["RTCRtpSender"]>): void {
    let seq = 0;
    let ts = 0;
    this.#audioTimer = setInterval(() => {
      if (this.#state !== "connected") return;
      const header = new this.w.RtpHeader({
        sequenceNumber: seq = (seq + 1) & 0xffff,
        timestamp: ts = (ts + 960) >>> 0,
        marker: false,
      });
      const packet = new this.w.RtpPacket(header, Buffer.from([0xf8, 0xff, 0xfe]));
      sender.sendRtp(packet).catch(() => {});
    }, 20);
  }

  addRemoteCandidate(c: IceCandidateInit): void {
    if (this.#closed || !c.candidate || /\.local /.test(c.candidate)) return;
    this.pc.addIceCandidate({
      candidate: c.candidate,
      sdpMid: c.sdpMid ?? undefined,
      sdpMLineIndex: c.sdpMLineIndex ?? undefined,
    }).catch(() => {});
  }

  writeFrame(frame: EncodedFrame): void {
    const sender = this.#video;
    if (!sender || this.#state !== "connected" || this.#closed) return;
    const ts = Math.round(frame.timestampUs * 0.09) >>> 0;
    for (const p of this.#packetizer.packetize(Buffer.from(frame.data), ts)) {
      this.#stats.packetsSent++;
      sender.sendRtp(p).catch(() => {});
    }
    this.#stats.framesSent++;
  }

  stats(): PeerStats {
    return { ...this.#stats, state: this.#state, hotPath: "werift" };
  }

  close(reason = "closed"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#state = "closed";
    clearInterval(this.#audioTimer);
    this.pc.close().catch(() => {});
    this.o.callbacks.onClosed(reason);
  }
}

/**
 * The page against the stand-in: video plays, the remote audio is decoded, the microphone is
 * sent (`mic=1`), `ping=20` messages come back with their round trips, and a message typed in
 * the box is echoed too. The same scenario for either browser.
 */
async function audioAndData(
  browser: TestBrowser<unknown, unknown>,
  demo: Demo,
  factory: EchoSessionFactory,
  name: string,
): Promise<void> {
  const params = { ...Object.fromEntries(new URL(demo.viewerUrl).searchParams), mic: "1" };
  const v = await browser.openViewer({ pageUrl: demo.pageUrl, params: { ...params, ping: "20" } });
  try {
    const s = await v.waitFor(
      (s) =>
        s.framesDecoded >= 10 && channelOf(s)?.echoed === 20 &&
        (audioOf(s)?.totalSamplesReceived ?? 0) > 48_000,
      20_000,
      `${name}: video, 20 echoed pings and a second of audio`,
    );
    const a = audioOf(s)!;
    const d = channelOf(s)!;
    assert.equal(s.codec, "H264");
    assert.equal(a.state, "receiving");
    assert.equal(a.codec?.toLowerCase(), "audio/opus");
    assert.equal(a.microphone, "on");
    assert.equal(a.direction, "sendrecv");
    assert.equal(a.currentDirection, "sendrecv");
    assert.ok(a.packetsReceived > 25, `${a.packetsReceived} audio packets`);
    assert.equal(d.state, "open");
    assert.equal(d.sent, 20);
    assert.equal(d.received, 0);
    assert.ok(d.medianRttMs !== null && d.medianRttMs > 0 && d.medianRttMs < 1000);
    // The message box.
    const page = v.page as { evaluate(fn: () => void): Promise<unknown> };
    await page.evaluate(() => {
      // In the page (no DOM types in this program).
      const doc = (globalThis as unknown as {
        document: { getElementById(id: string): { value: string; click(): void } };
      }).document;
      doc.getElementById("message").value = "hello from the message box";
      doc.getElementById("send").click();
    });
    const after = await v.waitFor((x) => channelOf(x)?.echoed === 21, 5_000, "the typed echo");
    assert.equal(channelOf(after)!.sent, 21);
    const seen = factory.viewers.get(s.clientId!);
    assert.deepEqual(seen?.labels, ["kvsDataChannel"]);
    assert.equal(seen?.messagesEchoed, 21);
    assert.ok((seen?.audioPacketsReceived ?? 0) > 10, "the microphone reached the master");
    console.log(
      `${name}: data channel round trip median ${d.medianRttMs} ms, ` +
        `${a.packetsReceived} audio packets (${a.concealedSamples} samples concealed), ` +
        `${seen?.audioPacketsReceived} microphone packets at the master`,
    );
  } catch (e) {
    console.log(v.console.join("\n"));
    throw e;
  } finally {
    await v.close();
  }
}

Deno.test({
  name: "the page's audio and data channel against a master that answers them",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const factory = new EchoSessionFactory();
    const logs: unknown[] = [];
    const demo = await startDemo({
      stateDir: STATE,
      channel: `echo-${crypto.randomUUID().slice(0, 8)}`,
      turn: false,
      peerSessionFactory: factory,
      logger: demoLogger(logs),
    });
    try {
      await demo.master.waitForState("Connected", 15_000);
      await t.step("in Chromium (fake microphone)", async () => {
        const chromium = await launchBrowser({ args: ["--use-fake-device-for-media-stream"] });
        try {
          await audioAndData(chromium, demo, factory, "Chromium");
        } finally {
          await chromium.close();
        }
      });
      await t.step({
        name: "in Firefox ESR (fake microphone)",
        ignore: firefoxMissing !== null,
        fn: async () => {
          const firefox = await launchFirefox();
          try {
            await audioAndData(firefox, demo, factory, "Firefox");
          } finally {
            await firefox.close();
          }
        },
      });
    } catch (e) {
      console.log(logs.map((l) => JSON.stringify(l)).join("\n").slice(-20000));
      throw e;
    } finally {
      await demo.close();
    }
  },
});
