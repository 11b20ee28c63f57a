// Firefox ESR as a tested viewer: the demo (emulator, our master streaming the samples, the
// viewer page on the official KVS JS SDK) played in headless Firefox, directly and relayed
// through coturn; and the page's message when Firefox lacks its H.264 prefs. (Audio and data
// channels in Firefox: audio_data_test.ts.)
import assert from "node:assert/strict";
import { type Demo, startDemo } from "../cli/demo.ts";
import { createLogger } from "../src/log.ts";
import { audioOf, channelOf } from "./support/browser.ts";
import { ensureFirefoxNetwork, firefoxUnavailable, launchFirefox } from "./support/firefox.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;

/** Why Firefox cannot run here (printed, and its tests ignored), or null. */
const firefoxMissing = await (async () => {
  const why = await firefoxUnavailable();
  if (why) return why;
  try {
    await ensureFirefoxNetwork();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
})();
if (firefoxMissing) console.warn(`Firefox tests skipped: ${firefoxMissing}`);

/**
 * Runs in the page: start the viewer with `turns:127.0.0.1:` URLs given as `turns:localhost:`
 * (Firefox ignores a `turns:` URL whose host is an IP address; the emulator's certificate names
 * both). Self-contained, as evaluated functions must be; no DOM types in this program.
 */
function startWithTurnsHostName(params: Record<string, string>): void {
  type Server = { urls: string | string[] };
  type Config = { iceServers?: Server[] };
  const g = globalThis as unknown as {
    RTCPeerConnection: new (c?: Config) => unknown;
    viewer: { start(p: Record<string, string>): void };
  };
  const Native = g.RTCPeerConnection;
  const named = (u: string) => u.replace(/^turns:127\.0\.0\.1:/, "turns:localhost:");
  g.RTCPeerConnection = function (c?: Config) {
    const iceServers = c?.iceServers?.map((s) => ({ ...s, urls: [s.urls].flat().map(named) }));
    return new Native({ ...c, iceServers });
  } as unknown as typeof Native;
  g.viewer.start(params);
}

function demoLogger(logs: unknown[]) {
  return createLogger({ level: "debug", sink: (r) => logs.push(r), component: "firefox" });
}

Deno.test({
  name: "end to end in headless Firefox ESR: H.264 decoded, directly and through coturn",
  ignore: firefoxMissing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const logs: unknown[] = [];
    // Firefox's host candidate is a non-loopback address, and it does not use a master's
    // 127.0.0.1 candidate (with loopbackOnly it reaches the master only as a peer-reflexive
    // address or through TURN): the master offers its non-loopback addresses, as outside tests,
    // and the pair is host to host.
    const demo: Demo = await startDemo({
      loopbackOnly: false,
      stateDir: STATE,
      channel: `firefox-${crypto.randomUUID().slice(0, 8)}`,
      logger: demoLogger(logs),
    });
    let browser: Awaited<ReturnType<typeof launchFirefox>> | undefined;
    const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
    try {
      browser = await launchFirefox();
      console.log(browser.network?.note);
      await demo.master.waitForState("Connected", 15_000);

      await t.step("Firefox decodes the 1280×720 samples from a host candidate", async () => {
        const v = await browser!.openViewer({ pageUrl: demo.pageUrl, params });
        try {
          const s = await v.waitFor(
            (s) => s.framesDecoded >= 25 && s.width > 0,
            20_000,
            "25 decoded frames",
          );
          assert.equal(s.codec, "H264");
          // A rung of the sample ladder: 720p, or 360p once the estimate says so (a loaded machine).
          assert.ok(
            (s.width === 1280 && s.height === 720) || (s.width === 640 && s.height === 360),
            `${s.width}x${s.height}`,
          );
          assert.ok(s.ttffMs !== null && s.ttffMs > 0, `ttff ${s.ttffMs}`);
          assert.equal(s.localCandidateType, "host", s.selectedPair ?? "no pair");
          const stats = demo.master.viewers().find((x) => x.viewerId === s.clientId);
          assert.ok(stats, "the master lists the viewer");
          assert.equal(stats.state, "connected");
          assert.equal(stats.hotPath, "wasm");
          // Decoding goes on.
          const later = await v.waitFor(
            (x) => x.framesDecoded >= s.framesDecoded + 25,
            10_000,
            "25 more frames",
          );
          // The page offers audio and its data channel too: the master answers both.
          const a = audioOf(later);
          const d = channelOf(later);
          assert.equal(a?.state, "receiving");
          assert.ok(d && d.label === "kvsDataChannel" && d.state === "open", d?.state);
          console.log(
            `Firefox TTFF ${s.ttffMs?.toFixed(0)} ms, ${s.selectedPair}; audio ${a.state}, ` +
              `data channel ${d.state}`,
          );
        } catch (e) {
          console.log(v.console.join("\n"));
          throw e;
        } finally {
          await v.close();
        }
      });

      if (demo.emulator.turn) {
        for (const transport of ["udp", "tcp", "tls"] as const) {
          await t.step(`relay only through coturn over ${transport}`, async () => {
            // The ICE configuration lists only this way to reach TURN.
            demo.emulator.faults.turnTransports = [transport];
            const relayed = { ...params, forceTurn: "1" };
            const v = await browser!.openViewer({
              pageUrl: demo.pageUrl,
              params: transport === "tls" ? { ...relayed, autostart: undefined } : relayed,
            });
            try {
              if (transport === "tls") {
                // The emulator lists turns:127.0.0.1, which Firefox ignores.
                await v.page.evaluate(startWithTurnsHostName, relayed);
              }
              const s = await v.waitFor(
                (s) => s.framesDecoded >= 10 && s.width > 0,
                20_000,
                `relayed frames over ${transport}`,
              );
              assert.equal(s.localCandidateType, "relay", s.selectedPair ?? "no pair");
              // A rung of the sample ladder: 720p, or 360p once the estimate says so (a loaded machine).
              assert.ok(
                (s.width === 1280 && s.height === 720) || (s.width === 640 && s.height === 360),
                `${s.width}x${s.height}`,
              );
            } finally {
              await v.close();
              demo.emulator.faults.turnTransports = undefined;
            }
          });
        }
      }
    } catch (e) {
      console.log(logs.map((l) => JSON.stringify(l)).join("\n").slice(-20000));
      throw e;
    } finally {
      await browser?.close();
      await demo.close();
    }
  },
});

