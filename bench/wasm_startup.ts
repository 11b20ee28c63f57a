// `.wasm` size, compile time (once per process) and instantiate time (once per session).
import { mediaCoreModule } from "../src/peer/media_core.ts";
import { SrtpVideoSender } from "../src/peer/srtp_video_sender.ts";

const wasm = await Deno.stat(new URL("../src/peer/media_core.wasm", import.meta.url));
const gz = new Uint8Array(
  await new Response(
    (await Deno.open(new URL("../src/peer/media_core.wasm", import.meta.url))).readable
      .pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer(),
);
let t = performance.now();
await mediaCoreModule();
const compileMs = performance.now() - t;
const times: number[] = [];
for (let i = 0; i < 20; i++) {
  t = performance.now();
  const s = await SrtpVideoSender.create({
    profile: "SRTP_AES128_CM_HMAC_SHA1_80",
    key: new Uint8Array(16),
    salt: new Uint8Array(14),
    ssrc: i,
    payloadType: 96,
  });
  times.push(performance.now() - t);
  s.close();
}
times.sort((a, b) => a - b);
console.log(
  `size ${(wasm.size / 1024).toFixed(0)} KB (${
    (gz.length / 1024).toFixed(0)
  } KB gzip, goal ≤ 2048 KB); ` +
    `compile ${compileMs.toFixed(1)} ms once per process; instantiate + sender median ` +
    `${times[10].toFixed(2)} ms, max ${times.at(-1)!.toFixed(2)} ms (goal ≤ 50 ms)`,
);
