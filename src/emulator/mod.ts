/**
 * A local stand-in for the AWS side of KVS WebRTC, for development, demos and tests, on
 * 127.0.0.1 only: the AWS IoT credential provider (mutual TLS with its own CA and device
 * certificate), the KVS control plane and `/v1/get-ice-server-config`, the signaling WebSocket
 * relay (1 master, up to 10 viewers), and a real TURN server (coturn) when installed. Every
 * request is verified with the official `@smithy/signature-v4`, independent of the client's
 * signer; expired tokens and clocks more than 5 minutes off are refused as AWS refuses them.
 *
 * @example
 * ```ts
 * import { startEmulator } from "./mod.ts";
 * const emulator = await startEmulator();
 * console.log(emulator.env()); // AWS_IOT_CORE_CREDENTIAL_ENDPOINT, AWS_KVS_CACERT_PATH, …
 * emulator.faults.goAway();
 * await emulator.close();
 * ```
 *
 * @module
 */
export { startEmulator } from "./emulator.ts";
export type { Emulator, EmulatorFaults } from "./emulator.ts";
export type { EmulatorOptions } from "./options.ts";
export type { InjectedFault, RequestLogEntry } from "./faults.ts";
export type { TurnTransport } from "./control_plane.ts";
export type { DeviceCertificateOptions, EmulatorPki } from "./pki.ts";
export { issueDeviceCertificate } from "./pki.ts";
export type { TurnServer } from "./turn.ts";
export { EmulatorError } from "./errors.ts";
