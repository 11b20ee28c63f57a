// A viewer that loses a picture gets one back from the master's cached GOP, at once, instead of
// waiting up to a GOP for the source's next IDR. Our master streams frames with a 4 s GOP (made
// here with ffmpeg, as a camera would send them) to one relay-only Chromium viewer whose TURN server is a user-space link in front
// of the emulator's coturn; the link goes dark both ways for 1.5 s — longer than the master
// keeps packets for retransmission (1 s), so Chromium cannot repair what it missed and asks for
// a keyframe (PLI). Asserted: the PLI reached the master, was answered from the cache, and the
// page presented a frame within 300 ms of the master hearing it (not a GOP later).
import assert from "node:assert/strict";
import { hasTurnServer } from "../src/emulator/turn.ts";
import { runLinkScenario } from "./support/link_scenario.ts";
import { withLinkedViewer } from "./support/linked_demo.ts";
import { AccessUnitSplitter } from "../src/media/access_unit_splitter.ts";

/** 12 s of 640x360 at 25 fps, an IDR every 4 s, as a frames folder (frame-0001.h264, …). */
async function longGopFrames(): Promise<string> {
  const out = await new Deno.Command("ffmpeg", {
    args: (
      "-loglevel error -f lavfi -i testsrc2=size=640x360:rate=25 -t 12 -pix_fmt yuv420p " +
      "-c:v libx264 -profile:v baseline -preset ultrafast -tune zerolatency -b:v 800k " +
      "-g 100 -keyint_min 100 -sc_threshold 0 -bf 0 -x264-params aud=1 -f h264 -"
    ).split(" "),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `ffmpeg: ${new TextDecoder().decode(out.stderr)}`);
  const splitter = new AccessUnitSplitter();
  const units = [...splitter.push(out.stdout), ...splitter.flush()];
  const dir = await Deno.makeTempDir({ prefix: "long-gop-" });
  for (const [i, u] of units.entries()) {
    await Deno.writeFile(`${dir}/frame-${String(i + 1).padStart(4, "0")}.h264`, u);
  }
  return dir;
}

Deno.test({
  name: "lost picture: a relay-only Chromium viewer's PLI answered from the cached GOP",
  ignore: !(await hasTurnServer()),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const frames = await longGopFrames();
    try {
      await withLinkedViewer(
        { channel: "pli", seed: 5, frames, maxLifetimeMs: 120_000 },
        async ({ demo, link, viewer }) => {
          await viewer.waitFor((s) => s.framesDecoded >= 25, 30_000, "frames through the link");
          // When the master heard the viewer's keyframe requests (polled every 20 ms).
          const requests: number[] = [];
          const poll = setInterval(() => {
            const v = demo.master.viewers()[0];
            if (v && v.plisReceived > requests.length) requests.push(Date.now());
          }, 20);
          const run = await runLinkScenario(viewer, link, { lossRate: 1 }, {
            baselineMs: 2500,
            impairedMs: 1500,
            liftedMs: 4000,
          });
          clearInterval(poll);
          const ours = demo.master.viewers().find((x) => x.viewerId === run.status.clientId);
          assert.ok(ours, "the master knows the viewer");
          const after = run.probe.frames.filter(([t]) => t > run.liftAt);
          const backMs = after.length ? after[0][0] - run.liftAt : null;
          const lastSecond = after.filter(([t]) => t > run.endAt - 1000).length;
          const page = run.probe.stats.at(-1);
          console.log(
            `  page: PLIs ${page?.pliCount}, NACKs ${page?.nackCount}, keyframes decoded ${page?.keyFramesDecoded}, lost ${page?.packetsLost}`,
          );
          console.log(
            `  PLIs ${ours.plisReceived}, answered from the cache ${ours.keyframesFromCache}, ` +
              `keyframe requests ${ours.keyframeRequests} (at ${
                requests.map((t) => t - run.liftAt).join(", ")
              } ms from the lift); first frame ${backMs} ms after the ` +
              `link came back, ${lastSecond} frames in the last second`,
          );
          assert.ok(ours.plisReceived >= 1, "the viewer asked for a keyframe");
          assert.ok(ours.keyframesFromCache >= 1, "answered from the cached GOP");
          // Chromium asks only once its repairs failed (about 1.5 s after the link came back
          // here); from then on the picture is back as soon as the cached GOP arrives — waiting
          // for the source's next IDR instead would take up to 4 s.
          const pliAt = requests[0];
          const firstAfterPli = run.probe.frames.find(([t]) => t > pliAt)?.[0];
          const pliToFrameMs = firstAfterPli === undefined ? null : firstAfterPli - pliAt;
          console.log(`  first frame ${pliToFrameMs} ms after the master heard the PLI`);
          assert.ok(
            pliToFrameMs !== null && pliToFrameMs < 300 && backMs !== null && backMs >= 0,
            `a frame ${pliToFrameMs} ms after the PLI`,
          );
          assert.ok(lastSecond >= 15, `${lastSecond} frames presented in the last second`);
        },
      );
    } finally {
      await Deno.remove(frames, { recursive: true });
    }
  },
});
