/**
 * Reading a viewer's SDP offer. The offer comes from anyone holding viewer credentials, so the
 * parser is linear in its input (one split into lines, then fixed prefixes and bounded fields;
 * no backtracking pattern ever runs on unbounded text) and bounds what it accepts: the whole
 * offer, each line, and every value it keeps or echoes into the answer.
 *
 * @module
 */
import { OfferRejectedError } from "./errors.ts";
import { h264Profile, profileFit } from "./h264_profiles.ts";

/** Options of {@link parseOffer}. */
export interface ParseOfferOptions {
  /**
   * The `profile-level-id` of the stream to send (from its SPS), when known: the answer uses a
   * format whose decoders play it, and an offer with none is refused naming both.
   */
  streamProfileLevelId?: string;
  /** Whether there is audio to send (default false): an audio section the viewer receives on is
   * then answered with Opus. */
  sendAudio?: boolean;
  /** Whether the viewer's audio is taken (default true) when its audio section sends. */
  receiveAudio?: boolean;
  /** Whether data channels are answered (default true). */
  dataChannels?: boolean;
  /**
   * Whether transport-wide congestion control is negotiated when the viewer offers it (default
   * true): the `transport-wide-cc` header extension and `transport-cc` feedback, from which the
   * media core estimates the viewer's bandwidth.
   */
  transportCc?: boolean;
}

