// Reference hot path for `deno task bench`: H.264 access units -> werift's H264Packetizer
// (1200-byte payload limit like ours) -> werift's SrtpSession.encrypt, the way a werift-based
// master sends video. Runs under Node (werift's home: OpenSSL with AES-NI) and under Deno.
// Usage: node hotpath_werift.mjs <frames-dir> <cm|gcm> <seconds>
// Prints one JSON line: {"profile","frames","inputBytes","datagrams","outputBytes","seconds"}.
import { readdirSync, readFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import process from "node:process";
import {
  H264Packetizer,
  ProtectionProfileAeadAes128Gcm,
  ProtectionProfileAes128CmHmacSha1_80,
  SrtpSession,
} from "werift";

const [dir, profileName = "cm", secondsArg = "2"] = process.argv.slice(2);
if (!dir) {
  console.error("usage: hotpath_werift.mjs <frames-dir> <cm|gcm> <seconds>");
  process.exit(2);
}
const names = readdirSync(dir).filter((n) => n.endsWith(".h264"))
  .sort(new Intl.Collator("en", { numeric: true }).compare);
const frames = names.map((n) => readFileSync(`${dir}/${n}`));
const gcm = profileName === "gcm";
const keyLen = 16;
const saltLen = gcm ? 12 : 14;
const key = Buffer.alloc(keyLen, 7);
const salt = Buffer.alloc(saltLen, 3);
const srtp = new SrtpSession({
  keys: {
    localMasterKey: key,
    localMasterSalt: salt,
    remoteMasterKey: key,
    remoteMasterSalt: salt,
  },
  profile: gcm ? ProtectionProfileAeadAes128Gcm : ProtectionProfileAes128CmHmacSha1_80,
});
// 1200-byte datagrams: 12-byte header, up to 16 bytes of tag.
const packetizer = new H264Packetizer({
  maxPayloadSize: 1200 - 12 - 16,
  payloadType: 102,
  ssrc: 0x12345678,
  inputFormat: "annexb",
});

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
    for (const p of packetizer.packetize(frame, ts)) {
      const out = srtp.encrypt(p.payload, p.header);
      datagrams++;
      outBytes += out.length;
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
