// The UDP link emulator on real loopback sockets: its rate limit and queue, seeded loss, delay
// with and without reordering, both directions through a target that answers, limits changed
// and lifted while packets flow, and the window arithmetic the impaired-link test relies on.
import assert from "node:assert/strict";
import {
  type LinkSeries,
  maxWindowBps,
  seriesTotal,
  startUdpLink,
  type UdpLink,
  type UdpLinkOptions,
} from "./support/link_emulator.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a socket received: sequence numbers (first 4 bytes), sizes and arrival times. */
interface Received {
  seq: number[];
  bytes: number[];
  at: number[];
  /** Transit time of each packet from the send time in bytes 4–11 (float64 ms), ms. */
  transit: number[];
}

function udp(): Deno.DatagramConn {
  return Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
}

const portOf = (c: Deno.DatagramConn) => (c.addr as Deno.NetAddr).port;

/** Record what `conn` receives until it is closed; with `echo`, send each packet back. */
function record(conn: Deno.DatagramConn, echo = false): Received {
  const r: Received = { seq: [], bytes: [], at: [], transit: [] };
  (async () => {
    const buf = new Uint8Array(2048);
    for (;;) {
      let got;
      try {
        got = await conn.receive(buf);
      } catch {
        return;
      }
      const now = performance.now();
      const [data, from] = got;
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      r.seq.push(view.getUint32(0));
      r.bytes.push(data.length);
      r.at.push(now);
      r.transit.push(now - view.getFloat64(4));
      if (echo) {
        view.setFloat64(4, performance.now());
        await conn.send(data, from).catch(() => {});
      }
    }
  })();
  return r;
}

/** Packet `seq` of `size` bytes stamped with the current time. */
function packet(seq: number, size: number): Uint8Array {
  const p = new Uint8Array(size);
  const view = new DataView(p.buffer);
  view.setUint32(0, seq);
  view.setFloat64(4, performance.now());
  return p;
}

/**
 * Send `size`-byte packets from `conn` to `port` at `bps` for `ms` (bursts every 5 ms of what
 * is owed by then), awaiting each send so they leave in order. Returns how many were sent.
 */
async function pace(
  conn: Deno.DatagramConn,
  port: number,
  bps: number,
  ms: number,
  size = 1000,
  first = 0,
): Promise<number> {
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  const start = performance.now();
  let sent = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= ms) return sent;
    const owed = Math.floor(elapsed * bps / 8000 / size);
    while (sent < owed) await conn.send(packet(first + sent++, size), to);
    await sleep(5);
  }
}

/** A target socket, a client socket and a link between them; `close()` closes all. */
function setup(o: Omit<UdpLinkOptions, "target">, echo = false) {
  const target = udp();
  const client = udp();
  const atTarget = record(target, echo);
  const atClient = record(client);
  const link: UdpLink = startUdpLink({ ...o, target: { port: portOf(target) } });
  return {
    link,
    client,
    atTarget,
    atClient,
    close: async () => {
      await link.close();
      target.close();
      client.close();
    },
  };
}

