/**
 * The emulator against independent parts: openssl checks its certificates, Deno's TLS client
 * (rustls) talks to its mutual-TLS IoT endpoint, aws4fetch signs the requests that its
 * `@smithy/signature-v4` verifier re-checks, Deno's WebSocket client rides its relay, and raw
 * STUN/TURN messages (built here from RFC 5389/5766) get answers from the real coturn it runs.
 */
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { AwsV4Signer } from "aws4fetch";
import { type Emulator, EmulatorError, startEmulator } from "../src/emulator/mod.ts";
import { ensurePki } from "../src/emulator/pki.ts";
import { hasTurnServer } from "../src/emulator/turn.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;

interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sh(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { ok: o.success, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

/** Sign with aws4fetch (not the emulator's signer) and send. */
async function call(
  base: string,
  path: string,
  body: unknown,
  creds: Creds,
  opts: { client?: Deno.HttpClient; datetime?: string; tamper?: boolean; region?: string } = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const signed = await new AwsV4Signer({
    url: base + path,
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    service: "kinesisvideo",
    region: opts.region ?? "us-west-2",
    datetime: opts.datetime,
    ...creds,
  }).sign();
  const sent = opts.tamper ? JSON.stringify({ ...(body as object), Extra: 1 }) : signed.body;
  const res = await fetch(signed.url, {
    method: "POST",
    headers: signed.headers,
    body: sent as string,
    client: opts.client,
  });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

/** A presigned signaling URL, signed by aws4fetch. */
async function presign(
  endpoint: string,
  channelArn: string,
  creds: Creds,
  clientId?: string,
): Promise<string> {
  const url = new URL(endpoint);
  url.searchParams.set("X-Amz-ChannelARN", channelArn);
  if (clientId) url.searchParams.set("X-Amz-ClientId", clientId);
  url.searchParams.set("X-Amz-Expires", "299");
  const signed = await new AwsV4Signer({
    url: url.toString(),
    method: "GET",
    service: "kinesisvideo",
    region: "us-west-2",
    signQuery: true,
    ...creds,
  }).sign();
  return signed.url.toString();
}

/** A WebSocket with a message queue. */
class Ws {
  readonly socket: WebSocket;
  readonly messages: Record<string, unknown>[] = [];
  readonly closed: Promise<CloseEvent>;
  #wake?: () => void;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.addEventListener("close", resolve));
    socket.addEventListener("message", (ev) => {
      this.messages.push(JSON.parse(ev.data));
      this.#wake?.();
    });
  }

  static open(url: string, client?: Deno.HttpClient): Promise<Ws> {
    const socket = client ? new WebSocket(url, { client }) : new WebSocket(url);
    const ws = new Ws(socket);
    return new Promise((resolve, reject) => {
      socket.addEventListener("open", () => resolve(ws));
      socket.addEventListener("error", () => {
        ws.closed.then(() => reject(new Error(`WebSocket to ${url.split("?")[0]} refused`)));
      });
    });
  }

  async next(timeoutMs = 3000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("no message in time");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#wake = r;
        timer = setTimeout(r, left);
      });
      clearTimeout(timer);
    }
    return this.messages.shift()!;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  async close(): Promise<void> {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close();
    await this.closed;
  }
}

/** Send a raw HTTP/1.1 upgrade request and return the status and headers of the answer. */
async function rawUpgrade(url: string, caCert?: string): Promise<{ status: number; head: string }> {
  const u = new URL(url);
  const port = Number(u.port);
  const conn = u.protocol === "wss:"
    ? await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caCert!] })
    : await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const req = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    await conn.write(new TextEncoder().encode(req));
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return { status: Number(text.split(" ")[1]), head: text.split("\r\n\r\n")[0] };
  } finally {
    conn.close();
  }
}

const b64 = (o: unknown) => btoa(JSON.stringify(o));

