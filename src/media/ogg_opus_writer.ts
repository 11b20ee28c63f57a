/**
 * Writing Ogg Opus (RFC 7845): Opus packets into Ogg pages a player or `ffmpeg` can read, for
 * recording audio received from viewers or making sample files.
 *
 * @module
 */
import { encodeOggPage, oggLacing } from "./ogg.ts";
import { encodeOpusHead, encodeOpusTags } from "./opus_headers.ts";
import { inspectOpusPacket, opusConcealmentPackets } from "./opus.ts";

/** Options of {@link OggOpusWriter}. */
export interface OggOpusWriterOptions {
  /** Output channels in `OpusHead`: 1 or 2 (default 2, as WebRTC's `opus/48000/2`). */
  channels?: number;
  /**
   * Samples at 48 kHz a player drops at the start (default 0). Set the encoder's lookahead
   * (libopus: 312) when the first packet is the first an encoder made.
   */
  preSkip?: number;
  /** Sample rate of the original input, Hz, for information (default 48 000). */
  inputSampleRate?: number;
  /** Output gain, Q7.8 dB (default 0). */
  outputGain?: number;
  /** Serial number of the logical stream (default random). */
  serial?: number;
  /** Vendor string of `OpusTags` (default `kvs-webrtc-master`). */
  vendor?: string;
  /** `FIELD=value` comments of `OpusTags` (default none). */
  comments?: string[];
  /**
   * Audio per page, ms (default 1000). A page is closed once it holds this much; 0 puts each
   * packet on its own page. A page also closes at 255 segments (about 60 kB).
   */
  pageDurationMs?: number;
}

/**
 * Builds an Ogg Opus stream packet by packet. Each call returns the bytes of the pages it
 * completed (often none: a page is held until it is full or the next packet arrives, so the last
 * one can carry the end-of-stream flag), to append to a file or a stream.
 *
 * The first page holds `OpusHead` alone, the next `OpusTags`, both at granule position 0; audio
 * begins on a new page. Each audio page's granule position is the number of 48 kHz samples up to
 * the end of its last complete packet, pre-skip included, from each packet's TOC; a packet too
 * big for one page is continued on the next. {@link OggOpusWriter.end} marks the last page
 * end-of-stream.
 *
 * @example
 * ```ts
 * import { OggOpusWriter } from "./ogg_opus_writer.ts";
 * const writer = new OggOpusWriter({ channels: 1 });
 * const file = await Deno.open("/tmp/out.opus", { write: true, create: true, truncate: true });
 * const silence20ms = new Uint8Array([0xf8, 0xff, 0xfe]); // CELT FB 20 ms, mono
 * for (let i = 0; i < 50; i++) await file.write(writer.write(silence20ms));
 * await file.write(writer.end());
 * file.close();
 * ```
 */
export class OggOpusWriter {
  /** Serial number of the logical stream. */
  readonly serial: number;
  readonly #options: OggOpusWriterOptions;
  readonly #pageSamples: number;
  #sequence = 0;
  #granule = 0;
  #headers = false;
  #ended = false;
  #stereo = false;
  // The page being filled.
  #lacing: number[] = [];
  #body: Uint8Array[] = [];
  #continued = false;
  #pageGranule = -1;
  #pagePackets = 0;
  #pageAudio = 0;
  #pages = 0;
  #bytes = 0;

  /** Check the options; nothing is written before the first call. */
  constructor(options: OggOpusWriterOptions = {}) {
    const channels = options.channels ?? 2;
    if (channels !== 1 && channels !== 2) {
      throw new RangeError(`channels must be 1 or 2, got ${options.channels}`);
    }
    const ms = options.pageDurationMs ?? 1000;
    if (!(ms >= 0 && ms <= 10_000)) {
      throw new RangeError(`pageDurationMs must be in [0, 10000], got ${options.pageDurationMs}`);
    }
    this.#options = { ...options, channels };
    this.#pageSamples = Math.round(ms * 48);
    this.serial = options.serial ?? crypto.getRandomValues(new Uint32Array(1))[0];
    // Validated now rather than at the first write.
    encodeOpusHead({ channels, preSkip: options.preSkip ?? 0 });
  }

  /** Granule position after the last packet written: 48 kHz samples so far, pre-skip included. */
  get granule(): number {
    return this.#granule;
  }

