/**
 * Just enough X.509 to mint the emulator's certificates with WebCrypto alone: DER encoding of
 * v3 certificates with EC P-256 keys signed ECDSA-SHA256, and PEM output. No parser, no other
 * key types.
 *
 * @module
 */

const enc = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function tlv(tag: number, ...content: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const body = concat(content);
  const n = body.length;
  let len: number[];
  if (n < 0x80) len = [n];
  else if (n < 0x100) len = [0x81, n];
  else if (n < 0x10000) len = [0x82, n >> 8, n & 0xff];
  else len = [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return concat([new Uint8Array([tag, ...len]), body]);
}

const seq = (...c: Uint8Array[]) => tlv(0x30, ...c);
const set = (...c: Uint8Array[]) => tlv(0x31, ...c);
const octets = (b: Uint8Array) => tlv(0x04, b);
const bits = (b: Uint8Array, unused = 0) => tlv(0x03, new Uint8Array([unused]), b);
const explicit = (n: number, ...c: Uint8Array[]) => tlv(0xa0 + n, ...c);
const TRUE = new Uint8Array([0x01, 0x01, 0xff]);

function integer(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const b = bytes.subarray(i);
  return tlv(0x02, b[0] & 0x80 ? concat([new Uint8Array([0]), b]) : b);
}

function oid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const out = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) {
      chunk.unshift((v & 0x7f) | 0x80);
    }
    out.push(...chunk);
  }
  return tlv(0x06, new Uint8Array(out));
}

function time(d: Date): Uint8Array {
  const iso = d.toISOString().replace(/[-:T]|\.\d{3}/g, ""); // YYYYMMDDHHMMSSZ
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? tlv(0x17, enc.encode(iso.slice(2))) : tlv(0x18, enc.encode(iso));
}

const name = (cn: string) => seq(set(seq(oid("2.5.4.3"), tlv(0x0c, enc.encode(cn)))));

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), TRUE, octets(value)) : seq(oid(id), octets(value));
}

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
const EC_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;

/** ECDSA signature from WebCrypto's r‖s form to DER `SEQUENCE { r, s }`. */
function derSignature(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  return seq(integer(raw.subarray(0, half)), integer(raw.subarray(half)));
}

async function keyId(publicKey: CryptoKey): Promise<Uint8Array> {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", publicKey));
  return new Uint8Array(await crypto.subtle.digest("SHA-1", raw));
}

/**
 * What to put in a certificate.
 *
 * @example
 * ```ts
 * import type { CertificateSpec } from "./x509.ts";
 * const spec: CertificateSpec = { commonName: "localhost", days: 30, usage: "server",
 *   ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"] };
 * ```
 */
export interface CertificateSpec {
  /** Subject CN. */
  commonName: string;
  /** Length of validity from `notBefore`, in days. */
  days: number;
  /** Start of validity. Default: one hour ago. */
  notBefore?: Date;
  /** `ca` (keyCertSign, cRLSign), `server` (serverAuth) or `client` (clientAuth). */
  usage: "ca" | "server" | "client";
  /** IPv4 subject alternative names. */
  ipAddresses?: string[];
  /** DNS subject alternative names. */
  dnsNames?: string[];
}

/**
 * A key pair and its certificate, both PEM.
 *
 * @example
 * ```ts
 * import type { IssuedCertificate } from "./x509.ts";
 * declare const issued: IssuedCertificate;
 * await Deno.writeTextFile("cert.pem", issued.certPem);
 * ```
 */
export interface IssuedCertificate {
  /** `-----BEGIN CERTIFICATE-----` … */
  certPem: string;
  /** The private key, PKCS#8 (`-----BEGIN PRIVATE KEY-----`). */
  keyPem: string;
  /** For signing further certificates when this is a CA. */
  keys: CryptoKeyPair;
  /** Subject CN, the issuer name of certificates it signs. */
  commonName: string;
  /** End of validity. */
  notAfter: Date;
}

function pem(label: string, der: Uint8Array): string {
  const b64 = btoa(String.fromCharCode(...der));
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * Make a P-256 key and an X.509 v3 certificate for it, signed by `issuer` (self-signed when
 * absent).
 *
 * @example
 * ```ts
 * import { issueCertificate } from "./x509.ts";
 * const ca = await issueCertificate({ commonName: "Test CA", days: 30, usage: "ca" });
 * const server = await issueCertificate(
 *   { commonName: "localhost", days: 30, usage: "server", ipAddresses: ["127.0.0.1"] },
 *   ca,
 * );
 * console.log(server.certPem);
 * ```
 */
export async function issueCertificate(
  spec: CertificateSpec,
  issuer?: IssuedCertificate,
): Promise<IssuedCertificate> {
  const keys = await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"]);
  const signer = issuer?.keys ?? keys;
  const notBefore = spec.notBefore ?? new Date(Date.now() - 3600_000);
  const notAfter = new Date(notBefore.getTime() + spec.days * 86400_000);
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] &= 0x7f;
  serial[0] |= 0x01;

  const exts: Uint8Array[] = [];
  if (spec.usage === "ca") {
    exts.push(extension("2.5.29.19", true, seq(TRUE)));
    // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000_0110, one unused bit.
    exts.push(extension("2.5.29.15", true, bits(new Uint8Array([0x06]), 1)));
  } else {
    exts.push(extension("2.5.29.19", true, seq()));
    // digitalSignature (bit 0): 0b1000_0000, seven unused bits.
    exts.push(extension("2.5.29.15", true, bits(new Uint8Array([0x80]), 7)));
    const eku = spec.usage === "server" ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2";
    exts.push(extension("2.5.29.37", false, seq(oid(eku))));
  }
  const san = [
    ...(spec.dnsNames ?? []).map((d) => tlv(0x82, enc.encode(d))),
    ...(spec.ipAddresses ?? []).map((ip) => tlv(0x87, new Uint8Array(ip.split(".").map(Number)))),
  ];
  if (san.length) exts.push(extension("2.5.29.17", false, seq(...san)));
  exts.push(extension("2.5.29.14", false, octets(await keyId(keys.publicKey))));
  exts.push(
    extension("2.5.29.35", false, seq(tlv(0x80, await keyId(signer.publicKey)))),
  );

  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const tbs = seq(
    explicit(0, integer(new Uint8Array([2]))),
    integer(serial),
    ECDSA_SHA256,
    name(issuer?.commonName ?? spec.commonName),
    seq(time(notBefore), time(notAfter)),
    name(spec.commonName),
    spki,
    explicit(3, seq(...exts)),
  );
  const sig = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, signer.privateKey, tbs),
  );
  const cert = seq(tbs, ECDSA_SHA256, bits(derSignature(sig)));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return {
    certPem: pem("CERTIFICATE", cert),
    keyPem: pem("PRIVATE KEY", pkcs8),
    keys,
    commonName: spec.commonName,
    notAfter,
  };
}
