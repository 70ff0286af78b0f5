// What a container's processes are and use: `GET /containers/{id}/top` and `/stats` (swagger
// ContainerTop, ContainerStats).
import { setTimeout as sleep } from "node:timers/promises";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Hono } from "hono";
import { ContainerCgroup } from "../containers/cgroup.js";
import type { ContainerRecord } from "../containers/manager.js";
import { type CpuStats, EMPTY_CPU, type StatsSample, sampleStats } from "../containers/stats.js";
import { top } from "../containers/top.js";
import type { Engine } from "../engine.js";
import { queryBool } from "./booleans.js";
import { conflict } from "./errors.js";
import type { EngineEnv } from "./types.js";

const ZERO_TIME = "0001-01-01T00:00:00Z";
/** dockerd's collector samples once a second. */
const INTERVAL_MS = 1000;

const isRunning = (c: ContainerRecord | undefined) => c !== undefined && (c.status === "running" || c.status === "paused");

function cgroupOf(c: ContainerRecord): ContainerCgroup {
  return new ContainerCgroup(`/minato/${c.id}`);
}

async function sample(c: ContainerRecord | undefined): Promise<StatsSample> {
  if (c && isRunning(c)) return sampleStats(cgroupOf(c), c.pid);
  return {
    read: ZERO_TIME,
    pids_stats: {},
    blkio_stats: { io_service_bytes_recursive: null },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: EMPTY_CPU,
    memory_stats: {},
  };
}

export function containerMetricRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  const manager = engine.containers;

  app.get("/containers/:id/top", async (c) => {
    const record = manager.get(c.req.param("id"));
    if (!isRunning(record)) throw conflict(`Container ${record.id} is not running`);
    const processes = await top(await cgroupOf(record).pids(), c.req.query("ps_args") ?? "-ef");
    engine.events.container(record, "top");
    return c.json(processes);
  });

  app.get("/containers/:id/stats", async (c) => {
    const record = manager.get(c.req.param("id"));
    const stream = queryBool(c.req.query("stream"), true);
    const oneShot = queryBool(c.req.query("one-shot"));
    const frame = (now: StatsSample, previous: { read: string; cpu: CpuStats }) => ({
      ...now,
      preread: previous.read,
      precpu_stats: previous.cpu,
      name: `/${record.name}`,
      id: record.id,
    });
    let previous = { read: ZERO_TIME, cpu: EMPTY_CPU };
    if (!stream) {
      // Two samples a collector interval apart, so the CPU percentage has a delta (unless one-shot).
      if (!oneShot && isRunning(record)) {
        const first = await sample(record);
        previous = { read: first.read, cpu: first.cpu_stats };
        await sleep(INTERVAL_MS);
      }
      return c.json(frame(await sample(manager.find(record.id)), previous));
    }
    const out = c.env.outgoing;
    out.writeHead(200, { "Content-Type": "application/json" });
    for (;;) {
      const current = manager.find(record.id);
      if (!current || out.destroyed) break;
      const now = await sample(current);
      out.write(`${JSON.stringify(frame(now, previous))}\n`);
      previous = { read: now.read, cpu: now.cpu_stats };
      await sleep(INTERVAL_MS);
    }
    out.end();
    return RESPONSE_ALREADY_SENT;
  });
}
