import assert from "node:assert/strict";
import { controlPlaneEndpoint } from "../src/aws/mod.ts";
import { ConfigError, describeConfig, helpText, parseConfig, wantsHelp } from "../cli/config.ts";

const KEYS = { AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "very-secret" };
const IOT = {
  AWS_IOT_CORE_CREDENTIAL_ENDPOINT: "c1.credentials.iot.us-west-2.amazonaws.com",
  AWS_IOT_CORE_ROLE_ALIAS: "role-alias",
  AWS_IOT_CORE_THING_NAME: "thing-1",
};

function configError(fn: () => unknown, setting: RegExp, message: RegExp): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.code, "CONFIG");
    assert.match(e.setting, setting);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("config: environment alone, C SDK sample defaults", () => {
  const c = parseConfig([], KEYS);
  assert.equal(c.channelName, "demo-channel");
  assert.equal(c.region, "us-west-2");
  assert.deepEqual(c.credentials, {
    kind: "keys",
    accessKeyId: "AKIDEXAMPLE",
    secretAccessKey: "very-secret",
    sessionToken: undefined,
  });
  assert.equal(c.logLevel, "info");
  assert.equal(c.logSdp, false);
  assert.equal(c.videoSource, "samples/h264,samples/h264-360p", "the samples' ladder");
  assert.equal(c.fps, 25);
  assert.equal(c.endpointCache, true);
  assert.equal(c.endpointCacheFile, ".SignalingCache_v0");
  assert.equal(c.endpointUrl, undefined);
  assert.equal(c.iceTransportPolicy, "all");
  assert.equal(
    parseConfig([], { ...KEYS, AWS_KVS_ICE_TRANSPORT_POLICY: "relay" }).iceTransportPolicy,
    "relay",
  );
  assert.equal(parseConfig(["--ice-transport-policy", "relay"], KEYS).iceTransportPolicy, "relay");
});

Deno.test("config: env names of the C SDK and AWS SDKs", () => {
  const c = parseConfig([], {
    ...KEYS,
    AWS_SESSION_TOKEN: "tok",
    AWS_REGION: "eu-west-1",
    AWS_KVS_CACERT_PATH: "/etc/ca.pem",
    AWS_KVS_LOG_LEVEL: "2",
    DEBUG_LOG_SDP: "TRUE",
    CONTROL_PLANE_URI: "https://127.0.0.1:8443",
  });
  assert.equal(c.region, "eu-west-1");
  assert.equal(c.caCertPath, "/etc/ca.pem");
  assert.equal(c.logLevel, "debug");
  assert.equal(c.logSdp, true);
  assert.equal(c.endpointUrl, "https://127.0.0.1:8443");
  assert.equal(c.credentials.kind === "keys" && c.credentials.sessionToken, "tok");
  // AWS_DEFAULT_REGION wins over AWS_REGION; AWS_ENDPOINT_URL_KINESIS_VIDEO over CONTROL_PLANE_URI.
  const d = parseConfig([], {
    ...KEYS,
    AWS_REGION: "eu-west-1",
    AWS_DEFAULT_REGION: "ap-southeast-2",
    AWS_ENDPOINT_URL_KINESIS_VIDEO: "https://a.example",
    CONTROL_PLANE_URI: "https://b.example",
  });
  assert.equal(d.region, "ap-southeast-2");
  assert.equal(d.endpointUrl, "https://a.example");
  // The override reaches the control plane's endpoint without its trailing slash.
  const endpoint = (env: Record<string, string>) =>
    controlPlaneEndpoint("us-west-2", parseConfig([], { ...KEYS, ...env }).endpointUrl);
  assert.equal(
    endpoint({ AWS_ENDPOINT_URL_KINESIS_VIDEO: "https://a/", CONTROL_PLANE_URI: "https://b" }),
    "https://a",
  );
  assert.equal(endpoint({ CONTROL_PLANE_URI: "https://b" }), "https://b");
  assert.equal(endpoint({}), "https://kinesisvideo.us-west-2.amazonaws.com");
});

