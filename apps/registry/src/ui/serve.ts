import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import type { Context, Hono } from "hono";
import type { Env } from "../http.js";

/**
 * The web UI: one HTML page, one script and one stylesheet, read once at startup, compressed once,
 * served from memory. It needs no build step and talks only to the browsing API (/api/v1).
 */

// From src/ui/ (tests) and dist/ui/ (the built registry) alike, the files are in src/ui/static/.
const STATIC = new URL("../../src/ui/static/", import.meta.url);

interface Asset {
  body: Buffer;
  gzip: Buffer;
  type: string;
  etag: string;
}

function asset(body: Buffer, type: string): Asset {
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 16);
  return { body, gzip: gzipSync(body, { level: 9 }), type, etag: `"${hash}"` };
}

/** Scripts and styles only from the registry itself; no framing; no inline code. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function send(c: Context<Env>, file: Asset, cacheControl: string): Response {
  const headers: Record<string, string> = {
    "Content-Type": file.type,
    "Cache-Control": cacheControl,
    ETag: file.etag,
    Vary: "Accept-Encoding",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
  };
  if (file.type.startsWith("text/html")) {
    headers["Content-Security-Policy"] = CSP;
    headers["X-Frame-Options"] = "DENY";
  }
  if (c.req.header("if-none-match") === file.etag) return c.body(null, 304, headers);
  const gzip = /\bgzip\b/.test(c.req.header("accept-encoding") ?? "");
  if (gzip) headers["Content-Encoding"] = "gzip";
  if (c.req.method === "HEAD") return c.body(null, 200, headers);
  return c.body(new Uint8Array(gzip ? file.gzip : file.body), 200, headers);
}

export function mountUi(app: Hono<Env>): void {
  const read = (name: string) => readFileSync(new URL(name, STATIC));
  const script = asset(read("app.js"), "text/javascript; charset=utf-8");
  const style = asset(read("app.css"), "text/css; charset=utf-8");
  // The page names its assets by content hash, so they can be cached for good and still never be stale.
  const version = (file: Asset) => file.etag.slice(1, -1);
  const html = read("index.html")
    .toString("utf8")
    .replace("app.js", `app.js?v=${version(script)}`)
    .replace("app.css", `app.css?v=${version(style)}`);
  const page = asset(Buffer.from(html), "text/html; charset=utf-8");
  const immutable = "public, max-age=31536000, immutable";
  app.on(["GET", "HEAD"], "/", (c) => send(c, page, "no-cache"));
  app.on(["GET", "HEAD"], "/ui/app.js", (c) => send(c, script, c.req.query("v") === version(script) ? immutable : "no-cache"));
  app.on(["GET", "HEAD"], "/ui/app.css", (c) => send(c, style, c.req.query("v") === version(style) ? immutable : "no-cache"));
}
