// A master in its own process for bench/fair_load.ts, so its CPU and memory can be measured
// alone. Reads the emulator's environment; argv: <channel> <wasm|werift> [frames-dir]
// [audio.opus | none]: sessions wholly in the WASM core, or werift's (SDP, ICE, DTLS,
// packetization and SRTP in JavaScript); frames default to samples/h264, audio to the sample
// tones (samples/opus/tones.opus), looped in step with the frames as the demo and the master
// command do (`FileAudioSource.follow`). Data channels are answered and every message is echoed
// back, as the master command's `--data-channel echo` does.
// Prints READY once signaling is connected, then one JSON line a second with the session stats
// the master exposes (master.viewers()).
import { createCaHttpClient, KvsClient } from "../src/aws/kvs_client.ts";
import { IotCredentialProvider } from "../src/credentials/iot.ts";
import { startMaster } from "../src/master.ts";
import { FileAudioSource } from "../src/media/file_audio_source.ts";
import { FileVideoSource } from "../src/media/file_source.ts";
import type { VideoSource } from "../src/media/types.ts";
import { silentLogger } from "../src/log.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";
import { WeriftSessionFactory } from "../tests/support/werift_session.ts";
import { echoMessages } from "../cli/master.ts";

const [channel, hotPath, frames, audioPath] = Deno.args as [
  string,
  "wasm" | "werift",
  string?,
  string?,
];
const env = Deno.env.toObject();
const video = await FileVideoSource.open({
  dir: frames ?? new URL("../samples/h264", import.meta.url).pathname,
});
const audio = audioPath === "none" ? undefined : await FileAudioSource.open({
  path: audioPath ?? new URL("../samples/opus/tones.opus", import.meta.url).pathname,
});
let source: VideoSource = video;
if (audio) {
  try {
    source = audio.follow(video);
  } catch (e) {
    console.error(`the audio loops on its own: ${(e as Error).message}`);
  }
}
const credentials = IotCredentialProvider.fromEnv(env);
const master = await startMaster({
  channel,
  region: env.AWS_DEFAULT_REGION,
  credentials,
  controlPlane: new KvsClient({
    region: env.AWS_DEFAULT_REGION,
    credentials,
    endpoint: env.AWS_ENDPOINT_URL_KINESIS_VIDEO,
    httpClient: await createCaHttpClient(env.AWS_KVS_CACERT_PATH),
  }),
  source,
  audioSource: audio,
  peerSessionFactory: hotPath === "werift"
    ? new WeriftSessionFactory({ loopbackOnly: true, hotPath })
    : new WasmPeerSessionFactory({ loopbackOnly: true }),
  signaling: {
    caCerts: [await Deno.readTextFile(env.AWS_KVS_CACERT_PATH)],
    endpointCache: false,
    stunUrl: false,
  },
});
echoMessages(master, silentLogger);
master.on(
  "viewerLeft",
  ({ viewerId, reason }) => console.error(`viewer ${viewerId} left: ${reason}`),
);
master.on(
  "error",
  ({ error, viewerId }) =>
    console.error(`error${viewerId ? ` (viewer ${viewerId})` : ""}: ${error.message}`),
);
await master.waitForState("Connected", 30_000);
console.log("READY");
setInterval(() => {
  const v = master.viewers();
  console.log(JSON.stringify({
    viewers: v.length,
    hotPaths: [...new Set(v.map((x) => x.hotPath))],
    packets: v.reduce((a, x) => a + x.packetsSent, 0),
    stats: v.map((x) => ({
      viewerId: x.viewerId,
      state: x.state,
      packetsSent: x.packetsSent,
      framesSent: x.framesSent,
      nacksReceived: x.nacksReceived,
      plisReceived: x.plisReceived,
      firsReceived: x.firsReceived,
      packetsRetransmitted: x.packetsRetransmitted,
      audioPacketsSent: x.audioPacketsSent ?? 0,
      dataMessagesReceived: x.dataMessagesReceived ?? 0,
      dataMessagesSent: x.dataMessagesSent ?? 0,
      offerToAnswerMs: x.offerToAnswerMs,
    })),
  }));
}, 1000);
