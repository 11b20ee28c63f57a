import assert from "node:assert/strict";
import { createLogger, type LogRecord } from "../src/log.ts";
import type { PeerSessionFactory } from "../src/peer/types.ts";
import { CredentialsError } from "../src/credentials/mod.ts";
import {
  Backoff,
  decodeBase64Utf8,
  decodeSignalingMessage,
  encodeAnswer,
  encodeBase64Utf8,
  encodeCandidate,
  EndpointCache,
  MAX_SIGNALING_MESSAGE_BYTES,
  SignalingClient,
  type SignalingClientOptions,
  type SignalingConnectError,
  SignalingMessageError,
  type SignalingState,
} from "../src/signaling/mod.ts";
import {
  CountingCredentials,
  deliver,
  FakeAwsError,
  ScriptedControlPlane,
  until,
  WsServer,
} from "./support/signaling_fixture.ts";

const COLD_WITH_CREATE: SignalingState[] = [
  "Get Security Credentials",
  "Describe Channel",
  "Create Channel",
  "Describe Channel",
  "Describe Channel",
  "Get Channel Endpoint",
  "Get ICE Server Configuration",
  "Ready",
  "Connecting",
  "Connected",
];

const COLD: SignalingState[] = [
  "Get Security Credentials",
  "Describe Channel",
  "Get Channel Endpoint",
  "Get ICE Server Configuration",
  "Ready",
  "Connecting",
  "Connected",
];

const FROM_CACHE: SignalingState[] = [
  "Get Security Credentials",
  "Get ICE Server Configuration",
  "Ready",
  "Connecting",
  "Connected",
];