/** The transport-wide sequence number header extension (draft-holmer-rmcat-transport-wide-cc-extensions-01). */
export const TRANSPORT_CC_URI =
  "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/**
 * The playout delay header extension: the least and most time a receiver may hold video frames
 * (the master asks for none while a joining viewer's catch-up plays).
 */
export const PLAYOUT_DELAY_URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/** Direction of a media section (RFC 3264 §5.1), as its sender wrote it. */
export type MediaDirection = "sendrecv" | "sendonly" | "recvonly" | "inactive";

/** The video section the answer accepts. */
export interface OfferedVideo {
  /** Its media id. */
  mid: string;
  /** H.264 payload type chosen (packetization-mode=1). */
  payloadType: number;
  /** The profile-level-id to answer with (the stream's own when the viewer offered its profile). */
  profileLevelId: string;
}

/** The audio section the answer accepts: Opus, one way or both. */
export interface OfferedAudio {
  /** Its media id. */
  mid: string;
  /** The Opus payload type (`opus/48000/2`). */
  payloadType: number;
  /** We send Opus (the viewer receives, and there is audio to send). */
  send: boolean;
  /** We take the viewer's Opus (it sends, and its audio is wanted). */
  receive: boolean;
}

/** The data channel section the answer accepts (SCTP over DTLS, RFC 8841). */
export interface OfferedData {
  /** Its media id. */
  mid: string;
  /** The viewer's SCTP port (`a=sctp-port`, 5000 when absent). */
  sctpPort: number;
  /** The largest message the viewer takes (`a=max-message-size`; 65536 when absent, 0 means
   * no limit). */
  maxMessageSize: number;
}

/** Largest message we take on a data channel (`a=max-message-size` of our answer). */
export const MAX_DATA_MESSAGE = 256 * 1024;

/** Largest offer accepted, characters (KVS signaling carries at most 10 KB per message). */
export const MAX_OFFER_LENGTH = 64 * 1024;
/** Longest value kept from an attribute (RFC 8839 bounds ICE ufrag and pwd at 256). */
export const MAX_VALUE_LENGTH = 256;
/** Most candidate lines kept from an offer. */
export const MAX_OFFER_CANDIDATES = 64;

/** What the answer and the session need from the offer. */
export interface ParsedOffer {
  /** The video section answered, if the viewer offered one to receive on. */
  video?: OfferedVideo;
  /** The audio section answered, if any. */
  audio?: OfferedAudio;
  /** The data channel section answered, if any. */
  data?: OfferedData;
  /** Media id of the first section answered: the BUNDLE tag, which candidates name. */
  mid: string;
  /**
   * The id of the viewer's transport-wide sequence number extension (1–14, a one-byte header
   * element, RFC 8285), when its offer has it in the video or audio section answered and
   * transport-wide congestion control is wanted.
   */
  transportCcId?: number;
  /** The id of the viewer's playout delay extension in the video section answered (1–14). */
  playoutDelayId?: number;
  /** The viewer's ICE username fragment. */
  iceUfrag: string;
  /** The viewer's ICE password. */
  icePwd: string;
  /** The viewer's DTLS certificate fingerprint, `sha-256 AB:…`. */
  fingerprint: string;
  /**
   * Our DTLS role, from the offer's `a=setup` (RFC 8842 §5): `client` (we answer
   * `a=setup:active` and send the ClientHello the moment the viewer nominates a pair) for
   * `actpass` — what browsers offer — and `passive`; `server` (`a=setup:passive`) when the
   * viewer insists on being the client (`active`). The client role saves a round trip before
   * the first frame: the DTLS server here always makes a HelloVerifyRequest exchange first.
   */
  dtlsRole: "client" | "server";
  /**
   * Every m-section in offer order (an answer must mirror them): kind, mid, protocol, first
   * format. Those not in {@link ParsedOffer.video}, `audio` or `data` are answered with port 0.
   */
  sections: { kind: string; mid: string; proto: string; format: string }[];
  /** `candidate:…` lines the offer carries (viewers that do not trickle). */
  candidates: string[];
}

interface Section {
  kind: string;
  proto: string;
  format: string;
  /** Attribute lines (`a=` stripped), in order. */
  attrs: string[];
}

/**
 * The id (1–14, a one-byte header element) a section's first `a=extmap` for `uri` gives it, other
 * than `taken`.
 */
function extmapId(attrs: readonly string[], uri: string, taken?: number): number | undefined {
  for (const line of attrs) {
    if (!line.startsWith("extmap:") || !line.endsWith(` ${uri}`)) continue;
    const id = Number(line.slice(7, line.indexOf(" ")).split("/")[0]);
    if (Number.isInteger(id) && id >= 1 && id <= 14 && id !== taken) return id;
  }
  return undefined;
}

/** Printable ASCII without spaces, 1–64 characters: what may be echoed into an answer. */
function isToken(s: string | undefined): s is string {
  if (!s || s.length > 64) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** RFC 8839 ice-char (ALPHA / DIGIT / "+" / "/"), `min`–256 of them. */
function isIceChars(s: string, min: number): boolean {
  if (s.length < min || s.length > MAX_VALUE_LENGTH) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
      c === 0x2b || c === 0x2f;
    if (!ok) return false;
  }
  return true;
}

/** The value of the first `a=<name>:` attribute of `attrs`, trimmed. */
function attribute(attrs: readonly string[], name: string): string | undefined {
  const prefix = `${name}:`;
  for (const a of attrs) if (a.startsWith(prefix)) return a.slice(prefix.length).trim();
  return undefined;
}

function bounded(name: string, value: string | undefined): string | undefined {
  if (value !== undefined && value.length > MAX_VALUE_LENGTH) {
    throw new OfferRejectedError(
      `the offer's a=${name} is ${value.length} characters long (at most ${MAX_VALUE_LENGTH})`,
    );
  }
  return value;
}

/**
 * The H.264 (packetization-mode=1) format of a video section to answer with: the stream's own
 * profile when the viewer offers it, else a profile whose decoders play it (High plays
 * Constrained Baseline); constrained baseline `42e01f` when the stream's profile is not known.
 */
function chooseH264(
  attrs: readonly string[],
  streamProfileLevelId: string | undefined,
): { payloadType: number; profileLevelId: string } {
  // a=fmtp:<pt> <params>, first one per payload type (one pass, so rtpmap lookups stay linear).
  const fmtps = new Map<string, string>();
  for (const a of attrs) {
    if (!a.startsWith("fmtp:")) continue;
    const sp = a.indexOf(" ");
    const pt = sp < 0 ? "" : a.slice(5, sp);
    if (pt && !fmtps.has(pt)) fmtps.set(pt, a.slice(sp + 1));
  }
  const stream = streamProfileLevelId?.toLowerCase();
  const offered: string[] = [];
  let best: { payloadType: number; profileLevelId: string; fit: number } | undefined;
  for (const a of attrs) {
    if (!a.startsWith("rtpmap:")) continue;
    // rtpmap:<pt> <encoding>/<clock rate>[/<channels>]
    const [pt, encoding] = a.slice(7).split(" ", 2);
    if (!/^\d{1,3}$/.test(pt) || Number(pt) > 127) continue;
    if (encoding?.trim().toLowerCase() !== "h264/90000") continue;
    const fmtp = fmtps.get(pt) ?? "";
    fmtps.delete(pt); // read once: repeated rtpmaps of a type must not re-read a huge fmtp
    const fields = new Map(
      fmtp.split(";").map((p) => {
        const i = p.indexOf("=");
        return [p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim()] as const;
      }),
    );
    if (fields.get("packetization-mode") !== "1") continue;
    const level = fields.get("profile-level-id")?.toLowerCase() ?? "42e01f";
    const pli = /^[0-9a-f]{6}$/.test(level) ? level : "42e01f";
    if (offered.length < 8) offered.push(pli);
    const fit = stream ? profileFit(pli, stream) * 2 + (pli === "42e01f" ? 1 : 0) : (
      pli === "42e01f" ? 1 : 0
    );
    if (stream && fit < 2) continue; // this decoder cannot play the stream
    if (!best || fit > best.fit) best = { payloadType: Number(pt), profileLevelId: pli, fit };
  }
  if (!best && stream && offered.length) {
    throw new OfferRejectedError(
      `the offer's H.264 profiles (${offered.join(", ")}) cannot play the stream's ` +
        `${h264Profile(stream) ?? "unknown"} profile (${stream})`,
    );
  }
  if (!best) {
    throw new OfferRejectedError(
      "the offer has no H.264 video with packetization-mode=1: nothing to send",
    );
  }
  // Answered with what the stream really is when the viewer offered that very profile (the
  // level may differ: level-asymmetry-allowed); else with the offered format, which contains it.
  const profileLevelId = stream && profileFit(best.profileLevelId, stream) === 2
    ? stream
    : best.profileLevelId;
  return { payloadType: best.payloadType, profileLevelId };
}

/** The payload type of `opus/48000/2` in an audio section, if offered. */
function opusPayloadType(attrs: readonly string[]): number | undefined {
  for (const a of attrs) {
    if (!a.startsWith("rtpmap:")) continue;
    const [pt, encoding] = a.slice(7).split(" ", 2);
    if (!/^\d{1,3}$/.test(pt) || Number(pt) > 127) continue;
    if (encoding?.trim().toLowerCase() === "opus/48000/2") return Number(pt);
  }
  return undefined;
}

/**
 * Read what a master needs from a viewer's offer: the H.264 (packetization-mode=1) format of
 * its video section (one whose profile plays the stream's, see {@link ParseOfferOptions};
 * constrained baseline `42e01f` when that is not known), the Opus format of its audio section
 * and which ways audio goes, its data channel section, its ICE credentials and DTLS
 * fingerprint. Any of the three sections may be missing; an offer with none usable is refused,
 * and so is one whose video section has no H.264 the stream plays. Throws {@link OfferRejectedError} naming what is missing or malformed. Linear
 * in the length of the offer, which is bounded by {@link MAX_OFFER_LENGTH}.
 *
 * @example
 * ```ts
 * import { parseOffer } from "./sdp.ts";
 * try {
 *   parseOffer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n");
 * } catch (e) {
 *   console.log((e as Error).message); // the offer has nothing to answer: …
 * }
 * ```
 */
export function parseOffer(sdp: string, options: ParseOfferOptions = {}): ParsedOffer {
  if (typeof sdp !== "string" || !sdp.startsWith("v=0")) {
    throw new OfferRejectedError("the offer is not SDP (it does not start with v=0)");
  }
  if (sdp.length > MAX_OFFER_LENGTH) {
    throw new OfferRejectedError(
      `the offer is ${sdp.length} characters long (at most ${MAX_OFFER_LENGTH} are accepted)`,
    );
  }
  const session: string[] = [];
  const media: Section[] = [];
  const candidates: string[] = [];
  for (const raw of sdp.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.startsWith("m=")) {
      // m=<media> <port> <proto> <fmt> …
      const f = line.slice(2).split(" ");
      media.push({ kind: f[0], proto: f[2], format: f[3] ?? "0", attrs: [] });
    } else if (line.startsWith("a=")) {
      const a = line.slice(2);
      (media.at(-1)?.attrs ?? session).push(a);
      if (a.startsWith("candidate:") && candidates.length < MAX_OFFER_CANDIDATES) {
        const c = a.trim();
        if (c.length <= 512) candidates.push(c);
      }
    }
  }
  const sections = media.map((m, i) => {
    const mid = attribute(m.attrs, "mid")?.split(" ")[0] ?? String(i);
    if (![m.kind, mid, m.proto, m.format].every(isToken)) {
      throw new OfferRejectedError(`the offer's m-section ${i + 1} is malformed`);
    }
    return { kind: m.kind, mid, proto: m.proto, format: m.format };
  });
  const direction = (attrs: readonly string[]): MediaDirection => {
    for (const list of [attrs, session]) {
      for (const a of list) {
        if (a === "sendrecv" || a === "sendonly" || a === "recvonly" || a === "inactive") return a;
      }
    }
    return "sendrecv";
  };
  const v = sections.findIndex((s) => s.kind === "video");
  const video = v >= 0 && direction(media[v].attrs) !== "sendonly" &&
      direction(media[v].attrs) !== "inactive"
    ? { mid: sections[v].mid, ...chooseH264(media[v].attrs, options.streamProfileLevelId) }
    : undefined;
  const a = sections.findIndex((s) => s.kind === "audio");
  let audio: OfferedAudio | undefined;
  if (a >= 0) {
    const dir = direction(media[a].attrs);
    const send = (options.sendAudio ?? false) && (dir === "sendrecv" || dir === "recvonly");
    const receive = (options.receiveAudio ?? true) && (dir === "sendrecv" || dir === "sendonly");
    const payloadType = send || receive ? opusPayloadType(media[a].attrs) : undefined;
    if (payloadType !== undefined) {
      audio = { mid: sections[a].mid, payloadType, send, receive };
    }
  }
  const d = options.dataChannels ?? true
    ? sections.findIndex((s) =>
      s.kind === "application" && s.proto === "UDP/DTLS/SCTP" && s.format === "webrtc-datachannel"
    )
    : -1;
  let data: OfferedData | undefined;
  if (d >= 0) {
    const port = Number(attribute(media[d].attrs, "sctp-port") ?? 5000);
    const max = Number(attribute(media[d].attrs, "max-message-size") ?? 65536);
    if (
      Number.isInteger(port) && port > 0 && port < 65536 && Number.isSafeInteger(max) && max >= 0
    ) {
      data = { mid: sections[d].mid, sctpPort: port, maxMessageSize: max };
    }
  }
  if (!video && !audio && !data) {
    throw new OfferRejectedError(
      v < 0 && a < 0 && d < 0
        ? "the offer has no video, audio or data channel section"
        : "the offer has nothing to answer: no video to receive, no audio or data channel we " +
          "can use",
    );
  }
  const first = Math.min(
    ...[video, audio, data].filter((x) => x).map((x) =>
      sections.findIndex((s) => s.mid === x!.mid)
    ),
  );
  const attr = (name: string) =>
    bounded(
      name,
      attribute(media[first].attrs, name) ?? attribute(session, name),
    );
  const iceUfrag = attr("ice-ufrag");
  const icePwd = attr("ice-pwd");
  if (!iceUfrag || !icePwd) throw new OfferRejectedError("the offer has no a=ice-ufrag/a=ice-pwd");
  if (!isIceChars(iceUfrag, 4)) {
    throw new OfferRejectedError("the offer's a=ice-ufrag is not 4–256 ICE characters");
  }
  if (!isIceChars(icePwd, 22)) {
    throw new OfferRejectedError("the offer's a=ice-pwd is not 22–256 ICE characters");
  }
  const fingerprint = attr("fingerprint");
  if (!fingerprint) throw new OfferRejectedError("the offer has no a=fingerprint");
  if (!/^sha-256 ([0-9a-f]{2}:){31}[0-9a-f]{2}$/i.test(fingerprint)) {
    throw new OfferRejectedError(
      `the offer's fingerprint is not a SHA-256 one (${fingerprint.split(" ")[0].slice(0, 16)})`,
    );
  }
  const setup = attr("setup") ?? "actpass";
  if (!["actpass", "active", "passive"].includes(setup)) {
    throw new OfferRejectedError(
      `the offer's a=setup is "${setup.slice(0, 16)}" (actpass, active or passive expected)`,
    );
  }
  let transportCcId: number | undefined;
  if (options.transportCc ?? true) {
    for (const i of [v, a]) {
      if (i < 0 || (i === v && !video) || (i === a && !audio)) continue;
      transportCcId ??= extmapId(media[i].attrs, TRANSPORT_CC_URI);
    }
  }
  const playoutDelayId = video && v >= 0
    ? extmapId(media[v].attrs, PLAYOUT_DELAY_URI, transportCcId)
    : undefined;
  return {
    video,
    audio,
    data,
    ...(transportCcId !== undefined ? { transportCcId } : {}),
    ...(playoutDelayId !== undefined ? { playoutDelayId } : {}),
    mid: sections[first].mid,
    iceUfrag,
    icePwd,
    fingerprint,
    dtlsRole: setup === "active" ? "server" : "client",
    sections,
    candidates,
  };
}

