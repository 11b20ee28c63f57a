/**
 * Encoding and strict decoding of KVS signaling WebSocket messages.
 *
 * Sent: `{action, recipientClientId, messagePayload: base64(JSON), correlationId?}`.
 * Received: `{senderClientId, messageType, messagePayload, statusResponse}`.
 * Every problem with a received message becomes a {@link SignalingMessageError} naming the field
 * at fault; nothing here throws anything else.
 *
 * @module
 */
import { decodeBase64Utf8, encodeBase64Utf8 } from "./base64.ts";
import { SignalingMessageError } from "./errors.ts";

export { decodeBase64Utf8, encodeBase64Utf8, SignalingMessageError };

/**
 * The payload of an `ICE_CANDIDATE` message: a trickled candidate in the browser's
 * `RTCIceCandidateInit` shape.
 *
 * @example
 * ```ts
 * import type { CandidatePayload } from "./messages.ts";
 * const c: CandidatePayload = {
 *   candidate: "candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host",
 *   sdpMid: "0",
 *   sdpMLineIndex: 0,
 * };
 * ```
 */
export interface CandidatePayload {
  /** `candidate:…` line (no `a=`), empty string for end-of-candidates. */
  candidate: string;
  /** Media section id the candidate belongs to. */
  sdpMid?: string | null;
  /** Index of that media section in the SDP. */
  sdpMLineIndex?: number | null;
}

/**
 * The service's limit on one signaling message (SDP included), in bytes.
 *
 * @example
 * ```ts
 * import { MAX_SIGNALING_MESSAGE_BYTES } from "./messages.ts";
 * console.log(MAX_SIGNALING_MESSAGE_BYTES); // 10240
 * ```
 */
export const MAX_SIGNALING_MESSAGE_BYTES = 10 * 1024;

/**
 * Actions a client may send.
 *
 * @example
 * ```ts
 * import type { SignalingAction } from "./messages.ts";
 * const action: SignalingAction = "SDP_ANSWER";
 * ```
 */
export type SignalingAction = "SDP_OFFER" | "SDP_ANSWER" | "ICE_CANDIDATE";

/**
 * Message types the service delivers.
 *
 * @example
 * ```ts
 * import type { SignalingMessageType } from "./messages.ts";
 * const type: SignalingMessageType = "GO_AWAY";
 * ```
 */
export type SignalingMessageType =
  | "SDP_OFFER"
  | "SDP_ANSWER"
  | "ICE_CANDIDATE"
  | "GO_AWAY"
  | "RECONNECT_ICE_SERVER"
  | "STATUS_RESPONSE";

const MESSAGE_TYPES: ReadonlySet<string> = new Set<SignalingMessageType>([
  "SDP_OFFER",
  "SDP_ANSWER",
  "ICE_CANDIDATE",
  "GO_AWAY",
  "RECONNECT_ICE_SERVER",
  "STATUS_RESPONSE",
]);

/**
 * `statusResponse` of a received message (errors for a message we sent).
 *
 * @example
 * ```ts
 * import type { SignalingStatusResponse } from "./messages.ts";
 * const status: SignalingStatusResponse = { correlationId: "1", statusCode: "400", errorType: "InvalidArgumentException" };
 * ```
 */
export interface SignalingStatusResponse {
  /** The `correlationId` of the message that was refused. */
  correlationId?: string;
  /** AWS error type, e.g. `InvalidArgumentException`. */
  errorType?: string;
  /** HTTP-like status code, e.g. `"400"`. */
  statusCode?: string;
  /** What was wrong. */
  description?: string;
}

/**
 * A decoded message from the service.
 *
 * @example
 * ```ts
 * import { decodeSignalingMessage, type ReceivedSignalingMessage } from "./messages.ts";
 * const msg: ReceivedSignalingMessage = decodeSignalingMessage('{"messageType":"GO_AWAY"}');
 * ```
 */
export type ReceivedSignalingMessage =
  | {
    type: "SDP_OFFER" | "SDP_ANSWER";
    senderClientId: string;
    /** `type` field of the payload (`offer` / `answer`). */
    sdpType: string;
    sdp: string;
    statusResponse?: SignalingStatusResponse;
  }
  | {
    type: "ICE_CANDIDATE";
    senderClientId: string;
    candidate: CandidatePayload;
    statusResponse?: SignalingStatusResponse;
  }
  | {
    type: "GO_AWAY" | "RECONNECT_ICE_SERVER" | "STATUS_RESPONSE";
    senderClientId?: string;
    statusResponse?: SignalingStatusResponse;
  };