Deno.test("link emulator: the rate limit holds within a few % and its queue tail-drops", async () => {
  const rate = 2_000_000;
  const s = setup({ up: { rateBps: rate, queueMs: 100 } });
  try {
    // Twice the rate for 3 s: the queue stays full, half is dropped.
    const sent = await pace(s.client, s.link.port, 2 * rate, 3000);
    await sleep(300); // the queue drains (100 ms of it)
    const c = s.link.counters("up");
    assert.equal(c.packetsIn, sent);
    assert.equal(s.atTarget.seq.length, c.packetsForwarded, "every forwarded packet arrived");
    assert.equal(c.packetsForwarded + c.packetsDroppedQueue, sent);
    assert.ok(c.packetsDroppedQueue > sent * 0.4, `${c.packetsDroppedQueue} of ${sent} dropped`);
    assert.ok(c.peakQueueBytes <= rate * 0.1 / 8, `queue peaked at ${c.peakQueueBytes} bytes`);

    // Measured at the receiver over its arrivals after the first 0.5 s.
    const t0 = s.atTarget.at[0] + 500;
    const i0 = s.atTarget.at.findIndex((t) => t >= t0);
    const last = s.atTarget.at.length - 1;
    const bytes = s.atTarget.bytes.slice(i0 + 1, last + 1).reduce((a, b) => a + b, 0);
    const measured = bytes * 8000 / (s.atTarget.at[last] - s.atTarget.at[i0]);
    assert.ok(Math.abs(measured / rate - 1) < 0.03, `measured ${measured.toFixed(0)} bit/s`);

    // The link's own series: delivered never over the rate (+5 %) in any 1 s window, offered
    // at twice the rate, and in order (no reordering without jitter).
    const series = s.link.series("up");
    const peak = maxWindowBps(series, "delivered");
    assert.ok(peak <= rate * 1.05 && peak >= rate * 0.95, `delivered peak ${peak.toFixed(0)}`);
    const offered = maxWindowBps(series, "offered");
    assert.ok(offered > rate * 1.8, `offered peak ${offered.toFixed(0)}`);
    assert.deepEqual(s.atTarget.seq, [...s.atTarget.seq].sort((a, b) => a - b));
    const timer = c.maxLatenessMs;
    console.log(
      `rate: ${(measured / 1e6).toFixed(3)} Mbit/s measured for ${rate / 1e6} Mbit/s; ` +
        `1 s peak ${(peak / 1e6).toFixed(3)}; scheduler at most ${timer.toFixed(1)} ms late`,
    );
  } finally {
    await s.close();
  }
});

Deno.test("link emulator: seeded loss is close to the rate and the same for the same seed", async () => {
  const lost = async (seed: number) => {
    const s = setup({ seed, up: { lossRate: 0.1 } });
    try {
      const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: s.link.port };
      // In batches the link takes in before the next (the kernel drops what overflows a socket).
      const deadline = performance.now() + 10_000;
      for (let i = 0; i < 4000; i++) {
        await s.client.send(packet(i, 100), to);
        while (i % 50 === 49 && s.link.counters("up").packetsIn <= i) {
          if (performance.now() > deadline) throw new Error("the link stopped taking packets");
          await sleep(1);
        }
      }
      const c = s.link.counters("up");
      while (s.atTarget.seq.length < c.packetsForwarded && performance.now() < deadline) {
        await sleep(20);
      }
      assert.equal(c.packetsIn, 4000);
      assert.equal(s.atTarget.seq.length, c.packetsForwarded);
      const got = new Set(s.atTarget.seq);
      return [...Array(4000).keys()].filter((i) => !got.has(i));
    } finally {
      await s.close();
    }
  };
  const a = await lost(42);
  const b = await lost(42);
  const other = await lost(43);
  // 10 % of 4000 has a standard deviation of 19: 400 ± 60 is 3 of them.
  assert.ok(Math.abs(a.length - 400) <= 60, `${a.length} of 4000 lost`);
  assert.deepEqual(a, b, "the same seed loses the same packets");
  assert.notDeepEqual(a, other, "another seed loses others");
});

Deno.test("link emulator: delay and jitter, in order unless reordering is asked for", async (t) => {
  for (const reorder of [false, true]) {
    await t.step(reorder ? "reordering allowed" : "in order", async () => {
      const s = setup({ seed: 5, up: { delayMs: 40, jitterMs: 20, reorder } });
      try {
        await pace(s.client, s.link.port, 400_000, 1000, 200); // a packet every 4 ms
        await sleep(200);
        const { transit, seq } = s.atTarget;
        assert.ok(seq.length >= 200, `${seq.length} packets`);
        const min = Math.min(...transit);
        const max = Math.max(...transit);
        assert.ok(min >= 40, `shortest transit ${min.toFixed(2)} ms`);
        // Jitter spread them over its 20 ms (plus the scheduler's and the machine's slack).
        assert.ok(max >= 55, `longest transit ${max.toFixed(2)} ms`);
        const inversions = seq.filter((x, i) => i > 0 && x < seq[i - 1]).length;
        if (reorder) assert.ok(inversions > 10, `${inversions} reordered`);
        else assert.equal(inversions, 0);
        const c = s.link.counters("up");
        assert.ok(c.minTransitMs >= 40);
      } finally {
        await s.close();
      }
    });
  }
});

