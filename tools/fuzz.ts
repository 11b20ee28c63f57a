/**
 * `deno task fuzz [target…]`: run the media core's libFuzzer targets (all by default), each for
 * `FUZZ_SECONDS` (default 600) on its committed corpus. Needs `cargo install cargo-fuzz` and a
 * nightly toolchain. Exits non-zero on the first target that finds a crash.
 *
 * @module
 */
const ALL = [
  "h264_packetizer",
  "session_datagrams",
  "ice_candidate",
  "rtcp_packets",
  "sctp_packets",
];
const targets = Deno.args.length ? Deno.args : ALL;
const seconds = Number(Deno.env.get("FUZZ_SECONDS") ?? "600");
const dir = new URL("../wasm/fuzz/", import.meta.url).pathname;
for (const t of targets) {
  if (!ALL.includes(t)) {
    console.error(`unknown fuzz target ${t}; targets: ${ALL.join(", ")}`);
    Deno.exit(2);
  }
  console.log(`fuzzing ${t} for ${seconds} s`);
  const { code } = await new Deno.Command("cargo", {
    args: ["+nightly", "fuzz", "run", t, `corpus/${t}`, "--", `-max_total_time=${seconds}`],
    cwd: dir,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    console.error(
      `${t}: crash or failure (exit ${code}); the input is in wasm/fuzz/artifacts/${t}`,
    );
    Deno.exit(code);
  }
}
