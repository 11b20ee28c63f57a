/**
 * {@link startEmulator}: the wiring of a running emulator. It makes or reuses the certificates,
 * starts coturn, the IoT credential endpoint and the service's HTTPS and HTTP listeners, and hands
 * back the URLs, the environment of a master, the fault controls and `close()`.
 *
 * @module
 */
import { silentLogger } from "../log.ts";
import { type IotEndpoint, startIotEndpoint } from "./iot.ts";
import { type EmulatorPki, ensurePki } from "./pki.ts";
import { KvsService } from "./service.ts";
import type { TurnTransport } from "./control_plane.ts";
import type { InjectedFault, RequestLogEntry } from "./faults.ts";
import type { IssuedKey } from "./sigv4_verify.ts";
import { hasTurnServer, startTurnServer, type TurnServer } from "./turn.ts";
import { checkOptions, type EmulatorOptions } from "./options.ts";

/**
 * Fault injection and clock control.
 *
 * @example
 * ```ts
 * import type { EmulatorFaults } from "./mod.ts";
 * declare const faults: EmulatorFaults;
 * faults.failNext(3, "5xx");
 * faults.clockSkewMs = 10 * 60_000;
 * ```
 */
export interface EmulatorFaults {
  /** Close every master's signaling socket now (code 1011). Returns how many. */
  dropMaster(): number;
  /**
   * Send `GO_AWAY` to every master; with `closeAfterMs`, close their connections that long
   * afterwards, as AWS does (within about a minute). Returns how many masters.
   */
  goAway(closeAfterMs?: number): number;
  /** Send `RECONNECT_ICE_SERVER` to every master. */
  reconnectIceServer(): number;
  /** Every credential issued so far (IoT and viewer keys excepted) expires now. */
  expireCredentials(): void;
  /**
   * The next `count` control-plane calls (optionally only to `paths`) fail with `kind`. The
   * signaling WebSocket upgrade (path `/`) fails only when `paths` lists `/`.
   */
  failNext(count: number, kind: InjectedFault, paths?: string[]): void;
  /** Offset of the service's clock, ms. */
  clockSkewMs: number;
  /** Longest signaling connection, ms (applies to new connections). */
  maxConnectionMs: number;
  /** Idle timeout of signaling connections, ms. */
  idleTimeoutMs: number;
  /** Lifetime of credentials issued from now on, seconds. */
  credentialLifetimeSeconds: number;
  /** List only these TURN transports in ICE configurations (undefined: AWS's usual list). */
  turnTransports: TurnTransport[] | undefined;
  /**
   * Answer every IoT credential request with this HTTP status until set back to `undefined`:
   * 403 (certificate detached, policy changed), 404 (role alias deleted), 429, 5xx. The TLS
   * handshake still requires a certificate from the emulator CA.
   */
  iotStatus: number | undefined;
}

/**
 * A running emulator.
 *
 * @example
 * ```ts
 * import type { Emulator } from "./mod.ts";
 * declare const emulator: Emulator;
 * const env = emulator.env();
 * console.log(env.AWS_ENDPOINT_URL_KINESIS_VIDEO, emulator.iotEndpoint);
 * ```
 */
