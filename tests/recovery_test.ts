// The signaling state machine against the emulator with real credentials (IoT over mutual TLS)
// and the real control-plane client: the seed's state sequence, then every recovery path
// through the emulator's fault injection.
import assert from "node:assert/strict";
import { createCaHttpClient, KvsClient } from "../src/aws/mod.ts";
import { IotCredentialProvider } from "../src/credentials/mod.ts";
import { startEmulator } from "../src/emulator/mod.ts";
import { SignalingClient, type SignalingState } from "../src/signaling/mod.ts";
import { until } from "./support/until.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;

Deno.test({
  name: "signaling recovery through the emulator's fault injection",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const emu = await startEmulator({ stateDir: STATE, turn: false });
    const env = emu.env();
    const credentials = IotCredentialProvider.fromEnv(env);
    const http = await createCaHttpClient(env.AWS_KVS_CACERT_PATH);
    const kvs = new KvsClient({
      region: emu.region,
      credentials,
      endpoint: env.AWS_ENDPOINT_URL_KINESIS_VIDEO,
      httpClient: http,
      retry: { baseMs: 5, capMs: 50 },
    });
    const client = new SignalingClient({
      channelName: `recovery-${crypto.randomUUID().slice(0, 8)}`,
      region: emu.region,
      controlPlane: kvs,
      credentials,
      caCerts: [await Deno.readTextFile(env.AWS_KVS_CACERT_PATH)],
      endpointCache: false,
      stunUrl: false,
      backoff: { baseMs: 10, capMs: 200, healthyMs: 200 },
      describePollMs: 50,
    });
    const states: SignalingState[] = [];
    const errors: string[] = [];
    let iceEvents = 0;
    client.on("state", (e) => states.push(e.state));
    client.on("error", (e) => errors.push(e.error.message));
    client.on("iceServers", () => iceEvents++);
    /** States seen since `mark`, once Connected is reached again. */
    const reconnected = async (mark: number, what: string) => {
      await until(
        () =>
          states.length > mark && states.at(-1) === "Connected" &&
          emu.connections().some((c) => c.master),
        what,
      );
      return states.slice(mark);
    };
    try {
      await t.step("cold start: the seed's state sequence", async () => {
        client.start();
        const seen = await reconnected(0, "Connected");
        const collapsed = seen.filter((s, i) => s !== seen[i - 1]);
        assert.deepEqual(collapsed, [
          "Get Security Credentials",
          "Describe Channel",
          "Create Channel",
          "Describe Channel",
          "Get Channel Endpoint",
          "Get ICE Server Configuration",
          "Ready",
          "Connecting",
          "Connected",
        ]);
        assert.equal(emu.iotRequests.filter((r) => r.status === 200).length >= 1, true);
      });

      await t.step("socket dropped → Disconnected → reconnected", async () => {
        const mark = states.length;
        assert.equal(emu.faults.dropMaster(), 1);
        const seen = await reconnected(mark, "reconnect after drop");
        assert.equal(seen[0], "Disconnected");
        assert.ok(seen.includes("Connecting"));
      });

      await t.step("GO_AWAY → Describe again → Connected", async () => {
        const mark = states.length;
        emu.faults.goAway();
        const seen = await reconnected(mark, "reconnect after GO_AWAY");
        assert.ok(seen.includes("Describe Channel"), seen.join(" → "));
      });

      await t.step("RECONNECT_ICE_SERVER → ICE configuration fetched again", async () => {
        const before = iceEvents;
        const calls = emu.requests.filter((r) => r.path === "/v1/get-ice-server-config").length;
        emu.faults.reconnectIceServer();
        await until(() => iceEvents > before, "new ICE servers");
        const after = emu.requests.filter((r) => r.path === "/v1/get-ice-server-config").length;
        assert.ok(after > calls);
        assert.equal(states.at(-1), "Connected");
      });

      await t.step(
        "credentials expire while Connected: refreshed, no failure surfaces",
        async () => {
          const iot = emu.iotRequests.length;
          const mark = states.length;
          const from = emu.requests.length;
          emu.faults.expireCredentials();
          emu.faults.goAway(); // the next control-plane calls use the expired token
          await reconnected(mark, "reconnect with new credentials");
          const refused = emu.requests.slice(from).filter((r) =>
            r.errorType === "ExpiredTokenException"
          );
          assert.ok(refused.length >= 1, "the service refused the expired token");
          assert.ok(emu.iotRequests.length > iot, "new IoT credentials fetched");
        },
      );

      await t.step("refused upgrades fetch no new IoT credentials", async () => {
        const upgrades = () =>
          emu.requests.filter((r) => r.path === "/ (websocket)" && r.status >= 400).length;
        const iot = emu.iotRequests.length;
        const refused = upgrades();
        const mark = states.length;
        emu.faults.failNext(2, "5xx", ["/"]);
        emu.faults.dropMaster();
        const seen = await reconnected(mark, "reconnect after two upgrades answered 500");
        assert.equal(upgrades() - refused, 2);
        assert.equal(seen.filter((s) => s === "Disconnected").length, 3, seen.join(" → "));
        assert.ok(!seen.includes("Get Security Credentials"), seen.join(" → "));
        assert.equal(emu.iotRequests.length, iot, "no IoT request");
      });

      await t.step("a 5xx burst while reconnecting: retried, then Connected", async () => {
        const mark = states.length;
        emu.faults.failNext(5, "5xx");
        emu.faults.goAway();
        await reconnected(mark, "reconnect after 5xx burst");
        const fails = emu.requests.filter((r) => r.errorType === "InternalFailure").length;
        assert.ok(fails >= 5);
      });

      for (const minutes of [10, -10]) {
        await t.step(
          `service clock ${minutes} min off: corrected from Date, Connected again`,
          async () => {
            emu.faults.clockSkewMs = minutes * 60_000;
            try {
              const mark = states.length;
              emu.faults.goAway();
              await reconnected(mark, "reconnect with a skewed service clock");
              assert.ok(
                Math.abs(kvs.clock.offset(new URL(emu.controlPlaneUrl).host) - minutes * 60_000) <
                  5000,
              );
            } finally {
              emu.faults.clockSkewMs = 0;
            }
          },
        );
      }

      await t.step(
        "connection age limit: the service closes it, the client reconnects",
        async () => {
          emu.faults.maxConnectionMs = 700;
          try {
            const mark = states.length;
            emu.faults.dropMaster(); // the next connection gets the short limit
            await until(
              () => states.slice(mark).filter((s) => s === "Connected").length >= 2,
              "two reconnections",
            );
          } finally {
            emu.faults.maxConnectionMs = 3600_000;
          }
          const mark = states.length;
          emu.faults.dropMaster();
          await reconnected(mark, "stable again");
        },
      );

      await t.step("idle close by the service: the client reconnects", async () => {
        emu.faults.idleTimeoutMs = 600;
        try {
          const mark = states.length;
          emu.faults.dropMaster(); // the next connection gets the short idle limit
          await until(
            () => states.slice(mark).filter((s) => s === "Connected").length >= 2,
            "reconnection after an idle close",
          );
        } finally {
          emu.faults.idleTimeoutMs = 600_000;
        }
        const mark = states.length;
        emu.faults.dropMaster();
        await reconnected(mark, "stable again");
      });

      await t.step("errors were reported as events, none is fatal", () => {
        assert.ok(errors.length > 0);
        assert.ok(errors.every((m) => !/secret|session token/i.test(m)));
        assert.equal(client.state, "Connected");
      });
    } finally {
      await client.close();
      credentials.close();
      http.close();
      await emu.close();
    }
  },
});
