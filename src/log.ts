/**
 * One logger for the whole module: levels, a component name, and redaction of secrets.
 *
 * Every message and every field passes through {@link redact} before it is written, so
 * secret keys, session tokens, TURN passwords and presigned-URL signatures never reach a log.
 *
 * @module
 */

/** Log levels, most verbose first. `silent` writes nothing. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "silent";

const LEVELS: Record<LogLevel, number> = {
  trace: 0,
  debug: 1,
  info: 2,
  warn: 3,
  error: 4,
  silent: 5,
};

/** A structured log record, as handed to a {@link LogSink}. */
export interface LogRecord {
  /** Wall-clock time the record was made. */
  time: Date;
  /** Severity. */
  level: Exclude<LogLevel, "silent">;
  /** Which part of the module wrote it, e.g. `signaling` or `peer:viewer-1`. */
  component: string;
  /** The message, already redacted and on one line ({@link oneLine}). */
  message: string;
  /** Extra structured fields, already redacted. */
  fields?: Record<string, unknown>;
}

/** Where records go. The default sink writes one line per record to stderr. */
export type LogSink = (record: LogRecord) => void;

/**
 * A leveled logger.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const log = createLogger({ level: "info" }).child("signaling");
 * log.info("[SIGNALING] State: Connected");
 * ```
 */
export interface Logger {
  /** Current level. */
  readonly level: LogLevel;
  /** Whether a record at `level` would be written. */
  enabled(level: Exclude<LogLevel, "silent">): boolean;
  /** Very verbose: per-packet detail. */
  trace(message: string, fields?: Record<string, unknown>): void;
  /** Debug detail (SDP bodies when `DEBUG_LOG_SDP` is set, retries, timers). */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** State transitions and milestones. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Recoverable problems. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Failures a user should act on. */
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger for a sub-component, sharing level and sink. */
  child(component: string): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level written. Default `info` (the CLI passes `--log-level` / `AWS_KVS_LOG_LEVEL`). */
  level?: LogLevel;
  /** Component name. Default `kvs`. */
  component?: string;
  /** Record sink. Default: one line per record on stderr. */
  sink?: LogSink;
}

/**
 * Parse a level name or the C SDK's numeric `AWS_KVS_LOG_LEVEL`
 * (1 verbose, 2 debug, 3 info, 4 warn, 5 error, 6 fatal, 7 silent).
 *
 * @example
 * ```ts
 * import { parseLogLevel } from "./log.ts";
 * parseLogLevel("2"); // "debug"
 * parseLogLevel("warn"); // "warn"
 * ```
 */
export function parseLogLevel(value: string | undefined, fallback: LogLevel = "info"): LogLevel {
  if (value === undefined || value.trim() === "") return fallback;
  const v = value.trim().toLowerCase();
  if (v in LEVELS) return v as LogLevel;
  const numeric: Record<string, LogLevel> = {
    "1": "trace",
    "2": "debug",
    "3": "info",
    "4": "warn",
    "5": "error",
    "6": "error",
    "7": "silent",
  };
  if (v in numeric) return numeric[v];
  if (v === "verbose") return "trace";
  if (v === "warning") return "warn";
  if (v === "fatal") return "error";
  if (v === "off" || v === "none") return "silent";
  throw new RangeError(
    `"${value}" is not a log level: use trace, debug, info, warn, error, silent or 1-7`,
  );
}

