/**
 * Device certificates outside their validity, from the emulator's CA: one that expired nine days
 * ago and one valid only from tomorrow.
 *
 * @module
 */
import { type EmulatorPki, issueDeviceCertificate } from "../../src/emulator/mod.ts";

const DAY = 86_400_000;

/** Issue both into `dir`. */
export async function outOfDateCertificates(pki: EmulatorPki, dir: string) {
  const expired = await issueDeviceCertificate(pki, {
    dir,
    name: "expired",
    notBefore: new Date(Date.now() - 10 * DAY),
    days: 1,
  });
  const later = await issueDeviceCertificate(pki, {
    dir,
    name: "later",
    notBefore: new Date(Date.now() + DAY),
  });
  return { expired, later };
}
