// Credential providers against a real TLS server that requires client certificates: the
// emulator's IoT credential endpoint (node:https, requestCert + rejectUnauthorized).
import assert from "node:assert/strict";
import { outOfDateCertificates } from "./support/certificates.ts";
import {
  checkCertificateValidity,
  CredentialsError,
  EnvCredentialProvider,
  fatalCredentialsError,
  IotCredentialProvider,
  type IotCredentialProviderOptions,
  loadDeviceCertificate,
  parseIotCredentials,
  RefreshingCredentialProvider,
  StaticCredentialProvider,
} from "../src/credentials/mod.ts";
import { type Emulator, startEmulator } from "../src/emulator/mod.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;

function iotOptions(emu: Emulator): IotCredentialProviderOptions {
  return {
    endpoint: emu.iotEndpoint,
    roleAlias: emu.roleAlias,
    thingName: emu.thingName,
    certPath: emu.pki.deviceCertPath,
    keyPath: emu.pki.deviceKeyPath,
    caCertPath: emu.pki.caCertPath,
  };
}

async function rejectsWith(
  p: Promise<unknown>,
  code: string,
  message: RegExp,
  fatal?: boolean,
): Promise<CredentialsError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CredentialsError, `expected CredentialsError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    if (fatal !== undefined) assert.equal(e.fatal, fatal, `fatal for ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** A TCP listener on 127.0.0.1 that counts connections (and answers none). */
function countingListener(): { endpoint: string; accepted: () => number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted = 0;
  (async () => {
    for await (const conn of l) {
      accepted++;
      conn.close();
    }
  })().catch(() => {});
  return {
    endpoint: `127.0.0.1:${(l.addr as Deno.NetAddr).port}`,
    accepted: () => accepted,
    close: () => l.close(),
  };
}

