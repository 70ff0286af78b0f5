import type { Hono } from "hono";
import type { Env, RegistryDeps } from "./http.js";

type Check = { status: "ok" } | { status: "failing"; error: string };

async function check(probe: () => Promise<unknown>): Promise<Check> {
  try {
    const result = await probe();
    return result === false ? { status: "failing", error: "not answering" } : { status: "ok" };
  } catch (error) {
    return { status: "failing", error: (error as Error).message.slice(0, 300) };
  }
}

/**
 * `/health`: is each dependency answering (storage, metadata database), and which one is not.
 * `/ready`: should a load balancer send requests here (no while starting or draining after SIGTERM).
 */
export function mountHealth(app: Hono<Env>, deps: RegistryDeps, state: { ready: boolean }): void {
  app.get("/health", async (c) => {
    const [storage, metadata] = await Promise.all([check(() => deps.storage.healthy()), check(() => deps.metadata.ping())]);
    const ok = storage.status === "ok" && metadata.status === "ok";
    return c.json({ status: ok ? "ok" : "unavailable", checks: { storage, metadata } }, ok ? 200 : 503);
  });
  app.get("/ready", (c) => c.json({ status: state.ready ? "ready" : "not ready" }, state.ready ? 200 : 503));
}
