/**
 * `--record-viewer-audio DIR`: each viewer's microphone, as the master receives it, written to
 * an Ogg/Opus file of its own (`<DIR>/<viewer>-<time>.opus`), lost packets filled with
 * concealment so the file keeps the viewer's timing.
 *
 * @module
 */
import type { Logger, ViewerAudioPacket } from "../mod.ts";
import { OggOpusWriter, opusPacketSamples } from "../mod.ts";

/** Gaps longer than this (a viewer muted, a clock jump) are not filled: 5 s at 48 kHz. */
const MAX_FILL = 5 * 48_000;

/** One viewer's file. */
interface Recording {
  path: string;
  file: Deno.FsFile;
  writer: OggOpusWriter;
  /** The RTP timestamp the next packet should carry (the last one's plus its samples). */
  next?: number;
  packets: number;
}

/**
 * Writes each viewer's audio to its own Ogg/Opus file in a folder (made if missing).
 *
 * @example
 * ```ts
 * import { ViewerAudioRecorder } from "./record_audio.ts";
 * import { silentLogger } from "../mod.ts";
 * const recorder = new ViewerAudioRecorder("/tmp/voices", silentLogger);
 * recorder.write("viewer-1", { data: new Uint8Array([0xf8, 0xff, 0xfe]), rtpTimestamp: 0, sequence: 1 });
 * recorder.close("viewer-1");
 * ```
 */
export class ViewerAudioRecorder {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #open = new Map<string, Recording>();

  /** Record into `dir`. */
  constructor(dir: string, logger: Logger) {
    this.#dir = dir;
    this.#log = logger;
  }

  /** Paths of the files written so far, by viewer (current and closed). */
  readonly files: Map<string, string> = new Map();

  /** Append one packet of `viewerId`'s audio (its file is made on the first). */
  write(viewerId: string, packet: ViewerAudioPacket): void {
    let r = this.#open.get(viewerId);
    if (!r) {
      r = this.#start(viewerId);
      if (!r) return;
    }
    let samples: number;
    try {
      samples = opusPacketSamples(packet.data);
    } catch (e) {
      this.#log.debug(`Viewer ${viewerId}: audio packet not recorded: ${(e as Error).message}`);
      return;
    }
    if (r.next !== undefined) {
      const ahead = (packet.rtpTimestamp - r.next) >>> 0;
      if (ahead >= 0x8000_0000) return; // late or repeated: already past it
      const fill = ahead - (ahead % 120); // concealment comes in 2.5 ms steps
      if (fill > 0 && ahead <= MAX_FILL) this.#append(r, r.writer.gap(fill));
    }
    r.next = (packet.rtpTimestamp + samples) >>> 0;
    r.packets++;
    this.#append(r, r.writer.write(packet.data));
  }

  /** End `viewerId`'s file (the viewer left). */
  close(viewerId: string): void {
    const r = this.#open.get(viewerId);
    if (!r) return;
    this.#open.delete(viewerId);
    try {
      this.#append(r, r.writer.end());
      r.file.close();
      this.#log.info(`Viewer ${viewerId}: ${r.packets} audio packets recorded in ${r.path}`);
    } catch (e) {
      this.#log.warn(`Viewer ${viewerId}: recording ${r.path} failed: ${(e as Error).message}`);
    }
  }

  /** End every file. */
  closeAll(): void {
    for (const id of [...this.#open.keys()]) this.close(id);
  }

  #start(viewerId: string): Recording | undefined {
    const safe = viewerId.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 64) || "viewer";
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const path = `${this.#dir.replace(/\/+$/, "")}/${safe}-${stamp}.opus`;
    try {
      Deno.mkdirSync(this.#dir, { recursive: true });
      const file = Deno.openSync(path, { write: true, create: true, truncate: true });
      const writer = new OggOpusWriter({ channels: 2, comments: [`VIEWER=${safe}`] });
      const r: Recording = { path, file, writer, packets: 0 };
      this.#open.set(viewerId, r);
      this.files.set(viewerId, path);
      this.#append(r, writer.headers());
      return r;
    } catch (e) {
      this.#log.warn(`Viewer ${viewerId}: cannot record audio to ${path}: ${(e as Error).message}`);
      return undefined;
    }
  }

  #append(r: Recording, bytes: Uint8Array): void {
    for (let off = 0; off < bytes.length;) off += r.file.writeSync(bytes.subarray(off));
  }
}
