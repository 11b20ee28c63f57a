/**
 * The media core's module and byte ABI (Rust compiled to WebAssembly, `wasm/`): the compiled
 * module (one per process), the exports' signatures, the WASI functions it imports, and the
 * helpers that move bytes in and errors out. {@link import("./media_core.ts").MediaCoreSession}
 * and {@link import("./srtp_video_sender.ts").SrtpVideoSender} know the layouts of what they
 * exchange through it.
 *
 * @module
 */
import { KvsError } from "../errors.ts";
import { MEDIA_CORE_WASM_BASE64 } from "./media_core_wasm.ts";

/**
 * A media-core failure: bad keys, an access unit that is not H.264, or a trap inside the
 * module (after which that sender is dead).
 *
 * @example
 * ```ts
 * import { MediaCoreError } from "./core_abi.ts";
 * const e = new MediaCoreError("MEDIA_CORE_TRAP", "the media core trapped");
 * console.log(e.code);
 * ```
 */
export class MediaCoreError extends KvsError {}

/** SRTP protection profiles the core implements (DTLS-SRTP names). */
export type SrtpProfile = "SRTP_AES128_CM_HMAC_SHA1_80" | "SRTP_AEAD_AES_128_GCM";

/** @internal Profile ids of the core's ABI. */
export const PROFILE_IDS: Record<SrtpProfile, number> = {
  SRTP_AES128_CM_HMAC_SHA1_80: 1,
  SRTP_AEAD_AES_128_GCM: 7,
};

/** @internal The core's exports (the byte ABI); only the peer modules use it. */
export interface Exports {
  memory: WebAssembly.Memory;
  kvs_alloc(len: number): number;
  kvs_free(ptr: number, len: number): void;
  sender_new(
    profile: number,
    keyPtr: number,
    keyLen: number,
    saltPtr: number,
    saltLen: number,
    ssrc: number,
    payloadType: number,
    firstSequence: number,
    maxDatagram: number,
  ): number;
  sender_write_frame(handle: number, ptr: number, len: number, ts: number): number;
  sender_retransmit(handle: number, seqsPtr: number, count: number): number;
  sender_output_ptr(handle: number): number;
  sender_output_len(handle: number): number;
  sender_free(handle: number): void;
  last_error_ptr(): number;
  certificate_new(): number;
  warm_up(certPtr: number, certLen: number, frames: number): number;
  scratch_ptr(): number;
  session_new(
    configPtr: number,
    configLen: number,
    certPtr: number,
    certLen: number,
    nowMs: number,
  ): number;
  session_fingerprint(handle: number): number;
  session_stats(handle: number): number;
  session_add_candidate(handle: number, nowMs: number, ptr: number, len: number): number;
  session_add_stun(handle: number, nowMs: number, ptr: number, len: number): number;
  session_add_turn(handle: number, nowMs: number, ptr: number, len: number): number;
  session_handle_datagram(
    handle: number,
    nowMs: number,
    via: number,
    addrPtr: number,
    dataPtr: number,
    dataLen: number,
  ): number;
  session_handle_timeout(handle: number, nowMs: number): number;
  session_write_frame(handle: number, nowMs: number, ptr: number, len: number, ts: number): number;
  session_write_audio(handle: number, nowMs: number, ptr: number, len: number, ts: number): number;
  session_data_open(
    handle: number,
    nowMs: number,
    ordered: number,
    reliability: number,
    value: number,
    labelPtr: number,
    labelLen: number,
    protocolPtr: number,
    protocolLen: number,
  ): number;
  session_data_send(
    handle: number,
    nowMs: number,
    id: number,
    binary: number,
    ptr: number,
    len: number,
  ): number;
  session_data_close(handle: number, nowMs: number, id: number): void;
  session_data_buffered(handle: number): number;
  session_set_playout_delay(handle: number, min10ms: number, max10ms: number): number;
  session_poll(handle: number): number;
  session_free(handle: number): void;
  last_error_len(): number;
  debug_trap(): void;
}

let compiled: Promise<WebAssembly.Module> | undefined;

/**
 * The compiled media core (compiled once per process, from the bytes embedded in this package).
 *
 * @example
 * ```ts
 * import { mediaCoreModule } from "./media_core.ts";
 * const module = await mediaCoreModule();
 * console.log(WebAssembly.Module.exports(module).length);
 * ```
 */
export function mediaCoreModule(): Promise<WebAssembly.Module> {
  compiled ??= (() => {
    const bin = atob(MEDIA_CORE_WASM_BASE64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return WebAssembly.compile(bytes);
  })();
  return compiled;
}

/**
 * @internal The six WASI functions the module imports, on its memory: randomness, clocks, and
 * stderr for panics.
 */
export function wasiImports(memory: () => WebAssembly.Memory, onStderr: (text: string) => void) {
  const view = () => new DataView(memory().buffer);
  return {
    random_get(ptr: number, len: number): number {
      const buf = new Uint8Array(memory().buffer, ptr, len);
      for (let i = 0; i < len; i += 65536) crypto.getRandomValues(buf.subarray(i, i + 65536));
      return 0;
    },
    clock_time_get(id: number, _precision: bigint, out: number): number {
      const ns = id === 0
        ? BigInt(Date.now()) * 1_000_000n
        : BigInt(Math.round((performance.timeOrigin + performance.now()) * 1_000_000));
      view().setBigUint64(out, ns, true);
      return 0;
    },
    environ_sizes_get(countOut: number, sizeOut: number): number {
      view().setUint32(countOut, 0, true);
      view().setUint32(sizeOut, 0, true);
      return 0;
    },
    environ_get(): number {
      return 0;
    },
    fd_write(fd: number, iovs: number, count: number, written: number): number {
      const v = view();
      let total = 0;
      let text = "";
      for (let i = 0; i < count; i++) {
        const ptr = v.getUint32(iovs + i * 8, true);
        const len = v.getUint32(iovs + i * 8 + 4, true);
        text += new TextDecoder().decode(new Uint8Array(memory().buffer, ptr, len));
        total += len;
      }
      if (fd === 1 || fd === 2) onStderr(text);
      v.setUint32(written, total, true);
      return 0;
    },
    proc_exit(code: number): never {
      throw new MediaCoreError("MEDIA_CORE_EXIT", `the media core exited with code ${code}`);
    },
  };
}

/** @internal Copy bytes into the core's memory; the caller frees them. */
export function copyIn(x: Exports, bytes: Uint8Array): number {
  const ptr = x.kvs_alloc(bytes.length);
  new Uint8Array(x.memory.buffer, ptr, bytes.length).set(bytes);
  return ptr;
}

/** @internal The core's last error message. */
export function lastError(x: Exports): string {
  return new TextDecoder().decode(
    new Uint8Array(x.memory.buffer, x.last_error_ptr(), x.last_error_len()),
  );
}
