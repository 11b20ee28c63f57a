/**
 * The media core's instances: one per session, pooled (a closed session's instance, whose
 * memory stays allocated, serves the next one; a trapped one is dropped), one kept ready, the
 * process's DTLS certificate made once, and the warm start that plays a session in memory
 * before the first viewer.
 *
 * @module
 */
import {
  copyIn,
  type Exports,
  lastError,
  MediaCoreError,
  mediaCoreModule,
  wasiImports,
} from "./core_abi.ts";

/** Idle instances, reused by later sessions (their memory stays allocated, so reuse it). */
const idle: Exports[] = [];
/**
 * Idle instances kept: enough that a viewer who reconnects or the next offer finds one ready,
 * few enough that a burst of sessions (a flood of offers) does not leave their memory behind
 * (an instance's linear memory never shrinks; each holds 2–4 MB once it has run a session).
 */
const MAX_IDLE = 2;
/** Every live instance's memory, for {@link mediaCoreMemoryBytes}. */
const memories = new Set<WebAssembly.Memory>();

/**
 * Linear memory held by the media core's session instances (pooled or in use), bytes: what the
 * WASM side of the sessions costs, apart from the JS heap.
 *
 * @example
 * ```ts
 * import { mediaCoreMemoryBytes } from "./core_pool.ts";
 * console.log(`${(mediaCoreMemoryBytes() / 1e6).toFixed(1)} MB`);
 * ```
 */
export function mediaCoreMemoryBytes(): number {
  let n = 0;
  for (const m of memories) n += m.buffer.byteLength;
  return n;
}
let certificate: Promise<Uint8Array> | undefined;

/** @internal An instance for a new session: a pooled one (another is then made ready in the background). */
export async function instantiate(): Promise<Exports> {
  const reused = idle.pop();
  if (reused) {
    if (idle.length === 0) setTimeout(refill, 0);
    return reused;
  }
  return await newInstance();
}

async function newInstance(): Promise<Exports> {
  const module = await mediaCoreModule();
  const ref: { exports?: Exports } = {};
  const instance = await WebAssembly.instantiate(module, {
    wasi_snapshot_preview1: wasiImports(() => ref.exports!.memory, () => {}),
  });
  ref.exports = instance.exports as unknown as Exports;
  memories.add(ref.exports.memory);
  return ref.exports;
}

let refilling = false;

/** Keep one idle instance ready, so an offer never waits for one. */
async function refill(): Promise<void> {
  if (refilling || idle.length > 0) return;
  refilling = true;
  try {
    const x = await newInstance();
    if (idle.length < MAX_IDLE) idle.push(x);
    else drop(x);
  } catch {
    /* the next offer makes its own */
  } finally {
    refilling = false;
  }
}

/**
 * Warm start: compile the module, make the process's DTLS certificate and an idle instance, and
 * play one session in memory on it (ICE check, DTLS handshake, 100 frames) so the engine has
 * compiled and optimized the session's code — the first viewer then costs no more than later
 * ones, in time and in memory. A master calls it when it starts; later calls do nothing more.
 *
 * @example
 * ```ts
 * import { prepareMediaCore } from "./core_pool.ts";
 * await prepareMediaCore(); // at startup, off the offer path
 * ```
 */
export function prepareMediaCore(): Promise<void> {
  prepared ??= (async () => {
    const x = await instantiate();
    let trapped = false;
    try {
      const cert = await processCertificate(x);
      // One session played in memory: the engine compiles and optimizes what the first viewer
      // would otherwise wait for, and this instance's memory grows to a session's size.
      const p = copyIn(x, cert);
      try {
        if (x.warm_up(p, cert.length, 100) < 0) {
          throw new MediaCoreError("MEDIA_CORE_WARM_UP", lastError(x));
        }
      } catch (e) {
        trapped = e instanceof WebAssembly.RuntimeError;
        throw e;
      } finally {
        if (!trapped) x.kvs_free(p, cert.length);
      }
    } finally {
      if (trapped) drop(x);
      else release(x);
    }
  })();
  return prepared;
}

let prepared: Promise<void> | undefined;

/** @internal The process's DTLS certificate and key (PEM), made once by the first instance. */
export function processCertificate(x: Exports): Promise<Uint8Array> {
  certificate ??= (() => {
    const n = x.certificate_new();
    if (n === 0) {
      return Promise.reject(new MediaCoreError("MEDIA_CORE_CERTIFICATE", lastError(x)));
    }
    return Promise.resolve(new Uint8Array(x.memory.buffer, x.scratch_ptr(), n).slice());
  })();
  return certificate;
}

/** @internal Return an instance to the pool (its memory stays allocated, so later sessions reuse it). */
export function release(x: Exports): void {
  if (idle.includes(x)) return;
  // Beyond the pool the instance is let go: nothing may keep its memory alive.
  if (idle.length < MAX_IDLE) idle.push(x);
  else drop(x);
}

/** @internal Drop an instance that trapped: it is never reused, its memory no longer counted. */
export function drop(x: Exports): void {
  memories.delete(x.memory);
}
