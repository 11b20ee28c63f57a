// The signaling relay's bookkeeping under concurrency: viewers whose upgrades were all accepted
// before any of them opened (three pages joining at once), and a viewer connecting while the
// channel's last viewer leaves, must all stay reachable by the master.
import assert from "node:assert/strict";
import { SignalingRelay } from "../src/emulator/relay.ts";

const ARN = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/relay-test/1";

/** A plain-WebSocket server in front of the relay whose responses wait for `hold` to resolve. */
function serve(relay: SignalingRelay) {
  let hold: Promise<void> = Promise.resolve();
  let accepted = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const response = relay.accept(req, new URL(req.url));
    if (!(response instanceof Response)) return new Response(response.message, { status: 400 });
    accepted++;
    await hold;
    return response;
  });
  return {
    url: (clientId?: string) =>
      `ws://127.0.0.1:${server.addr.port}/?X-Amz-ChannelARN=${encodeURIComponent(ARN)}` +
      (clientId ? `&X-Amz-ClientId=${clientId}` : ""),
    hold: (p: Promise<void>) => hold = p,
    accepted: () => accepted,
    close: () => server.shutdown(),
  };
}

function open(url: string): Promise<{ ws: WebSocket; messages: string[] }> {
  const ws = new WebSocket(url);
  const messages: string[] = [];
  ws.onmessage = (e) => messages.push(String(e.data));
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve({ ws, messages });
    ws.onerror = () => reject(new Error(`WebSocket ${url} failed`));
  });
}

async function closed(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  const done = new Promise((r) => ws.addEventListener("close", r));
  ws.close();
  await done;
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("relay: viewers accepted at once, and one joining as the last leaves, all reachable", async () => {
  const relay = new SignalingRelay({
    maxConnectionMs: 60_000,
    idleTimeoutMs: 60_000,
    requests: [],
    requireChannel: () => {},
  });
  const server = serve(relay);
  const sockets: WebSocket[] = [];
  try {
    const master = await open(server.url());
    sockets.push(master.ws);
    const reachable = async (ids: string[], viewers: { messages: string[] }[]) => {
      master.messages.length = 0;
      for (const id of ids) {
        master.ws.send(JSON.stringify({
          action: "SDP_ANSWER",
          recipientClientId: id,
          messagePayload: btoa("answer"),
          correlationId: id,
        }));
      }
      await until("every viewer's answer", () => viewers.every((v) => v.messages.length > 0));
      assert.deepEqual(master.messages, [], "no STATUS_RESPONSE: every viewer was found");
      assert.deepEqual(relay.connections()[0].viewers.sort(), [...ids].sort());
    };

    // Three upgrades accepted before any of them opens.
    let release!: () => void;
    server.hold(new Promise<void>((r) => release = r));
    const ids = ["a", "b", "c"];
    const pending = ids.map((id) => open(server.url(id)));
    await until("three upgrades accepted", () => server.accepted() === 4);
    release();
    const three = await Promise.all(pending);
    sockets.push(...three.map((v) => v.ws));
    await reachable(ids, three);

    // The channel's viewers all leave while a new one's upgrade is being accepted.
    server.hold(new Promise<void>((r) => release = r));
    const late = open(server.url("d"));
    await until("its upgrade accepted", () => server.accepted() === 5);
    await Promise.all(three.map((v) => closed(v.ws)));
    await until("the three forgotten", () => (relay.connections()[0]?.viewers.length ?? 0) === 0);
    release();
    const d = await late;
    sockets.push(d.ws);
    await reachable(["d"], [d]);
  } finally {
    await Promise.all(sockets.map(closed));
    relay.closeAll();
    await server.close();
  }
});
