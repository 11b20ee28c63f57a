/**
 * Whether a command is installed, for tests and benches that need one (ffmpeg, taskset, …).
 *
 * @module
 */

/**
 * Whether `cmd` is on the PATH.
 *
 * @example
 * ```ts
 * import { have } from "./have.ts";
 * console.log(await have("ffmpeg"));
 * ```
 */
export async function have(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`] }).output()).success;
  } catch {
    return false;
  }
}
