// The pure-TypeScript reference master for bench/fair_load.ts, run under Node (werift's home
// runtime: OpenSSL with AES-NI for SRTP and DTLS).
//
// It does what our master does, with werift for everything a WebRTC peer does and nothing of
// ours: AWS IoT credentials over mutual TLS, SigV4-signed control plane (describe or create the
// channel, MASTER endpoint, ICE server configuration) and presigned signaling WebSocket against
// the emulator, then for each viewer's SDP offer a werift RTCPeerConnection (SDP answer, trickled
// ICE, DTLS-SRTP) sending H.264 video and Opus audio, and answering the viewer's data channels
// (SCTP over DTLS) with every message echoed back on its channel.
//
// Media: the Annex-B frames of a folder are looped at `fps`; each access unit is packetized ONCE
// by werift's H264Packetizer and the same RtpPacket objects are handed to every connected
// viewer's RTCRtpSender.sendRtp (which rewrites SSRC, sequence number and timestamp for its
// stream, keeps its own retransmission cache for NACKs and encrypts with its own SRTP session).
// As in our master, a viewer gets its first frame at an IDR, a viewer's PLI/FIR closes its gate
// until the next IDR, and keyframe requests (at most one per 500 ms) make the source jump to the
// folder's next IDR. A session whose viewer sends no RTCP for 8 s is closed, and so is one whose
// viewer closes DTLS (an alert, e.g. close_notify when its peer connection closes).
//
// Audio: the Opus packets of a file of records (2-byte big-endian length, then the packet; 20 ms
// each: bench/fair_load.ts writes it from samples/opus/tones.opus with our Ogg reader) are looped
// every 20 ms, in step with the video loop as our FileAudioSource.follow keeps them (the packet
// at the video's position plus the time since its last frame). Each packet is made into one
// RtpPacket ONCE and handed to every connected viewer's audio RTCRtpSender.sendRtp. A viewer
// whose audio section is sendrecv (a microphone) gets sendrecv and its packets are counted.
//
// Live video (bench/live_ttff.ts): with `--video-command '<shell command>'` instead of a folder,
// the command (run with sh -c, restarted 0.5 s after it exits) writes Annex-B H.264 to stdout;
// it is split into access units as it arrives (a boundary at each access unit delimiter, or
// without them at a parameter set, SEI or a slice with first_mb_in_slice = 0 after a picture:
// an access unit is complete when the next one begins) and each one is sent at once, timestamped
// by its arrival. A live encoder takes no keyframe requests: a new viewer, or one that sent a
// PLI/FIR, waits for the encoder's next IDR (werift's common behaviour; no GOP is kept).
//
// Usage (environment of the emulator, as `emulator.env()` gives it, plus NODE_EXTRA_CA_CERTS set
// to the emulator CA so Node's fetch and WebSocket trust it):
//   node werift_master.mjs <channel> <frames-dir> [fps] [opus-packets-file]
//   node werift_master.mjs <channel> --video-command '<command>' [fps] [opus-packets-file]
// Without the packets file no audio is sent (the viewer's audio section is answered inactive).
// Prints READY once signaling is connected, then one JSON line a second:
//   {"viewers":n,"packets":total,"stats":[{viewerId,state,packetsSent,framesSent,nacksReceived,
//     plisReceived,firsReceived,packetsRetransmitted,audioPacketsSent,audioPacketsReceived,
//     dataMessagesReceived,dataMessagesSent}]}
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import https from "node:https";
import process from "node:process";
import { Buffer } from "node:buffer";
import { AwsClient, AwsV4Signer } from "aws4fetch";
import WebSocket from "ws";
import {
  GenericNack,
  H264Packetizer,
  PictureLossIndication,
  RTCPeerConnection,
  RtcpPayloadSpecificFeedback,
  RtcpRrPacket,
  RtcpTransportLayerFeedback,
  RTCRtpCodecParameters,
  RtpHeader,
  RtpPacket,
} from "werift";

const argv = process.argv.slice(2);
const commandAt = argv.indexOf("--video-command");
const videoCommand = commandAt >= 0 ? argv.splice(commandAt, 2)[1] : undefined;
const [channel, ...rest] = argv;
const [dir, fpsArg = "25", opusFile] = videoCommand === undefined ? rest : [undefined, ...rest];
if (!channel || (!dir && !videoCommand?.trim())) {
  console.error(
    "usage: werift_master.mjs <channel> <frames-dir | --video-command '<command>'> [fps] " +
      "[opus-packets-file]",
  );
  process.exit(2);
}
const fps = Number(fpsArg);
const env = process.env;
const region = env.AWS_DEFAULT_REGION;
const KEYFRAME_INTERVAL_MS = 500;
const RTCP_TIMEOUT_MS = 8000;
const MAX_VIEWERS = 10;