Deno.test("link emulator: both directions, limits changed and lifted while packets flow", async () => {
  // The target echoes every packet: the answers go down the link to the client.
  const s = setup({ seed: 3 }, true);
  try {
    await pace(s.client, s.link.port, 1_000_000, 500, 500);
    await sleep(100);
    const free = s.atClient.transit.length;
    assert.ok(free > 100, `${free} echoes without limits`);
    assert.equal(s.link.counters("down").packetsDroppedLoss, 0);
    assert.equal(s.link.clients(), 1);

    // Down only: 30 ms and 300 kbit/s for echoes of 1 Mbit/s.
    s.link.setLimits({ delayMs: 30, rateBps: 300_000, queueMs: 100 }, "down");
    assert.deepEqual(s.link.limits("up"), {});
    const t0 = performance.now();
    await pace(s.client, s.link.port, 1_000_000, 1500, 500, 10_000);
    await sleep(300);
    const down = s.link.counters("down");
    assert.ok(down.packetsDroppedQueue > 0, "the down queue dropped");
    assert.equal(s.link.counters("up").packetsDroppedQueue, 0, "up is not limited");
    const limited = s.atClient.transit.slice(free);
    assert.ok(Math.min(...limited) >= 30, `echo transit ≥ 30 ms: ${Math.min(...limited)}`);
    const series = s.link.series("down");
    const peak = maxWindowBps(series, "delivered", { fromMs: t0 });
    assert.ok(peak <= 315_000 && peak > 250_000, `down peak ${peak.toFixed(0)} bit/s`);

    // Lifted: the rate comes back.
    s.link.lift();
    assert.deepEqual(s.link.limits("down"), {});
    const t1 = performance.now();
    await pace(s.client, s.link.port, 1_000_000, 1500, 500, 20_000);
    await sleep(100);
    const after = maxWindowBps(s.link.series("down"), "delivered", { fromMs: t1 });
    assert.ok(after > 900_000, `lifted: ${after.toFixed(0)} bit/s down`);
    assert.equal(s.link.counters("down").packetsDroppedQueue, down.packetsDroppedQueue);
  } finally {
    await s.close();
  }
});

Deno.test("link emulator: limits are checked, targets stay on loopback", async () => {
  assert.throws(() => startUdpLink({ target: { hostname: "10.0.0.1", port: 9 } }), /127\.0\.0\.0/);
  const target = udp();
  const link = startUdpLink({ target: { port: portOf(target) } });
  try {
    assert.throws(() => link.setLimits({ lossRate: 1.5 }), /lossRate/);
    assert.throws(() => link.setLimits({ rateBps: -1 }), /rateBps/);
  } finally {
    await link.close();
    target.close();
  }
});

Deno.test("link emulator: window and total arithmetic of a series", () => {
  const s: LinkSeries = {
    binMs: 100,
    startMs: 1000,
    startEpochMs: 0,
    // 1 s at 1 Mbit/s (12 500 bytes a bin), then a burst, then quiet.
    offered: [...Array(10).fill(12_500), 50_000, ...Array(10).fill(0)],
    delivered: [],
  };
  assert.equal(maxWindowBps(s, "offered", { windowMs: 1000 }), (9 * 12_500 + 50_000) * 8);
  assert.equal(maxWindowBps(s, "offered", { windowMs: 1000, toMs: 2000 }), 1_000_000);
  assert.equal(maxWindowBps(s, "offered", { windowMs: 1000, fromMs: 2100 }), 0);
  assert.equal(maxWindowBps(s, "offered", { windowMs: 100, fromMs: 1950 }), 4_000_000);
  assert.equal(maxWindowBps(s, "delivered"), 0);
  assert.deepEqual(seriesTotal(s, "offered", 1000, 1500), { bytes: 62_500, ms: 500 });
  assert.deepEqual(seriesTotal(s, "offered", 1050, 1500), { bytes: 50_000, ms: 400 });
});
