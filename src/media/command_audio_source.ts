/**
 * An {@link AudioSource} that runs an encoder command and reads Ogg Opus from its standard
 * output, restarting it with backoff whenever it exits: the audio sibling of
 * `CommandVideoSource`.
 *
 * @module
 */
import type { AudioPacket, AudioSource } from "./audio_types.ts";
import { AudioTimestamper } from "./audio_timestamps.ts";
import { StreamAudioSource } from "./stream_audio_source.ts";
import type { PacerClock } from "./pacer.ts";
import { RestartingCommand, type RestartingCommandOptions } from "./restarting_command.ts";

/** Options of {@link CommandAudioSource}: the command (Ogg Opus on its stdout), how it is
 * restarted (name default `audio command`), and the pacing clock. */
export interface CommandAudioSourceOptions extends Omit<RestartingCommandOptions, "now"> {
  /** Clock and timers for pacing the packets (see {@link StreamAudioSource}). */
  clock?: PacerClock;
}

/**
 * Runs `sh -c <command>` and delivers the Opus packets of its stdout in real time (see
 * {@link StreamAudioSource}: paced by their granule positions, timestamps from the stream's
 * timeline). When the command exits it is started again after a delay (0.5 s doubling to 10 s,
 * back to 0.5 s after 30 s of healthy running), with a line naming the exit code; timestamps go
 * on increasing across runs. Its stderr goes to the log at debug, one record a line.
 *
 * @example
 * ```ts
 * import { CommandAudioSource } from "./command_audio_source.ts";
 * const source = new CommandAudioSource({
 *   command: "ffmpeg -loglevel error -re -f lavfi -i sine=frequency=440:sample_rate=48000 " +
 *     "-c:a libopus -b:a 32k -page_duration 20000 -f ogg -",
 * });
 * source.start((p) => console.log(p.timestamp48k, p.data.length));
 * setTimeout(() => source.stop(), 2000);
 * ```
 */
export class CommandAudioSource implements AudioSource {
  /** Always Opus. */
  readonly codec = "opus" as const;
  readonly #runner: RestartingCommand;
  readonly #stamps = new AudioTimestamper();
  #stream?: StreamAudioSource;
  #onPacket?: (packet: AudioPacket) => void;
  #lastTs = -Infinity;
  #delivered = 0;

  /** Nothing runs before {@link CommandAudioSource.start}. */
  constructor(options: CommandAudioSourceOptions) {
    const name = options.name ?? "audio command";
    this.#runner = new RestartingCommand({ ...options, name }, (stdout) => {
      const stream = this.#stream = new StreamAudioSource({
        stream: stdout,
        name,
        clock: options.clock,
        logger: options.logger,
      });
      stream.start((p) => this.#deliver(p));
      return stream;
    });
  }

  /** Channels of the running command's stream, once known. */
  get channels(): number | undefined {
    return this.#stream?.channels;
  }

  /** How many times the command was started. */
  get runs(): number {
    return this.#runner.runs;
  }

  /** Packets delivered so far, over every run. */
  get delivered(): number {
    return this.#delivered;
  }

  /** The running command's process id, if one runs. */
  get pid(): number | undefined {
    return this.#runner.pid;
  }

  /** Start the command; packets go to `onPacket` at their time. */
  start(onPacket: (packet: AudioPacket) => void): void {
    this.#runner.start();
    this.#onPacket = onPacket;
  }

  /** Stop the command (SIGTERM, then SIGKILL after 2 s) and stop restarting it. */
  async stop(): Promise<void> {
    await this.#runner.stop();
  }

  #deliver(p: AudioPacket): void {
    // Timestamps keep increasing across runs, each run's audio after the last one's.
    const timestampUs = p.timestampUs <= this.#lastTs ? this.#lastTs + 1 : p.timestampUs;
    this.#lastTs = timestampUs;
    this.#delivered++;
    this.#onPacket!({
      ...p,
      timestampUs,
      timestamp48k: this.#stamps.stamp(timestampUs, p.samples),
    });
  }
}
