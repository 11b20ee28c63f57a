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
  for (const rung of ["h264", "h264-360p"]) {
    assert.ok(published.has(`samples/${rung}/frame-0001.h264`), "the demo's ladder is published");
  }
  const unwanted = [...published].filter((f) =>
    /^(wasm|tests|bench|tools|\.ci)\/|_test\.ts$|\.wasm$/.test(f)
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

Deno.test("layers: the CLI uses the public API, the library neither imports the CLI nor reads the environment", async () => {
  const root = new URL("../", import.meta.url);
  const files = async (dir: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const e of Deno.readDir(new URL(dir, root))) {
      if (e.isDirectory) out.push(...await files(`${dir}${e.name}/`));
      else if (e.name.endsWith(".ts")) out.push(`${dir}${e.name}`);
    }
    return out;
  };
  /** The code of a module without its comments (JSDoc examples may show `Deno.env`). */
  const code = async (file: string) =>
    (await Deno.readTextFile(new URL(file, root))).split("\n")
      .filter((l) => !/^\s*(\*|\/\*\*|\/\/)/.test(l)).join("\n");
  const imports = (text: string) =>
    [...text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1]);

  const cliImports = [];
  for (const file of await files("cli/")) {
    for (const spec of imports(await code(file))) {
      if (spec.startsWith("node:") || /^\.\/[a-z_]+\.ts$/.test(spec)) continue;
      cliImports.push(spec);
    }
  }
  // The library through mod.ts; the emulator, the viewer page and the demo's dependency check
  // through their own entry points.
  assert.deepEqual(
    [...new Set(cliImports)].sort(),
    ["../mod.ts", "../src/emulator/mod.ts", "../tools/ensure_deps.ts", "../web/serve.ts"],
  );

  const library = (await files("src/")).filter((f) => !f.startsWith("src/emulator/"));
  const readsEnv: string[] = [];
  for (const file of library) {
    const text = await code(file);
    assert.deepEqual(imports(text).filter((s) => s.includes("cli/")), [], `${file} imports cli/`);
    if (/Deno\.env/.test(text)) readsEnv.push(file);
  }
  // The environment credential provider reads it: that is its purpose (and it takes an object).
  assert.deepEqual(readsEnv, ["src/credentials/env.ts"]);
});
