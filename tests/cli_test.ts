import assert from "node:assert/strict";
import { outOfDateCertificates } from "./support/certificates.ts";
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

// Credential failures through main() against the emulator's real mutual-TLS IoT endpoint.

interface CliRun {
  /** Exit code, or `undefined` when main() was still running at the deadline (then stopped). */
  code: number | undefined;
  printed: string[];
  logs: LogRecord[];
}

/** Run main() until it returns or `timeoutMs` passes (then stop it); every loop is bounded. */
async function runUntilExit(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 8000,
): Promise<CliRun> {
  const dir = await Deno.makeTempDir();
  const printed: string[] = [];
  const logs: LogRecord[] = [];
  const controller = new AbortController();
  let code: number | undefined;
  const done = main([...args, "--endpoint-cache-file", `${dir}/cache`], env, {
    logSink: (r) => logs.push(r),
    print: (t) => printed.push(t),
    signal: controller.signal,
    peerSessionFactory: { create: () => Promise.reject(new Error("no viewer in this test")) },
  }).then((c) => code = c);
  const deadline = Date.now() + timeoutMs;
  while (code === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const stillRunning = code === undefined;
  controller.abort();
  await done;
  await Deno.remove(dir, { recursive: true });
  return { code: stillRunning ? undefined : code, printed, logs };
}

function assertFatal(run: CliRun, message: RegExp, notMentioned?: RegExp): void {
  assert.equal(run.code, EXIT.CONFIG, `exit code; printed ${JSON.stringify(run.printed)}`);
  assert.equal(run.printed.length, 1, `one line: ${JSON.stringify(run.printed)}`);
  const line = run.printed[0];
  assert.ok(!line.includes("\n"), line);
  assert.match(line, /^Configuration error: /);
  assert.match(line, message);
  if (notMentioned) assert.doesNotMatch(line, notMentioned);
  assert.ok(
    !run.logs.some((r) => r.level === "warn" && /Get Security Credentials failed/.test(r.message)),
    "not retried",
  );
}

Deno.test({
  name: "cli: credential failures that cannot heal exit 2 with one line naming file and setting",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const { startEmulator } = await import("../src/emulator/mod.ts");
    const emu = await startEmulator({
      stateDir: new URL("../.kvs-emulator/", import.meta.url).pathname,
      turn: false,
    });
    const env = emu.env();
    const dir = await Deno.makeTempDir();
    try {
      await t.step("missing certificate from AWS_IOT_CORE_CERT", async () => {
        const run = await runUntilExit([], { ...env, AWS_IOT_CORE_CERT: `${dir}/none.pem` });
        assertFatal(
          run,
          /device certificate file .*none\.pem does not exist \(set by AWS_IOT_CORE_CERT\)/,
          /--iot-cert/,
        );
        assert.equal(emu.iotRequests.length, 0, "no request reached the endpoint");
      });

      await t.step("missing certificate from --iot-cert names the flag", async () => {
        const run = await runUntilExit(["--iot-cert", `${dir}/none.pem`], env);
        assertFatal(run, /none\.pem does not exist \(set by --iot-cert\)/, /AWS_IOT_CORE_CERT/);
      });

      await t.step("garbage key from --iot-private-key", async () => {
        await Deno.writeTextFile(
          `${dir}/garbage.key`,
          "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n",
        );
        const run = await runUntilExit(["--iot-private-key", `${dir}/garbage.key`], env);
        assertFatal(
          run,
          /private key file .*garbage\.key is not a readable .*\(set by --iot-private-key\)/,
        );
      });

      await t.step("a key that does not match the certificate", async () => {
        const run = await runUntilExit([], {
          ...env,
          AWS_IOT_CORE_PRIVATE_KEY: emu.pki.rogueKeyPath,
        });
        assertFatal(
          run,
          /rogue-private\.key \(set by AWS_IOT_CORE_PRIVATE_KEY\) does not match device certificate .*certificate\.pem \(set by AWS_IOT_CORE_CERT\)/,
        );
      });

      await t.step("expired and not yet valid certificates", async () => {
        const { expired, later } = await outOfDateCertificates(emu.pki, dir);
        const before = emu.iotRequests.length;
        assertFatal(
          await runUntilExit(
            ["--iot-cert", expired.certPath, "--iot-private-key", expired.keyPath],
            env,
          ),
          /expired\.pem \(set by --iot-cert\) expired at/,
        );
        assertFatal(
          await runUntilExit([], {
            ...env,
            AWS_IOT_CORE_CERT: later.certPath,
            AWS_IOT_CORE_PRIVATE_KEY: later.keyPath,
          }),
          /later\.pem \(set by AWS_IOT_CORE_CERT\) is not valid before/,
        );
        assert.equal(emu.iotRequests.length, before, "checked locally, no request");
      });

      await t.step("404 role alias on first start", async () => {
        assertFatal(
          await runUntilExit([], { ...env, AWS_IOT_CORE_ROLE_ALIAS: "NoSuchAlias" }),
          /role alias "NoSuchAlias" not found \(404.*check AWS_IOT_CORE_ROLE_ALIAS$/,
        );
        assertFatal(
          await runUntilExit(["--iot-role-alias", "NoSuchAlias"], env),
          /check --iot-role-alias$/,
        );
        assert.ok(emu.iotRequests.some((r) => r.status === 404));
      });

      await t.step(
        "403 for a thing the certificate is not attached to, on first start",
        async () => {
          assertFatal(
            await runUntilExit(["--iot-thing-name", "someone-else"], env),
            /refused thing "someone-else" \(--iot-thing-name\).*403/,
          );
        },
      );

      await t.step("a CA bundle that is not PEM", async () => {
        await Deno.writeTextFile(`${dir}/ca.txt`, "not a certificate");
        assertFatal(
          await runUntilExit(["--ca-cert", `${dir}/ca.txt`], env),
          /CA bundle file .*ca\.txt is not PEM.*\(set by --ca-cert\)/,
        );
      });
    } finally {
      await emu.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "cli: IoT 5xx at start and 403 after a success are retried until they heal",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const { startEmulator } = await import("../src/emulator/mod.ts");
    const emu = await startEmulator({
      stateDir: new URL("../.kvs-emulator/", import.meta.url).pathname,
      turn: false,
    });
    const dir = await Deno.makeTempDir();
    const logs: LogRecord[] = [];
    const printed: string[] = [];
    const controller = new AbortController();
    let client: SignalingClient | undefined;
    let code: number | undefined;
    const iotStatuses = () => emu.iotRequests.map((r) => r.status);
    const count = (status: number) => iotStatuses().filter((s) => s === status).length;
    try {
      emu.faults.iotStatus = 503;
      const done = main(["--endpoint-cache-file", `${dir}/cache`], emu.env(), {
        logSink: (r) => logs.push(r),
        print: (text) => printed.push(text),
        signal: controller.signal,
        onClient: (c) => client = c,
        peerSessionFactory: { create: () => Promise.reject(new Error("no viewer in this test")) },
      }).then((c) => code = c);

      await t.step("503 on first start: retried with backoff, then Connected", async () => {
        await until(() => count(503) >= 3, "three IoT requests answered 503", 10_000);
        assert.equal(code, undefined, "main() is still running");
        assert.ok(
          logs.some((r) => r.level === "warn" && /answered 503/.test(r.message)),
          "each failure is a warning",
        );
        emu.faults.iotStatus = undefined;
        await client!.waitForState("Connected", 15_000);
        assert.equal(client!.fatalError, undefined);
      });

      await t.step("403 after a success: retried, recovers when allowed again", async () => {
        const before = count(403);
        emu.faults.iotStatus = 403;
        emu.faults.expireCredentials();
        emu.faults.goAway(); // the next control-plane call is refused: new credentials needed
        await until(() => count(403) >= before + 2, "two IoT requests answered 403", 10_000);
        assert.equal(code, undefined, "main() is still running");
        assert.notEqual(client!.state, "Connected");
        assert.ok(
          logs.some((r) => r.level === "warn" && /403/.test(r.message)),
          "each failure is a warning",
        );
        emu.faults.iotStatus = undefined;
        await client!.waitForState("Connected", 15_000);
        assert.equal(client!.fatalError, undefined);
      });

      controller.abort();
      await done;
      assert.equal(code, EXIT.OK);
      assert.deepEqual(printed, [], "nothing printed: no fatal error");
    } finally {
      emu.faults.iotStatus = undefined;
      controller.abort();
      await emu.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
