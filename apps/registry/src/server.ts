import { readFileSync } from "node:fs";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import { type Http2Bindings, serve } from "@hono/node-server";
import { mountBrowsing, PullRecorder } from "./api/index.js";
import { createApp } from "./app.js";
import { AuditLog } from "./audit.js";
import { assertSafeExposure } from "./auth/config.js";
import { type AuthRuntime, startAuth } from "./auth/index.js";
import type { RegistryConfig } from "./config.js";
import { mountHealth } from "./health.js";
import { API_VERSION, API_VERSION_HEADER, type Env, type RegistryDeps } from "./http.js";
import { createHttpGuard } from "./http-limits.js";
import { BackgroundCollector } from "./lifecycle/collector.js";
import { EMPTY_POLICY } from "./lifecycle/policy.js";
import { expireUploads } from "./lifecycle/uploads.js";
import { DEFAULT_LIMITS, type RegistryLimits } from "./limits.js";
import { createLogger, type Logger } from "./logger.js";
import { SqliteMetadataStore } from "./metadata/sqlite.js";
import { RegistryMetrics } from "./metrics.js";
import { instrumentStorage, mountMetrics, observeRequest, serveMetricsOnly } from "./metrics-http.js";
import { Notifications } from "./notifications/index.js";
import { PullThroughCache } from "./proxy/cache.js";
import { describeStorage, openStorage } from "./storage.js";

export interface RunningRegistry {
  url: string;
  port: number;
  deps: RegistryDeps;
  /** The separate metrics listener (--metrics-listen), when there is one. */
  metricsUrl?: string;
  /** Token authentication (users, keys) when configured. */
  auth?: AuthRuntime;
  /** Stops accepting, lets in-flight requests finish, then closes storage. */
  close(): Promise<void>;
}

