/**
 * Run the emulator on its own: `deno run -A src/emulator/main.ts`. Prints the environment a
 * master needs (`export …` lines) and the plain-HTTP URL for browser viewers, writes the viewer
 * keys to `<state dir>/viewer-credentials.json` (mode 600, never printed), then serves until
 * Ctrl-C or SIGTERM. `KVS_EMULATOR_STATE_DIR` overrides the state dir (default `.kvs-emulator`),
 * `AWS_KVS_LOG_LEVEL` the log level (default `info`).
 *
 * @example
 * ```ts
 * // deno run -A src/emulator/main.ts > emulator.env && . ./emulator.env
 * ```
 *
 * @module
 */
import { createLogger, type LogLevel, parseLogLevel } from "../log.ts";
import { startEmulator } from "./mod.ts";

if (import.meta.main) {
  const stateDir = Deno.env.get("KVS_EMULATOR_STATE_DIR") ?? ".kvs-emulator";
  let level: LogLevel = "info";
  try {
    level = parseLogLevel(Deno.env.get("AWS_KVS_LOG_LEVEL"));
  } catch { /* an unknown level: info */ }
  const emulator = await startEmulator({
    stateDir,
    logger: createLogger({ level, component: "emulator" }),
  });
  const keysPath = `${emulator.pki.dir}/viewer-credentials.json`;
  await Deno.writeTextFile(
    keysPath,
    JSON.stringify({ region: emulator.region, ...emulator.viewerCredentials }, null, 2) + "\n",
    { mode: 0o600 },
  );
  await Deno.chmod(keysPath, 0o600);
  for (const [k, v] of Object.entries(emulator.env())) console.log(`export ${k}=${v}`);
  console.log(
    `# browser control plane (plain HTTP, ws:// signaling): ` +
      emulator.browserControlPlaneUrl,
  );
  console.log(`# viewer keys of ${emulator.viewerCredentials.accessKeyId}: ${keysPath}`);
  const stop = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", () => stop.resolve());
  Deno.addSignalListener("SIGTERM", () => stop.resolve());
  await stop.promise;
  await emulator.close();
  await Deno.remove(keysPath).catch(() => {});
  Deno.exit(0);
}
