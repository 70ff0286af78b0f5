// The container endpoints of the Docker Engine API (swagger "Container" section).
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context, Hono } from "hono";
import { CONTAINER_FILTERS, FilterError, matchesContainerFilters } from "../containers/filters.js";
import { encodeEntry, followLog, type LogEntry, parseRecords, tailLines } from "../containers/logs.js";
import {
  type ContainerConfig,
  ContainerManager,
  type ContainerRecord,
  type HostConfig,
  type ImageRunDefaults,
  type WaitCondition,
} from "../containers/manager.js";
import type { Engine } from "../engine.js";
import type { ImageRecord } from "../image-store.js";
import { findImage, imageConfig } from "../images.js";
import { badRequest } from "./errors.js";
import { parseFilters } from "./images.js";
import { hijack } from "./stream.js";
import type { EngineEnv } from "./types.js";

const truthy = (value: string | undefined) => value === "1" || value === "true" || value === "True";

/** go-units HumanDuration, as `docker ps` STATUS shows durations. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

/** `docker ps` STATUS text (moby container.State.String). */
export function statusText(c: ContainerRecord, now = Date.now()): string {
  switch (c.status) {
    case "running":
      return `Up ${humanDuration(now - Date.parse(c.startedAt ?? c.created))}`;
    case "paused":
      return `Up ${humanDuration(now - Date.parse(c.startedAt ?? c.created))} (Paused)`;
    case "exited":
      if (!c.finishedAt) return `Exited (${c.exitCode})`;
      return `Exited (${c.exitCode}) ${humanDuration(now - Date.parse(c.finishedAt))} ago`;
    default:
      return "Created";
  }
}

function imageOf(engine: Engine, c: ContainerRecord): ImageRecord | undefined {
  return engine.images.get(c.imageId as ImageRecord["id"]);
}

function imageGetter(engine: Engine, c: ContainerRecord): () => ImageRecord {
  return () => {
    const image = imageOf(engine, c);
    if (!image) throw badRequest(`the image ${c.imageId} of container ${c.id} is gone`);
    return image;
  };
}

/** swagger `ContainerSummary`. */
async function summary(engine: Engine, c: ContainerRecord) {
  const args = await engine.containers.command(c);
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: c.imageName,
    ImageID: c.imageId,
    Command: args.join(" "),
    Created: Math.floor(Date.parse(c.created) / 1000),
    Ports: [],
    Labels: c.config.Labels ?? {},
    State: c.status,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.hostConfig.NetworkMode ?? "none" },
    NetworkSettings: { Networks: {} },
    Mounts: [],
  };
}

/** swagger `ContainerInspectResponse`. */
async function inspect(engine: Engine, c: ContainerRecord) {
  const manager = engine.containers;
  const args = await manager.command(c);
  const dir = manager.dir(c.id);
  const running = c.status === "running" || c.status === "paused";
  return {
    Id: c.id,
    Created: c.created,
    Path: args[0] ?? "",
    Args: args.slice(1),
    State: {
      Status: c.status,
      Running: running,
      Paused: c.status === "paused",
      Restarting: false,
      OOMKilled: c.oomKilled,
      Dead: false,
      Pid: running ? c.pid : 0,
      ExitCode: c.exitCode,
      Error: c.error,
      StartedAt: c.startedAt ?? ContainerManager.ZERO_TIME,
      FinishedAt: c.finishedAt ?? ContainerManager.ZERO_TIME,
    },
    Image: c.imageId,
    ResolvConfPath: `${dir}/etc/resolv.conf`,
    HostnamePath: `${dir}/etc/hostname`,
    HostsPath: `${dir}/etc/hosts`,
    LogPath: manager.currentLog(c.id),
    Name: `/${c.name}`,
    RestartCount: c.restartCount,
    Driver: "overlay2",
    Platform: "linux",
    MountLabel: "",
    ProcessLabel: "",
    AppArmorProfile: "",
    ExecIDs: null,
    HostConfig: c.hostConfig,
    GraphDriver: manager.graphDriver(c, imageOf(engine, c)),
    Mounts: [],
    Config: c.config,
    NetworkSettings: { Bridge: "", SandboxID: "", Ports: {}, Networks: {} },
  };
}

interface LogOptions {
  stdout: boolean;
  stderr: boolean;
  timestamps: boolean;
  tail?: string;
  follow: boolean;
}

/** Everything logged so far: earlier runs, then the current one; and how far the current log was read. */
async function logSoFar(manager: ContainerManager, id: string): Promise<{ entries: LogEntry[]; offset: number }> {
  const previous = await readFile(manager.previousLog(id), "utf8").catch(() => "");
  const current = await readFile(manager.currentLog(id)).catch(() => Buffer.alloc(0));
  const end = current.lastIndexOf(10) + 1;
  return { entries: [...parseRecords(previous), ...parseRecords(current.subarray(0, end).toString("utf8"))], offset: end };
}