/** Opens storage and metadata under the data directory and serves the registry. */
export async function startRegistry(config: RegistryConfig, logger: Logger = createLogger(config.logLevel)): Promise<RunningRegistry> {
  assertSafeExposure(config.host, config.auth, config.insecureAllowAnonymous ?? false);
  const limits: RegistryLimits = { ...DEFAULT_LIMITS, ...config.limits };
  const metadata = new SqliteMetadataStore(join(config.dataDir, "registry.db"));
  const audit = new AuditLog(join(config.dataDir, "registry.db"));
  const metrics = new RegistryMetrics({
    repositoryLabels: config.metrics?.repositoryLabels ?? false,
    storageStats: (perRepository) => metadata.storageStats(perRepository),
  });
  const storage = instrumentStorage(await openStorage(config.storage, config.dataDir), config.storage?.driver ?? "filesystem", metrics);
  const auth = config.auth
    ? await startAuth(config.auth, {
        dataDir: config.dataDir,
        databasePath: join(config.dataDir, "registry.db"),
        tls: Boolean(config.tlsCert && config.tlsKey),
        logger,
        metrics,
        audit,
      }).catch(async (error) => {
        audit.close();
        await metadata.close();
        storage.destroy?.();
        throw error;
      })
    : undefined;
  const deps: RegistryDeps = {
    storage,
    metadata,
    logger,
    options: {
      deletesEnabled: config.deletesEnabled,
      maxManifestBytes: config.maxManifestBytes,
      maxPageSize: 10_000,
      uploadLimits: { perRepository: limits.uploadsPerRepository, perClient: limits.uploadsPerClient },
      trustProxy: config.auth?.trustProxy ?? false,
    },
    ...(auth ? { auth: auth.authorizer } : {}),
    ...(config.policy ? { policy: config.policy } : {}),
    pulls: new PullRecorder(metadata, logger),
    metrics,
    audit,
    ...(config.proxy?.length ? { proxy: new PullThroughCache(config.proxy) } : {}),
  };
  if (config.notifications && config.notifications.length > 0) {
    deps.notifications = new Notifications(
      join(config.dataDir, "registry.db"),
      config.notifications,
      {
        addr: `${config.host}:${config.port}`,
        trustProxy: deps.options.trustProxy,
        tls: Boolean(config.tlsCert && config.tlsKey),
        ...(config.auth?.publicUrl ? { publicUrl: config.auth.publicUrl } : {}),
      },
      metadata,
      logger,
      metrics,
    );
    deps.notifications.start();
  }
  const app = createApp(deps);
  auth?.mount(app);
  const browsing = mountBrowsing(app, deps, {
    databasePath: join(config.dataDir, "registry.db"),
    tls: Boolean(config.tlsCert && config.tlsKey),
    ...(auth && config.auth ? { auth: { runtime: auth, config: config.auth } } : {}),
  });
  // Until listening, and again once draining began, load balancers are told to look elsewhere.
  const state = { ready: false };
  mountHealth(app, deps, state);
  const metricsConfig = config.metrics ?? { enabled: true, repositoryLabels: false };
  const metricsOnMain = metricsConfig.enabled && !metricsConfig.listen;
  if (metricsOnMain) mountMetrics(app, metrics, deps.auth);

  const tls = config.tlsCert && config.tlsKey ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) } : undefined;
  const guard = createHttpGuard(limits, { trustProxy: deps.options.trustProxy, logger });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve(
      {
        // A connection over its address's cap gets 429 for its request, and is closed.
        fetch: (request: Request, env: Env["Bindings"] | Http2Bindings) =>
          guard.refused(env.incoming.socket as Socket) ? tooManyConnections(limits.connectionsPerClient) : app.fetch(request, env),
        hostname: config.host,
        port: config.port,
        serverOptions: { ...guard.serverOptions, ...tls },
        ...(tls ? { createServer: createHttpsServer } : {}),
      },
      () => resolve(s as Server),
    ) as Server;
    guard.attach(s);
    s.once("error", reject);
  });

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
  const tokenPath = config.auth?.tokenPath ?? "/token";
  server.prependListener("request", (req: IncomingMessage, res: ServerResponse) => {
    // --no-metrics: nothing is served, and requests are not timed either (the only per-request cost).
    if (metricsConfig.enabled) observeRequest(metrics, tokenPath, req, res);
    if (draining) return release(res);
    inFlight.add(res);
    res.once("close", () => inFlight.delete(res));
  });

  const expiry = { idleTtlMs: limits.uploadIdleTtlMs, ttlMs: config.uploadTtlMs };
  const janitorEvery = Math.min(Math.max(Math.min(expiry.idleTtlMs, expiry.ttlMs) / 2, 500), 60_000);
  const auditRetentionMs = config.auditRetentionMs ?? 90 * 86_400_000;
  const janitor = setInterval(() => {
    expireUploads(deps, expiry).catch((error: unknown) => logger.warn({ err: error }, "upload session expiry failed"));
    try {
      audit.prune(Date.now() - auditRetentionMs);
    } catch (error) {
      logger.warn({ err: error }, "audit trail pruning failed");
    }
  }, janitorEvery);
  janitor.unref();
  const collector = config.gc
    ? new BackgroundCollector(
        deps,
        {
          graceMs: config.gc.graceMs,
          deleteUntagged: config.gc.deleteUntagged,
          policy: config.policy ?? EMPTY_POLICY,
          uploadTtl: expiry,
        },
        config.gc.intervalMs,
      )
    : undefined;
  collector?.start();

  const metricsServer =
    metricsConfig.enabled && metricsConfig.listen
      ? await serveMetricsOnly(metrics, metricsConfig.listen).catch(async (error) => {
          server.close();
          throw error;
        })
      : undefined;
  state.ready = true;

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
      proxy: config.proxy?.map((u) => `${u.prefix}/ → ${u.url}`) ?? [],
      gc: config.gc ? { everyMs: config.gc.intervalMs, graceMs: config.gc.graceMs } : "off",
      metrics: metricsServer ? metricsServer.url : metricsOnMain ? `${url}/metrics` : "off",
    },
    "registry listening",
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    deps,
    ...(metricsServer ? { metricsUrl: metricsServer.url } : {}),
    ...(auth ? { auth } : {}),
    close() {
      closing ??= (async () => {
        // Load balancers polling /ready see 503 and stop sending before the listener goes away.
        state.ready = false;
        if (config.drainDelayMs) await new Promise((resolve) => setTimeout(resolve, config.drainDelayMs));
        clearInterval(janitor);
        guard.stop();
        draining = true;
        await metricsServer?.close();
        for (const res of inFlight) release(res);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await collector?.stop();
        await deps.pulls?.close();
        await deps.notifications?.close();
        browsing.close();
        audit.close();
        await metadata.close();
        auth?.close();
        storage.destroy?.();
      })();
      return closing;
    },
  };
}

function tooManyConnections(limit: number): Response {
  const body = JSON.stringify({
    errors: [
      { code: "TOOMANYREQUESTS", message: `too many open connections from this address (limit ${limit}); reuse connections or wait` },
    ],
  });
  return new Response(body, {
    status: 429,
    headers: { "Content-Type": "application/json", Connection: "close", "Retry-After": "5", [API_VERSION_HEADER]: API_VERSION },
  });
}