Deno.test("pki: X.509 v3 chain checked by openssl, rogue CA refused, reused when valid", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [pki] = await Promise.all([ensurePki(dir, "cam-1"), ensurePki(dir, "cam-1")]);
    for (const p of [pki.caCertPath, pki.serverCertPath, pki.deviceCertPath, pki.rogueCertPath]) {
      const text = await sh("openssl", ["x509", "-in", p, "-noout", "-text"]);
      assert.ok(text.ok && text.out.includes("Version: 3 (0x2)"), `${p} is not X.509 v3`);
    }
    const server = await sh("openssl", [
      "x509",
      "-in",
      pki.serverCertPath,
      "-noout",
      "-ext",
      "subjectAltName",
    ]);
    assert.match(server.out, /IP Address:127\.0\.0\.1/);
    assert.match(server.out, /DNS:localhost/);
    const device = await sh("openssl", ["x509", "-in", pki.deviceCertPath, "-noout", "-subject"]);
    assert.match(device.out, /CN ?= ?cam-1/);
    assert.ok((await sh("openssl", ["verify", "-CAfile", pki.caCertPath, pki.deviceCertPath])).ok);
    assert.ok((await sh("openssl", ["verify", "-CAfile", pki.caCertPath, pki.serverCertPath])).ok);
    assert.ok(!(await sh("openssl", ["verify", "-CAfile", pki.caCertPath, pki.rogueCertPath])).ok);
    const ca = await sh("openssl", ["x509", "-in", pki.caCertPath, "-noout", "-text"]);
    assert.match(ca.out, /CA:TRUE/);
    assert.match(ca.out, /Certificate Sign/);
    const eku = await sh("openssl", ["x509", "-in", pki.deviceCertPath, "-noout", "-text"]);
    assert.match(eku.out, /TLS Web Client Authentication/);
    assert.match(eku.out, /ecdsa-with-SHA256/);
    for (const k of [pki.deviceKeyPath, pki.serverKeyPath]) {
      assert.equal((await Deno.stat(k)).mode! & 0o777, 0o600, `${k} is private`);
      assert.ok((await sh("openssl", ["pkey", "-in", k, "-noout"])).ok);
    }
    const before = await Deno.readTextFile(pki.caCertPath);
    await ensurePki(dir, "cam-1");
    assert.equal(await Deno.readTextFile(pki.caCertPath), before, "valid PKI must be reused");
    const state = JSON.parse(await Deno.readTextFile(`${pki.dir}/pki.json`));
    await Deno.writeTextFile(
      `${pki.dir}/pki.json`,
      JSON.stringify({ ...state, notAfter: new Date(Date.now() + 86400_000).toISOString() }),
    );
    await ensurePki(dir, "cam-1");
    assert.notEqual(await Deno.readTextFile(pki.caCertPath), before, "expiring PKI is re-minted");
    const minted = await Deno.readTextFile(pki.caCertPath);
    await ensurePki(dir, "cam-2");
    assert.notEqual(await Deno.readTextFile(pki.caCertPath), minted, "new thing, new PKI");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("emulator", async (t) => {
  const emu: Emulator = await startEmulator({
    stateDir: STATE,
    turn: "auto",
    channelCreatingMs: 400,
  });
  const ca = await Deno.readTextFile(emu.pki.caCertPath);
  const device = {
    cert: await Deno.readTextFile(emu.pki.deviceCertPath),
    key: await Deno.readTextFile(emu.pki.deviceKeyPath),
  };
  const client = Deno.createHttpClient({ caCerts: [ca] });
  const iotUrl = `https://${emu.iotEndpoint}/role-aliases/${emu.roleAlias}/credentials`;
  const iotFetch = async (
    url: string,
    headers: Record<string, string>,
    cert?: { cert: string; key: string },
  ) => {
    const c = Deno.createHttpClient({ caCerts: [ca], ...cert });
    try {
      const res = await fetch(url, { headers, client: c });
      return { status: res.status, json: await res.json() };
    } finally {
      c.close();
    }
  };
  const iotCreds = async (): Promise<Creds> => {
    const r = await iotFetch(iotUrl, { "x-amzn-iot-thingname": emu.thingName }, device);
    assert.equal(r.status, 200);
    return r.json.credentials;
  };
  let arn = "";

  try {
    await t.step("env names the C SDK sample's variables", () => {
      const env = emu.env();
      assert.equal(env.AWS_IOT_CORE_CREDENTIAL_ENDPOINT, emu.iotEndpoint);
      assert.match(emu.iotEndpoint, /^127\.0\.0\.1:\d+$/);
      assert.equal(env.AWS_ENDPOINT_URL_KINESIS_VIDEO, emu.controlPlaneUrl);
      assert.equal(env.AWS_KVS_CACERT_PATH, emu.pki.caCertPath);
      assert.equal(env.AWS_IOT_CORE_CERT, emu.pki.deviceCertPath);
      assert.equal(env.AWS_IOT_CORE_PRIVATE_KEY, emu.pki.deviceKeyPath);
      assert.equal(env.AWS_IOT_CORE_ROLE_ALIAS, emu.roleAlias);
      assert.equal(env.AWS_IOT_CORE_THING_NAME, emu.thingName);
      assert.equal(env.AWS_DEFAULT_REGION, "us-west-2");
    });

    await t.step("IoT: credentials of AWS's shape over mutual TLS", async () => {
      const r = await iotFetch(iotUrl, { "x-amzn-iot-thingname": emu.thingName }, device);
      assert.equal(r.status, 200);
      assert.deepEqual(Object.keys(r.json), ["credentials"]);
      const c = r.json.credentials;
      assert.deepEqual(
        Object.keys(c).sort(),
        ["accessKeyId", "expiration", "secretAccessKey", "sessionToken"],
      );
      assert.match(c.accessKeyId, /^ASIA[A-Z2-7]{16}$/);
      assert.match(c.expiration, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const life = Date.parse(c.expiration) - Date.now();
      assert.ok(life > 3500_000 && life <= 3600_000, `lifetime ${life} ms`);
    });

    await t.step(
      "IoT: no client certificate, or one from another CA, fails the handshake",
      async () => {
        await assert.rejects(iotFetch(iotUrl, { "x-amzn-iot-thingname": emu.thingName }));
        const rogue = {
          cert: await Deno.readTextFile(emu.pki.rogueCertPath),
          key: await Deno.readTextFile(emu.pki.rogueKeyPath),
        };
        await assert.rejects(iotFetch(iotUrl, { "x-amzn-iot-thingname": emu.thingName }, rogue));
      },
    );

    await t.step(
      "IoT: thing name header required, unknown thing 403, unknown alias 404",
      async () => {
        assert.equal((await iotFetch(iotUrl, {}, device)).status, 400);
        assert.equal(
          (await iotFetch(iotUrl, { "x-amzn-iot-thingname": "other" }, device)).status,
          403,
        );
        // A certificate from the right CA, but for another thing, does not speak for this thing.
        const dir = await Deno.makeTempDir();
        try {
          await Deno.writeTextFile(
            `${dir}/ext`,
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
          );
          const mk = await sh("sh", [
            "-c",
            `cd ${dir} && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ` +
            `-keyout k.pem -out r.csr -subj /CN=another-thing 2>&1 && openssl x509 -req -in r.csr ` +
            `-CA ${emu.pki.caCertPath} -CAkey ${emu.pki.dir}/cakey.pem -CAcreateserial ` +
            `-CAserial ${dir}/serial -out c.pem -days 1 -extfile ext 2>&1`,
          ]);
          assert.ok(mk.ok, mk.out);
          const other = {
            cert: await Deno.readTextFile(`${dir}/c.pem`),
            key: await Deno.readTextFile(`${dir}/k.pem`),
          };
          const r = await iotFetch(iotUrl, { "x-amzn-iot-thingname": emu.thingName }, other);
          assert.equal(r.status, 403);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
        const bad = `https://${emu.iotEndpoint}/role-aliases/NoSuchAlias/credentials`;
        const r = await iotFetch(bad, { "x-amzn-iot-thingname": emu.thingName }, device);
        assert.equal(r.status, 404);
        assert.equal(typeof r.json.message, "string");
      },
    );

    await t.step(
      "control plane: describe 404, create, CREATING then ACTIVE, endpoints",
      async () => {
        const creds = await iotCreds();
        const missing = await call(
          emu.controlPlaneUrl,
          "/describeSignalingChannel",
          {
            ChannelName: "cam",
          },
          creds,
          { client },
        );
        assert.equal(missing.status, 404);
        assert.match(missing.headers.get("x-amzn-ErrorType") ?? "", /^ResourceNotFoundException/);
        assert.deepEqual(Object.keys(missing.json), ["message"]);
        assert.ok(missing.headers.get("date"));

        const created = await call(
          emu.controlPlaneUrl,
          "/createSignalingChannel",
          {
            ChannelName: "cam",
            ChannelType: "SINGLE_MASTER",
            SingleMasterConfiguration: { MessageTtlSeconds: 60 },
          },
          creds,
          { client },
        );
        assert.equal(created.status, 200);
        arn = created.json.ChannelARN as string;
        assert.match(arn, /^arn:aws:kinesisvideo:us-west-2:\d{12}:channel\/cam\/\d{13}$/);
        const again = await call(
          emu.controlPlaneUrl,
          "/createSignalingChannel",
          {
            ChannelName: "cam",
          },
          creds,
          { client },
        );
        assert.equal(again.status, 400);
        assert.match(again.headers.get("x-amzn-ErrorType") ?? "", /^ResourceInUseException/);

        const first = await call(
          emu.controlPlaneUrl,
          "/describeSignalingChannel",
          {
            ChannelName: "cam",
          },
          creds,
          { client },
        );
        assert.equal((first.json.ChannelInfo as Record<string, unknown>).ChannelStatus, "CREATING");
        await sleep(450);
        const d = await call(
          emu.controlPlaneUrl,
          "/describeSignalingChannel",
          {
            ChannelName: "cam",
          },
          creds,
          { client },
        );
        const info = d.json.ChannelInfo as Record<string, unknown>;
        assert.equal(info.ChannelStatus, "ACTIVE");
        assert.equal(info.ChannelARN, arn);
        assert.equal(info.ChannelName, "cam");
        assert.equal(info.ChannelType, "SINGLE_MASTER");
        assert.deepEqual(info.SingleMasterConfiguration, { MessageTtlSeconds: 60 });
        assert.equal(typeof info.CreationTime, "number");
        assert.equal(typeof info.Version, "string");

        const ep = await call(
          emu.controlPlaneUrl,
          "/getSignalingChannelEndpoint",
          {
            ChannelARN: arn,
            SingleMasterChannelEndpointConfiguration: {
              Protocols: ["WSS", "HTTPS"],
              Role: "MASTER",
            },
          },
          creds,
          { client },
        );
        assert.equal(ep.status, 200);
        const list = ep.json.ResourceEndpointList as {
          Protocol: string;
          ResourceEndpoint: string;
        }[];
        const byProto = Object.fromEntries(list.map((e) => [e.Protocol, e.ResourceEndpoint]));
        assert.match(byProto.HTTPS, /^https:\/\/127\.0\.0\.1:\d+$/);
        assert.match(byProto.WSS, /^wss:\/\/127\.0\.0\.1:\d+$/);
        assert.ok(emu.channels().some((c) => c.arn === arn && c.status === "ACTIVE"));
        await call(
          emu.controlPlaneUrl,
          "/createSignalingChannel",
          { ChannelName: "other" },
          creds,
          {
            client,
          },
        );
        const listed = await call(
          emu.controlPlaneUrl,
          "/listSignalingChannels",
          {
            ChannelNameCondition: { ComparisonOperator: "BEGINS_WITH", ComparisonValue: "ca" },
          },
          creds,
          { client },
        );
        assert.equal(listed.status, 200);
        assert.deepEqual(listed.json, { ChannelInfoList: [info] });
        const paged = await call(
          emu.controlPlaneUrl,
          "/listSignalingChannels",
          { MaxResults: 1 },
          creds,
          { client },
        );
        assert.equal((paged.json.ChannelInfoList as unknown[]).length, 1);
        assert.equal(paged.json.NextToken, "1");
      },
    );

    await t.step(
      "signatures: tampered, unknown key, wrong token, skewed, scoped wrong",
      async () => {
        const creds = await iotCreds();
        const body = { ChannelName: "cam" };
        const path = "/describeSignalingChannel";
        const expectErr = async (
          p: Promise<{ status: number; headers: Headers; json: Record<string, unknown> }>,
          status: number,
          type: string,
          message?: RegExp,
        ) => {
          const r = await p;
          assert.equal(r.status, status);
          assert.match(r.headers.get("x-amzn-ErrorType") ?? "", new RegExp(`^${type}`));
          if (message) assert.match(String(r.json.message), message);
        };
        await expectErr(
          call(emu.controlPlaneUrl, path, body, creds, { client, tamper: true }),
          403,
          "InvalidSignatureException",
          /signature we calculated does not match/,
        );
        await expectErr(
          call(emu.controlPlaneUrl, path, body, { ...creds, secretAccessKey: "x".repeat(40) }, {
            client,
          }),
          403,
          "InvalidSignatureException",
        );
        await expectErr(
          call(emu.controlPlaneUrl, path, body, { ...creds, accessKeyId: "ASIAAAAAAAAAAAAAAAAA" }, {
            client,
          }),
          403,
          "UnrecognizedClientException",
        );
        await expectErr(
          call(emu.controlPlaneUrl, path, body, { ...creds, sessionToken: "forged" }, { client }),
          403,
          "UnrecognizedClientException",
        );
        const old = new Date(Date.now() - 6 * 60_000).toISOString().replace(/[:-]|\.\d{3}/g, "");
        await expectErr(
          call(emu.controlPlaneUrl, path, body, creds, { client, datetime: old }),
          403,
          "InvalidSignatureException",
          /Signature expired/,
        );
        await expectErr(
          call(emu.controlPlaneUrl, path, body, creds, { client, region: "eu-west-1" }),
          403,
          "InvalidSignatureException",
          /scoped to a valid region/,
        );
        const ahead = new Date(Date.now() + 4 * 60_000).toISOString().replace(/[:-]|\.\d{3}/g, "");
        const ok = await call(emu.controlPlaneUrl, path, body, creds, { client, datetime: ahead });
        assert.equal(ok.status, 200, "4 minutes of skew is tolerated");
        const res = await fetch(emu.controlPlaneUrl + path, {
          method: "POST",
          body: "{}",
          client,
        });
        assert.equal(res.status, 403);
        assert.match(res.headers.get("x-amzn-ErrorType") ?? "", /^MissingAuthenticationToken/);
        await res.body?.cancel();
      },
    );

    await t.step(
      "clock skew fault: Date header moves and fresh signatures are refused",
      async () => {
        const creds = await iotCreds();
        emu.faults.clockSkewMs = 10 * 60_000;
        try {
          const r = await call(
            emu.controlPlaneUrl,
            "/describeSignalingChannel",
            {
              ChannelName: "cam",
            },
            creds,
            { client },
          );
          assert.equal(r.status, 403);
          assert.match(String(r.json.message), /Signature expired/);
          const serverTime = Date.parse(r.headers.get("date")!);
          assert.ok(Math.abs(serverTime - Date.now() - 10 * 60_000) < 5_000);
          const fixed = new Date(serverTime).toISOString().replace(/[:-]|\.\d{3}/g, "");
          const retried = await call(
            emu.controlPlaneUrl,
            "/describeSignalingChannel",
            {
              ChannelName: "cam",
            },
            creds,
            { client, datetime: fixed },
          );
          assert.equal(retried.status, 200, "signing with the Date header's time works");
        } finally {
          emu.faults.clockSkewMs = 0;
        }
      },
    );

    await t.step("ICE config of AWS's shape", async () => {
      const creds = await iotCreds();
      const r = await call(
        emu.controlPlaneUrl,
        "/v1/get-ice-server-config",
        {
          ChannelARN: arn,
          ClientId: "master",
          Service: "TURN",
        },
        creds,
        { client },
      );
      assert.equal(r.status, 200);
      const list = r.json.IceServerList as {
        Uris: string[];
        Username: string;
        Password: string;
        Ttl: number;
      }[];
      if (!emu.turn) {
        assert.deepEqual(list, []);
        return;
      }
      assert.equal(list.length, 2);
      for (const s of list) {
        assert.deepEqual(s.Uris, [
          `turn:127.0.0.1:${emu.turn.port}?transport=udp`,
          `turns:127.0.0.1:${emu.turn.tlsPort}?transport=udp`,
          `turns:127.0.0.1:${emu.turn.tlsPort}?transport=tcp`,
        ]);
        assert.equal(s.Ttl, 300);
        const [expiry] = s.Username.split(":");
        assert.ok(Math.abs(Number(expiry) - (Date.now() / 1000 + 300)) < 10);
        assert.match(s.Password, /^[A-Za-z0-9+/]{27}=$/);
      }
    });

    await t.step("relay: viewer ↔ master over WSS, exactly the reference's messages", async () => {
      const creds = await iotCreds();
      const wss = `wss://127.0.0.1:${new URL(emu.controlPlaneUrl).port}`;
      const master = await Ws.open(await presign(wss, arn, creds), client);
      const viewer = await Ws.open(
        await presign(wss, arn, emu.viewerCredentials, "viewer-1"),
        client,
      );
      try {
        assert.deepEqual(emu.connections(), [{
          channelArn: arn,
          master: true,
          viewers: ["viewer-1"],
        }]);
        const offer = b64({ type: "offer", sdp: "v=0\r\n" });
        viewer.send({ action: "SDP_OFFER", recipientClientId: "", messagePayload: offer });
        assert.deepEqual(await master.next(), {
          senderClientId: "viewer-1",
          messageType: "SDP_OFFER",
          messagePayload: offer,
        });
        const answer = b64({ type: "answer", sdp: "v=0\r\n" });
        master.send({
          action: "SDP_ANSWER",
          recipientClientId: "viewer-1",
          messagePayload: answer,
        });
        const got = await viewer.next();
        assert.equal(got.messageType, "SDP_ANSWER");
        assert.equal(got.messagePayload, answer);
        assert.ok(!got.senderClientId, "master messages carry no sender id");
        const cand = b64({ candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", sdpMid: "0" });
        master.send({
          action: "ICE_CANDIDATE",
          recipientClientId: "viewer-1",
          messagePayload: cand,
        });
        assert.equal((await viewer.next()).messageType, "ICE_CANDIDATE");

        const status = async (ws: Ws, msg: unknown, pattern: RegExp) => {
          ws.send(msg);
          const r = await ws.next();
          assert.equal(r.messageType, "STATUS_RESPONSE");
          const s = r.statusResponse as Record<string, string>;
          assert.equal(s.correlationId, "c1");
          assert.equal(s.statusCode, "400");
          assert.equal(typeof s.errorType, "string");
          assert.match(s.description, pattern);
        };
        await status(master, {
          action: "SDP_ANSWER",
          recipientClientId: "nobody",
          messagePayload: answer,
          correlationId: "c1",
        }, /not connected/);
        await status(master, {
          action: "SDP_ANSWER",
          messagePayload: answer,
          correlationId: "c1",
        }, /recipientClientId/);
        await status(master, {
          action: "BOGUS",
          recipientClientId: "viewer-1",
          messagePayload: answer,
          correlationId: "c1",
        }, /unknown action/);
        await status(viewer, {
          action: "SDP_OFFER",
          messagePayload: "not base64!",
          correlationId: "c1",
        }, /base64/);
        await status(master, {
          action: "ICE_CANDIDATE",
          recipientClientId: "viewer-1",
          messagePayload: btoa("x".repeat(11 * 1024)),
          correlationId: "c1",
        }, /too large/);
        // Refused messages are not relayed; the sockets still work afterwards.
        master.send("not json");
        viewer.send({ action: "ICE_CANDIDATE", messagePayload: cand });
        const relayed = await master.next();
        assert.equal(relayed.messageType, "ICE_CANDIDATE");
        assert.equal(viewer.messages.length, 0);
      } finally {
        await viewer.close();
        await master.close();
      }
    });

    await t.step("upgrade refused with HTTP 403/400 before the WebSocket exists", async () => {
      const creds = await iotCreds();
      const wss = `wss://127.0.0.1:${new URL(emu.controlPlaneUrl).port}`;
      const good = await presign(wss, arn, creds);
      const tampered = good.replace(/X-Amz-ChannelARN=[^&]+/, (m) => m + "x");
      let r = await rawUpgrade(tampered, ca);
      assert.equal(r.status, 403);
      assert.match(r.head, /x-amzn-errortype: InvalidSignatureException/i);
      const noToken = good.replace(/&?X-Amz-Security-Token=[^&]+/, "");
      assert.equal((await rawUpgrade(noToken, ca)).status, 403);
      const u = new URL(await presign(wss, arn, creds));
      u.searchParams.delete("X-Amz-ChannelARN");
      assert.equal((await rawUpgrade(u.toString(), ca)).status, 403, "signature no longer covers");
      const noArn = await presign(wss, "", creds);
      r = await rawUpgrade(noArn, ca);
      assert.ok(r.status === 400 || r.status === 404, `status ${r.status}`);
      const unknown = await presign(wss, arn + "0", creds);
      assert.equal((await rawUpgrade(unknown, ca)).status, 404);
      await assert.rejects(Ws.open(tampered, client));
      assert.equal((await rawUpgrade(good, ca)).status, 101);
    });

    await t.step("signaling answers WebSocket pings with pongs", async () => {
      const u = new URL(
        await presign(
          emu.browserControlPlaneUrl.replace("http:", "ws:"),
          arn,
          emu.viewerCredentials,
        ),
      );
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(u.port) });
      try {
        await conn.write(new TextEncoder().encode(
          `GET /${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        ));
        let got = new Uint8Array(0);
        const buf = new Uint8Array(4096);
        const readUntil = async (done: (b: Uint8Array) => boolean) => {
          while (!done(got)) {
            const n = await conn.read(buf);
            if (n === null) throw new Error("closed");
            got = new Uint8Array([...got, ...buf.subarray(0, n)]);
          }
        };
        const headEnd = (b: Uint8Array) => new TextDecoder().decode(b).indexOf("\r\n\r\n");
        await readUntil((b) => headEnd(b) >= 0);
        assert.match(new TextDecoder().decode(got), /^HTTP\/1\.1 101/);
        got = got.slice(headEnd(got) + 4);
        const mask = [1, 2, 3, 4];
        const payload = [...new TextEncoder().encode("hi")].map((b, i) => b ^ mask[i % 4]);
        await conn.write(new Uint8Array([0x89, 0x80 | 2, ...mask, ...payload]));
        await readUntil((b) => b.length >= 4);
        assert.equal(got[0], 0x8a, "a FIN pong frame");
        assert.equal(new TextDecoder().decode(got.subarray(2, 2 + got[1])), "hi");
      } finally {
        conn.close();
      }
    });

    await t.step(
      "limits: 10 viewers, the 11th refused; a new master replaces the old",
      async () => {
        const wss = `wss://127.0.0.1:${new URL(emu.controlPlaneUrl).port}`;
        const viewers: Ws[] = [];
        const masters: Ws[] = [];
        try {
          for (let i = 0; i < 10; i++) {
            viewers.push(
              await Ws.open(await presign(wss, arn, emu.viewerCredentials, `v${i}`), client),
            );
          }
          const eleventh = await presign(wss, arn, emu.viewerCredentials, "v10");
          const r = await rawUpgrade(eleventh, ca);
          assert.equal(r.status, 400);
          assert.match(r.head, /ClientLimitExceededException/);
          masters.push(await Ws.open(await presign(wss, arn, emu.viewerCredentials), client));
          masters.push(await Ws.open(await presign(wss, arn, emu.viewerCredentials), client));
          const ev = await masters[0].closed;
          assert.equal(ev.code, 1000);
          viewers[3].send({ action: "SDP_OFFER", messagePayload: b64({ type: "offer", sdp: "" }) });
          assert.equal((await masters[1].next()).senderClientId, "v3");
          assert.equal(emu.connections()[0].viewers.length, 10);
        } finally {
          await Promise.all([...viewers, ...masters].map((w) => w.close()));
        }
      },
    );

    await t.step("faults: GO_AWAY, RECONNECT_ICE_SERVER, dropped master", async () => {
      const wss = `wss://127.0.0.1:${new URL(emu.controlPlaneUrl).port}`;
      const master = await Ws.open(await presign(wss, arn, emu.viewerCredentials), client);
      try {
        assert.equal(emu.faults.goAway(), 1);
        assert.equal((await master.next()).messageType, "GO_AWAY");
        assert.equal(emu.faults.reconnectIceServer(), 1);
        assert.equal((await master.next()).messageType, "RECONNECT_ICE_SERVER");
        assert.equal(emu.faults.dropMaster(), 1);
        assert.equal((await master.closed).code, 1011);
        assert.equal(emu.connections().length, 0);
      } finally {
        await master.close();
      }
      const leaving = await Ws.open(await presign(wss, arn, emu.viewerCredentials), client);
      try {
        const sent = Date.now();
        assert.equal(emu.faults.goAway(200), 1);
        assert.equal((await leaving.next()).messageType, "GO_AWAY");
        const ev = await leaving.closed;
        assert.equal(ev.code, 1000);
        assert.ok(Date.now() - sent >= 150, "closed after the announced delay");
      } finally {
        await leaving.close();
      }
    });

    await t.step("faults: short connection age and idle timeout close sockets", async () => {
      const wss = `wss://127.0.0.1:${new URL(emu.controlPlaneUrl).port}`;
      emu.faults.maxConnectionMs = 300;
      try {
        const m = await Ws.open(await presign(wss, arn, emu.viewerCredentials), client);
        const started = Date.now();
        const t0 = setInterval(() => {
          try {
            m.send("keep busy");
          } catch { /* closed */ }
        }, 50);
        await m.closed.finally(() => clearInterval(t0));
        const took = Date.now() - started;
        assert.ok(took >= 250 && took < 2000, `closed after ${took} ms`);
      } finally {
        emu.faults.maxConnectionMs = 3600_000;
      }
      emu.faults.idleTimeoutMs = 300;
      try {
        const m = await Ws.open(await presign(wss, arn, emu.viewerCredentials), client);
        const started = Date.now();
        const ev = await m.closed;
        const took = Date.now() - started;
        assert.equal(ev.reason, "idle timeout");
        assert.ok(took >= 250 && took < 2000, `closed after ${took} ms`);
      } finally {
        emu.faults.idleTimeoutMs = 600_000;
      }
    });

    await t.step("faults: 5xx, throttling and 403 bursts, then success", async () => {
      const creds = await iotCreds();
      const describe = () =>
        call(emu.controlPlaneUrl, "/describeSignalingChannel", { ChannelName: "cam" }, creds, {
          client,
        });
      emu.faults.failNext(2, "5xx");
      assert.equal((await describe()).status, 500);
      assert.equal((await describe()).status, 500);
      assert.equal((await describe()).status, 200);
      emu.faults.failNext(1, "throttle");
      const th = await describe();
      assert.equal(th.status, 400);
      assert.match(th.headers.get("x-amzn-ErrorType") ?? "", /^ClientLimitExceededException/);
      emu.faults.failNext(1, "403", ["/getSignalingChannelEndpoint"]);
      assert.equal((await describe()).status, 200, "fault limited to another path");
      const ep = await call(
        emu.controlPlaneUrl,
        "/getSignalingChannelEndpoint",
        {
          ChannelARN: arn,
        },
        creds,
        { client },
      );
      assert.equal(ep.status, 403);
    });

    await t.step(
      "expired credentials: ExpiredTokenException on control plane and signaling",
      async () => {
        const creds = await iotCreds();
        const wss = `wss://127.0.0.1:${new URL(emu.controlPlaneUrl).port}`;
        const url = await presign(wss, arn, creds);
        emu.faults.expireCredentials();
        const r = await call(
          emu.controlPlaneUrl,
          "/describeSignalingChannel",
          {
            ChannelName: "cam",
          },
          creds,
          { client },
        );
        assert.equal(r.status, 403);
        assert.match(r.headers.get("x-amzn-ErrorType") ?? "", /^ExpiredTokenException/);
        const up = await rawUpgrade(url, ca);
        assert.equal(up.status, 403);
        assert.match(up.head, /ExpiredTokenException/);
        const fresh = await iotCreds();
        const ok = await call(
          emu.controlPlaneUrl,
          "/describeSignalingChannel",
          {
            ChannelName: "cam",
          },
          fresh,
          { client },
        );
        assert.equal(ok.status, 200, "new credentials from IoT work");
        emu.faults.credentialLifetimeSeconds = 1;
        const short = await iotCreds();
        await sleep(1100);
        const late = await call(
          emu.controlPlaneUrl,
          "/describeSignalingChannel",
          {
            ChannelName: "cam",
          },
          short,
          { client },
        );
        assert.match(late.headers.get("x-amzn-ErrorType") ?? "", /^ExpiredTokenException/);
        emu.faults.credentialLifetimeSeconds = 3600;
      },
    );

    await t.step(
      "plain-HTTP listener for browsers: CORS, ws:// endpoints, same SigV4",
      async () => {
        const base = emu.browserControlPlaneUrl;
        assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
        const pre = await fetch(base + "/getSignalingChannelEndpoint", {
          method: "OPTIONS",
          headers: {
            origin: "http://127.0.0.1:1",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,x-amz-date,content-type",
          },
        });
        await pre.body?.cancel();
        assert.equal(pre.status, 204);
        assert.equal(pre.headers.get("access-control-allow-origin"), "*");
        assert.match(pre.headers.get("access-control-allow-headers") ?? "", /authorization/);
        const ep = await call(base, "/getSignalingChannelEndpoint", {
          ChannelARN: arn,
          SingleMasterChannelEndpointConfiguration: { Protocols: ["WSS", "HTTPS"], Role: "VIEWER" },
        }, emu.viewerCredentials);
        assert.equal(ep.status, 200);
        assert.equal(ep.headers.get("access-control-allow-origin"), "*");
        const list = ep.json.ResourceEndpointList as {
          Protocol: string;
          ResourceEndpoint: string;
        }[];
        const byProto = Object.fromEntries(list.map((e) => [e.Protocol, e.ResourceEndpoint]));
        assert.equal(byProto.HTTPS, base);
        assert.equal(byProto.WSS, base.replace("http:", "ws:"));
        const bad = await call(
          base,
          "/describeSignalingChannel",
          { ChannelName: "cam" },
          emu.viewerCredentials,
          { tamper: true },
        );
        assert.equal(bad.status, 403);
        const wsUrl = await presign(byProto.WSS, arn, emu.viewerCredentials, "browser-1");
        assert.equal((await rawUpgrade(wsUrl.replace("browser-1", "browser-2"))).status, 403);
        const master = await Ws.open(await presign(byProto.WSS, arn, emu.viewerCredentials));
        const viewer = await Ws.open(wsUrl);
        try {
          viewer.send({ action: "SDP_OFFER", messagePayload: b64({ type: "offer", sdp: "" }) });
          assert.equal((await master.next()).senderClientId, "browser-1");
        } finally {
          await viewer.close();
          await master.close();
        }
      },
    );

    await t.step("request log names keys, never secrets", async () => {
      const creds = await iotCreds();
      await call(emu.controlPlaneUrl, "/describeSignalingChannel", { ChannelName: "cam" }, creds, {
        client,
      });
      const last = emu.requests.at(-1)!;
      assert.equal(last.path, "/describeSignalingChannel");
      assert.equal(last.status, 200);
      assert.equal(last.accessKeyId, creds.accessKeyId);
      const all = JSON.stringify([emu.requests, emu.iotRequests]);
      assert.ok(!all.includes(creds.secretAccessKey));
      assert.ok(!all.includes(creds.sessionToken!));
      assert.ok(!all.includes(emu.viewerCredentials.secretAccessKey));
    });

    await t.step("delete: the channel goes away and its sockets close", async () => {
      const wss = `wss://127.0.0.1:${new URL(emu.controlPlaneUrl).port}`;
      const master = await Ws.open(await presign(wss, arn, emu.viewerCredentials), client);
      const d = await call(
        emu.controlPlaneUrl,
        "/deleteSignalingChannel",
        { ChannelARN: arn },
        emu.viewerCredentials,
        { client },
      );
      assert.equal(d.status, 200);
      assert.equal((await master.closed).code, 1000);
      const gone = await call(
        emu.controlPlaneUrl,
        "/describeSignalingChannel",
        {
          ChannelName: "cam",
        },
        emu.viewerCredentials,
        { client },
      );
      assert.equal(gone.status, 404);
    });

    await t.step({
      name: "coturn: STUN on UDP, TCP and TLS; TURN Allocate with the REST credentials",
      ignore: !emu.turn,
      fn: async () => {
        const turn = emu.turn!;
        for (const transport of ["udp", "tcp", "tls"] as const) {
          const port = transport === "tls" ? turn.tlsPort : turn.port;
          const res = await stunExchange(transport, port, stunMessage(0x0001, []), ca);
          assert.equal(res.type, 0x0101, `binding over ${transport}`);
          const mapped = xorAddress(res.attrs.get(0x0020)!, res.txid);
          assert.equal(mapped.address, "127.0.0.1");
        }
        const creds = await call(
          emu.controlPlaneUrl,
          "/v1/get-ice-server-config",
          {
            ChannelARN: "x",
          },
          emu.viewerCredentials,
          { client },
        );
        assert.equal(creds.status, 404, "ICE config needs an existing channel");
        const { username, password } = await turn.credentials("test", 300);
        const ok = await turnAllocate(turn.port, username, password);
        assert.equal(
          ok.type,
          0x0103,
          `Allocate: ${errorCode(ok.attrs.get(0x0009) ?? new Uint8Array(4))} ${
            new TextDecoder().decode(ok.attrs.get(0x0009)?.slice(4))
          }`,
        );
        const relay = xorAddress(ok.attrs.get(0x0016)!, ok.txid);
        assert.equal(relay.address, "127.0.0.1");
        assert.ok(relay.port > 0);
        const wrong = await turnAllocate(turn.port, username, btoa("wrong password"));
        assert.equal(wrong.type, 0x0113);
        assert.equal(errorCode(wrong.attrs.get(0x0009)!), 401);
        const expired = await turnAllocate(
          turn.port,
          `${Math.floor(Date.now() / 1000) - 10}:x`,
          password,
        );
        assert.equal(expired.type, 0x0113, "expired REST username refused");
      },
    });
  } finally {
    client.close();
    await emu.close();
  }
});

Deno.test("emulator without TURN: channel activation, empty ICE server list, clean close", async () => {
  const emu = await startEmulator({ stateDir: STATE, turn: false, channelCreatingMs: 400 });
  try {
    assert.equal(emu.turn, undefined);
    const created = await call(emu.browserControlPlaneUrl, "/createSignalingChannel", {
      ChannelName: "solo",
    }, emu.viewerCredentials);
    const endpoint = () =>
      call(emu.browserControlPlaneUrl, "/getSignalingChannelEndpoint", {
        ChannelARN: created.json.ChannelARN,
      }, emu.viewerCredentials);
    assert.equal((await endpoint()).status, 404, "still CREATING");
    await sleep(450);
    assert.equal((await endpoint()).status, 200, "ACTIVE without a describe in between");
    const ice = await call(emu.browserControlPlaneUrl, "/v1/get-ice-server-config", {
      ChannelARN: created.json.ChannelARN,
      ClientId: "m",
    }, emu.viewerCredentials);
    assert.deepEqual(ice.json, { IceServerList: [] });
  } finally {
    await emu.close();
  }
  await emu.close();
});

Deno.test("bad options are refused with an EmulatorError naming the option", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ region: "Mars" }, /region "Mars"/],
    [{ thingName: "a b" }, /thingName "a b"/],
    [{ roleAlias: "" }, /roleAlias ""/],
    [{ credentialLifetimeSeconds: -1 }, /credentialLifetimeSeconds -1/],
    [{ idleTimeoutMs: Number.NaN }, /idleTimeoutMs/],
    [{ channelCreatingMs: -5 }, /channelCreatingMs -5/],
    [{ turn: "yes" }, /turn "yes"/],
  ];
  for (const [options, message] of cases) {
    await assert.rejects(
      startEmulator({ stateDir: STATE, ...options }),
      (e: unknown) => e instanceof EmulatorError && message.test(e.message),
      JSON.stringify(options),
    );
  }
});

Deno.test({
  name: "turn: true without coturn installed is a clear error",
  ignore: await hasTurnServer(),
  fn: async () => {
    await assert.rejects(startEmulator({ stateDir: STATE, turn: true }), /coturn/);
  },
});

// --- STUN/TURN messages (RFC 5389, RFC 5766), enough for Binding and Allocate ---

const MAGIC = 0x2112a442;

interface Stun {
  type: number;
  txid: Uint8Array;
  attrs: Map<number, Uint8Array>;
}

function stunMessage(
  type: number,
  attrs: [number, Uint8Array][],
  integrityKey?: Uint8Array,
): Uint8Array {
  const parts: number[] = [];
  for (const [t, v] of attrs) {
    parts.push(t >> 8, t & 255, v.length >> 8, v.length & 255, ...v);
    while (parts.length % 4) parts.push(0);
  }
  const txid = crypto.getRandomValues(new Uint8Array(12));
  const build = (body: number[], extra: number) => {
    const len = body.length + extra;
    return new Uint8Array([
      type >> 8,
      type & 255,
      len >> 8,
      len & 255,
      0x21,
      0x12,
      0xa4,
      0x42,
      ...txid,
      ...body,
    ]);
  };
  if (!integrityKey) return build(parts, 0);
  const mac = createHmac("sha1", integrityKey).update(build(parts, 24)).digest();
  return build([...parts, 0x00, 0x08, 0x00, 0x14, ...mac], 0);
}

function parseStun(b: Uint8Array): Stun {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  assert.equal(v.getUint32(4), MAGIC, "STUN magic cookie");
  const len = v.getUint16(2);
  const attrs = new Map<number, Uint8Array>();
  for (let o = 20; o < 20 + len;) {
    const t = v.getUint16(o);
    const l = v.getUint16(o + 2);
    attrs.set(t, b.slice(o + 4, o + 4 + l));
    o += 4 + Math.ceil(l / 4) * 4;
  }
  return { type: v.getUint16(0), txid: b.slice(8, 20), attrs };
}

function xorAddress(v: Uint8Array, _txid: Uint8Array): { address: string; port: number } {
  const port = ((v[2] << 8) | v[3]) ^ (MAGIC >>> 16);
  const ip = [0, 1, 2, 3].map((i) => v[4 + i] ^ ((MAGIC >>> (24 - 8 * i)) & 255));
  return { address: ip.join("."), port };
}

function errorCode(v: Uint8Array): number {
  return v[2] * 100 + v[3];
}

async function stunExchange(
  transport: "udp" | "tcp" | "tls",
  port: number,
  message: Uint8Array,
  caCert?: string,
  udp?: Deno.DatagramConn,
): Promise<Stun> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no STUN answer over ${transport}`)), 3000);
  });
  if (transport === "udp") {
    const sock = udp ?? Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    try {
      await sock.send(message, { hostname: "127.0.0.1", port, transport: "udp" });
      const [data] = await Promise.race([sock.receive(), timeout]);
      return parseStun(data);
    } finally {
      clearTimeout(timer);
      if (!udp) sock.close();
    }
  }
  const conn = transport === "tls"
    ? await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caCert!] })
    : await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(message);
    let got = new Uint8Array(0);
    const buf = new Uint8Array(2048);
    const read = async () => {
      while (got.length < 20 || got.length < 20 + ((got[2] << 8) | got[3])) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("closed");
        got = new Uint8Array([...got, ...buf.subarray(0, n)]);
      }
    };
    await Promise.race([read(), timeout]);
    return parseStun(got);
  } finally {
    clearTimeout(timer);
    conn.close();
  }
}

async function turnAllocate(port: number, username: string, password: string): Promise<Stun> {
  // One socket for both requests: coturn's nonce belongs to the client's address and port.
  const udp = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  try {
    return await allocateOn(udp, port, username, password);
  } finally {
    udp.close();
  }
}

async function allocateOn(
  udp: Deno.DatagramConn,
  port: number,
  username: string,
  password: string,
): Promise<Stun> {
  const transport: [number, Uint8Array] = [0x0019, new Uint8Array([17, 0, 0, 0])];
  const first = await stunExchange("udp", port, stunMessage(0x0003, [transport]), undefined, udp);
  assert.equal(first.type, 0x0113);
  assert.equal(errorCode(first.attrs.get(0x0009)!), 401);
  const realm = first.attrs.get(0x0014)!;
  const nonce = first.attrs.get(0x0015)!;
  const enc = new TextEncoder();
  const key = createHash("md5")
    .update(`${username}:${new TextDecoder().decode(realm)}:${password}`)
    .digest();
  return await stunExchange(
    "udp",
    port,
    stunMessage(0x0003, [transport, [0x0006, enc.encode(username)], [0x0014, realm], [
      0x0015,
      nonce,
    ]], key),
    undefined,
    udp,
  );
}

Deno.test("main.ts: prints a working environment, keeps viewer keys in a 600 file, stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../src/emulator/main.ts", import.meta.url).pathname],
    env: { KVS_EMULATOR_STATE_DIR: `${dir}/state` },
    cwd: dir,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    while (!out.includes("# viewer keys")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const env = Object.fromEntries(
      [...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]),
    );
    const keysPath = out.match(/# viewer keys of AKIA\w+: (.+)$/m)![1];
    assert.equal((await Deno.stat(keysPath)).mode! & 0o777, 0o600);
    const keys = JSON.parse(await Deno.readTextFile(keysPath));
    assert.ok(!out.includes(keys.secretAccessKey), "the secret is not printed");
    const c = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(env.AWS_KVS_CACERT_PATH)],
      cert: await Deno.readTextFile(env.AWS_IOT_CORE_CERT),
      key: await Deno.readTextFile(env.AWS_IOT_CORE_PRIVATE_KEY),
    });
    try {
      const res = await fetch(
        `https://${env.AWS_IOT_CORE_CREDENTIAL_ENDPOINT}/role-aliases/` +
          `${env.AWS_IOT_CORE_ROLE_ALIAS}/credentials`,
        { headers: { "x-amzn-iot-thingname": env.AWS_IOT_CORE_THING_NAME }, client: c },
      );
      const creds = (await res.json()).credentials;
      const r = await call(
        env.AWS_ENDPOINT_URL_KINESIS_VIDEO,
        "/createSignalingChannel",
        {
          ChannelName: "main",
        },
        creds,
        { client: c },
      );
      assert.equal(r.status, 200);
      const browser = out.match(/plain HTTP, ws:\/\/ signaling\): (\S+)/)![1];
      const v = await call(browser, "/describeSignalingChannel", { ChannelName: "main" }, keys);
      assert.equal(v.status, 200);
    } finally {
      c.close();
    }
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    await assert.rejects(Deno.stat(keysPath), Deno.errors.NotFound);
  } finally {
    clearTimeout(killer);
    await reader.cancel().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
