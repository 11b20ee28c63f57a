// The KVS control-plane client against the emulator, whose every check of our aws4fetch
// signatures is done by the independent @smithy/signature-v4.
import assert from "node:assert/strict";
import {
  AwsNetworkError,
  AwsServiceError,
  controlPlaneEndpoint,
  createCaHttpClient,
  isRetryable,
  KvsClient,
  presignUrl,
  RetryPolicy,
} from "../src/aws/mod.ts";
import { IotCredentialProvider, StaticCredentialProvider } from "../src/credentials/mod.ts";
import { startEmulator } from "../src/emulator/mod.ts";
import { classifyControlPlaneError } from "../src/signaling/errors.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;
const instant = { sleep: () => Promise.resolve(), random: () => 0.5 };

Deno.test("KVS control-plane client against the emulator", async (t) => {
  const emu = await startEmulator({ stateDir: STATE });
  const http = await createCaHttpClient(emu.pki.caCertPath);
  const creds = IotCredentialProvider.fromEnv(emu.env());
  const kvs = new KvsClient({
    region: emu.region,
    credentials: creds,
    endpoint: emu.env().AWS_ENDPOINT_URL_KINESIS_VIDEO,
    httpClient: http,
    retry: instant,
  });
  const paths = (from: number) => emu.requests.slice(from).map((r) => `${r.path} ${r.status}`);
  try {
    let arn = "";
    await t.step("Describe 404 → Create → Describe → endpoints → ICE config", async () => {
      assert.equal(kvs.endpoint, emu.controlPlaneUrl);
      const err = await kvs.describeSignalingChannel("aws-test").catch((e) => e);
      assert.ok(err instanceof AwsServiceError);
      assert.equal(err.status, 404);
      assert.equal(err.errorType, "ResourceNotFoundException");
      assert.equal(classifyControlPlaneError(err), "not-found");
      assert.ok(err.requestId);
      arn = await kvs.createSignalingChannel("aws-test");
      assert.match(arn, /^arn:aws:kinesisvideo:us-west-2:\d{12}:channel\/aws-test\/\d+$/);
      await new Promise((r) => setTimeout(r, 150)); // CREATING → ACTIVE
      const info = await kvs.describeSignalingChannel("aws-test");
      assert.equal(info.ChannelARN, arn);
      assert.equal(info.ChannelStatus, "ACTIVE");
      assert.equal(info.ChannelType, "SINGLE_MASTER");
      assert.equal(info.SingleMasterConfiguration?.MessageTtlSeconds, 60);
      const ep = await kvs.getSignalingChannelEndpoint(arn, "MASTER");
      assert.match(ep.wss, /^wss:\/\/127\.0\.0\.1:\d+$/);
      assert.match(ep.https, /^https:\/\/127\.0\.0\.1:\d+$/);
      const ice = await kvs.getIceServerConfig(ep.https, arn, "ProducerMaster");
      if (emu.turn) {
        assert.equal(ice.length, 2);
        for (const s of ice) {
          assert.deepEqual(s.urls.map((u) => u.replace(/:\d+\?/, ":P?")), [
            "turn:127.0.0.1:P?transport=udp",
            "turns:127.0.0.1:P?transport=udp",
            "turns:127.0.0.1:P?transport=tcp",
          ]);
          assert.match(s.username!, /^\d+:ProducerMaster-\d$/);
          assert.ok(s.credential);
          assert.equal(s.ttlSeconds, 300);
        }
      }
    });

    await t.step("a 5xx burst is retried with backoff and then succeeds", async () => {
      const from = emu.requests.length;
      emu.faults.failNext(2, "5xx");
      await kvs.describeSignalingChannel("aws-test");
      assert.deepEqual(paths(from), [
        "/describeSignalingChannel 500",
        "/describeSignalingChannel 500",
        "/describeSignalingChannel 200",
      ]);
    });

    await t.step(
      "throttling beyond the attempts: a typed error after exactly 4 tries",
      async () => {
        const from = emu.requests.length;
        emu.faults.failNext(4, "throttle");
        const err = await kvs.describeSignalingChannel("aws-test").catch((e) => e);
        assert.ok(err instanceof AwsServiceError);
        assert.equal(err.errorType, "ClientLimitExceededException");
        assert.equal(emu.requests.length - from, 4);
        assert.equal(classifyControlPlaneError(err), "retry");
      },
    );

    await t.step("403 → credentials fetched again once, then the call succeeds", async () => {
      const fetches = creds.fetches;
      emu.faults.failNext(1, "403");
      await kvs.describeSignalingChannel("aws-test");
      assert.equal(creds.fetches, fetches + 1);
    });

    await t.step("credentials expired on the service side are replaced transparently", async () => {
      const before = (await creds.getCredentials()).accessKeyId;
      emu.faults.expireCredentials();
      const from = emu.requests.length;
      await kvs.describeSignalingChannel("aws-test");
      assert.equal(emu.requests[from].errorType, "ExpiredTokenException");
      assert.equal(emu.requests[from + 1].status, 200);
      assert.notEqual((await creds.getCredentials()).accessKeyId, before);
    });

    await t.step("clock 10 min off: refused once, corrected from Date, then fine", async () => {
      emu.faults.clockSkewMs = 10 * 60_000;
      try {
        const from = emu.requests.length;
        await kvs.describeSignalingChannel("aws-test");
        assert.equal(emu.requests[from].status, 403);
        assert.equal(emu.requests[from].errorType, "InvalidSignatureException");
        assert.equal(emu.requests[from + 1].status, 200);
        const offset = kvs.clock.offset(new URL(emu.controlPlaneUrl).host);
        assert.ok(Math.abs(offset - 10 * 60_000) < 5000, `offset ${offset}`);
        // Later calls are signed with the corrected time straight away.
        const next = emu.requests.length;
        await kvs.describeSignalingChannel("aws-test");
        assert.deepEqual(paths(next), ["/describeSignalingChannel 200"]);
      } finally {
        emu.faults.clockSkewMs = 0;
      }
    });

    await t.step("a wrong secret is refused as AWS refuses it", async () => {
      const bad = new KvsClient({
        region: emu.region,
        credentials: new StaticCredentialProvider({
          accessKeyId: emu.viewerCredentials.accessKeyId,
          secretAccessKey: "wrong" + emu.viewerCredentials.secretAccessKey.slice(5),
        }),
        endpoint: emu.controlPlaneUrl,
        httpClient: http,
        retry: instant,
      });
      const err = await bad.describeSignalingChannel("aws-test").catch((e) => e);
      assert.ok(err instanceof AwsServiceError);
      assert.equal(err.errorType, "InvalidSignatureException");
      assert.match(err.message, /signature we calculated does not match/);
      assert.equal(classifyControlPlaneError(err), "auth");
      const unknown = new KvsClient({
        region: emu.region,
        credentials: new StaticCredentialProvider({
          accessKeyId: "AKIANOBODY",
          secretAccessKey: "x",
        }),
        endpoint: emu.controlPlaneUrl,
        httpClient: http,
        retry: instant,
      });
      const e2 = await unknown.describeSignalingChannel("aws-test").catch((e) => e);
      assert.equal(e2.errorType, "UnrecognizedClientException");
    });

    await t.step("the presigned signaling URL has the reference's shape", async () => {
      const ep = await kvs.getSignalingChannelEndpoint(arn, "MASTER");
      const url = new URL(await kvs.presignSignalingUrl(ep.wss, arn));
      assert.equal(url.pathname, "/");
      const q = url.searchParams;
      assert.equal(q.get("X-Amz-ChannelARN"), arn);
      assert.equal(q.get("X-Amz-ClientId"), null, "the master has no ClientId");
      assert.equal(q.get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
      assert.equal(q.get("X-Amz-Expires"), "299");
      assert.equal(q.get("X-Amz-SignedHeaders"), "host");
      assert.ok(q.get("X-Amz-Security-Token"));
      assert.match(
        q.get("X-Amz-Credential")!,
        /^ASIA\w+\/\d{8}\/us-west-2\/kinesisvideo\/aws4_request$/,
      );
      assert.match(q.get("X-Amz-Signature")!, /^[0-9a-f]{64}$/);
      const viewer = new URL(await kvs.presignSignalingUrl(ep.wss, arn, "viewer-1"));
      assert.equal(viewer.searchParams.get("X-Amz-ClientId"), "viewer-1");
    });

    await t.step("Delete removes the channel", async () => {
      const info = await kvs.describeSignalingChannel("aws-test");
      await kvs.deleteSignalingChannel(info.ChannelARN, info.Version);
      const err = await kvs.describeSignalingChannel("aws-test").catch((e) => e);
      assert.equal(err.status, 404);
    });
  } finally {
    creds.close();
    http.close();
    await emu.close();
  }
});

Deno.test("control plane unreachable: a network error after the retries", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  let waits = 0;
  const kvs = new KvsClient({
    region: "us-west-2",
    credentials: new StaticCredentialProvider({ accessKeyId: "AKID", secretAccessKey: "s" }),
    endpoint: `http://127.0.0.1:${port}`,
    retry: { maxAttempts: 3, sleep: () => (waits++, Promise.resolve()) },
  });
  const err = await kvs.describeSignalingChannel("x").catch((e) => e);
  assert.ok(err instanceof AwsNetworkError, String(err));
  assert.match(
    err.message,
    /DescribeSignalingChannel to http:\/\/127\.0\.0\.1:\d+\/describeSignalingChannel failed: .*refused/i,
  );
  assert.equal(waits, 2);
  assert.equal(classifyControlPlaneError(err), "retry");
});

