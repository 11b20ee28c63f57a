// The viewer page on its own: it loads, reports clear errors, signs its control-plane calls
// correctly. Playback through the product (emulator + master) is in e2e_test.ts.
import assert from "node:assert/strict";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";
import { serveViewer } from "../web/serve.ts";
import { launchBrowser } from "./support/browser.ts";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const TOKEN = "FwoGZXIvYXdzEXAMPLETOKEN+/=";

/** A port with nothing listening on it. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Check a request's SigV4 `authorization` header with the AWS SDK's own signer: re-sign the
 * same signed headers at the same time and compare signatures.
 */
async function verifySigV4(req: Request, body: string): Promise<string | null> {
  const auth = req.headers.get("authorization") ?? "";
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/
      .exec(auth);
  if (!m) return `malformed authorization header`;
  const [, keyId, , region, service, signedHeaders, signature] = m;
  if (keyId !== "AKIDEXAMPLE") return `wrong access key ${keyId}`;
  const amzDate = req.headers.get("x-amz-date") ?? "";
  const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!d) return `bad x-amz-date ${amzDate}`;
  const signingDate = new Date(Date.UTC(+d[1], +d[2] - 1, +d[3], +d[4], +d[5], +d[6]));
  const url = new URL(req.url);
  const headers: Record<string, string> = {};
  for (const h of signedHeaders.split(";")) headers[h] = req.headers.get(h) ?? "";
  const signer = new SignatureV4({
    credentials: { accessKeyId: keyId, secretAccessKey: SECRET, sessionToken: TOKEN },
    region,
    service,
    sha256: Sha256,
    applyChecksum: false,
  });
  const signed = await signer.sign({
    method: req.method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: {},
    headers,
    body,
  }, { signingDate, signableHeaders: new Set(signedHeaders.split(";")) });
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers["authorization"]))?.[1];
  return expected === signature
    ? null
    : `signature mismatch (service ${service}, region ${region})`;
}

Deno.test("viewer page server", async (t) => {
  const server = await serveViewer();
  try {
    await t.step("serves the page, its script and both third-party browser files", async () => {
      const page = await (await fetch(server.url)).text();
      assert.match(page, /<video id="video"/);
      assert.match(page, /\/vendor\/kvs-webrtc\.min\.js/);
      const js = await fetch(new URL("/viewer.js", server.url));
      assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
      assert.match(await js.text(), /globalThis\.viewerState/);
      const sdk = await (await fetch(new URL("/vendor/kvs-webrtc.min.js", server.url))).text();
      assert.match(sdk, /SignalingClient/);
      const a4 = await (await fetch(new URL("/vendor/aws4fetch.esm.mjs", server.url))).text();
      assert.match(a4, /class AwsClient/);
      const missing = await fetch(new URL("/nope", server.url));
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    });
  } finally {
    await server.close();
  }
});

