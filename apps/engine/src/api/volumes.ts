// The volume endpoints of the Docker Engine API (swagger "Volume" section), local driver only.
import type { Hono } from "hono";
import type { Engine } from "../engine.js";
import type { VolumeRecord } from "../volumes/manager.js";
import { filterBool, queryBool } from "./booleans.js";
import { ApiError, badRequest } from "./errors.js";
import { parseFilters } from "./images.js";
import { parseBody, volumeCreateSchema } from "./request-schemas.js";
import type { EngineEnv } from "./types.js";

function matchesLabel(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf("=");
  return eq === -1 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

/** swagger `Volume`. */
export function volumeJson(engine: Engine, v: VolumeRecord) {
  return {
    Name: v.name,
    Driver: v.driver,
    Mountpoint: engine.volumes.dataDir(v.name),
    CreatedAt: v.created,
    Labels: v.anonymous ? { "com.docker.volume.anonymous": "", ...v.labels } : v.labels,
    Scope: "local",
    Options: Object.keys(v.options).length > 0 ? v.options : null,
  };
}

export function volumeRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  const volumes = engine.volumes;

  app.get("/volumes", (c) => {
    const filters = parseFilters(c.req.query("filters"), ["name", "label", "dangling", "driver"]);
    const list = volumes.list().filter((v) => {
      if (filters.name && !filters.name.some((n) => v.name.includes(n))) return false;
      if (filters.driver && !filters.driver.includes(v.driver)) return false;
      if (filters.label && !filters.label.every((l) => matchesLabel(v.labels, l))) return false;
      if (filters.dangling) {
        const dangling = volumes.users(v.name).length === 0;
        if (!filters.dangling.some((d) => filterBool("dangling", d) === dangling)) return false;
      }
      return true;
    });
    return c.json({ Volumes: list.map((v) => volumeJson(engine, v)), Warnings: [] });
  });

  app.post("/volumes/create", async (c) => {
    const raw: unknown = await c.req.json().catch((error: unknown) => {
      if (error instanceof ApiError) throw error;
      throw badRequest("invalid JSON body");
    });
    if (!raw || typeof raw !== "object") throw badRequest("invalid JSON body");
    const request = parseBody(volumeCreateSchema, raw, "volume config");
    const { volume } = await volumes.create({
      ...(request.Name ? { name: request.Name } : {}),
      ...(request.Driver ? { driver: request.Driver } : {}),
      labels: request.Labels ?? {},
      options: request.DriverOpts ?? {},
    });
    return c.json(volumeJson(engine, volume), 201);
  });

  app.get("/volumes/:name", (c) => c.json(volumeJson(engine, volumes.get(c.req.param("name")))));

  app.delete("/volumes/:name", async (c) => {
    await volumes.remove(c.req.param("name"), { force: queryBool(c.req.query("force")) });
    return c.body(null, 204);
  });

  app.post("/volumes/prune", async (c) => {
    const filters = parseFilters(c.req.query("filters"), ["label", "label!", "all"]);
    const keep = (v: VolumeRecord) =>
      (filters.label !== undefined && !filters.label.every((l) => matchesLabel(v.labels, l))) ||
      filters["label!"]?.some((l) => matchesLabel(v.labels, l)) === true;
    const all = filters.all?.some((a) => filterBool("all", a)) ?? false;
    const { names, reclaimed } = await volumes.prune({ all, keep });
    engine.events.publish("volume", "prune", "", { reclaimed: String(reclaimed) });
    return c.json({ VolumesDeleted: names, SpaceReclaimed: reclaimed });
  });
}