/**
 * The answer to an offer the master will not serve: every m-section of the offer mirrored with
 * port 0 (RFC 3264 §6: rejected), no BUNDLE group, and the reason in the session's `i=` line.
 * Browsers apply it and end with no media at once instead of waiting for an ICE timeout
 * (Chromium with `bundlePolicy: "max-bundle"` refuses it with "max-bundle is used but no
 * bundle group found", which is as immediate); a viewer page can show the `i=` line, which it
 * reads from the answer it received. Undefined when the offer has no m-section to mirror.
 * Linear in the offer, whose values it echoes only when they are short tokens.
 *
 * @example
 * ```ts
 * import { refusalAnswer } from "./sdp.ts";
 * const answer = refusalAnswer(
 *   "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n",
 *   "the master already serves 10 viewers",
 * );
 * console.log(answer?.includes("m=video 0 UDP/TLS/RTP/SAVPF 96")); // true
 * ```
 */
export function refusalAnswer(offerSdp: string, reason: string): string | undefined {
  if (typeof offerSdp !== "string" || offerSdp.length > MAX_OFFER_LENGTH) return undefined;
  const sections: { kind: string; proto: string; format: string; mid?: string }[] = [];
  for (const raw of offerSdp.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.startsWith("m=")) {
      const f = line.slice(2).split(" ");
      if (![f[0], f[2], f[3]].every(isToken)) return undefined;
      sections.push({ kind: f[0], proto: f[2], format: f[3] });
    } else if (line.startsWith("a=mid:") && sections.length) {
      const mid = line.slice(6).trim();
      if (!isToken(mid)) return undefined;
      sections[sections.length - 1].mid ??= mid;
    }
  }
  if (!sections.length || sections.length > 16) return undefined;
  // Printable ASCII only: the reason is ours, but it must not end the line early.
  const info = reason.replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
  const lines = [
    "v=0",
    `o=- ${crypto.getRandomValues(new Uint32Array(1))[0]} 2 IN IP4 127.0.0.1`,
    "s=-",
    `i=refused: ${info}`,
    "t=0 0",
  ];
  for (const s of sections) {
    lines.push(`m=${s.kind} 0 ${s.proto} ${s.format}`, "c=IN IP4 0.0.0.0");
    if (s.mid !== undefined) lines.push(`a=mid:${s.mid}`);
    if (s.kind !== "application") lines.push("a=inactive");
  }
  return lines.join("\r\n") + "\r\n";
}

