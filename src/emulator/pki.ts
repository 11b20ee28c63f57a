/**
 * The emulator's certificates: its own CA, a server certificate for 127.0.0.1/localhost, a
 * device certificate and key (what a camera gets from AWS IoT), and a second, rogue CA with its
 * own device certificate for negative tests. Made once with WebCrypto (X.509 v3, EC P-256, no
 * `openssl` needed) and reused while valid for another week; a lock folder keeps parallel starts
 * from racing.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import { EmulatorError } from "./errors.ts";
import { issueCertificate, type IssuedCertificate } from "./x509.ts";

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
const STATE_FILE = "pki.json";
const CA_NAME = "KVS emulator CA";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
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
  const marker = `${abs}/${STATE_FILE}`;
  if (await isReady(pki, marker, thingName)) return pki;
  return await withLock(abs, async () => {
    // Another process may have made them while this one waited for the lock.
    if (await isReady(pki, marker, thingName)) return pki;
    await Deno.remove(marker).catch(() => {});
    const notAfter = await generate(pki, thingName);
    await Deno.writeTextFile(marker, JSON.stringify({ thingName, notAfter }) + "\n");
    return pki;
  });
}

async function isReady(pki: EmulatorPki, marker: string, thingName: string): Promise<boolean> {
  let state: { thingName?: string; notAfter?: string };
  try {
    state = JSON.parse(await Deno.readTextFile(marker));
  } catch {
    return false;
  }
  const files = [
    pki.caCertPath,
    pki.serverCertPath,
    pki.serverKeyPath,
    pki.deviceCertPath,
    pki.deviceKeyPath,
    pki.rogueCertPath,
    pki.rogueKeyPath,
  ];
  return state.thingName === thingName &&
    Date.parse(state.notAfter ?? "") - Date.now() > 7 * 86400_000 &&
    (await Promise.all(files.map(exists))).every(Boolean);
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

async function generate(pki: EmulatorPki, thingName: string): Promise<string> {
  const write = (path: string, text: string, mode = 0o644) =>
    Deno.writeTextFile(path, text, { mode });
  try {
    const ca = await issueCertificate({ commonName: CA_NAME, days: DAYS, usage: "ca" });
    const server = await issueCertificate({
      commonName: "localhost",
      days: DAYS,
      usage: "server",
      ipAddresses: ["127.0.0.1"],
      dnsNames: ["localhost"],
    }, ca);
    const device = await issueCertificate(
      { commonName: thingName, days: DAYS, usage: "client" },
      ca,
    );
    const rogueCa = await issueCertificate({ commonName: "Rogue CA", days: DAYS, usage: "ca" });
    const rogue = await issueCertificate(
      { commonName: thingName, days: DAYS, usage: "client" },
      rogueCa,
    );
    await write(pki.caCertPath, ca.certPem);
    await write(`${pki.dir}/cakey.pem`, ca.keyPem, 0o600);
    await write(pki.serverCertPath, server.certPem);
    await write(pki.serverKeyPath, server.keyPem, 0o600);
    await write(pki.deviceCertPath, device.certPem);
    await write(pki.deviceKeyPath, device.keyPem, 0o600);
    await write(`${pki.dir}/rogue-ca.pem`, rogueCa.certPem);
    await write(pki.rogueCertPath, rogue.certPem);
    await write(pki.rogueKeyPath, rogue.keyPem, 0o600);
    return ca.notAfter.toISOString();
  } catch (cause) {
    throw new EmulatorError(
      "EMULATOR_PKI",
      `could not write the emulator certificates in ${pki.dir}: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/**
 * Options of {@link issueDeviceCertificate}.
 *
 * @example
 * ```ts
 * import type { DeviceCertificateOptions } from "./pki.ts";
 * const expired: DeviceCertificateOptions = {
 *   dir: "/tmp/certs",
 *   name: "expired",
 *   notBefore: new Date(Date.now() - 10 * 86400_000),
 *   days: 1,
 * };
 * ```
 */
export interface DeviceCertificateOptions {
  /** Folder for the two files (made when missing). */
  dir: string;
  /** File names: `<name>.pem` and `<name>.key`. Default `device`. */
  name?: string;
  /** Subject CN, the thing the certificate acts for. Default the PKI's thing name. */
  commonName?: string;
  /** Start of validity. Default one hour ago. */
  notBefore?: Date;
  /** Length of validity in days. Default 30. */
  days?: number;
}

/**
 * A further device certificate signed by the emulator CA of `pki`, with its own key and the
 * validity period asked for: for example an expired one, or one not valid yet.
 *
 * @example
 * ```ts
 * import { ensurePki, issueDeviceCertificate } from "./pki.ts";
 * const pki = await ensurePki(".kvs-emulator");
 * const later = await issueDeviceCertificate(pki, {
 *   dir: await Deno.makeTempDir(),
 *   notBefore: new Date(Date.now() + 86400_000),
 * });
 * console.log(later.certPath, later.keyPath);
 * ```
 */
export async function issueDeviceCertificate(
  pki: EmulatorPki,
  options: DeviceCertificateOptions,
): Promise<{ certPath: string; keyPath: string; notBefore: Date; notAfter: Date }> {
  const caPem = await Deno.readTextFile(pki.caCertPath);
  const caKeyPem = await Deno.readTextFile(`${pki.dir}/cakey.pem`);
  const der = (text: string) =>
    Uint8Array.from(
      atob(text.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "")),
      (c) => c.charCodeAt(0),
    );
  const ec = { name: "ECDSA", namedCurve: "P-256" } as const;
  const spki = new X509Certificate(caPem).publicKey.export({ type: "spki", format: "der" });
  const issuer: IssuedCertificate = {
    certPem: caPem,
    keyPem: caKeyPem,
    commonName: CA_NAME,
    notAfter: new Date(new X509Certificate(caPem).validTo),
    keys: {
      privateKey: await crypto.subtle.importKey("pkcs8", der(caKeyPem), ec, true, ["sign"]),
      publicKey: await crypto.subtle.importKey("spki", new Uint8Array(spki), ec, true, [
        "verify",
      ]),
    },
  };
  const notBefore = options.notBefore ?? new Date(Date.now() - 3600_000);
  const device = await issueCertificate({
    commonName: options.commonName ?? pki.thingName,
    days: options.days ?? 30,
    usage: "client",
    notBefore,
  }, issuer);
  await Deno.mkdir(options.dir, { recursive: true });
  const base = `${options.dir}/${options.name ?? "device"}`;
  await Deno.writeTextFile(`${base}.pem`, device.certPem);
  await Deno.writeTextFile(`${base}.key`, device.keyPem, { mode: 0o600 });
  return { certPath: `${base}.pem`, keyPath: `${base}.key`, notBefore, notAfter: device.notAfter };
}
