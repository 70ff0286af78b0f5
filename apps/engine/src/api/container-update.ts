// `POST /containers/{id}/update` (swagger ContainerUpdate).
import type { Hono } from "hono";
import type { Engine } from "../engine.js";
import { badRequest } from "./errors.js";
import type { EngineEnv } from "./types.js";

export function containerUpdateRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  app.post("/containers/:id/update", async (c) => {
    const container = engine.containers.get(c.req.param("id"));
    const body = await c.req.json().catch(() => {
      throw badRequest("invalid JSON body");
    });
    await engine.containers.update(container.id, body);
    engine.events.container(engine.containers.get(container.id), "update");
    return c.json({ Warnings: [] });
  });
}
