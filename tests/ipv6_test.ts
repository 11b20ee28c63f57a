// Dual-stack sessions: a headless Chromium viewer that offers (and is offered) only IPv6
// candidates plays the video over an IPv6 pair on the master's ::1 socket; a STUN server and a
// TURN server (the real coturn) at IPv6 addresses are reached through a session's IPv6 socket;
// sendmmsg batches to IPv6 destinations. Everything on loopback.
import assert from "node:assert/strict";
import { startDemo } from "../cli/demo.ts";
import { createLogger, type LogRecord } from "../src/log.ts";
import { ensurePki } from "../src/emulator/pki.ts";
import { hasTurnServer, startTurnServer } from "../src/emulator/turn.ts";
import { usableIPv6Host } from "../src/peer/ip.ts";
import type { IceCandidateInit, PeerSession, PeerSessionOptions } from "../src/peer/types.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";
import { launchBrowser } from "./support/browser.ts";
import { until } from "./support/until.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;

/** Whether ::1 can be bound (IPv6 enabled here). */
function hasIPv6Loopback(): boolean {
  try {
    Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" }).close();
    return true;
  } catch {
    return false;
  }
}

const IPV6 = hasIPv6Loopback();
/**
 * Chromium gathers candidates on the machine's interfaces, not on `lo`: it needs an IPv6
 * address there (global or unique-local) to offer IPv6 host candidates. Its packets to ::1 stay
 * on the machine.
 */
const BROWSER_IPV6 = IPV6 &&
  Deno.networkInterfaces().some((i) => i.family === "IPv6" && usableIPv6Host(i.address));

/**
 * Runs in the page before its scripts: `RTCPeerConnection` with every IPv4 candidate taken out
 * of what the page sends (its offer, its trickled candidates) and of what it is given (our
 * answer, our trickled candidates), so that only IPv6 pairs can form. Kept in `__ipv6`.
 */
const IPV6_ONLY_PAGE = `(() => {
  const Native = globalThis.RTCPeerConnection;
  const v4 = /^(a=)?candidate:\\S+ \\d+ \\S+ \\d+ \\d{1,3}(\\.\\d{1,3}){3} /i;
  const strip = (sdp) => sdp.split("\\r\\n").filter((l) => !v4.test(l)).join("\\r\\n");
  const state = { pcs: [], sent: [], dropped: 0 };
  globalThis.__ipv6 = state;
  class IPv6Only extends Native {
    constructor(...args) {
      super(...args);
      state.pcs.push(this);
      this.addEventListener("icecandidate", (e) => {
        if (!e.candidate?.candidate) return;
        if (v4.test(e.candidate.candidate)) {
          state.dropped++;
          e.stopImmediatePropagation();
        } else state.sent.push(e.candidate.candidate);
      });
    }
    get localDescription() {
      const d = super.localDescription;
      return d && new RTCSessionDescription({ type: d.type, sdp: strip(d.sdp) });
    }
    setRemoteDescription(d) {
      return super.setRemoteDescription(d && { type: d.type, sdp: strip(d.sdp) });
    }
    addIceCandidate(c) {
      if (c?.candidate && v4.test(c.candidate)) {
        state.dropped++;
        return Promise.resolve();
      }
      return super.addIceCandidate(c);
    }
  }
  globalThis.RTCPeerConnection = IPv6Only;
})();`;

/** The browser's selected candidate pair, from getStats. */
interface BrowserPair {
  local: { address: string; port: number; candidateType: string };
  remote: { address: string; port: number; candidateType: string };
  bytesReceived: number;
  sent: string[];
}