/** What an answer needs besides the offer. */
export interface AnswerParameters {
  /** Our ICE username fragment. */
  ufrag: string;
  /** Our ICE password. */
  pwd: string;
  /** Our DTLS certificate's fingerprint, `sha-256 AB:…`. */
  fingerprint: string;
  /** SSRC of the video stream. */
  ssrc: number;
  /** SSRC of the audio stream (when {@link OfferedAudio.send}). */
  audioSsrc?: number;
  /**
   * Host candidates, `ip:port` (`[ip]:port` for IPv6), most preferred first (none when only
   * relays are used).
   */
  hosts: string[];
}

/**
 * The answer to a parsed offer, its sections in the offer's order, the accepted ones in one
 * BUNDLE group with rtcp-mux, `a=setup` for {@link ParsedOffer.dtlsRole} and our ICE credentials: video send only (H.264
 * with the offer's payload type and the profile chosen, NACK, PLI, FIR and REMB feedback, and
 * transport-wide congestion control when {@link ParsedOffer.transportCcId} is set), audio
 * (Opus, `minptime=10;useinbandfec=1`, sending and receiving as {@link OfferedAudio} says),
 * data channels (SCTP port 5000, {@link MAX_DATA_MESSAGE}); every other section declined
 * (port 0). Host candidates go in the first accepted section.
 *
 * @example
 * ```ts
 * import { parseOffer, writeAnswer } from "./sdp.ts";
 * declare const offerSdp: string;
 * const answer = writeAnswer(parseOffer(offerSdp, { sendAudio: true }), {
 *   ufrag: "abcd",
 *   pwd: "0123456789abcdefghijkl",
 *   fingerprint: "sha-256 " + Array(32).fill("AB").join(":"),
 *   ssrc: 1234,
 *   audioSsrc: 1235,
 *   hosts: ["192.0.2.10:50000"],
 * });
 * ```
 */
