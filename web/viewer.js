/**
 * KVS WebRTC viewer page: connects to a signaling channel as VIEWER with the official KVS WebRTC
 * JS SDK (global `KVSWebRTC`), plays the master's H.264 video and reports its progress.
 *
 * Query parameters (also editable in the form): `channel`, `region`, `endpoint` (control-plane
 * override, e.g. a local emulator), `accessKeyId`, `secretAccessKey`, `sessionToken`,
 * `clientId` (default random), `forceTurn=1` (relay candidates only), `stun=0` (no STUN server;
 * the default adds the region's KVS STUN server unless `endpoint` is set), `mic=1` (send the
 * microphone: a sendrecv audio section instead of recvonly), `ping=N` (send N timestamped
 * messages on the data channel once it opens and time their echoes), `autostart=1`.
 *
 * Besides the H.264 video the offer has an Opus audio section and the data channel
 * `kvsDataChannel` (as the KVS JS SDK's sample viewer opens it). A master that declines them
 * (port 0 in its answer) still plays video: `audio.state` / `dataChannel.state` say `absent`.
 *
 * For tests and tools: `globalThis.viewerState` and the JSON of `#status` hold
 * `{state, framesDecoded, codec, width, height, ttffMs, error, audio, dataChannel, ...}`;
 * `globalThis.viewer` has `start(params)`, `stop()` and `send(text)` (a data channel message).
 * Secrets are never written to the page or the console.
 *
 * @example
 * ```text
 * http://127.0.0.1:8080/?channel=demo-channel&region=us-west-2&accessKeyId=…&secretAccessKey=…&autostart=1
 * ```
 *
 * @module
 */
import { AwsClient } from "/vendor/aws4fetch.esm.mjs";

/**
 * Viewer progress. `state` goes idle → describing → getting-endpoint → getting-ice →
 * signaling → offer-sent → answered → connected → playing; or error / closed.
 */
const viewerState = {
  state: "idle",
  framesDecoded: 0,
  codec: null,
  width: 0,
  height: 0,
  ttffMs: null,
  error: null,
  step: null,
  clientId: null,
  channelArn: null,
  signaling: "closed",
  connectionState: "new",
  iceConnectionState: "new",
  selectedPair: null,
  bitrateKbps: 0,
  framesReceived: 0,
  framesDropped: 0,
  packetsLost: 0,
  forceTurn: false,
  localCandidates: [],
  sdkVersion: null,
  /**
   * Audio once a session starts: `state` offered → absent (declined by the master) or
   * negotiated → receiving; `direction` offered (recvonly, or sendrecv with `mic=1`),
   * `currentDirection` negotiated, `microphone` (off, on, or unavailable: why), `playback`,
   * and from getStats' inbound-rtp: `packetsReceived`, `totalSamplesReceived`,
   * `concealedSamples`, `codec` (mimeType).
   */
  audio: null,
  /**
   * The `kvsDataChannel` data channel once a session starts: `state` offered → absent
   * (declined) or its readyState; `sent`, `echoed` (our messages that came back), `received`
   * (other messages), `lastRttMs`, `medianRttMs` (echo round trips), `pingsRequested`.
   */
  dataChannel: null,
};
globalThis.viewerState = viewerState;

/** Label of the data channel the page opens (the KVS JS SDK sample's). */
const DATA_CHANNEL_LABEL = "kvsDataChannel";

const $ = (id) => document.getElementById(id);
/** @type {null | { stop(reason?: string): void, send(text: string): boolean }} */
let session = null;

