/**
 * The control plane of the emulated KVS service: the channel store and the JSON of
 * `describeSignalingChannel`, `createSignalingChannel`, `getSignalingChannelEndpoint`,
 * `deleteSignalingChannel`, `listSignalingChannels` and `/v1/get-ice-server-config`. Requests reach
 * it SigV4-verified; a refusal is thrown as a {@link failure}.
 *
 * @module
 */
import { failure } from "./errors.ts";
import type { TurnServer } from "./turn.ts";

/**
 * How a client reaches the TURN server.
 *
 * @example
 * ```ts
 * import type { TurnTransport } from "./control_plane.ts";
 * const onlyTcp: TurnTransport[] = ["tcp"];
 * ```
 */
export type TurnTransport = "udp" | "tcp" | "tls" | "dtls";

function turnTransportOf(uri: string): TurnTransport {
  const tcp = /transport=tcp/.test(uri);
  if (uri.startsWith("turns:")) return tcp ? "tls" : "dtls";
  return tcp ? "tcp" : "udp";
}

/**
 * Settings of {@link ControlPlane}.
 *
 * @example
 * ```ts
 * import type { ControlPlaneOptions } from "./control_plane.ts";
 * const options: ControlPlaneOptions = {
 *   region: "us-west-2", account: "123456789012", plainTcpTurn: false, iceServerTtlSeconds: 300,
 *   channelCreatingMs: 100, now: () => Date.now(),
 * };
 * ```
 */
export interface ControlPlaneOptions {
  /** Region of channel ARNs. */
  region: string;
  /** Account id of channel ARNs. */
  account: string;
  /** The TURN server the ICE configuration points at. */
  turn?: TurnServer;
  /** Add `turn:…?transport=tcp` to each ICE server (AWS lists only UDP and TLS). */
  plainTcpTurn: boolean;
  /** `Ttl` of each ICE server, seconds. */
  iceServerTtlSeconds: number;
  /** How long a new channel stays `CREATING`, ms. */
  channelCreatingMs: number;
  /** The service's clock (with skew), ms since the epoch. */
  now: () => number;
}

/**
 * A signaling channel the emulator keeps.
 *
 * @example
 * ```ts
 * import type { Channel } from "./control_plane.ts";
 * declare const channel: Channel;
 * console.log(channel.arn, channel.status);
 * ```
 */
export interface Channel {
  /** `ChannelName`. */
  name: string;
  /** `arn:aws:kinesisvideo:<region>:<account>:channel/<name>/<creation-ms>`. */
  arn: string;
  /** `CREATING` for `channelCreatingMs`, then `ACTIVE`. */
  status: "CREATING" | "ACTIVE";
  /** Creation time on the service clock, ms since the epoch. */
  created: number;
  /** `Version`, compared with `CurrentVersion` on delete. */
  version: string;
  /** `MessageTtlSeconds`. */
  ttl: number;
}

/**
 * The channels and the control-plane operations on them. Each operation takes the request's JSON
 * object and returns the answer's, or throws a {@link failure}.
 *
 * @example
 * ```ts
 * import { ControlPlane } from "./control_plane.ts";
 * const control = new ControlPlane({
 *   region: "us-west-2", account: "123456789012", plainTcpTurn: false, iceServerTtlSeconds: 300,
 *   channelCreatingMs: 0, now: () => Date.now(),
 * });
 * const arn = control.create({ ChannelName: "demo" });
 * console.log(control.describe({ ChannelARN: arn }).ChannelStatus); // ACTIVE
 * ```
 */
export class ControlPlane {
  /**
   * When set, ICE configurations list only these ways to reach TURN: `udp` (`turn:…?transport=udp`),
   * `tcp` (`turn:…?transport=tcp`), `tls` (`turns:…?transport=tcp`), `dtls`
   * (`turns:…?transport=udp`). For tests of one relay transport at a time.
   */
  turnTransports: TurnTransport[] | undefined;
  readonly #o: ControlPlaneOptions;
  readonly #channels = new Map<string, Channel>();

  /** Configure the control plane; it starts without channels. */
  constructor(options: ControlPlaneOptions) {
    this.#o = options;
  }