Deno.test({
  name: "Firefox without its H.264 prefs: the page says which two prefs to set",
  ignore: firefoxMissing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const demo = await startDemo({
      loopbackOnly: false,
      stateDir: STATE,
      channel: `firefox-noh264-${crypto.randomUUID().slice(0, 8)}`,
      turn: false,
      logger: demoLogger([]),
    });
    const browser = await launchFirefox({
      prefs: {
        "media.webrtc.hw.h264.enabled": false,
        "gfx.blacklist.webrtc.hw.acceleration.h264": 0,
      },
    });
    try {
      await demo.master.waitForState("Connected", 15_000);
      const params = Object.fromEntries(new URL(demo.viewerUrl).searchParams);
      const v = await browser.openViewer({ pageUrl: demo.pageUrl, params });
      const s = await v.waitFor((s) => s.state === "error", 15_000, "the error state");
      assert.match(s.error ?? "", /no H\.264 decoder for WebRTC/);
      assert.match(s.error ?? "", /about:config/);
      assert.match(s.error ?? "", /media\.webrtc\.hw\.h264\.enabled to true/);
      assert.match(s.error ?? "", /gfx\.blacklist\.webrtc\.hw\.acceleration\.h264 to 1/);
      await v.close();
    } finally {
      await browser.close();
      await demo.close();
    }
  },
});

// --- A master that answers audio and data channels -------------------------------------------

type Werift = typeof import("werift");
type Pc = InstanceType<Werift["RTCPeerConnection"]>;

/** What the stand-in master saw of one viewer. */
interface EchoViewer {
  labels: string[];
  messagesEchoed: number;
  audioPacketsReceived: number;
}