const SECRET_QUERY = /((?:X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential)=)[^&\s"']+/gi;
const SECRET_JSON =
  /("(?:secretAccessKey|SecretAccessKey|sessionToken|SessionToken|Password|password|credential|privateKey)"\s*:\s*")[^"]*(")/g;
const AUTH_SIG = /(Signature=)[0-9a-f]{16,}/gi;
const SECURITY_TOKEN_HEADER = /(x-amz-security-token[:=]\s*)[^\s,;"']+/gi;
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+:[^\s/@]*@/gi;
const PEM_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g;

/** Keys whose values are never logged, whatever their nesting. */
const SECRET_KEYS = new Set([
  "secretaccesskey",
  "sessiontoken",
  "password",
  "credential",
  "privatekey",
  "authorization",
  "x-amz-security-token",
]);

/**
 * Remove secrets from a string: presigned-URL signatures, security tokens and credential
 * scopes in query strings, secret keys, session tokens and passwords in JSON, SigV4
 * signatures in `authorization` headers, passwords in URLs (`rtsp://user:pass@host`) and PEM
 * private keys.
 *
 * @example
 * ```ts
 * import { redact } from "./log.ts";
 * redact("wss://m-1.example/?X-Amz-Signature=abcd&X-Amz-ChannelARN=arn");
 * // "wss://m-1.example/?X-Amz-Signature=<redacted>&X-Amz-ChannelARN=arn"
 * ```
 */
export function redact(text: string): string {
  return text
    .replace(SECRET_QUERY, "$1<redacted>")
    .replace(SECRET_JSON, "$1<redacted>$2")
    .replace(AUTH_SIG, "$1<redacted>")
    .replace(SECURITY_TOKEN_HEADER, "$1<redacted>")
    .replace(URL_USERINFO, "$1<redacted>@")
    .replace(PEM_KEY, "<redacted private key>");
}

/**
 * Redact a structured value: secret-named keys are replaced, strings pass through
 * {@link redact}, errors become their redacted message.
 *
 * @example
 * ```ts
 * import { redactValue } from "./log.ts";
 * redactValue({ Username: "u", Password: "p" }); // { Username: "u", Password: "<redacted>" }
 * ```
 */
export function redactValue(value: unknown, depth = 0): unknown {
  if (depth > 6) return "…";
  if (typeof value === "string") return redact(value);
  if (value instanceof Error) return redact(`${value.name}: ${value.message}`);
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value && typeof value === "object") {
    if (value instanceof Date) return value.toISOString();
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEYS.has(k.toLowerCase()) ? "<redacted>" : redactValue(v, depth + 1);
    }
    return out;
  }
  return value;
}

/** Control characters (C0 and DEL). */
// deno-lint-ignore no-control-regex
const CONTROL = new RegExp("[\\u0000-\\u001f\\u007f]", "g");

/**
 * One line, whatever the text: control characters (newlines, carriage returns, terminal escapes)
 * written as `\n`, `\r`, `\t`, `\u001b`…, so text from the network (a client id, a candidate, an
 * error message) can neither split a record nor forge one.
 *
 * @example
 * ```ts
 * import { oneLine } from "./log.ts";
 * console.log(oneLine("viewer-1\nFAKE ERROR")); // viewer-1\nFAKE ERROR
 * ```
 */
export function oneLine(text: string): string {
  return text.replace(
    CONTROL,
    (c) =>
      c === "\n"
        ? "\\n"
        : c === "\r"
        ? "\\r"
        : c === "\t"
        ? "\\t"
        : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function defaultSink(record: LogRecord): void {
  const ts = record.time.toISOString();
  const fields = record.fields && Object.keys(record.fields).length > 0
    ? " " + JSON.stringify(record.fields)
    : "";
  console.error(
    `${ts} ${
      record.level.toUpperCase().padEnd(5)
    } [${record.component}] ${record.message}${fields}`,
  );
}

/**
 * Create a logger.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const records: string[] = [];
 * const log = createLogger({ level: "debug", sink: (r) => records.push(r.message) });
 * log.debug("hello");
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const sink = options.sink ?? defaultSink;
  return makeLogger(options.component ?? "kvs", level, sink);
}

function makeLogger(component: string, level: LogLevel, sink: LogSink): Logger {
  const min = LEVELS[level];
  const write = (
    lvl: Exclude<LogLevel, "silent">,
    message: string,
    fields?: Record<string, unknown>,
  ) => {
    if (LEVELS[lvl] < min) return;
    sink({
      time: new Date(),
      level: lvl,
      component: oneLine(component),
      message: oneLine(redact(message)),
      fields: fields ? redactValue(fields) as Record<string, unknown> : undefined,
    });
  };
  return {
    level,
    enabled: (lvl) => LEVELS[lvl] >= min,
    trace: (m, f) => write("trace", m, f),
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (name) => makeLogger(`${component}:${name}`, level, sink),
  };
}

/** A logger that writes nothing (tests, embedding). */
export const silentLogger: Logger = createLogger({ level: "silent" });

/**
 * WARN lines that may repeat quickly (one per refused offer under a flood): at most one line per
 * kind every `intervalMs`, the next one counting how many were left out meanwhile.
 *
 * @example
 * ```ts
 * import { createLogger, NoticeLimiter } from "./log.ts";
 * const notices = new NoticeLimiter(createLogger({ level: "info" }), 5000);
 * for (let i = 0; i < 100; i++) notices.warn("refuse", `Offer ${i} refused`); // one line
 * ```
 */
export class NoticeLimiter {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #kinds = new Map<string, { at: number; suppressed: number }>();

  /** Log through `logger`, each kind at most once per `intervalMs`. */
  constructor(logger: Logger, intervalMs = 5000) {
    this.#log = logger;
    this.#intervalMs = intervalMs;
  }

  /** Log `message` at WARN unless a line of this kind went out less than the interval ago. */
  warn(kind: string, message: string): void {
    const now = performance.now();
    const n = this.#kinds.get(kind);
    if (n && now - n.at < this.#intervalMs) {
      n.suppressed++;
      return;
    }
    const more = n?.suppressed ? ` (and ${n.suppressed} more like it since the last notice)` : "";
    this.#kinds.set(kind, { at: now, suppressed: 0 });
    if (this.#kinds.size > 64) this.#kinds.delete(this.#kinds.keys().next().value!);
    this.#log.warn(message + more);
  }
}
