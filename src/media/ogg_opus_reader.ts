/**
 * Reading Ogg Opus (RFC 7845): Opus packets out of an Ogg byte stream, each with its position on
 * the stream's 48 kHz timeline, from chunks as they arrive.
 *
 * @module
 */
import { OggError, OggPacketAssembler, OggPageParser, type ParsedOggPage } from "./ogg.ts";
import {
  hasMagic,
  type OpusHead,
  type OpusTags,
  parseOpusHead,
  parseOpusTags,
} from "./opus_headers.ts";
import { inspectOpusPacket } from "./opus.ts";

/** One Opus packet read from an Ogg stream. */
export interface OggOpusPacket {
  /** The Opus packet (RFC 6716), TOC byte first. */
  data: Uint8Array;
  /**
   * Position of its first sample on the stream's 48 kHz timeline, counted as Ogg granule
   * positions are (the pre-skip included): the first packet of a complete file is at 0. Later
   * links of a chained file continue where the previous one ended.
   */
  granule: number;
  /** Duration at 48 kHz (960 for 20 ms), from the packet's TOC. */
  samples: number;
}

/** Options of {@link OggOpusReader}. */
export interface OggOpusReaderOptions {
  /** Name of the file or stream, used in errors. */
  source?: string;
  /** Largest audio packet accepted, bytes (default 65 536; Opus packets are far smaller). */
  maxPacketBytes?: number;
  /** Largest `OpusTags` packet accepted, bytes (default 1 MiB; cover art needs more). */
  maxTagsBytes?: number;
  /**
   * Skip garbage and corrupt pages, and carry on across lost pages, instead of failing (for a
   * lossy transport). Default false: anything invalid is an error.
   */
  resync?: boolean;
}

type State = "head" | "tags" | "audio" | "ended";

/**
 * Feeds chunks of an Ogg Opus stream in, gets Opus packets out with their 48 kHz positions.
 *
 * The first logical stream whose first packet is `OpusHead` is read; others (a video stream
 * multiplexed with it) are skipped without being buffered. A chained file (another `OpusHead`
 * after the end of stream) carries on with the next link. Positions come from the pages' granule
 * positions and each packet's duration (its TOC): the first audio page's granule gives the start,
 * and a page whose granule runs ahead of its packets (a gap) moves the timeline forward.
 * Memory is bounded: one page and one packet at most (`maxPacketBytes`, `maxTagsBytes`).
 * Invalid data throws {@link OggError} or {@link OpusError} naming the stream, the page and what
 * is wrong.
 *
 * @example
 * ```ts
 * import { OggOpusReader } from "./ogg_opus_reader.ts";
 * const reader = new OggOpusReader({ source: "samples/opus/tones.opus" });
 * const packets = reader.push(await Deno.readFile("samples/opus/tones.opus"));
 * packets.push(...reader.end());
 * console.log(reader.head?.channels, packets.length, packets[1].granule); // 1 500 960
 * ```
 */
export class OggOpusReader {
  readonly #source?: string;
  readonly #pages: OggPageParser;
  readonly #maxPacket: number;
  readonly #maxTags: number;
  readonly #lenient: boolean;
  #state: State = "head";
  #serial = -1;
  #assembler?: OggPacketAssembler;
  #head?: OpusHead;
  #tags?: OpusTags;
  /** End of the last packet, on the current link's own timeline; undefined before audio. */
  #next?: number;
  /** Added to the current link's positions so chained links continue one timeline. */
  #linkOffset = 0;
  #links = 0;
  #endGranule?: number;
  #packets = 0;
  #otherStreams = new Set<number>();
  #fault?: unknown;
  /** What the other streams' first packets begin with, for an error naming them. */
  #others: string[] = [];

  /** A reader at the start of a stream. */
  constructor(options: OggOpusReaderOptions = {}) {
    this.#source = options.source;
    this.#lenient = options.resync ?? false;
    this.#pages = new OggPageParser({ source: options.source, resync: options.resync });
    this.#maxPacket = options.maxPacketBytes ?? 65536;
    this.#maxTags = options.maxTagsBytes ?? 1 << 20;
  }

  /** The identification header of the current link, once read. */
  get head(): OpusHead | undefined {
    return this.#head;
  }

