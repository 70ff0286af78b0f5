// minatod's Prometheus metrics (`--metrics-addr`, as dockerd's): actions timed at the API edge,
// events counted from the event log, container states and health counted at scrape time. Labels
// are bounded: actions, states and event types — never container ids, names or image references.
import { createServer, type Server } from "node:http";
import { arch, release } from "node:os";
import type { MiddlewareHandler } from "hono";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { HealthMonitor } from "./containers/health.js";
import type { ContainerManager, ContainerStatus } from "./containers/manager.js";
import type { EventLog } from "./events/log.js";

const CONTAINER_STATES: ContainerStatus[] = ["created", "running", "paused", "exited"];

/** Seconds: container actions take milliseconds to a stop's grace period; pulls and builds minutes. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

type ActionKind = "container" | "image";

/** The requests that are actions, by method and path (the path without its `/v1.xx` prefix). */
const ACTIONS: { method: string; path: RegExp; kind: ActionKind; action: string | ((match: RegExpExecArray) => string) }[] = [
  { method: "POST", path: /^\/containers\/create$/, kind: "container", action: "create" },
  {
    method: "POST",
    path: /^\/containers\/[^/]+\/(start|stop|kill|pause|unpause|restart)$/,
    kind: "container",
    action: (m) => m[1] as string,
  },
  { method: "DELETE", path: /^\/containers\/[^/]+$/, kind: "container", action: "delete" },
  { method: "POST", path: /^\/exec\/[^/]+\/start$/, kind: "container", action: "exec" },
  { method: "POST", path: /^\/images\/create$/, kind: "image", action: "pull" },
  { method: "POST", path: /^\/images\/.+\/push$/, kind: "image", action: "push" },
  { method: "POST", path: /^\/build$/, kind: "image", action: "build" },
];

/**
 * Streamed responses (pull, push, build) report a failure in-band after a 200; the stream writer
 * marks the response here so the action is still counted as failed.
 */
export const failedStreams = new WeakSet<object>();

export interface EngineInfo {
  version: string;
  storageDriver: string;
  runtime: string;
}

export class EngineMetrics {
  readonly registry = new Registry();
  readonly #actionSeconds: Record<ActionKind, Histogram<"action">>;
  readonly #actions: Record<ActionKind, Counter<"action" | "result">>;
  readonly #imageBytes: Counter<"action">;

  constructor(info: EngineInfo) {
    const registers = [this.registry];
    this.#actionSeconds = {
      container: new Histogram({
        name: "minato_engine_container_actions_seconds",
        help: "Duration of container actions (create, start, stop, kill, delete, pause, unpause, restart, exec), as the API served them",
        labelNames: ["action"],
        buckets: BUCKETS,
        registers,
      }),
      image: new Histogram({
        name: "minato_engine_image_actions_seconds",
        help: "Duration of image pulls, pushes and builds",
        labelNames: ["action"],
        buckets: BUCKETS,
        registers,
      }),
    };
    this.#actions = {
      container: new Counter({
        name: "minato_engine_container_actions_total",
        help: "Container actions by outcome (error: the API answered 4xx/5xx)",
        labelNames: ["action", "result"],
        registers,
      }),
      image: new Counter({
        name: "minato_engine_image_actions_total",
        help: "Image pulls, pushes and builds by outcome (error: refused, or failed in the progress stream)",
        labelNames: ["action", "result"],
        registers,
      }),
    };
    this.#imageBytes = new Counter({
      name: "minato_engine_image_bytes_total",
      help: "Blob bytes transferred: downloaded by pulls, uploaded by pushes (blobs the other side had are not counted)",
      labelNames: ["action"],
      registers,
    });
    new Gauge({
      name: "minato_engine_info",
      help: "The engine's version and what it runs on (always 1)",
      labelNames: ["version", "os", "architecture", "kernel", "storage_driver", "runtime"],
      registers,
    }).set(
      {
        version: info.version,
        os: "linux",
        architecture: arch(),
        kernel: release(),
        storage_driver: info.storageDriver,
        runtime: info.runtime,
      },
      1,
    );
  }

  #processCollected = false;

  /** The process's own metrics (memory, CPU, file descriptors, event-loop lag, GC): sampled only once served. */
  collectProcessMetrics(): void {
    if (this.#processCollected) return;
    this.#processCollected = true;
    collectDefaultMetrics({ register: this.registry, prefix: "minato_engine_" });
  }

  /** Counts every event the engine publishes by type and action (an action's argument, as `exec_create: CMD`, dropped). */
  countEvents(events: EventLog): void {
    const counter = new Counter({
      name: "minato_engine_events_total",
      help: "Events published on the engine's event log (GET /events), by type and action",
      labelNames: ["type", "action"],
      registers: [this.registry],
    });
    events.subscribe((event) => counter.inc({ type: event.Type, action: event.Action.replace(/:.*$/s, "") }));
  }

  /** Containers by state and health checks, read from the engine when scraped. */
  watchContainers(containers: ContainerManager, health: HealthMonitor): void {
    new Gauge({
      name: "minato_engine_containers",
      help: "Containers by state",
      labelNames: ["state"],
      registers: [this.registry],
      collect() {
        const counts = new Map<string, number>(CONTAINER_STATES.map((s) => [s, 0]));
        for (const c of containers.list()) counts.set(c.status, (counts.get(c.status) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Counter({
      name: "minato_engine_health_checks_total",
      help: "Health check probes run",
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(health.probesRun);
      },
    });
    new Counter({
      name: "minato_engine_health_checks_failed_total",
      help: "Health check probes that failed (non-zero exit, timed out, or could not run)",
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(health.probesFailed);
      },
    });
  }

  /** Bytes of blobs a pull downloaded or a push uploaded. */
  imageBytes(action: "pull" | "push", bytes: number): void {
    if (bytes > 0) this.#imageBytes.inc({ action }, bytes);
  }

  /** Times the requests that are actions, from the request to the end of its response (streams included). */
  middleware(): MiddlewareHandler<{ Bindings: { outgoing: object } }> {
    return async (c, next) => {
      const method = c.req.method;
      const path = c.req.path;
      const route = ACTIONS.find((a) => a.method === method && a.path.test(path));
      // POST /images/create without fromImage is an import, not a pull.
      if (!route || (route.action === "pull" && c.req.query("fromImage") === undefined)) return next();
      const match = route.path.exec(path) as RegExpExecArray;
      const action = typeof route.action === "string" ? route.action : route.action(match);
      const end = this.#actionSeconds[route.kind].startTimer({ action });
      try {
        await next();
      } finally {
        end();
        const failed = c.error !== undefined || c.res.status >= 400 || failedStreams.has(c.env.outgoing);
        this.#actions[route.kind].inc({ action, result: failed ? "error" : "success" });
      }
    };
  }

  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** Serves `GET /metrics` on its own listener, unauthenticated as dockerd's (so meant for loopback). */
export async function serveMetrics(metrics: EngineMetrics, address: { host: string; port: number }): Promise<Server> {
  metrics.collectProcessMetrics();
  const server = createServer((request, response) => {
    const path = (request.url ?? "").split("?")[0];
    if (path !== "/metrics" || (request.method !== "GET" && request.method !== "HEAD")) {
      response.writeHead(path === "/metrics" ? 405 : 404, { "Content-Type": "text/plain" }).end("not found: GET /metrics\n");
      return;
    }
    metrics.scrape().then(
      ({ contentType, body }) => response.writeHead(200, { "Content-Type": contentType }).end(request.method === "HEAD" ? undefined : body),
      (error: Error) => response.writeHead(500, { "Content-Type": "text/plain" }).end(`${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