Deno.test("IoT credential provider over mutual TLS", async (t) => {
  const emu = await startEmulator({ stateDir: STATE, turn: false });
  const providers: IotCredentialProvider[] = [];
  const make = (o: Partial<IotCredentialProviderOptions> = {}) => {
    const p = new IotCredentialProvider({ ...iotOptions(emu), ...o });
    providers.push(p);
    return p;
  };
  try {
    await t.step(
      "gets temporary credentials of AWS's shape with the thing-name header",
      async () => {
        const p = make();
        const c = await p.getCredentials();
        assert.match(c.accessKeyId, /^ASIA[A-Z2-7]{16}$/);
        assert.ok(c.secretAccessKey.length >= 40 && c.sessionToken!.length > 100);
        const left = c.expiration!.getTime() - Date.now();
        assert.ok(left > 3500_000 && left <= 3600_000, `expires in ${left} ms`);
        assert.equal(p.url, `https://${emu.iotEndpoint}/role-aliases/${emu.roleAlias}/credentials`);
        const last = emu.iotRequests.at(-1)!;
        assert.equal(last.status, 200);
        assert.equal(last.thingName, emu.thingName);
      },
    );

    await t.step("the endpoint refuses a TLS client without a certificate", async () => {
      const client = Deno.createHttpClient({
        caCerts: [await Deno.readTextFile(emu.pki.caCertPath)],
      });
      try {
        await assert.rejects(
          fetch(`https://${emu.iotEndpoint}/role-aliases/${emu.roleAlias}/credentials`, {
            client,
            headers: { "x-amzn-iot-thingname": emu.thingName },
          }),
          TypeError,
        );
      } finally {
        client.close();
      }
    });

    await t.step("a certificate from another CA: the TLS refusal and its reason", async () => {
      await rejectsWith(
        make({ certPath: emu.pki.rogueCertPath, keyPath: emu.pki.rogueKeyPath }).getCredentials(),
        "IOT_TLS",
        /refused the TLS handshake: .+AWS_IOT_CORE_CERT/,
        false,
      );
    });

    await t.step("a CA bundle that does not sign the endpoint: refused, reason given", async () => {
      const e = await rejectsWith(
        make({ caCertPath: `${emu.pki.dir}/rogue-ca.pem` }).getCredentials(),
        "IOT_TLS",
        /AWS_KVS_CACERT_PATH/,
      );
      assert.doesNotMatch(e.message, /: fetch failed\./, "the TLS reason, not just 'fetch failed'");
    });

    await t.step("a key that does not match the certificate: fatal, names both files", async () => {
      const e = await rejectsWith(
        make({ keyPath: emu.pki.rogueKeyPath }).getCredentials(),
        "IOT_KEY_MISMATCH",
        new RegExp(`${emu.pki.rogueKeyPath}.*AWS_IOT_CORE_PRIVATE_KEY.*certificate\\.pem`),
        true,
      );
      assert.equal(e.path, emu.pki.rogueKeyPath);
    });

    await t.step("missing and non-PEM files: fatal, named with their setting", async () => {
      const e = await rejectsWith(
        make({ certPath: "/nonexistent/certificate.pem" }).getCredentials(),
        "CREDENTIALS_FILE",
        /device certificate file \/nonexistent\/certificate\.pem does not exist \(set by AWS_IOT_CORE_CERT\)/,
        true,
      );
      assert.equal(e.path, "/nonexistent/certificate.pem");
      const dir = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${dir}/private.key`, "not a key");
        await rejectsWith(
          make({ keyPath: `${dir}/private.key` }).getCredentials(),
          "CREDENTIALS_FILE",
          /private key file .*private\.key is not PEM.*AWS_IOT_CORE_PRIVATE_KEY/,
          true,
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step("PEM-shaped garbage, or the files swapped: fatal, nothing sent", async () => {
      const dir = await Deno.makeTempDir();
      const listener = countingListener();
      try {
        const junk = (label: string) =>
          `-----BEGIN ${label}-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END ${label}-----\n`;
        await Deno.writeTextFile(`${dir}/garbage.key`, junk("PRIVATE KEY"));
        await Deno.writeTextFile(`${dir}/garbage.pem`, junk("CERTIFICATE"));
        const at = { endpoint: listener.endpoint };
        await rejectsWith(
          make({ ...at, keyPath: `${dir}/garbage.key` }).getCredentials(),
          "CREDENTIALS_FILE",
          /device private key file .*garbage\.key is not a readable unencrypted private key .*\(set by AWS_IOT_CORE_PRIVATE_KEY\)/,
          true,
        );
        await rejectsWith(
          make({ ...at, certPath: `${dir}/garbage.pem` }).getCredentials(),
          "CREDENTIALS_FILE",
          /device certificate file .*garbage\.pem is not a readable X\.509 certificate .*\(set by AWS_IOT_CORE_CERT\)/,
          true,
        );
        await rejectsWith(
          make({ ...at, certPath: emu.pki.deviceKeyPath, keyPath: emu.pki.deviceCertPath })
            .getCredentials(),
          "CREDENTIALS_FILE",
          /private\.key is not a readable X\.509 certificate/,
          true,
        );
        assert.equal(listener.accepted(), 0, "no connection was made");
      } finally {
        listener.close();
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step(
      "an expired or not yet valid certificate: fatal, checked before any request",
      async () => {
        const dir = await Deno.makeTempDir();
        const listener = countingListener();
        try {
          const { expired, later } = await outOfDateCertificates(emu.pki, dir);
          for (const endpoint of [listener.endpoint, emu.iotEndpoint]) {
            const e = await rejectsWith(
              make({ endpoint, certPath: expired.certPath, keyPath: expired.keyPath })
                .getCredentials(),
              "IOT_CERT_EXPIRED",
              /device certificate .*expired\.pem \(set by AWS_IOT_CORE_CERT\) expired at /,
              true,
            );
            assert.equal(e.path, expired.certPath);
            await rejectsWith(
              make({ endpoint, certPath: later.certPath, keyPath: later.keyPath }).getCredentials(),
              "IOT_CERT_NOT_YET_VALID",
              /later\.pem \(set by AWS_IOT_CORE_CERT\) is not valid before .*check the clock/,
              true,
            );
          }
          assert.equal(listener.accepted(), 0, "no connection was made");
          // The local check alone, at a given time.
          const device = await loadDeviceCertificate({
            certPath: later.certPath,
            keyPath: later.keyPath,
          });
          checkCertificateValidity(device, Date.now() + 2 * 86_400_000);
          assert.throws(() => checkCertificateValidity(device), /not valid before/);
        } finally {
          listener.close();
          await Deno.remove(dir, { recursive: true });
        }
      },
    );

    await t.step("messages name the flag a path came from when told", async () => {
      await rejectsWith(
        make({
          certPath: "/nonexistent/c.pem",
          settings: { cert: "--iot-cert", key: "--iot-private-key" },
        }).getCredentials(),
        "CREDENTIALS_FILE",
        /\/nonexistent\/c\.pem does not exist \(set by --iot-cert\)$/,
        true,
      );
    });

    await t.step("403 for a thing the certificate is not attached to: fatal at first", async () => {
      const e = await rejectsWith(
        make({ thingName: "someone-else" }).getCredentials(),
        "IOT_FORBIDDEN",
        /refused thing "someone-else".*403/,
        true,
      );
      assert.equal(e.status, 403);
    });

    await t.step("404 for an unknown role alias: fatal at first", async () => {
      const e = await rejectsWith(
        make({ roleAlias: "NoSuchAlias" }).getCredentials(),
        "IOT_ROLE_ALIAS",
        /role alias "NoSuchAlias" not found \(404.*AWS_IOT_CORE_ROLE_ALIAS/,
        true,
      );
      assert.equal(e.setting, "AWS_IOT_CORE_ROLE_ALIAS");
      assert.equal(fatalCredentialsError(new Error("wrapped", { cause: e })), e);
    });

    await t.step("403 and 404 after a success are not fatal; 5xx and 429 never are", async () => {
      const p = make();
      const first = await p.getCredentials();
      assert.ok(p.succeeded);
      try {
        for (const [status, code] of [[403, "IOT_FORBIDDEN"], [404, "IOT_ROLE_ALIAS"]] as const) {
          emu.faults.iotStatus = status;
          const e = await rejectsWith(
            p.getCredentials({ forceRefresh: true }),
            code,
            new RegExp(`\\(${status}`),
            false,
          );
          assert.equal(e.status, status);
        }
        // Without forceRefresh the cached credentials are still served while refreshes fail.
        assert.equal((await p.getCredentials()).accessKeyId, first.accessKeyId);
        for (const status of [500, 503, 429]) {
          emu.faults.iotStatus = status;
          const fresh = make();
          const e = await rejectsWith(fresh.getCredentials(), "IOT_HTTP", /answered/, false);
          assert.equal(e.status, status);
        }
        emu.faults.iotStatus = undefined;
        const again = await p.getCredentials({ forceRefresh: true });
        assert.notEqual(again.accessKeyId, first.accessKeyId, "recovered with new credentials");
      } finally {
        emu.faults.iotStatus = undefined;
      }
    });

    await t.step("an endpoint that does not answer: a clear connection error", async () => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      await rejectsWith(
        make({ endpoint: `127.0.0.1:${port}` }).getCredentials(),
        "IOT_TLS",
        /could not be reached.*(refused|Connect)/i,
        false,
      );
    });

    await t.step("concurrent callers share one request; cached until refresh time", async () => {
      const p = make();
      const before = emu.iotRequests.length;
      const all = await Promise.all(Array.from({ length: 10 }, () => p.getCredentials()));
      assert.equal(emu.iotRequests.length - before, 1);
      assert.equal(new Set(all.map((c) => c.accessKeyId)).size, 1);
      await p.getCredentials();
      assert.equal(p.fetches, 1);
      const forced = await p.getCredentials({ forceRefresh: true });
      assert.equal(p.fetches, 2);
      assert.notEqual(forced.accessKeyId, all[0].accessKeyId);
    });

    await t.step("short lifetimes refresh ahead of expiry, with jitter", async () => {
      emu.faults.credentialLifetimeSeconds = 60;
      let now = Date.now();
      const p = make({ now: () => now, random: () => 0.5 });
      const first = await p.getCredentials();
      const exp = first.expiration!.getTime();
      // 20 % of a minute (12 s) ahead, plus half of a 20 % jitter (1.2 s): ~13.2 s before.
      now = exp - 14_000;
      assert.equal((await p.getCredentials()).accessKeyId, first.accessKeyId);
      assert.equal(p.fetches, 1);
      now = exp - 12_500;
      const second = await p.getCredentials();
      assert.notEqual(second.accessKeyId, first.accessKeyId);
      assert.equal(p.fetches, 2);
      emu.faults.credentialLifetimeSeconds = 3600;
    });
  } finally {
    for (const p of providers) p.close();
    await emu.close();
  }
});

Deno.test("refreshing cache: a failed refresh keeps serving valid credentials", async () => {
  let now = 1_000_000;
  let fail = false;
  let n = 0;
  const warnings: string[] = [];
  const p = new RefreshingCredentialProvider(() => {
    n++;
    if (fail) return Promise.reject(new Error("endpoint down"));
    return Promise.resolve({
      accessKeyId: `ASIA${n}`,
      secretAccessKey: "s",
      sessionToken: "t",
      expiration: new Date(now + 3600_000),
    });
  }, {
    now: () => now,
    random: () => 0,
    logger: {
      ...(await import("../src/log.ts")).silentLogger,
      warn: (m: string) => warnings.push(m),
    } as never,
  });
  assert.equal((await p.getCredentials()).accessKeyId, "ASIA1");
  fail = true;
  now += 3600_000 - 4 * 60_000; // inside the 5-minute refresh window, still valid
  assert.equal((await p.getCredentials()).accessKeyId, "ASIA1");
  assert.ok(warnings.some((w) => /refresh failed/.test(w)));
  now += 4 * 60_000; // expired now
  await assert.rejects(p.getCredentials(), /endpoint down/);
  fail = false;
  assert.equal((await p.getCredentials()).accessKeyId, `ASIA${n}`);
});

Deno.test("refreshing cache: credentials already expired on arrival are refused", async () => {
  const p = new RefreshingCredentialProvider(() =>
    Promise.resolve({
      accessKeyId: "ASIA",
      secretAccessKey: "s",
      expiration: new Date(Date.now() - 1000),
    })
  );
  await assert.rejects(p.getCredentials(), (e: unknown) => {
    assert.ok(e instanceof CredentialsError);
    assert.equal(e.code, "CREDENTIALS_EXPIRED");
    assert.match(e.message, /already expired or about to/);
    return true;
  });
});

Deno.test("IoT response bodies: every missing or malformed field is named", () => {
  const good = {
    accessKeyId: "ASIA",
    secretAccessKey: "s",
    sessionToken: "t",
    expiration: "2030-01-01T00:00:00Z",
  };
  assert.equal(
    parseIotCredentials(JSON.stringify({ credentials: good })).expiration!.toISOString(),
    "2030-01-01T00:00:00.000Z",
  );
  assert.throws(() => parseIotCredentials("<html>"), /not JSON/);
  assert.throws(() => parseIotCredentials("{}"), /no "credentials"/);
  for (const field of Object.keys(good)) {
    const bad = { ...good, [field]: undefined };
    assert.throws(
      () => parseIotCredentials(JSON.stringify({ credentials: bad })),
      new RegExp(`credentials\\.${field}`),
    );
  }
  assert.throws(
    () => parseIotCredentials(JSON.stringify({ credentials: { ...good, expiration: "soon" } })),
    /unreadable expiration "soon"/,
  );
});

Deno.test("environment and static providers name what is missing or expired", async () => {
  await assert.rejects(
    new EnvCredentialProvider({ AWS_ACCESS_KEY_ID: "AKID" }).getCredentials(),
    /AWS_SECRET_ACCESS_KEY is not set/,
  );
  await assert.rejects(new EnvCredentialProvider({}).getCredentials(), /AWS_ACCESS_KEY_ID/);
  const c = await new EnvCredentialProvider({
    AWS_ACCESS_KEY_ID: "AKID",
    AWS_SECRET_ACCESS_KEY: "secret",
    AWS_SESSION_TOKEN: "token",
  }).getCredentials();
  assert.deepEqual(c, { accessKeyId: "AKID", secretAccessKey: "secret", sessionToken: "token" });
  await assert.rejects(
    new StaticCredentialProvider({
      accessKeyId: "ASIAX",
      secretAccessKey: "s",
      expiration: new Date(Date.now() - 1),
    }).getCredentials(),
    (e: unknown) => {
      assert.ok(e instanceof CredentialsError && e.fatal, "static keys cannot renew themselves");
      assert.match(e.message, /ASIAX expired at/);
      return true;
    },
  );
  assert.throws(
    () => new StaticCredentialProvider({ accessKeyId: "A", secretAccessKey: "" }),
    /secret access key is empty/,
  );
});