/**
 * What {@link encodeSignalingMessage} sends.
 *
 * @example
 * ```ts
 * import { encodeSignalingMessage, type OutgoingSignalingMessage } from "./messages.ts";
 * const msg: OutgoingSignalingMessage = {
 *   action: "ICE_CANDIDATE",
 *   recipientClientId: "viewer-1",
 *   payload: { candidate: "", sdpMid: "0", sdpMLineIndex: 0 },
 * };
 * encodeSignalingMessage(msg);
 * ```
 */
export interface OutgoingSignalingMessage {
  /** What the message is: offer, answer or candidate. */
  action: SignalingAction;
  /** The peer the service delivers to. A master MUST set it. */
  recipientClientId: string;
  /** JSON payload: `{type, sdp}` or `{candidate, sdpMid, sdpMLineIndex}`. */
  payload: unknown;
  /** Echoed in a `STATUS_RESPONSE` if the service rejects the message. */
  correlationId?: string;
}

/**
 * Encode one outgoing message as the JSON text frame the service expects. Throws
 * {@link SignalingMessageError} if `recipientClientId` is empty or the result exceeds
 * {@link MAX_SIGNALING_MESSAGE_BYTES}.
 *
 * @example
 * ```ts
 * import { encodeSignalingMessage } from "./messages.ts";
 * const frame = encodeSignalingMessage({
 *   action: "SDP_ANSWER",
 *   recipientClientId: "viewer-1",
 *   payload: { type: "answer", sdp: "v=0\r\n" },
 * });
 * ```
 */
export function encodeSignalingMessage(message: OutgoingSignalingMessage): string {
  if (typeof message.recipientClientId !== "string" || message.recipientClientId === "") {
    throw new SignalingMessageError(
      "recipientClientId",
      `${message.action}: recipientClientId is required (a master must name the viewer)`,
    );
  }
  const body: Record<string, string> = {
    action: message.action,
    recipientClientId: message.recipientClientId,
    messagePayload: encodeBase64Utf8(JSON.stringify(message.payload)),
  };
  if (message.correlationId !== undefined) body.correlationId = message.correlationId;
  const text = JSON.stringify(body);
  const size = new TextEncoder().encode(text).byteLength;
  if (size > MAX_SIGNALING_MESSAGE_BYTES) {
    throw new SignalingMessageError(
      "messagePayload",
      `${message.action} for ${message.recipientClientId} is ${size} bytes, over the ` +
        `${MAX_SIGNALING_MESSAGE_BYTES}-byte signaling message limit`,
    );
  }
  return text;
}

/**
 * Encode an `SDP_ANSWER` for a viewer.
 *
 * @example
 * ```ts
 * import { encodeAnswer } from "./messages.ts";
 * encodeAnswer("viewer-1", "v=0\r\n");
 * ```
 */
export function encodeAnswer(viewerId: string, sdp: string, correlationId?: string): string {
  return encodeSignalingMessage({
    action: "SDP_ANSWER",
    recipientClientId: viewerId,
    payload: { type: "answer", sdp },
    correlationId,
  });
}

/**
 * Encode an `ICE_CANDIDATE` for a viewer.
 *
 * @example
 * ```ts
 * import { encodeCandidate } from "./messages.ts";
 * encodeCandidate("viewer-1", { candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", sdpMid: "0", sdpMLineIndex: 0 });
 * ```
 */
export function encodeCandidate(
  viewerId: string,
  candidate: CandidatePayload,
  correlationId?: string,
): string {
  return encodeSignalingMessage({
    action: "ICE_CANDIDATE",
    recipientClientId: viewerId,
    payload: {
      candidate: candidate.candidate,
      sdpMid: candidate.sdpMid ?? null,
      sdpMLineIndex: candidate.sdpMLineIndex ?? null,
    },
    correlationId,
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optString(obj: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    throw new SignalingMessageError(key, `${where}.${key} must be a string, got ${typeof v}`);
  }
  return v;
}

function parseJson(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new SignalingMessageError(field, `${field} is not valid JSON`, { cause });
  }
}

function decodeStatus(v: unknown): SignalingStatusResponse | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v)) {
    throw new SignalingMessageError("statusResponse", "statusResponse must be an object");
  }
  const out: SignalingStatusResponse = {};
  for (const k of ["correlationId", "errorType", "statusCode", "description"] as const) {
    const raw = v[k];
    if (raw === undefined || raw === null) continue;
    if (typeof raw !== "string" && typeof raw !== "number") {
      throw new SignalingMessageError(k, `statusResponse.${k} must be a string`);
    }
    out[k] = String(raw);
  }
  return out;
}

