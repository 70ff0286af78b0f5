import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { BlobStore } from "@minato/storage";
import type { Hono } from "hono";
import type { Authorizer } from "./auth/middleware.js";
import type { Env } from "./http.js";
import type { RegistryMetrics, RouteKind } from "./metrics.js";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** The route kind of a request target: bounded labels, never the path itself. */
export function routeKind(target: string, tokenPath: string): RouteKind {
  const query = target.indexOf("?");
  const path = query === -1 ? target : target.slice(0, query);
  if (path.startsWith("/v2/") || path === "/v2") {
    if (path === "/v2/" || path === "/v2") return "base";
    if (path === "/v2/_catalog") return "catalog";
    if (/\/blobs\/uploads(\/|$)/.test(path)) return "upload";
    if (path.includes("/blobs/")) return "blob";
    if (path.includes("/manifests/")) return "manifest";
    if (path.endsWith("/tags/list")) return "tags";
    if (path.includes("/referrers/")) return "referrers";
    return "other";
  }
  if (path === tokenPath) return "token";
  if (path.startsWith("/api/")) return "api";
  if (path === "/" || path.startsWith("/ui")) return "ui";
  if (path === "/health" || path === "/ready") return "health";
  if (path === "/metrics") return "metrics";
  return "other";
}

/**
 * Records one request when its response ends: one clock read at the start, one at the end. Bytes received
 * are the declared Content-Length of a request read completely (chunked upload bodies are added by the
 * upload route); bytes sent are the response body bytes handed to the connection.
 */
export function observeRequest(metrics: RegistryMetrics, tokenPath: string, req: IncomingMessage, res: ServerResponse): void {
  const started = performance.now();
  const kind = routeKind(req.url ?? "/", tokenPath);
  const method = METHODS.has(req.method ?? "") ? (req.method as string) : "other";
  const upload = kind === "upload" && method !== "GET" && method !== "DELETE";
  if (upload) metrics.uploadsInFlight.inc();
  const declared = Number(req.headers["content-length"] ?? 0);
  // Response body bytes as written (the framework passes its headers to writeHead, unreadable after).
  let sent = 0;
  const count = (chunk: unknown) => {
    if (typeof chunk === "string") sent += Buffer.byteLength(chunk);
    else if (chunk instanceof Uint8Array) sent += chunk.byteLength;
  };
  const { write, end } = res;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    count(chunk);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse["write"];
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== "function") count(chunk);
    return (end as (...args: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as ServerResponse["end"];
  res.once("close", () => {
    if (upload) metrics.uploadsInFlight.dec();
    metrics.requests.inc({ kind, method, code: res.headersSent ? res.statusCode : 0 });
    metrics.requestDuration.observe({ kind }, (performance.now() - started) / 1000);
    if (declared > 0 && req.complete) metrics.receivedBytes.inc({ kind }, declared);
    if (sent > 0 && method !== "HEAD") metrics.sentBytes.inc({ kind }, sent);
  });
}

const TIMED: readonly (keyof BlobStore)[] = [
  "stat",
  "read",
  "delete",
  "createUpload",
  "uploadSize",
  "append",
  "commit",
  "abort",
  "staleUploads",
  "healthy",
  "redirectUrl",
];

/** The same store, every asynchronous operation timed by driver and operation (the one place it is wrapped). */
export function instrumentStorage(store: BlobStore, driver: string, metrics: RegistryMetrics): BlobStore {
  const timed = new Map<PropertyKey, unknown>();
  for (const operation of TIMED) {
    const original = store[operation] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (typeof original !== "function") continue;
    timed.set(operation, async (...args: unknown[]) => {
      const end = metrics.storageDuration.startTimer({ driver, operation });
      try {
        const result = await original.apply(store, args);
        end({ outcome: "ok" });
        return result;
      } catch (error) {
        end({ outcome: "error" });
        throw error;
      }
    });
  }
  return new Proxy(store, {
    get(target, property, receiver) {
      if (timed.has(property)) return timed.get(property);
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const METRICS_SCOPE = { type: "registry", name: "metrics", actions: ["*"] };

/** `/metrics` on the registry's listener; under token auth it needs a token with `registry:metrics:*`. */
export function mountMetrics(app: Hono<Env>, metrics: RegistryMetrics, auth: Authorizer | undefined): void {
  app.get("/metrics", async (c) => {
    await auth?.require(c, METRICS_SCOPE);
    const { body, contentType } = await metrics.scrape();
    return c.body(body, 200, { "Content-Type": contentType });
  });
}

/** `--metrics-listen`: a listener that serves `/metrics` and nothing else, without auth. */
export async function serveMetricsOnly(
  metrics: RegistryMetrics,
  listen: { host: string; port: number },
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("only GET /metrics is served here\n");
      return;
    }
    metrics.scrape().then(
      ({ body, contentType }) => res.writeHead(200, { "Content-Type": contentType }).end(req.method === "HEAD" ? undefined : body),
      (error: Error) => res.writeHead(500, { "Content-Type": "text/plain" }).end(`${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
