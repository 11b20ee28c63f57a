// The product end to end, as `deno task demo` runs it: the emulator (IoT over mutual TLS,
// SigV4-verified control plane and signaling, coturn), our master streaming the samples, and
// the viewer page (official KVS JS SDK) decoding H.264 in headless Chromium.
import assert from "node:assert/strict";
import { type Demo, startDemo } from "../cli/demo.ts";
import { WeriftSessionFactory } from "./support/werift_session.ts";
import {
  launchBrowser,
  type TestBrowser,
  type ViewerPage,
  type ViewerStatus,
} from "./support/browser.ts";
import { createLogger } from "../src/log.ts";
import { FirstFrames } from "./support/first_frames.ts";
import { until } from "./support/until.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;

/** Sessions on werift (the reference) instead of the WASM core: `KVS_E2E_SESSIONS=werift`. */
const WERIFT = Deno.env.get("KVS_E2E_SESSIONS") === "werift";

async function playing(v: ViewerPage, frames: number, what: string): Promise<ViewerStatus> {
  return await v.waitFor((s) => s.framesDecoded >= frames && s.width > 0, 20_000, what);
}

/**
 * Open a viewer and wait until it plays. With werift sessions only: werift keeps sending on the
 * pair it first nominated, so when a loaded machine makes Chrome switch to another of its local
 * addresses, DTLS is up but no media arrives on Chrome's pair. Such a stall (DTLS connected,
 * nothing decoded) is retried, at most twice, with a warning. The WASM sessions follow the
 * viewer's nomination and get no retry: every failure fails at once.
 */
async function openPlaying(
  browser: TestBrowser,
  pageUrl: string,
  params: Record<string, string>,
  frames: number,
  what: string,
): Promise<{ viewer: ViewerPage; status: ViewerStatus }> {
  for (let attempt = 0;; attempt++) {
    const viewer = await browser.openViewer({ pageUrl, params });
    try {
      return { viewer, status: await playing(viewer, frames, what) };
    } catch (e) {
      const s = await viewer.status().catch(() => null);
      await viewer.close();
      const stalled = WERIFT && s?.dtlsState === "connected" && s.framesDecoded === 0;
      if (attempt < 2 && stalled) {
        console.warn(`werift session stalled, retrying: ${(e as Error).message}`);
        continue;
      }
      throw e;
    }
  }
}