  /** Channels that exist. */
  channels(): { name: string; arn: string; status: string }[] {
    for (const c of this.#channels.values()) this.#settle(c);
    return [...this.#channels.values()].map((c) => ({
      name: c.name,
      arn: c.arn,
      status: c.status,
    }));
  }

  #channelByName(name: unknown): Channel {
    if (typeof name !== "string" || !/^[a-zA-Z0-9_.-]{1,256}$/.test(name)) {
      throw failure(400, "InvalidArgumentException", "ChannelName is invalid");
    }
    const c = this.#channels.get(name);
    if (!c) {
      throw failure(
        404,
        "ResourceNotFoundException",
        "The requested channel is not found or not active.",
      );
    }
    return c;
  }

  /** The channel with this ARN; a 404 `ResourceNotFoundException` otherwise. */
  channelByArn(arn: unknown): Channel {
    const c = [...this.#channels.values()].find((x) => x.arn === arn);
    if (typeof arn !== "string" || !c) {
      throw failure(
        404,
        "ResourceNotFoundException",
        "The requested channel is not found or not active.",
      );
    }
    return c;
  }

  /** `describeSignalingChannel` by `ChannelARN` or `ChannelName`: its `ChannelInfo`. */
  describe(input: Record<string, unknown>) {
    const c = input.ChannelARN !== undefined
      ? this.channelByArn(input.ChannelARN)
      : this.#channelByName(input.ChannelName);
    return this.#info(c);
  }

  /** `listSignalingChannels`: `ChannelNameCondition` (BEGINS_WITH), `MaxResults`, `NextToken`. */
  list(input: Record<string, unknown>) {
    const cond = input.ChannelNameCondition as
      | { ComparisonOperator?: unknown; ComparisonValue?: unknown }
      | undefined;
    const prefix = cond?.ComparisonValue;
    if (cond && (cond.ComparisonOperator !== "BEGINS_WITH" || typeof prefix !== "string")) {
      throw failure(
        400,
        "InvalidArgumentException",
        "ChannelNameCondition needs ComparisonOperator BEGINS_WITH and a ComparisonValue",
      );
    }
    const max = input.MaxResults === undefined ? 10_000 : Number(input.MaxResults);
    if (!Number.isInteger(max) || max < 1 || max > 10_000) {
      throw failure(400, "InvalidArgumentException", "MaxResults must be 1 to 10000");
    }
    const start = typeof input.NextToken === "string" ? Number(input.NextToken) : 0;
    const all = [...this.#channels.values()]
      .filter((c) => typeof prefix !== "string" || c.name.startsWith(prefix))
      .sort((a, b) => a.name.localeCompare(b.name));
    const page = all.slice(start, start + max).map((c) => this.#info(c));
    return start + max < all.length
      ? { ChannelInfoList: page, NextToken: String(start + max) }
      : { ChannelInfoList: page };
  }

  #info(c: Channel) {
    this.#settle(c);
    return {
      ChannelARN: c.arn,
      ChannelName: c.name,
      ChannelStatus: c.status,
      ChannelType: "SINGLE_MASTER",
      CreationTime: c.created / 1000,
      SingleMasterConfiguration: { MessageTtlSeconds: c.ttl },
      Version: c.version,
    };
  }

  /** A channel is `CREATING` for `channelCreatingMs`, then `ACTIVE`, whoever asks first. */
  #settle(c: Channel): void {
    if (c.status === "CREATING" && this.#o.now() - c.created >= this.#o.channelCreatingMs) {
      c.status = "ACTIVE";
    }
  }

  /** `createSignalingChannel`: the new channel's ARN. */
  create(input: Record<string, unknown>): string {
    const name = input.ChannelName;
    if (typeof name !== "string" || !/^[a-zA-Z0-9_.-]{1,256}$/.test(name)) {
      throw failure(400, "InvalidArgumentException", "ChannelName is invalid");
    }
    if (input.ChannelType !== undefined && input.ChannelType !== "SINGLE_MASTER") {
      throw failure(400, "InvalidArgumentException", "ChannelType must be SINGLE_MASTER");
    }
    if (this.#channels.has(name)) {
      throw failure(400, "ResourceInUseException", `The channel ${name} already exists.`);
    }
    const created = this.#o.now();
    const ttl = Number(
      (input.SingleMasterConfiguration as { MessageTtlSeconds?: number } | undefined)
        ?.MessageTtlSeconds ?? 60,
    );
    const c: Channel = {
      name,
      arn: `arn:aws:kinesisvideo:${this.#o.region}:${this.#o.account}:channel/${name}/${created}`,
      status: this.#o.channelCreatingMs > 0 ? "CREATING" : "ACTIVE",
      created,
      version: crypto.randomUUID().replaceAll("-", "").slice(0, 20),
      ttl,
    };
    this.#channels.set(name, c);
    return c.arn;
  }

  /** `deleteSignalingChannel` (optional `CurrentVersion`): the deleted channel's ARN. */
  delete(input: Record<string, unknown>): string {
    const c = this.channelByArn(input.ChannelARN);
    if (input.CurrentVersion !== undefined && input.CurrentVersion !== c.version) {
      throw failure(400, "VersionMismatchException", "The channel version does not match.");
    }
    this.#channels.delete(c.name);
    return c.arn;
  }

  /**
   * `getSignalingChannelEndpoint`: `HTTPS` and `WSS` endpoints on the host and scheme the request
   * came to (`ws://` on the plain-HTTP listener); 404 while the channel is `CREATING`.
   */
  endpoints(input: Record<string, unknown>, url: URL, scheme: "https" | "http") {
    const c = this.channelByArn(input.ChannelARN);
    this.#settle(c);
    if (c.status !== "ACTIVE") {
      throw failure(404, "ResourceNotFoundException", "The channel is not active.");
    }
    const conf = input.SingleMasterChannelEndpointConfiguration as
      | { Protocols?: unknown; Role?: unknown }
      | undefined;
    const role = conf?.Role ?? "MASTER";
    if (role !== "MASTER" && role !== "VIEWER") {
      throw failure(400, "InvalidArgumentException", "Role must be MASTER or VIEWER");
    }
    const protocols = Array.isArray(conf?.Protocols) ? conf.Protocols : ["WSS", "HTTPS"];
    const ws = scheme === "https" ? "wss" : "ws";
    const list = [];
    if (protocols.includes("HTTPS")) {
      list.push({ Protocol: "HTTPS", ResourceEndpoint: `${scheme}://${url.host}` });
    }
    if (protocols.includes("WSS")) {
      list.push({ Protocol: "WSS", ResourceEndpoint: `${ws}://${url.host}` });
    }
    return { ResourceEndpointList: list };
  }

  /** `/v1/get-ice-server-config`: two TURN servers with fresh credentials, none without TURN. */
  async iceConfig(input: Record<string, unknown>) {
    this.channelByArn(input.ChannelARN);
    if (input.Service !== undefined && input.Service !== "TURN") {
      throw failure(400, "InvalidArgumentException", "Service must be TURN");
    }
    const clientId = typeof input.ClientId === "string" ? input.ClientId : "client";
    const turn = this.#o.turn;
    if (!turn) return { IceServerList: [] };
    const ttl = this.#o.iceServerTtlSeconds;
    const list = [];
    for (let i = 0; i < 2; i++) {
      const { username, password } = await turn.credentials(`${clientId}-${i}`, ttl);
      const uris = [
        `turn:127.0.0.1:${turn.port}?transport=udp`,
        `turns:127.0.0.1:${turn.tlsPort}?transport=udp`,
        `turns:127.0.0.1:${turn.tlsPort}?transport=tcp`,
      ];
      if (this.#o.plainTcpTurn || this.turnTransports?.includes("tcp")) {
        uris.push(`turn:127.0.0.1:${turn.port}?transport=tcp`);
      }
      const only = this.turnTransports;
      list.push({
        Uris: only ? uris.filter((u) => only.includes(turnTransportOf(u))) : uris,
        Username: username,
        Password: password,
        Ttl: ttl,
      });
    }
    return { IceServerList: list };
  }
}