Deno.test("config: flags win over the environment; channel positional or --channel", () => {
  const c = parseConfig(
    [
      "cam-7",
      "--region",
      "us-east-1",
      "--log-level",
      "warn",
      "--fps",
      "30",
      "--frames",
      "/tmp/f",
      "--no-endpoint-cache",
      "--debug-log-sdp",
      "--endpoint-url",
      "http://127.0.0.1:9000",
      "--ca-cert",
      "ca.pem",
    ],
    { ...KEYS, AWS_DEFAULT_REGION: "eu-west-1", AWS_KVS_LOG_LEVEL: "debug" },
  );
  assert.equal(c.channelName, "cam-7");
  assert.equal(c.region, "us-east-1");
  assert.equal(c.logLevel, "warn");
  assert.equal(c.fps, 30);
  assert.equal(c.videoSource, "/tmp/f");
  assert.equal(c.endpointCache, false);
  assert.equal(c.logSdp, true);
  assert.equal(c.caCertPath, "ca.pem");
  assert.equal(parseConfig(["--channel", "x.y_z-1"], KEYS).channelName, "x.y_z-1");
  assert.equal(
    parseConfig(["--access-key-id", "A", "--secret-access-key", "S"], {}).credentials.kind,
    "keys",
  );
});

Deno.test("config: IoT credentials take precedence, seed defaults for cert and key", () => {
  const c = parseConfig([], { ...IOT, ...KEYS });
  assert.deepEqual(c.credentials, {
    kind: "iot",
    endpoint: "https://c1.credentials.iot.us-west-2.amazonaws.com",
    certPath: "certificate.pem",
    keyPath: "private.key",
    roleAlias: "role-alias",
    thingName: "thing-1",
  });
  assert.equal(c.channelName, "thing-1", "thing name is the default channel with IoT");
  const d = parseConfig(["chan", "--iot-cert", "c.pem"], {
    ...IOT,
    AWS_IOT_CORE_PRIVATE_KEY: "k.pem",
  });
  assert.equal(d.channelName, "chan");
  assert.equal(d.credentials.kind === "iot" && d.credentials.certPath, "c.pem");
  assert.equal(d.credentials.kind === "iot" && d.credentials.keyPath, "k.pem");
});

Deno.test("config: missing or invalid settings are named", async (t) => {
  await t.step("no credentials lists both options", () => {
    configError(
      () => parseConfig([], {}),
      /credentials/,
      /AWS_IOT_CORE_CREDENTIAL_ENDPOINT.*AWS_ACCESS_KEY_ID/s,
    );
  });
  await t.step("half a key pair", () => {
    configError(
      () => parseConfig([], { AWS_ACCESS_KEY_ID: "A" }),
      /AWS_SECRET_ACCESS_KEY/,
      /not set/,
    );
  });
  await t.step("partial IoT settings name what is missing", () => {
    configError(
      () => parseConfig([], { AWS_IOT_CORE_CREDENTIAL_ENDPOINT: "x.example" }),
      /AWS_IOT_CORE_ROLE_ALIAS.*AWS_IOT_CORE_THING_NAME/,
      /IoT credentials need/,
    );
  });
  await t.step("bad values", () => {
    configError(() => parseConfig(["--fps", "abc"], KEYS), /--fps/, /"abc"/);
    configError(() => parseConfig(["--fps", "0"], KEYS), /--fps/, /between/);
    configError(() => parseConfig([], { ...KEYS, AWS_DEFAULT_REGION: "mars" }), /region/, /mars/);
    configError(() => parseConfig(["bad name!"], KEYS), /--channel/, /invalid/);
    configError(() => parseConfig(["a", "--channel", "b"], KEYS), /--channel/, /twice/);
    configError(() => parseConfig(["a", "b"], KEYS), /arguments/, /only the channel/);
    configError(() => parseConfig(["--bogus"], KEYS), /arguments/, /bogus/);
    configError(
      () => parseConfig([], { ...KEYS, AWS_KVS_LOG_LEVEL: "loud" }),
      /AWS_KVS_LOG_LEVEL/,
      /loud/,
    );
    configError(
      () => parseConfig([], { ...KEYS, AWS_KVS_ICE_TRANSPORT_POLICY: "turn" }),
      /AWS_KVS_ICE_TRANSPORT_POLICY/,
      /"turn" must be all or relay/,
    );
    configError(
      () => parseConfig([], { ...KEYS, CONTROL_PLANE_URI: "ftp://x" }),
      /CONTROL_PLANE_URI/,
      /not an http/,
    );
  });
});

