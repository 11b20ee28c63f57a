/**
 * A small static server for the viewer page (`web/index.html`, `web/viewer.js`) and the two
 * third-party browser files it loads (see `web/vendor.ts`), on loopback by default.
 *
 * @module
 */
import { ensureVendorFiles } from "./vendor.ts";

/** Options of {@link serveViewer}. */
export interface ServeViewerOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Interface to listen on (default `127.0.0.1`). */
  hostname?: string;
}

/** A running viewer server. */
export interface ViewerServer {
  /** Base URL of the page, e.g. `http://127.0.0.1:43123/`. */
  url: string;
  /** The port in use. */
  port: number;
  /** Stop serving. */
  close(): Promise<void>;
}

/** Parameters of the viewer page (query string). Secrets travel only in the URL you build. */
export interface ViewerParams {
  /** Signaling channel name. */
  channel: string;
  /** AWS region. */
  region: string;
  /** Control-plane endpoint override (a local emulator); default the region's AWS endpoint. */
  endpoint?: string;
  /** Access key id. */
  accessKeyId: string;
  /** Secret access key. */
  secretAccessKey: string;
  /** Session token of temporary credentials. */
  sessionToken?: string;
  /** Viewer client id (default random). */
  clientId?: string;
  /** Relay candidates only (`iceTransportPolicy: "relay"`). */
  forceTurn?: boolean;
  /** Add the region's KVS STUN server (default: only without `endpoint`). */
  stun?: boolean;
  /** Connect as soon as the page loads. */
  autostart?: boolean;
}

/**
 * Build the page URL for `params` on a server started by {@link serveViewer}.
 *
 * @example
 * ```ts
 * import { viewerPageUrl } from "./serve.ts";
 * const url = viewerPageUrl("http://127.0.0.1:8080/", {
 *   channel: "demo-channel",
 *   region: "us-west-2",
 *   accessKeyId: "AKID",
 *   secretAccessKey: "secret",
 *   autostart: true,
 * });
 * ```
 */
export function viewerPageUrl(base: string, params: ViewerParams): string {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === "") continue;
    url.searchParams.set(k, typeof v === "boolean" ? (v ? "1" : "0") : String(v));
  }
  return url.href;
}

const PAGE_FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/viewer.js": { file: "viewer.js", type: "text/javascript; charset=utf-8" },
};

/**
 * Serve the viewer page. Fetches the SDK bundle and aws4fetch with `npm pack` on first use
 * (see `web/vendor.ts`), so the first call can take a few seconds.
 *
 * @example
 * ```ts
 * import { serveViewer, viewerPageUrl } from "./serve.ts";
 * const server = await serveViewer();
 * console.log(viewerPageUrl(server.url, {
 *   channel: "demo-channel",
 *   region: "us-west-2",
 *   endpoint: "https://127.0.0.1:4443",
 *   accessKeyId: "AKID",
 *   secretAccessKey: "secret",
 *   autostart: true,
 * }));
 * await server.close();
 * ```
 */
export async function serveViewer(options: ServeViewerOptions = {}): Promise<ViewerServer> {
  const vendor = await ensureVendorFiles();
  const files = new Map<string, { body: Uint8Array; type: string }>();
  for (const [path, { file, type }] of Object.entries(PAGE_FILES)) {
    const res = await fetch(new URL(`./${file}`, import.meta.url));
    files.set(path, { body: new Uint8Array(await res.arrayBuffer()), type });
  }
  for (const [path, file] of vendor) {
    files.set(path, { body: await Deno.readFile(file), type: "text/javascript; charset=utf-8" });
  }
  const hostname = options.hostname ?? "127.0.0.1";
  const server = Deno.serve({
    port: options.port ?? 0,
    hostname,
    onListen: () => {},
  }, (req) => {
    const path = new URL(req.url).pathname;
    const f = files.get(path);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed", { status: 405 });
    }
    if (!f) {
      return new Response(path === "/favicon.ico" ? null : "not found", {
        status: path === "/favicon.ico" ? 204 : 404,
      });
    }
    return new Response(req.method === "HEAD" ? null : f.body as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": f.type, "cache-control": "no-store" },
    });
  });
  const port = server.addr.port;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}/`,
    port,
    close: async () => {
      await server.shutdown();
    },
  };
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 0);
  const server = await serveViewer({ port });
  console.log(`Viewer page: ${server.url}`);
}
