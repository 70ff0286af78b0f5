import { readFileSync } from "node:fs";
import type { Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { mountBrowsing, PullRecorder } from "./api/index.js";
import { createApp } from "./app.js";
import { assertSafeExposure } from "./auth/config.js";
import { type AuthRuntime, startAuth } from "./auth/index.js";
import type { RegistryConfig } from "./config.js";
import type { RegistryDeps } from "./http.js";
import { createLogger, type Logger } from "./logger.js";
import { SqliteMetadataStore } from "./metadata/sqlite.js";
import { describeStorage, openStorage } from "./storage.js";

export interface RunningRegistry {
  url: string;
  port: number;
  deps: RegistryDeps;
  /** Token authentication (users, keys) when configured. */
  auth?: AuthRuntime;
  /** Stops accepting, lets in-flight requests finish, then closes storage. */
  close(): Promise<void>;
}

/** Opens storage and metadata under the data directory and serves the registry. */
export async function startRegistry(config: RegistryConfig, logger: Logger = createLogger(config.logLevel)): Promise<RunningRegistry> {
  assertSafeExposure(config.host, config.auth, config.insecureAllowAnonymous ?? false);
  const storage = await openStorage(config.storage, config.dataDir);
  const metadata = new SqliteMetadataStore(join(config.dataDir, "registry.db"));
  const auth = config.auth
    ? await startAuth(config.auth, {
        dataDir: config.dataDir,
        databasePath: join(config.dataDir, "registry.db"),
        tls: Boolean(config.tlsCert && config.tlsKey),
        logger,
      }).catch(async (error) => {
        await metadata.close();
        storage.destroy?.();
        throw error;
      })
    : undefined;
  const deps: RegistryDeps = {
    storage,
    metadata,
    logger,
    options: { deletesEnabled: config.deletesEnabled, maxManifestBytes: config.maxManifestBytes, maxPageSize: 10_000 },
    ...(auth ? { auth: auth.authorizer } : {}),
    pulls: new PullRecorder(metadata, logger),
  };
  const app = createApp(deps);
  auth?.mount(app);
  const browsing = mountBrowsing(app, deps, {
    databasePath: join(config.dataDir, "registry.db"),
    tls: Boolean(config.tlsCert && config.tlsKey),
    ...(auth && config.auth ? { auth: { runtime: auth, config: config.auth } } : {}),
  });
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

  // server.close() only closes connections idle at that moment: a keep-alive connection whose request
  // was in flight would linger (and take new requests) after it. While draining, every response asks
  // the client to disconnect, and connections are closed as soon as their response is done.
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  const release = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader("Connection", "close");
    const closeIdle = () => setImmediate(() => server.closeIdleConnections());
    if (res.writableFinished) closeIdle();
    else res.once("finish", closeIdle);
  };
  server.prependListener("request", (_req, res: ServerResponse) => {
    if (draining) return release(res);
    inFlight.add(res);
    res.once("close", () => inFlight.delete(res));
  });

  const janitor = setInterval(() => void expireUploads(deps, config.uploadTtlMs), Math.min(config.uploadTtlMs, 3_600_000));
  janitor.unref();

  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `${tls ? "https" : "http"}://${host}:${port}`;
  logger.info(
    {
      url,
      data: config.dataDir,
      storage: describeStorage(config.storage, config.dataDir),
      deletes: config.deletesEnabled,
      auth: auth?.summary ?? "none",
    },
    "registry listening",
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    deps,
    ...(auth ? { auth } : {}),
    close() {
      closing ??= (async () => {
        clearInterval(janitor);
        draining = true;
        for (const res of inFlight) release(res);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await deps.pulls?.close();
        browsing.close();
        await metadata.close();
        auth?.close();
        storage.destroy?.();
      })();
      return closing;
    },
  };
}

/** Cancels upload sessions older than the TTL (distribution-spec: servers SHOULD time out unfinished uploads). */
export async function expireUploads(deps: RegistryDeps, ttlMs: number): Promise<number> {
  const stale = await deps.metadata.staleUploads(Date.now() - ttlMs);
  for (const session of stale) {
    try {
      // Also aborts the session's S3 multipart upload; a failure keeps it for the next round.
      await deps.storage.abort(session.id);
    } catch (error) {
      deps.logger.warn({ err: error, upload: session.id }, "could not expire upload session");
      continue;
    }
    await deps.metadata.deleteUpload(session.id);
  }
  if (stale.length > 0) deps.logger.info({ count: stale.length }, "expired abandoned upload sessions");
  return stale.length;
}
