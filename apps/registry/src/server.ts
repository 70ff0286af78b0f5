import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { FilesystemBlobStore } from "@minato/storage";
import { createApp } from "./app.js";
import type { RegistryConfig } from "./config.js";
import type { RegistryDeps } from "./http.js";
import { createLogger, type Logger } from "./logger.js";
import { SqliteMetadataStore } from "./metadata/sqlite.js";

export interface RunningRegistry {
  url: string;
  port: number;
  deps: RegistryDeps;
  /** Stops accepting, lets in-flight requests finish, then closes storage. */
  close(): Promise<void>;
}

/** Opens storage and metadata under the data directory and serves the registry. */
export async function startRegistry(config: RegistryConfig, logger: Logger = createLogger(config.logLevel)): Promise<RunningRegistry> {
  const storage = await FilesystemBlobStore.open(config.dataDir);
  const metadata = new SqliteMetadataStore(join(config.dataDir, "registry.db"));
  const deps: RegistryDeps = {
    storage,
    metadata,
    logger,
    options: { deletesEnabled: config.deletesEnabled, maxManifestBytes: config.maxManifestBytes, maxPageSize: 10_000 },
  };
  const app = createApp(deps);
  app.get("/health", async (c) => {
    const ok =
      (await storage.healthy()) &&
      (await metadata.ping().then(
        () => true,
        () => false,
      ));
    return c.json({ status: ok ? "ok" : "unavailable" }, ok ? 200 : 503);
  });

  const tls = config.tlsCert && config.tlsKey ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) } : undefined;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        hostname: config.host,
        port: config.port,
        ...(tls ? { createServer: createHttpsServer, serverOptions: tls } : {}),
      },
      () => resolve(s as Server),
    ) as Server;
    s.once("error", reject);
  });
  // Large blobs take as long as they take; only stalled headers are cut off.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;

  const janitor = setInterval(() => void expireUploads(deps, config.uploadTtlMs), Math.min(config.uploadTtlMs, 3_600_000));
  janitor.unref();

  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `${tls ? "https" : "http"}://${host}:${port}`;
  logger.info({ url, data: config.dataDir, deletes: config.deletesEnabled }, "registry listening");

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    deps,
    close() {
      closing ??= (async () => {
        clearInterval(janitor);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await metadata.close();
      })();
      return closing;
    },
  };
}

/** Cancels upload sessions older than the TTL (distribution-spec: servers SHOULD time out unfinished uploads). */
export async function expireUploads(deps: RegistryDeps, ttlMs: number): Promise<number> {
  const stale = await deps.metadata.staleUploads(Date.now() - ttlMs);
  for (const session of stale) {
    await deps.storage.abort(session.id);
    await deps.metadata.deleteUpload(session.id);
  }
  if (stale.length > 0) deps.logger.info({ count: stale.length }, "expired abandoned upload sessions");
  return stale.length;
}