  /** The comment header of the current link, once read. */
  get tags(): OpusTags | undefined {
    return this.#tags;
  }

  /** The current link's end-of-stream page was read (more may follow in a chained file). */
  get ended(): boolean {
    return this.#state === "ended";
  }

  /**
   * The granule position of the last end-of-stream page, on the reader's timeline: the end of
   * the audio after end trimming. Playback length = `endGranule - head.preSkip` for one link.
   */
  get endGranule(): number | undefined {
    return this.#endGranule;
  }

  /** Logical Opus streams read (links of a chained file). */
  get links(): number {
    return this.#links;
  }

  /** Audio packets returned so far. */
  get packets(): number {
    return this.#packets;
  }

  /** Bytes skipped as garbage or corrupt pages (only with `resync`). */
  get skippedBytes(): number {
    return this.#pages.skippedBytes;
  }

  /** Packets cut by lost pages and dropped (only with `resync`). */
  get droppedPackets(): number {
    return this.#assembler?.dropped ?? 0;
  }

  /** Serial numbers of other logical streams seen and skipped. */
  get otherStreams(): number[] {
    return [...this.#otherStreams];
  }

  /**
   * Append a chunk of the stream; returns the audio packets it completed (possibly none). Bad
   * data throws; when whole packets came before it in the chunk, they are returned first and the
   * error is thrown by the next call (so a stream's valid part is never lost).
   */
  push(chunk: Uint8Array): OggOpusPacket[] {
    if (this.#fault) throw this.#fault;
    const out: OggOpusPacket[] = [];
    try {
      for (const page of this.#pages.push(chunk)) this.#page(page, out);
    } catch (e) {
      this.#fault = e;
      if (out.length === 0) throw e;
    }
    return out;
  }

  /**
   * End of the stream. Throws {@link OggError} when it ended inside a page, inside a packet, or
   * before any Opus header. A stream that stops without an end-of-stream page (a live encoder
   * killed) is not an error: see {@link OggOpusReader.ended}.
   */
  end(): OggOpusPacket[] {
    if (this.#fault) throw this.#fault;
    this.#pages.end();
    if (this.#state === "head") {
      throw new OggError(
        this.#pages.pages === 0
          ? "empty stream: no Ogg page"
          : `no Opus stream (no OpusHead)${
            this.#others.length ? `: found only ${this.#others.join(", ")}` : ""
          }`,
        this.#source,
      );
    }
    if (this.#state === "tags") {
      throw new OggError("truncated: the stream ends before its OpusTags header", this.#source);
    }
    if ((this.#assembler?.pendingBytes ?? 0) > 0 && this.#state !== "ended") {
      throw new OggError(
        `truncated: the stream ends inside a packet (${this.#assembler!.pendingBytes} bytes of it)`,
        this.#source,
      );
    }
    return [];
  }

  #page(page: ParsedOggPage, out: OggOpusPacket[]): void {
    const where = `page ${page.sequence} at byte ${page.offset}`;
    const joinable = this.#state === "head" || this.#state === "ended";
    if (page.bos && joinable && hasMagic(page.body, "OpusHead")) {
      this.#begin(page); // the stream, or the next link of a chained one (whatever its serial)
    } else if (page.serial !== this.#serial) {
      if (page.bos || this.#state !== "head") {
        if (page.bos && this.#state === "head") this.#others.push(describeMagic(page.body));
        this.#otherStreams.add(page.serial);
        return;
      } else if (this.#otherStreams.has(page.serial)) {
        // Every stream's first page comes before any other page (RFC 3533): none was Opus.
        throw new OggError(
          `no Opus stream (no OpusHead): found only ${this.#others.join(", ")}`,
          this.#source,
          page.offset,
        );
      } else {
        throw new OggError(
          `${where}: the stream does not begin with a beginning-of-stream page ` +
            "(joined mid-way? Ogg Opus needs its OpusHead)",
          this.#source,
          page.offset,
        );
      }
    }
    if (this.#state === "ended") {
      throw new OggError(
        `${where}: a page after the end-of-stream page`,
        this.#source,
        page.offset,
      );
    }
    const packets = this.#assembler!.push(page);
    const opus: Uint8Array[] = [];
    for (const p of packets) {
      if (this.#state === "head") {
        this.#head = parseOpusHead(p, this.#source);
        this.#state = "tags";
        this.#assembler!.maxPacketBytes = this.#maxTags;
      } else if (this.#state === "tags") {
        this.#tags = parseOpusTags(p, this.#source);
        this.#state = "audio";
        this.#assembler!.maxPacketBytes = this.#maxPacket;
      } else {
        opus.push(p);
      }
    }
    if (opus.length > 0) this.#audio(page, opus, out);
    if (page.eos) {
      if (this.#state !== "audio") {
        throw new OggError(
          `${where}: the stream ends before its headers are complete`,
          this.#source,
          page.offset,
        );
      }
      if (page.granule >= 0) this.#endGranule = page.granule + this.#linkOffset;
      this.#state = "ended";
    }
  }

  #begin(page: ParsedOggPage): void {
    if (this.#state === "ended") {
      // Next link of a chained file: its audio continues our timeline.
      this.#linkOffset += this.#next ?? 0;
    }
    this.#serial = page.serial;
    this.#state = "head";
    this.#head = undefined;
    this.#tags = undefined;
    this.#next = undefined;
    this.#links++;
    this.#assembler = new OggPacketAssembler({
      source: this.#source,
      maxPacketBytes: 4096,
      lenient: this.#lenient,
    });
  }

  #audio(page: ParsedOggPage, packets: Uint8Array[], out: OggOpusPacket[]): void {
    const where = `page ${page.sequence} at byte ${page.offset}`;
    const durations = packets.map((p, i) =>
      inspectOpusPacket(p, `${this.#source ?? "stream"}: ${where}, packet ${i + 1}`).samples
    );
    const total = durations.reduce((a, b) => a + b, 0);
    const g = page.granule;
    let start: number;
    if (this.#next === undefined) {
      if (g < 0) {
        throw new OggError(
          `${where}: the first audio page has no granule position`,
          this.#source,
          page.offset,
        );
      }
      start = g - total;
      if (start < 0) {
        // Only a stream that ends on this page may trim more than it began with.
        if (!page.eos) {
          throw new OggError(
            `${where}: granule position ${g} is less than the ${total} samples of its packets`,
            this.#source,
            page.offset,
          );
        }
        start = 0;
      }
      if (this.#links > 1) this.#linkOffset -= start;
    } else {
      start = this.#next;
      const end = start + total;
      if (g >= 0 && g > end) {
        start = g - total; // a gap: the granule position is the authority
      } else if (g >= 0 && g < end && !page.eos) {
        throw new OggError(
          `${where}: granule position ${g} is before the end of its packets (${end}): ` +
            "the positions go backwards",
          this.#source,
          page.offset,
        );
      }
    }
    let at = start;
    for (let i = 0; i < packets.length; i++) {
      out.push({ data: packets[i], granule: at + this.#linkOffset, samples: durations[i] });
      at += durations[i];
    }
    this.#packets += packets.length;
    this.#next = at;
  }
}

/** The codec a first packet announces, e.g. `"\x01vorbis"`, for messages. */
function describeMagic(body: Uint8Array): string {
  let s = "";
  for (const b of body.subarray(0, 8)) {
    s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return `a stream beginning "${s}"`;
}

/**
 * Read the Opus packets of an Ogg stream as they arrive (a file, a child process's stdout).
 * Throws like {@link OggOpusReader}; `onHead` is called with the `OpusHead` before the first
 * packet of each link.
 *
 * @example
 * ```ts
 * import { readOggOpus } from "./ogg_opus_reader.ts";
 * const file = await Deno.open("samples/opus/tones.opus");
 * let seconds = 0;
 * for await (const packet of readOggOpus(file.readable)) seconds += packet.samples / 48000;
 * console.log(seconds); // 10
 * ```
 */
export async function* readOggOpus(
  stream: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  options: OggOpusReaderOptions & { onHead?: (head: OpusHead, tags?: OpusTags) => void } = {},
): AsyncGenerator<OggOpusPacket> {
  const reader = new OggOpusReader(options);
  let announced: OpusHead | undefined;
  for await (const chunk of stream) {
    for (const packet of reader.push(chunk)) {
      if (reader.head !== announced) {
        announced = reader.head;
        options.onHead?.(reader.head!, reader.tags);
      }
      yield packet;
    }
  }
  yield* reader.end();
}