Deno.test("messages: encode and decode", async (t) => {
  await t.step("answer carries recipientClientId and base64 JSON payload", () => {
    const sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=é✓\r\n";
    const frame = JSON.parse(encodeAnswer("viewer-1", sdp, "c-1"));
    assert.equal(frame.action, "SDP_ANSWER");
    assert.equal(frame.recipientClientId, "viewer-1");
    assert.equal(frame.correlationId, "c-1");
    assert.deepEqual(JSON.parse(decodeBase64Utf8(frame.messagePayload)), { type: "answer", sdp });
  });

  await t.step("candidate payload has the browser's shape", () => {
    const frame = JSON.parse(
      encodeCandidate("v", { candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host", sdpMid: "0" }),
    );
    assert.equal(frame.action, "ICE_CANDIDATE");
    assert.deepEqual(JSON.parse(atob(frame.messagePayload)), {
      candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host",
      sdpMid: "0",
      sdpMLineIndex: null,
    });
  });

  await t.step("a master must name the recipient", () => {
    assert.throws(
      () => encodeAnswer("", "v=0"),
      (e) => e instanceof SignalingMessageError && e.field === "recipientClientId",
    );
  });

  await t.step("answers over 10 KB are refused with the size in the message", () => {
    const big = "a=x\r\n".repeat(MAX_SIGNALING_MESSAGE_BYTES / 4);
    assert.throws(
      () => encodeAnswer("viewer-1", big),
      (e) => e instanceof SignalingMessageError && /over the 10240-byte/.test(e.message),
    );
  });

  await t.step("UTF-8 base64 round-trips every plane", () => {
    const s = "a\u00e9\u4e2d\u{1F600}\u0000z";
    assert.equal(decodeBase64Utf8(encodeBase64Utf8(s)), s);
  });

  await t.step("offer, candidate, GO_AWAY and status decode", () => {
    const offer = decodeSignalingMessage(JSON.stringify({
      senderClientId: "v1",
      messageType: "SDP_OFFER",
      messagePayload: encodeBase64Utf8(JSON.stringify({ type: "offer", sdp: "v=0\r\n" })),
    }));
    assert.deepEqual(offer, {
      type: "SDP_OFFER",
      senderClientId: "v1",
      sdpType: "offer",
      sdp: "v=0\r\n",
      statusResponse: undefined,
    });
    const cand = decodeSignalingMessage(JSON.stringify({
      senderClientId: "v1",
      messageType: "ICE_CANDIDATE",
      messagePayload: encodeBase64Utf8(
        JSON.stringify({ candidate: "candidate:x", sdpMid: "0", sdpMLineIndex: 0 }),
      ),
    }));
    assert.equal(cand.type, "ICE_CANDIDATE");
    if (cand.type === "ICE_CANDIDATE") assert.equal(cand.candidate.sdpMLineIndex, 0);
    assert.equal(decodeSignalingMessage('{"messageType":"GO_AWAY"}').type, "GO_AWAY");
    const st = decodeSignalingMessage(JSON.stringify({
      messageType: "STATUS_RESPONSE",
      statusResponse: {
        correlationId: "c",
        errorType: "InvalidArgumentException",
        statusCode: 400,
      },
    }));
    assert.deepEqual(st.statusResponse, {
      correlationId: "c",
      errorType: "InvalidArgumentException",
      statusCode: "400",
    });
  });

  await t.step("each kind of bad input names the field at fault", () => {
    const b64 = (v: unknown) => encodeBase64Utf8(JSON.stringify(v));
    const cases: [string, string][] = [
      ["{nope", "message"],
      ["[]", "message"],
      ["", "message"],
      ['{"senderClientId":"v"}', "messageType"],
      ['{"messageType":"HELLO","senderClientId":"v"}', "messageType"],
      [
        JSON.stringify({ messageType: "SDP_OFFER", messagePayload: b64({ sdp: "v" }) }),
        "senderClientId",
      ],
      ['{"messageType":"SDP_OFFER","senderClientId":"v"}', "messagePayload"],
      ['{"messageType":"SDP_OFFER","senderClientId":"v","messagePayload":"%%%"}', "messagePayload"],
      [
        JSON.stringify({ messageType: "SDP_OFFER", senderClientId: "v", messagePayload: "/w==" }),
        "messagePayload",
      ],
      [
        JSON.stringify({
          messageType: "SDP_OFFER",
          senderClientId: "v",
          messagePayload: btoa("x{"),
        }),
        "messagePayload",
      ],
      [
        JSON.stringify({ messageType: "SDP_OFFER", senderClientId: "v", messagePayload: b64({}) }),
        "sdp",
      ],
      [
        JSON.stringify({
          messageType: "ICE_CANDIDATE",
          senderClientId: "v",
          messagePayload: b64({ sdpMid: "0" }),
        }),
        "candidate",
      ],
      [
        JSON.stringify({
          messageType: "ICE_CANDIDATE",
          senderClientId: "v",
          messagePayload: b64({ candidate: "c", sdpMLineIndex: -1 }),
        }),
        "sdpMLineIndex",
      ],
      [
        JSON.stringify({ messageType: "SDP_OFFER", senderClientId: 5, messagePayload: b64({}) }),
        "senderClientId",
      ],
      [JSON.stringify({ messageType: "GO_AWAY", statusResponse: "x" }), "statusResponse"],
      [
        JSON.stringify({
          messageType: "SDP_OFFER",
          senderClientId: "v",
          messagePayload: "A".repeat(20_000),
        }),
        "message",
      ],
    ];
    for (const [input, field] of cases) {
      assert.throws(
        () => decodeSignalingMessage(input),
        (e) =>
          e instanceof SignalingMessageError && e.field === field && e.code === "SIGNALING_MESSAGE",
        `input ${input.slice(0, 80)} should fail on ${field}`,
      );
    }
    assert.throws(
      () => decodeSignalingMessage(new Uint8Array([0x7b, 0xff, 0x7d])),
      (e) => e instanceof SignalingMessageError && /UTF-8/.test(e.message),
    );
  });

  await t.step("random mutations only ever raise SignalingMessageError", () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
    const base = JSON.stringify({
      senderClientId: "viewer-1",
      messageType: "ICE_CANDIDATE",
      messagePayload: encodeBase64Utf8(
        JSON.stringify({ candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host", sdpMid: "0" }),
      ),
    });
    let ok = 0;
    for (let i = 0; i < 5000; i++) {
      const chars = [...base];
      const n = 1 + Math.floor(rnd() * 4);
      for (let k = 0; k < n; k++) {
        const at = Math.floor(rnd() * chars.length);
        const op = rnd();
        if (op < 0.4) chars[at] = String.fromCharCode(Math.floor(rnd() * 128));
        else if (op < 0.7) chars.splice(at, 1);
        else chars.splice(at, 0, String.fromCharCode(Math.floor(rnd() * 0x3000)));
      }
      try {
        decodeSignalingMessage(chars.join(""));
        ok++;
      } catch (e) {
        assert.ok(e instanceof SignalingMessageError, `unexpected ${e}`);
      }
    }
    assert.ok(ok < 5000, "some mutations must be rejected");
  });
});

Deno.test("backoff: full jitter under 100 ms · 2^n, capped, reset after a healthy period", () => {
  let now = 0;
  const b = new Backoff({ baseMs: 100, capMs: 10_000, healthyMs: 1000, now: () => now });
  const ceilings: number[] = [];
  for (let i = 0; i < 10; i++) {
    const c = b.ceiling();
    const d = b.next();
    assert.ok(d >= 0 && d < c, `${d} within [0, ${c})`);
    ceilings.push(c);
  }
  assert.deepEqual(ceilings, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
  b.succeeded();
  now += 999;
  b.next();
  assert.equal(b.attempt, 11, "not yet healthy long enough");
  b.succeeded();
  now += 1000;
  b.next();
  assert.equal(b.attempt, 1, "reset after a healthy period");
  const fixed = new Backoff({ random: () => 0.5 });
  assert.equal(fixed.next(), 50);
});

Deno.test("endpoint cache file", async (t) => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/.SignalingCache_v0`;
  const warnings: string[] = [];
  const logger = createLogger({
    level: "warn",
    sink: (r) => warnings.push(r.message),
  });
  let now = 1_000_000;
  const cache = new EndpointCache({ path, logger, now: () => now });
  const entry = {
    channelName: "demo-channel",
    region: "us-west-2",
    role: "MASTER" as const,
    channelArn: "arn:aws:kinesisvideo:us-west-2:1:channel/demo-channel/1",
    wss: "wss://m-1.example",
    https: "https://r-1.example",
    storedAt: now,
  };

  await t.step("missing file is a miss without warning", async () => {
    assert.equal(await cache.lookup("demo-channel", "us-west-2", "MASTER"), undefined);
    assert.deepEqual(warnings, []);
  });

  await t.step("stored entry is found; CSV has the seven fields", async () => {
    await cache.store(entry);
    await cache.store({ ...entry, channelName: "other" });
    assert.deepEqual(await cache.lookup("demo-channel", "us-west-2", "MASTER"), entry);
    assert.equal(await cache.lookup("demo-channel", "eu-west-1", "MASTER"), undefined);
    assert.equal(await cache.lookup("demo-channel", "us-west-2", "VIEWER"), undefined);
    const lines = (await Deno.readTextFile(path)).trim().split("\n");
    assert.equal(lines.length, 2);
    assert.equal(
      lines[0],
      "demo-channel,us-west-2,MASTER,arn:aws:kinesisvideo:us-west-2:1:channel/demo-channel/1," +
        "wss://m-1.example,https://r-1.example,1000000",
    );
  });

  await t.step("entries expire after 10 h", async () => {
    now += 10 * 3600_000 - 1;
    assert.ok(await cache.lookup("demo-channel", "us-west-2", "MASTER"));
    now += 1;
    assert.equal(await cache.lookup("demo-channel", "us-west-2", "MASTER"), undefined);
    now = 1_000_000;
  });

  await t.step("invalidate removes only that channel", async () => {
    await cache.invalidate("demo-channel", "us-west-2", "MASTER");
    assert.equal(await cache.lookup("demo-channel", "us-west-2", "MASTER"), undefined);
    assert.ok(await cache.lookup("other", "us-west-2", "MASTER"));
  });

  await t.step("the control-plane endpoint override is part of the key", async () => {
    const emu = { ...entry, endpoint: "https://127.0.0.1:4443" };
    await cache.store(emu);
    assert.deepEqual(await cache.lookup("demo-channel", "us-west-2", "MASTER", emu.endpoint), emu);
    assert.equal(await cache.lookup("demo-channel", "us-west-2", "MASTER"), undefined);
    assert.equal(
      await cache.lookup("demo-channel", "us-west-2", "MASTER", "https://127.0.0.1:5555"),
      undefined,
    );
    await cache.store(entry);
    assert.deepEqual(await cache.lookup("demo-channel", "us-west-2", "MASTER"), entry);
    const lines = (await Deno.readTextFile(path)).trim().split("\n");
    assert.ok(lines.some((l) => l.endsWith(",1000000,https://127.0.0.1:4443")), "eighth field");
    assert.ok(
      lines.some((l) => l.split(",").length === 7 && l.startsWith("demo-channel,")),
      "the standard endpoint keeps the seven-field layout",
    );
    await cache.invalidate("demo-channel", "us-west-2", "MASTER", emu.endpoint);
    assert.equal(
      await cache.lookup("demo-channel", "us-west-2", "MASTER", emu.endpoint),
      undefined,
    );
    assert.deepEqual(await cache.lookup("demo-channel", "us-west-2", "MASTER"), entry);
    await cache.invalidate("demo-channel", "us-west-2", "MASTER");
  });

  await t.step("corrupt lines are ignored with a warning", async () => {
    await Deno.writeTextFile(
      path,
      "garbage\n\u0000\u0001,,\nother,us-west-2,MASTER,arn:x,nope,https://a,1\n",
    );
    assert.deepEqual(await cache.entries(), []);
    assert.equal(warnings.length, 3);
    assert.match(warnings[0], /line 1 is corrupt/);
    await cache.store(entry);
    assert.deepEqual(await cache.entries(), [entry]);
  });
  await Deno.remove(dir, { recursive: true });
});

interface Harness {
  client: SignalingClient;
  cp: ScriptedControlPlane;
  creds: CountingCredentials;
  server: WsServer;
  states: SignalingState[];
  errors: { error: Error; state: SignalingState }[];
  logs: LogRecord[];
  cachePath: string;
  dispose(): Promise<void>;
}

async function harness(
  options: Partial<SignalingClientOptions> & { exists?: boolean; cachePath?: string } = {},
): Promise<Harness> {
  const server = new WsServer();
  const cp = new ScriptedControlPlane(server.url, { exists: options.exists });
  const creds = new CountingCredentials();
  const logs: LogRecord[] = [];
  const cachePath = options.cachePath ?? `${await Deno.makeTempDir()}/.SignalingCache_v0`;
  const client = new SignalingClient({
    channelName: "demo-channel",
    region: "us-west-2",
    controlPlane: cp,
    credentials: creds,
    logger: createLogger({ level: "debug", sink: (r) => logs.push(r) }),
    endpointCache: new EndpointCache({ path: cachePath }),
    backoff: { baseMs: 10, capMs: 40, healthyMs: 60_000 },
    describePollMs: 20,
    ...options,
  });
  const states: SignalingState[] = [];
  const errors: { error: Error; state: SignalingState }[] = [];
  client.on("state", (s) => states.push(s.state));
  client.on("error", (e) => errors.push(e));
  return {
    client,
    cp,
    creds,
    server,
    states,
    errors,
    logs,
    cachePath,
    async dispose() {
      await client.close();
      await server.close();
    },
  };
}

function stateCount(h: Harness, s: SignalingState): number {
  return h.states.filter((x) => x === s).length;
}

Deno.test("signaling client: cold start creates the channel, restart uses the cache", async () => {
  const h = await harness({ exists: false });
  h.client.start();
  await h.client.waitForState("Connected", 5000);
  assert.deepEqual(h.states, COLD_WITH_CREATE);
  assert.equal(h.cp.count("create"), 1);
  assert.equal(h.client.channelArn, h.cp.arn);
  const conn = await h.server.conn(0);
  assert.equal(conn.url.searchParams.get("X-Amz-ChannelARN"), h.cp.arn);
  assert.equal(conn.url.searchParams.has("X-Amz-ClientId"), false, "master has no ClientId");
  assert.deepEqual(h.cp.calls.find((c) => c.method === "ice")?.args, [
    "https://r-1.example.test",
    h.cp.arn,
    "ProducerMaster",
  ]);
  const lines = h.logs.filter((r) => r.level === "info").map((r) => r.message);
  assert.ok(lines.includes("[SIGNALING] State: Get Security Credentials"));
  assert.ok(lines.includes("[SIGNALING] State: Connected"));
  assert.ok(
    h.logs.every((r) => !r.message.includes("deadbeef")),
    "presigned URL signature never logged",
  );
  const ice = h.client.iceServers();
  assert.equal(ice.length, 2);
  assert.deepEqual(ice[1], { urls: ["stun:stun.kinesisvideo.us-west-2.amazonaws.com:443"] });
  assert.equal(ice[0].credential, "pw-1");
  await h.client.close();
  assert.equal(h.errors.length, 0);

  // Restart: same cache file, a fresh client.
  const calls = h.cp.calls.length;
  const h2 = await harness({ cachePath: h.cachePath });
  h2.client.start();
  await h2.client.waitForState("Connected", 5000);
  assert.deepEqual(h2.states, FROM_CACHE);
  assert.equal(h2.cp.count("describe"), 0);
  assert.equal(h2.cp.count("endpoint"), 0);
  assert.ok(h2.client.usedEndpointCache);
  assert.equal(h.cp.calls.length, calls);
  await h2.dispose();
  await h.server.close();
});

Deno.test("signaling client: endpoint cache opt-out always describes", async () => {
  const h = await harness({ endpointCache: false });
  h.client.start();
  await h.client.waitForState("Connected");
  await h.client.close();
  const h2 = await harness({ endpointCache: false });
  h2.client.start();
  await h2.client.waitForState("Connected");
  assert.deepEqual(h2.states, COLD);
  await h2.dispose();
  await h.server.close();
});

Deno.test("signaling client: cold start takes 4 sequential round trips (ICE ∥ socket)", async () => {
  const rtt = 250;
  const h = await harness({ endpointCache: false });
  h.cp.delayMs = rtt;
  h.creds.delayMs = rtt;
  const t0 = performance.now();
  h.client.start();
  await h.client.waitForState("Connected", 5000);
  const elapsed = performance.now() - t0;
  const call = (m: string) => h.cp.calls.find((c) => c.method === m)!;
  // Sequential: credentials → Describe → Get Endpoint; then ICE and the socket together.
  assert.ok(call("describe").start >= t0 + rtt);
  assert.ok(call("endpoint").start >= call("describe").end);
  assert.ok(call("ice").start >= call("endpoint").end);
  assert.ok(call("presign").start < call("ice").end, "socket opened while ICE was in flight");
  assert.ok(elapsed >= 4 * rtt, `elapsed ${elapsed}`);
  assert.ok(elapsed < 5 * rtt, `elapsed ${elapsed.toFixed(0)} ms is more than 4 round trips`);
  await h.dispose();
});

Deno.test("signaling client: viewer offer and candidates in arrival order, answer and our candidates", async () => {
  const h = await harness();
  const events: string[] = [];
  h.client.on("offer", ({ viewerId, sdp }) => {
    events.push(`offer ${viewerId} ${sdp}`);
    h.client.sendAnswer(viewerId, "v=0\r\nanswer\r\n");
    h.client.sendCandidate(viewerId, {
      candidate: "candidate:9 1 udp 9 127.0.0.1 9 typ host",
      sdpMid: "0",
      sdpMLineIndex: 0,
    });
  });
  h.client.on("candidate", ({ viewerId, candidate }) => {
    events.push(`cand ${viewerId} ${candidate.candidate}`);
  });
  h.client.start();
  await h.client.waitForState("Connected");
  const conn = await h.server.conn(0);
  deliver(conn, "ICE_CANDIDATE", "viewer-1", { candidate: "c1", sdpMid: "0", sdpMLineIndex: 0 });
  deliver(conn, "ICE_CANDIDATE", "viewer-2", { candidate: "x1", sdpMid: "0", sdpMLineIndex: 0 });
  deliver(conn, "SDP_OFFER", "viewer-1", { type: "offer", sdp: "v=0\r\noffer\r\n" });
  deliver(conn, "ICE_CANDIDATE", "viewer-1", { candidate: "c2", sdpMid: "0", sdpMLineIndex: 0 });
  await until(() => events.length >= 4 && conn.received.length >= 2, "offer and candidates");
  // Signaling only decodes: candidates before an offer pass too (the viewers layer holds them).
  assert.deepEqual(events, [
    "cand viewer-1 c1",
    "cand viewer-2 x1",
    "offer viewer-1 v=0\r\noffer\r\n",
    "cand viewer-1 c2",
  ]);
  const answer = JSON.parse(conn.received[0]);
  assert.equal(answer.action, "SDP_ANSWER");
  assert.equal(answer.recipientClientId, "viewer-1");
  assert.deepEqual(JSON.parse(atob(answer.messagePayload)), {
    type: "answer",
    sdp: "v=0\r\nanswer\r\n",
  });
  assert.equal(JSON.parse(conn.received[1]).action, "ICE_CANDIDATE");
  await h.dispose();
});

Deno.test("signaling client: malformed and oversized messages are reported, client keeps serving", async () => {
  const h = await harness();
  const offers: string[] = [];
  h.client.on("offer", (o) => offers.push(o.viewerId));
  h.client.start();
  await h.client.waitForState("Connected");
  const conn = await h.server.conn(0);
  conn.socket.send("{not json");
  conn.socket.send(
    JSON.stringify({ messageType: "SDP_OFFER", senderClientId: "v", messagePayload: "@@" }),
  );
  conn.socket.send(JSON.stringify({ messageType: "BOGUS" }));
  conn.socket.send("x".repeat(64 * 1024));
  conn.socket.send(new Uint8Array([1, 2, 3]));
  deliver(conn, "SDP_OFFER", "viewer-9", { type: "offer", sdp: "v=0\r\n" });
  await until(() => offers.length === 1, "offer after garbage");
  assert.equal(h.errors.length, 5);
  assert.deepEqual(
    h.errors.map((e) => (e.error as SignalingMessageError).field),
    ["message", "messagePayload", "messageType", "message", "message"],
  );
  assert.equal(h.client.state, "Connected");
  assert.equal(h.server.conns.length, 1, "no reconnect for bad input");
  await h.dispose();
});

Deno.test("signaling client: socket drop → Disconnected → Ready → Connecting → Connected", async () => {
  const h = await harness();
  h.client.start();
  await h.client.waitForState("Connected");
  const conn = await h.server.conn(0);
  const before = h.states.length;
  conn.socket.close(1011, "server going down");
  await h.server.conn(1);
  await until(() => h.states.length >= before + 4, "reconnect states");
  assert.deepEqual(h.states.slice(before), ["Disconnected", "Ready", "Connecting", "Connected"]);
  // Messages are still handled on the new socket.
  const answers: string[] = [];
  h.client.on("offer", (o) => answers.push(o.viewerId));
  deliver(h.server.conns[1], "SDP_OFFER", "v2", { type: "offer", sdp: "v=0" });
  await until(() => answers.length === 1, "offer on new socket");
  await h.dispose();
});

Deno.test("signaling client: answers sent while reconnecting are delivered after Connected", async () => {
  const h = await harness();
  h.client.start();
  await h.client.waitForState("Connected");
  const conn = await h.server.conn(0);
  h.server.rejectNext = 1;
  conn.socket.close(1011);
  await h.client.waitForState("Disconnected");
  h.client.sendAnswer("late-viewer", "v=0\r\n");
  const c1 = await h.server.conn(1);
  await until(() => c1.received.length === 1, "held answer");
  assert.equal(JSON.parse(c1.received[0]).recipientClientId, "late-viewer");
  await h.dispose();
});

Deno.test("signaling client: upgrade refused (expired credentials) → credentials refreshed → Connected", async () => {
  const h = await harness();
  h.client.start();
  await h.client.waitForState("Connected");
  const conn = await h.server.conn(0);
  const before = h.states.length;
  h.server.rejectNext = 1;
  conn.socket.close(1008, "credentials expired");
  await h.server.conn(1);
  await until(() => h.client.state === "Connected", "reconnected");
  assert.deepEqual(h.states.slice(before), [
    "Disconnected",
    "Ready",
    "Connecting",
    "Disconnected",
    "Get Security Credentials",
    "Ready",
    "Connecting",
    "Connected",
  ]);
  assert.deepEqual(h.creds.calls.map((c) => c.forceRefresh), [false, true]);
  assert.equal(h.errors.length, 1);
  assert.equal(h.errors[0].error.name, "SignalingConnectError");
  await h.dispose();
});

Deno.test("signaling client: GO_AWAY → Describe again, new socket replaces the old", async () => {
  const h = await harness();
  h.client.start();
  await h.client.waitForState("Connected");
  const conn = await h.server.conn(0);
  const before = h.states.length;
  deliver(conn, "GO_AWAY");
  const c1 = await h.server.conn(1);
  await until(() => h.client.state === "Connected" && conn.closed, "replaced");
  assert.deepEqual(h.states.slice(before), [
    "Describe Channel",
    "Get Channel Endpoint",
    "Get ICE Server Configuration",
    "Ready",
    "Connecting",
    "Connected",
  ]);
  assert.equal(h.cp.count("describe"), 2);
  assert.equal(c1.closed, false);
  await h.dispose();
});

Deno.test("signaling client: RECONNECT_ICE_SERVER refreshes ICE on the same socket", async () => {
  const h = await harness();
  const refreshed: string[] = [];
  h.client.on("iceServers", (e) => refreshed.push(e.iceServers[0].username!));
  h.client.start();
  await h.client.waitForState("Connected");
  const conn = await h.server.conn(0);
  const before = h.states.length;
  deliver(conn, "RECONNECT_ICE_SERVER");
  await until(() => h.states.length >= before + 2, "ICE refresh");
  assert.deepEqual(h.states.slice(before), ["Get ICE Server Configuration", "Connected"]);
  assert.deepEqual(refreshed, ["user-1", "user-2"]);
  assert.equal(h.client.iceServers()[0].credential, "pw-2");
  assert.equal(h.server.conns.length, 1);
  await h.dispose();
});

Deno.test("signaling client: ICE config refreshed before its Ttl runs out", async () => {
  const h = await harness();
  h.cp.iceTtl = 1; // short Ttl: refresh at half of it
  h.client.start();
  await h.client.waitForState("Connected");
  await until(() => h.cp.count("ice") >= 2, "second ICE fetch", 3000);
  const [first, second] = h.cp.calls.filter((c) => c.method === "ice");
  const gap = second.start - first.end;
  assert.ok(gap >= 400 && gap < 1000, `refreshed ${gap.toFixed(0)} ms after a 1 s Ttl fetch`);
  await h.dispose();
});

Deno.test("signaling client: connection replaced before its maximum age, make-before-break", async () => {
  const h = await harness({ maxConnectionAgeMs: 300 });
  h.client.start();
  await h.client.waitForState("Connected");
  const c0 = await h.server.conn(0);
  const c1 = await h.server.conn(1, 3000);
  await until(() => c0.closed, "old socket closed");
  assert.equal(c1.closed, false);
  assert.ok(h.states.includes("Ready"));
  assert.equal(stateCount(h, "Disconnected"), 0, "no gap: never Disconnected");
  await h.dispose();
});

Deno.test("signaling client: idle connection replaced before the service's idle close", async () => {
  const h = await harness({ idleReconnectMs: 200, keepAliveIntervalMs: 50 });
  h.client.start();
  await h.client.waitForState("Connected");
  await h.server.conn(1, 3000);
  assert.ok(h.logs.some((r) => /idle/.test(r.message)));
  await h.dispose();
});

Deno.test("signaling client: 401/403 → Get Security Credentials with a forced refresh", async () => {
  const h = await harness({ endpointCache: false });
  h.cp.fail("describe", new FakeAwsError(403, "AccessDeniedException"));
  h.client.start();
  await h.client.waitForState("Connected");
  assert.deepEqual(h.states.slice(0, 4), [
    "Get Security Credentials",
    "Describe Channel",
    "Get Security Credentials",
    "Describe Channel",
  ]);
  assert.deepEqual(h.creds.calls.map((c) => c.forceRefresh), [false, true]);
  assert.equal(h.errors[0].state, "Describe Channel");
  await h.dispose();
});

Deno.test("signaling client: a 5xx burst is retried with backoff, each failure an error event", async () => {
  const h = await harness({ endpointCache: false });
  const e500 = () => new FakeAwsError(500, "InternalFailure");
  h.cp.fail("endpoint", e500(), e500(), new FakeAwsError(429, "ClientLimitExceededException"));
  h.client.start();
  await h.client.waitForState("Connected");
  assert.equal(h.errors.length, 3);
  assert.ok(h.errors.every((e) => e.state === "Get Channel Endpoint"));
  assert.equal(stateCount(h, "Get Channel Endpoint"), 4);
  assert.equal(h.cp.count("describe"), 1);
  await h.dispose();
});

Deno.test("signaling client: CREATING channel is described again until ACTIVE", async () => {
  const h = await harness({ endpointCache: false });
  h.cp.creatingFor = 2;
  h.client.start();
  await h.client.waitForState("Connected");
  assert.equal(h.cp.count("describe"), 3);
  assert.equal(h.errors.length, 0);
  await h.dispose();
});

Deno.test("signaling client: stale cached ARN (404) → cache invalidated → Describe", async () => {
  const dir = await Deno.makeTempDir();
  const cachePath = `${dir}/.SignalingCache_v0`;
  const server = new WsServer();
  await new EndpointCache({ path: cachePath }).store({
    channelName: "demo-channel",
    region: "us-west-2",
    role: "MASTER",
    channelArn: "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo-channel/OLD",
    wss: server.url,
    https: "https://r-1.example.test",
    storedAt: Date.now(),
  });
  await server.close();
  const h = await harness({ cachePath });
  h.client.start();
  await h.client.waitForState("Connected");
  assert.deepEqual(h.states.slice(0, 4), [
    "Get Security Credentials",
    "Get ICE Server Configuration",
    "Ready",
    "Connecting",
  ]);
  assert.ok(h.states.includes("Describe Channel"));
  const entry = await new EndpointCache({ path: cachePath }).lookup(
    "demo-channel",
    "us-west-2",
    "MASTER",
  );
  assert.equal(entry?.channelArn, h.cp.arn);
  await h.dispose();
});

Deno.test("signaling client: a stale cached endpoint costs one failed connect, then Describe", async () => {
  const dir = await Deno.makeTempDir();
  const cachePath = `${dir}/.SignalingCache_v0`;
  const gone = new WsServer();
  const staleWss = gone.url;
  await gone.close(); // the endpoint moved: nothing listens there any more
  const h = await harness({ cachePath });
  await new EndpointCache({ path: cachePath }).store({
    channelName: "demo-channel",
    region: "us-west-2",
    role: "MASTER",
    channelArn: h.cp.arn,
    wss: staleWss,
    https: "https://r-1.example.test",
    storedAt: Date.now(),
  });
  h.client.start();
  await h.client.waitForState("Connected");
  const connectErrors = h.errors.filter((e) => e.error.name === "SignalingConnectError");
  assert.equal(connectErrors.length, 1, h.errors.map((e) => e.error.message).join("; "));
  assert.deepEqual(h.states, [
    "Get Security Credentials",
    "Get ICE Server Configuration",
    "Ready",
    "Connecting",
    "Disconnected",
    "Describe Channel",
    "Get Channel Endpoint",
    "Get ICE Server Configuration",
    "Ready",
    "Connecting",
    "Connected",
  ]);
  assert.equal(h.cp.count("describe"), 1);
  assert.deepEqual(
    h.creds.calls.map((c) => c.forceRefresh),
    [false],
    "a connection that failed without a 401/403 fetches no credentials",
  );
  const entry = await new EndpointCache({ path: cachePath }).lookup(
    "demo-channel",
    "us-west-2",
    "MASTER",
  );
  assert.equal(entry?.wss, h.server.url, "the cache holds the new endpoint");
  await h.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("signaling client: failed connects without 401/403 fetch no new credentials", async () => {
  const h = await harness();
  h.client.start();
  await h.client.waitForState("Connected");
  const conn = await h.server.conn(0);
  const before = h.states.length;
  h.server.rejectStatus = 503;
  h.server.rejectNext = 2;
  conn.socket.close(1011);
  await h.server.conn(1);
  await until(() => h.client.state === "Connected", "reconnected");
  assert.deepEqual(h.states.slice(before), [
    "Disconnected",
    "Ready",
    "Connecting",
    "Disconnected",
    "Ready",
    "Connecting",
    "Disconnected",
    "Ready",
    "Connecting",
    "Connected",
  ]);
  const refused = h.errors.map((e) => e.error as SignalingConnectError);
  assert.deepEqual(refused.map((e) => e.status), [503, 503]);
  assert.match(refused[0].message, /refused: HTTP 503 on upgrade/);
  assert.deepEqual(h.creds.calls.map((c) => c.forceRefresh), [false], "no credential refresh");
  await h.dispose();
});

Deno.test("signaling client: the endpoint cache is keyed by the control-plane endpoint override", async () => {
  const dir = await Deno.makeTempDir();
  const cachePath = `${dir}/.SignalingCache_v0`;
  const a = await harness({ cachePath, endpointOverride: "https://127.0.0.1:4443/" });
  a.client.start();
  await a.client.waitForState("Connected");
  await a.dispose();
  const line = (await Deno.readTextFile(cachePath)).trim();
  assert.ok(line.endsWith(",https://127.0.0.1:4443"), line);
  // Another endpoint (here: the region's standard one) never uses that entry.
  const b = await harness({ cachePath });
  b.client.start();
  await b.client.waitForState("Connected");
  assert.equal(b.cp.count("describe"), 1);
  assert.equal(b.client.usedEndpointCache, false);
  await b.dispose();
  assert.equal((await Deno.readTextFile(cachePath)).trim().split("\n").length, 2);
  // The same override finds its entry (whose endpoint, a's server, is gone by now: one failed
  // connect, then Describe); so does the region's standard endpoint, which counts as none.
  for (
    const endpointOverride of [
      "https://127.0.0.1:4443",
      "https://kinesisvideo.us-west-2.amazonaws.com",
    ]
  ) {
    const c = await harness({ cachePath, endpointOverride });
    c.client.start();
    await c.client.waitForState("Connected");
    assert.deepEqual(c.states.slice(0, 2), [
      "Get Security Credentials",
      "Get ICE Server Configuration",
    ], `${endpointOverride}: Describe skipped thanks to the cache`);
    await c.dispose();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("signaling client: a fatal credential failure stops it; a healable one is retried", async (t) => {
  const { IotCredentialProvider } = await import("../src/credentials/mod.ts");
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadEndpoint = `127.0.0.1:${(closed.addr as Deno.NetAddr).port}`;
  closed.close();
  const pki = await (await import("../src/emulator/pki.ts")).ensurePki(
    new URL("../.kvs-emulator/", import.meta.url).pathname,
  );
  const iot = (certPath: string) =>
    new IotCredentialProvider({
      endpoint: deadEndpoint,
      roleAlias: "alias",
      thingName: pki.thingName,
      certPath,
      keyPath: pki.deviceKeyPath,
      caCertPath: pki.caCertPath,
    });

  await t.step("missing certificate file: one error event, then stopped", async () => {
    const credentials = iot("/nonexistent/certificate.pem");
    const h = await harness({ credentials });
    h.client.start();
    const e = await h.client.waitForState("Connected", 5000).then(
      () => assert.fail("connected"),
      (e) => e,
    );
    assert.ok(e instanceof CredentialsError && e.fatal, String(e));
    assert.equal(e.code, "CREDENTIALS_FILE");
    assert.equal(h.client.fatalError, e);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(h.states, ["Get Security Credentials"], "no retry");
    assert.equal(h.errors.length, 1);
    assert.equal(h.errors[0].error, e);
    assert.ok(!h.logs.some((r) => r.level === "warn"), "not logged as a retryable warning");
    assert.equal(h.cp.calls.length, 0);
    await assert.rejects(h.client.waitForState("Connected", 100), (x) => x === e);
    credentials.close();
    await h.dispose();
  });

  await t.step("credential endpoint unreachable: retried with backoff", async () => {
    const credentials = iot(pki.deviceCertPath);
    const h = await harness({ credentials });
    h.client.start();
    await until(() => h.errors.length >= 3, "three failed attempts", 5000);
    assert.equal(h.client.fatalError, undefined);
    assert.ok(h.errors.every((e) => (e.error as CredentialsError).code === "IOT_TLS"));
    assert.ok(h.logs.some((r) => r.level === "warn" && /could not be reached/.test(r.message)));
    assert.ok(stateCount(h, "Get Security Credentials") >= 3);
    credentials.close();
    await h.dispose();
  });
});

Deno.test("signaling client: listener exceptions do not disturb the client", async () => {
  const h = await harness();
  h.client.on("state", () => {
    throw new Error("listener bug");
  });
  h.client.start();
  await h.client.waitForState("Connected");
  assert.ok(h.logs.some((r) => r.level === "error" && /state listener threw/.test(r.message)));
  await h.dispose();
});

Deno.test("signaling client: deleteChannel enters Delete and deletes the channel", async () => {
  const h = await harness();
  h.client.start();
  await h.client.waitForState("Connected");
  await h.client.deleteChannel();
  assert.equal(h.client.state, "Delete");
  assert.deepEqual(h.cp.calls.find((c) => c.method === "delete")?.args, [h.cp.arn, "v1"]);
  assert.equal(
    await new EndpointCache({ path: h.cachePath }).lookup("demo-channel", "us-west-2", "MASTER"),
    undefined,
  );
  await h.dispose();
});

Deno.test("signaling client: close() while connecting ends cleanly", async () => {
  const h = await harness();
  h.cp.delayMs = 100;
  h.client.start();
  await new Promise((r) => setTimeout(r, 150));
  await h.client.close();
  const n = h.states.length;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(h.states.length, n, "no transitions after close");
  await assert.rejects(h.client.waitForState("Connected", 100), /closed before/);
  await h.server.close();
});

Deno.test("viewers: seats go to viewers that connect; one over the limit is refused with a reason; a new offer replaces a session", async () => {
  const { Viewers } = await import("../src/viewers/viewers.ts");
  const { WasmPeerSessionFactory } = await import("../src/peer/wasm_session.ts");
  const { loopbackPeer } = await import("./support/werift_peer.ts");
  const h = await harness();
  const factory = new WasmPeerSessionFactory({ loopbackOnly: true });
  const bridge = new Viewers({
    signaling: h.client,
    factory,
    maxViewers: 2,
    admission: { reclaimSilentMs: Infinity }, // the next test takes silent seats back
  });
  const failed: string[] = [];
  bridge.on("error", ({ error, viewerId }) => failed.push(`${viewerId}: ${error.message}`));
  const viewers = await Promise.all([loopbackPeer(), loopbackPeer(), loopbackPeer()]);
  try {
    h.client.start();
    await h.client.waitForState("Connected");
    const conn = await h.server.conn(0);
    const offers: string[] = [];
    for (const v of viewers) {
      v.addTransceiver("video", { direction: "recvonly" });
      await v.setLocalDescription(await v.createOffer());
      offers.push(v.localDescription!.sdp);
    }
    const sent = (action: string, to: string) =>
      conn.received.map((m) => JSON.parse(m)).filter((m) =>
        m.action === action && m.recipientClientId === to
      ).map((m) => JSON.parse(atob(m.messagePayload)));
    const connect = async (i: number) => {
      const id = `v${i + 1}`;
      deliver(conn, "SDP_OFFER", id, { type: "offer", sdp: offers[i] });
      await until(() => sent("SDP_ANSWER", id).length === 1, `answer for ${id}`);
      await viewers[i].setRemoteDescription(sent("SDP_ANSWER", id)[0]);
      for (const c of sent("ICE_CANDIDATE", id)) await viewers[i].addIceCandidate(c);
      await until(() => viewers[i].connectionState === "connected", `${id} connected`, 10_000);
    };
    await connect(0);
    // An offer alone holds no seat: v2 is waiting for its first ICE check.
    deliver(conn, "SDP_OFFER", "v2", { type: "offer", sdp: offers[1] });
    await until(() => sent("SDP_ANSWER", "v2").length === 1, "answer for v2");
    assert.deepEqual(bridge.seats, { seated: 1, pending: 1 });
    // It proves itself: two seats taken, so v3 is refused with an answer that says why.
    const v2Answer = sent("SDP_ANSWER", "v2")[0];
    await viewers[1].setRemoteDescription(v2Answer);
    for (const c of sent("ICE_CANDIDATE", "v2")) await viewers[1].addIceCandidate(c);
    await until(() => bridge.seats.seated === 2, "v2 seated", 10_000);
    deliver(conn, "SDP_OFFER", "v3", { type: "offer", sdp: offers[2] });
    await until(() => sent("SDP_ANSWER", "v3").length === 1, "refusal for v3");
    const refusal: string = sent("SDP_ANSWER", "v3")[0].sdp;
    assert.match(refusal, /^i=refused: the master already serves 2 viewers\r$/m);
    assert.match(refusal, /^m=video 0 UDP\/TLS\/RTP\/SAVPF \d+\r$/m);
    assert.doesNotMatch(refusal, /^m=\S+ [1-9]/m, "every section rejected");
    assert.match(failed.join("\n"), /v3: Offer from v3 refused: the master already serves 2/);
    // The refusal is an answer werift applies (no media, no error).
    await viewers[2].setRemoteDescription({ type: "answer", sdp: refusal });
    assert.deepEqual(bridge.ids.sort(), ["v1", "v2"]);
    // v1 offers again (e.g. after a reload): its old session is replaced, not counted twice.
    deliver(conn, "SDP_OFFER", "v1", { type: "offer", sdp: offers[0] });
    await until(() => sent("SDP_ANSWER", "v1").length === 2, "second answer for v1");
    assert.deepEqual(bridge.ids.sort(), ["v1", "v2"]);
    assert.deepEqual(bridge.seats, { seated: 1, pending: 1 });
    assert.equal(h.client.state, "Connected");
  } finally {
    bridge.close();
    await Promise.all(viewers.map((v) => v.close()));
    await h.dispose();
  }
});

Deno.test("viewers: a seated viewer silent for reclaimSilentMs gives its seat to a new one", async () => {
  const { Viewers } = await import("../src/viewers/viewers.ts");
  const { WasmPeerSessionFactory } = await import("../src/peer/wasm_session.ts");
  const { loopbackPeer } = await import("./support/werift_peer.ts");
  const h = await harness();
  const factory = new WasmPeerSessionFactory({ loopbackOnly: true });
  const viewers = new Viewers({
    signaling: h.client,
    factory,
    maxViewers: 1,
    admission: { reclaimSilentMs: 1500 },
  });
  const left: string[] = [];
  viewers.on("left", ({ viewerId, reason }) => left.push(`${viewerId}: ${reason}`));
  const [first, second] = await Promise.all([loopbackPeer(), loopbackPeer()]);
  try {
    h.client.start();
    await h.client.waitForState("Connected");
    const conn = await h.server.conn(0);
    const offers: string[] = [];
    for (const v of [first, second]) {
      v.addTransceiver("video", { direction: "recvonly" });
      await v.setLocalDescription(await v.createOffer());
      offers.push(v.localDescription!.sdp);
    }
    const answers = (to: string) =>
      conn.received.map((m) => JSON.parse(m)).filter((m) =>
        m.action === "SDP_ANSWER" && m.recipientClientId === to
      ).map((m) => JSON.parse(atob(m.messagePayload)).sdp as string);
    deliver(conn, "SDP_OFFER", "first", { type: "offer", sdp: offers[0] });
    await until(() => answers("first").length === 1, "answer for first");
    await first.setRemoteDescription({ type: "answer", sdp: answers("first")[0] });
    await until(() => viewers.seats.seated === 1, "first seated", 10_000);
    const seatedAt = performance.now();
    // The seat is taken and its viewer was heard from just now: a newcomer is refused.
    deliver(conn, "SDP_OFFER", "second", { type: "offer", sdp: offers[1] });
    await until(() => answers("second").length === 1, "refusal");
    assert.match(answers("second")[0], /^i=refused: the master already serves 1 viewers\r$/m);
    // The first viewer goes silent (nothing leaves it, no DTLS close_notify).
    for (const t of first.iceTransports) {
      const { protocols } = t.connection as unknown as {
        protocols: { transport?: { send: () => Promise<void> } }[];
      };
      for (const { transport } of protocols) {
        if (transport) transport.send = () => Promise.resolve();
      }
    }
    await new Promise((r) => setTimeout(r, 1800));
    const silent = viewers.stats()[0].silentForMs!;
    assert.ok(silent >= 1500, `silent for ${silent} ms`);
    // Well past the budget of 3 offers per client id in a burst: the refill allows this one.
    deliver(conn, "SDP_OFFER", "second", { type: "offer", sdp: offers[1] });
    await until(() => answers("second").length === 2, "an answer for the newcomer");
    assert.match(answers("second")[1], /^m=video [1-9]/m, "accepted this time");
    assert.match(left.join("\n"), /^first: silent for \d+\.\d s: its seat went to a new viewer$/m);
    assert.ok(performance.now() - seatedAt < 8000, "well before the silence timeout (8 s)");
    assert.deepEqual(viewers.ids, ["second"]);
  } finally {
    viewers.close();
    await Promise.all([first.close(), second.close()]);
    await h.dispose();
  }
});

Deno.test("viewers: candidates before the offer are held for it, in order and bounded", async () => {
  const { Viewers } = await import("../src/viewers/viewers.ts");
  const { WasmPeerSessionFactory } = await import("../src/peer/wasm_session.ts");
  const h = await harness();
  const inner = new WasmPeerSessionFactory({ loopbackOnly: true });
  const got = new Map<string, string[]>();
  const factory: PeerSessionFactory = {
    async create(o) {
      const s = await inner.create(o);
      const seen: string[] = [];
      got.set(o.viewerId, seen);
      return {
        viewerId: s.viewerId,
        acceptOffer: (sdp) => s.acceptOffer(sdp),
        addRemoteCandidate: (c) => {
          seen.push(c.candidate);
          s.addRemoteCandidate(c);
        },
        writeFrame: (f) => s.writeFrame(f),
        stats: () => s.stats(),
        close: (r) => s.close(r),
      };
    },
  };
  const viewers = new Viewers({
    signaling: h.client,
    factory,
    maxEarlyCandidates: 3,
    logger: createLogger({ level: "debug", sink: (r) => h.logs.push(r) }),
  });
  const offer = await Deno.readTextFile(new URL("fixtures/chromium_offer.sdp", import.meta.url));
  const cand = (i: number) => `candidate:${i} 1 udp 2122260223 127.0.0.1 ${40000 + i} typ host`;
  try {
    h.client.start();
    await h.client.waitForState("Connected");
    const conn = await h.server.conn(0);
    for (let i = 0; i < 10; i++) deliver(conn, "ICE_CANDIDATE", "v", { candidate: cand(i) });
    deliver(conn, "ICE_CANDIDATE", "w", { candidate: cand(50), sdpMid: "0" });
    deliver(conn, "SDP_OFFER", "v", { type: "offer", sdp: offer });
    deliver(conn, "ICE_CANDIDATE", "v", { candidate: cand(10), sdpMid: "0" });
    await until(() => (got.get("v")?.length ?? 0) >= 4, "v's candidates");
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(got.get("v"), [cand(0), cand(1), cand(2), cand(10)]);
    assert.ok(h.logs.some((r) => r.level === "warn" && /queue of v full/.test(r.message)));
    // w's candidate waits for w's offer.
    assert.equal(got.has("w"), false);
    deliver(conn, "SDP_OFFER", "w", { type: "offer", sdp: offer });
    await until(() => got.get("w")?.length === 1, "w's held candidate");
  } finally {
    viewers.close();
    await h.dispose();
  }
});

Deno.test("interop: the official KVS JS SDK viewer connects to our master through a relay", async () => {
  const { Viewers } = await import("../src/viewers/viewers.ts");
  const { WeriftPeerSessionFactory, loopbackPeer, isLoopbackCandidate } = await import(
    "./support/werift_peer.ts"
  );
  // The SDK's browser bundle (vendored for the viewer page) assigns `KVSWebRTC` on `window`.
  const bundle = await Deno.readTextFile(
    new URL(
      "../web/vendor/amazon-kinesis-video-streams-webrtc@2.9.0/dist/kvs-webrtc.js",
      import.meta.url,
    ),
  );
  const scope: Record<string, unknown> = {};
  new Function("window", bundle).call(scope, scope);
  // deno-lint-ignore no-explicit-any
  const KVS = (scope.KVSWebRTC ?? (globalThis as any).KVSWebRTC) as any;
  assert.ok(KVS?.SignalingClient, "SDK bundle loaded");

  const h = await harness();
  h.server.relay = true;
  const factory = new WeriftPeerSessionFactory();
  const bridge = new Viewers({ signaling: h.client, factory });
  const pc = await loopbackPeer();
  let sdk: { close(): void } | undefined;
  try {
    h.client.start();
    await h.client.waitForState("Connected");
    const viewer = new KVS.SignalingClient({
      channelARN: h.cp.arn,
      channelEndpoint: h.server.url,
      clientId: "sdk-viewer",
      role: KVS.Role.VIEWER,
      region: "us-west-2",
      requestSigner: {
        getSignedURL: (endpoint: string, query: Record<string, string>) =>
          Promise.resolve(`${endpoint}/?${new URLSearchParams(query)}`),
      },
    });
    sdk = viewer;
    const sdkErrors: unknown[] = [];
    viewer.on("error", (e: unknown) => sdkErrors.push(e));
    let remoteSet: Promise<unknown> = new Promise(() => {});
    viewer.on("open", async () => {
      pc.addTransceiver("video", { direction: "recvonly" });
      await pc.setLocalDescription(await pc.createOffer());
      viewer.sendSdpOffer(pc.localDescription);
    });
    pc.onIceCandidate.subscribe((c) => {
      if (c && isLoopbackCandidate(c)) viewer.sendIceCandidate(c.toJSON());
    });
    viewer.on("sdpAnswer", (answer: { type: "answer"; sdp: string }) => {
      remoteSet = pc.setRemoteDescription(answer);
    });
    viewer.on("iceCandidate", (c: { candidate: string; sdpMid?: string }) => {
      remoteSet.then(() => pc.addIceCandidate(c)).catch((e) => sdkErrors.push(e));
    });
    viewer.open();
    await until(() => pc.connectionState === "connected", "SDK viewer connected", 10_000);
    assert.deepEqual(sdkErrors, []);
    assert.equal(factory.created[0].viewerId, "sdk-viewer");
    // The viewer's messages reached us in the SDK's format and were decoded by ours.
    const fromViewer = h.server.viewers.get("sdk-viewer")!.received.map((m) => JSON.parse(m));
    assert.equal(fromViewer.filter((m) => m.action === "SDP_OFFER").length, 1);
    assert.ok(fromViewer.some((m) => m.action === "ICE_CANDIDATE"));
    assert.equal(h.errors.length, 0);
  } finally {
    sdk?.close();
    bridge.close();
    await pc.close();
    await h.dispose();
  }
});

Deno.test("signaling client: wss with a private CA (AWS_KVS_CACERT_PATH) through the default factory", async () => {
  const { makeServerCertificate } = await import("./support/signaling_fixture.ts");
  const dir = await Deno.makeTempDir();
  const { ca, cert, key } = await makeServerCertificate(dir);
  const server = new WsServer({ cert, key });
  const make = (caCerts?: string[]) => {
    const cp = new ScriptedControlPlane(server.url);
    const errors: string[] = [];
    const client = new SignalingClient({
      channelName: "demo-channel",
      region: "us-west-2",
      controlPlane: cp,
      endpointCache: false,
      caCerts,
      backoff: { baseMs: 10, capMs: 20 },
    });
    client.on("error", (e) => errors.push(e.error.message));
    return { client, errors };
  };
  try {
    const trusted = make([ca]);
    trusted.client.start();
    await trusted.client.waitForState("Connected", 5000);
    assert.equal(server.conns.length, 1);
    await trusted.client.close();

    const untrusted = make();
    untrusted.client.start();
    await until(() => untrusted.errors.length >= 1, "TLS failure reported");
    assert.match(untrusted.errors[0], /WebSocket to wss:\/\/127\.0\.0\.1:\d+ (failed|closed)/);
    assert.notEqual(untrusted.client.state, "Connected");
    await untrusted.client.close();
    assert.equal(server.conns.length, 1, "no connection without the CA");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("signaling client: waitForState rejects at once when the client closes", async () => {
  const h = await harness();
  h.cp.delayMs = 200;
  h.client.start();
  const waiting = assert.rejects(
    h.client.waitForState("Connected", 10_000),
    /closed before reaching Connected/,
  );
  const t0 = performance.now();
  await h.client.close();
  await waiting;
  assert.ok(performance.now() - t0 < 1000);
  await h.dispose();
});

Deno.test("signaling client: repeated upgrade failures go back to Describe with growing backoff", async () => {
  const h = await harness({ backoff: { baseMs: 20, capMs: 1000 }, random: () => 0.999 });
  h.client.start();
  await h.client.waitForState("Connected");
  const conn = await h.server.conn(0);
  const before = h.states.length;
  h.server.rejectNext = 3;
  const t0 = performance.now();
  conn.socket.close(1011);
  await h.server.conn(1, 5000);
  await until(() => h.client.state === "Connected", "reconnected");
  const took = performance.now() - t0;
  const after = h.states.slice(before);
  assert.equal(h.server.upgradeAttempts, 5);
  assert.equal(after.filter((s) => s === "Disconnected").length, 4);
  // After three refused upgrades the endpoint is looked up again from scratch.
  assert.ok(
    after.includes("Describe Channel") && after.includes("Get Channel Endpoint"),
    `${after}`,
  );
  // Full jitter at the top of each window: 20 + 40 + 80 + 160 ms at least.
  assert.ok(took >= 290, `reconnected after ${took.toFixed(0)} ms`);
  await h.dispose();
});
