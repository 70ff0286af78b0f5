import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { DockerfileError, parseDockerfile } from "@minato/dockerfile";
import type { Hono } from "hono";
import { build, planBuild } from "../builder/build.js";
import { BuildCache } from "../builder/cache.js";
import { applyIgnore, extractContext, readBuildFiles } from "../builder/context.js";
import type { Engine } from "../engine.js";
import { parseReferenceOrThrow } from "../images.js";
import { badRequest } from "./errors.js";
import { jsonMessageStream } from "./stream.js";
import type { EngineEnv } from "./types.js";

const truthy = (value: string | undefined) => value === "1" || value === "true" || value === "True";

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

/** `POST /build` (the classic builder's API) and `POST /build/prune`. */
export function buildRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  app.post("/build", async (c) => {
    const dockerfilePath = c.req.query("dockerfile") || "Dockerfile";
    if (/^[a-z]+:\/\//i.test(c.req.query("remote") ?? "")) throw badRequest("remote build contexts are not supported");
    const tags = c.req.queries("t") ?? [];
    for (const tag of tags) parseReferenceOrThrow(tag);
    const buildArgs = jsonObject("buildargs", c.req.query("buildargs"));
    const labels = jsonObject("labels", c.req.query("labels"));
    const quiet = truthy(c.req.query("q"));
    const root = join(engine.config.dataRoot, "builds");
    await mkdir(root, { recursive: true });
    const work = await mkdtemp(join(root, "build-"));
    try {
      const contextDir = join(work, "context");
      await extractContext(c.env.incoming, contextDir);
      const files = await readBuildFiles(contextDir, dockerfilePath);
      let dockerfile: ReturnType<typeof parseDockerfile>;
      try {
        dockerfile = parseDockerfile(files.text);
      } catch (error) {
        if (error instanceof DockerfileError) throw badRequest(error.message);
        throw error;
      }
      const target = c.req.query("target") || undefined;
      const plans = planBuild(dockerfile, buildArgs, target);
      await applyIgnore(contextDir, files.ignore);
      const options = {
        dockerfile,
        contextDir,
        workDir: join(work, "steps"),
        tags,
        buildArgs,
        labels,
        target,
        noCache: truthy(c.req.query("nocache")),
        pull: truthy(c.req.query("pull")),
        platform: c.req.query("platform") || undefined,
      };
      await mkdir(options.workDir);
      return await jsonMessageStream(c.env.outgoing, async (progress) => {
        await build(engine, options, plans, quiet ? (m) => (m.aux ? progress(m) : undefined) : progress);
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  app.post("/build/prune", (c) => {
    const { keys, size } = new BuildCache(engine.db).prune();
    return c.json({ CachesDeleted: keys, SpaceReclaimed: size });
  });
}