// ---- frames -------------------------------------------------------------------------------

/** Whether an Annex-B access unit holds an IDR slice (NAL type 5). */
function isIdr(au) {
  for (let i = 0; i + 3 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1) {
      if ((au[i + 3] & 0x1f) === 5) return true;
      i += 2;
    }
  }
  return false;
}

/** The frames of the folder, looped from its first IDR (none with a live command). */
function readFrames(dir) {
  const names = readdirSync(dir).filter((n) => /\.(h264|264)$/i.test(n))
    .sort(new Intl.Collator("en", { numeric: true, sensitivity: "base" }).compare);
  const frames = names.map((n) => {
    const data = readFileSync(`${dir}/${n}`);
    return { data, keyframe: isIdr(data) };
  });
  const firstIdr = frames.findIndex((f) => f.keyframe);
  if (firstIdr < 0) throw new Error(`no IDR frame in ${dir}`);
  return [...frames.slice(firstIdr), ...frames.slice(0, firstIdr)];
}
const frames = dir ? readFrames(dir) : [];

const START_CODE_3 = Buffer.from([0, 0, 1]);
const START_CODE_4 = Buffer.from([0, 0, 0, 1]);
/** Largest access unit kept while waiting for its end (a stream without boundaries). */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * Annex-B bytes in, whole access units out (4-byte start codes). A NAL unit is complete at the
 * next start code; an access unit ends where the next begins: at an access unit delimiter, or,
 * after a picture, at a parameter set, an SEI or a slice with first_mb_in_slice = 0.
 */
class AccessUnitSplitter {
  #pending = Buffer.alloc(0);
  #scan = 0;
  /** Where the current NAL unit begins (after its start code), or -1 before the first one. */
  #nalStart = -1;
  #au = [];
  #auHasPicture = false;

  push(chunk) {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    const out = [];
    for (;;) {
      const sc = this.#pending.indexOf(START_CODE_3, this.#scan);
      if (sc < 0) break;
      if (this.#nalStart >= 0) this.#nal(this.#pending.subarray(this.#nalStart, sc), out);
      this.#nalStart = sc + 3;
      this.#scan = sc + 3;
    }
    // Keep only the NAL unit in progress (or the last two bytes, a start code may span chunks).
    const keep = this.#nalStart >= 0 ? this.#nalStart : Math.max(0, this.#pending.length - 2);
    this.#pending = this.#pending.subarray(keep);
    this.#scan = Math.max(0, this.#pending.length - 2);
    if (this.#nalStart >= 0) this.#nalStart = 0;
    if (this.#pending.length > MAX_PENDING_BYTES) throw new Error("no NAL unit boundary in 8 MiB");
    return out;
  }

  #nal(bytes, out) {
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--; // trailing_zero_8bits, a 4-byte start code
    if (end === 0) return;
    const nal = bytes.subarray(0, end);
    const type = nal[0] & 0x1f;
    const slice = type === 1 || type === 5;
    const starts = type === 9 || type === 6 || type === 7 || type === 8 ||
      (slice && nal.length > 1 && (nal[1] & 0x80) !== 0); // ue(v) first_mb_in_slice = 0
    if (starts && this.#auHasPicture) {
      out.push(Buffer.concat(this.#au.flatMap((n) => [START_CODE_4, n])));
      this.#au = [];
      this.#auHasPicture = false;
    }
    this.#au.push(Buffer.from(nal)); // a copy: the read buffer is not kept alive
    if (slice) this.#auHasPicture = true;
  }
}

/** The Opus packets to loop (20 ms each), or none. */
function readOpusPackets(path) {
  const bytes = readFileSync(path);
  const out = [];
  for (let i = 0; i + 2 <= bytes.length;) {
    const n = bytes.readUInt16BE(i);
    if (i + 2 + n > bytes.length) throw new Error(`${path}: truncated record at byte ${i}`);
    out.push(bytes.subarray(i + 2, i + 2 + n));
    i += 2 + n;
  }
  if (out.length === 0) throw new Error(`${path}: no Opus packet`);
  return out;
}
const opusPackets = opusFile ? readOpusPackets(opusFile) : [];
const AUDIO_PACKET_MS = 20;
const AUDIO_PACKET_SAMPLES = 960;

// ---- AWS: IoT credentials, control plane, presigned signaling URL ------------------------

function iotCredentials() {
  const [host, port] = env.AWS_IOT_CORE_CREDENTIAL_ENDPOINT.split(":");
  return new Promise((resolve, reject) => {
    const req = https.request({
      host,
      port: Number(port ?? 443),
      method: "GET",
      path: `/role-aliases/${env.AWS_IOT_CORE_ROLE_ALIAS}/credentials`,
      headers: { "x-amzn-iot-thingname": env.AWS_IOT_CORE_THING_NAME },
      cert: readFileSync(env.AWS_IOT_CORE_CERT),
      key: readFileSync(env.AWS_IOT_CORE_PRIVATE_KEY),
      ca: readFileSync(env.AWS_KVS_CACERT_PATH),
      timeout: 10_000,
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => body += c);
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`IoT ${res.statusCode}: ${body}`));
        resolve(JSON.parse(body).credentials);
      });
    });
    req.on("timeout", () => req.destroy(new Error("IoT credential request timed out")));
    req.on("error", reject);
    req.end();
  });
}

