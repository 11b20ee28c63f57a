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

Deno.test("the published package holds what its entry points import, and no sources it does not run", async () => {
  const root = new URL("../", import.meta.url);
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: root.pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
    return { stdout, all: stdout + new TextDecoder().decode(out.stderr) };
  };
  const dry = (await run(["publish", "--dry-run", "--allow-dirty"])).all;
  const published = new Set(
    [...dry.matchAll(/file:\/\/(\S+) \(/g)].map((m) => m[1].slice(root.pathname.length)),
  );
  assert.ok(published.has("mod.ts") && published.has("src/peer/media_core_wasm.ts"));
  assert.ok(published.has("samples/h264/frame-0001.h264"), "the demo's frames are published");
  const unwanted = [...published].filter((f) =>
    /^(wasm|tests|bench|tools|\.ci)\/|_test\.ts$|^samples\/h264-360p\/|\.wasm$/.test(f)
  );
  assert.deepEqual(unwanted, []);
  // Every local module the exports reach is published.
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  for (const entry of Object.values(config.exports) as string[]) {
    const graph = JSON.parse((await run(["info", "--json", entry])).stdout) as {
      modules: { specifier: string }[];
    };
    const local = graph.modules.map((m) => m.specifier).filter((s) => s.startsWith(root.href))
      .map((s) => s.slice(root.href.length));
    assert.deepEqual(local.filter((f) => !published.has(f)), [], `${entry} imports unpublished`);
  }
});
