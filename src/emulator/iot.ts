/**
 * The emulator's AWS IoT credential provider: HTTPS that requires a client certificate signed by
 * the emulator CA, `GET /role-aliases/<alias>/credentials` with `x-amzn-iot-thingname`.
 *
 * @module
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Options of {@link startIotEndpoint}.
 *
 * @example
 * ```ts
 * import type { IotEndpointOptions } from "./iot.ts";
 * declare const options: IotEndpointOptions;
 * console.log(options.roleAliases, options.thingNames);
 * ```
 */
export interface IotEndpointOptions {
  /** PEM of the CA client certificates must chain to. */
  caCert: string;
  /** PEM server certificate (127.0.0.1) and its key. */
  serverCert: string;
  /** PEM key of {@link IotEndpointOptions.serverCert}. */
  serverKey: string;
  /** Role aliases that exist. */
  roleAliases: string[];
  /** Things allowed to assume them. */
  thingNames: string[];
  /** Issue credentials for a thing; returns the body's `credentials` object. */
  issue(thingName: string): {
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken: string;
    expiration: string;
  };
  /** Observe each request. */
  onRequest?(entry: { path: string; status: number; thingName?: string }): void;
  /**
   * An injected answer: when it returns a status, every request that passed the TLS handshake
   * gets it (403 as for a detached certificate or a changed policy, 404, 429, 5xx).
   */
  injectedStatus?(): number | undefined;
  /** Emulator clock (for `Date`). */
  now(): number;
}

/**
 * A running IoT credential endpoint.
 *
 * @example
 * ```ts
 * import type { IotEndpoint } from "./iot.ts";
 * declare const iot: IotEndpoint;
 * console.log(iot.endpoint); // "127.0.0.1:43210"
 * await iot.close();
 * ```
 */
export interface IotEndpoint {
  /** `host:port`, the form of `AWS_IOT_CORE_CREDENTIAL_ENDPOINT`. */
  endpoint: string;
  /** The port alone. */
  port: number;
  /** Stop listening and drop open connections. */
  close(): Promise<void>;
}

const INJECTED_MESSAGES: Record<number, string> = {
  403: "Access Denied",
  404: "Role alias does not exist",
  429: "Rate exceeded",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/**
 * Start the IoT credential endpoint on 127.0.0.1 (ephemeral port). TLS handshakes without a
 * client certificate from the emulator CA fail, as AWS's do; a certificate gets credentials only
 * for the thing named in its subject CN (403 otherwise).
 *
 * @example
 * ```ts
 * import { startIotEndpoint } from "./iot.ts";
 * declare const pem: { ca: string; cert: string; key: string };
 * const iot = await startIotEndpoint({
 *   caCert: pem.ca, serverCert: pem.cert, serverKey: pem.key,
 *   roleAliases: ["KvsCameraIoTRoleAlias"], thingNames: ["camera-1"],
 *   issue: () => ({ accessKeyId: "ASIA…", secretAccessKey: "…", sessionToken: "…", expiration: "…" }),
 *   now: Date.now,
 * });
 * ```
 */
export function startIotEndpoint(options: IotEndpointOptions): Promise<IotEndpoint> {
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, body: unknown, thingName?: string) => {
      res.writeHead(status, {
        "content-type": "application/json",
        date: new Date(options.now()).toUTCString(),
        "x-amzn-requestid": crypto.randomUUID(),
      });
      res.end(JSON.stringify(body));
      options.onRequest?.({ path: req.url ?? "", status, thingName });
    };
    const m = (req.url ?? "").match(/^\/role-aliases\/([^/?]+)\/credentials(?:\?.*)?$/);
    if (req.method !== "GET" || !m) return send(404, { message: "Not Found" });
    const alias = decodeURIComponent(m[1]);
    const thing = req.headers["x-amzn-iot-thingname"];
    const injected = options.injectedStatus?.();
    if (injected !== undefined) {
      const message = INJECTED_MESSAGES[injected] ?? "Injected failure";
      return send(injected, { message }, typeof thing === "string" ? thing : undefined);
    }
    if (typeof thing !== "string" || !thing) {
      return send(400, { message: "Missing x-amzn-iot-thingname header" });
    }
    // AWS lets a certificate act only for things attached to it: here, the thing in its CN.
    const subject =
      (req.socket as unknown as { getPeerCertificate(): { subject?: { CN?: string } } })
        .getPeerCertificate().subject;
    if (!options.thingNames.includes(thing) || subject?.CN !== thing) {
      return send(403, { message: "Access Denied" }, thing);
    }
    if (!options.roleAliases.includes(alias)) {
      return send(404, { message: "Role alias does not exist" }, thing);
    }
    send(200, { credentials: options.issue(thing) }, thing);
  };
  const server = https.createServer({
    key: options.serverKey,
    cert: options.serverCert,
    ca: options.caCert,
    requestCert: true,
    rejectUnauthorized: true,
  }, handler);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        endpoint: `127.0.0.1:${port}`,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
  });
}
