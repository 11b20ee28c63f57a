// The signaling state machine as a pure function: every transition of the reference (happy
// path, error routing, recovery), walked with plain values, without sockets or timers.
import assert from "node:assert/strict";
import {
  initialSignalingState,
  next,
  type SignalingCommand,
  type SignalingEvent,
  type SignalingMachineConfig,
  type SignalingMachineState,
} from "../src/signaling/machine.ts";
import type { SignalingState } from "../src/signaling/states.ts";

const ARN = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo-channel/1";
const ENDPOINTS = { wss: "wss://m-1.example", https: "https://r-1.example" };

type Input = SignalingEvent extends infer E ? E extends unknown ? Omit<E, "now"> : never : never;

/** Feeds events one at a time (`now` advancing by 1 ms unless given) and keeps what came out. */
class Walk {
  s: SignalingMachineState;
  now = 0;
  /** Commands of the last event. */
  out: SignalingCommand[] = [];
  /** States entered since the last {@link Walk.states} call. */
  #states: SignalingState[] = [];

  constructor(config: Partial<SignalingMachineConfig> = {}) {
    this.s = initialSignalingState(config);
  }

  send(event: Input, now = this.now + 1): SignalingCommand[] {
    this.now = now;
    const t = next(this.s, { ...event, now } as SignalingEvent);
    this.s = t.state;
    this.out = t.commands;
    for (const c of t.commands) if (c.type === "emit-state") this.#states.push(c.state);
    return t.commands;
  }

  /** The states entered since the last call. */
  states(): SignalingState[] {
    const out = this.#states;
    this.#states = [];
    return out;
  }

  /** Types of the last event's commands. */
  types(): string[] {
    return this.out.map((c) => c.type);
  }

  find<T extends SignalingCommand["type"]>(type: T): SignalingCommand & { type: T } {
    const c = this.out.find((c) => c.type === type);
    assert.ok(c, `no ${type} in ${this.types()}`);
    return c as SignalingCommand & { type: T };
  }

  /** Cold start through Describe and Get Endpoint to Connected. */
  connect(): this {
    this.send({ type: "started" });
    this.send({ type: "credentials-ok", expiresInMs: 3_600_000 });
    this.send({ type: "cache-miss" });
    this.send({ type: "describe-ok", channelArn: ARN, version: "v1", status: "ACTIVE" });
    this.send({ type: "endpoint-ok", endpoints: ENDPOINTS });
    this.send({ type: "ice-ok", freshForMs: 300_000 });
    this.send({ type: "socket-open" });
    assert.equal(this.s.state, "Connected");
    this.states();
    return this;
  }
}

const fail = (call: string, kind: string, status?: number): Input =>
  ({ type: "failed", call, kind, status, error: new Error(`${call} ${kind}`) }) as Input;

