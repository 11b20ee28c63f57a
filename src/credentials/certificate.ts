/**
 * Local checks of a device certificate and its private key, before anything is sent: both files
 * parse, the key belongs to the certificate, and the certificate is within its validity period.
 * Every failure is fatal (it cannot heal on its own) and names the file and its setting.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { CredentialsError } from "./errors.ts";
import { readPemFile } from "./pem.ts";

/**
 * Where the device certificate and key are, and which flag or environment variable named each
 * (for error messages).
 *
 * @example
 * ```ts
 * import type { DeviceCertificateFiles } from "./certificate.ts";
 * const files: DeviceCertificateFiles = {
 *   certPath: "certificate.pem",
 *   keyPath: "private.key",
 *   certSetting: "--iot-cert",
 *   keySetting: "AWS_IOT_CORE_PRIVATE_KEY",
 * };
 * ```
 */
export interface DeviceCertificateFiles {
  /** Device certificate PEM (the first certificate in the file is the device's). */
  certPath: string;
  /** Its private key PEM (PKCS#8, PKCS#1 or SEC1; not encrypted). */
  keyPath: string;
  /** Where `certPath` came from. Default `AWS_IOT_CORE_CERT`. */
  certSetting?: string;
  /** Where `keyPath` came from. Default `AWS_IOT_CORE_PRIVATE_KEY`. */
  keySetting?: string;
}

/**
 * A device certificate and key that parse and belong together.
 *
 * @example
 * ```ts
 * import { loadDeviceCertificate } from "./certificate.ts";
 * const device = await loadDeviceCertificate({ certPath: "certificate.pem", keyPath: "private.key" });
 * console.log(device.subject, device.notAfter.toISOString());
 * ```
 */
export interface DeviceCertificate {
  /** The certificate file's text (for `Deno.createHttpClient({ cert })`). */
  certPem: string;
  /** The key file's text (for `Deno.createHttpClient({ key })`). Never logged. */
  keyPem: string;
  /** Subject of the device certificate, e.g. `CN=camera-1`. */
  subject: string;
  /** Start of validity. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
  /** The files and settings it was loaded from. */
  files: Required<DeviceCertificateFiles>;
}

function reason(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

function sameKey(
  a: ReturnType<typeof createPublicKey>,
  b: ReturnType<typeof createPublicKey>,
): boolean {
  const x = a.export({ type: "spki", format: "der" }) as Uint8Array;
  const y = b.export({ type: "spki", format: "der" }) as Uint8Array;
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** `validFromDate`/`validToDate` where the runtime has them, else the text forms parsed. */
function dates(cert: X509Certificate): { notBefore: Date; notAfter: Date } {
  const c = cert as X509Certificate & { validFromDate?: Date; validToDate?: Date };
  return {
    notBefore: c.validFromDate ?? new Date(cert.validFrom),
    notAfter: c.validToDate ?? new Date(cert.validTo),
  };
}

/**
 * Read the device certificate and key and check them locally: each file exists and parses, and
 * the key's public key is the certificate's. Throws a fatal {@link CredentialsError}
 * (`CREDENTIALS_FILE` or `IOT_KEY_MISMATCH`) naming the file and its setting. Validity dates are
 * checked separately, before each use ({@link checkCertificateValidity}).
 *
 * @example
 * ```ts
 * import { loadDeviceCertificate } from "./certificate.ts";
 * try {
 *   await loadDeviceCertificate({ certPath: "certificate.pem", keyPath: "private.key" });
 * } catch (e) {
 *   console.error((e as Error).message); // e.g. "… private.key (set by AWS_IOT_CORE_PRIVATE_KEY) does not match …"
 * }
 * ```
 */
export async function loadDeviceCertificate(
  files: DeviceCertificateFiles,
): Promise<DeviceCertificate> {
  const f: Required<DeviceCertificateFiles> = {
    certSetting: "AWS_IOT_CORE_CERT",
    keySetting: "AWS_IOT_CORE_PRIVATE_KEY",
    ...files,
  };
  const certPem = await readPemFile(f.certPath, f.certSetting, "device certificate");
  const keyPem = await readPemFile(f.keyPath, f.keySetting, "device private key");
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (cause) {
    throw new CredentialsError(
      "CREDENTIALS_FILE",
      `device certificate file ${f.certPath} is not a readable X.509 certificate ` +
        `(${reason(cause)}) (set by ${f.certSetting})`,
      { cause, setting: f.certSetting, path: f.certPath, fatal: true },
    );
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (cause) {
    throw new CredentialsError(
      "CREDENTIALS_FILE",
      `device private key file ${f.keyPath} is not a readable unencrypted private key ` +
        `(${reason(cause)}) (set by ${f.keySetting})`,
      { cause, setting: f.keySetting, path: f.keyPath, fatal: true },
    );
  }
  if (!sameKey(createPublicKey(key), cert.publicKey)) {
    throw new CredentialsError(
      "IOT_KEY_MISMATCH",
      `device private key ${f.keyPath} (set by ${f.keySetting}) does not match device ` +
        `certificate ${f.certPath} (set by ${f.certSetting}): their public keys differ`,
      { setting: f.keySetting, path: f.keyPath, fatal: true },
    );
  }
  return {
    certPem,
    keyPem,
    subject: cert.subject.replaceAll("\n", ", "),
    ...dates(cert),
    files: f,
  };
}

/**
 * Throw a fatal {@link CredentialsError} (`IOT_CERT_EXPIRED` or `IOT_CERT_NOT_YET_VALID`) naming
 * the file and its setting when `now` is outside the certificate's validity period: the
 * credential endpoint would refuse the TLS handshake, and no retry can change that.
 *
 * @example
 * ```ts
 * import { checkCertificateValidity, loadDeviceCertificate } from "./certificate.ts";
 * const device = await loadDeviceCertificate({ certPath: "certificate.pem", keyPath: "private.key" });
 * checkCertificateValidity(device); // throws once the certificate has expired
 * ```
 */
export function checkCertificateValidity(
  device: DeviceCertificate,
  now: number = Date.now(),
): void {
  const { certPath, certSetting } = device.files;
  const clock = new Date(now).toISOString();
  if (now > device.notAfter.getTime()) {
    throw new CredentialsError(
      "IOT_CERT_EXPIRED",
      `device certificate ${certPath} (set by ${certSetting}) expired at ` +
        `${device.notAfter.toISOString()} (local clock ${clock}); install a new certificate`,
      { setting: certSetting, path: certPath, fatal: true },
    );
  }
  if (now < device.notBefore.getTime()) {
    throw new CredentialsError(
      "IOT_CERT_NOT_YET_VALID",
      `device certificate ${certPath} (set by ${certSetting}) is not valid before ` +
        `${device.notBefore.toISOString()} (local clock ${clock}); check the clock or the ` +
        `certificate`,
      { setting: certSetting, path: certPath, fatal: true },
    );
  }
}