export interface Emulator {
  /** Region of the ARNs and of the credential scope the emulator accepts. */
  region: string;
  /** `host:port` of the IoT credential endpoint. */
  iotEndpoint: string;
  /** HTTPS control plane (trust {@link EmulatorPki.caCertPath}). */
  controlPlaneUrl: string;
  /** The same service over plain HTTP (signaling over `ws://`), for browsers on 127.0.0.1. */
  browserControlPlaneUrl: string;
  /** Paths of the CA, server, device and rogue certificates. */
  pki: EmulatorPki;
  /** The role alias the IoT endpoint knows. */
  roleAlias: string;
  /** The thing allowed to use {@link Emulator.roleAlias}. */
  thingName: string;
  /** Long-term keys accepted for viewers and tests. */
  viewerCredentials: { accessKeyId: string; secretAccessKey: string };
  /** The TURN server, when running. */
  turn?: TurnServer;
  /** Fault injection and clock control for tests. */
  faults: EmulatorFaults;
  /** Control-plane and signaling requests answered (no secrets). */
  requests: RequestLogEntry[];
  /** IoT credential requests answered. */
  iotRequests: { path: string; status: number; thingName?: string }[];
  /** Channels that exist. */
  channels(): { name: string; arn: string; status: string }[];
  /** Who is connected to each channel. */
  connections(): { channelArn: string; master: boolean; viewers: string[] }[];
  /** The C SDK sample's environment for a master using this emulator. */
  env(): Record<string, string>;
  /** Close every socket and listener and stop coturn; safe to call twice. */
  close(): Promise<void>;
}