Deno.test("endpoint overrides, retry policy and retryable statuses", async () => {
  assert.equal(controlPlaneEndpoint("eu-west-1"), "https://kinesisvideo.eu-west-1.amazonaws.com");
  assert.equal(
    controlPlaneEndpoint("cn-north-1"),
    "https://kinesisvideo.cn-north-1.amazonaws.com.cn",
  );
  assert.equal(controlPlaneEndpoint("us-west-2", "https://a/"), "https://a");
  assert.equal(controlPlaneEndpoint("us-west-2", " https://b "), "https://b");
  assert.equal(
    controlPlaneEndpoint("eu-west-1", ""),
    "https://kinesisvideo.eu-west-1.amazonaws.com",
  );
  const p = new RetryPolicy({ random: () => 0.999999 });
  assert.ok(p.delay(0) < 100 && p.delay(0) > 99);
  assert.ok(p.delay(3) < 800 && p.delay(3) > 799);
  assert.ok(p.delay(20) <= 10_000);
  assert.equal(new RetryPolicy({ random: () => 0 }).delay(5), 0);
  assert.ok(isRetryable(500) && isRetryable(429) && isRetryable(400, "ThrottlingException"));
  assert.ok(!isRetryable(404, "ResourceNotFoundException") && !isRetryable(403));
  // A presigned URL keeps the caller's query and signs the token inside it.
  const url = new URL(
    await presignUrl(
      { accessKeyId: "ASIAX", secretAccessKey: "s", sessionToken: "a+b/c=" },
      { url: "wss://example.com/?X-Amz-ChannelARN=arn", region: "us-west-2", time: 0 },
    ),
  );
  assert.equal(url.searchParams.get("X-Amz-Security-Token"), "a+b/c=");
  assert.equal(url.searchParams.get("X-Amz-Date"), "19700101T000000Z");
  assert.ok(url.search.indexOf("X-Amz-Security-Token") < url.search.indexOf("X-Amz-Signature"));
});

