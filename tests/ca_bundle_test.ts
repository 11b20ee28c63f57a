// The CA bundle is read once per process, however many parts trust it: the IoT credential
// provider (mutual TLS), the control plane, the signaling WebSocket and TURN over TLS. The
// emulator is real; only the file reads are counted, by wrapping Deno's read functions.
import assert from "node:assert/strict";
import { startDemo } from "../cli/demo.ts";
import { EXIT, main } from "../cli/master.ts";
import { startEmulator } from "../src/emulator/mod.ts";
import { silentLogger } from "../src/log.ts";
import type { SignalingClient } from "../src/signaling/mod.ts";
import { until } from "./support/until.ts";

const STATE = new URL("../.kvs-emulator/", import.meta.url).pathname;
const READS = ["readTextFile", "readFile", "readTextFileSync", "readFileSync", "open", "openSync"];

/**
 * Run `fn`, returning the files opened outside the emulator meanwhile (the emulator reads its own
 * CA to serve TLS and to issue certificates).
 */
async function filesRead(fn: () => Promise<void>): Promise<string[]> {
  const deno = Deno as unknown as Record<string, (...args: unknown[]) => unknown>;
  const saved = READS.map((name) => [name, deno[name]] as const);
  const read: string[] = [];
  for (const [name, original] of saved) {
    deno[name] = (...args: unknown[]) => {
      const caller = new Error().stack?.split("\n")[2] ?? "";
      if (!caller.includes("/src/emulator/")) {
        read.push(args[0] instanceof URL ? args[0].pathname : String(args[0]));
      }
      return original.apply(Deno, args);
    };
  }
  try {
    await fn();
  } finally {
    for (const [name, original] of saved) deno[name] = original;
  }
  return read;
}

Deno.test({
  name: "CA bundle: the master command reads it once (IoT, control plane, WebSocket)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const emu = await startEmulator({ stateDir: STATE, turn: false });
    const dir = await Deno.makeTempDir();
    try {
      const env = emu.env();
      const controller = new AbortController();
      let client: SignalingClient | undefined;
      const read = await filesRead(async () => {
        const done = main(["--endpoint-cache-file", `${dir}/cache`], env, {
          logSink: () => {},
          print: () => {},
          signal: controller.signal,
          onClient: (c) => client = c,
        });
        await until(() => client !== undefined, "client");
        await client!.waitForState("Connected", 15_000);
        controller.abort();
        assert.equal(await done, EXIT.OK);
      });
      assert.ok(emu.iotRequests.some((r) => r.status === 200), "IoT credentials over mutual TLS");
      assert.ok(emu.connections().some((c) => c.master), "signaling WebSocket over TLS");
      assert.equal(read.filter((f) => f === env.AWS_KVS_CACERT_PATH).length, 1, "read once");
    } finally {
      await emu.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "CA bundle: the demo reads it once (IoT, control plane, WebSocket, TURN)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    let caPath = "";
    const read = await filesRead(async () => {
      const demo = await startDemo({
        stateDir: STATE,
        loopbackOnly: true,
        turn: false,
        logger: silentLogger,
      });
      try {
        caPath = demo.emulator.env().AWS_KVS_CACERT_PATH;
        await demo.master.waitForState("Connected", 15_000);
        assert.ok(demo.emulator.iotRequests.some((r) => r.status === 200));
      } finally {
        await demo.close();
      }
    });
    assert.ok(caPath);
    assert.equal(read.filter((f) => f === caPath).length, 1, "read once");
  },
});