Deno.test("viewer page in headless Chromium", async (t) => {
  const server = await serveViewer();
  const browser = await launchBrowser();
  try {
    await t.step("loads, exposes the SDK global and an idle status", async () => {
      const viewer = await browser.openViewer({ pageUrl: server.url });
      const sdk = await viewer.page.evaluate(() => {
        const g = globalThis as unknown as {
          KVSWebRTC?: { VERSION: string; SignalingClient: unknown; SigV4RequestSigner: unknown };
        };
        return {
          version: g.KVSWebRTC?.VERSION,
          client: typeof g.KVSWebRTC?.SignalingClient,
          signer: typeof g.KVSWebRTC?.SigV4RequestSigner,
        };
      });
      assert.deepEqual(sdk, { version: "2.9.0", client: "function", signer: "function" });
      const status = await viewer.status();
      assert.equal(status.state, "idle");
      const shown = JSON.parse(await viewer.page.locator("#status").textContent() ?? "{}");
      assert.deepEqual(shown, status);
      await viewer.close();
    });

    await t.step("unreachable control plane: a clear error state", async () => {
      const endpoint = `http://127.0.0.1:${closedPort()}`;
      const viewer = await browser.openViewer({
        pageUrl: server.url,
        params: {
          channel: "demo-channel",
          region: "us-west-2",
          endpoint,
          accessKeyId: "AKIDEXAMPLE",
          secretAccessKey: SECRET,
          autostart: "1",
        },
      });
      const s = await viewer.waitFor((s) => s.state === "error", 10_000, "error state");
      assert.equal(s.step, "DescribeSignalingChannel");
      assert.match(s.error ?? "", new RegExp(`DescribeSignalingChannel: cannot reach ${endpoint}`));
      assert.equal(await viewer.page.locator("#state").textContent(), "error");
      await viewer.close();
    });

    await t.step("the form starts a session with what was typed", async () => {
      const viewer = await browser.openViewer({ pageUrl: server.url });
      const endpoint = `http://127.0.0.1:${closedPort()}`;
      await viewer.page.fill("#channel", "typed-channel");
      await viewer.page.fill("#region", "ap-south-1");
      await viewer.page.fill("#endpoint", endpoint);
      await viewer.page.fill("#accessKeyId", "AKIDEXAMPLE");
      await viewer.page.fill("#secretAccessKey", SECRET);
      await viewer.page.check("#forceTurn");
      await viewer.page.click("#start");
      const s = await viewer.waitFor((s) => s.state === "error", 10_000, "error state");
      assert.equal(s.forceTurn, true);
      assert.match(s.error ?? "", new RegExp(`cannot reach ${endpoint}`));
      assert.ok(!(await viewer.page.locator("#status").textContent())?.includes(SECRET));
      await viewer.close();
    });

    await t.step("missing credentials: error names them", async () => {
      const viewer = await browser.openViewer({
        pageUrl: server.url,
        params: { channel: "c", region: "us-west-2", autostart: "1" },
      });
      const s = await viewer.waitFor((s) => s.state === "error", 5_000, "error state");
      assert.match(s.error ?? "", /access key id and secret access key are required/);
      await viewer.close();
    });

    await t.step(
      "control-plane requests are SigV4-signed correctly; an AWS error type is reported",
      async () => {
        const seen: { path: string; problem: string | null; body: unknown }[] = [];
        const cors = {
          "access-control-allow-origin": "*",
          "access-control-allow-headers": "*",
          "access-control-allow-methods": "POST",
          "access-control-expose-headers": "x-amzn-ErrorType, date",
        };
        const cp = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
          if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: cors });
          const body = await req.text();
          seen.push({
            path: new URL(req.url).pathname,
            problem: await verifySigV4(req, body),
            body: JSON.parse(body),
          });
          return new Response(JSON.stringify({ message: "The requested channel is not found" }), {
            status: 404,
            headers: {
              ...cors,
              "content-type": "application/json",
              "x-amzn-ErrorType": "ResourceNotFoundException:http://internal.amazon.com/",
            },
          });
        });
        try {
          const viewer = await browser.openViewer({
            pageUrl: server.url,
            params: {
              channel: "no-such-channel",
              region: "eu-west-1",
              endpoint: `http://127.0.0.1:${cp.addr.port}`,
              accessKeyId: "AKIDEXAMPLE",
              secretAccessKey: SECRET,
              sessionToken: TOKEN,
              autostart: "1",
            },
          });
          const s = await viewer.waitFor((s) => s.state === "error", 10_000, "error state");
          assert.match(
            s.error ?? "",
            /^DescribeSignalingChannel: HTTP 404 ResourceNotFoundException The requested channel is not found$/,
          );
          assert.deepEqual(seen, [{
            path: "/describeSignalingChannel",
            problem: null,
            body: { ChannelName: "no-such-channel" },
          }]);
          const text = (await viewer.page.content()) + viewer.console.join("\n");
          assert.ok(!text.includes(SECRET.slice(0, 12)), "secret key not shown or logged");
          assert.ok(!text.includes("EXAMPLETOKEN"), "session token not shown or logged");
          await viewer.close();
        } finally {
          await cp.shutdown();
        }
      },
    );
  } finally {
    await browser.close();
    await server.close();
  }
});