  /** Pages returned so far. */
  get pages(): number {
    return this.#pages;
  }

  /** Bytes returned so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** {@link OggOpusWriter.end} was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * The two header pages, the first time it is called (later calls, and calls after
   * {@link OggOpusWriter.write}, return nothing). Called by the other methods when needed.
   */
  headers(): Uint8Array {
    if (this.#headers) return new Uint8Array(0);
    this.#headers = true;
    const o = this.#options;
    const head = encodeOpusHead({
      channels: o.channels!,
      preSkip: o.preSkip ?? 0,
      inputSampleRate: o.inputSampleRate ?? 48000,
      outputGain: o.outputGain ?? 0,
    });
    const tags = encodeOpusTags({
      vendor: o.vendor ?? "kvs-webrtc-master",
      comments: o.comments ?? [],
    });
    const out: Uint8Array[] = [];
    this.#add(head, 0, out);
    out.push(this.#emit(false, true));
    this.#add(tags, 0, out);
    out.push(this.#emit(false, true));
    return concat(out);
  }

  /**
   * Add one Opus packet; returns the pages this completed. Its duration comes from its TOC, and
   * a malformed packet throws {@link OpusError} (nothing is written).
   */
  write(packet: Uint8Array): Uint8Array {
    this.#open();
    const info = inspectOpusPacket(packet, "OggOpusWriter.write");
    this.#stereo = info.stereo;
    const out: Uint8Array[] = [this.headers()];
    if (this.#pagePackets > 0 && this.#pageAudio >= this.#pageSamples) {
      out.push(this.#emit(false));
    }
    this.#add(packet, info.samples, out);
    return concat(out);
  }

  /**
   * Stand for `samples` of lost audio (a multiple of 120, i.e. 2.5 ms) with packets that make a
   * decoder conceal the loss, so the timeline stays whole (RFC 7845 §4.1).
   */
  gap(samples: number): Uint8Array {
    this.#open();
    const packets = opusConcealmentPackets(samples, this.#stereo);
    return concat(packets.map((p) => this.write(p)));
  }

  /** Close the page being filled now (without end of stream), for a live stream's latency. */
  flush(): Uint8Array {
    this.#open();
    const out = [this.headers()];
    if (this.#lacing.length > 0) out.push(this.#emit(false));
    return concat(out);
  }

  /**
   * The last page, marked end of stream. If nothing is pending (after {@link OggOpusWriter.flush})
   * an empty end-of-stream page is written. Later calls return nothing.
   */
  end(): Uint8Array {
    if (this.#ended) return new Uint8Array(0);
    const out = [this.headers()];
    this.#ended = true;
    out.push(this.#emit(true));
    return concat(out);
  }

  #open(): void {
    if (this.#ended) throw new Error("OggOpusWriter: the stream has ended");
  }

  /** Lace one packet onto the current page, closing full pages into `out`. */
  #add(packet: Uint8Array, samples: number, out: Uint8Array[]): void {
    const lacing = oggLacing(packet.length);
    let at = 0;
    for (let i = 0; i < lacing.length; i++) {
      const v = lacing[i];
      this.#lacing.push(v);
      this.#body.push(packet.subarray(at, at + v));
      at += v;
      const last = i === lacing.length - 1;
      if (last) {
        this.#granule += samples;
        this.#pageGranule = this.#granule;
        this.#pagePackets++;
        this.#pageAudio += samples;
      }
      if (this.#lacing.length === 255) {
        out.push(this.#emit(false));
        this.#continued = !last;
      }
    }
  }

  #emit(eos: boolean, header = false): Uint8Array {
    const page = encodeOggPage({
      continued: this.#continued,
      bos: this.#sequence === 0,
      eos,
      granule: header ? 0 : this.#lacing.length === 0 ? this.#granule : this.#pageGranule,
      serial: this.serial,
      sequence: this.#sequence++,
      lacing: new Uint8Array(this.#lacing),
      body: concat(this.#body),
    });
    this.#lacing = [];
    this.#body = [];
    this.#continued = false;
    this.#pageGranule = -1;
    this.#pagePackets = 0;
    this.#pageAudio = 0;
    this.#pages++;
    this.#bytes += page.length;
    return page;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
