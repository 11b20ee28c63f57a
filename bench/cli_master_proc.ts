// The master command (`main()` of cli/master.ts) in its own process for bench/live_ttff.ts, with
// the arguments given (e.g. `<channel> --video-command '<encoder>' --no-endpoint-cache`) and the
// emulator's environment. Two things differ from `deno task master`, both to keep the benchmark
// on loopback: sessions gather host candidates on 127.0.0.1 and ::1 only, and the region's
// public STUN server is not asked (TURN servers, none without the emulator's TURN, are kept).
// Prints READY once signaling is connected; the command's own log goes to stderr.
import { main } from "../cli/master.ts";
import type { PeerSessionFactory } from "../src/peer/types.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";

const inner = new WasmPeerSessionFactory({ loopbackOnly: true });
const loopbackOnly: PeerSessionFactory = {
  // The warm start, as the command's own factory has it (without it the first join paid for it).
  prepare: () => inner.prepare(),
  create: (o) =>
    inner.create({
      ...o,
      iceServers: o.iceServers
        .map((s) => ({ ...s, urls: s.urls.filter((u) => !/^stuns?:/i.test(u)) }))
        .filter((s) => s.urls.length > 0),
    }),
};

const code = await main(Deno.args, Deno.env.toObject(), {
  peerSessionFactory: loopbackOnly,
  onClient: (client) => {
    client.waitForState("Connected", 30_000).then(
      () => console.log("READY"),
      (e) => console.error(`signaling: ${(e as Error).message}`),
    );
  },
});
Deno.exit(code);
