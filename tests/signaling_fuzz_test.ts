// Property/fuzz test of the signaling message decoder: whatever bytes arrive on the WebSocket,
// `decodeSignalingMessage` returns a well-formed message or throws `SignalingMessageError` naming
// the field at fault — never another exception, never a hang. Seeded, so a failure replays.
// Longer runs: `FUZZ_SECONDS=600 deno test -A tests/signaling_fuzz_test.ts` (seed in FUZZ_SEED).
// What such inputs cost, rather than whether they fail cleanly: tests/parser_cost_fuzz_test.ts.
import assert from "node:assert/strict";
import {
  decodeSignalingMessage,
  encodeBase64Utf8,
  MAX_SIGNALING_MESSAGE_BYTES,
  type ReceivedSignalingMessage,
  SignalingMessageError,
} from "../src/signaling/messages.ts";
import { prng } from "./support/hostile.ts";

const SECONDS = Number(Deno.env.get("FUZZ_SECONDS") ?? "2");
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 1_000_000);

const OFFER_SDP = [
  "v=0",
  "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0",
  "m=video 9 UDP/TLS/RTP/SAVPF 102",
  "c=IN IP4 0.0.0.0",
  "a=ice-ufrag:abcd",
  "a=ice-pwd:0123456789abcdef012345",
  "a=fingerprint:sha-256 AA:BB",
  "a=setup:actpass",
  "a=mid:0",
  "a=recvonly",
  "a=rtpmap:102 H264/90000",
  "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
  "",
].join("\r\n");

function seeds(): string[] {
  const offer = {
    senderClientId: "viewer-1",
    messageType: "SDP_OFFER",
    messagePayload: encodeBase64Utf8(JSON.stringify({ type: "offer", sdp: OFFER_SDP })),
  };
  const candidate = {
    senderClientId: "viewer-1",
    messageType: "ICE_CANDIDATE",
    messagePayload: encodeBase64Utf8(JSON.stringify({
      candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0",
      sdpMid: "0",
      sdpMLineIndex: 0,
    })),
  };
  const status = {
    messageType: "STATUS_RESPONSE",
    statusResponse: {
      correlationId: "c-1",
      errorType: "InvalidArgumentException",
      statusCode: "400",
      description: "bad",
    },
  };
  return [offer, candidate, status, { messageType: "GO_AWAY" }, {
    messageType: "RECONNECT_ICE_SERVER",
  }].map((m) => JSON.stringify(m));
}

const TOKENS = [
  "{",
  "}",
  "[",
  "]",
  '"',
  ":",
  ",",
  "null",
  "true",
  "1e999",
  "-0",
  "\\u0000",
  "\\ud800",
  '"messageType"',
  '"SDP_OFFER"',
  '"ICE_CANDIDATE"',
  '"messagePayload"',
  '"senderClientId"',
  '"__proto__"',
  "====",
  "\u{1F600}",
  "\uFFFD",
];

/** One mutation of `text`: byte-level edits, token splices, payload re-encoding, truncation. */
function mutate(text: string, rand: () => number): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const at = () => Math.floor(rand() * (text.length + 1));
  switch (Math.floor(rand() * 9)) {
    case 0: // flip a character
    {
      const i = Math.floor(rand() * text.length);
      return text.slice(0, i) + String.fromCharCode(Math.floor(rand() * 0x80)) + text.slice(i + 1);
    }
    case 1: // truncate
      return text.slice(0, at());
    case 2: // insert a JSON-ish token
    {
      const i = at();
      return text.slice(0, i) + pick(TOKENS) + text.slice(i);
    }
    case 3: // delete a range
    {
      const i = at();
      return text.slice(0, i) + text.slice(i + Math.floor(rand() * 16));
    }
    case 4: // duplicate a range
    {
      const i = at();
      const j = Math.min(text.length, i + Math.floor(rand() * 64));
      return text.slice(0, j) + text.slice(i, j) + text.slice(j);
    }
    case 5: // re-encode the payload as something else that is valid base64
    {
      try {
        const root = JSON.parse(text);
        if (root && typeof root === "object") {
          const inner = pick([
            "",
            "null",
            "[]",
            '{"type":"offer"}',
            '{"candidate":5}',
            '{"candidate":"x","sdpMLineIndex":-1}',
            '{"candidate":"x","sdpMid":{}}',
            '{"sdp":""}',
            '{"sdp":' + JSON.stringify("x".repeat(Math.floor(rand() * 20000))) + "}",
            "\u{1F600}",
          ]);
          root.messagePayload = encodeBase64Utf8(inner);
          return JSON.stringify(root);
        }
      } catch { /* not JSON any more: fall through */ }
      return text;
    }
    case 6: // change a field's type
    {
      try {
        const root = JSON.parse(text);
        if (root && typeof root === "object") {
          const key = pick(Object.keys(root).concat(["messageType", "statusResponse"]));
          root[key] = pick<unknown>([null, 0, [], {}, "", true, "GO_AWAY", { correlationId: 1 }]);
          return JSON.stringify(root);
        }
      } catch { /* fall through */ }
      return text;
    }
    case 7: // oversize
      return text + " ".repeat(Math.floor(rand() * 2 * MAX_SIGNALING_MESSAGE_BYTES * 2));
    default: // random garbage
      return Array.from(
        { length: Math.floor(rand() * 64) },
        () => String.fromCharCode(Math.floor(rand() * 0x10000)),
      ).join("");
  }
}