Deno.test("signaling machine: cold start, the seed's states and the calls in order", async (t) => {
  await t.step("started → credentials → cache miss → Describe → Endpoint → ICE ∥ socket", () => {
    const w = new Walk();
    assert.equal(w.s.state, "New");
    assert.deepEqual(w.send({ type: "started" }), [
      { type: "emit-state", state: "Get Security Credentials", previous: "New" },
      { type: "fetch-credentials", force: false },
    ]);
    w.send({ type: "credentials-ok", expiresInMs: 3_600_000 });
    assert.deepEqual(w.types(), ["lookup-cache"]);
    w.send({ type: "cache-miss" });
    assert.deepEqual(w.types(), ["emit-state", "describe"]);
    w.send({ type: "describe-ok", channelArn: ARN, version: "v1", status: "ACTIVE" });
    assert.deepEqual(w.find("get-endpoint"), { type: "get-endpoint", channelArn: ARN });
    w.send({ type: "endpoint-ok", endpoints: ENDPOINTS });
    // The endpoints are cached; ICE is fetched while the socket opens.
    assert.deepEqual(w.types(), [
      "store-cache",
      "emit-state",
      "get-ice",
      "emit-state",
      "emit-state",
      "open-socket",
    ]);
    assert.deepEqual(w.find("get-ice"), {
      type: "get-ice",
      channelArn: ARN,
      https: ENDPOINTS.https,
    });
    assert.deepEqual(w.find("open-socket"), {
      type: "open-socket",
      channelArn: ARN,
      wss: ENDPOINTS.wss,
    });
    // The socket opens first: Connected waits for the ICE servers.
    assert.deepEqual(w.send({ type: "socket-open" }), []);
    w.send({ type: "ice-ok", freshForMs: 300_000 });
    assert.deepEqual(w.types(), ["install-socket", "emit-state", "flush-outbox", "watch"]);
    assert.deepEqual(w.states(), [
      "Get Security Credentials",
      "Describe Channel",
      "Get Channel Endpoint",
      "Get ICE Server Configuration",
      "Ready",
      "Connecting",
      "Connected",
    ]);
    assert.equal(w.s.awaiting, "events");
    assert.equal(w.s.socketOpen, true);
  });

  await t.step("a cache hit skips Describe and Get Endpoint", () => {
    const w = new Walk();
    w.send({ type: "started" });
    w.send({ type: "credentials-ok" });
    w.send({ type: "cache-hit", channelArn: ARN, endpoints: ENDPOINTS });
    assert.deepEqual(w.states(), [
      "Get Security Credentials",
      "Get ICE Server Configuration",
      "Ready",
      "Connecting",
    ]);
    assert.equal(w.s.fromCache, true);
  });

  await t.step(
    "Describe 404 → Create Channel → Describe; CREATING is polled without jitter",
    () => {
      const w = new Walk({ describePollMs: 50 });
      w.send({ type: "started" });
      w.send({ type: "credentials-ok" });
      w.send({ type: "cache-miss" });
      w.send(fail("describe", "not-found", 404));
      assert.deepEqual(w.types(), ["emit-state", "create"], "no error reported for a 404 here");
      w.send({ type: "created", channelArn: ARN });
      w.send({ type: "describe-ok", channelArn: ARN, version: "v1", status: "CREATING" });
      assert.deepEqual(w.out, [{ type: "wait", ms: 50, jitter: false }]);
      w.send({ type: "waited" });
      w.send({ type: "describe-ok", channelArn: ARN, version: "v1", status: "ACTIVE" });
      assert.deepEqual(w.states(), [
        "Get Security Credentials",
        "Describe Channel",
        "Create Channel",
        "Describe Channel",
        "Describe Channel",
        "Get Channel Endpoint",
      ]);
    },
  );

  await t.step("without createChannel a 404 is reported and Describe retried", () => {
    const w = new Walk({ createChannel: false });
    w.send({ type: "started" });
    w.send({ type: "credentials-ok" });
    w.send({ type: "cache-miss" });
    w.send(fail("describe", "not-found", 404));
    assert.deepEqual(w.types(), ["report-error", "wait"]);
    w.send({ type: "waited" });
    assert.deepEqual(w.states().slice(-2), ["Describe Channel", "Describe Channel"]);
  });
});