Deno.test("config: --help lists every flag and environment variable", () => {
  assert.ok(wantsHelp(["x", "--help"]));
  assert.ok(wantsHelp(["-h"]));
  assert.ok(!wantsHelp(["demo"]));
  const text = helpText();
  for (
    const name of [
      "AWS_IOT_CORE_CREDENTIAL_ENDPOINT",
      "AWS_IOT_CORE_CERT",
      "AWS_IOT_CORE_PRIVATE_KEY",
      "AWS_IOT_CORE_ROLE_ALIAS",
      "AWS_IOT_CORE_THING_NAME",
      "AWS_KVS_CACERT_PATH",
      "AWS_DEFAULT_REGION",
      "AWS_REGION",
      "AWS_KVS_LOG_LEVEL",
      "DEBUG_LOG_SDP",
      "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "AWS_ENDPOINT_URL_KINESIS_VIDEO",
      "CONTROL_PLANE_URI",
      "--channel",
      "--frames",
      "--fps",
      "--no-endpoint-cache",
      "--log-level",
      "--help",
    ]
  ) {
    assert.ok(text.includes(name), `help mentions ${name}`);
  }
});

Deno.test("config: describeConfig hides secrets", () => {
  const c = parseConfig([], { ...KEYS, AWS_SESSION_TOKEN: "tok-secret" });
  const text = JSON.stringify(describeConfig(c));
  assert.ok(!text.includes("very-secret"));
  assert.ok(!text.includes("tok-secret"));
  assert.ok(text.includes("AKIDEXAMPLE"));
});

Deno.test("config: sources name the flag or variable each value came from", () => {
  const c = parseConfig(["--iot-cert", "c.pem", "--ca-cert", "ca.pem"], {
    ...IOT,
    AWS_IOT_CORE_CERT: "env-cert.pem",
    AWS_IOT_CORE_PRIVATE_KEY: "k.pem",
    AWS_KVS_CACERT_PATH: "env-ca.pem",
    AWS_REGION: "eu-west-1",
  });
  assert.equal(c.credentials.kind === "iot" && c.credentials.certPath, "c.pem");
  assert.equal(c.sources?.["iot-cert"], "--iot-cert", "the flag won, so it is named");
  assert.equal(c.sources?.["iot-private-key"], "AWS_IOT_CORE_PRIVATE_KEY");
  assert.equal(c.sources?.["ca-cert"], "--ca-cert");
  assert.equal(c.sources?.["iot-role-alias"], "AWS_IOT_CORE_ROLE_ALIAS");
  assert.equal(c.sources?.region, "AWS_REGION", "the variable actually used");
  const d = parseConfig([], IOT);
  assert.equal(d.sources?.["iot-cert"], "the default of --iot-cert / AWS_IOT_CORE_CERT");
  assert.equal(d.sources?.["iot-thing-name"], "AWS_IOT_CORE_THING_NAME");
});

