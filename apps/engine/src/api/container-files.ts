// The container filesystem endpoints of the Docker Engine API: `POST /commit`,
// `GET /containers/{id}/changes`, `GET /containers/{id}/export` and
// `GET|HEAD|PUT /containers/{id}/archive` (swagger "ImageCommit", "ContainerChanges",
// "ContainerExport", "ContainerArchive", "ContainerArchiveInfo", "PutContainerArchive").
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Hono } from "hono";
import { archiveContainerPath, encodePathStat, extractIntoContainer, statContainerPath } from "../containers/archive.js";
import { containerChanges, containerLayers } from "../containers/changes.js";
import { commitContainer } from "../containers/commit.js";
import type { RunConfig } from "../containers/commit-config.js";
import { exportContainer } from "../containers/export.js";
import type { Engine } from "../engine.js";
import { publishImageEvent } from "../events/images.js";
import { findImage } from "../images.js";
import { queryBool } from "./booleans.js";
import { compressionQuery } from "./compression.js";
import { ApiError, badRequest } from "./errors.js";
import type { EngineEnv } from "./types.js";

const STAT_HEADER = "X-Docker-Container-Path-Stat";

/** The request's ContainerConfig, or null: the docker CLI sends `null` when it has none. */
async function bodyConfig(request: Request): Promise<RunConfig | null> {
  const text = await request.text();
  if (text.trim() === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw badRequest(`invalid JSON body: ${(error as Error).message}`);
  }
  if (parsed !== null && (typeof parsed !== "object" || Array.isArray(parsed)))
    throw badRequest("the body must be a ContainerConfig object");
  return parsed as RunConfig | null;
}

export function containerFileRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  const manager = engine.containers;

  app.post("/commit", async (c) => {
    const container = c.req.query("container");
    if (!container) throw badRequest("container is required");
    const id = await commitContainer(engine, {
      container,
      repo: c.req.query("repo") || undefined,
      tag: c.req.query("tag") || undefined,
      comment: c.req.query("comment") || undefined,
      author: c.req.query("author") || undefined,
      pause: queryBool(c.req.query("pause"), true),
      changes: c.req.queries("changes") ?? [],
      config: await bodyConfig(c.req.raw),
      compression: compressionQuery(c.req.query("compression")),
    });
    const repo = c.req.query("repo");
    const imageRef = repo ? `${repo}:${c.req.query("tag") || "latest"}` : "";
    // As dockerd: the new tag's event, then the commit's.
    if (repo) await publishImageEvent(engine, "tag", id, imageRef, findImage(engine, id));
    engine.events.container(manager.get(container), "commit", { comment: c.req.query("comment") ?? "", imageID: id, imageRef });
    return c.json({ Id: id }, 201);
  });

  app.get("/containers/:id/changes", async (c) => {
    const record = manager.get(c.req.param("id"));
    return c.json(await containerChanges(containerLayers(engine, record)));
  });

  app.get("/containers/:id/export", async (c) => {
    const record = manager.get(c.req.param("id"));
    const tar = await exportContainer(engine, record);
    engine.events.container(record, "export");
    const out = c.env.outgoing;
    out.writeHead(200, { "Content-Type": "application/x-tar" });
    // Headers are out: a failure now can only cut the stream, which the client sees as a short tar.
    await pipeline(tar, out).catch((error) => engine.logger.warn({ err: error, id: record.id }, "export failed"));
    return RESPONSE_ALREADY_SENT;
  });

  // Hono answers HEAD with the GET route (body dropped): HEAD is the stat alone, errors as bare statuses.
  app.get("/containers/:id/archive", async (c) => {
    const path = c.req.query("path") ?? "";
    if (c.req.method === "HEAD") {
      try {
        const stat = await statContainerPath(engine, manager.get(c.req.param("id")), path);
        return c.body(null, 200, { [STAT_HEADER]: encodePathStat(stat) });
      } catch (error) {
        if (error instanceof ApiError) return c.body(null, error.status);
        throw error;
      }
    }
    const record = manager.get(c.req.param("id"));
    const { stat, tar } = await archiveContainerPath(engine, record, path);
    engine.events.container(record, "archive-path");
    const out = c.env.outgoing;
    out.writeHead(200, { "Content-Type": "application/x-tar", [STAT_HEADER]: encodePathStat(stat) });
    await pipeline(Readable.from(tar), out).catch((error) => engine.logger.warn({ err: error, id: record.id }, "archive failed"));
    return RESPONSE_ALREADY_SENT;
  });

  app.put("/containers/:id/archive", async (c) => {
    const record = manager.get(c.req.param("id"));
    await extractIntoContainer(engine, record, c.req.query("path") ?? "", c.env.incoming, {
      noOverwriteDirNonDir: queryBool(c.req.query("noOverwriteDirNonDir")),
      copyUIDGID: queryBool(c.req.query("copyUIDGID")),
      ...(manager.idMapOf(record) ? { idMap: manager.idMapOf(record) } : {}),
    });
    engine.events.container(record, "extract-to-dir");
    return c.body(null, 200);
  });
}
