/**
 * Base64 of UTF-8 text, the encoding of every KVS signaling payload: strict on the way in
 * (canonical base64, valid UTF-8, no lone surrogates), so garbage is refused with a reason.
 *
 * @module
 */
import { SignalingMessageError } from "./errors.ts";

/**
 * Base64 of the UTF-8 bytes of `text`.
 *
 * @example
 * ```ts
 * import { encodeBase64Utf8 } from "./base64.ts";
 * encodeBase64Utf8("é"); // "w6k="
 * ```
 */
export function encodeBase64Utf8(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decode strict base64 holding UTF-8 text. Throws {@link SignalingMessageError} for bad base64
 * or invalid UTF-8.
 *
 * @example
 * ```ts
 * import { decodeBase64Utf8 } from "./base64.ts";
 * decodeBase64Utf8("w6k="); // "é"
 * ```
 */
export function decodeBase64Utf8(value: string, field = "messagePayload"): string {
  const compact = value.replace(/[\r\n]/g, "");
  if (!BASE64.test(compact)) {
    throw new SignalingMessageError(field, `${field} is not valid base64`);
  }
  const binary = atob(compact);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new SignalingMessageError(field, `${field} is not valid UTF-8 after base64 decoding`, {
      cause,
    });
  }
}
