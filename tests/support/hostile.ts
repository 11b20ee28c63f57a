/**
 * Hostile inputs for everything the master parses from the network: SDP offers, ICE candidate
 * lines and signaling messages, made by mutating real ones (the browser offers in
 * `tests/fixtures`) with what makes parsers slow — long runs of spaces, tabs, colons,
 * semicolons and `=`, repeated attributes, huge fmtp parameter lists, many m-lines, unicode,
 * other line ends, nested JSON, giant base64.
 *
 * A {@link Hostile} is one such input shape. Its random choices are made once, when it is drawn,
 * so `build(budget)` gives the same shape at any size: `build(16 * n)` is `build(n)` with 16
 * times the hostile characters, which is how a test tells linear from super-linear cost. Every
 * draw comes from a seeded generator ({@link prng}), so a seed replays a run.
 *
 * @module
 */
import { encodeBase64Utf8 } from "../../src/signaling/messages.ts";

/** xorshift32: a deterministic stream of numbers in [0, 1) for a seed. */
export function prng(seed: number): () => number {
  let x = (seed >>> 0) || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

/** Helpers over a {@link prng} stream. */
export class Rng {
  readonly next: () => number;
  /** Draw from `seed`. */
  constructor(seed: number) {
    this.next = prng(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** One of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** A seed for a sub-generator. */
  seed(): number {
    return this.int(0x7fff_ffff) + 1;
  }
}

/** One hostile input shape: `build(budget)` adds about `budget` hostile characters. */
export interface Hostile {
  /** What the shape is, e.g. `chromium: run of " " sandwiching x after a=ice-ufrag:`. */
  what: string;
  build(budget: number): string;
}

/** A lone surrogate (no escape: some tools read `\\ud800` followed by more text badly). */
const LONE = String.fromCharCode(0xd800);

/** What long runs are made of. */
export const RUN_UNITS: readonly string[] = [
  " ",
  "\t",
  ":",
  ";",
  "=",
  " \t",
  " :",
  "; ",
  "=;",
  ";=",
  "==",
  "/",
  "+",
  ".",
  "-",
  "0",
  "9",
  "a",
  "A1",
  "\u00a0", // no-break space: whitespace to `trim()` and `\s`, not to split(" ")
  "\u3000",
  "\u2028",
  "\ufeff",
  "é",
  "\u{1F600}",
  LONE,
  "\r",
  "\v",
  "\\",
  '"',
  "\u0000",
];

/** `unit` repeated to at least `chars` characters (at least once). */
export function run(unit: string, chars: number): string {
  return unit.repeat(Math.max(1, Math.ceil(chars / unit.length)));
}

/** Printable form of a run unit, for descriptions. */
function show(unit: string): string {
  return JSON.stringify(unit);
}

/** Random code points (lone surrogates, controls and astral characters included). */
function unicode(seed: number, chars: number): string {
  const r = new Rng(seed);
  let s = "";
  while (s.length < chars) {
    const kind = r.int(5);
    s += kind === 0
      ? String.fromCharCode(r.int(0x20))
      : kind === 1
      ? String.fromCharCode(0xd800 + r.int(0x800))
      : kind === 2
      ? String.fromCodePoint(0x10000 + r.int(0x10000))
      : String.fromCharCode(0x80 + r.int(0xff00));
  }
  return s;
}

// ------------------------------------------------------------------------------------ offers

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));

/** Offers as browsers write them (see `tests/sdp_test.ts`). */
export const CHROMIUM_OFFER: string = fixture("chromium_offer.sdp");
/** Firefox's offer: no H.264 (refused). */
export const FIREFOX_OFFER: string = fixture("firefox_offer.sdp");
/** Firefox's offer with the OpenH264 format: session-level ICE credentials, accepted. */
export const FIREFOX_H264_OFFER: string = FIREFOX_OFFER
  .replace(/^(m=video 9 UDP\/TLS\/RTP\/SAVPF .*?)(\r?)$/m, "$1 126$2")
  .replace(
    /^(a=rtpmap:120 VP8\/90000)(\r?)$/m,
    "a=rtpmap:126 H264/90000$2\na=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;" +
      "packetization-mode=1$2\n$1$2",
  );
/** Chromium's offer without its candidate lines (it fits a 10 KB signaling message). */
export const CHROMIUM_OFFER_NO_CANDIDATES: string = CHROMIUM_OFFER.split("\r\n")
  .filter((l) => !l.startsWith("a=candidate:")).join("\r\n");

/**
 * Chromium's offer cut to what a master reads: its video section with the constrained-baseline
 * H.264 format only, no candidates (under 500 bytes: the rest of a 10 KB signaling message is
 * left for what a test adds).
 */
export const MINIMAL_OFFER: string = (() => {
  const lines = CHROMIUM_OFFER.split("\r\n");
  const video = lines.slice(0, lines.findIndex((l) => l.startsWith("m=audio")));
  return video
    .filter((l) =>
      /^(v|o|s|t|c|m)=|^a=(ice-ufrag|ice-pwd|fingerprint|setup|mid|recvonly|rtcp-mux)\b/.test(l) ||
      /^a=(rtpmap|fmtp):108 /.test(l)
    )
    .map((l) => l.startsWith("m=video") ? "m=video 9 UDP/TLS/RTP/SAVPF 108" : l)
    .join("\r\n") + "\r\n";
})();

const OFFER_BASES: readonly [string, string][] = [
  ["chromium", CHROMIUM_OFFER],
  ["chromium without candidates", CHROMIUM_OFFER_NO_CANDIDATES],
  ["firefox with H.264", FIREFOX_H264_OFFER],
  ["firefox", FIREFOX_OFFER],
];

/** Lines a run or a repetition goes into (the first line starting so; `""`: the middle one). */
const OFFER_TARGETS: readonly string[] = [
  "a=ice-ufrag:",
  "a=ice-pwd:",
  "a=fingerprint:",
  "a=mid:",
  "a=fmtp:",
  "a=rtpmap:",
  "a=candidate:",
  "a=group:",
  "m=video",
  "m=audio",
  "a=setup:",
  "a=ssrc:",
  "a=extmap:",
  "a=rtcp-fb:",
  "v=0",
  "o=",
  "",
];

type Lines = string[];

/** The first line starting with `prefix`, or the middle one. */
function lineIndex(lines: Lines, prefix: string): number {
  const i = prefix ? lines.findIndex((l) => l.startsWith(prefix)) : -1;
  return i >= 0 ? i : lines.length >> 1;
}

/** The payload type of the first H.264 rtpmap, or 96. */
function h264Pt(lines: Lines): string {
  for (const l of lines) {
    const m = /^a=rtpmap:(\d+) H264\/90000/i.exec(l);
    if (m) return m[1];
  }
  return "96";
}

/** An offer mutation: what it is, and how it applies with its share of the budget. */
interface Mutation {
  what: string;
  apply(lines: Lines, chars: number): Lines;
}

function offerMutation(r: Rng): Mutation {
  const target = r.pick(OFFER_TARGETS);
  const unit = r.pick(RUN_UNITS);
  const at = (lines: Lines) => lineIndex(lines, target);
  switch (r.int(10)) {
    case 0:
    case 1: {
      // A run inside a line: after its prefix, at its end, in its middle, or around an x.
      const where = r.pick(["after the prefix", "at the end", "in the middle", "sandwiching x"]);
      return {
        what: `run of ${show(unit)} ${where} of ${target || "a line"}`,
        apply(lines, chars) {
          const i = at(lines);
          const l = lines[i];
          const colon = l.indexOf(":") >= 0 ? l.indexOf(":") + 1 : Math.min(2, l.length);
          const out = [...lines];
          out[i] = where === "after the prefix"
            ? l.slice(0, colon) + run(unit, chars) + l.slice(colon)
            : where === "at the end"
            ? l + run(unit, chars)
            : where === "in the middle"
            ? l.slice(0, l.length >> 1) + run(unit, chars) + l.slice(l.length >> 1)
            : l.slice(0, colon) + run(unit, chars / 2) + "x" + run(unit, chars / 2);
          return out;
        },
      };
    }
    case 2: {
      const place = r.pick(["after itself", "in the session section", "at the end"]);
      return {
        what: `${target || "a line"} repeated ${place}`,
        apply(lines, chars) {
          const i = at(lines);
          const copies = Array<string>(Math.max(1, Math.ceil(chars / (lines[i].length + 2))))
            .fill(lines[i]);
          const j = place === "after itself"
            ? i + 1
            : place === "in the session section"
            ? Math.max(1, lines.findIndex((l) => l.startsWith("m=")))
            : lines.length;
          return [...lines.slice(0, j), ...copies, ...lines.slice(j)];
        },
      };
    }
    case 3: {
      const param = r.pick([
        "a=b;",
        ";",
        "=",
        ";=",
        " ; = ",
        "packetization-mode=1;",
        "profile-level-id=42e01f;",
        "x=" + "y".repeat(1 + r.int(40)) + ";",
        unit,
      ]);
      return {
        what: `H.264 fmtp with a parameter list of ${show(param)}`,
        apply(lines, chars) {
          const pt = h264Pt(lines);
          const out = [...lines];
          const i = out.findIndex((l) => l.startsWith(`a=fmtp:${pt} `));
          const list = run(param, chars);
          if (i >= 0) out[i] = `${out[i]};${list}`;
          else out.splice(lineIndex(out, "a=rtpmap:"), 0, `a=fmtp:${pt} ${list}`);
          return out;
        },
      };
    }
    case 4: {
      const section = r.pick([
        ["m=audio 9 UDP/TLS/RTP/SAVPF 0"],
        ["m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:v"],
        ["m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=mid:d"],
        ["m=video 9 x 96", "a=rtpmap:96 H264/90000", "a=fmtp:96 packetization-mode=1"],
        ["m="],
        ["m=video"],
      ]);
      const first = r.chance(0.5);
      return {
        what: `many m-sections ${JSON.stringify(section[0])} ${first ? "first" : "last"}`,
        apply(lines, chars) {
          const n = Math.max(1, Math.ceil(chars / (section.join("\r\n").length + 2)));
          const more = Array.from({ length: n }, () => section).flat();
          const j = first ? Math.max(1, lines.findIndex((l) => l.startsWith("m="))) : lines.length;
          return [...lines.slice(0, j), ...more, ...lines.slice(j)];
        },
      };
    }
    case 5:
      return {
        what: "many H.264 rtpmaps and fmtps",
        apply(lines, chars) {
          const more: string[] = [];
          for (let n = 0, pt = 96; n < chars; pt = pt === 127 ? 96 : pt + 1) {
            more.push(`a=rtpmap:${pt} H264/90000`, `a=fmtp:${pt} packetization-mode=1;x=${pt}`);
            n += 58;
          }
          const j = lineIndex(lines, "a=rtpmap:");
          return [...lines.slice(0, j), ...more, ...lines.slice(j)];
        },
      };
    case 6: {
      const format = r.pick([" 96", " 126", " x", " ", "  96"]);
      return {
        what: `m=video line with formats ${show(format)} repeated`,
        apply(lines, chars) {
          const out = [...lines];
          const i = lineIndex(out, "m=video");
          out[i] += run(format, chars);
          return out;
        },
      };
    }
    case 7:
      return {
        what: "many candidate lines",
        apply(lines, chars) {
          const more: string[] = [];
          for (let n = 0, k = 0; n < chars; k++) {
            const l = `a=candidate:${k} 1 udp 2122194687 127.0.0.1 ${10000 + (k % 50000)} typ host`;
            more.push(l);
            n += l.length + 2;
          }
          const j = lineIndex(lines, "a=ice-ufrag:");
          return [...lines.slice(0, j), ...more, ...lines.slice(j)];
        },
      };
    case 8: {
      const seed = r.seed();
      return {
        what: `unicode in ${target || "a line"}`,
        apply(lines, chars) {
          const out = [...lines];
          const i = at(out);
          out[i] += unicode(seed, chars);
          return out;
        },
      };
    }
    default: {
      const line = r.pick(["", "a=", "=", "a=:", "m", "a=ice-ufrag:", "a=mid:"]);
      return {
        what: `many ${JSON.stringify(line)} lines`,
        apply(lines, chars) {
          const n = Math.max(1, Math.ceil(chars / (line.length + 2)));
          const j = lineIndex(lines, target);
          return [...lines.slice(0, j), ...Array<string>(n).fill(line), ...lines.slice(j)];
        },
      };
    }
  }
}

const LINE_ENDS: readonly [string, string][] = [
  ["CRLF", "\r\n"],
  ["CRLF", "\r\n"],
  ["CRLF", "\r\n"],
  ["LF", "\n"],
  ["CR", "\r"],
  ["CRCRLF", "\r\r\n"],
  ["mixed", ""],
];

/**
 * A hostile offer: a browser offer with one to three mutations sharing the budget, written with
 * CRLF, LF, CR-only or mixed line ends.
 *
 * @example
 * ```ts
 * import { hostileOffer, Rng } from "./hostile.ts";
 * const h = hostileOffer(new Rng(1));
 * console.log(h.what, h.build(1000).length, h.build(16_000).length);
 * ```
 */
export function hostileOffer(r: Rng): Hostile {
  const [name, base] = r.pick(OFFER_BASES);
  const mutations = Array.from(
    { length: 1 + r.int(r.chance(0.7) ? 1 : 3) },
    () => offerMutation(r),
  );
  const [endName, end] = r.pick(LINE_ENDS);
  const lines = base.split(/\r?\n/);
  return {
    what: `${name}, ${endName}: ${mutations.map((m) => m.what).join("; ")}`,
    build(budget) {
      let out = lines;
      for (const m of mutations) out = m.apply(out, budget / mutations.length);
      return end ? out.join(end) : out.map((l, i) => l + (i % 2 ? "\n" : "\r\n")).join("");
    },
  };
}

/** Offers of the shapes that cost parsers most, each with about `budget` hostile characters. */
export function worstOffers(base = CHROMIUM_OFFER): Hostile[] {
  const lines = base.split("\r\n");
  const pt = h264Pt(lines);
  const edit = (what: string, f: (lines: Lines, chars: number) => Lines): Hostile => ({
    what,
    build: (chars) => f([...lines], chars).join("\r\n"),
  });
  /** The first line starting with `prefix` gets the value. */
  const inLine = (prefix: string, value: (chars: number) => string) => (l: Lines, n: number) => {
    const i = l.findIndex((x) => x.startsWith(prefix));
    l[i] = prefix + value(n);
    return l;
  };
  return [
    // What a lazy `(.+?)\s*$` spends quadratic time on.
    edit(
      "spaces around x in a=ice-ufrag",
      inLine("a=ice-ufrag:", (n) => run(" ", n / 2) + "x" + run(" ", n / 2)),
    ),
    edit(
      "tabs around x in a=ice-pwd",
      inLine("a=ice-pwd:", (n) => run("\t", n / 2) + "x" + run("\t", n / 2)),
    ),
    edit(
      "colons in a=fingerprint",
      inLine("a=fingerprint:", (n) => "sha-256 " + run(":", n) + "x"),
    ),
    edit("spaces then x in a=mid", inLine("a=mid:", (n) => run(" ", n) + "x ")),
    edit("thousands of a=ice-ufrag lines", (l, n) => {
      const i = l.findIndex((x) => x.startsWith("a=ice-ufrag:"));
      l.splice(i, 0, ...Array<string>(Math.ceil(n / 17)).fill("a=ice-ufrag:x y"));
      return l;
    }),
    edit(
      "thousands of empty attributes",
      (l, n) => [...l, ...Array<string>(Math.ceil(n / 4)).fill("a=")],
    ),
    edit(
      "a huge H.264 fmtp parameter list",
      (l, n) => l.map((x) => x.startsWith(`a=fmtp:${pt} `) ? x + run(";a=b", n) : x),
    ),
    edit(
      "an fmtp list of semicolons and equals signs",
      (l, n) => l.map((x) => x.startsWith(`a=fmtp:${pt} `) ? x + run(";=", n) : x),
    ),
    // Each rtpmap of a payload type reading that type's whole fmtp again is quadratic.
    edit("an H.264 rtpmap repeated, its fmtp a huge parameter list", (l, n) => {
      const i = l.findIndex((x) => x.startsWith(`a=fmtp:${pt} `));
      const rtpmap = `a=rtpmap:${pt} H264/90000`;
      l[i] += run(";=", n / 2);
      l.splice(i, 0, ...Array<string>(Math.ceil(n / 2 / (rtpmap.length + 2))).fill(rtpmap));
      return l;
    }),
    edit(
      "many m-lines",
      (l, n) => [...l, ...Array<string>(Math.ceil(n / 31)).fill("m=audio 9 UDP/TLS/RTP/SAVPF 0")],
    ),
    edit("many H.264 rtpmaps and fmtps", (l, n) => {
      const i = l.findIndex((x) => x.startsWith("a=rtpmap:"));
      const more = Array.from({ length: Math.ceil(n / 58) }, (_, k) => {
        const pt = 96 + (k % 32);
        return [`a=rtpmap:${pt} H264/90000`, `a=fmtp:${pt} packetization-mode=1;x=${k}`];
      }).flat();
      l.splice(i, 0, ...more);
      return l;
    }),
    edit("spaces at the end of every attribute", (l, n) => {
      const per = Math.ceil(n / l.length);
      return l.map((x) => x + run(" ", per));
    }),
    edit(
      "unicode whitespace around the ICE password",
      inLine(
        "a=ice-pwd:",
        (n) => run("\u00a0\u3000", n / 2) + "o9RzT/KjHOoxz7GO2ebYjltx" + run("\u2028", n / 2),
      ),
    ),
    {
      what: "CR-only line ends and spaces",
      build: (n) =>
        lines.map((x) => x.startsWith("a=ice-ufrag:") ? x + run(" ", n) + "x" : x).join("\r"),
    },
  ];
}

// -------------------------------------------------------------------------------- candidates

/** Candidate lines as viewers trickle them (addresses on loopback, so checks stay local). */
export const CANDIDATE_BASES: readonly string[] = [
  "candidate:2875350914 1 udp 2122194687 127.0.0.1 43353 typ host generation 0 network-id 3 network-cost 50",
  "a=candidate:90161166 1 udp 2122063615 127.0.0.1 55025 typ host generation 0 network-id 1",
  "candidate:842163049 1 udp 1677729535 127.0.0.1 54321 typ srflx raddr 127.0.0.1 rport 43353 generation 0 ufrag D4BD network-id 1",
  "candidate:3584933146 1 tcp 1518214911 127.0.0.1 9 typ host tcptype active generation 0",
  "candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay raddr 127.0.0.1 rport 50001",
  "candidate:2256243545 1 udp 2122267903 ::1 60320 typ host generation 0",
  "candidate:0 1 UDP 2122187007 6de74e5e-da60-4507-92cc-5c307ef9c815.local 53730 typ host",
  "candidate:0 2 UDP 2122187006 127.0.0.1 33318 typ host",
  "candidate:",
];

/**
 * A hostile candidate line: a trickled candidate with a long run between or inside its fields,
 * many extension fields, a huge host name or unicode.
 *
 * @example
 * ```ts
 * import { hostileCandidate, Rng } from "./hostile.ts";
 * console.log(hostileCandidate(new Rng(1)).build(500));
 * ```
 */
export function hostileCandidate(r: Rng): Hostile {
  const base = r.pick(CANDIDATE_BASES);
  const fields = base.split(" ");
  const field = r.int(fields.length + 1);
  const unit = r.pick([...RUN_UNITS, "  ", " 0", "1", ". "]);
  const shape = r.int(6);
  const seed = r.seed();
  const what = (s: string) => `${JSON.stringify(base.slice(0, 40))}…: ${s}`;
  switch (shape) {
    case 0:
      return {
        what: what(`run of ${show(unit)} before field ${field}`),
        build: (n) => [...fields.slice(0, field), run(unit, n), ...fields.slice(field)].join(" "),
      };
    case 1:
      return {
        what: what(`run of ${show(unit)} inside field ${field}`),
        build: (n) =>
          fields.map((f, i) => i === field ? f + run(unit, n) : f).join(" ") +
          (field === fields.length ? run(unit, n) : ""),
      };
    case 2: {
      const ext = r.pick([
        " generation 0",
        " network-id 1",
        " x y",
        " raddr 0.0.0.0",
        " typ host",
        " ufrag D4BD",
      ]);
      return { what: what(`${JSON.stringify(ext)} repeated`), build: (n) => base + run(ext, n) };
    }
    case 3: {
      const host = r.pick(["a", "-", "0.", "x.local.", ":", "1:"]);
      return {
        what: what(`a host name of ${show(host)} repeated`),
        build: (n) => fields.map((f, i) => i === 4 ? run(host, n) + ".local" : f).join(" "),
      };
    }
    case 4:
      return {
        what: what(`run of ${show(unit)} sandwiching x at the end`),
        build: (n) => base + run(unit, n / 2) + "x" + run(unit, n / 2),
      };
    default:
      return {
        what: what(`unicode in field ${field}`),
        build: (n) => fields.map((f, i) => i === field ? f + unicode(seed, n) : f).join(" "),
      };
  }
}

/** Candidate lines of the shapes that cost parsers most. */
export function worstCandidates(): Hostile[] {
  const base = CANDIDATE_BASES[0];
  return [
    { what: "spaces between the fields", build: (n) => base.split(" ").join(run(" ", n / 12)) },
    {
      what: "tabs around x at the end",
      build: (n) => base + run("\t", n / 2) + "x" + run("\t", n / 2),
    },
    { what: "thousands of extension fields", build: (n) => base + run(" generation 0", n) },
    {
      what: "a huge .local host name",
      build: (n) => base.replace("127.0.0.1", run("a", n) + ".local"),
    },
    { what: "colons in the address", build: (n) => base.replace("127.0.0.1", run(":", n)) },
  ];
}

// --------------------------------------------------------------------------------- messages

/** A small valid offer, so messages carrying it leave room for the hostile part. */
const SMALL_OFFER = [
  "v=0",
  "o=- 1 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "m=video 9 UDP/TLS/RTP/SAVPF 102",
  "a=ice-ufrag:abcd",
  "a=ice-pwd:0123456789abcdef012345",
  "a=fingerprint:sha-256 " + Array(32).fill("AB").join(":"),
  "a=mid:0",
  "a=rtpmap:102 H264/90000",
  "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
  "",
].join("\r\n");

type Json = Record<string, unknown>;

const MESSAGE_BASES: readonly [string, () => { root: Json; payload?: Json }][] = [
  ["SDP_OFFER", () => ({
    root: { senderClientId: "viewer-1", messageType: "SDP_OFFER" },
    payload: { type: "offer", sdp: SMALL_OFFER },
  })],
  ["ICE_CANDIDATE", () => ({
    root: { senderClientId: "viewer-1", messageType: "ICE_CANDIDATE" },
    payload: { candidate: CANDIDATE_BASES[0], sdpMid: "0", sdpMLineIndex: 0 },
  })],
  ["SDP_ANSWER", () => ({
    root: { senderClientId: "viewer-1", messageType: "SDP_ANSWER" },
    payload: { type: "answer", sdp: SMALL_OFFER },
  })],
  ["STATUS_RESPONSE", () => ({
    root: {
      messageType: "STATUS_RESPONSE",
      statusResponse: {
        correlationId: "c-1",
        errorType: "InvalidArgumentException",
        statusCode: "400",
        description: "bad",
      },
    },
  })],
  ["GO_AWAY", () => ({ root: { messageType: "GO_AWAY" } })],
];

function nested(kind: string, depth: number): unknown {
  let v: unknown = kind === "array" ? 0 : "x";
  for (let i = 0; i < depth; i++) v = kind === "array" ? [v] : { a: v };
  return v;
}

/** The choices that make a hostile message. */
interface MessageShape {
  /** Index into the base messages (offer, candidate, answer, status, GO_AWAY). */
  base: number;
  /** Which mutation (see `whats` in {@link messageOf}). */
  shape: number;
  unit: string;
  /** A run of `unit` on both sides of an `x` rather than one run. */
  sandwich: boolean;
  key: string;
  inner: string;
  depthKind: "array" | "object";
  ws: string;
  breakEvery: number;
  tail: string;
}

function messageOf(m: MessageShape): Hostile {
  const [name, make] = MESSAGE_BASES[m.base];
  const { unit, key, inner, depthKind, ws, breakEvery, tail } = m;
  const runOf = (n: number) =>
    m.sandwich ? run(unit, n / 2) + "x" + run(unit, n / 2) : run(unit, n);
  const serialize = (root: Json, payload: Json | undefined) =>
    JSON.stringify(
      payload ? { ...root, messagePayload: encodeBase64Utf8(JSON.stringify(payload)) } : root,
    );
  // Inside the payload, base64 inflates by 4/3: use 3/4 of the budget there.
  const withPayload = (f: (p: Json, n: number) => void) => (n: number) => {
    const { root, payload } = make();
    const p = payload ?? {};
    f(p, n * 3 / 4);
    return serialize(root, p);
  };
  const depth = (n: number) => Math.ceil(n / (depthKind === "array" ? 2 : 6));
  const runs = `${m.sandwich ? "runs" : "a run"} of ${show(unit)}${m.sandwich ? " around x" : ""}`;
  const whats = [
    `whitespace ${show(ws)} after every token`,
    `${runs} in ${key}`,
    `${depthKind}s nested in the envelope`,
    `${depthKind}s nested in the payload's ${inner}`,
    `${runs} in the payload's ${inner}`,
    `a line break every ${breakEvery} base64 characters`,
    `long base64 ending in ${show(tail)}`,
    "many keys",
    `unicode escapes in the payload's ${inner}`,
  ];
  const builders: ((n: number) => string)[] = [
    (n) => {
      const { root, payload } = make();
      const text = serialize(root, payload);
      const spots = text.match(/[{}[\],:]/g)?.length ?? 1;
      const pad = run(ws, n / spots);
      return text.replace(/([{}[\],:])/g, `$1${pad}`);
    },
    (n) => {
      const { root, payload } = make();
      if (key === "statusResponse.description") {
        root.statusResponse = { ...(root.statusResponse as Json), description: runOf(n) };
      } else root[key] = (typeof root[key] === "string" ? root[key] : "") + runOf(n);
      return serialize(root, payload);
    },
    (n) => {
      const { root, payload } = make();
      root.extra = nested(depthKind, depth(n));
      return serialize(root, payload);
    },
    withPayload((p, n) => p[inner] = nested(depthKind, depth(n))),
    withPayload((p, n) => p[inner] = (typeof p[inner] === "string" ? p[inner] : "") + runOf(n)),
    (n) => {
      const { root, payload } = make();
      // Each break is \r\n in JSON: 4 characters.
      const pad = run("x", n / (1 + 4 / breakEvery) * 3 / 4);
      const base64 = encodeBase64Utf8(JSON.stringify({ ...(payload ?? { type: "offer" }), pad }));
      const chunks = base64.match(new RegExp(`.{1,${breakEvery}}`, "g")) ?? [];
      return JSON.stringify({ ...root, messagePayload: chunks.join("\r\n") });
    },
    (n) => {
      const { root, payload } = make();
      const p = { ...(payload ?? {}), pad: run("x", n * 3 / 4) };
      return JSON.stringify({
        ...root,
        messagePayload: encodeBase64Utf8(JSON.stringify(p)) + tail,
      });
    },
    (n) => {
      const { root, payload } = make();
      const many: Json = {};
      for (let i = 0; i * 10 < n; i++) many[`k${i}`] = i;
      return serialize({ ...many, ...root }, payload);
    },
    // Lone surrogates become \udXXX escapes in JSON (6 characters each), U+FFFD in base64.
    withPayload((p, n) => p[inner] = run(LONE + "\u{1F600}", n / 4)),
  ];
  return { what: `${name}: ${whats[m.shape]}`, build: builders[m.shape] };
}

/**
 * A hostile signaling message (the text of a WebSocket frame), from the master's point of
 * view: as the service delivers viewers' offers and candidates, or its own status messages.
 *
 * @example
 * ```ts
 * import { hostileMessage, Rng } from "./hostile.ts";
 * console.log(hostileMessage(new Rng(1)).build(800).length);
 * ```
 */
export function hostileMessage(r: Rng): Hostile {
  return messageOf({
    base: r.int(MESSAGE_BASES.length),
    shape: r.int(9),
    unit: r.pick(RUN_UNITS),
    sandwich: r.chance(0.3),
    key: r.pick(["senderClientId", "messageType", "extra", "statusResponse.description"]),
    inner: r.pick(["sdp", "candidate", "sdpMid", "type", "extra"]),
    depthKind: r.pick(["array", "object"] as const),
    ws: r.pick([" ", "\t", "\n", "\r\n", " \t\r\n"]),
    breakEvery: r.pick([1, 4, 76]),
    tail: r.pick(["!", "=", "===", "A=", "\u00e9", "-_"]),
  });
}

/** Messages of the shapes that cost decoders most. */
export function worstMessages(): Hostile[] {
  const m: MessageShape = {
    base: 0,
    shape: 0,
    unit: " ",
    sandwich: true,
    key: "senderClientId",
    inner: "sdp",
    depthKind: "array",
    ws: " ",
    breakEvery: 4,
    tail: "!",
  };
  return [
    messageOf(m),
    messageOf({ ...m, shape: 1 }),
    messageOf({ ...m, shape: 1, base: 3, key: "statusResponse.description", unit: "\t" }),
    messageOf({ ...m, shape: 2 }),
    messageOf({ ...m, shape: 3, base: 1, inner: "candidate", depthKind: "object" }),
    messageOf({ ...m, shape: 4 }),
    messageOf({ ...m, shape: 4, base: 1, inner: "candidate" }),
    messageOf({ ...m, shape: 5 }),
    messageOf({ ...m, shape: 6 }),
    messageOf({ ...m, shape: 7 }),
    messageOf({ ...m, shape: 8 }),
  ];
}