Deno.test("signaling machine: error routing", async (t) => {
  await t.step("403 on Describe → report, backoff → Get Security Credentials, forced", () => {
    const w = new Walk({ backoffBaseMs: 100 });
    w.send({ type: "started" });
    w.send({ type: "credentials-ok" });
    w.send({ type: "cache-miss" });
    w.states();
    w.send(fail("describe", "auth", 403));
    assert.deepEqual(w.find("report-error").state, "Describe Channel");
    assert.deepEqual(w.find("wait"), { type: "wait", ms: 100, jitter: true });
    assert.deepEqual(w.states(), [], "the state changes after the wait");
    w.send({ type: "waited" });
    assert.deepEqual(w.states(), ["Get Security Credentials"]);
    assert.deepEqual(w.find("fetch-credentials"), { type: "fetch-credentials", force: true });
  });

  await t.step("5xx: retried in the same state with a growing ceiling, reset on success", () => {
    const w = new Walk({ backoffBaseMs: 100, backoffCapMs: 300 });
    w.send({ type: "started" });
    w.send({ type: "credentials-ok" });
    w.send({ type: "cache-miss" });
    w.send({ type: "describe-ok", channelArn: ARN, version: "v1", status: "ACTIVE" });
    const ceilings = [];
    for (let i = 0; i < 4; i++) {
      w.send(fail("endpoint", "retry", 500));
      ceilings.push(w.find("wait").ms);
      w.send({ type: "waited" });
      assert.equal(w.s.state, "Get Channel Endpoint");
    }
    assert.deepEqual(ceilings, [100, 200, 300, 300]);
    w.send({ type: "endpoint-ok", endpoints: ENDPOINTS });
    assert.equal(w.s.retryAttempt, 0);
  });

  await t.step("a stale ARN (404 on Get Endpoint) → cache invalidated → Describe", () => {
    const v = new Walk();
    v.send({ type: "started" });
    v.send({ type: "credentials-ok" });
    v.send({ type: "cache-miss" });
    v.send({ type: "describe-ok", channelArn: ARN, version: "v1", status: "ACTIVE" });
    v.send(fail("endpoint", "not-found", 404));
    assert.deepEqual(v.types(), ["report-error", "invalidate-cache", "wait"]);
    assert.equal(v.s.channelArn, undefined);
    v.send({ type: "waited" });
    assert.equal(v.s.state, "Describe Channel");
  });

  await t.step("a fatal credential failure stops the machine; later events change nothing", () => {
    const w = new Walk();
    w.send({ type: "started" });
    const error = new Error("certificate file missing");
    w.send({ type: "failed", call: "credentials", kind: "fatal", error });
    assert.deepEqual(w.out, [{ type: "fatal", error, state: "Get Security Credentials" }]);
    assert.equal(w.s.stopped, true);
    const stopped = w.s;
    assert.deepEqual(w.send({ type: "credentials-ok" }), []);
    assert.deepEqual(w.send({ type: "waited" }), []);
    assert.deepEqual(w.s, stopped);
  });
});

