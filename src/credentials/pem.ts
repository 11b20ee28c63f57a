/**
 * Reading PEM files (device certificate, private key, CA bundle) with errors that name the file
 * and the setting that points at it.
 *
 * @module
 */
import { CredentialsError } from "./errors.ts";

/**
 * Read a PEM file. Throws a fatal {@link CredentialsError} (`CREDENTIALS_FILE`) naming `path` and
 * `setting` (the flag or environment variable the path came from) when it is missing, unreadable
 * or holds no `-----BEGIN …-----` block.
 *
 * @example
 * ```ts
 * import { readPemFile } from "./pem.ts";
 * try {
 *   await readPemFile("/nonexistent/certificate.pem", "AWS_IOT_CORE_CERT", "device certificate");
 * } catch (e) {
 *   console.log((e as Error).message); // names the file and AWS_IOT_CORE_CERT
 * }
 * ```
 */
export async function readPemFile(path: string, setting: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    const why = cause instanceof Deno.errors.NotFound
      ? "does not exist"
      : cause instanceof Deno.errors.PermissionDenied
      ? "cannot be read (permission denied)"
      : cause instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : `cannot be read (${(cause as Error).message})`;
    throw new CredentialsError(
      "CREDENTIALS_FILE",
      `${what} file ${path} ${why} (set by ${setting})`,
      { cause, setting, path, fatal: true },
    );
  }
  if (!/-----BEGIN [A-Z0-9 ]+-----/.test(text)) {
    throw new CredentialsError(
      "CREDENTIALS_FILE",
      `${what} file ${path} is not PEM: no "-----BEGIN …-----" line (set by ${setting})`,
      { setting, path, fatal: true },
    );
  }
  return text;
}

/**
 * The most specific message of a failed `fetch`: Deno says only "fetch failed" and puts the TLS
 * or connection reason in `cause`.
 *
 * @example
 * ```ts
 * import { fetchFailureReason } from "./pem.ts";
 * const e = new TypeError("fetch failed", { cause: new Error("invalid peer certificate") });
 * fetchFailureReason(e); // "invalid peer certificate"
 * ```
 */
export function fetchFailureReason(error: unknown): string {
  const parts: string[] = [];
  let cur: unknown = error;
  for (let i = 0; i < 5 && cur instanceof Error; i++) {
    if (cur.message && !parts.includes(cur.message)) parts.push(cur.message);
    cur = cur.cause;
  }
  const specific = parts.filter((m) => m !== "fetch failed");
  return (specific.length ? specific : parts).join(": ") || String(error);
}