Deno.test({
  name: "dual stack: Chromium offering only IPv6 candidates plays over an IPv6 pair on ::1",
  ignore: !BROWSER_IPV6,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const records: LogRecord[] = [];
    const demo = await startDemo({
      loopbackOnly: true,
      stateDir: STATE,
      channel: `ipv6-${crypto.randomUUID().slice(0, 8)}`,
      peerSessionFactory: new WasmPeerSessionFactory({ loopbackOnly: true }),
      logger: createLogger({ level: "debug", sink: (r) => records.push(r), component: "ipv6" }),
      turn: false,
    });
    // Raw addresses in the candidates (not mDNS names), so the page can tell the families apart.
    const browser = await launchBrowser({
      args: ["--disable-features=LocalNetworkAccessChecks,WebRtcHideLocalIpsWithMdns"],
    });
    try {
      await demo.master.waitForState("Connected", 15_000);
      const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
      const v = await browser.openViewer({
        pageUrl: demo.pageUrl,
        params,
        initScript: IPV6_ONLY_PAGE,
      });
      try {
        const s = await v.waitFor((x) => x.framesDecoded >= 10 && x.width > 0, 20_000, "frames");
        assert.equal(s.codec, "H264");
        // Our side: the nominated pair is the IPv6 socket and an IPv6 address of the viewer.
        const ours = demo.master.viewers().find((x) => x.viewerId === s.clientId);
        assert.ok(ours, "the master lists the viewer");
        assert.match(ours.selectedPair ?? "", /^host -> (host|prflx) \[[0-9a-f:]+\]:\d+$/);
        assert.equal(ours.sendErrors, 0);
        // The browser's side: its selected pair is IPv6 at both ends, ours on ::1.
        const pair = await v.page.evaluate(`(async () => {
          const pc = globalThis.__ipv6.pcs[0];
          const report = await pc.getStats();
          let pair;
          for (const r of report.values()) {
            if (r.type === "transport" && r.selectedCandidatePairId) {
              pair = report.get(r.selectedCandidatePairId);
            }
          }
          const pick = (c) => ({ address: c.address, port: c.port, candidateType: c.candidateType });
          return {
            local: pick(report.get(pair.localCandidateId)),
            remote: pick(report.get(pair.remoteCandidateId)),
            bytesReceived: pair.bytesReceived,
            sent: globalThis.__ipv6.sent,
          };
        })()`) as BrowserPair;
        assert.ok(pair.sent.length > 0, "the page trickled IPv6 candidates");
        assert.ok(pair.sent.every((c) => c.split(" ")[4].includes(":")), pair.sent.join("\n"));
        assert.ok(pair.local.address.includes(":"), `browser side ${pair.local.address}`);
        assert.equal(pair.remote.address, "::1");
        assert.equal(pair.remote.candidateType, "host");
        assert.ok(pair.bytesReceived > 10_000, `${pair.bytesReceived} bytes on the pair`);
        const viewerAddress = ours.selectedPair!.match(/\[([0-9a-f:]+)\]:(\d+)$/)!;
        assert.equal(Number(viewerAddress[2]), pair.local.port, "both name the same pair");
        console.log(`IPv6 pair: ${s.selectedPair}; ours: ${ours.selectedPair}`);
      } finally {
        await v.close();
      }
      const warnings = records.filter((r) => r.level === "warn" || r.level === "error")
        .filter((r) => /Viewer|UDP|IPv6/.test(r.message));
      assert.deepEqual(warnings.map((r) => r.message), [], "no session warnings");
    } finally {
      await browser.close();
      await demo.close();
    }
  },
});

/** A session's options with its local candidates and logs collected. */
function sessionOptions(iceServers: PeerSessionOptions["iceServers"]) {
  const local: string[] = [];
  const logs: LogRecord[] = [];
  const options: PeerSessionOptions = {
    viewerId: "ipv6-viewer",
    iceServers,
    logger: createLogger({ level: "debug", sink: (r) => logs.push(r), component: "ipv6" }),
    callbacks: {
      onLocalCandidate: (c: IceCandidateInit) => local.push(c.candidate ?? ""),
      onStateChange() {},
      onKeyframeRequest() {},
      onClosed() {},
    },
  };
  return { options, local, logs };
}

const offer = () =>
  Deno.readTextFile(new URL("fixtures/offers/chromium_video.sdp", import.meta.url));

/** The answer's host candidates as `ip port`. */
function hostCandidates(answer: string): string[] {
  return [...answer.matchAll(/^a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host/gm)]
    .map((m) => `${m[1]} ${m[2]}`);
}

/**
 * A STUN server on [::1] that answers every Binding request as if it saw the client at
 * `[2001:db8::7]:41000` (behind a translator), and records where requests came from.
 */