/**
 * Decode and validate one received text frame. Throws {@link SignalingMessageError} for
 * malformed JSON, bad base64, an unknown type, an oversized frame or missing fields.
 *
 * @example
 * ```ts
 * import { decodeSignalingMessage, encodeBase64Utf8 } from "./messages.ts";
 * const msg = decodeSignalingMessage(JSON.stringify({
 *   senderClientId: "viewer-1",
 *   messageType: "SDP_OFFER",
 *   messagePayload: encodeBase64Utf8(JSON.stringify({ type: "offer", sdp: "v=0\r\n" })),
 * }));
 * if (msg.type === "SDP_OFFER") console.log(msg.senderClientId, msg.sdp);
 * ```
 */
export function decodeSignalingMessage(data: string | Uint8Array): ReceivedSignalingMessage {
  const size = typeof data === "string" ? new TextEncoder().encode(data).byteLength : data.length;
  // Base64 inflates the payload by 4/3; allow for that and the envelope.
  const limit = Math.ceil(MAX_SIGNALING_MESSAGE_BYTES * 4 / 3) + 1024;
  if (size > limit) {
    throw new SignalingMessageError(
      "message",
      `signaling message of ${size} bytes exceeds the ${limit}-byte limit`,
    );
  }
  let text: string;
  if (typeof data === "string") {
    text = data;
  } else {
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(data);
    } catch (cause) {
      throw new SignalingMessageError("message", "signaling message is not valid UTF-8", {
        cause,
      });
    }
  }
  if (text.trim() === "") {
    throw new SignalingMessageError("message", "signaling message is empty");
  }
  const root = parseJson(text, "message");
  if (!isRecord(root)) {
    throw new SignalingMessageError("message", "signaling message must be a JSON object");
  }
  const messageType = root.messageType;
  if (typeof messageType !== "string") {
    throw new SignalingMessageError("messageType", "signaling message has no messageType");
  }
  if (!MESSAGE_TYPES.has(messageType)) {
    throw new SignalingMessageError(
      "messageType",
      `unknown signaling messageType "${messageType.slice(0, 64)}"`,
    );
  }
  const type = messageType as SignalingMessageType;
  const statusResponse = decodeStatus(root.statusResponse);
  const senderClientId = optString(root, "senderClientId", "message");

  if (type === "GO_AWAY" || type === "RECONNECT_ICE_SERVER" || type === "STATUS_RESPONSE") {
    return { type, senderClientId, statusResponse };
  }
  if (!senderClientId) {
    throw new SignalingMessageError("senderClientId", `${type} has no senderClientId`);
  }
  const rawPayload = root.messagePayload;
  if (typeof rawPayload !== "string" || rawPayload === "") {
    throw new SignalingMessageError("messagePayload", `${type} has no messagePayload`);
  }
  const payload = parseJson(decodeBase64Utf8(rawPayload), "messagePayload");
  if (!isRecord(payload)) {
    throw new SignalingMessageError("messagePayload", `${type} payload must be a JSON object`);
  }
  if (type === "ICE_CANDIDATE") {
    const candidate = payload.candidate;
    if (typeof candidate !== "string") {
      throw new SignalingMessageError("candidate", "ICE_CANDIDATE payload has no candidate string");
    }
    const sdpMid = payload.sdpMid;
    if (sdpMid !== undefined && sdpMid !== null && typeof sdpMid !== "string") {
      throw new SignalingMessageError("sdpMid", "ICE_CANDIDATE sdpMid must be a string or null");
    }
    const idx = payload.sdpMLineIndex;
    if (
      idx !== undefined && idx !== null &&
      (typeof idx !== "number" || !Number.isInteger(idx) || idx < 0)
    ) {
      throw new SignalingMessageError(
        "sdpMLineIndex",
        "ICE_CANDIDATE sdpMLineIndex must be a non-negative integer or null",
      );
    }
    return {
      type,
      senderClientId,
      candidate: {
        candidate,
        sdpMid: (sdpMid as string | null | undefined) ?? null,
        sdpMLineIndex: (idx as number | null | undefined) ?? null,
      },
      statusResponse,
    };
  }
  const sdp = payload.sdp;
  if (typeof sdp !== "string" || sdp === "") {
    throw new SignalingMessageError("sdp", `${type} payload has no sdp`);
  }
  const sdpType = typeof payload.type === "string"
    ? payload.type
    : type === "SDP_OFFER"
    ? "offer"
    : "answer";
  return { type, senderClientId, sdpType, sdp, statusResponse };
}
