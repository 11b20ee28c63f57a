/**
 * Test fixture for the signaling client: a scripted control plane and a real local WebSocket
 * server (`Deno.serve` + `Deno.upgradeWebSocket`) standing in for the KVS signaling endpoint.
 *
 * @module
 */
import type {
  ChannelInfo,
  IceServer,
  SignalingControlPlane,
  SignalingEndpoints,
} from "../../src/aws/types.ts";
import type { AwsCredentials, CredentialProvider } from "../../src/credentials/types.ts";
import { KvsError } from "../../src/errors.ts";
import { encodeBase64Utf8 } from "../../src/signaling/messages.ts";

/** An AWS-like error carrying an HTTP status and error type, as the control plane throws. */
export class FakeAwsError extends KvsError {
  constructor(readonly status: number, readonly errorType: string, message = errorType) {
    super("AWS_HTTP", `${status} ${message}`);
  }
}

/** One server-side connection. */
export interface ServerConn {
  socket: WebSocket;
  url: URL;
  received: string[];
  closed: boolean;
}

/** A local WebSocket server recording connections and frames. */
export class WsServer {
  /** Master connections, in order. */
  readonly conns: ServerConn[] = [];
  /** Viewer connections (URLs with `X-Amz-ClientId`) by client id. */
  readonly viewers = new Map<string, ServerConn>();
  /** Forward the master's messages to viewers by `recipientClientId`. */
  relay = false;
  /** Reject this many upcoming upgrades with HTTP {@link WsServer.rejectStatus}. */
  rejectNext = 0;
  /** Status of rejected upgrades (default 403, as for expired credentials). */
  rejectStatus = 403;
  upgradeAttempts = 0;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  readonly #scheme: string;

