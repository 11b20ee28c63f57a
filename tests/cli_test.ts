import assert from "node:assert/strict";
import { EXIT, main, type MasterCliDeps } from "../cli/master.ts";
import type { LogRecord } from "../src/log.ts";
import { decodeBase64Utf8, SIGNALING_STATES, type SignalingClient } from "../src/signaling/mod.ts";
import {
  CountingCredentials,
  deliver,
  ScriptedControlPlane,
  until,
  WsServer,
} from "./support/signaling_fixture.ts";
import {
  isLoopbackCandidate,
  loopbackPeer,
  WeriftPeerSessionFactory,
} from "./support/werift_peer.ts";

const SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
const ENV = {
  AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
  AWS_SECRET_ACCESS_KEY: SECRET,
  AWS_SESSION_TOKEN: "session-token-secret",
  AWS_DEFAULT_REGION: "us-west-2",
};

Deno.test("cli: --help prints every flag and exits 0", async () => {
  const out: string[] = [];
  const code = await main(["--help"], {}, { print: (t) => out.push(t) });
  assert.equal(code, EXIT.OK);
  const text = out.join("\n");
  assert.match(text, /Usage: .*\[channel-name\]/);
  for (const flag of ["--channel", "--region", "--iot-cert", "--frames", "--fps", "--log-level"]) {
    assert.ok(text.includes(flag), flag);
  }
});

Deno.test("cli: missing credentials is a configuration error naming both options", async () => {
  const out: string[] = [];
  const code = await main([], {}, { print: (t) => out.push(t) });
  assert.equal(code, EXIT.CONFIG);
  assert.match(
    out.join("\n"),
    /No AWS credentials.*AWS_IOT_CORE_CREDENTIAL_ENDPOINT.*AWS_ACCESS_KEY_ID/s,
  );
  assert.match(out.join("\n"), /--help/);
});

Deno.test("cli: unreadable CA bundle is a configuration error naming the file", async () => {
  const out: string[] = [];
  const code = await main([], { ...ENV, AWS_KVS_CACERT_PATH: "/nonexistent/ca.pem" }, {
    print: (t) => out.push(t),
    logSink: () => {},
  });
  assert.equal(code, EXIT.CONFIG);
  assert.match(out.join("\n"), /\/nonexistent\/ca\.pem.*AWS_KVS_CACERT_PATH/);
});

interface Run {
  server: WsServer;
  cp: ScriptedControlPlane;
  logs: LogRecord[];
  client: () => SignalingClient;
  stop(): Promise<number>;
}

async function run(args: string[], extra: Partial<MasterCliDeps> = {}): Promise<Run> {
  const dir = await Deno.makeTempDir();
  const server = new WsServer();
  const cp = new ScriptedControlPlane(server.url, { exists: false });
  const logs: LogRecord[] = [];
  const controller = new AbortController();
  let client: SignalingClient | undefined;
  const done = main(
    [...args, "--endpoint-cache-file", `${dir}/.SignalingCache_v0`],
    ENV,
    {
      services: () => ({ controlPlane: cp, credentials: new CountingCredentials() }),
      logSink: (r) => logs.push(r),
      signal: controller.signal,
      onClient: (c) => client = c,
      print: () => {},
      ...extra,
    },
  );
  await until(() => client !== undefined, "client");
  return {
    server,
    cp,
    logs,
    client: () => client!,
    async stop() {
      controller.abort();
      const code = await done;
      await server.close();
      await Deno.remove(dir, { recursive: true });
      return code;
    },
  };
}

Deno.test("cli: prints the seed's state transitions, secrets redacted, stops cleanly", async () => {
  const r = await run(["demo-channel", "--log-level", "debug"]);
  await r.client().waitForState("Connected", 5000);
  const code = await r.stop();
  assert.equal(code, EXIT.OK);
  const stateLines = r.logs
    .filter((l) => l.level === "info" && l.message.startsWith("[SIGNALING] State: "))
    .map((l) => l.message.slice("[SIGNALING] State: ".length));
  assert.deepEqual(stateLines, [
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
  ]);
  assert.ok(stateLines.every((s) => (SIGNALING_STATES as readonly string[]).includes(s)));
  const all = JSON.stringify(r.logs);
  assert.ok(!all.includes(SECRET), "secret key never logged");
  assert.ok(!all.includes("session-token-secret"), "session token never logged");
  assert.ok(!all.includes("deadbeef"), "presigned signature never logged");
  assert.ok(r.logs.some((l) => /Opening ws:.*X-Amz-Signature=<redacted>/.test(l.message)));
  assert.ok(r.logs.some((l) => l.message === "Stopped"));
});

