/**
 * Shapes shared by the control plane, signaling and peer layers.
 *
 * @module
 */

/**
 * One ICE server, in the browser's `RTCIceServer` shape (KVS's `Uris/Username/Password/Ttl`
 * converted).
 *
 * @example
 * ```ts
 * import type { IceServer } from "./types.ts";
 * const stun: IceServer = { urls: ["stun:stun.kinesisvideo.us-west-2.amazonaws.com:443"] };
 * ```
 */
export interface IceServer {
  /** `stun:`, `turn:` or `turns:` URIs, e.g. `turn:1.2.3.4:443?transport=udp`. */
  urls: string[];
  /** TURN username (KVS: `<expiry>:<channel-id>`-like). */
  username?: string;
  /** TURN password. Never logged. */
  credential?: string;
  /** Seconds the credentials are valid from when they were fetched. */
  ttlSeconds?: number;
}

/** The two endpoints of a signaling channel for one role. */
export interface SignalingEndpoints {
  /** `wss://…` endpoint for the signaling WebSocket. */
  wss: string;
  /** `https://…` endpoint for `/v1/get-ice-server-config`. */
  https: string;
}

/** `ChannelInfo` of `DescribeSignalingChannel`. */
export interface ChannelInfo {
  /** `arn:aws:kinesisvideo:<region>:<account>:channel/<name>/<creation-ms>`. */
  ChannelARN: string;
  /** The channel's name. */
  ChannelName: string;
  /** Only an ACTIVE channel has endpoints; CREATING/DELETING ones are described again later. */
  ChannelStatus: "CREATING" | "ACTIVE" | "UPDATING" | "DELETING" | string;
  /** Always `SINGLE_MASTER` for WebRTC signaling channels. */
  ChannelType: "SINGLE_MASTER" | string;
  /** When the channel was created (epoch seconds or ISO text). */
  CreationTime?: number | string;
  /** How long the service keeps undelivered messages. */
  SingleMasterConfiguration?: { MessageTtlSeconds?: number };
  /** Version token, needed to delete the channel. */
  Version: string;
}

/**
 * The KVS control/data-plane calls the signaling client needs. `KvsClient` implements it;
 * tests may substitute their own.
 *
 * @example
 * ```ts
 * import type { SignalingControlPlane } from "./types.ts";
 * async function arnOf(cp: SignalingControlPlane, name: string) {
 *   return (await cp.describeSignalingChannel(name)).ChannelARN;
 * }
 * ```
 */
export interface SignalingControlPlane {
  /**
   * The control-plane endpoint in use, when the implementation has one (`KvsClient` does). The
   * signaling client keys its endpoint cache by it when it is not the region's standard one.
   */
  readonly endpoint?: string;
  /** `POST /describeSignalingChannel`. Unknown channel → `ResourceNotFoundException` error. */
  describeSignalingChannel(channelName: string): Promise<ChannelInfo>;
  /** `POST /createSignalingChannel` (SINGLE_MASTER, MessageTtlSeconds 60) → channel ARN. */
  createSignalingChannel(channelName: string): Promise<string>;
  /** `POST /getSignalingChannelEndpoint` with Protocols WSS+HTTPS. */
  getSignalingChannelEndpoint(
    channelArn: string,
    role: "MASTER" | "VIEWER",
  ): Promise<SignalingEndpoints>;
  /** `POST <https>/v1/get-ice-server-config` with Service TURN. */
  getIceServerConfig(
    httpsEndpoint: string,
    channelArn: string,
    clientId: string,
  ): Promise<IceServer[]>;
  /** `POST /deleteSignalingChannel`. */
  deleteSignalingChannel(channelArn: string, currentVersion?: string): Promise<void>;
  /** SigV4 query-presigned `wss://…/?X-Amz-ChannelARN=…` URL (ClientId only for viewers). */
  presignSignalingUrl(wssEndpoint: string, channelArn: string, clientId?: string): Promise<string>;
}