Deno.test("config: video sources, --frames as another name, one source only", () => {
  assert.equal(parseConfig(["--video-source", "-"], KEYS).videoSource, "-");
  assert.equal(
    parseConfig([], { ...KEYS, AWS_KVS_VIDEO_SOURCE: "cam.h264" }).videoSource,
    "cam.h264",
  );
  const f = parseConfig(["--frames", "/tmp/f"], KEYS);
  assert.equal(f.videoSource, "/tmp/f");
  assert.equal(f.sources?.["video-source"], "--frames");
  assert.equal(parseConfig(["--frames", "a", "--video-source", "a"], KEYS).videoSource, "a");
  configError(
    () => parseConfig(["--frames", "a", "--video-source", "b"], KEYS),
    /--frames/,
    /--frames "a" and --video-source "b" disagree/,
  );
  const c = parseConfig(["--video-command", "ffmpeg -f h264 -"], KEYS);
  assert.equal(c.videoCommand, "ffmpeg -f h264 -");
  assert.equal(c.videoSource, "samples/h264,samples/h264-360p", "unused default");
  assert.equal(
    parseConfig([], { ...KEYS, AWS_KVS_VIDEO_COMMAND: "gst-launch-1.0 …" }).videoCommand,
    "gst-launch-1.0 …",
  );
  configError(
    () => parseConfig(["--video-command", "x", "--video-source", "-"], KEYS),
    /--video-source/,
    /--video-source and --video-command are both set: give one video source/,
  );
  configError(
    () => parseConfig(["--video-command", "x"], { ...KEYS, AWS_KVS_VIDEO_SOURCE: "-" }),
    /AWS_KVS_VIDEO_SOURCE/,
    /AWS_KVS_VIDEO_SOURCE and --video-command are both set/,
  );
  configError(() => parseConfig(["--video-command", " "], KEYS), /--video-command/, /is empty/);
});

Deno.test("config: describeConfig hides a password in the video command", () => {
  const c = parseConfig(
    ["--video-command", "ffmpeg -i rtsp://admin:hunter2@cam/1 -c:v copy -f h264 -"],
    KEYS,
  );
  const text = JSON.stringify(describeConfig(c));
  assert.ok(!text.includes("hunter2"), text);
});

Deno.test("config: the video source opened: the samples' ladder by default, folders, files", async () => {
  const { openAudioSource, openVideoSource } = await import("../cli/master.ts");
  const { FileVideoSource, silentLogger } = await import("../mod.ts");
  const open = (args: string[]) => openVideoSource(parseConfig(args, KEYS), silentLogger);
  const ladder = await open([]);
  assert.ok(ladder instanceof FileVideoSource);
  assert.deepEqual(ladder.renditions?.map((r) => r.label), ["720p", "360p"]);
  // The sample tones go with the sample ladder, in step with its top rung.
  const { audio, video } = await openAudioSource(parseConfig([], KEYS), silentLogger, ladder);
  assert.ok(audio);
  assert.equal(video.renditions, ladder.renditions);

  const given = await open(["--video-source", "./samples/h264, ./samples/h264-360p"]);
  assert.ok(given instanceof FileVideoSource);
  assert.deepEqual(given.dirs, [
    "./samples/h264",
    "./samples/h264-360p",
  ]);
  const one = await open(["--video-source", "samples/h264-360p"]);
  assert.deepEqual(one.renditions?.map((r) => r.label), ["360p"]);
  await assert.rejects(
    open(["--video-source", "samples/h264,/nonexistent/360p"]),
    /^Error: video source \/nonexistent\/360p does not exist/,
  );
  await assert.rejects(
    open(["--video-source", "samples/h264,samples/README.md"]),
    /video source samples\/README\.md is not a folder: a ladder is made of frame folders/,
  );
  // A file whose name holds a comma is one source.
  const dir = await Deno.makeTempDir();
  try {
    const frames = await Promise.all(
      [1, 2, 3].map((n) => Deno.readFile(`samples/h264-360p/frame-000${n}.h264`)),
    );
    await Deno.writeFile(`${dir}/cam,1.h264`, new Uint8Array(frames.flatMap((f) => [...f])));
    const file = await open(["--video-source", `${dir}/cam,1.h264`]);
    assert.ok(file instanceof FileVideoSource);
    assert.equal(file.frames.length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