Deno.test("cli: answers a werift viewer's offer and early candidates; ICE and DTLS connect", async () => {
  const factory = new WeriftPeerSessionFactory();
  const r = await run(["demo-channel"], { peerSessionFactory: factory });
  const viewer = await loopbackPeer();
  try {
    await r.client().waitForState("Connected", 5000);
    const conn = await r.server.conn(0);
    viewer.addTransceiver("video", { direction: "recvonly" });
    const candidates: unknown[] = [];
    viewer.onIceCandidate.subscribe((c) => {
      if (c && isLoopbackCandidate(c)) candidates.push(c.toJSON());
    });
    await viewer.setLocalDescription(await viewer.createOffer());
    await until(() => candidates.length > 0, "viewer candidates", 5000);
    // Candidates first: the master must hold them until the offer.
    for (const c of candidates) deliver(conn, "ICE_CANDIDATE", "viewer-1", c);
    deliver(conn, "SDP_OFFER", "viewer-1", { type: "offer", sdp: viewer.localDescription!.sdp });

    let seen = 0;
    let answered = false;
    const deadline = Date.now() + 10_000;
    while (viewer.connectionState !== "connected") {
      assert.ok(
        Date.now() < deadline,
        `viewer state ${viewer.connectionState}, ${conn.received.length} messages`,
      );
      for (; seen < conn.received.length; seen++) {
        const msg = JSON.parse(conn.received[seen]);
        assert.equal(msg.recipientClientId, "viewer-1");
        const payload = JSON.parse(decodeBase64Utf8(msg.messagePayload));
        if (msg.action === "SDP_ANSWER") {
          await viewer.setRemoteDescription(payload);
          answered = true;
        } else {
          assert.equal(msg.action, "ICE_CANDIDATE");
          assert.ok(answered, "the master's candidates follow its answer");
          await viewer.addIceCandidate(payload);
        }
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.equal(factory.created.length, 1);
    assert.equal(factory.created[0].viewerId, "viewer-1");
    assert.equal(factory.created[0].iceServers, 2, "TURN from the ICE config plus STUN");
    await until(() => factory.created[0].states.includes("connected"), "master side connected");
  } finally {
    await viewer.close();
    assert.equal(await r.stop(), EXIT.OK);
  }
});

Deno.test({
  name: "cli: from the emulator's environment alone (IoT over mutual TLS) to Connected",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { startEmulator } = await import("../src/emulator/mod.ts");
    const emu = await startEmulator({
      stateDir: new URL("../.kvs-emulator/", import.meta.url).pathname,
      turn: false,
    });
    const dir = await Deno.makeTempDir();
    const logs: LogRecord[] = [];
    const controller = new AbortController();
    let client: SignalingClient | undefined;
    try {
      const done = main(["--endpoint-cache-file", `${dir}/cache`], emu.env(), {
        logSink: (r) => logs.push(r),
        signal: controller.signal,
        onClient: (c) => client = c,
        print: () => {},
      });
      await until(() => client !== undefined, "client");
      await client!.waitForState("Connected", 15_000);
      assert.ok(emu.iotRequests.some((r) => r.status === 200), "IoT credentials were fetched");
      assert.ok(emu.connections().some((c) => c.master));
      // Like the C SDK sample, IoT credentials make the thing name the default channel.
      assert.ok(emu.channels().some((c) => c.name === emu.thingName), "default channel created");
      controller.abort();
      assert.equal(await done, EXIT.OK);
      const text = JSON.stringify(logs);
      assert.ok(!/X-Amz-Signature=[0-9a-f]{64}/.test(text), "no presigned signature in logs");
      assert.ok(!/X-Amz-Security-Token=[A-Za-z0-9%]{20}/.test(text), "no token in logs");
    } finally {
      await emu.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
