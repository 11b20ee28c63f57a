/**
 * The attackers of `deno task soak --hostile`, in a worker of their own (so their work, werift's
 * DTLS handshakes in JavaScript above all, does not stall the master's event loop and pass for
 * the master's frame gaps). Every one holds only the channel's viewer credentials:
 *
 * - **offer flood**: a new client id every `1000 / offersPerSecond` ms connects to signaling,
 *   sends a valid offer (Chromium's, candidates removed; every tenth client sends five in a row,
 *   over its budget), waits at most 400 ms for a reply and goes; at most 3 such connections are
 *   open at once (the service allows 10 viewer connections per channel);
 * - **vanishing viewers**: werift viewers that complete ICE and DTLS, receive video, then
 *   disappear without a word (nothing leaves their sockets any more, then the sockets close);
 * - **datagram spray**: random bytes, and STUN, RTP, RTCP and DTLS look-alikes, from other UDP
 *   sockets to the master's session ports;
 * - **forged DTLS**: ClientHellos (hand-built, and `openssl s_client -dtls1_2` when installed),
 *   plaintext alerts, ChangeCipherSpec and epoch-1 records from addresses that never did ICE.
 *
 * The ports attacked are those an attacker learns from its own answers (the answers' candidates),
 * and those of the honest viewers' media, which the soak hands over as an attacker on the path
 * would see them (`{ kind: "honest", ports }`).
 *
 * Messages: in `{ kind: "hello" }`, `{ kind: "start", config }`, `{ kind: "honest", ports }`,
 * `{ kind: "stop" }`; out `{ kind: "ready" }`, `{ kind: "vanished", viewerId, at }` (at: ms since
 * the epoch), `{ kind: "report", report }` (the attacks are over; the worker idles until
 * terminated) or `{ kind: "failed", error }`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createCaHttpClient, KvsClient } from "../src/aws/kvs_client.ts";
import { StaticCredentialProvider } from "../src/credentials/static.ts";
import { candidatePorts, connectWeriftViewer } from "./werift_viewer.ts";

/** What the attackers need, and how hard they push. */
export interface HostileConfig {
  region: string;
  controlPlaneUrl: string;
  /** The emulator's plain-HTTP control plane (signaling over ws://). */
  browserControlPlaneUrl: string;
  caCertPath: string;
  viewerCredentials: { accessKeyId: string; secretAccessKey: string };
  channelArn: string;
  /** Attack for this long at most. */
  seconds: number;
  /** New flooding client ids a second (default 22). */
  offersPerSecond?: number;
  /** One vanishing viewer every this many ms (default 3000). */
  vanishEveryMs?: number;
  /** Spray datagrams a second, every kind together (default 1000). */
  sprayPerSecond?: number;
  /** Forged DTLS records a second (default 100). */
  dtlsPerSecond?: number;
  /** Which attacks run (default all). */
  attacks?: ("flood" | "vanish" | "spray" | "dtls")[];
}

/** What the attackers did and saw. */
export interface HostileReport {
  seconds: number;
  flood: {
    clients: number;
    offersSent: number;
    offersPerSecond: number;
    newClientIdsPerSecond: number;
    /** Answers accepting the offer (video section with a port). */
    answered: number;
    /** Answers refusing it (every section rejected, `i=refused: …`). */
    refused: number;
    /**
     * Offers with no reply while their client waited (400 ms for the first reply, 100 ms more
     * for others): over the client's budget (dropped), replaced by the same client's next offer
     * before they were answered, or answered late.
     */
    noReply: number;
    /** Of those, offers of clients that sent only one. */
    noReplyToSingleOffers: number;
    /** Connections the signaling service refused (10 viewer connections per channel). */
    connectRefused: number;
    /** Connections not open within 3 s (closed once they open). */
    connectSlow: number;
    /** STATUS_RESPONSE errors from the signaling service. */
    statusErrors: number;
    /** Offer sent → answer, ms (median, max). */
    answerMs: { median: number; max: number };
  };
  vanishing: { started: number; vanished: number; failed: number };
  spray: { datagrams: number; byKind: Record<string, number>; sendErrors: number };
  forgedDtls: {
    datagrams: number;
    byKind: Record<string, number>;
    openssl: { runs: number; handshakesCompleted: number; available: boolean };
  };
  /** Ports attacked: learned from the attackers' own answers, and the honest viewers'. */
  portsAttacked: { own: number; honest: number };
  /** Unexpected failures of the attackers themselves (first few). */
  errors: string[];
}