const creds = await iotCredentials();
const aws = new AwsClient({
  accessKeyId: creds.accessKeyId,
  secretAccessKey: creds.secretAccessKey,
  sessionToken: creds.sessionToken,
  service: "kinesisvideo",
  region,
  retries: 2,
});
const controlPlane = env.AWS_ENDPOINT_URL_KINESIS_VIDEO.replace(/\/+$/, "");

async function post(url, body) {
  const res = await aws.fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) {
    const e = new Error(`${new URL(url).pathname} ${res.status}: ${text}`);
    e.status = res.status;
    throw e;
  }
  return JSON.parse(text);
}

async function channelArn() {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const d = await post(`${controlPlane}/describeSignalingChannel`, { ChannelName: channel });
      if (d.ChannelInfo.ChannelStatus === "ACTIVE") return d.ChannelInfo.ChannelARN;
    } catch (e) {
      if (e.status !== 404) throw e;
      await post(`${controlPlane}/createSignalingChannel`, {
        ChannelName: channel,
        ChannelType: "SINGLE_MASTER",
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`channel ${channel} never became ACTIVE`);
}

const arn = await channelArn();
const ep = await post(`${controlPlane}/getSignalingChannelEndpoint`, {
  ChannelARN: arn,
  SingleMasterChannelEndpointConfiguration: { Protocols: ["WSS", "HTTPS"], Role: "MASTER" },
});
const endpoints = Object.fromEntries(
  ep.ResourceEndpointList.map((e) => [e.Protocol, e.ResourceEndpoint]),
);
// Fetched as a master does; the loopback benchmark runs without TURN, so the list is not used.
await post(`${endpoints.HTTPS}/v1/get-ice-server-config`, { ChannelARN: arn, Service: "TURN" });

async function presignedUrl() {
  const url = new URL(endpoints.WSS);
  url.searchParams.set("X-Amz-ChannelARN", arn);
  url.searchParams.set("X-Amz-Expires", "299");
  const signer = new AwsV4Signer({
    method: "GET",
    url: url.href,
    accessKeyId: creds.accessKeyId,
    secretAccessKey: creds.secretAccessKey,
    sessionToken: creds.sessionToken,
    service: "kinesisvideo",
    region,
    signQuery: true,
  });
  return (await signer.sign()).url.href;
}

// ---- source: paced loop with keyframe jumps -----------------------------------------------

let position = 0;
let keyframeRequested = false;
let lastKeyframeAsk = -Infinity;
let keyframeTimer;

function requestKeyframe() {
  if (keyframeTimer !== undefined) return;
  const wait = lastKeyframeAsk + KEYFRAME_INTERVAL_MS - performance.now();
  const ask = () => {
    keyframeTimer = undefined;
    lastKeyframeAsk = performance.now();
    keyframeRequested = true;
  };
  if (wait <= 0) ask();
  else keyframeTimer = setTimeout(ask, wait);
}

function jumpToKeyframe() {
  for (let step = 0; step < frames.length; step++) {
    if (frames[(position + step) % frames.length].keyframe) {
      position += step;
      return;
    }
  }
}

// Packetized once per frame, for every viewer, to the same datagram budget as our media core:
// at most 1200 bytes with the 12-byte RTP header and AES_CM_128_HMAC_SHA1_80's 10-byte tag
// (the profile Chromium picks; no RTP header extensions are negotiated).
const packetizer = new H264Packetizer({
  payloadType: 96,
  maxPayloadSize: 1200 - 12 - 10,
  inputFormat: "annexb",
});

/** viewerId → session */
const sessions = new Map();

/** The last frame sent: its index in the loop and when (for the audio to keep in step). */
let latestFrame;

function onFrame(frame, timestampUs) {
  const live = [];
  for (const s of sessions.values()) {
    if (s.state !== "connected" || !s.sender) continue;
    if (s.waiting) {
      if (!frame.keyframe) continue;
      s.waiting = false;
    }
    live.push(s);
  }
  if (live.length === 0) return;
  const ts = Math.round(timestampUs * 0.09) >>> 0;
  const packets = packetizer.packetize(frame.data, ts);
  for (const s of live) {
    for (const p of packets) {
      s.stats.packetsSent++;
      s.sender.sendRtp(p).catch(() => {});
    }
    s.stats.framesSent++;
  }
}

const periodMs = 1000 / fps;
let anchor = performance.now();
let tick = 0;
function pace() {
  const now = performance.now();
  if (now - (anchor + tick * periodMs) > 500) {
    anchor = now - tick * periodMs; // far behind: re-anchor instead of bursting
  }
  while (anchor + tick * periodMs <= now) {
    if (keyframeRequested) {
      keyframeRequested = false;
      jumpToKeyframe();
    }
    const index = position % frames.length;
    const f = frames[index];
    position++;
    latestFrame = { index, at: performance.now() };
    try {
      onFrame(f, Math.round(tick * periodMs * 1000));
    } catch (e) {
      console.error(`frame failed: ${e?.message ?? e}`);
    }
    tick++;
  }
  setTimeout(pace, Math.max(0, anchor + tick * periodMs - performance.now()));
}

// ---- live source: an encoder command, each access unit sent as it arrives ------------------

const RESTART_MS = 500;
let encoder;
let stopping = false;

function startEncoder() {
  const splitter = new AccessUnitSplitter();
  const t0 = performance.now();
  const child = spawn("sh", ["-c", videoCommand], { stdio: ["ignore", "pipe", "inherit"] });
  encoder = child;
  let failed = false;
  child.stdout.on("data", (chunk) => {
    if (failed) return;
    let units;
    try {
      units = splitter.push(chunk);
    } catch (e) {
      failed = true;
      console.error(`video command output: ${e?.message ?? e}`);
      child.kill("SIGKILL");
      return;
    }
    for (const data of units) {
      try {
        onFrame({ data, keyframe: isIdr(data) }, Math.round((performance.now() - t0) * 1000));
      } catch (e) {
        console.error(`frame failed: ${e?.message ?? e}`);
      }
    }
  });
  child.on("error", (e) => console.error(`video command: ${e?.message ?? e}`));
  child.on("exit", (code, signal) => {
    if (encoder === child) encoder = undefined;
    if (stopping) return;
    console.error(`video command exited (${code ?? signal}); restarting in ${RESTART_MS} ms`);
    setTimeout(() => {
      if (!stopping) startEncoder();
    }, RESTART_MS);
  });
}

// ---- audio: 20 ms packets, in step with the video loop -----------------------------------

let audioAnchor = performance.now();
let audioTick = 0;
let audioLast = -1;
let audioPosition = 0;

function sendAudio(index) {
  const live = [];
  for (const s of sessions.values()) {
    if (s.state === "connected" && s.audioSender) live.push(s);
  }
  if (live.length === 0) return;
  const header = new RtpHeader({
    payloadType: 111,
    sequenceNumber: audioTick & 0xffff,
    timestamp: (audioTick * AUDIO_PACKET_SAMPLES) >>> 0,
    marker: false,
  });
  const packet = new RtpPacket(header, opusPackets[index]);
  for (const s of live) {
    s.stats.audioPacketsSent++;
    s.audioSender.sendRtp(packet).catch(() => {});
  }
}

function paceAudio() {
  const now = performance.now();
  if (now - (audioAnchor + audioTick * AUDIO_PACKET_MS) > 500) {
    audioAnchor = now - audioTick * AUDIO_PACKET_MS; // far behind: re-anchor, no burst
  }
  while (audioAnchor + audioTick * AUDIO_PACKET_MS <= now) {
    const count = opusPackets.length;
    // Where the video is in its loop (its last frame plus the time since), in packets.
    if (latestFrame && now - latestFrame.at <= 2 * periodMs) {
      const contentMs = latestFrame.index * periodMs + (now - latestFrame.at);
      audioPosition = Math.round(contentMs / AUDIO_PACKET_MS) % count;
      if (audioPosition === audioLast) audioPosition = (audioPosition + 1) % count;
    }
    const index = audioPosition % count;
    audioPosition = index + 1;
    audioLast = index;
    try {
      sendAudio(index);
    } catch (e) {
      console.error(`audio packet failed: ${e?.message ?? e}`);
    }
    audioTick++;
  }
  setTimeout(paceAudio, Math.max(0, audioAnchor + audioTick * AUDIO_PACKET_MS - performance.now()));
}

// ---- sessions ------------------------------------------------------------------------------

function close(s, reason) {
  if (s.closed) return;
  s.closed = true;
  s.state = "closed";
  clearInterval(s.watchdog);
  if (sessions.get(s.viewerId) === s) sessions.delete(s.viewerId);
  s.pc.close().catch(() => {});
  console.error(`viewer ${s.viewerId} left: ${reason}`);
}

function newPeerConnection() {
  return new RTCPeerConnection({
    codecs: {
      audio: [
        new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2 }),
      ],
      video: [
        new RTCRtpCodecParameters({
          mimeType: "video/H264",
          clockRate: 90000,
          rtcpFeedback: [
            { type: "nack" },
            { type: "nack", parameter: "pli" },
            { type: "ccm", parameter: "fir" },
          ],
          parameters: "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1",
        }),
      ],
    },
    iceServers: [], // as our master in the benchmark: no STUN server (loopback only)
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceInterfaceAddresses: { udp4: "127.0.0.1" },
    iceUseIpv6: false,
  });
}

