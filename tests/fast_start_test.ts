// A viewer joining a live stream well above the sessions' start estimate (3 Mbit/s): ffmpeg's
// testsrc2 at 1280x720, libx264 ultrafast, about 6.5 Mbit/s, a 2 s GOP. The joining viewer
// gets the current GOP at once (up to 1.5 MB) and then the live frames, more than the start
// estimate lets the pacer send: the probes must ride on that queued video (there is no idle
// moment between frames to probe in), or the queue waits past a second, is dropped, and the
// viewer freezes until the next IDR. Real parts: the encoder, the emulator, our master and a
// headless Chromium viewer decoding.
import assert from "node:assert/strict";
import { startDemo } from "../cli/demo.ts";
import { CommandVideoSource } from "../src/media/mod.ts";
import { createLogger } from "../src/log.ts";
import { launchBrowser } from "./support/browser.ts";
import { have } from "./support/have.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;
const ENCODER = "exec ffmpeg -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=25 " +
  "-pix_fmt yuv420p -c:v libx264 -profile:v baseline -preset ultrafast -tune zerolatency " +
  "-g 50 -keyint_min 50 -sc_threshold 0 -bf 0 -bsf:v h264_mp4toannexb -f h264 -";
/** How long the viewer is watched after its first frame, ms. */
const WATCH_MS = 6000;

Deno.test({
  name: "fast start: a viewer joining a 6.5 Mbit/s live stream gets every frame from its first",
  ignore: !(await have("ffmpeg")),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const source = new CommandVideoSource({ command: ENCODER });
    const demo = await startDemo({
      loopbackOnly: true,
      turn: false,
      stateDir: STATE,
      channel: `fast-start-${crypto.randomUUID().slice(0, 8)}`,
      videoSource: source,
      logger: createLogger({ level: "error", component: "fast-start" }),
    });
    const browser = await launchBrowser({
      args: ["--force-webrtc-ip-handling-policy=default_public_interface_only"],
    });
    try {
      await demo.master.waitForState("Connected", 15_000);
      // Join about 1.4 s into a GOP: the catch-up is then ~35 frames (~1 MB).
      const deadline = Date.now() + 15_000;
      while (demo.master.framesIn < 85 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(demo.master.framesIn >= 85, `the encoder gave ${demo.master.framesIn} frames`);
      const viewer = await browser.openViewer({ pageUrl: demo.viewerUrl });
      const first = await viewer.waitFor((s) => s.framesDecoded > 0, 15_000, "a first frame");
      const framesInAt = demo.master.framesIn;
      await new Promise((r) => setTimeout(r, WATCH_MS));
      const status = await viewer.status();
      const produced = demo.master.framesIn - framesInAt;
      const decoded = status.framesDecoded - first.framesDecoded;
      const received = Number(status.framesReceived) - Number(first.framesReceived);
      const stats = demo.master.viewers()[0];
      const line = `first frame ${Math.round(first.ttffMs ?? -1)} ms after the offer; ` +
        `then ${received} frames received and ${decoded} decoded while the encoder made ` +
        `${produced}; estimate ` +
        `${((stats?.estimateBps ?? 0) / 1e6).toFixed(2)} Mbit/s, sending ` +
        `${((stats?.sendingBps ?? 0) / 1e6).toFixed(2)} Mbit/s, probes ${stats?.probesSent}, ` +
        `queue drops ${stats?.pacerDropped}`;
      console.log(line);
      assert.ok(stats, "the viewer's session is listed");
      assert.equal(stats.pacerDropped, 0, `no queued video dropped: ${line}`);
      assert.ok(
        (stats.estimateBps ?? 0) > (stats.sendingBps ?? Infinity),
        `the estimate found room for the stream: ${line}`,
      );
      // Every frame the encoder made reached the viewer (a few in flight at either end); the
      // decoder keeps up when the machine is not busy with other browsers.
      assert.ok(received >= produced * 0.9, `frames reached the viewer: ${line}`);
      assert.ok(decoded >= produced * 0.5, `the viewer kept decoding: ${line}`);
    } finally {
      await browser.close();
      await demo.close();
    }
  },
});
