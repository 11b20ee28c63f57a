// Log records stay one line each, whatever text from the network they carry, and secrets stay out.
import assert from "node:assert/strict";
import { createLogger, type LogRecord, oneLine } from "../src/log.ts";

Deno.test("log: text from the network cannot split or forge a record", () => {
  const records: LogRecord[] = [];
  const log = createLogger({ level: "debug", sink: (r) => records.push(r) }).child("peer:a\nb");
  const id = "viewer-1\n2026-11-26T00:00:00.000Z ERROR [signaling] forged\r\u001b[31m";
  log.info(`Viewer ${id} left`, { clientId: id });
  const [r] = records;
  assert.equal(r.message.includes("\n") || r.message.includes("\r"), false);
  // deno-lint-ignore no-control-regex
  assert.equal(new RegExp("[\\u0000-\\u001f]").test(r.message), false, r.message);
  assert.equal(
    r.message,
    "Viewer viewer-1\\n2026-11-26T00:00:00.000Z ERROR [signaling] forged\\r\\u001b[31m left",
  );
  assert.equal(r.component, "kvs:peer:a\\nb");
  // Fields go out as JSON, which escapes them itself.
  assert.equal(JSON.stringify(r.fields).includes("\n"), false);
  assert.equal(oneLine("tab\there"), "tab\\there");
  // Redaction still applies.
  log.warn("Opening wss://x/?X-Amz-Signature=abcdef0123456789&a=1");
  assert.match(records[1].message, /X-Amz-Signature=<redacted>/);
});