const loopback = (line) => / 127\.0\.0\.1 /.test(line ?? "");

async function onOffer(ws, viewerId, offer) {
  const old = sessions.get(viewerId);
  if (old) close(old, "replaced by a new offer");
  if (sessions.size >= MAX_VIEWERS) return;
  const pc = newPeerConnection();
  const s = {
    viewerId,
    pc,
    sender: undefined,
    audioSender: undefined,
    state: "new",
    waiting: true,
    closed: false,
    lastRtcpAt: 0,
    watchdog: undefined,
    stats: {
      packetsSent: 0,
      framesSent: 0,
      nacksReceived: 0,
      plisReceived: 0,
      firsReceived: 0,
      packetsRetransmitted: 0,
      audioPacketsSent: 0,
      audioPacketsReceived: 0,
      dataMessagesReceived: 0,
      dataMessagesSent: 0,
    },
  };
  sessions.set(viewerId, s);
  const send = (action, payload) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({
      action,
      recipientClientId: viewerId,
      messagePayload: Buffer.from(JSON.stringify(payload)).toString("base64"),
    }));
  };
  let answered = false;
  const early = [];
  pc.onIceCandidate.subscribe((c) => {
    if (!c || s.closed || !loopback(c.candidate)) return;
    const j = c.toJSON();
    const payload = {
      candidate: j.candidate,
      sdpMid: j.sdpMid ?? "0",
      sdpMLineIndex: j.sdpMLineIndex ?? 0,
    };
    if (answered) send("ICE_CANDIDATE", payload);
    else early.push(payload);
  });
  pc.connectionStateChange.subscribe((state) => {
    if (s.closed) return;
    s.state = state;
    if (state === "connected" && s.watchdog === undefined) {
      // A viewer hanging up sends a DTLS alert (close_notify): its session ends then, as ours
      // does, rather than after the RTCP silence timeout.
      for (const t of pc.dtlsTransports) {
        t.onStateChange.subscribe((dtls) => {
          if (dtls === "closed" || dtls === "failed") close(s, `DTLS ${dtls}`);
        });
      }
      s.waiting = true;
      requestKeyframe();
      s.lastRtcpAt = performance.now();
      s.watchdog = setInterval(() => {
        if (performance.now() - s.lastRtcpAt > RTCP_TIMEOUT_MS) close(s, "no RTCP");
      }, 1000);
    }
    if (state === "failed" || state === "closed") close(s, `ICE ${state}`);
  });
  // Data channels the viewer opens (the KVS JS SDK viewer's kvsDataChannel): messages echoed.
  pc.onDataChannel.subscribe((dc) => {
    dc.onMessage.subscribe((message) => {
      s.stats.dataMessagesReceived++;
      if (s.closed || dc.readyState !== "open") return;
      try {
        dc.send(message);
        s.stats.dataMessagesSent++;
      } catch { /* the channel is going: dropped */ }
    });
  });
  pc.onTrack.subscribe((track) => {
    if (track.kind === "audio") track.onReceiveRtp.subscribe(() => s.stats.audioPacketsReceived++);
  });
  await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
  const transceiver = pc.getTransceivers().find((t) => t.kind === "video");
  if (!transceiver) return close(s, "no video in the offer");
  transceiver.setDirection("sendonly");
  s.sender = transceiver.sender;
  const audio = pc.getTransceivers().find((t) => t.kind === "audio");
  if (audio) {
    // werift answers the intersection with the offer: sendonly to a recvonly viewer, sendrecv
    // to one with a microphone.
    audio.setDirection(opusPackets.length > 0 ? "sendrecv" : "recvonly");
    if (opusPackets.length > 0) {
      s.audioSender = audio.sender;
      s.audioSender.onRtcp.subscribe(() => s.lastRtcpAt = performance.now());
    }
  }
  s.sender.onRtcp.subscribe((packet) => {
    s.lastRtcpAt = performance.now();
    if (packet instanceof RtcpPayloadSpecificFeedback) {
      const fb = packet.feedback;
      const fir = fb?.constructor?.name === "FullIntraRequest";
      if (fb instanceof PictureLossIndication || fir) {
        if (fir) s.stats.firsReceived++;
        else s.stats.plisReceived++;
        if (!s.waiting) {
          s.waiting = true;
          requestKeyframe();
        }
      }
    } else if (packet instanceof RtcpTransportLayerFeedback) {
      if (packet.feedback instanceof GenericNack) s.stats.nacksReceived++;
    } else if (packet instanceof RtcpRrPacket) {
      // receiver reports: liveness only
    }
  });
  await pc.setLocalDescription(await pc.createAnswer());
  const sdp = pc.localDescription.sdp.split("\r\n")
    .filter((l) => !l.startsWith("a=candidate:") || loopback(l)).join("\r\n");
  send("SDP_ANSWER", { type: "answer", sdp });
  answered = true;
  for (const c of early.splice(0)) send("ICE_CANDIDATE", c);
}

