import { Hono } from "hono";
import type { Engine } from "../engine.js";
import { buildRoutes } from "./build.js";
import { containerFileRoutes } from "./container-files.js";
import { containerMetricRoutes } from "./container-metrics.js";
import { containerUpdateRoutes } from "./container-update.js";
import { containerRoutes } from "./containers.js";
import { distributionRoutes } from "./distribution.js";
import { ApiError } from "./errors.js";
import { eventRoutes } from "./events.js";
import { execRoutes } from "./exec.js";
import { imageRoutes } from "./images.js";
import { networkRoutes } from "./networks.js";
import { systemRoutes } from "./system.js";
import { systemDfRoutes } from "./system-df.js";
import type { EngineEnv } from "./types.js";
import { checkVersion } from "./version.js";
import { volumeRoutes } from "./volumes.js";

const VERSION_PREFIX = /^\/v(\d+\.\d+)(?=\/)/;

/** The Docker Engine API. Paths may carry a `/v1.xx` prefix, as every Docker client sends. */
export function createApi(engine: Engine): Hono<EngineEnv> {
  const app = new Hono<EngineEnv>({
    getPath: (request) => {
      const url = request.url;
      const start = url.indexOf("/", url.indexOf("://") + 3);
      const end = url.indexOf("?", start);
      return url.slice(start, end === -1 ? undefined : end).replace(VERSION_PREFIX, "");
    },
  });

  app.use(async (c, next) => {
    const version = VERSION_PREFIX.exec(new URL(c.req.url).pathname)?.[1];
    const problem = version ? checkVersion(version) : undefined;
    if (problem) return c.json({ message: problem }, 400);
    // Before next(): streamed responses are written directly and cannot take headers afterwards.
    c.header("Server", "Minato-Engine");
    await next();
  });
  app.use(engine.metrics.middleware());

  systemRoutes(app, engine);
  systemDfRoutes(app, engine);
  distributionRoutes(app, engine);
  eventRoutes(app, engine);
  imageRoutes(app, engine);
  containerRoutes(app, engine);
  containerFileRoutes(app, engine);
  containerMetricRoutes(app, engine);
  containerUpdateRoutes(app, engine);
  execRoutes(app, engine);
  buildRoutes(app, engine);
  networkRoutes(app, engine);
  volumeRoutes(app, engine);

  app.notFound((c) => c.json({ message: `page not found: ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));
  app.onError((error, c) => {
    if (error instanceof ApiError) return c.json({ message: error.message }, error.status);
    engine.logger.error({ err: error, method: c.req.method, path: c.req.path }, "request failed");
    return c.json({ message: (error as Error).message }, 500);
  });
  return app;
}
