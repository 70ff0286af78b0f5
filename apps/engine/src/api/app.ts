import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
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
import { inContainerTerms } from "./host-paths.js";
import { imageRoutes } from "./images.js";
import { networkRoutes } from "./networks.js";
import { systemRoutes } from "./system.js";
import { systemDfRoutes } from "./system-df.js";
import type { EngineEnv } from "./types.js";
import { checkVersion } from "./version.js";
import { volumeRoutes } from "./volumes.js";

const VERSION_PREFIX = /^\/v(\d+\.\d+)(?=\/)/;

/** The largest JSON request body: configs are kilobytes; megabytes of JSON are an attack on the daemon. */
export const MAX_JSON_BODY = 4 * 1024 * 1024;

/** How much of an oversized body is read and dropped before the 413 (a client sending more is cut off). */
const MAX_DISCARD = 64 * 1024 * 1024;

/** Reads and drops a request's body; false (and the request destroyed) past `max` bytes. */
function discard(incoming: NodeJS.ReadableStream & { destroy(): void }, max: number): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = 0;
    const done = (whole: boolean) => {
      incoming.removeAllListeners("data");
      resolve(whole);
    };
    incoming.on("data", (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > max) {
        incoming.destroy();
        done(false);
      }
    });
    incoming.once("end", () => done(true));
    incoming.once("error", () => done(false));
    incoming.resume();
  });
}

/** Requests whose bodies are streams that must be large (contexts, archives, image tars) or hijacked. */
const STREAMED = /^\/(build|images\/load|images\/create|containers\/[^/]+\/(archive|attach)|exec\/[^/]+\/start|session)$/;

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

  const tooLarge = `request body too large: more than ${MAX_JSON_BODY} bytes`;
  const limit = bodyLimit({
    maxSize: MAX_JSON_BODY,
    onError: (c) => c.json({ message: tooLarge }, 413),
  });
  app.use(async (c, next) => {
    if (STREAMED.test(c.req.path)) return next();
    const declared = Number(c.req.header("content-length") ?? 0);
    if (declared > MAX_JSON_BODY) {
      // Read (and drop) what the client is sending before answering, up to a bound, so that it gets
      // to read the 413 instead of a reset connection; past the bound the connection goes.
      const dropped = await discard(c.env.incoming, MAX_DISCARD);
      if (!dropped) c.header("Connection", "close");
      return c.json({ message: tooLarge }, 413);
    }
    return limit(c, next);
  });

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
    const message = inContainerTerms((error as Error).message, engine);
    if (error instanceof ApiError) return c.json({ message }, error.status);
    engine.logger.error({ err: error, method: c.req.method, path: c.req.path }, "request failed");
    return c.json({ message }, 500);
  });
  return app;
}