Deno.test("signaling machine: while Connected", async (t) => {
  await t.step("GO_AWAY → Describe again; the new socket replaces the old one", () => {
    const w = new Walk().connect();
    w.send({ type: "goaway" });
    assert.deepEqual(w.types().slice(0, 2), ["unwatch", "log"]);
    assert.equal(w.s.replacing, true);
    w.send({ type: "describe-ok", channelArn: ARN, version: "v1", status: "ACTIVE" });
    w.send({ type: "endpoint-ok", endpoints: ENDPOINTS });
    // The old socket still works, but it is being replaced: the cold path, a new socket.
    assert.ok(w.types().includes("open-socket"));
    w.send({ type: "ice-ok", freshForMs: 300_000 });
    w.send({ type: "socket-open" });
    assert.ok(w.types().includes("install-socket"));
    assert.deepEqual(w.states(), [
      "Describe Channel",
      "Get Channel Endpoint",
      "Get ICE Server Configuration",
      "Ready",
      "Connecting",
      "Connected",
    ]);
    assert.equal(w.s.replacing, false);
  });

  await t.step("RECONNECT_ICE_SERVER → ICE fetched again on the same socket", () => {
    const w = new Walk().connect();
    w.send({ type: "reconnect-ice" });
    assert.deepEqual(w.types(), ["unwatch", "emit-state", "get-ice"]);
    w.send({ type: "ice-ok", freshForMs: 300_000 });
    assert.deepEqual(w.types(), ["emit-state", "flush-outbox", "watch"]);
    assert.deepEqual(w.states(), ["Get ICE Server Configuration", "Connected"]);
  });

  await t.step("a failed refresh keeps the socket: back to Connected after the backoff", () => {
    const w = new Walk().connect();
    w.send({ type: "ice-expiring" });
    w.send(fail("ice", "retry", 500));
    assert.equal(w.find("report-error").state, "Get ICE Server Configuration");
    w.send({ type: "waited" });
    assert.deepEqual(w.states(), ["Get ICE Server Configuration", "Connected"]);
  });

  await t.step("socket drop → Disconnected → Ready → Connecting → Connected", () => {
    const w = new Walk({ backoffBaseMs: 100 }).connect();
    w.send({ type: "socket-closed" });
    assert.deepEqual(w.find("wait"), { type: "wait", ms: 100, jitter: true, reconnectAttempt: 1 });
    w.send({ type: "waited" });
    w.send({ type: "socket-open" });
    assert.deepEqual(w.states(), ["Disconnected", "Ready", "Connecting", "Connected"]);
  });

  await t.step("stale ICE servers are fetched again on the way back", () => {
    const w = new Walk().connect();
    w.send({ type: "socket-closed" });
    w.send({ type: "waited" }, w.now + 400_000);
    assert.deepEqual(w.states(), [
      "Disconnected",
      "Ready",
      "Get ICE Server Configuration",
      "Ready",
      "Connecting",
    ]);
  });

  await t.step("age and idle limits: replaced make-before-break, never Disconnected", () => {
    for (const why of ["max-age", "idle"] as const) {
      const w = new Walk().connect();
      w.send({ type: why });
      assert.deepEqual(w.states(), ["Ready", "Connecting"]);
      assert.ok(!w.types().includes("discard-socket"));
      w.send({ type: "socket-open" });
      assert.ok(w.types().includes("install-socket"));
      assert.equal(w.s.state, "Connected");
    }
  });

  await t.step("wakes outside Connected are held for the return to it", () => {
    const w = new Walk().connect();
    w.send({ type: "reconnect-ice" });
    w.send({ type: "goaway" });
    assert.deepEqual(w.states(), ["Get ICE Server Configuration"]);
    w.send({ type: "ice-ok", freshForMs: 300_000 });
    assert.deepEqual(w.states(), ["Connected", "Describe Channel"]);
    const v = new Walk().connect();
    v.send({ type: "reconnect-ice" });
    v.send({ type: "socket-closed" });
    v.send({ type: "ice-ok", freshForMs: 300_000 });
    assert.deepEqual(v.states(), ["Get ICE Server Configuration", "Connected", "Disconnected"]);
  });

  await t.step("close stops it; delete enters Delete with what is known", () => {
    const w = new Walk().connect();
    w.send({ type: "close" });
    assert.deepEqual(w.types(), ["unwatch"]);
    assert.deepEqual(w.send({ type: "socket-closed" }), []);
    w.send({ type: "delete" });
    assert.deepEqual(w.out, [
      { type: "emit-state", state: "Delete", previous: "Connected" },
      { type: "delete-channel", channelArn: ARN, version: "v1" },
    ]);
  });
});