function onCandidate(viewerId, c) {
  const s = sessions.get(viewerId);
  if (!s || s.closed || !c?.candidate) return;
  if (/\.local /.test(c.candidate)) return;
  s.pc.addIceCandidate({
    candidate: c.candidate,
    sdpMid: c.sdpMid ?? undefined,
    sdpMLineIndex: c.sdpMLineIndex ?? undefined,
  }).catch(() => {});
}

// ---- signaling -----------------------------------------------------------------------------

let ready = false;
function connect() {
  presignedUrl().then((url) => {
    const ws = new WebSocket(url);
    ws.on("open", () => {
      if (!ready) {
        ready = true;
        console.log("READY");
      }
    });
    ws.on("message", (data) => {
      let msg;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      if (!msg.messagePayload || !msg.senderClientId) return;
      const payload = JSON.parse(Buffer.from(msg.messagePayload, "base64").toString("utf8"));
      if (msg.messageType === "SDP_OFFER") {
        onOffer(ws, msg.senderClientId, payload).catch((e) =>
          console.error(`offer of ${msg.senderClientId} failed: ${e?.message ?? e}`)
        );
      } else if (msg.messageType === "ICE_CANDIDATE") {
        onCandidate(msg.senderClientId, payload);
      }
    });
    ws.on("error", (e) => console.error(`signaling: ${e?.message ?? e}`));
    ws.on("close", () => setTimeout(connect, 1000));
  }, (e) => {
    console.error(`presign failed: ${e?.message ?? e}`);
    setTimeout(connect, 1000);
  });
}

connect();
if (videoCommand !== undefined) startEncoder();
else pace();
if (opusPackets.length > 0) paceAudio();
setInterval(() => {
  const stats = [...sessions.values()].map((s) => ({
    viewerId: s.viewerId,
    state: s.state,
    ...s.stats,
    packetsRetransmitted: s.sender?.retransmittedPacketsSent ?? 0,
  }));
  console.log(JSON.stringify({
    viewers: stats.length,
    hotPaths: stats.length ? ["werift-node"] : [],
    packets: stats.reduce((a, x) => a + x.packetsSent, 0),
    stats,
  }));
}, 1000);
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    stopping = true;
    encoder?.kill("SIGTERM");
    for (const s of [...sessions.values()]) close(s, "master shutting down");
    process.exit(0);
  });
}
