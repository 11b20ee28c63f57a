/**
 * Errors of the media sources.
 *
 * @module
 */
import { KvsError } from "../errors.ts";

/**
 * A media source cannot run: missing or empty frames folder, no keyframe, bad options, started
 * twice, a failing input stream. `path` names the folder, file or stream at fault when known.
 *
 * @example
 * ```ts
 * import { MediaSourceError } from "./errors.ts";
 * const err = new MediaSourceError("no frame files (*.h264) in the folder", "samples/none");
 * console.log(err.code, err.message); // MEDIA_SOURCE samples/none: no frame files …
 * ```
 */
export class MediaSourceError extends KvsError {
  /** Folder, file or stream name at fault, when known. */
  readonly path?: string;
  /** Make the error; `path` (folder, file or stream) prefixes the message. */
  constructor(message: string, path?: string, options?: ErrorOptions) {
    super("MEDIA_SOURCE", path ? `${path}: ${message}` : message, options);
    this.path = path;
  }
}