Deno.test("signaling machine: reconnecting", async (t) => {
  await t.step("a cached endpoint that fails once is dropped: Describe, no credentials", () => {
    const w = new Walk();
    w.send({ type: "started" });
    w.send({ type: "credentials-ok" });
    w.send({ type: "cache-hit", channelArn: ARN, endpoints: ENDPOINTS });
    w.send(fail("socket", "connect"));
    w.send({ type: "ice-ok", freshForMs: 300_000 });
    assert.deepEqual(w.types(), ["report-error", "log", "invalidate-cache", "emit-state", "wait"]);
    w.send({ type: "waited" });
    assert.deepEqual(w.states(), [
      "Get Security Credentials",
      "Get ICE Server Configuration",
      "Ready",
      "Connecting",
      "Disconnected",
      "Describe Channel",
    ]);
  });

  await t.step("refused upgrades: 401/403 force credentials, others do not", () => {
    for (const [status, expected] of [[403, "Get Security Credentials"], [503, "Ready"]] as const) {
      const w = new Walk().connect();
      w.send({ type: "socket-closed" });
      w.send({ type: "waited" });
      w.send(fail("socket", "connect", status));
      w.states();
      w.send({ type: "waited" });
      assert.equal(w.states()[0], expected);
      if (status === 403) {
        assert.deepEqual(w.find("fetch-credentials"), { type: "fetch-credentials", force: true });
      }
    }
  });

  await t.step("three failed connections → endpoints forgotten → Describe; ceilings grow", () => {
    const w = new Walk({ backoffBaseMs: 20, backoffCapMs: 1000 }).connect();
    w.send({ type: "socket-closed" });
    const ceilings = [w.find("wait").ms];
    for (let i = 0; i < 3; i++) {
      w.send({ type: "waited" });
      w.send(fail("socket", "connect", 500));
      ceilings.push(w.find("wait").ms);
    }
    w.send({ type: "waited" });
    assert.ok(w.types().includes("invalidate-cache"));
    assert.equal(w.s.state, "Describe Channel");
    assert.deepEqual(ceilings, [20, 40, 80, 160]);
  });

  await t.step("the reconnect backoff resets after a healthy period", () => {
    const w = new Walk({ backoffBaseMs: 10, healthyMs: 1000 }).connect();
    w.send({ type: "socket-closed" });
    w.send({ type: "waited" });
    w.send({ type: "socket-open" });
    w.send({ type: "socket-closed" });
    assert.equal(w.find("wait").ms, 20, "a short Connected period keeps the count");
    w.send({ type: "waited" });
    w.send({ type: "socket-open" });
    w.send({ type: "socket-closed" }, w.now + 1000);
    assert.equal(w.find("wait").ms, 10, "a long one resets it");
  });

  await t.step("credentials about to expire are fetched again before reconnecting", () => {
    const w = new Walk().connect();
    w.send({ type: "socket-closed" }, w.now + 3_550_000);
    w.send({ type: "waited" });
    assert.deepEqual(w.states(), ["Disconnected", "Get Security Credentials"]);
    assert.deepEqual(w.find("fetch-credentials"), { type: "fetch-credentials", force: false });
  });

  await t.step("ICE fails while the socket opens: the socket is discarded, ICE retried", () => {
    const w = new Walk();
    w.send({ type: "started" });
    w.send({ type: "credentials-ok" });
    w.send({ type: "cache-hit", channelArn: ARN, endpoints: ENDPOINTS });
    w.send(fail("ice", "retry", 500));
    assert.deepEqual(w.out, [], "Connecting waits for the socket");
    w.send({ type: "socket-open" });
    assert.deepEqual(w.types(), ["discard-socket", "report-error", "wait"]);
    assert.equal(w.find("report-error").state, "Get ICE Server Configuration");
    w.send({ type: "waited" });
    assert.equal(w.s.state, "Connecting");
    assert.deepEqual(w.states().slice(-3), ["Get ICE Server Configuration", "Ready", "Connecting"]);
  });
});

Deno.test("signaling machine: next is pure", () => {
  const deepFreeze = <T>(o: T): T => {
    if (o && typeof o === "object") Object.values(Object.freeze(o)).forEach(deepFreeze);
    return o;
  };
  const w = new Walk().connect();
  const before = deepFreeze(structuredClone(w.s));
  const frozen = deepFreeze(w.s);
  const a = next(frozen, { type: "goaway", now: 5 });
  const b = next(frozen, { type: "goaway", now: 5 });
  assert.deepEqual(a, b);
  assert.deepEqual(frozen, before);
  assert.notEqual(a.state, frozen);
});