const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const pick = <T>(a: readonly T[]): T => a[Math.floor(Math.random() * a.length)];

let stopping = false;
const honestPorts = new Set<number>();
/** Ports learned from our own answers: port → when learned, and the USERNAME of checks there. */
const ownPorts = new Map<number, { until: number; username?: string }>();
const attackedOwn = new Set<number>();
const attackedHonest = new Set<number>();
const errors: string[] = [];
const fail = (what: string, e: unknown) => {
  const message = e instanceof Error || e instanceof ErrorEvent ? e.message : String(e);
  if (errors.length < 8) errors.push(`${what}: ${message}`);
};

/**
 * Own ports worth attacking: those whose sessions should still be there (a flooding offer's until
 * newer offers push it out of the admission queue, about a second at 20 offers a second; a
 * vanished viewer's for the 8 s before the master notices). Later the port may belong to another
 * socket on this host, a werift viewer's even.
 */
function ownTargets(): { port: number; username?: string }[] {
  const now = performance.now();
  const out = [];
  for (const [port, t] of ownPorts) {
    if (now > t.until) ownPorts.delete(port);
    else out.push({ port, username: t.username });
  }
  return out;
}

/** One target: half the time an honest viewer's port (if known), else one of our own. */
function target(): { port: number; username?: string; honest: boolean } | undefined {
  const own = ownTargets();
  const honest = [...honestPorts];
  if (honest.length > 0 && (own.length === 0 || Math.random() < 0.5)) {
    const port = pick(honest);
    attackedHonest.add(port);
    return { port, honest: true };
  }
  if (own.length === 0) return undefined;
  const t = pick(own);
  attackedOwn.add(t.port);
  return { ...t, honest: false };
}

/** Remember the ports of an answer, with the STUN USERNAME its checks would carry. */
function learn(answer: string, offerUfrag: string | undefined): void {
  const ufrag = answer.match(/a=ice-ufrag:(\S+)/)?.[1];
  const username = ufrag && offerUfrag ? `${ufrag}:${offerUfrag}` : undefined;
  for (const port of candidatePorts(answer)) {
    ownPorts.set(port, { until: performance.now() + 1500, username });
  }
  while (ownPorts.size > 64) ownPorts.delete(ownPorts.keys().next().value!);
}

// ---------------------------------------------------------------------------------------------
// Offer flood