  /** Listen on loopback; with `tls`, serve `wss://`. */
  constructor(tls?: { cert: string; key: string }) {
    this.#scheme = tls ? "wss" : "ws";
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {}, ...tls },
      (req) => {
        this.upgradeAttempts++;
        if (this.rejectNext > 0) {
          this.rejectNext--;
          return new Response("refused", { status: this.rejectStatus });
        }
        const { socket, response } = Deno.upgradeWebSocket(req);
        const conn: ServerConn = { socket, url: new URL(req.url), received: [], closed: false };
        const viewerId = conn.url.searchParams.get("X-Amz-ClientId");
        if (viewerId) {
          // A viewer: relay its messages to the latest master connection, as KVS does.
          socket.onmessage = (e) => {
            conn.received.push(String(e.data));
            const msg = JSON.parse(String(e.data));
            const master = this.conns.filter((c) => !c.closed).at(-1);
            master?.socket.send(JSON.stringify({
              senderClientId: viewerId,
              messageType: msg.action,
              messagePayload: msg.messagePayload,
            }));
          };
          socket.onopen = () => this.viewers.set(viewerId, conn);
          socket.onclose = () => conn.closed = true;
          return response;
        }
        socket.onmessage = (e) => {
          conn.received.push(String(e.data));
          if (!this.relay) return;
          const msg = JSON.parse(String(e.data));
          const viewer = this.viewers.get(msg.recipientClientId);
          if (viewer && !viewer.closed) {
            viewer.socket.send(JSON.stringify({
              messageType: msg.action,
              messagePayload: msg.messagePayload,
            }));
          }
        };
        socket.onclose = () => conn.closed = true;
        socket.onopen = () => {
          this.conns.push(conn);
        };
        return response;
      },
    );
  }

  get url(): string {
    return `${this.#scheme}://127.0.0.1:${this.#server.addr.port}`;
  }

  /** The n-th connection (0-based), waiting for it. */
  async conn(n: number, timeoutMs = 5000): Promise<ServerConn> {
    const deadline = Date.now() + timeoutMs;
    while (this.conns.length <= n) {
      if (Date.now() > deadline) throw new Error(`no connection #${n} in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.conns[n];
  }

  async close(): Promise<void> {
    for (const c of [...this.conns, ...this.viewers.values()]) {
      try {
        c.socket.close();
      } catch { /* closed */ }
    }
    await this.#server.shutdown();
  }
}

/** Send a message as the service delivers it. */
export function deliver(
  conn: ServerConn,
  messageType: string,
  senderClientId?: string,
  payload?: unknown,
): void {
  const msg: Record<string, unknown> = { messageType };
  if (senderClientId) msg.senderClientId = senderClientId;
  if (payload !== undefined) msg.messagePayload = encodeBase64Utf8(JSON.stringify(payload));
  conn.socket.send(JSON.stringify(msg));
}

/** A recorded control-plane call. */
export interface Call {
  method: string;
  start: number;
  end: number;
  args: unknown[];
}

/** A scripted control plane: a channel that exists (or not), with injectable failures. */
export class ScriptedControlPlane implements SignalingControlPlane {
  readonly calls: Call[] = [];
  exists: boolean;
  arn = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo-channel/1";
  /** Describe returns CREATING this many times first. */
  creatingFor = 0;
  delayMs = 0;
  iceTtl = 300;
  readonly failures = new Map<string, unknown[]>();
  readonly #wss: string;

  constructor(wss: string, options: { exists?: boolean; delayMs?: number } = {}) {
    this.#wss = wss;
    this.exists = options.exists ?? true;
    this.delayMs = options.delayMs ?? 0;
  }

  /** Make the next calls of `method` throw these errors, in order. */
  fail(method: string, ...errors: unknown[]): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), ...errors]);
  }

  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  async #call<T>(method: string, args: unknown[], body: () => T): Promise<T> {
    const call: Call = { method, start: performance.now(), end: NaN, args };
    this.calls.push(call);
    try {
      if (this.delayMs > 0 && method !== "presign") {
        await new Promise((r) => setTimeout(r, this.delayMs));
      }
      const queued = this.failures.get(method);
      if (queued && queued.length > 0) throw queued.shift();
      return body();
    } finally {
      call.end = performance.now();
    }
  }

  describeSignalingChannel(name: string): Promise<ChannelInfo> {
    return this.#call("describe", [name], () => {
      if (!this.exists) throw new FakeAwsError(404, "ResourceNotFoundException");
      const creating = this.creatingFor > 0;
      if (creating) this.creatingFor--;
      return {
        ChannelARN: this.arn,
        ChannelName: name,
        ChannelStatus: creating ? "CREATING" : "ACTIVE",
        ChannelType: "SINGLE_MASTER",
        Version: "v1",
      };
    });
  }

  createSignalingChannel(name: string): Promise<string> {
    return this.#call("create", [name], () => {
      this.exists = true;
      this.creatingFor = 1;
      return this.arn;
    });
  }

  getSignalingChannelEndpoint(arn: string, role: "MASTER" | "VIEWER"): Promise<SignalingEndpoints> {
    return this.#call("endpoint", [arn, role], () => {
      if (arn !== this.arn) throw new FakeAwsError(404, "ResourceNotFoundException");
      return { wss: this.#wss, https: "https://r-1.example.test" };
    });
  }

  getIceServerConfig(https: string, arn: string, clientId: string): Promise<IceServer[]> {
    return this.#call("ice", [https, arn, clientId], () => {
      if (arn !== this.arn) throw new FakeAwsError(404, "ResourceNotFoundException");
      const n = this.count("ice");
      return [{
        urls: [`turn:127.0.0.1:3478?transport=udp`],
        username: `user-${n}`,
        credential: `pw-${n}`,
        ttlSeconds: this.iceTtl,
      }];
    });
  }

  deleteSignalingChannel(arn: string, version?: string): Promise<void> {
    return this.#call("delete", [arn, version], () => {
      this.exists = false;
    });
  }

  presignSignalingUrl(wss: string, arn: string, clientId?: string): Promise<string> {
    return this.#call("presign", [wss, arn, clientId], () => {
      const u = new URL(wss);
      u.searchParams.set("X-Amz-ChannelARN", arn);
      u.searchParams.set("X-Amz-Signature", "deadbeefdeadbeefdeadbeef");
      return u.toString();
    });
  }
}

/** A credential provider recording calls. */
export class CountingCredentials implements CredentialProvider {
  readonly calls: { forceRefresh: boolean }[] = [];
  delayMs = 0;
  async getCredentials(o?: { forceRefresh?: boolean }): Promise<AwsCredentials> {
    this.calls.push({ forceRefresh: o?.forceRefresh ?? false });
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    return { accessKeyId: "ASIAEXAMPLE", secretAccessKey: "secret-key", sessionToken: "tok" };
  }
}

/** Poll until `cond()` holds or fail after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A private CA and a v3 server certificate for 127.0.0.1, made with openssl. */
export async function makeServerCertificate(dir: string): Promise<
  { ca: string; cert: string; key: string }
> {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stderr: "piped" }).output();
    if (!out.success) {
      throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  await run(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=Test CA",
  );
  await run(
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=127.0.0.1",
  );
  await Deno.writeTextFile(`${dir}/ext.cnf`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await run(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "1",
    "-extfile",
    "ext.cnf",
  );
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    ca: await read("ca.pem"),
    cert: await read("server.pem"),
    key: await read("server.key"),
  };
}
