/**
 * The emulator's certificates: its own CA, a server certificate for 127.0.0.1/localhost, a
 * device certificate and key (what a camera gets from AWS IoT), and a second, rogue CA with its
 * own device certificate for negative tests. Made once with the `openssl` command (X.509 v3,
 * EC P-256) and reused while still valid; a lock folder keeps parallel starts from racing.
 *
 * @module
 */
import { EmulatorError } from "./errors.ts";

/**
 * Paths of the emulator's PEM files.
 *
 * @example
 * ```ts
 * import { ensurePki } from "./pki.ts";
 * const pki = await ensurePki(".kvs-emulator");
 * console.log(pki.caCertPath, pki.deviceCertPath, pki.deviceKeyPath);
 * ```
 */
export interface EmulatorPki {
  /** Folder holding every file. */
  dir: string;
  /** The emulator CA (`cacert.pem`): trust it for IoT, HTTPS and WSS. */
  caCertPath: string;
  /** Server certificate and key (127.0.0.1, localhost). */
  serverCertPath: string;
  /** Key of the server certificate. */
  serverKeyPath: string;
  /** Device certificate and key signed by the CA (`certificate.pem`, `private.key`). */
  deviceCertPath: string;
  /** The device's private key. */
  deviceKeyPath: string;
  /** A device certificate and key from another CA: the IoT endpoint must refuse it. */
  rogueCertPath: string;
  /** Key of the rogue device certificate. */
  rogueKeyPath: string;
  /** Thing name in the device certificate's subject. */
  thingName: string;
}

const DAYS = 825;

async function openssl(args: string[], cwd: string): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
      .output();
  } catch (cause) {
    throw new EmulatorError(
      "EMULATOR_PKI",
      "the emulator needs the openssl command to make its certificates " +
        "(apt-get install openssl)",
      { cause },
    );
  }
  if (!out.success) {
    throw new EmulatorError(
      "EMULATOR_PKI",
      `openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function stillValid(certPath: string, cwd: string): Promise<boolean> {
  if (!(await exists(certPath))) return false;
  const out = await new Deno.Command("openssl", {
    args: ["x509", "-checkend", String(7 * 86400), "-noout", "-in", certPath],
    cwd,
    stdout: "null",
    stderr: "null",
  }).output().catch(() => undefined);
  return out?.success ?? false;
}

async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    String(DAYS),
    "-subj",
    `/CN=${cn}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], dir);
}

async function makeLeaf(
  dir: string,
  ca: string,
  name: string,
  cn: string,
  ext: string,
): Promise<void> {
  await openssl([
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${cn}`,
  ], dir);
  await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
  await openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.pem`,
    "-days",
    String(DAYS),
    "-sha256",
    "-extfile",
    `${name}.ext`,
  ], dir);
  await Deno.remove(`${dir}/${name}.csr`);
  await Deno.remove(`${dir}/${name}.ext`);
}

/**
 * Make the certificates in `dir` unless valid ones are there (a week of validity left).
 *
 * @example
 * ```ts
 * import { ensurePki } from "./pki.ts";
 * const pki = await ensurePki(await Deno.makeTempDir(), "camera-1");
 * ```
 */
export async function ensurePki(
  dir: string,
  thingName = "kvs-emulator-thing",
): Promise<EmulatorPki> {
  await Deno.mkdir(dir, { recursive: true });
  const abs = await Deno.realPath(dir);
  const pki: EmulatorPki = {
    dir: abs,
    caCertPath: `${abs}/cacert.pem`,
    serverCertPath: `${abs}/server.pem`,
    serverKeyPath: `${abs}/server.key`,
    deviceCertPath: `${abs}/certificate.pem`,
    deviceKeyPath: `${abs}/private.key`,
    rogueCertPath: `${abs}/rogue-certificate.pem`,
    rogueKeyPath: `${abs}/rogue-private.key`,
    thingName,
  };
  const marker = `${abs}/thing-name`;
  if (await isReady(pki, marker, thingName)) return pki;
  return await withLock(abs, async () => {
    // Another process may have made them while this one waited for the lock.
    if (await isReady(pki, marker, thingName)) return pki;
    await Deno.remove(marker).catch(() => {});
    await generate(abs, pki, thingName);
    await Deno.writeTextFile(marker, thingName + "\n");
    return pki;
  });
}

async function isReady(pki: EmulatorPki, marker: string, thingName: string): Promise<boolean> {
  const sameThing = (await exists(marker)) &&
    (await Deno.readTextFile(marker)).trim() === thingName;
  return sameThing &&
    (await Promise.all(
      [pki.caCertPath, pki.serverCertPath, pki.deviceCertPath, pki.rogueCertPath].map((p) =>
        stillValid(p, pki.dir)
      ),
    )).every(Boolean);
}

/** Run `fn` holding `<dir>/.lock` (a folder), so parallel starts do not mint certificates twice. */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${dir}/.lock`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await Deno.mkdir(lock);
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const info = await Deno.stat(lock).catch(() => undefined);
      if (info?.mtime && Date.now() - info.mtime.getTime() > 60_000) {
        await Deno.remove(lock).catch(() => {}); // left behind by a killed process
        continue;
      }
      if (Date.now() > deadline) {
        throw new EmulatorError("EMULATOR_PKI", `${lock} is held by another process for 60 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    await Deno.remove(lock).catch(() => {});
  }
}

async function generate(abs: string, pki: EmulatorPki, thingName: string): Promise<void> {
  await makeCa(abs, "ca", "KVS emulator CA");
  await Deno.rename(`${abs}/ca.pem`, pki.caCertPath);
  await Deno.rename(`${abs}/ca.key`, `${abs}/cakey.pem`);
  // makeLeaf expects <ca>.pem / <ca>.key side by side: give it links with those names.
  await Deno.copyFile(pki.caCertPath, `${abs}/ca.pem`);
  await Deno.copyFile(`${abs}/cakey.pem`, `${abs}/ca.key`);
  await makeLeaf(
    abs,
    "ca",
    "server",
    "localhost",
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n" +
      "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  await makeLeaf(
    abs,
    "ca",
    "device",
    thingName,
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
  );
  await Deno.rename(`${abs}/device.pem`, pki.deviceCertPath);
  await Deno.rename(`${abs}/device.key`, pki.deviceKeyPath);

  await makeCa(abs, "rogue-ca", "Rogue CA");
  await makeLeaf(
    abs,
    "rogue-ca",
    "rogue",
    thingName,
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
  );
  await Deno.rename(`${abs}/rogue.pem`, pki.rogueCertPath);
  await Deno.rename(`${abs}/rogue.key`, pki.rogueKeyPath);
  for (const f of ["ca.pem", "ca.key", "rogue-ca.key", "ca.srl", "rogue-ca.srl"]) {
    await Deno.remove(`${abs}/${f}`).catch(() => {});
  }
}
