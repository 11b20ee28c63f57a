/**
 * Run the emulator on its own: `deno run -A src/emulator/main.ts`. Prints the environment a
 * master needs (`export …` lines) and the viewer credentials, then serves until Ctrl-C.
 *
 * @example
 * ```ts
 * // deno run -A src/emulator/main.ts > emulator.env
 * ```
 *
 * @module
 */
import { createLogger } from "../log.ts";
import { startEmulator } from "./mod.ts";

if (import.meta.main) {
  const emulator = await startEmulator({ logger: createLogger({ component: "emulator" }) });
  for (const [k, v] of Object.entries(emulator.env())) console.log(`export ${k}=${v}`);
  console.log(`# viewer keys: ${emulator.viewerCredentials.accessKeyId} (secret not printed;`);
  console.log(`# use startEmulator() from code, or the demo, for a ready viewer page)`);
  console.log(`# browser control plane (plain HTTP): ${emulator.browserControlPlaneUrl}`);
  await new Promise<void>((resolve) => Deno.addSignalListener("SIGINT", () => resolve()));
  await emulator.close();
}
