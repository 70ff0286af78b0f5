import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import { join } from "node:path";
import { createAdaptorServer } from "@hono/node-server";
import { isLoopbackRegistry } from "@minato/registry-client";
import pino from "pino";
import { createApi } from "./api/app.js";
import type { EngineConfig } from "./config.js";
import { Engine } from "./engine.js";
import { serveMetrics } from "./metrics.js";

export interface RunningDaemon {
  engine: Engine;
  socket: string;
  close(): Promise<void>;
}

export class DaemonError extends Error {}

/** The engine needs root: namespaces, mounts, cgroups, and file ownership in unpacked layers. */
export function checkPrivileges(): void {
  if (process.getuid?.() !== 0)
    throw new DaemonError("minatod must run as root (it unpacks layers with their owners and will run containers)");
}

/** Opens the engine's state and serves the Docker Engine API on its unix socket (mode 0660). */
export async function startDaemon(
  config: EngineConfig,
  logger = pino({ level: config.logLevel }, pino.destination(2)),
): Promise<RunningDaemon> {
  checkPrivileges();
  await mkdir(config.dataRoot, { recursive: true, mode: 0o711 });
  await mkdir(config.execRoot, { recursive: true, mode: 0o700 });
  await mkdir(join(config.socket, ".."), { recursive: true });
  const engine = await Engine.open(config, logger);
  // Bound first: an address that cannot be served stops the daemon before it takes its socket.
  const { metricsAddr } = config;
  const metricsServer = metricsAddr
    ? await serveMetrics(engine.metrics, metricsAddr).catch((error: Error) => {
        engine.close();
        throw new DaemonError(`--metrics-addr ${formatAddr(metricsAddr)}: ${error.message}`);
      })
    : undefined;
  if (metricsAddr) {
    logger.info({ metricsAddr: formatAddr(metricsAddr) }, "serving metrics at /metrics");
    // Served without authentication, as dockerd's: anyone who reaches it reads them.
    if (!isLoopbackRegistry(metricsAddr.host))
      logger.warn({ metricsAddr: formatAddr(metricsAddr) }, "metrics are served unauthenticated on a non-loopback address");
  }
  const api = createApi(engine);
  const server = createAdaptorServer({ fetch: api.fetch }) as Server;
  server.requestTimeout = 0;
  // A stale socket of a daemon that died would refuse the bind.
  await rm(config.socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.socket, () => resolve());
  });
  await chmod(config.socket, 0o660);
  if (config.metricsAddr) logger.info({ metricsAddr: formatAddr(config.metricsAddr) }, "serving metrics at /metrics");
  await writeFile(join(config.execRoot, "minatod.pid"), `${process.pid}\n`);
  logger.info({ socket: config.socket, dataRoot: config.dataRoot }, "minatod listening");

  let closing: Promise<void> | undefined;
  return {
    engine,
    socket: config.socket,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await new Promise<void>((resolve) => {
          if (!metricsServer) return resolve();
          metricsServer.close(() => resolve());
          metricsServer.closeAllConnections();
        });
        await rm(config.socket, { force: true });
        await rm(join(config.execRoot, "minatod.pid"), { force: true });
        engine.close();
      })();
      return closing;
    },
  };
}

function formatAddr(address: { host: string; port: number }): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