async function flood(config: HostileConfig, until: number) {
  // Signaling over ws://, the emulator's endpoint for browsers: over wss:// with a Deno HTTP
  // client, a few connections closed in the middle of a long flood stayed open on the client's
  // side (and counted among the channel's 10) until the process let them go.
  const kvs = new KvsClient({
    region: config.region,
    credentials: new StaticCredentialProvider(config.viewerCredentials),
    endpoint: config.browserControlPlaneUrl,
  });
  const offerSdp = (await Deno.readTextFile(
    new URL("../tests/fixtures/chromium_offer.sdp", import.meta.url),
  )).split("\r\n").filter((l) => !l.startsWith("a=candidate:")).join("\r\n");
  const offerUfrag = offerSdp.match(/a=ice-ufrag:(\S+)/)?.[1];
  const stats = {
    clients: 0,
    offersSent: 0,
    answered: 0,
    refused: 0,
    noReply: 0,
    noReplyToSingleOffers: 0,
    connectRefused: 0,
    connectSlow: 0,
    statusErrors: 0,
    answerMs: [] as number[],
  };
  const ep = await kvs.getSignalingChannelEndpoint(config.channelArn, "VIEWER");
  const interval = 1000 / (config.offersPerSecond ?? 22);
  const message = JSON.stringify({
    action: "SDP_OFFER",
    recipientClientId: "",
    messagePayload: Buffer.from(JSON.stringify({ type: "offer", sdp: offerSdp })).toString(
      "base64",
    ),
  });
  let open = 0;
  const running = new Set<Promise<void>>();
  const started = performance.now();
  const one = async (i: number) => {
    const offers = i % 10 === 0 ? 5 : 1;
    let replies = 0;
    let sentAt = 0;
    let ws: WebSocket;
    try {
      const url = await kvs.presignSignalingUrl(ep.wss, config.channelArn, `flood-${i}`);
      ws = new WebSocket(url);
    } catch (e) {
      stats.connectRefused++;
      fail("flood presign", e);
      return;
    }
    const closed = new Promise<void>((r) => ws.addEventListener("close", () => r()));
    // Wait for the first reply, then briefly for more (a client sending several offers gets
    // fewer answers: some are over its budget, some replaced by its next offer).
    let replied = () => {};
    const firstReply = new Promise<void>((r) => replied = r);
    ws.onmessage = (ev) => {
      try {
        const msg = JSON.parse(String(ev.data));
        if (msg.messageType === "STATUS_RESPONSE") stats.statusErrors++;
        if (msg.messageType !== "SDP_ANSWER") return;
        const sdp = String(JSON.parse(Buffer.from(msg.messagePayload, "base64").toString()).sdp);
        if (/^i=refused/m.test(sdp) || !/^m=video [1-9]/m.test(sdp)) stats.refused++;
        else {
          stats.answered++;
          stats.answerMs.push(performance.now() - sentAt);
          learn(sdp, offerUfrag);
        }
        if (++replies === 1) replied();
      } catch (e) {
        fail("flood reply", e);
      }
    };
    const opened = await new Promise<"open" | "refused" | "slow">((resolve) => {
      ws.onopen = () => resolve("open");
      ws.onerror = () => resolve("refused");
      setTimeout(() => resolve("slow"), 3000);
    });
    if (opened === "slow") {
      // Closing a socket still connecting can leave its connection open (and counted by the
      // service): close it once it opens instead.
      stats.connectSlow++;
      ws.onopen = () => ws.close();
      await Promise.race([closed, sleep(10_000)]);
      return;
    }
    if (opened === "open") {
      sentAt = performance.now();
      for (let k = 0; k < offers; k++) ws.send(message);
      stats.offersSent += offers;
      await Promise.race([firstReply.then(() => sleep(offers > 1 ? 100 : 0)), sleep(400)]);
      stats.noReply += Math.max(0, offers - replies);
      if (offers === 1 && replies === 0) stats.noReplyToSingleOffers++;
    } else {
      stats.connectRefused++;
    }
    ws.onmessage = null;
    try {
      ws.close();
    } catch { /* never opened */ }
    // The service counts the connection until its close completes.
    await Promise.race([closed, sleep(2000)]);
  };
  for (let i = 0; performance.now() < until && !stopping; i++) {
    await sleep(started + i * interval - performance.now());
    while (open >= 3 && performance.now() < until && !stopping) await sleep(5);
    if (performance.now() >= until || stopping) break;
    open++;
    stats.clients++;
    const p = one(i).catch((e) => fail("flood", e)).finally(() => {
      open--;
      running.delete(p);
    });
    running.add(p);
  }
  await Promise.all(running);
  return { ...stats, seconds: (performance.now() - started) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// Vanishing viewers

async function vanishing(
  config: HostileConfig,
  kvs: KvsClient,
  http: Deno.HttpClient,
  until: number,
) {
  const stats = { started: 0, vanished: 0, failed: 0 };
  const every = config.vanishEveryMs ?? 3000;
  for (let i = 0; performance.now() < until && !stopping; i++) {
    const slot = performance.now() + every;
    const viewerId = `vanish-${i}`;
    stats.started++;
    try {
      const v = await connectWeriftViewer(kvs, http, config.channelArn, viewerId);
      const end = performance.now() + 10_000;
      while ((v.packets < 5 || !v.connected()) && performance.now() < end && !stopping) {
        await sleep(20);
      }
      if (v.packets >= 5 && v.connected()) {
        await v.vanish();
        for (const port of v.masterPorts) ownPorts.set(port, { until: performance.now() + 7000 });
        stats.vanished++;
        scope.postMessage({ kind: "vanished", viewerId, at: Date.now() });
      } else {
        stats.failed++;
        await v.close();
      }
    } catch (e) {
      stats.failed++;
      fail(`vanishing viewer ${viewerId}`, e);
    }
    await sleep(Math.min(slot, until) - performance.now());
  }
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Datagrams

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A STUN message with attributes; MESSAGE-INTEGRITY (bogus) and a correct FINGERPRINT. */
function stun(type: number, attrs: [number, Uint8Array][]): Uint8Array {
  const parts: number[] = [];
  const header = (len: number) => {
    const h = new Uint8Array(20);
    const v = new DataView(h.buffer);
    v.setUint16(0, type);
    v.setUint16(2, len);
    v.setUint32(4, 0x2112a442);
    h.set(random(12), 8);
    return h;
  };
  for (const [t, value] of attrs) {
    parts.push(t >> 8, t & 0xff, value.length >> 8, value.length & 0xff, ...value);
    while (parts.length % 4) parts.push(0);
  }
  parts.push(0x00, 0x08, 0x00, 0x14, ...random(20)); // MESSAGE-INTEGRITY, not keyed by anything
  const withFp = parts.length + 8;
  const h = header(withFp);
  const body = new Uint8Array(20 + withFp);
  body.set(h);
  body.set(parts, 20);
  const fp = (crc32(body.subarray(0, 20 + parts.length)) ^ 0x5354554e) >>> 0;
  body.set(
    [0x80, 0x28, 0x00, 0x04, fp >>> 24, (fp >>> 16) & 0xff, (fp >>> 8) & 0xff, fp & 0xff],
    20 + parts.length,
  );
  return body;
}

const u32 = (n: number) =>
  new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
const text = (s: string) => new TextEncoder().encode(s);
const randomUfrag = () => btoa(String.fromCharCode(...random(6))).replace(/[+/=]/g, "x");

/** Spray kinds: what a datagram looks like, for a target. */
const SPRAY: Record<string, (t: { username?: string }) => Uint8Array> = {
  random: () => random(1 + Math.floor(Math.random() * 1200)),
  stunBindingRequest: (t) =>
    stun(0x0001, [
      [0x0006, text(t.username ?? `${randomUfrag()}:${randomUfrag()}`)],
      [0x0024, u32(0x6e001eff)],
      [0x802a, random(8)],
      [0x0025, new Uint8Array(0)],
    ]),
  stunSuccessResponse: () =>
    stun(0x0101, [[0x0020, new Uint8Array([0, 1, 0x21 ^ 0x12, 0x34, ...random(4)])]]),
  rtp: () => {
    const p = new Uint8Array(12 + 100 + Math.floor(Math.random() * 1000));
    p.set(random(p.length));
    p[0] = 0x80;
    p[1] = 96 + Math.floor(Math.random() * 32) | (Math.random() < 0.1 ? 0x80 : 0);
    return p;
  },
  rtcp: () => {
    // A PLI, a NACK for 17 packets or a receiver report, in the clear, with a made-up SRTCP
    // index and tag behind it.
    const kind = pick([[0x81, 206, 2], [0x81, 205, 3], [0x81, 201, 7]] as const);
    const p = new Uint8Array(4 + 4 * kind[2] + 14);
    p.set(random(p.length));
    p[0] = kind[0];
    p[1] = kind[1];
    p[2] = 0;
    p[3] = kind[2];
    return p;
  },
  dtlsLookalike: () => {
    const body = random(13 + Math.floor(Math.random() * 300));
    body[0] = 20 + Math.floor(Math.random() * 4);
    body[1] = 0xfe;
    body[2] = 0xfd;
    return body;
  },
};

/** A DTLS 1.2 record. */
function record(type: number, epoch: number, seq: number, body: Uint8Array): Uint8Array {
  const r = new Uint8Array(13 + body.length);
  r.set([type, 0xfe, 0xfd, epoch >> 8, epoch & 0xff, 0, 0, 0, 0, seq >> 8, seq & 0xff]);
  r[11] = body.length >> 8;
  r[12] = body.length & 0xff;
  r.set(body, 13);
  return r;
}

/** A DTLS 1.2 ClientHello as WebRTC stacks send it (use_srtp, P-256/X25519, EMS). */
function clientHello(cookie = new Uint8Array(0), fragment?: { offset: number; total: number }) {
  const ext = (type: number, data: number[]) => [type >> 8, type & 0xff, 0, data.length, ...data];
  const extensions = [
    ...ext(0x000e, [0, 4, 0x00, 0x01, 0x00, 0x07, 0]), // use_srtp: AES_CM_SHA1_80, AEAD_AES_128_GCM
    ...ext(0x000a, [0, 4, 0x00, 0x17, 0x00, 0x1d]), // supported_groups
    ...ext(0x000b, [1, 0]), // ec_point_formats
    ...ext(0x000d, [0, 4, 0x04, 0x03, 0x08, 0x04]), // signature_algorithms
    ...ext(0x0017, []), // extended_master_secret
    ...ext(0xff01, [0]), // renegotiation_info
  ];
  const suites = [0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x0a, 0xc0, 0x14];
  const body = [
    0xfe,
    0xfd,
    ...random(32),
    0,
    cookie.length,
    ...cookie,
    0,
    suites.length,
    ...suites,
    1,
    0,
    extensions.length >> 8,
    extensions.length & 0xff,
    ...extensions,
  ];
  const total = fragment?.total ?? body.length;
  const offset = fragment?.offset ?? 0;
  const hs = [
    1,
    total >> 16,
    (total >> 8) & 0xff,
    total & 0xff,
    0,
    0,
    offset >> 16,
    (offset >> 8) & 0xff,
    offset & 0xff,
    body.length >> 16,
    (body.length >> 8) & 0xff,
    body.length & 0xff,
    ...body,
  ];
  return record(22, 0, Math.floor(Math.random() * 4), new Uint8Array(hs));
}

const DTLS: Record<string, () => Uint8Array> = {
  clientHello: () => clientHello(),
  clientHelloWithCookie: () => clientHello(random(32)),
  // A fragment claiming a 16 MB message, or lying about its offset.
  clientHelloFragmentHuge: () => clientHello(new Uint8Array(0), { offset: 0, total: 0xffffff }),
  clientHelloFragmentBadOffset: () =>
    clientHello(new Uint8Array(0), { offset: 0xfff000, total: 0xffffff }),
  alertFatal: () => record(21, 0, 1, new Uint8Array([2, 40])),
  alertCloseNotify: () => record(21, 0, 1, new Uint8Array([1, 0])),
  changeCipherSpec: () => record(20, 0, 2, new Uint8Array([1])),
  epoch1Handshake: () => record(22, 1, 0, random(48)),
  epoch1ApplicationData: () => record(23, 1, 1 + Math.floor(Math.random() * 1000), random(64)),
};

async function spray(
  perSecond: number,
  kinds: Record<string, (t: { username?: string }) => Uint8Array>,
  until: number,
) {
  const byKind: Record<string, number> = Object.fromEntries(Object.keys(kinds).map((k) => [k, 0]));
  let datagrams = 0;
  let sendErrors = 0;
  const sockets = Array.from(
    { length: 4 },
    () => Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" }),
  );
  const names = Object.keys(kinds);
  const started = performance.now();
  try {
    while (performance.now() < until && !stopping) {
      const due = Math.floor(((performance.now() - started) / 1000) * perSecond) - datagrams;
      const sends: Promise<unknown>[] = [];
      for (let k = 0; k < due; k++) {
        const t = target();
        if (!t) {
          datagrams++; // nothing known yet: count it as a skipped slot
          continue;
        }
        const name = names[(datagrams + k) % names.length];
        const bytes = kinds[name](t);
        byKind[name]++;
        sends.push(
          pick(sockets).send(bytes, { transport: "udp", hostname: "127.0.0.1", port: t.port })
            .catch(() => sendErrors++),
        );
        datagrams++;
      }
      await Promise.all(sends);
      await sleep(10);
    }
  } finally {
    for (const s of sockets) s.close();
  }
  const sent = Object.values(byKind).reduce((a, b) => a + b, 0);
  return { datagrams: sent, byKind, sendErrors };
}

/** `openssl s_client -dtls1_2` against a target every 2 s, each given 3 s. */
async function opensslClients(until: number) {
  const stats = { runs: 0, handshakesCompleted: 0, available: true };
  while (performance.now() < until && !stopping) {
    const t = target();
    if (t) {
      try {
        const out = await new Deno.Command("openssl", {
          args: ["s_client", "-dtls1_2", "-connect", `127.0.0.1:${t.port}`],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(3000),
        }).output();
        stats.runs++;
        const printed = new TextDecoder().decode(out.stdout);
        if (/Cipher is (?!\(NONE\))/.test(printed)) stats.handshakesCompleted++;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          stats.available = false;
          break;
        }
        fail("openssl", e);
      }
    }
    await sleep(2000);
  }
  return stats;
}

// ---------------------------------------------------------------------------------------------

async function run(config: HostileConfig): Promise<HostileReport> {
  const started = performance.now();
  const until = started + config.seconds * 1000;
  const http = await createCaHttpClient(config.caCertPath);
  const kvs = new KvsClient({
    region: config.region,
    credentials: new StaticCredentialProvider(config.viewerCredentials),
    endpoint: config.controlPlaneUrl,
    httpClient: http,
  });
  const on = new Set(config.attacks ?? ["flood", "vanish", "spray", "dtls"]);
  const [f, v, s, d, o] = await Promise.all([
    flood(config, on.has("flood") ? until : 0),
    vanishing(config, kvs, http, on.has("vanish") ? until : 0),
    spray(config.sprayPerSecond ?? 1000, SPRAY, on.has("spray") ? until : 0),
    spray(config.dtlsPerSecond ?? 100, DTLS, on.has("dtls") ? until : 0),
    opensslClients(on.has("dtls") ? until : 0),
  ]);
  http.close();
  const ms = f.answerMs.sort((a, b) => a - b);
  return {
    seconds: (performance.now() - started) / 1000,
    flood: {
      clients: f.clients,
      offersSent: f.offersSent,
      offersPerSecond: Number((f.offersSent / Math.max(f.seconds, 0.001)).toFixed(1)),
      newClientIdsPerSecond: Number((f.clients / Math.max(f.seconds, 0.001)).toFixed(1)),
      answered: f.answered,
      refused: f.refused,
      noReply: f.noReply,
      noReplyToSingleOffers: f.noReplyToSingleOffers,
      connectRefused: f.connectRefused,
      connectSlow: f.connectSlow,
      statusErrors: f.statusErrors,
      answerMs: {
        median: Number((ms[Math.floor(ms.length / 2)] ?? 0).toFixed(1)),
        max: Number((ms.at(-1) ?? 0).toFixed(1)),
      },
    },
    vanishing: v,
    spray: s,
    forgedDtls: { datagrams: d.datagrams, byKind: d.byKind, openssl: o },
    portsAttacked: { own: attackedOwn.size, honest: attackedHonest.size },
    errors,
  };
}

scope.onmessage = (e: MessageEvent) => {
  const msg = e.data as
    | { kind: "hello" }
    | { kind: "start"; config: HostileConfig }
    | { kind: "honest"; ports: number[] }
    | { kind: "stop" };
  if (msg.kind === "hello") scope.postMessage({ kind: "ready" });
  else if (msg.kind === "start") {
    run(msg.config).then(
      (report) => {
        // Stay, idle, until the soak has read its figures: let go of what the attacks used.
        (globalThis as { gc?: () => void }).gc?.();
        scope.postMessage({ kind: "report", report });
      },
      (err) => scope.postMessage({ kind: "failed", error: String(err?.stack ?? err) }),
    );
  } else if (msg.kind === "honest") {
    honestPorts.clear();
    for (const p of msg.ports) honestPorts.add(p);
  } else if (msg.kind === "stop") {
    stopping = true;
  }
};