export function writeAnswer(offer: ParsedOffer, p: AnswerParameters): string {
  const candidates = p.hosts.map((h, i) => {
    const colon = h.lastIndexOf(":");
    const ip = h.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    return `a=candidate:${i + 1} 1 udp ${2130706431 - i} ${ip} ${
      h.slice(colon + 1)
    } typ host generation 0`;
  });
  const common = (mid: string) => [
    "c=IN IP4 0.0.0.0",
    `a=ice-ufrag:${p.ufrag}`,
    `a=ice-pwd:${p.pwd}`,
    "a=ice-options:trickle",
    `a=fingerprint:${p.fingerprint}`,
    `a=setup:${offer.dtlsRole === "client" ? "active" : "passive"}`,
    `a=mid:${mid}`,
    ...(mid === offer.mid ? candidates : []),
  ];
  const { video, audio, data } = offer;
  const transportCc = (pt: number) =>
    offer.transportCcId === undefined
      ? []
      : [`a=extmap:${offer.transportCcId} ${TRANSPORT_CC_URI}`, `a=rtcp-fb:${pt} transport-cc`];
  const sectionOf = (kind: string, mid: string): string[] | undefined => {
    if (kind === "video" && video && mid === video.mid) {
      const pt = video.payloadType;
      return [
        `m=video 9 UDP/TLS/RTP/SAVPF ${pt}`,
        ...common(mid),
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=sendonly",
        "a=rtcp-mux",
        ...(offer.playoutDelayId === undefined
          ? []
          : [`a=extmap:${offer.playoutDelayId} ${PLAYOUT_DELAY_URI}`]),
        `a=rtpmap:${pt} H264/90000`,
        `a=rtcp-fb:${pt} nack`,
        `a=rtcp-fb:${pt} nack pli`,
        `a=rtcp-fb:${pt} ccm fir`,
        `a=rtcp-fb:${pt} goog-remb`,
        ...transportCc(pt),
        `a=fmtp:${pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=${video.profileLevelId}`,
        `a=ssrc:${p.ssrc} cname:kvs-master`,
        `a=ssrc:${p.ssrc} msid:kvs video`,
      ];
    }
    if (kind === "audio" && audio && mid === audio.mid) {
      const pt = audio.payloadType;
      const send = audio.send && p.audioSsrc !== undefined;
      return [
        `m=audio 9 UDP/TLS/RTP/SAVPF ${pt}`,
        ...common(mid),
        "a=rtcp:9 IN IP4 0.0.0.0",
        send && audio.receive ? "a=sendrecv" : send ? "a=sendonly" : "a=recvonly",
        "a=rtcp-mux",
        `a=rtpmap:${pt} opus/48000/2`,
        `a=fmtp:${pt} minptime=10;useinbandfec=1`,
        ...transportCc(pt),
        ...(send
          ? [`a=ssrc:${p.audioSsrc} cname:kvs-master`, `a=ssrc:${p.audioSsrc} msid:kvs audio`]
          : []),
      ];
    }
    if (kind === "application" && data && mid === data.mid) {
      return [
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        ...common(mid),
        "a=sctp-port:5000",
        `a=max-message-size:${MAX_DATA_MESSAGE}`,
      ];
    }
    return undefined;
  };
  const bundle: string[] = [];
  const done = new Set<string>();
  const body = offer.sections.flatMap((m) => {
    const accepted = done.has(m.mid) ? undefined : sectionOf(m.kind, m.mid);
    if (accepted) {
      done.add(m.mid);
      bundle.push(m.mid);
      return accepted;
    }
    return [
      `m=${m.kind} 0 ${m.proto} ${m.format}`,
      "c=IN IP4 0.0.0.0",
      `a=mid:${m.mid}`,
      ...(m.kind === "application" ? [] : ["a=inactive"]),
    ];
  });
  return [
    "v=0",
    `o=- ${Date.now()} 2 IN IP4 127.0.0.1`,
    "s=-",
    "t=0 0",
    `a=group:BUNDLE ${bundle.join(" ")}`,
    "a=msid-semantic: WMS kvs",
    ...body,
    "",
  ].join("\r\n");
}
