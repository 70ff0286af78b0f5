import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { DockerfileError, parseDockerfile } from "@minato/dockerfile";
import type { Hono } from "hono";
import { build, planBuild } from "../builder/build.js";
import { BuildCache } from "../builder/cache.js";
import { cacheMounts } from "../builder/cache-mounts.js";
import { BuildContext } from "../builder/context.js";
import type { Engine } from "../engine.js";
import { parseReferenceOrThrow } from "../images.js";
import type { JsonMessage } from "../progress.js";
import { queryBool } from "./booleans.js";
import { compressionQuery } from "./compression.js";
import { badRequest } from "./errors.js";
import { jsonMessageStream } from "./stream.js";
import type { EngineEnv } from "./types.js";

function jsonObject(name: string, value: string | undefined): Record<string, string> {
  if (!value) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw badRequest(`invalid ${name}: ${value}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw badRequest(`invalid ${name}: ${value}`);
  const out: Record<string, string> = {};
  // A null build-arg value means "from the client's environment", which the client already resolved.
  for (const [key, v] of Object.entries(parsed as Record<string, unknown>)) if (v !== null && v !== undefined) out[key] = String(v);
  return out;
}

/** The header of minatod's secrets extension: base64 of a JSON object `{ id: base64 value }`. */
export const SECRETS_HEADER = "X-Minato-Build-Secrets";

/**
 * `RUN --mount=type=secret` values. The classic /build API has no secrets parameter, so minatod takes
 * them from a request header (not the query: it is not logged and stays out of URLs); the daemon keeps
 * them in memory for the one build.
 */
function parseSecrets(header: string | undefined): Map<string, Buffer> {
  const secrets = new Map<string, Buffer>();
  if (!header) return secrets;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
  } catch {
    throw badRequest(`invalid ${SECRETS_HEADER} header: want base64 of a JSON object of base64 values`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw badRequest(`invalid ${SECRETS_HEADER} header: want base64 of a JSON object of base64 values`);
  }
  for (const [id, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof value !== "string" || id === "") throw badRequest(`invalid ${SECRETS_HEADER} header: secret ${JSON.stringify(id)}`);
    secrets.set(id, Buffer.from(value, "base64"));
  }
  return secrets;
}

/** `POST /build` (the classic builder's API) and `POST /build/prune`. */
export function buildRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  app.post("/build", async (c) => {
    const dockerfilePath = c.req.query("dockerfile") || "Dockerfile";
    if (/^[a-z]+:\/\//i.test(c.req.query("remote") ?? "")) throw badRequest("remote build contexts are not supported");
    const tags = c.req.queries("t") ?? [];
    for (const tag of tags) parseReferenceOrThrow(tag);
    const buildArgs = jsonObject("buildargs", c.req.query("buildargs"));
    const labels = jsonObject("labels", c.req.query("labels"));
    const quiet = queryBool(c.req.query("q"));
    const secrets = parseSecrets(c.req.header(SECRETS_HEADER));
    const compression = compressionQuery(c.req.query("compression"));
    const root = join(engine.config.dataRoot, "builds");
    await mkdir(root, { recursive: true });
    const work = await mkdtemp(join(root, "build-"));
    try {
      const context = await BuildContext.receive(c.env.incoming, work, dockerfilePath);
      const files = await context.readBuildFiles(dockerfilePath);
      let dockerfile: ReturnType<typeof parseDockerfile>;
      try {
        dockerfile = parseDockerfile(files.text);
      } catch (error) {
        if (error instanceof DockerfileError) throw badRequest(error.message);
        throw error;
      }
      const target = c.req.query("target") || undefined;
      const plans = planBuild(dockerfile, buildArgs, target);
      await context.applyIgnore(files.ignore);
      const options = {
        dockerfile,
        context,
        workDir: join(work, "steps"),
        tags,
        buildArgs,
        labels,
        target,
        noCache: queryBool(c.req.query("nocache")),
        pull: queryBool(c.req.query("pull")),
        platform: c.req.query("platform") || undefined,
        secrets,
        compression,
      };
      await mkdir(options.workDir);
      const out = c.env.outgoing;
      return await jsonMessageStream(out, async (write) => {
        // The messages a step prints at once go out in one write: a cached build prints ~3 per step.
        let corked = false;
        const progress = (message: JsonMessage) => {
          if (!corked) {
            corked = true;
            out.cork();
            setImmediate(() => {
              corked = false;
              // end() uncorks fully; the connection may serve another request by now.
              if (!out.writableEnded) out.uncork();
            });
          }
          write(message);
        };
        const id = await build(engine, options, plans, quiet ? (m) => (m.aux ? progress(m) : undefined) : progress);
        // With q=1 the output is the image ID alone, as dockerd sends it: `IMG=$(docker build -q .)`.
        if (quiet) progress({ stream: `${id}\n` });
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  app.post("/build/prune", async (c) => {
    const { keys, size } = new BuildCache(engine.db).prune();
    await cacheMounts(engine.config.dataRoot).prune();
    return c.json({ CachesDeleted: keys, SpaceReclaimed: size });
  });
}