function fakeStunServer() {
  const socket = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
  const from: Deno.NetAddr[] = [];
  const mapped = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 7];
  (async () => {
    for (;;) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await socket.receive();
      } catch {
        return;
      }
      const [req, addr] = got;
      if (req.length < 20 || req[0] !== 0 || req[1] !== 1) continue;
      from.push(addr as Deno.NetAddr);
      // Binding success with XOR-MAPPED-ADDRESS (IPv6): port and address XORed with the magic
      // cookie and the transaction id.
      const res = new Uint8Array(20 + 24);
      res.set([0x01, 0x01, 0, 24], 0);
      res.set(req.subarray(4, 20), 4); // cookie + transaction id
      res.set([0x00, 0x20, 0, 20, 0, 2], 20);
      const port = 41000 ^ 0x2112;
      res.set([port >> 8, port & 255], 26);
      for (let i = 0; i < 16; i++) res[28 + i] = mapped[i] ^ req[4 + i];
      await socket.send(res, addr).catch(() => {});
    }
  })();
  return { port: (socket.addr as Deno.NetAddr).port, from, close: () => socket.close() };
}

Deno.test({
  name: "dual stack: a STUN server at [::1] is asked through the IPv6 socket (srflx candidate)",
  ignore: !IPV6,
  fn: async () => {
    const stun = fakeStunServer();
    const { options, local, logs } = sessionOptions([{ urls: [`stun:[::1]:${stun.port}`] }]);
    let session: PeerSession | undefined;
    try {
      session = await new WasmPeerSessionFactory({ loopbackOnly: true }).create(options);
      const answer = await session.acceptOffer(await offer());
      const hosts = hostCandidates(answer);
      assert.equal(hosts.length, 2, hosts.join(", "));
      assert.match(hosts[0], /^127\.0\.0\.1 \d+$/);
      assert.match(hosts[1], /^::1 \d+$/);
      const port6 = Number(hosts[1].split(" ")[1]);
      await until(() => local.some((c) => c.includes("typ srflx")), "an srflx candidate", 5000);
      assert.deepEqual(
        local.map((c) => c.replace(/^candidate:\S+ 1 udp \d+ /, "")),
        [`2001:db8::7 41000 typ srflx raddr ::1 rport ${port6} generation 0`],
      );
      assert.deepEqual(
        [...new Set(stun.from.map((a) => `${a.hostname} ${a.port}`))],
        [`::1 ${port6}`],
        "asked from the IPv6 socket",
      );
      assert.deepEqual(logs.filter((r) => r.level === "warn").map((r) => r.message), []);
    } finally {
      session?.close();
      stun.close();
    }
  },
});

Deno.test({
  name: "dual stack: coturn at [::1] grants relays over UDP and TCP",
  ignore: !IPV6 || !(await hasTurnServer()),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const pki = await ensurePki(STATE);
    const turn = await startTurnServer({
      certPath: pki.serverCertPath,
      keyPath: pki.serverKeyPath,
      ipv6: true,
    });
    const { username, password } = await turn.credentials("ipv6-viewer", 300);
    const { options, local, logs } = sessionOptions([{
      urls: [`turn:[::1]:${turn.port}?transport=udp`, `turn:[::1]:${turn.port}?transport=tcp`],
      username,
      credential: password,
    }]);
    let session: PeerSession | undefined;
    try {
      session = await new WasmPeerSessionFactory({
        loopbackOnly: true,
        iceTransportPolicy: "relay",
      })
        .create(options);
      const answer = await session.acceptOffer(await offer());
      assert.deepEqual(hostCandidates(answer), [], "relay-only: no host candidates");
      await until(
        () => local.filter((c) => c.includes("typ relay")).length === 2,
        // A loaded machine (the whole suite in parallel) has taken over 10 s here.
        "two relay candidates",
        30_000,
      );
      for (const c of local) {
        // Allocations are IPv4 (coturn relays on 127.0.0.1); the server was reached over IPv6.
        assert.match(c, /^candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ relay /, c);
      }
      assert.deepEqual(logs.filter((r) => r.level === "warn").map((r) => r.message), []);
    } finally {
      session?.close();
      await turn.close();
    }
  },
});