/** Publish the state to `#status`, the summary table and the state line. */
function render() {
  const s = viewerState;
  $("status").textContent = JSON.stringify(s, null, 2);
  $("state").textContent = s.state;
  $("state").className = s.state;
  $("error").textContent = s.error ?? "";
  $("s-ttff").textContent = s.ttffMs === null ? "–" : `${s.ttffMs.toFixed(0)} ms`;
  $("s-frames").textContent = String(s.framesDecoded);
  $("s-codec").textContent = s.codec ?? "–";
  $("s-resolution").textContent = s.width ? `${s.width}×${s.height}` : "–";
  $("s-bitrate").textContent = s.bitrateKbps ? `${s.bitrateKbps.toFixed(0)} kbit/s` : "–";
  $("s-pair").textContent = s.selectedPair ?? "–";
  $("s-connection").textContent =
    `signaling ${s.signaling}, ICE ${s.iceConnectionState}, peer ${s.connectionState}`;
  const a = s.audio;
  $("s-audio").textContent = !a ? "–" : [
    a.state,
    a.codec,
    a.packetsReceived
      ? `${a.packetsReceived} packets, ${a.concealedSamples} samples concealed`
      : "",
    `microphone ${a.microphone}`,
  ].filter(Boolean).join(", ");
  const d = s.dataChannel;
  $("s-data").textContent = !d ? "–" : [
    `${d.label}: ${d.state}`,
    `${d.sent} sent, ${d.echoed} echoed, ${d.received} received`,
    d.medianRttMs === null ? "" : `round trip ${d.medianRttMs.toFixed(1)} ms (median)`,
  ].filter(Boolean).join(", ");
  $("send").disabled = d?.readyState !== "open";
}

function setState(state, extra = {}) {
  Object.assign(viewerState, extra, { state });
  render();
}

function fail(step, message) {
  if (viewerState.state === "error") return; // keep the first cause
  console.error(`viewer: ${step}: ${message}`);
  setState("error", { error: `${step}: ${message}`, step });
  session?.stop("error");
}

/** Read parameters from the query string. */
function paramsFromQuery() {
  const q = new URLSearchParams(location.search);
  const p = {};
  for (
    const k of [
      "channel",
      "region",
      "endpoint",
      "accessKeyId",
      "secretAccessKey",
      "sessionToken",
      "clientId",
      "forceTurn",
      "stun",
      "mic",
      "ping",
      "autostart",
    ]
  ) {
    if (q.has(k)) p[k] = q.get(k);
  }
  return p;
}

function fillForm(p) {
  for (const [k, v] of Object.entries(p)) {
    const el = $(k);
    if (!el) continue;
    if (el.type === "checkbox") el.checked = v === "1" || v === "true";
    else el.value = v;
  }
}

function paramsFromForm() {
  const f = new FormData($("params"));
  const p = Object.fromEntries([...f.entries()].map(([k, v]) => [k, String(v).trim()]));
  p.forceTurn = $("forceTurn").checked ? "1" : "0";
  p.mic = $("mic").checked ? "1" : "0";
  const q = new URLSearchParams(location.search);
  if (q.has("stun")) p.stun = q.get("stun");
  if (q.has("ping")) p.ping = q.get("ping");
  return p;
}

function randomClientId() {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return "viewer-" + [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Time of the server's `Date` header minus ours, ms, if the header is readable. */
function clockOffsetFrom(res) {
  const date = res.headers.get("date");
  if (!date) return null;
  const t = Date.parse(date);
  return Number.isNaN(t) ? null : t - Date.now();
}

/**
 * A signed JSON POST to the KVS control or data plane, with a clear error on failure. Retries
 * once with a corrected clock when AWS says the signature's time is off.
 */
async function kvsPost(ctx, url, body, what) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const datetime = new Date(Date.now() + ctx.clockOffsetMs).toISOString()
      .replace(/[:-]|\.\d{3}/g, "");
    let res;
    try {
      res = await ctx.aws.fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        aws: { datetime },
      });
    } catch (e) {
      throw new Error(`cannot reach ${new URL(url).origin} (${e?.message ?? e})`);
    }
    const text = await res.text();
    if (res.ok) {
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`${what}: response is not JSON: ${text.slice(0, 120)}`);
      }
    }
    let message = text.slice(0, 200);
    let type = res.headers.get("x-amzn-errortype")?.split(":")[0] ?? "";
    try {
      const j = JSON.parse(text);
      message = j.message ?? j.Message ?? message;
      type ||= String(j.__type ?? "").split("#").pop();
    } catch {
      // not JSON
    }
    const skew = res.status === 403 && /expired|skew|date/i.test(message);
    const offset = clockOffsetFrom(res);
    if (attempt === 0 && skew && offset !== null) {
      ctx.clockOffsetMs = offset;
      continue;
    }
    throw new Error(`HTTP ${res.status} ${type} ${message}`.replace(/\s+/g, " ").trim());
  }
  throw new Error("unreachable");
}