function randomId(alphabet: string, length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join("");
}

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * Start the emulator on ephemeral 127.0.0.1 ports.
 *
 * @example
 * ```ts
 * import { startEmulator } from "./mod.ts";
 * const emulator = await startEmulator({ turn: false, credentialLifetimeSeconds: 60 });
 * try {
 *   // point a master at emulator.env()
 * } finally {
 *   await emulator.close();
 * }
 * ```
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const log = options.logger ?? silentLogger;
  const region = options.region ?? "us-west-2";
  const thingName = options.thingName ?? "kvs-emulator-thing";
  const roleAlias = options.roleAlias ?? "KvsCameraIoTRoleAlias";
  checkOptions(options, region, thingName, roleAlias);
  const pki = await ensurePki(options.stateDir ?? ".kvs-emulator", thingName);
  const [caCert, serverCert, serverKey] = await Promise.all(
    [pki.caCertPath, pki.serverCertPath, pki.serverKeyPath].map((p) => Deno.readTextFile(p)),
  );

  let turn: TurnServer | undefined;
  const wantTurn = options.turn ?? "auto";
  if (wantTurn === true || (wantTurn === "auto" && await hasTurnServer())) {
    turn = await startTurnServer({
      certPath: pki.serverCertPath,
      keyPath: pki.serverKeyPath,
      verbose: options.turnLog,
    });
  } else {
    log.warn("TURN server (coturn) not running: ICE configuration lists no TURN servers");
  }

  const keys = new Map<string, IssuedKey>();
  const viewerCredentials = options.viewerCredentials ?? {
    accessKeyId: "AKIA" + randomId(UPPER, 16),
    secretAccessKey: randomId(SECRET, 40),
  };
  keys.set(viewerCredentials.accessKeyId, { secretAccessKey: viewerCredentials.secretAccessKey });
  const issued = new Set<string>();

  const service = new KvsService({
    region,
    account: "123456789012",
    keys,
    turn,
    plainTcpTurn: options.plainTcpTurn ?? false,
    iceServerTtlSeconds: options.iceServerTtlSeconds ?? 300,
    maxConnectionMs: options.maxConnectionMs ?? 3600_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 600_000,
    channelCreatingMs: options.channelCreatingMs ?? 100,
    logger: log,
  });

  let lifetime = options.credentialLifetimeSeconds ?? 3600;
  let iotStatus: number | undefined;
  const iotRequests: Emulator["iotRequests"] = [];
  let iot: IotEndpoint | undefined;
  let tls: Deno.HttpServer<Deno.NetAddr> | undefined;
  let plain: Deno.HttpServer<Deno.NetAddr> | undefined;
  try {
    iot = await startIotEndpoint({
      caCert,
      serverCert,
      serverKey,
      roleAliases: [roleAlias],
      thingNames: [thingName],
      now: () => service.now(),
      injectedStatus: () => iotStatus,
      onRequest: (e) => {
        iotRequests.push(e);
        if (iotRequests.length > 1000) iotRequests.splice(0, iotRequests.length - 1000);
      },
      issue: () => {
        const accessKeyId = "ASIA" + randomId(UPPER, 16);
        const secretAccessKey = randomId(SECRET, 40);
        const sessionToken = randomId(SECRET, 200);
        const expiresAt = service.now() + lifetime * 1000;
        keys.set(accessKeyId, { secretAccessKey, sessionToken, expiresAt });
        issued.add(accessKeyId);
        return {
          accessKeyId,
          secretAccessKey,
          sessionToken,
          expiration: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
        };
      },
    });
    const onListen = () => {};
    tls = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: serverCert, key: serverKey, onListen },
      (req) => service.handle(req, "https"),
    );
    plain = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen },
      (req) => service.handle(req, "http"),
    );
  } catch (e) {
    await iot?.close();
    await tls?.shutdown();
    await turn?.close();
    throw e;
  }

  const controlPlaneUrl = `https://127.0.0.1:${tls.addr.port}`;
  const browserControlPlaneUrl = `http://127.0.0.1:${plain.addr.port}`;
  const iotEndpoint = iot.endpoint;
  log.info(
    `KVS emulator: control plane ${controlPlaneUrl}, IoT ${iotEndpoint}` +
      (turn ? `, TURN 127.0.0.1:${turn.port} (TLS ${turn.tlsPort})` : ", no TURN"),
  );

  const faults: EmulatorFaults = {
    dropMaster: () => service.dropMasters(),
    goAway: (closeAfterMs) => service.notifyMasters("GO_AWAY", closeAfterMs),
    reconnectIceServer: () => service.notifyMasters("RECONNECT_ICE_SERVER"),
    expireCredentials: () => {
      const now = service.now();
      for (const id of issued) {
        const k = keys.get(id);
        if (k) k.expiresAt = Math.min(k.expiresAt ?? now, now);
      }
    },
    failNext: (count, kind, paths) => service.failNext(count, kind, paths),
    get clockSkewMs() {
      return service.clockSkewMs;
    },
    set clockSkewMs(v: number) {
      service.clockSkewMs = v;
    },
    get maxConnectionMs() {
      return service.maxConnectionMs;
    },
    set maxConnectionMs(v: number) {
      service.maxConnectionMs = v;
    },
    get idleTimeoutMs() {
      return service.idleTimeoutMs;
    },
    set idleTimeoutMs(v: number) {
      service.idleTimeoutMs = v;
    },
    get credentialLifetimeSeconds() {
      return lifetime;
    },
    set credentialLifetimeSeconds(v: number) {
      lifetime = v;
    },
    get turnTransports() {
      return service.turnTransports;
    },
    set turnTransports(v: TurnTransport[] | undefined) {
      service.turnTransports = v;
    },
    get iotStatus() {
      return iotStatus;
    },
    set iotStatus(v: number | undefined) {
      iotStatus = v;
    },
  };

  let closed = false;
  return {
    region,
    iotEndpoint,
    controlPlaneUrl,
    browserControlPlaneUrl,
    pki,
    roleAlias,
    thingName,
    viewerCredentials,
    turn,
    faults,
    requests: service.requests,
    iotRequests,
    channels: () => service.channels(),
    connections: () => service.connections(),
    env: () => ({
      AWS_DEFAULT_REGION: region,
      AWS_IOT_CORE_CREDENTIAL_ENDPOINT: iotEndpoint,
      AWS_IOT_CORE_CERT: pki.deviceCertPath,
      AWS_IOT_CORE_PRIVATE_KEY: pki.deviceKeyPath,
      AWS_IOT_CORE_ROLE_ALIAS: roleAlias,
      AWS_IOT_CORE_THING_NAME: thingName,
      AWS_KVS_CACERT_PATH: pki.caCertPath,
      AWS_ENDPOINT_URL_KINESIS_VIDEO: controlPlaneUrl,
    }),
    async close() {
      if (closed) return;
      closed = true;
      service.closeAll();
      await Promise.all([tls!.shutdown(), plain!.shutdown(), iot!.close()]);
      await turn?.close();
    },
  };
}