Deno.test({
  name: "dual stack: without IPv6 the session stays IPv4-only and says so at debug level",
  fn: async () => {
    const { options, logs } = sessionOptions([
      { urls: ["stun:[::1]:3478"] },
      { urls: ["turn:[::1]:3478?transport=tcp"], username: "u", credential: "p" },
    ]);
    // A host whose IPv6 socket cannot be bound: binding "::1" is made to fail.
    const listen = Deno.listenDatagram;
    const refuse = ((o: Deno.UdpListenOptions & { transport: "udp" }) => {
      if (o.hostname?.includes(":")) throw new Deno.errors.AddrNotAvailable("IPv6 is off");
      return listen(o);
    }) as typeof Deno.listenDatagram;
    Deno.listenDatagram = refuse;
    let session: PeerSession | undefined;
    try {
      session = await new WasmPeerSessionFactory({ loopbackOnly: true }).create(options);
    } finally {
      Deno.listenDatagram = listen;
    }
    try {
      const answer = await session.acceptOffer(await offer());
      assert.deepEqual(hostCandidates(answer).map((h) => h.split(" ")[0]), ["127.0.0.1"]);
      session.addRemoteCandidate({ candidate: "candidate:9 1 udp 2122262783 ::1 5000 typ host" });
      await until(() => logs.some((r) => /ICE server stun:\[::1\]/.test(r.message)), "log", 5000);
      const lines = logs.map((r) => `${r.level} ${r.message}`);
      assert.ok(
        lines.some((l) => /^debug .*no IPv6 socket \(::1: IPv6 is off\)/.test(l)),
        lines.join("\n"),
      );
      assert.ok(
        lines.some((l) =>
          /^debug .*candidate not used: IPv6 \(this session has no IPv6 socket/.test(l)
        ),
        lines.join("\n"),
      );
      assert.ok(lines.some((l) => /^debug .*stun:\[::1\]:3478 not used: no IPv6 socket/.test(l)));
      await until(
        () => logs.some((r) => /turn:\[::1\]:3478\?transport=tcp not used/.test(r.message)),
        "turn",
        5000,
      );
      assert.deepEqual(logs.filter((r) => r.level !== "debug").map((r) => r.message), []);
    } finally {
      session.close();
    }
  },
});

Deno.test("dual stack: IPv6 in ICE server URLs, interface addresses and answers", async () => {
  const { parseIceUrl } = await import("../src/peer/ice_servers.ts");
  const { ipv6Bytes } = await import("../src/peer/ip.ts");
  const { parseOffer, writeAnswer } = await import("../src/peer/sdp.ts");
  assert.deepEqual(parseIceUrl("stun:[::1]:3478"), {
    kind: "stun",
    secure: false,
    host: "::1",
    port: 3478,
    transport: "udp",
  });
  assert.deepEqual(parseIceUrl("turn:[2001:db8::5]?transport=tcp"), {
    kind: "turn",
    secure: false,
    host: "2001:db8::5",
    port: 3478,
    transport: "tcp",
  });
  for (const bad of ["stun:::1", "stun:[::1", "stun:[nope]:3478", "turn:[1:2:3:4:5:6:7:8:9]"]) {
    assert.equal(parseIceUrl(bad), undefined, bad);
  }
  assert.deepEqual([...ipv6Bytes("2001:db8::1")!], [32, 1, 13, 184, ...Array(11).fill(0), 1]);
  assert.deepEqual([...ipv6Bytes("::ffff:192.0.2.1")!.subarray(10)], [255, 255, 192, 0, 2, 1]);
  for (const bad of ["", "1.2.3.4", ":::", "1::2::3", "fe80::1%eth0", "12345::1"]) {
    assert.equal(ipv6Bytes(bad), undefined, bad);
  }
  assert.deepEqual(
    ["2001:db8::7", "fd00::2", "fe80::1", "febf::1", "::1", "::", "::ffff:192.0.2.1"]
      .map((a) => usableIPv6Host(a)),
    [true, true, false, false, false, false, false],
  );
  assert.equal(usableIPv6Host("::1", true), true);
  const answer = writeAnswer(parseOffer(await offer()), {
    ufrag: "abcd",
    pwd: "0123456789abcdefghijkl",
    fingerprint: "sha-256 " + Array(32).fill("AB").join(":"),
    ssrc: 1,
    hosts: ["192.0.2.10:5000", "[2001:db8::7]:5001"],
  });
  assert.deepEqual(hostCandidates(answer), ["192.0.2.10 5000", "2001:db8::7 5001"]);
});