const ended = (manager: ContainerManager, id: string) => () => {
  const c = manager.find(id);
  return !c || (c.status !== "running" && c.status !== "paused");
};

async function writeLogs(
  out: { write(b: Buffer): unknown; destroyed: boolean },
  manager: ContainerManager,
  c: ContainerRecord,
  o: LogOptions,
) {
  const tty = c.config.Tty === true;
  const wanted = (e: LogEntry) => (e.stream === "stdout" ? o.stdout : o.stderr);
  const { entries, offset } = await logSoFar(manager, c.id);
  for (const entry of tailLines(entries.filter(wanted), o.tail)) out.write(encodeEntry(entry, { tty, timestamps: o.timestamps }));
  if (!o.follow || !existsSync(manager.currentLog(c.id))) return;
  const abort = new AbortController();
  const done = ended(manager, c.id);
  for await (const entry of followLog(manager.currentLog(c.id), offset, () => done() || out.destroyed, abort.signal)) {
    if (wanted(entry)) out.write(encodeEntry(entry, { tty, timestamps: o.timestamps }));
  }
}

/**
 * Attach, output only: the hijacked connection (HTTP 101, then the raw or multiplexed stream) carries
 * what the container writes from now until it exits. It follows conmon's log; stdin is not wired.
 */
async function attachOutput(socket: Socket, manager: ContainerManager, c: ContainerRecord, o: LogOptions): Promise<void> {
  const tty = c.config.Tty === true;
  const wanted = (e: LogEntry) => (e.stream === "stdout" ? o.stdout : o.stderr);
  const log = manager.currentLog(c.id);
  // Output of a running container from now on; of a created one, from its start.
  let offset =
    c.status === "running" || c.status === "paused"
      ? await stat(log).then(
          (s) => s.size,
          () => 0,
        )
      : 0;
  if (c.status !== "running" && c.status !== "paused") {
    for (let delay = 5; ; delay = Math.min(delay * 2, 50)) {
      if (socket.destroyed) return;
      const now = manager.find(c.id);
      if (!now) return;
      if (now.status === "running" || now.status === "paused" || (now.status === "exited" && now.startedAt)) {
        if (existsSync(log)) break;
      }
      if (now.status === "created" && now.error) return;
      await sleep(delay);
    }
    offset = 0;
  }
  const done = ended(manager, c.id);
  for await (const entry of followLog(log, offset, () => done() || socket.destroyed)) {
    if (wanted(entry) && !socket.destroyed) socket.write(encodeEntry(entry, { tty, timestamps: false }));
  }
}

function streamBody(c: Context<EngineEnv>, tty: boolean): ServerResponse {
  const out = c.env.outgoing;
  out.writeHead(200, {
    "Content-Type": tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream",
  });
  return out;
}