/** Why there is no H.264, and in Firefox how to get it. */
function noH264Message() {
  const base = "this browser offers no H.264 decoder for WebRTC";
  const firefox = "open about:config, set media.webrtc.hw.h264.enabled to true and " +
    "gfx.blacklist.webrtc.hw.acceleration.h264 to 1, then reload (Firefox then decodes " +
    "H.264 with the system's FFmpeg)";
  return /Firefox\//.test(navigator.userAgent)
    ? `${base}: ${firefox}`
    : `${base} (in Firefox: ${firefox})`;
}

/** Choose H.264 only, constrained baseline with packetization-mode=1 first. */
function preferH264(transceiver) {
  const caps = RTCRtpReceiver.getCapabilities?.("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const score = (c) => {
    const f = c.sdpFmtpLine ?? "";
    return (f.includes("packetization-mode=1") ? 2 : 0) + (/42e01f|42c01f/.test(f) ? 1 : 0);
  };
  const h264 = caps.codecs.filter((c) => c.mimeType.toLowerCase() === "video/h264")
    .sort((a, b) => score(b) - score(a));
  if (h264.length === 0) throw new Error(noH264Message());
  transceiver.setCodecPreferences(h264);
}

/** The m-sections of an SDP: kind, port, mid and direction attribute. */
function sdpSections(sdp) {
  const sections = [];
  for (const line of String(sdp ?? "").split(/\r?\n/)) {
    const m = /^m=(\S+) (\d+)/.exec(line);
    if (m) sections.push({ kind: m[1], port: Number(m[2]), mid: null, direction: "sendrecv" });
    else if (!sections.length) continue;
    else if (line.startsWith("a=mid:")) sections.at(-1).mid = line.slice(6).trim();
    else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line.trim())) {
      sections.at(-1).direction = line.trim().slice(2);
    }
  }
  return sections;
}

