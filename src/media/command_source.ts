/**
 * A {@link VideoSource} that runs an encoder command and reads Annex-B H.264 from its standard
 * output, restarting it with backoff whenever it exits.
 *
 * @module
 */
import type { EncodedFrame, VideoSource } from "./types.ts";
import { StreamVideoSource } from "./stream_source.ts";
import { RestartingCommand, type RestartingCommandOptions } from "./restarting_command.ts";

/** Options of {@link CommandVideoSource}: the command (Annex-B H.264 on its stdout) and how it
 * is restarted (name default `video command`). */
export type CommandVideoSourceOptions = RestartingCommandOptions;

/**
 * Runs `sh -c <command>` and delivers the access units of its stdout (see
 * {@link StreamVideoSource}: from the first IDR, SPS/PPS put in front of IDRs that lack them,
 * stamped on arrival). When the command exits it is started again after a delay (0.5 s doubling
 * to 10 s, back to 0.5 s after 30 s of healthy running), with a line naming the exit code; the
 * frames resume at the new encoder's first IDR. Its stderr goes to the log at debug, one record a
 * line, secrets redacted.
 *
 * @example
 * ```ts
 * import { CommandVideoSource } from "./command_source.ts";
 * const source = new CommandVideoSource({
 *   command: "ffmpeg -loglevel error -re -f lavfi -i testsrc=size=640x360:rate=25 " +
 *     "-pix_fmt yuv420p -c:v libx264 -profile:v baseline -g 50 -bf 0 -f h264 -",
 * });
 * source.start((frame) => console.log(frame.keyframe, frame.data.length));
 * setTimeout(() => source.stop(), 2000);
 * ```
 */
export class CommandVideoSource implements VideoSource {
  /** Always H.264. */
  readonly codec = "h264" as const;
  readonly #runner: RestartingCommand;
  #onFrame?: (frame: EncodedFrame) => void;
  #lastTs = -Infinity;
  #delivered = 0;

  /** Nothing runs before {@link CommandVideoSource.start}. */
  constructor(options: CommandVideoSourceOptions) {
    const name = options.name ?? "video command";
    this.#runner = new RestartingCommand({ ...options, name }, (stdout) => {
      const stream = new StreamVideoSource({ stream: stdout, name, logger: options.logger });
      stream.start((f) => this.#deliver(f));
      return stream;
    });
  }

  /** How many times the command was started. */
  get runs(): number {
    return this.#runner.runs;
  }

  /** Access units delivered so far, over every run. */
  get delivered(): number {
    return this.#delivered;
  }

  /** The running command's process id, if one runs. */
  get pid(): number | undefined {
    return this.#runner.pid;
  }

  /** Start the command; frames go to `onFrame` as they complete. */
  start(onFrame: (frame: EncodedFrame) => void): void {
    this.#runner.start();
    this.#onFrame = onFrame;
  }

  /** Stop the command (SIGTERM, then SIGKILL after 2 s) and stop restarting it. */
  async stop(): Promise<void> {
    await this.#runner.stop();
  }

  #deliver(f: EncodedFrame): void {
    // Timestamps keep increasing across runs.
    const timestampUs = f.timestampUs <= this.#lastTs ? this.#lastTs + 1 : f.timestampUs;
    this.#lastTs = timestampUs;
    this.#delivered++;
    this.#onFrame!({ ...f, timestampUs });
  }
}