export function containerRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  const manager = engine.containers;

  app.post("/containers/create", async (c) => {
    const body = (await c.req.json().catch(() => {
      throw badRequest("invalid JSON body");
    })) as ContainerConfig & { HostConfig?: HostConfig };
    if (!body || typeof body !== "object") throw badRequest("Config cannot be empty in order to create a container");
    const {
      HostConfig: hostConfig = {},
      NetworkingConfig: _networking,
      ...config
    } = body as ContainerConfig & {
      HostConfig?: HostConfig;
      NetworkingConfig?: unknown;
    };
    if (typeof config.Image !== "string" || config.Image === "") throw badRequest("no image specified");
    const image = findImage(engine, config.Image);
    const imageRun = ((await imageConfig(engine, image)).config ?? {}) as ImageRunDefaults;
    const created = await manager.create({
      ...(c.req.query("name") ? { name: c.req.query("name") as string } : {}),
      image,
      imageName: config.Image,
      imageConfig: imageRun,
      config,
      hostConfig,
    });
    return c.json({ Id: created.id, Warnings: [] }, 201);
  });

  app.get("/containers/json", async (c) => {
    let filters: Record<string, string[]>;
    try {
      filters = parseFilters(c.req.query("filters"), CONTAINER_FILTERS);
    } catch (error) {
      throw badRequest((error as Error).message);
    }
    const all = truthy(c.req.query("all"));
    const limit = Number(c.req.query("limit") ?? -1);
    let list = manager.list().filter((x) => all || x.status === "running" || x.status === "paused");
    try {
      list = list.filter((x) =>
        matchesContainerFilters(
          {
            id: x.id,
            name: x.name,
            status: x.status,
            exitCode: x.exitCode,
            imageId: x.imageId,
            imageName: x.imageName,
            labels: x.config.Labels ?? {},
          },
          filters,
        ),
      );
    } catch (error) {
      if (error instanceof FilterError) throw badRequest(error.message);
      throw error;
    }
    if (limit > 0) list = list.slice(0, limit);
    return c.json(await Promise.all(list.map((x) => summary(engine, x))));
  });

  app.get("/containers/:id/json", async (c) => c.json(await inspect(engine, manager.get(c.req.param("id")))));

  app.post("/containers/:id/start", async (c) => {
    const record = manager.get(c.req.param("id"));
    const result = await manager.start(record.id, imageGetter(engine, record));
    return result === "already" ? c.body(null, 304) : c.body(null, 204);
  });

  const stopOptions = (c: Context<EngineEnv>) => {
    const t = c.req.query("t");
    const signal = c.req.query("signal");
    if (t !== undefined && !/^-?\d+$/.test(t)) throw badRequest(`invalid value for t: ${t}`);
    return { ...(t !== undefined ? { timeout: Number(t) } : {}), ...(signal ? { signal } : {}) };
  };

  app.post("/containers/:id/stop", async (c) => {
    const result = await manager.stop(c.req.param("id"), stopOptions(c));
    return result === "already" ? c.body(null, 304) : c.body(null, 204);
  });

  app.post("/containers/:id/restart", async (c) => {
    const record = manager.get(c.req.param("id"));
    await manager.restart(record.id, imageGetter(engine, record), stopOptions(c));
    return c.body(null, 204);
  });

  app.post("/containers/:id/kill", async (c) => {
    await manager.kill(c.req.param("id"), c.req.query("signal") || "SIGKILL");
    return c.body(null, 204);
  });

  app.post("/containers/:id/pause", async (c) => {
    await manager.pause(c.req.param("id"));
    return c.body(null, 204);
  });

  app.post("/containers/:id/unpause", async (c) => {
    await manager.unpause(c.req.param("id"));
    return c.body(null, 204);
  });

  app.post("/containers/:id/wait", async (c) => {
    const condition = (c.req.query("condition") || "not-running") as WaitCondition;
    if (!["not-running", "next-exit", "removed"].includes(condition)) throw badRequest(`invalid condition: ${condition}`);
    const id = c.req.param("id");
    // Looked up before the headers go out, so an unknown container is still a 404.
    if (!manager.find(id)) return c.json({ StatusCode: await manager.wait(id, condition), Error: null });
    const pending = manager.wait(id, condition);
    // Headers first, as dockerd sends them, so a client knows the wait is in place before it starts the container.
    const out = c.env.outgoing;
    out.writeHead(200, { "Content-Type": "application/json" });
    out.flushHeaders();
    try {
      const code = await pending;
      out.end(`${JSON.stringify({ StatusCode: code, Error: null })}\n`);
    } catch (error) {
      out.end(`${JSON.stringify({ StatusCode: -1, Error: { Message: (error as Error).message } })}\n`);
    }
    return RESPONSE_ALREADY_SENT;
  });

  app.delete("/containers/:id", async (c) => {
    await manager.remove(c.req.param("id"), { force: truthy(c.req.query("force")) });
    return c.body(null, 204);
  });

  app.get("/containers/:id/logs", async (c) => {
    const record = manager.get(c.req.param("id"));
    const options: LogOptions = {
      stdout: truthy(c.req.query("stdout")),
      stderr: truthy(c.req.query("stderr")),
      timestamps: truthy(c.req.query("timestamps")),
      follow: truthy(c.req.query("follow")),
      ...(c.req.query("tail") ? { tail: c.req.query("tail") as string } : {}),
    };
    if (!options.stdout && !options.stderr) throw badRequest("You must choose at least one stream");
    const out = streamBody(c, record.config.Tty === true);
    await manager.hold(
      record.id,
      writeLogs(out, manager, record, options).catch(() => undefined),
    );
    out.end();
    return RESPONSE_ALREADY_SENT;
  });

  app.post("/containers/:id/attach", async (c) => {
    const record = manager.get(c.req.param("id"));
    const socket = hijack(c, record.config.Tty === true);
    const options: LogOptions = {
      stdout: truthy(c.req.query("stdout")),
      stderr: truthy(c.req.query("stderr")),
      timestamps: false,
      follow: true,
    };
    if (truthy(c.req.query("stream")))
      await manager.hold(
        record.id,
        attachOutput(socket, manager, record, options).catch(() => undefined),
      );
    socket.end();
    return RESPONSE_ALREADY_SENT;
  });
}
