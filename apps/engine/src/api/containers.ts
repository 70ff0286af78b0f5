// The container endpoints of the Docker Engine API (swagger "Container" section).
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context, Hono } from "hono";
import { containerAttachment, DEFAULT_DETACH_KEYS, parseDetachKeys, pipeAttach } from "../containers/attach.js";
import { CONTAINER_FILTERS, FilterError, matchesContainerFilters, parseTimestamp, rfc3339Nanos } from "../containers/filters.js";
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
import { queryBool } from "./booleans.js";
import { validateContainerCreate } from "./container-validation.js";
import { ApiError, badRequest, conflict } from "./errors.js";
import { parseFilters } from "./images.js";
import { containerCreateSchema, parseBody } from "./request-schemas.js";
import { hijack, terminalSize } from "./stream.js";
import type { EngineEnv } from "./types.js";

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

/** `docker ps` STATUS text (moby container.State.String), with the health status of a running one. */
export function statusText(c: ContainerRecord, now = Date.now(), health = "none"): string {
  switch (c.status) {
    case "running":
      return `Up ${humanDuration(now - Date.parse(c.startedAt ?? c.created))}${health === "none" ? "" : health === "starting" ? " (health: starting)" : ` (${health})`}`;
    case "paused":
      return `Up ${humanDuration(now - Date.parse(c.startedAt ?? c.created))} (Paused)`;
    case "exited":
      if (!c.finishedAt) return `Exited (${c.exitCode})`;
      return `Exited (${c.exitCode}) ${humanDuration(now - Date.parse(c.finishedAt))} ago`;
    default:
      return "Created";
  }
}

function filterable(x: ContainerRecord) {
  return {
    id: x.id,
    name: x.name,
    status: x.status,
    exitCode: x.exitCode,
    imageId: x.imageId,
    imageName: x.imageName,
    labels: x.config.Labels ?? {},
  };
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

/** The parts of a `ContainerSummary` that come from the record alone. */
function plainSummary(c: ContainerRecord) {
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: c.imageName,
    ImageID: c.imageId,
    Command: "",
    Created: Math.floor(Date.parse(c.created) / 1000),
    Labels: c.config.Labels ?? {},
    State: c.status,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.hostConfig.NetworkMode ?? "none" },
  };
}

/** swagger `ContainerSummary`. */
export async function summary(engine: Engine, c: ContainerRecord) {
  const args = await engine.containers.command(c);
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: c.imageName,
    ImageID: c.imageId,
    Command: args.join(" "),
    Created: Math.floor(Date.parse(c.created) / 1000),
    Ports: engine.networks.summaryPorts(c.id),
    Labels: c.config.Labels ?? {},
    State: c.status,
    Status: statusText(c, Date.now(), engine.health.status(c)),
    HostConfig: { NetworkMode: c.hostConfig.NetworkMode ?? "none" },
    NetworkSettings: { Networks: engine.networks.summaryNetworks(c.id) },
    Mounts: engine.volumes.inspectMounts(c.id),
  };
}

/** A part of a record's view that a bad stored value (one stored before create validated it) cannot break. */
function tolerant<T>(part: () => T, fallback: T): T {
  try {
    return part();
  } catch {
    return fallback;
  }
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
      Restarting: c.restarting,
      OOMKilled: c.oomKilled,
      Dead: false,
      Pid: running ? c.pid : 0,
      ExitCode: c.exitCode,
      Error: c.error,
      StartedAt: c.startedAt ?? ContainerManager.ZERO_TIME,
      FinishedAt: c.finishedAt ?? ContainerManager.ZERO_TIME,
      ...(engine.health.state(c) ? { Health: engine.health.state(c) } : {}),
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
    Mounts: engine.volumes.inspectMounts(c.id),
    Config: c.config,
    NetworkSettings: tolerant<unknown>(() => engine.networks.settings(c.id), { Networks: {} }),
  };
}

interface LogOptions {
  stdout: boolean;
  stderr: boolean;
  timestamps: boolean;
  tail?: string;
  follow: boolean;
  /** Nanoseconds since the epoch: only entries logged at or after `since` and before `until`. */
  since?: bigint;
  until?: bigint;
}

