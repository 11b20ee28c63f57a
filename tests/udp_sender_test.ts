// The ordered datagram sender on real loopback sockets (IPv4, and IPv6 for the batch path): order,
// content (its ring buffer is reused while the caller reuses its own buffer), the fallback for big
// datagrams, tail drops at the queue bound, and send errors counted rather than swallowed.
import assert from "node:assert/strict";
import { OrderedDatagramSender } from "../src/peer/udp_sender.ts";
import { until } from "./support/until.ts";

function pair(hostname = "127.0.0.1") {
  const rx = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
  const tx = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
  const to: Deno.NetAddr = {
    transport: "udp",
    hostname,
    port: (rx.addr as Deno.NetAddr).port,
  };
  const got: Uint8Array[] = [];
  (async () => {
    for (;;) {
      try {
        got.push((await rx.receive())[0]);
      } catch {
        return;
      }
    }
  })();
  return { rx, tx, to, got, close: () => (rx.close(), tx.close()) };
}

/** Datagram `n`: its number, then bytes derived from it, `len` long. */
function fill(buf: Uint8Array, n: number, len: number): Uint8Array {
  const d = buf.subarray(0, len);
  new DataView(d.buffer, d.byteOffset).setUint32(0, n);
  for (let i = 4; i < len; i++) d[i] = (n * 31 + i) & 255;
  return d;
}

Deno.test("OrderedDatagramSender", async (t) => {
  for (const batch of [true, false]) {
    await t.step(
      `bursts arrive in order and intact while the ring wraps (${batch ? "sendmmsg" : "send()"})`,
      () => bursts(batch),
    );
  }

  // IPv6 (a session's second socket): sockaddr_in6 in the batches.
  let ipv6 = true;
  try {
    Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" }).close();
  } catch {
    ipv6 = false;
  }
  await t.step({
    name: "bursts to an IPv6 address arrive in order and intact (sendmmsg)",
    ignore: !ipv6,
    fn: () => bursts(true, "::1"),
  });

  async function bursts(batch: boolean, hostname?: string) {
    const p = pair(hostname);
    try {
      // A small ring (16 KiB): 1200-byte datagrams wrap it every 13; 5000-byte ones do not fit a
      // quarter of it and get buffers of their own.
      const sender = new OrderedDatagramSender(p.tx, { ringBytes: 16 * 1024, batch });
      const scratch = new Uint8Array(6000);
      const sizes: number[] = [];
      let n = 0;
      for (let burst = 0; burst < 40; burst++) {
        for (let k = 0; k < 60; k++) {
          const len = k % 17 === 0 ? 5000 : 8 + ((n * 7919) % 1193);
          sizes.push(len);
          sender.send(fill(scratch, n++, len), p.to); // the caller reuses `scratch` at once
          if (k % 20 === 19) sender.flush(); // frames of 20 datagrams
        }
        // Let the receiver (in this same process) keep up, so the kernel drops nothing on a
        // busy machine: what is checked is order and content, not throughput.
        await until(() => p.got.length >= n, "the burst", 5000);
      }
      await sender.drained();
      await until(() => p.got.length >= n, `${n} datagrams`, 5000);
      for (const [i, d] of p.got.entries()) {
        const num = new DataView(d.buffer, d.byteOffset).getUint32(0);
        assert.equal(num, i, `datagram ${i} arrived as number ${num}`);
        assert.equal(d.length, sizes[i]);
        assert.deepEqual(d, fill(new Uint8Array(6000), i, sizes[i]).slice(), `content of ${i}`);
      }
      const st = sender.stats();
      assert.deepEqual([st.sent, st.errors, st.dropped, st.queued], [n, 0, 0, 0]);
      // On Linux with FFI permission (this test runs with -A) most leave in sendmmsg batches;
      // the big ones (own buffers) and whatever the kernel did not take at once use send().
      if (batch) assert.ok(st.batched > n / 2, `${st.batched} of ${n} batched`);
      else assert.equal(st.batched, 0);
    } finally {
      p.close();
    }
  }

  await t.step("a full queue drops new datagrams and counts them", async () => {
    const p = pair();
    try {
      const sender = new OrderedDatagramSender(p.tx, { maxQueued: 10 });
      for (let i = 0; i < 30; i++) sender.send(fill(new Uint8Array(100), i, 100), p.to);
      await sender.drained();
      await until(() => p.got.length === 10, "the ten queued", 2000);
      const st = sender.stats();
      assert.deepEqual([st.sent, st.dropped], [10, 20], "the ten first are sent, the rest dropped");
    } finally {
      p.close();
    }
  });

  await t.step("send errors are counted and reported, and sending goes on", async () => {
    const p = pair();
    try {
      const reported: string[] = [];
      const sender = new OrderedDatagramSender(p.tx, { onError: (e) => reported.push(e.message) });
      sender.send(new Uint8Array(70_000), p.to); // larger than any UDP datagram
      sender.send(new Uint8Array([1, 2, 3]), p.to);
      await sender.drained();
      await until(() => p.got.length === 1, "the good datagram", 2000);
      const st = sender.stats();
      assert.equal(st.errors, 1);
      assert.equal(st.sent, 1);
      assert.equal(reported.length, 1);
      assert.ok(st.lastError && st.lastError.length > 0);
    } finally {
      p.close();
    }
  });
});