Deno.test({
  name: "end to end: emulator + master + viewer page in headless Chromium",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const factory = new FirstFrames(
      WERIFT ? new WeriftSessionFactory({ loopbackOnly: true }) : undefined,
    );
    const logs: unknown[] = [];
    const demo: Demo = await startDemo({
      loopbackOnly: true,
      stateDir: STATE,
      channel: `e2e-${crypto.randomUUID().slice(0, 8)}`,
      peerSessionFactory: factory,
      logger: createLogger({ level: "debug", sink: (r) => logs.push(r), component: "e2e" }),
    });
    const browser = await launchBrowser({
      args: ["--force-webrtc-ip-handling-policy=default_public_interface_only"],
    });
    const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
    try {
      await demo.master.waitForState("Connected", 15_000);

      await t.step("the viewer decodes the 1280×720 samples, starting at an IDR", async () => {
        const { viewer: v, status: s } = await openPlaying(
          browser,
          demo.pageUrl,
          params,
          25,
          "25 decoded frames",
        );
        try {
          assert.equal(s.codec, "H264");
          // A rung of the sample ladder: 720p, or 360p once the estimate says so (a loaded machine).
          assert.ok([1280, 640].includes(s.width), `width ${s.width}`);
          assert.equal(s.height, 720);
          assert.ok(s.ttffMs !== null && s.ttffMs > 0, `ttff ${s.ttffMs}`);
          const stats = demo.master.viewers().find((x) => x.viewerId === s.clientId);
          assert.ok(stats, "the master lists the viewer");
          assert.equal(stats.state, "connected");
          assert.equal(stats.hotPath, "wasm", "frames went through the WASM media core");
          assert.ok(stats.framesSent >= 25 && stats.packetsSent > stats.framesSent);
          assert.equal(factory.first.get(s.clientId!)?.keyframe, true, "first frame is an IDR");
          console.log(
            `TTFF ${s.ttffMs?.toFixed(0)} ms, first packet after ` +
              `${stats.timeToFirstPacketMs?.toFixed(0)} ms, ${s.selectedPair}`,
          );
        } finally {
          await v.close();
        }
      });

      await t.step("three viewers play; one vanishes, the others keep playing", async () => {
        const viewers: ViewerPage[] = [];
        try {
          const states: ViewerStatus[] = [];
          for (const i of [0, 1, 2]) {
            const { viewer, status } = await openPlaying(
              browser,
              demo.pageUrl,
              params,
              10,
              `viewer ${i}`,
            );
            viewers.push(viewer);
            states.push(status);
          }
          const ids = states.map((s) => s.clientId!);
          assert.equal(new Set(ids).size, 3);
          for (const id of ids) assert.equal(factory.first.get(id)?.keyframe, true);
          const left = new Promise<string>((resolve) =>
            demo.master.on("viewerLeft", ({ viewerId }) => {
              if (viewerId === ids[0]) resolve(viewerId);
            })
          );
          await viewers[0].close(); // the page goes away without a goodbye
          const gone = await Promise.race([
            left,
            new Promise<string>((_, reject) =>
              setTimeout(() => reject(new Error("vanished viewer not cleaned up in 40 s")), 40_000)
            ),
          ]);
          assert.equal(gone, ids[0]);
          assert.ok(!demo.master.viewers().some((x) => x.viewerId === ids[0]));
          for (const v of viewers.slice(1)) {
            const before = (await v.status()).framesDecoded;
            await v.waitFor((s) => s.framesDecoded >= before + 10, 10_000, "still playing");
          }
        } finally {
          for (const v of viewers) await v.close();
        }
      });

      await t.step(
        "signaling dropped, GO_AWAY and garbage datagrams while three viewers play: media keeps flowing, a new viewer joins after",
        async () => {
          const viewers: ViewerPage[] = [];
          try {
            for (const i of [0, 1, 2]) {
              viewers.push(
                (await openPlaying(browser, demo.pageUrl, params, 10, `viewer ${i}`)).viewer,
              );
            }
            const keepsPlaying = async (what: string) => {
              for (const v of viewers) {
                const before = (await v.status()).framesDecoded;
                await v.waitFor((s) => s.framesDecoded >= before + 20, 10_000, what);
              }
            };
            const states: string[] = [];
            const off = demo.master.on("state", ({ state }) => states.push(state));
            assert.equal(demo.emulator.faults.dropMaster(), 1);
            await keepsPlaying("frames after the signaling socket dropped");
            await demo.master.waitForState("Connected", 15_000);
            assert.ok(states.includes("Disconnected"), states.join(" → "));
            states.length = 0;
            demo.emulator.faults.goAway();
            await keepsPlaying("frames after GO_AWAY");
            await until(() => states.at(-1) === "Connected", "Connected after GO_AWAY");
            assert.ok(states.includes("Describe Channel"), states.join(" → "));
            off();
            // Random datagrams at the master's media port (its IPv4 or IPv6 socket, whichever
            // the viewer chose): sessions ignore them.
            const pair = (await viewers[0].status()).selectedPair ?? "";
            const at = pair.match(/-> \S+ (127\.0\.0\.1|::1):(\d+)/);
            const [hostname, port] = [at?.[1] ?? "127.0.0.1", Number(at?.[2])];
            assert.ok(port > 0, `master port from ${pair}`);
            const sock = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
            try {
              for (let i = 0; i < 500; i++) {
                const junk = crypto.getRandomValues(new Uint8Array(1 + (i * 37) % 1400));
                if (i % 5 === 0) junk[0] = 0x80; // looks like RTP/RTCP
                if (i % 7 === 0) junk[0] = 0x16; // looks like DTLS
                if (i % 11 === 0) junk[0] = 0x00; // looks like STUN
                await sock.send(junk, { transport: "udp", hostname, port });
              }
            } finally {
              sock.close();
            }
            await keepsPlaying("frames after garbage datagrams");
            const late = await openPlaying(
              browser,
              demo.pageUrl,
              params,
              10,
              "viewer joining later",
            );
            viewers.push(late.viewer);
          } finally {
            for (const v of viewers) await v.close();
          }
        },
      );

      if (demo.emulator.turn) {
        for (const transport of ["udp", "tcp", "tls"] as const) {
          await t.step(
            `relay only (iceTransportPolicy relay) through coturn over ${transport}`,
            async () => {
              // The ICE configuration lists only this way to reach TURN, so a relay candidate
              // proves that transport carried the video.
              demo.emulator.faults.turnTransports = [transport];
              try {
                const { viewer: v, status: s } = await openPlaying(
                  browser,
                  demo.pageUrl,
                  { ...params, forceTurn: "1" },
                  10,
                  `relayed frames over ${transport}`,
                );
                try {
                  assert.equal(s.localCandidateType, "relay");
                } finally {
                  await v.close();
                }
              } finally {
                demo.emulator.faults.turnTransports = undefined;
              }
            },
          );
        }
      }
    } catch (e) {
      console.log(logs.map((l) => JSON.stringify(l)).join("\n").slice(-20000));
      throw e;
    } finally {
      await browser.close();
      await demo.close();
    }
  },
});