Deno.test("bad AWS answers: clear errors naming the operation and what is wrong", async () => {
  let body = "";
  let status = 200;
  let headers: Record<string, string> = {};
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(body, { status, headers }),
  );
  const kvs = new KvsClient({
    region: "us-west-2",
    credentials: new StaticCredentialProvider({ accessKeyId: "AKID", secretAccessKey: "s" }),
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    retry: { maxAttempts: 1 },
  });
  try {
    body = "<html>oops</html>";
    await assert.rejects(
      kvs.describeSignalingChannel("x"),
      /DescribeSignalingChannel: the response body is not JSON/,
    );
    body = JSON.stringify({ ChannelInfo: { ChannelName: "x" } });
    await assert.rejects(kvs.describeSignalingChannel("x"), /ChannelARN and ChannelStatus missing/);
    body = JSON.stringify({
      ResourceEndpointList: [{ Protocol: "HTTPS", ResourceEndpoint: "https://a" }],
    });
    await assert.rejects(
      kvs.getSignalingChannelEndpoint("arn", "MASTER"),
      /expected WSS and HTTPS endpoints, got HTTPS/,
    );
    body = JSON.stringify({ IceServerList: [{ Username: "u" }] });
    await assert.rejects(
      kvs.getIceServerConfig(`http://127.0.0.1:${server.addr.port}`, "arn", "c"),
      /IceServerList\[0\]\.Uris is missing/,
    );
    body = JSON.stringify({});
    await assert.rejects(kvs.createSignalingChannel("x"), /ChannelARN missing/);
    status = 400;
    body = JSON.stringify({
      __type: "com.amazonaws#InvalidArgumentException",
      Message: "bad name",
    });
    const err = await kvs.describeSignalingChannel("x").catch((e) => e);
    assert.ok(err instanceof AwsServiceError);
    assert.equal(err.errorType, "InvalidArgumentException");
    assert.equal(err.awsMessage, "bad name");
    status = 503;
    body = "";
    headers = { "x-amzn-RequestId": "req-1" };
    const e2 = await kvs.describeSignalingChannel("x").catch((e) => e);
    assert.equal(e2.errorType, "HTTP503");
    assert.equal(e2.requestId, "req-1");
  } finally {
    await server.shutdown();
  }
});