function median(values) {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Start a viewer session with `p`; stops any previous one. */
async function start(p) {
  session?.stop("restart");
  const stopped = { value: false };
  const timers = [];
  let pc = null;
  let signalingClient = null;
  const t0 = performance.now();
  let offerSentAt = null;
  const pendingCandidates = [];
  let audioTransceiver = null;
  let microphone = null;
  const channels = new Set();
  let dataChannel = null;
  /** Messages we sent and await back: text → performance.now() when sent. */
  const awaitingEcho = new Map();
  const rtts = [];
  const mic = p.mic === "1" || p.mic === "true";
  const pings = Math.max(0, Math.min(1000, Math.floor(Number(p.ping) || 0)));

  Object.assign(viewerState, {
    state: "starting",
    framesDecoded: 0,
    codec: null,
    width: 0,
    height: 0,
    ttffMs: null,
    error: null,
    step: null,
    channelArn: null,
    signaling: "closed",
    connectionState: "new",
    iceConnectionState: "new",
    selectedPair: null,
    bitrateKbps: 0,
    localCandidates: [],
    forceTurn: p.forceTurn === "1" || p.forceTurn === "true",
    audio: null,
    dataChannel: null,
  });

  session = {
    stop(reason = "stopped") {
      if (stopped.value) return;
      stopped.value = true;
      for (const t of timers) clearInterval(t);
      try {
        signalingClient?.close();
      } catch {
        // already closed
      }
      for (const c of channels) c.close();
      for (const t of microphone?.getTracks() ?? []) t.stop();
      pc?.close();
      $("video").srcObject = null;
      $("audio").srcObject = null;
      if (reason !== "error") setState("closed");
    },
    send(text) {
      if (stopped.value || dataChannel?.readyState !== "open") return false;
      sendMessage(text);
      return true;
    },
  };

  /** Send `text` on the data channel and await its echo (at most 1000 outstanding). */
  const sendMessage = (text) => {
    dataChannel.send(text);
    viewerState.dataChannel.sent++;
    awaitingEcho.set(text, performance.now());
    if (awaitingEcho.size > 1000) awaitingEcho.delete(awaitingEcho.keys().next().value);
    render();
  };
  const onMessage = (e) => {
    const d = viewerState.dataChannel;
    if (!d) return;
    const text = typeof e.data === "string" ? e.data : null;
    const sentAt = text === null ? undefined : awaitingEcho.get(text);
    if (sentAt !== undefined) {
      awaitingEcho.delete(text);
      const rtt = performance.now() - sentAt;
      rtts.push(rtt);
      if (rtts.length > 1000) rtts.shift();
      d.echoed++;
      d.lastRttMs = Math.round(rtt * 100) / 100;
      d.medianRttMs = Math.round(median(rtts) * 100) / 100;
    } else {
      d.received++;
      d.lastMessage = text === null
        ? `(${e.data?.byteLength ?? e.data?.size ?? 0} bytes of binary)`
        : text.slice(0, 200);
    }
    render();
  };
  /** `ping=N`: N timestamped messages, one every 50 ms, each timed until its echo. */
  const startPings = () => {
    let seq = 0;
    const timer = setInterval(() => {
      if (stopped.value || dataChannel?.readyState !== "open" || seq >= pings) {
        clearInterval(timer);
        return;
      }
      seq++;
      sendMessage(JSON.stringify({ ping: seq, of: pings, sentAt: Date.now() }));
    }, 50);
    timers.push(timer);
  };
  /** Follow a data channel: ours, or one the master opens. */
  const watchChannel = (channel) => {
    channels.add(channel);
    channel.addEventListener("message", onMessage);
    if (channel !== dataChannel) return;
    const d = viewerState.dataChannel;
    const update = () => {
      d.readyState = channel.readyState;
      if (d.state !== "absent") d.state = channel.readyState;
      render();
    };
    channel.addEventListener("open", () => {
      update();
      if (pings > 0) startPings();
    });
    channel.addEventListener("close", update);
    channel.addEventListener("closing", update);
    channel.addEventListener("error", (e) => {
      d.error = e?.error?.message ?? "data channel error";
      update();
    });
  };
  const guard = (step, fn) => async (...args) => {
    if (stopped.value) return;
    try {
      await fn(...args);
    } catch (e) {
      fail(step, e?.message ?? String(e));
    }
  };

  let step = "parameters";
  try {
    if (typeof KVSWebRTC === "undefined") {
      throw new Error("the KVS WebRTC SDK did not load (/vendor/kvs-webrtc.min.js)");
    }
    viewerState.sdkVersion = KVSWebRTC.VERSION ?? null;
    const channel = p.channel?.trim();
    const region = p.region?.trim();
    if (!channel) throw new Error("channel name is empty");
    if (!region) throw new Error("region is empty");
    if (!p.accessKeyId || !p.secretAccessKey) {
      throw new Error("access key id and secret access key are required");
    }
    const endpoint = (p.endpoint?.trim() || `https://kinesisvideo.${region}.amazonaws.com`)
      .replace(/\/+$/, "");
    try {
      new URL(endpoint);
    } catch {
      throw new Error(`endpoint is not a URL: ${endpoint}`);
    }
    const credentials = {
      accessKeyId: p.accessKeyId,
      secretAccessKey: p.secretAccessKey,
      sessionToken: p.sessionToken || undefined,
    };
    const clientId = p.clientId?.trim() || randomClientId();
    viewerState.clientId = clientId;
    const ctx = {
      aws: new AwsClient({ ...credentials, service: "kinesisvideo", region, retries: 3 }),
      clockOffsetMs: 0,
    };

    step = "DescribeSignalingChannel";
    setState("describing");
    let info;
    // A channel still CREATING (or UPDATING) becomes ACTIVE shortly: describe again, bounded.
    for (let attempt = 0;; attempt++) {
      const described = await kvsPost(
        ctx,
        `${endpoint}/describeSignalingChannel`,
        { ChannelName: channel },
        step,
      );
      info = described.ChannelInfo;
      if (!info?.ChannelARN) throw new Error("response has no ChannelInfo.ChannelARN");
      if (!info.ChannelStatus || info.ChannelStatus === "ACTIVE") break;
      if (attempt >= 10 || info.ChannelStatus === "DELETING" || stopped.value) {
        throw new Error(`channel ${channel} is ${info.ChannelStatus}, not ACTIVE`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    viewerState.channelArn = info.ChannelARN;
    if (stopped.value) return;

    step = "GetSignalingChannelEndpoint";
    setState("getting-endpoint");
    const ep = await kvsPost(ctx, `${endpoint}/getSignalingChannelEndpoint`, {
      ChannelARN: info.ChannelARN,
      SingleMasterChannelEndpointConfiguration: { Protocols: ["WSS", "HTTPS"], Role: "VIEWER" },
    }, step);
    const endpoints = Object.fromEntries(
      (ep.ResourceEndpointList ?? []).map((e) => [e.Protocol, e.ResourceEndpoint]),
    );
    if (!endpoints.WSS || !endpoints.HTTPS) {
      throw new Error("response lacks a WSS or HTTPS ResourceEndpoint");
    }
    if (stopped.value) return;

    // Fetch the ICE configuration and open the signaling socket at the same time.
    step = "GetIceServerConfig";
    setState("getting-ice");
    const icePromise = kvsPost(ctx, `${endpoints.HTTPS}/v1/get-ice-server-config`, {
      ChannelARN: info.ChannelARN,
      ClientId: clientId,
      Service: "TURN",
    }, step).then((r) => r, (e) => {
      throw new Error(`GetIceServerConfig: ${e.message}`);
    });
    icePromise.catch(() => {}); // handled where awaited

    const useStun = p.stun === undefined || p.stun === "" ? !p.endpoint : p.stun === "1";
    const signer = new KVSWebRTC.SigV4RequestSigner(region, credentials);
    const requestSigner = {
      // The SDK signs only wss:// URLs; a local emulator may serve ws://. The signature covers
      // host and path, not the scheme, so sign as wss:// and hand back the original scheme.
      getSignedURL: async (url, query, date) => {
        const plain = url.startsWith("ws://");
        const signed = await signer.getSignedURL(plain ? "wss" + url.slice(2) : url, query, date);
        return plain ? "ws" + signed.slice(3) : signed;
      },
    };
    signalingClient = new KVSWebRTC.SignalingClient({
      channelARN: info.ChannelARN,
      channelEndpoint: endpoints.WSS,
      clientId,
      role: KVSWebRTC.Role.VIEWER,
      region,
      requestSigner,
      systemClockOffset: ctx.clockOffsetMs,
    });

    const video = $("video");
    signalingClient.on(
      "open",
      guard("SDP offer", async () => {
        viewerState.signaling = "open";
        const ice = await icePromise;
        const iceServers = [];
        if (useStun) {
          iceServers.push({ urls: `stun:stun.kinesisvideo.${region}.amazonaws.com:443` });
        }
        for (const s of ice.IceServerList ?? []) {
          iceServers.push({ urls: s.Uris, username: s.Username, credential: s.Password });
        }
        if (viewerState.forceTurn && !iceServers.some((s) => /^turns?:/.test([s.urls].flat()[0]))) {
          throw new Error("forceTurn is set but GetIceServerConfig returned no TURN server");
        }
        step = "peer connection";
        pc = new RTCPeerConnection({
          iceServers,
          iceTransportPolicy: viewerState.forceTurn ? "relay" : "all",
        });
        const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
        preferH264(transceiver);
        // Audio: the microphone when asked for (recvonly when it is unavailable), then the
        // data channel, both after the video so that the video stays the first section.
        viewerState.audio = {
          state: "offered",
          direction: "recvonly",
          currentDirection: null,
          microphone: mic ? "requested" : "off",
          playback: null,
          packetsReceived: 0,
          totalSamplesReceived: 0,
          concealedSamples: 0,
          codec: null,
        };
        if (mic) {
          try {
            microphone = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
            viewerState.audio.microphone = "on";
          } catch (e) {
            viewerState.audio.microphone = `unavailable: ${e?.name ?? ""} ${e?.message ?? e}`
              .trim();
          }
          if (stopped.value) {
            for (const t of microphone?.getTracks() ?? []) t.stop();
            return;
          }
        }
        const micTrack = microphone?.getAudioTracks()[0];
        audioTransceiver = micTrack
          ? pc.addTransceiver(micTrack, { direction: "sendrecv", streams: [microphone] })
          : pc.addTransceiver("audio", { direction: "recvonly" });
        viewerState.audio.direction = audioTransceiver.direction;
        viewerState.dataChannel = {
          label: DATA_CHANNEL_LABEL,
          state: "offered",
          readyState: "connecting",
          sent: 0,
          echoed: 0,
          received: 0,
          lastRttMs: null,
          medianRttMs: null,
          lastMessage: null,
          pingsRequested: pings,
          error: null,
        };
        dataChannel = pc.createDataChannel(DATA_CHANNEL_LABEL);
        watchChannel(dataChannel);
        pc.addEventListener("datachannel", (e) => watchChannel(e.channel));
        pc.addEventListener("icecandidate", ({ candidate }) => {
          if (!candidate || !candidate.candidate) return;
          viewerState.localCandidates.push(candidate.candidate.split(" ")[7] ?? "?");
          if (viewerState.signaling === "open") signalingClient.sendIceCandidate(candidate);
          else pendingCandidates.push(candidate);
        });
        pc.addEventListener("connectionstatechange", () => {
          viewerState.connectionState = pc.connectionState;
          if (pc.connectionState === "connected" && viewerState.state !== "playing") {
            setState("connected");
          } else if (pc.connectionState === "failed") {
            fail("connection", "ICE/DTLS failed (peer connection state: failed)");
          } else render();
        });
        pc.addEventListener("iceconnectionstatechange", () => {
          viewerState.iceConnectionState = pc.iceConnectionState;
          render();
        });
        pc.addEventListener("track", (e) => {
          if (e.track.kind === "audio") {
            const audio = $("audio");
            audio.srcObject = new MediaStream([e.track]);
            audio.play().then(
              () => viewerState.audio && (viewerState.audio.playback = "playing"),
              (err) => {
                // Autoplay policies may want a click first: the <audio> controls offer one.
                if (viewerState.audio) viewerState.audio.playback = `blocked: ${err?.message}`;
              },
            ).finally(render);
            return;
          }
          video.srcObject = e.streams[0] ?? new MediaStream([e.track]);
          video.play().catch(() => {});
        });
        const offer = await pc.createOffer();
        // Browsers without setCodecPreferences: the offer itself must list H.264.
        const videoSdp = offer.sdp.split(/^m=/m).find((m) => m.startsWith("video ")) ?? "";
        if (!/^a=rtpmap:\d+ H264\/90000/im.test(videoSdp)) {
          throw new Error(noH264Message());
        }
        await pc.setLocalDescription(offer);
        if (stopped.value) return;
        signalingClient.sendSdpOffer(pc.localDescription);
        offerSentAt = performance.now();
        setState("offer-sent", { offerMs: Math.round(offerSentAt - t0) });
      }),
    );
    signalingClient.on(
      "sdpAnswer",
      guard("SDP answer", async (answer) => {
        if (!pc) throw new Error("answer before offer");
        // A master that will not serve us answers with every media section rejected (port 0)
        // and says why in the session's i= line (browsers drop that line when they apply it).
        const sdp = String(answer?.sdp ?? "");
        if (/^m=/m.test(sdp) && !/^m=\S+ [1-9]/m.test(sdp)) {
          const why = /^i=(.*)$/m.exec(sdp)?.[1]?.trim() ?? "every media section rejected";
          fail("answer", `the master refused this viewer: ${why}`);
          return;
        }
        await pc.setRemoteDescription(answer);
        // Audio and data channel sections the master declined (port 0) or left out.
        const sections = sdpSections(sdp);
        const a = viewerState.audio;
        const audio = sections.find((m) => m.kind === "audio" && m.mid === audioTransceiver?.mid);
        if (a) {
          a.currentDirection = audioTransceiver?.currentDirection ?? null;
          a.state = !audio || audio.port === 0 || audio.direction === "inactive"
            ? "absent"
            : "negotiated";
        }
        const d = viewerState.dataChannel;
        const app = sections.find((m) => m.kind === "application");
        if (d && (!app || app.port === 0)) d.state = "absent";
        if (viewerState.state === "offer-sent") setState("answered");
      }),
    );
    signalingClient.on(
      "iceCandidate",
      guard("remote ICE candidate", async (candidate) => {
        await pc?.addIceCandidate(candidate);
      }),
    );
    signalingClient.on("statusResponse", (s) => {
      if (Number(s?.statusCode) >= 400) {
        fail("signaling", `STATUS_RESPONSE ${s.statusCode} ${s.errorType}: ${s.description}`);
      }
    });
    signalingClient.on("error", (e) => {
      const msg = e?.message ?? `WebSocket error on ${new URL(endpoints.WSS).origin}`;
      // After the media is up, losing signaling does not stop the video.
      if (["connected", "playing"].includes(viewerState.state)) {
        viewerState.signaling = "error";
        render();
      } else fail("signaling", msg);
    });
    signalingClient.on("close", () => {
      viewerState.signaling = "closed";
      if (!stopped.value && !["connected", "playing", "error"].includes(viewerState.state)) {
        fail("signaling", `connection to ${new URL(endpoints.WSS).origin} closed before an answer`);
      } else render();
    });

    // First decoded frame: requestVideoFrameCallback where available, stats polling otherwise.
    const firstFrame = () => {
      if (viewerState.ttffMs !== null || offerSentAt === null) return;
      viewerState.ttffMs = performance.now() - offerSentAt;
      setState("playing");
    };
    if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(() => firstFrame());
    let lastBytes = 0;
    let lastAt = 0;
    timers.push(setInterval(() => {
      if (!pc || stopped.value) return;
      pc.getStats().then((report) => {
        let pairId = null;
        for (const r of report.values()) {
          if (r.type === "transport") viewerState.dtlsState = r.dtlsState ?? null;
          if (r.type === "transport" && r.selectedCandidatePairId) {
            pairId = r.selectedCandidatePairId;
          }
        }
        for (const r of report.values()) {
          if (r.type === "inbound-rtp" && r.kind === "video") {
            viewerState.framesDecoded = r.framesDecoded ?? 0;
            viewerState.width = r.frameWidth ?? viewerState.width;
            viewerState.height = r.frameHeight ?? viewerState.height;
            viewerState.framesReceived = r.framesReceived ?? 0;
            viewerState.framesDropped = r.framesDropped ?? 0;
            viewerState.packetsLost = r.packetsLost ?? 0;
            const codec = r.codecId ? report.get(r.codecId) : null;
            if (codec) viewerState.codec = codec.mimeType.replace(/^video\//i, "");
            const bytes = r.bytesReceived ?? 0;
            const at = r.timestamp;
            if (lastAt && at > lastAt) {
              viewerState.bitrateKbps = (bytes - lastBytes) * 8 / (at - lastAt);
            }
            lastBytes = bytes;
            lastAt = at;
            if (viewerState.framesDecoded > 0) firstFrame();
          }
          const a = viewerState.audio;
          if (r.type === "inbound-rtp" && r.kind === "audio" && a) {
            a.packetsReceived = r.packetsReceived ?? 0;
            a.totalSamplesReceived = r.totalSamplesReceived ?? 0;
            a.concealedSamples = r.concealedSamples ?? 0;
            const codec = r.codecId ? report.get(r.codecId) : null;
            if (codec) a.codec = codec.mimeType;
            if (a.packetsReceived > 0 && a.state !== "absent") a.state = "receiving";
          }
        }
        const pair = pairId ? report.get(pairId) : null;
        if (pair) {
          const l = report.get(pair.localCandidateId);
          const rc = report.get(pair.remoteCandidateId);
          const relay = l?.relayProtocol ? `/${l.relayProtocol}` : "";
          viewerState.selectedPair =
            `${l?.candidateType}${relay} ${l?.protocol} ${l?.address}:${l?.port}` +
            ` -> ${rc?.candidateType} ${rc?.address}:${rc?.port}`;
          viewerState.pairBytesReceived = pair.bytesReceived ?? 0;
          viewerState.pairPacketsReceived = pair.packetsReceived ?? 0;
          viewerState.localCandidateType = l?.candidateType ?? null;
          viewerState.remoteCandidateType = rc?.candidateType ?? null;
        }
        render();
      }).catch(() => {});
    }, 250));

    step = "signaling";
    setState("signaling");
    signalingClient.open();
  } catch (e) {
    fail(step, e?.message ?? String(e));
  }
}

globalThis.viewer = {
  start: (p) => start(p),
  stop: () => session?.stop(),
  send: (text) => session?.send(String(text)) ?? false,
};

addEventListener("DOMContentLoaded", () => {
  const p = paramsFromQuery();
  fillForm(p);
  $("params").addEventListener("submit", (e) => {
    e.preventDefault();
    start(paramsFromForm());
  });
  $("stop").addEventListener("click", () => session?.stop());
  // Started by its controls after an autoplay policy blocked it.
  $("audio").addEventListener("playing", () => {
    if (viewerState.audio) viewerState.audio.playback = "playing";
    render();
  });
  $("message-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("message").value;
    if (text && session?.send(text)) $("message").value = "";
  });
  render();
  if (p.autostart === "1" || p.autostart === "true") start({ ...paramsFromForm(), ...p });
});
