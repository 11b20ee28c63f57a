// The published entry point carries the product only: importing `mod.ts` must not pull in
// another WebRTC stack, test helpers or benchmarks (werift and its ~20 packages once came with it).
import assert from "node:assert/strict";

Deno.test("mod.ts depends on aws4fetch alone among packages, and on nothing under tests/ or bench/", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../mod.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const specifiers = graph.modules.map((m) => m.specifier);
  const packages = specifiers.filter((s) => s.startsWith("npm:"))
    .map((s) => s.replace(/^npm:\/?/, "").replace(/@[^@/]*$/, ""));
  assert.deepEqual([...new Set(packages)], ["aws4fetch"]);
  const root = new URL("../", import.meta.url).href;
  const local = specifiers.filter((s) => s.startsWith(root)).map((s) => s.slice(root.length));
  assert.ok(local.includes("src/peer/wasm_session.ts"), "the graph is the product's");
  assert.deepEqual(local.filter((s) => /^(tests|bench|tools)\//.test(s)), []);
  assert.deepEqual(local.filter((s) => /werift|srtp_video_sender/.test(s)), []);
});
