// Our hot path for `deno task bench`: H.264 access units → RTP → SRTP datagrams in the WASM
// media core, one boundary crossing per access unit, datagrams copied out as a socket send would.
// Usage: deno run -A bench/hotpath_wasm.ts <frames-dir> <cm|gcm> <seconds>
import { FileVideoSource } from "../src/media/file_source.ts";
import { SrtpVideoSender } from "../src/peer/srtp_video_sender.ts";

const [dir, profileName = "cm", secondsArg = "2"] = Deno.args;
const gcm = profileName === "gcm";
const source = await FileVideoSource.open({ dir });
const sender = await SrtpVideoSender.create({
  profile: gcm ? "SRTP_AEAD_AES_128_GCM" : "SRTP_AES128_CM_HMAC_SHA1_80",
  key: new Uint8Array(16).fill(7),
  salt: new Uint8Array(gcm ? 12 : 14).fill(3),
  ssrc: 0x12345678,
  payloadType: 102,
});
const frames = source.frames.map((f) => f.data);
const sink = new Uint8Array(1500);
let sent = 0;
let inBytes = 0;
let datagrams = 0;
let outBytes = 0;
let ts = 0;
const seconds = Number(secondsArg);
const t0 = performance.now();
let elapsed = 0;
do {
  for (let k = 0; k < 25; k++) {
    const frame = frames[sent % frames.length];
    for (const d of sender.writeFrame(frame, ts)) {
      sink.set(d); // what handing it to a socket costs at least
      datagrams++;
      outBytes += d.length;
    }
    ts = (ts + 3600) >>> 0;
    inBytes += frame.length;
    sent++;
  }
  elapsed = (performance.now() - t0) / 1000;
} while (elapsed < seconds);
console.log(JSON.stringify({
  profile: gcm ? "gcm" : "cm",
  frames: sent,
  inputBytes: inBytes,
  datagrams,
  outputBytes: outBytes,
  seconds: elapsed,
}));
