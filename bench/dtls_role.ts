/**
 * `deno task bench:dtls`: how long a Chromium viewer's connection takes over a path with a round
 * trip time, with the master as the DTLS client (`a=setup:active`, what it answers browsers'
 * `actpass` offers) against the master as the DTLS server (`a=setup:passive`, what it answers an
 * offer that says `active`), the same browser and path in the same run, rounds alternating.
 *
 * The path: our session's UDP socket behind the user-space link of `tests/support/link_emulator.ts`
 * (`--delay` ms each way, no loss, no rate limit). The answer's host candidates are replaced by
 * the link's front port and the offer's candidates are not given to the session, so every
 * packet either way crosses the link (our side learns the viewer's address from its checks: a
 * peer-reflexive pair). Chromium (headless, `/usr/bin/chromium` through `npm:playwright-core`)
 * offers video recvonly, gathers, and applies our answer; the server role is had by telling the
 * session the offer said `a=setup:active` (the browser, offering `actpass`, then takes the client
 * role our `passive` answer leaves it).
 *
 * Measured from the moment the page applies the answer: **ours connected** (the session's DTLS
 * is up and SRTP keyed: it can send the first frame) and **page connected** (the page's
 * `connectionState`). Prints medians and maxima per role, the ratio client/server, and what the
 * difference is in round trips.
 *
 * Usage: deno run -A bench/dtls_role.ts [--rounds 6] [--delay 50]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { silentLogger } from "../src/log.ts";
import type { PeerConnectionState } from "../src/peer/types.ts";
import { WasmPeerSessionFactory } from "../src/peer/wasm_session.ts";
import { gatheredOfferScript, launchBrowser } from "../tests/support/browser.ts";
import { startUdpLink } from "../tests/support/link_emulator.ts";

const args = parseArgs({
  args: Deno.args,
  options: { rounds: { type: "string", default: "6" }, delay: { type: "string", default: "50" } },
});
const ROUNDS = Math.floor(Number(args.values.rounds));
const DELAY_MS = Number(args.values.delay);
if (!(ROUNDS >= 1 && ROUNDS <= 30) || !(DELAY_MS >= 0 && DELAY_MS <= 500)) {
  console.error("--rounds 1 to 30, --delay 0 to 500 ms");
  Deno.exit(2);
}
/** A connection not up after this long counts as failed. */
const CONNECT_TIMEOUT_MS = 10_000;

type Role = "client" | "server";
interface Connect {
  /** Answer applied → our session connected, ms (null: never). */
  oursMs: number | null;
  /** Answer applied → the page's connectionState connected, ms (null: never). */
  pageMs: number | null;
}

async function connectOnce(
  browser: Awaited<ReturnType<typeof launchBrowser>>,
  role: Role,
): Promise<Connect> {
  const context = await browser.browser.newContext();
  let oursAt: number | null = null;
  const session = await new WasmPeerSessionFactory({ loopbackOnly: true }).create({
    viewerId: `dtls-${role}`,
    iceServers: [],
    logger: silentLogger,
    callbacks: {
      onLocalCandidate() {},
      onStateChange: (s: PeerConnectionState) => {
        if (s === "connected" && oursAt === null) oursAt = Date.now();
      },
      onKeyframeRequest() {},
      onClosed() {},
    },
  });
  let link: ReturnType<typeof startUdpLink> | undefined;
  try {
    const page = await context.newPage();
    const offer: string = await page.evaluate(gatheredOfferScript(["video"]));
    const setup = role === "server" ? "active" : "actpass";
    const answer = await session.acceptOffer(
      offer.replaceAll("a=setup:actpass", `a=setup:${setup}`)
        .split("\r\n").filter((l) => !l.startsWith("a=candidate:")).join("\r\n"),
    );
    const wanted = role === "client" ? "a=setup:active" : "a=setup:passive";
    if (!answer.includes(wanted)) throw new Error(`the answer does not say ${wanted}`);
    const ours = answer.match(/^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/m);
    if (!ours) throw new Error("no 127.0.0.1 host candidate in the answer");
    link = startUdpLink({ target: { port: Number(ours[1]) } });
    link.setLimits({ delayMs: DELAY_MS });
    const viaLink = answer.split("\r\n").filter((l) => !l.startsWith("a=candidate:"));
    const mid = viaLink.findIndex((l) => l.startsWith("a=mid:"));
    viaLink.splice(
      mid + 1,
      0,
      `a=candidate:1 1 udp 2130706431 127.0.0.1 ${link.port} typ host generation 0`,
    );
    const applied = Date.now();
    const pageAt: number | null = await page.evaluate(`(async () => {
      const pc = globalThis.pc;
      let at = null;
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "connected" && at === null) at = Date.now();
      });
      await pc.setRemoteDescription({ type: "answer", sdp: ${
      JSON.stringify(viaLink.join("\r\n"))
    } });
      const end = Date.now() + ${CONNECT_TIMEOUT_MS};
      while (at === null && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      return at;
    })()`);
    const end = Date.now() + CONNECT_TIMEOUT_MS;
    while (oursAt === null && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    return {
      oursMs: oursAt === null ? null : oursAt - applied,
      pageMs: pageAt === null ? null : pageAt - applied,
    };
  } finally {
    session.close();
    await link?.close();
    await context.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const browser = await launchBrowser();
const results: Record<Role, Connect[]> = { client: [], server: [] };
try {
  // One connection first, not counted: the browser's and the core's first-use costs.
  await connectOnce(browser, "client");
  for (let round = 1; round <= ROUNDS; round++) {
    for (const role of (round % 2 ? ["client", "server"] : ["server", "client"]) as Role[]) {
      const r = await connectOnce(browser, role);
      results[role].push(r);
      console.error(
        `  round ${round}, master as DTLS ${role}: ours ${r.oursMs ?? "never"} ms, page ` +
          `${r.pageMs ?? "never"} ms`,
      );
    }
  }
} finally {
  await browser.close();
}

const rtt = 2 * DELAY_MS;
const ok = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
const fmt = (x: number) => Number.isFinite(x) ? x.toFixed(0) : "–";
console.log(
  `\nDTLS role of the master — ${new Date().toISOString().replace("T", " ").slice(0, 16)} UTC` +
    `\nChromium viewer, path with ${DELAY_MS} ms each way (RTT ${rtt} ms), ${ROUNDS} rounds per ` +
    `role; from the answer applied in the page`,
);
const line = (c: string[]) => c.map((x, i) => i ? x.padStart(18) : x.padEnd(30)).join("");
console.log(line(["", "active (client)", "passive (server)", "client/server"]));
for (
  const [label, key] of [["ours connected ms", "oursMs"], ["page connected ms", "pageMs"]] as const
) {
  const c = ok(results.client.map((r) => r[key]));
  const s = ok(results.server.map((r) => r[key]));
  console.log(
    line([
      `${label}, median`,
      fmt(median(c)),
      fmt(median(s)),
      (median(c) / median(s)).toFixed(2) + "×",
    ]),
  );
  console.log(line([`${label}, max`, fmt(Math.max(...c)), fmt(Math.max(...s)), ""]));
}
const saved = median(ok(results.server.map((r) => r.oursMs))) -
  median(ok(results.client.map((r) => r.oursMs)));
console.log(
  `\nThe client role has our session connected ${fmt(saved)} ms sooner (median): ` +
    `${rtt ? (saved / rtt).toFixed(2) : "–"} round trips.`,
);
const failed = [...results.client, ...results.server].filter((r) => r.oursMs === null).length;
if (failed) console.log(`${failed} connections never came up`);
Deno.exit(0);
