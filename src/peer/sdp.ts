/**
 * Reading a viewer's SDP offer. The offer comes from anyone holding viewer credentials, so the
 * parser is linear in its input (one split into lines, then fixed prefixes and bounded fields;
 * no backtracking pattern ever runs on unbounded text) and bounds what it accepts: the whole
 * offer, each line, and every value it keeps or echoes into the answer.
 *
 * @module
 */
import { OfferRejectedError } from "./errors.ts";

/** Largest offer accepted, characters (KVS signaling carries at most 10 KB per message). */
export const MAX_OFFER_LENGTH = 64 * 1024;
/** Longest value kept from an attribute (RFC 8839 bounds ICE ufrag and pwd at 256). */
export const MAX_VALUE_LENGTH = 256;
/** Most candidate lines kept from an offer. */
export const MAX_OFFER_CANDIDATES = 64;

/** What the answer and the session need from the offer. */
export interface ParsedOffer {
  /** Media id of the video section. */
  mid: string;
  /** H.264 payload type chosen (packetization-mode=1). */
  payloadType: number;
  /** Its profile-level-id. */
  profileLevelId: string;
  /** The viewer's ICE username fragment. */
  iceUfrag: string;
  /** The viewer's ICE password. */
  icePwd: string;
  /** The viewer's DTLS certificate fingerprint, `sha-256 AB:…`. */
  fingerprint: string;
  /**
   * Every m-section in offer order (an answer must mirror them): kind, mid, protocol, first
   * format. Only the video one is accepted; the others are answered with port 0.
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
 * Read what a master needs from a viewer's offer: the H.264 (packetization-mode=1) format of
 * its video section (preferring constrained baseline `42e01f`), its ICE credentials and DTLS
 * fingerprint. Throws {@link OfferRejectedError} naming what is missing or malformed. Linear
 * in the length of the offer, which is bounded by {@link MAX_OFFER_LENGTH}.
 *
 * @example
 * ```ts
 * import { parseOffer } from "./sdp.ts";
 * try {
 *   parseOffer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n");
 * } catch (e) {
 *   console.log((e as Error).message); // the offer has no video section
 * }
 * ```
 */
export function parseOffer(sdp: string): ParsedOffer {
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
  const v = sections.findIndex((s) => s.kind === "video");
  if (v < 0) throw new OfferRejectedError("the offer has no video section");
  const video = media[v];
  const attr = (name: string) =>
    bounded(name, attribute(video.attrs, name) ?? attribute(session, name));

  // a=fmtp:<pt> <params>, first one per payload type (one pass, so rtpmap lookups stay linear).
  const fmtps = new Map<string, string>();
  for (const a of video.attrs) {
    if (!a.startsWith("fmtp:")) continue;
    const sp = a.indexOf(" ");
    const pt = sp < 0 ? "" : a.slice(5, sp);
    if (pt && !fmtps.has(pt)) fmtps.set(pt, a.slice(sp + 1));
  }
  let best: { payloadType: number; profileLevelId: string } | undefined;
  for (const a of video.attrs) {
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
    if (!best || (pli === "42e01f" && best.profileLevelId !== "42e01f")) {
      best = { payloadType: Number(pt), profileLevelId: pli };
    }
  }
  if (!best) {
    throw new OfferRejectedError(
      "the offer has no H.264 video with packetization-mode=1: nothing to send",
    );
  }
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
  return {
    mid: sections[v].mid,
    ...best,
    iceUfrag,
    icePwd,
    fingerprint,
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