function checkShape(m: ReceivedSignalingMessage): void {
  switch (m.type) {
    case "SDP_OFFER":
    case "SDP_ANSWER":
      assert.equal(typeof m.senderClientId, "string");
      assert.ok(m.senderClientId.length > 0);
      assert.equal(typeof m.sdp, "string");
      assert.ok(m.sdp.length > 0);
      assert.equal(typeof m.sdpType, "string");
      break;
    case "ICE_CANDIDATE":
      assert.ok(m.senderClientId.length > 0);
      assert.equal(typeof m.candidate.candidate, "string");
      assert.ok(m.candidate.sdpMid === null || typeof m.candidate.sdpMid === "string");
      assert.ok(
        m.candidate.sdpMLineIndex === null ||
          (Number.isInteger(m.candidate.sdpMLineIndex) && m.candidate.sdpMLineIndex! >= 0),
      );
      break;
    case "GO_AWAY":
    case "RECONNECT_ICE_SERVER":
    case "STATUS_RESPONSE":
      break;
    default:
      assert.fail(`unexpected type ${(m as { type: string }).type}`);
  }
}

Deno.test(`signaling decoder: mutated messages decode or fail clearly (seed ${SEED})`, () => {
  const rand = prng(SEED);
  const corpus = seeds();
  const deadline = performance.now() + SECONDS * 1000;
  const tally = { ok: 0, rejected: 0 };
  const reasons = new Set<string>();
  let runs = 0;
  while (performance.now() < deadline) {
    let text = corpus[Math.floor(rand() * corpus.length)];
    const rounds = 1 + Math.floor(rand() * 4);
    for (let r = 0; r < rounds; r++) text = mutate(text, rand);
    const input = rand() < 0.3 ? new TextEncoder().encode(text) : text;
    runs++;
    const started = performance.now();
    try {
      checkShape(decodeSignalingMessage(input));
      tally.ok++;
    } catch (e) {
      if (!(e instanceof SignalingMessageError)) {
        throw new Error(
          `run ${runs} (seed ${SEED}): ${String(e)} for input ${
            JSON.stringify(text.slice(0, 300))
          }`,
        );
      }
      assert.ok(e.message.length > 0 && e.field.length > 0, "the error names a field");
      reasons.add(e.field);
      tally.rejected++;
    }
    const took = performance.now() - started;
    // Not a speed check: a pathological input (e.g. catastrophic backtracking) would take
    // seconds; GC pauses and a loaded machine take a few hundred milliseconds at most.
    assert.ok(took < 5000, `run ${runs} took ${took.toFixed(0)} ms (seed ${SEED})`);
  }
  assert.ok(runs > 100, `only ${runs} runs`);
  assert.ok(tally.ok > 0 && tally.rejected > 0, JSON.stringify(tally));
  assert.ok(reasons.size >= 4, `rejections name several fields: ${[...reasons]}`);
});

Deno.test("signaling decoder: invalid UTF-8 bytes and lone surrogates are rejected clearly", () => {
  const bad = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
  assert.throws(() => decodeSignalingMessage(bad), SignalingMessageError);
  const lone = JSON.stringify({
    senderClientId: "v",
    messageType: "ICE_CANDIDATE",
    messagePayload: "7aCA", // base64 of the UTF-8 encoding of a lone surrogate (ED A0 80)
  });
  assert.throws(() => decodeSignalingMessage(lone), SignalingMessageError);
});
