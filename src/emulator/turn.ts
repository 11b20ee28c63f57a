/**
 * A real TURN server for the emulator: Debian's coturn (`turnserver`) on 127.0.0.1 with TURN
 * REST API credentials (`use-auth-secret`), UDP and TCP on one port, TLS and DTLS on another.
 *
 * @module
 */
import { EmulatorError } from "./errors.ts";

/**
 * Options of {@link startTurnServer}.
 *
 * @example
 * ```ts
 * import type { TurnServerOptions } from "./turn.ts";
 * const options: TurnServerOptions = { certPath: "server.pem", keyPath: "server.key" };
 * ```
 */
export interface TurnServerOptions {
  /** Server certificate and key (PEM paths) for the TLS/DTLS listener. */
  certPath: string;
  /** Key of {@link TurnServerOptions.certPath}. */
  keyPath: string;
  /** Give up waiting for the listeners after this long, ms (default 10 s). */
  startTimeoutMs?: number;
  /** Keep coturn's per-request log (see {@link TurnServer.log}). Default false. */
  verbose?: boolean;
  /**
   * Listen on `::1` as well, same ports, for clients reaching it over IPv6 (its relays stay on
   * 127.0.0.1: allocations are IPv4). Default false.
   */
  ipv6?: boolean;
}

/**
 * A running coturn.
 *
 * @example
 * ```ts
 * import type { TurnServer } from "./turn.ts";
 * declare const turn: TurnServer;
 * const { username, password } = await turn.credentials("viewer-1", 300);
 * await turn.close();
 * ```
 */
export interface TurnServer {
  /** UDP and TCP port. */
  port: number;
  /** TLS and DTLS port. */
  tlsPort: number;
  /**
   * coturn's latest log lines (up to 5000) when started `verbose`, e.g.
   * `session 001: refreshed, realm=<…>, username=<1700000000:viewer-0>, lifetime=600`.
   */
  log(): string[];
  /** Time-limited REST credentials: username `<expiry>:<id>`, password HMAC-SHA1 of it. */
  credentials(id: string, ttlSeconds: number): Promise<{ username: string; password: string }>;
  /** Stop coturn and remove its temporary folder. */
  close(): Promise<void>;
}

/**
 * A port on 127.0.0.1 that was free for TCP and UDP a moment ago (with `alsoIpv6`, on ::1 too).
 *
 * @example
 * ```ts
 * import { freePort } from "./turn.ts";
 * const port = freePort();
 * ```
 */
export function freePort(alsoIpv6 = false): number {
  for (let i = 0; i < 20; i++) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    try {
      Deno.listenDatagram({ hostname: "127.0.0.1", port, transport: "udp" }).close();
      if (alsoIpv6) {
        Deno.listen({ hostname: "::1", port }).close();
        Deno.listenDatagram({ hostname: "::1", port, transport: "udp" }).close();
      }
      return port;
    } catch { /* taken for UDP (or on ::1): try another */ }
  }
  throw new EmulatorError("EMULATOR_PORT", "no free port on 127.0.0.1");
}

/**
 * Whether `turnserver` can be run here.
 *
 * @example
 * ```ts
 * import { hasTurnServer } from "./turn.ts";
 * if (!(await hasTurnServer())) console.log("apt-get install coturn");
 * ```
 */
export async function hasTurnServer(): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", "command -v turnserver"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * Start coturn with a fresh secret and a temporary config (never `/etc/turnserver.conf`), relay
 * ports on 127.0.0.1, loopback peers allowed. Resolves once its TCP and TLS listeners accept.
 *
 * @example
 * ```ts
 * import { startTurnServer } from "./turn.ts";
 * const turn = await startTurnServer({ certPath: "server.pem", keyPath: "server.key" });
 * console.log(`turn:127.0.0.1:${turn.port}?transport=udp`);
 * await turn.close();
 * ```
 */
export async function startTurnServer(options: TurnServerOptions): Promise<TurnServer> {
  const dir = await Deno.makeTempDir({ prefix: "kvs-emulator-turn-" });
  // With IPv6 the ports must be free on ::1 too: a socket of another process there (the tests
  // run many at once) would take the server's IPv6 traffic, or keep it from listening.
  const port = freePort(options.ipv6);
  let tlsPort = freePort(options.ipv6);
  while (tlsPort === port) tlsPort = freePort(options.ipv6);
  const secret = crypto.randomUUID() + crypto.randomUUID();
  const minPort = 40000 + Math.floor(Math.random() * 200) * 100;
  await Deno.writeTextFile(
    `${dir}/turnserver.conf`,
    [
      "listening-ip=127.0.0.1",
      ...(options.ipv6 ? ["listening-ip=::1"] : []),
      "relay-ip=127.0.0.1",
      `listening-port=${port}`,
      `tls-listening-port=${tlsPort}`,
      `min-port=${minPort}`,
      `max-port=${minPort + 99}`,
      "use-auth-secret",
      `static-auth-secret=${secret}`,
      "realm=kinesisvideo.emulator",
      `cert=${options.certPath}`,
      `pkey=${options.keyPath}`,
      "allow-loopback-peers",
      ...(options.verbose ? ["verbose"] : []),
      "no-cli",
      "no-software-attribute",
      "fingerprint",
      `userdb=${dir}/turndb`,
      `pidfile=${dir}/turnserver.pid`,
      "log-file=stdout",
      "simple-log",
      "",
    ].join("\n"),
  );
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("turnserver", {
      args: ["-c", `${dir}/turnserver.conf`],
      stdout: options.verbose ? "piped" : "null",
      stderr: "null",
      stdin: "null",
    }).spawn();
  } catch (cause) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new EmulatorError(
      "EMULATOR_TURN",
      "turnserver (coturn) could not be started: apt-get install coturn",
      { cause },
    );
  }
  const lines: string[] = [];
  if (options.verbose) {
    (async () => {
      let rest = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop() ?? "";
        lines.push(...parts);
        if (lines.length > 5000) lines.splice(0, lines.length - 5000);
      }
    })().catch(() => {});
  }
  const close = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = performance.now() + (options.startTimeoutMs ?? 10_000);
  const hosts = options.ipv6 ? ["127.0.0.1", "::1"] : ["127.0.0.1"];
  for (const [hostname, p] of hosts.flatMap((h) => [[h, port], [h, tlsPort]] as const)) {
    for (;;) {
      try {
        (await Deno.connect({ hostname, port: p })).close();
        break;
      } catch {
        if (performance.now() > deadline) {
          await close();
          throw new EmulatorError(
            "EMULATOR_TURN",
            `turnserver did not listen on ${hostname} port ${p} in time`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-1" },
    false,
    ["sign"],
  );
  return {
    port,
    tlsPort,
    log: () => [...lines],
    async credentials(id: string, ttlSeconds: number) {
      const username = `${Math.floor(Date.now() / 1000) + ttlSeconds}:${id}`;
      const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(username));
      return { username, password: btoa(String.fromCharCode(...new Uint8Array(mac))) };
    },
    close,
  };
}