/** `since`/`until` query values; 0 or absent means no bound, as dockerd reads them. */
function timeBound(value: string | undefined, name: string): bigint | undefined {
  if (value === undefined || value === "" || value === "0") return undefined;
  try {
    return parseTimestamp(value);
  } catch (error) {
    throw badRequest(`invalid value for ${name}: ${(error as Error).message}`);
  }
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
  const inTime = (e: LogEntry) => {
    if (o.since === undefined && o.until === undefined) return true;
    const t = rfc3339Nanos(e.time) ?? 0n;
    return (o.since === undefined || t >= o.since) && (o.until === undefined || t < o.until);
  };
  const wanted = (e: LogEntry) => (e.stream === "stdout" ? o.stdout : o.stderr) && inTime(e);
  const { entries, offset } = await logSoFar(manager, c.id);
  for (const entry of tailLines(entries.filter(wanted), o.tail)) out.write(encodeEntry(entry, { tty, timestamps: o.timestamps }));
  if (!o.follow || !existsSync(manager.currentLog(c.id)) || (o.until !== undefined && o.until <= BigInt(Date.now()) * 1_000_000n)) return;
  const abort = new AbortController();
  const done = ended(manager, c.id);
  for await (const entry of followLog(manager.currentLog(c.id), offset, () => done() || out.destroyed, abort.signal)) {
    if (wanted(entry)) out.write(encodeEntry(entry, { tty, timestamps: o.timestamps }));
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
    const raw: unknown = await c.req.json().catch((error: unknown) => {
      if (error instanceof ApiError) throw error;
      throw badRequest("invalid JSON body");
    });
    if (!raw || typeof raw !== "object") throw badRequest("Config cannot be empty in order to create a container");
    const body = parseBody(containerCreateSchema, raw, "container config") as ContainerConfig & { HostConfig?: HostConfig };
    validateContainerCreate(body as Parameters<typeof validateContainerCreate>[0]);
    const {
      HostConfig: hostConfig = {},
      NetworkingConfig: networkingConfig,
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
      networkingConfig,
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
    const all = queryBool(c.req.query("all"));
    const limit = Number(c.req.query("limit") ?? -1);
    let list = manager.list().filter((x) => all || x.status === "running" || x.status === "paused");
    try {
      list = list.filter((x) => matchesContainerFilters({ ...filterable(x), health: engine.health.status(x) }, filters));
    } catch (error) {
      if (error instanceof FilterError) throw badRequest(error.message);
      throw error;
    }
    if (limit > 0) list = list.slice(0, limit);
    // One record that cannot be shown (stored before create validated it) must not hide the others.
    const shown = list.map((x) =>
      summary(engine, x).catch((error: unknown) => {
        engine.logger.warn({ err: error, id: x.id }, "container summary");
        return { ...plainSummary(x), Ports: [] };
      }),
    );
    return c.json(await Promise.all(shown));
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

  app.post("/containers/:id/rename", async (c) => {
    const name = c.req.query("name");
    if (!name) throw badRequest("name is required");
    await manager.rename(c.req.param("id"), name);
    return c.body(null, 204);
  });

  app.post("/containers/prune", async (c) => {
    let until: bigint | undefined;
    let filters: Record<string, string[]>;
    try {
      filters = parseFilters(c.req.query("filters"), ["until", "label", "label!"]);
      until = filters.until?.[0] !== undefined ? parseTimestamp(filters.until[0]) : undefined;
    } catch (error) {
      throw badRequest((error as Error).message);
    }
    const { deleted, reclaimed } = await manager.prune((x) => {
      if (until !== undefined && (rfc3339Nanos(x.created) ?? 0n) >= until) return false;
      const labels = x.config.Labels ?? {};
      if (filters.label && !matchesContainerFilters({ ...filterable(x), labels }, { label: filters.label })) return false;
      if (filters["label!"]?.some((l) => matchesContainerFilters({ ...filterable(x), labels }, { label: [l] }))) return false;
      return true;
    });
    engine.events.publish("container", "prune", "", { reclaimed: String(reclaimed) });
    return c.json({ ContainersDeleted: deleted, SpaceReclaimed: reclaimed });
  });

  app.delete("/containers/:id", async (c) => {
    await manager.remove(c.req.param("id"), { force: queryBool(c.req.query("force")), volumes: queryBool(c.req.query("v")) });
    return c.body(null, 204);
  });

  app.get("/containers/:id/logs", async (c) => {
    const record = manager.get(c.req.param("id"));
    const options: LogOptions = {
      stdout: queryBool(c.req.query("stdout")),
      stderr: queryBool(c.req.query("stderr")),
      timestamps: queryBool(c.req.query("timestamps")),
      follow: queryBool(c.req.query("follow")),
      ...(c.req.query("tail") ? { tail: c.req.query("tail") as string } : {}),
    };
    const since = timeBound(c.req.query("since"), "since");
    const until = timeBound(c.req.query("until"), "until");
    if (since !== undefined) options.since = since;
    if (until !== undefined) options.until = until;
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
    // moby's ContainerAttach refuses a paused container; a stopped one is attached at its next start.
    if (record.status === "paused") throw conflict(`container ${record.id} is paused, unpause the container before attach`);
    const tty = record.config.Tty === true;
    const detachKeys = parseDetachKeys(c.req.query("detachKeys") || DEFAULT_DETACH_KEYS);
    const socket = hijack(c, tty);
    engine.events.container(record, "attach");
    const stdout = queryBool(c.req.query("stdout"));
    const stderr = queryBool(c.req.query("stderr"));
    if (queryBool(c.req.query("logs")))
      await writeLogs(socket, manager, record, { stdout, stderr, timestamps: false, follow: false }).catch(() => undefined);
    if (!queryBool(c.req.query("stream"))) {
      socket.end();
      return RESPONSE_ALREADY_SENT;
    }
    const attaching = async () => {
      const connection = await containerAttachment(manager, record.id, socket);
      if (!connection) return void socket.end();
      // stdin only reaches a container created with OpenStdin (conmon --stdin), as in moby.
      const how = await pipeAttach(socket, connection, {
        tty,
        stdout,
        stderr,
        stdin: queryBool(c.req.query("stdin")) && record.config.OpenStdin === true,
        detachKeys,
      });
      if (how === "detached") engine.events.container(record, "detach");
    };
    await manager.hold(
      record.id,
      attaching().catch(() => void socket.destroy()),
    );
    return RESPONSE_ALREADY_SENT;
  });

  app.post("/containers/:id/resize", async (c) => {
    const { height, width } = terminalSize(c);
    const record = manager.get(c.req.param("id"));
    if (record.status !== "running" && record.status !== "paused") throw conflict(`Container ${record.id} is not running`);
    // A container without a TTY has nothing to resize: dockerd (containerd) answers 200 for it too.
    if (record.config.Tty === true) await manager.runtime.resize(record.id, height, width);
    engine.events.container(record, "resize", { height: String(height), width: String(width) });
    return c.body(null, 200);
  });
}
