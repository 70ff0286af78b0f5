// The container manager: containers as Docker has them (create → running ⇄ paused → exited →
// removed), with their state in SQLite and their files under <data-root>/containers/<id>/ — the
// overlay rootfs (lower dirs: the image's snapshots top-down; a private upper and work dir), the
// generated /etc files and the OCI config. runc under conmon runs them (@minato/runtime), so they
// outlive minatod; `open` finds them again and reconciles their state.
import { existsSync, type FSWatcher, readFileSync, watch } from "node:fs";
import { appendFile, lchown, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { constants, hostname as hostHostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  createSpecDetailed,
  detectCgroupMode,
  type ImageRunConfig,
  mergeEnv,
  type NetworkMode,
  type OciSpec,
  Runtime,
  RuntimeError,
  writeEtcFiles,
} from "@minato/runtime";
import { ApiError, badRequest, conflict, notFound } from "../api/errors.js";
import type { EngineDatabase } from "../db.js";
import type { EventLog } from "../events/log.js";
import type { ImageRecord } from "../image-store.js";
import type { ContainerAttachments } from "../networks/attachments.js";
import { isMountPoint, mountOverlay, unmount } from "../overlay.js";
import type { SnapshotStore } from "../snapshots.js";
import { IdMap, makeTraversable, ShiftedSnapshots } from "../userns.js";
import { effectiveHealthcheck, type HealthConfig } from "./health.js";
import { newContainerId, randomName, validName } from "./names.js";
import { RestartBackoff, type RestartPolicy, restartPolicy, restartsAfterExit, restartsOnDaemonStart } from "./restart-policy.js";
import { securitySpecOptions } from "./security.js";
import { applyUpdate, parseUpdate } from "./update.js";
import { directorySize } from "./usage.js";

/** The subset of swagger `ContainerConfig` minatod honours. */
export interface ContainerConfig {
  Hostname?: string;
  User?: string;
  Tty?: boolean;
  OpenStdin?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  Image?: string;
  StopSignal?: string;
  StopTimeout?: number | null;
  [key: string]: unknown;
}

/** The subset of swagger `HostConfig` minatod honours. */
export interface HostConfig {
  Memory?: number;
  NanoCpus?: number;
  PidsLimit?: number | null;
  ReadonlyRootfs?: boolean;
  Tmpfs?: Record<string, string> | null;
  NetworkMode?: string;
  AutoRemove?: boolean;
  RestartPolicy?: RestartPolicy;
  [key: string]: unknown;
}

export type ContainerStatus = "created" | "running" | "paused" | "exited";

export interface ContainerRecord {
  id: string;
  name: string;
  imageId: string;
  imageName: string;
  /** The effective configuration (image defaults merged in), as inspect shows it. */
  config: ContainerConfig;
  hostConfig: HostConfig;
  stopSignal: string;
  created: string;
  status: ContainerStatus;
  pid: number;
  exitCode: number;
  oomKilled: boolean;
  error: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  restartCount: number;
  /** Stopped or killed by a user: restart policies leave it alone (Docker's HasBeenManuallyStopped). */
  manuallyStopped: boolean;
  /**
   * A restart policy's restart is pending (inspect's State.Restarting), read together with the row:
   * a reader that asked for it later, after an await, could pair an old row with a newer flag.
   */
  restarting: boolean;
}

/** What the image contributes: its run config (the `config` object of the image config blob), and labels. */
export type ImageRunDefaults = ImageRunConfig & { Labels?: Record<string, string> | null; Healthcheck?: unknown };

export interface CreateRequest {
  name?: string;
  image: ImageRecord;
  imageName: string;
  imageConfig: ImageRunDefaults;
  config: ContainerConfig;
  hostConfig: HostConfig;
  /** swagger `NetworkingConfig` (EndpointsConfig: aliases, `--ip`). */
  networkingConfig?: unknown;
}

export type WaitCondition = "not-running" | "next-exit" | "removed";

type Row = Record<string, unknown>;

const ZERO_TIME = "0001-01-01T00:00:00Z";

function toRecord(row: Row, restarting: boolean): ContainerRecord {
  return {
    id: row.id as string,
    name: row.name as string,
    imageId: row.image_id as string,
    imageName: row.image_name as string,
    config: JSON.parse(row.config as string) as ContainerConfig,
    hostConfig: JSON.parse(row.host_config as string) as HostConfig,
    stopSignal: row.stop_signal as string,
    created: row.created as string,
    status: row.status as ContainerStatus,
    pid: row.pid as number,
    exitCode: row.exit_code as number,
    oomKilled: row.oom_killed === 1,
    error: row.error as string,
    startedAt: (row.started_at as string | null) ?? undefined,
    finishedAt: (row.finished_at as string | null) ?? undefined,
    restartCount: row.restart_count as number,
    manuallyStopped: row.manually_stopped === 1,
    restarting,
  };
}

/** The hex part of a digest (snapshot directory names). */
const encodedOf = (digest: string) => digest.slice(digest.indexOf(":") + 1);

/** A RuntimeError as the API reports it. */
export function apiErrorFrom(error: unknown): unknown {
  if (!(error instanceof RuntimeError)) return error;
  switch (error.code) {
    case "NOT_FOUND":
      return notFound(error.message);
    case "INVALID_STATE":
    case "CONFLICT":
      return conflict(error.message);
    case "INVALID_OPTION":
    case "NO_COMMAND":
    case "UNKNOWN_USER":
    case "COMMAND_NOT_FOUND":
    case "NOT_EXECUTABLE":
      return badRequest(error.message);
    default:
      return new ApiError(500, error.message);
  }
}

/** `NetworkMode`: none and host for now; `default` (what the docker CLI sends) is none until bridge networking exists. */
export function networkMode(value: string | undefined): "none" | "host" {
  if (value === undefined || value === "" || value === "default" || value === "none") return "none";
  if (value === "host") return "host";
  throw badRequest(`network mode ${JSON.stringify(value)} is not supported yet: use none or host`);
}

/** A signal as dockerd's kill event shows it: its number. */
function signalNumber(signal: string): string {
  if (/^\d+$/.test(signal)) return signal;
  const name = signal.toUpperCase().startsWith("SIG") ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
  return String(constants.signals[name as keyof typeof constants.signals] ?? signal);
}

function policyOf(c: ContainerRecord): RestartPolicy {
  return c.hostConfig.RestartPolicy ?? { Name: "no", MaximumRetryCount: 0 };
}

export class ContainerManager {
  readonly root: string;
  readonly runtime: Runtime;
  /** Networks and mounts (set by the engine): hooks at create, start, exit and removal. */
  attachments: ContainerAttachments | undefined;
  /** Where the lifecycle's events are published (set by the engine). */
  events: EventLog | undefined;
  readonly #q;
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #exitWaiters = new Map<string, ((code: number) => void)[]>();
  readonly #removeWaiters = new Map<string, ((code: number) => void)[]>();
  /** Exit codes of containers removed lately, for a `wait` that arrives after an auto-remove. */
  readonly #removed = new Map<string, number>();
  readonly #locks = new Map<string, Promise<unknown>>();
  /** Readers (attach, logs) an auto-remove waits for before it deletes the log. */
  readonly #holds = new Map<string, Set<Promise<unknown>>>();
  readonly #finishing = new Set<string>();
  /** Names of containers being created, not yet in the database. */
  readonly #creatingNames = new Set<string>();
  /** Attach clients waiting for a container's next start (see beforeNextStart). */
  readonly #startHooks = new Map<string, Set<(started: boolean) => void>>();
  readonly #restartTimers = new Map<string, NodeJS.Timeout>();
  /** Containers a restart policy is starting right now (still "restarting" to inspect). */
  readonly #policyStarts = new Set<string>();
  readonly #backoff = new RestartBackoff();
  #timer: NodeJS.Timeout | undefined;

  private constructor(
    dataRoot: string,
    execRoot: string,
    private readonly db: EngineDatabase,
    private readonly snapshots: SnapshotStore,
    private readonly images: (id: string) => ImageRecord | undefined,
    private readonly log: { warn(obj: object, msg: string): void },
  ) {
    this.root = join(dataRoot, "containers");
    this.runtime = new Runtime({ root: join(execRoot, "c") });
    this.#q = {
      insert: db.prepare(
        `INSERT INTO containers (id, name, image_id, image_name, config, host_config, stop_signal, created, status)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'created')`,
      ),
      byId: db.prepare("SELECT * FROM containers WHERE id = ?"),
      byName: db.prepare("SELECT * FROM containers WHERE name = ?"),
      byPrefix: db.prepare("SELECT * FROM containers WHERE id >= ? AND id < ? LIMIT 2"),
      all: db.prepare("SELECT * FROM containers ORDER BY created DESC, id"),
      remove: db.prepare("DELETE FROM containers WHERE id = ?"),
      usingImage: db.prepare("SELECT * FROM containers WHERE image_id = ?"),
    };
  }

  static async open(
    dataRoot: string,
    execRoot: string,
    db: EngineDatabase,
    snapshots: SnapshotStore,
    images: (id: string) => ImageRecord | undefined,
    log: { warn(obj: object, msg: string): void },
    attachments?: ContainerAttachments,
    remap?: IdMap,
  ): Promise<ContainerManager> {
    const manager = new ContainerManager(dataRoot, execRoot, db, snapshots, images, log);
    manager.attachments = attachments;
    manager.remap = remap;
    manager.#shiftedRoot = join(dataRoot, "remap");
    await mkdir(manager.root, { recursive: true, mode: 0o700 });
    if (remap) await makeTraversable(manager.root);
    await ShiftedSnapshots.cleanup(manager.#shiftedRoot);
    // Which containers run in a user namespace is in their config.json (its id mappings).
    for (const c of manager.list()) {
      try {
        const spec = JSON.parse(readFileSync(join(manager.dir(c.id), "config.json"), "utf8")) as OciSpec;
        if (spec.linux.uidMappings?.length && spec.linux.gidMappings?.length)
          manager.#idMaps.set(c.id, new IdMap(spec.linux.uidMappings, spec.linux.gidMappings));
      } catch {
        // no config.json: nothing to run
      }
    }
    await manager.#recover();
    // A safety net for exits the exit-dir watch missed.
    manager.#timer = setInterval(() => void manager.#pollExits(), 1000);
    manager.#timer.unref();
    return manager;
  }

  /** `--userns-remap`: the daemon's id map for new containers (`--userns host` opts out). */
  remap?: IdMap;
  #shiftedRoot = "";
  readonly #idMaps = new Map<string, IdMap>();
  readonly #shifted = new Map<string, ShiftedSnapshots>();

  /** The user namespace mapping a container runs with, if any. */
  idMapOf(c: { id: string }): IdMap | undefined {
    return this.#idMaps.get(c.id);
  }

  #shiftedFor(map: IdMap): ShiftedSnapshots {
    let shifted = this.#shifted.get(map.key);
    if (!shifted) {
      shifted = new ShiftedSnapshots(this.#shiftedRoot, map);
      this.#shifted.set(map.key, shifted);
    }
    return shifted;
  }

  /** Drops the shifted copies of a pruned snapshot. */
  async removeShifted(encoded: string): Promise<void> {
    await ShiftedSnapshots.remove(this.#shiftedRoot, encoded);
  }

  /** The lower dir of a layer for a container: its shifted copy under a user namespace. */
  #lowerDir(id: string, chainId: string): string {
    const map = this.#idMaps.get(id);
    const path = this.snapshots.path(chainId as Parameters<SnapshotStore["path"]>[0]);
    return map ? this.#shiftedFor(map).pathOf(encodedOf(chainId)) : path;
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    for (const timer of this.#restartTimers.values()) clearTimeout(timer);
    this.#restartTimers.clear();
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  dir(id: string): string {
    return join(this.root, id);
  }

  rootfs(id: string): string {
    return join(this.dir(id), "rootfs");
  }

  #record(row: Row): ContainerRecord {
    return toRecord(row, this.restarting(row.id as string));
  }

  list(): ContainerRecord[] {
    return (this.#q.all.all() as Row[]).map((row) => this.#record(row));
  }

  usingImage(imageId: string): ContainerRecord[] {
    return (this.#q.usingImage.all(imageId) as Row[]).map((row) => this.#record(row));
  }

  /** By full ID, name (with or without the leading `/`) or unique ID prefix, as dockerd looks containers up. */
  find(input: string): ContainerRecord | undefined {
    const byId = this.#q.byId.get(input) as Row | undefined;
    if (byId) return this.#record(byId);
    const byName = this.#q.byName.get(input.replace(/^\//, "")) as Row | undefined;
    if (byName) return this.#record(byName);
    if (/^[0-9a-f]+$/.test(input)) {
      const rows = this.#q.byPrefix.all(input, `${input}g`) as Row[];
      if (rows.length > 1) throw badRequest(`multiple containers found with provided prefix: ${input}`);
      if (rows[0]) return this.#record(rows[0]);
    }
    return undefined;
  }

  get(input: string): ContainerRecord {
    const record = this.find(input);
    if (!record) throw notFound(`No such container: ${input}`);
    return record;
  }

  #update(id: string, fields: Partial<Record<string, string | number | null>>): void {
    const keys = Object.keys(fields);
    if (keys.length === 0) return;
    this.db.prepare(`UPDATE containers SET ${keys.map((k) => `${k} = ?`).join(", ")} WHERE id = ?`).run(...Object.values(fields), id);
  }

  /** Serializes the operations on one container. */
  async #locked<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(id) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.#locks.set(id, settled);
    try {
      return await next;
    } finally {
      if (this.#locks.get(id) === settled) this.#locks.delete(id);
    }
  }

  /** Keeps the container's files until `work` is done (readers of a container that auto-removes). */
  hold<T>(id: string, work: Promise<T>): Promise<T> {
    const set = this.#holds.get(id) ?? new Set<Promise<unknown>>();
    this.#holds.set(id, set);
    const entry = work.finally(() => {
      set.delete(entry);
      if (set.size === 0 && this.#holds.get(id) === set) this.#holds.delete(id);
    });
    set.add(entry);
    return work;
  }

  async create(request: CreateRequest): Promise<ContainerRecord> {
    let name = request.name?.replace(/^\//, "");
    if (name !== undefined && name !== "") {
      if (!validName(name))
        throw badRequest(
          `Invalid container name (${name.slice(0, 300)}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at most 253 characters`,
        );
      const existing = this.find(name);
      if ((existing && existing.name === name) || this.#creatingNames.has(name)) {
        throw conflict(
          `Conflict. The container name "/${name}" is already in use by container "${existing?.id ?? "being created"}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
      }
    } else {
      name = undefined;
      for (let retry = 0; name === undefined; retry++) {
        const candidate = randomName(retry);
        if (!this.#q.byName.get(candidate) && !this.#creatingNames.has(candidate)) name = candidate;
      }
    }
    // Held from here to the insert: concurrent creates (50 at once) must not pick the same name.
    this.#creatingNames.add(name);
    try {
      return await this.#create(request, name);
    } finally {
      this.#creatingNames.delete(name);
    }
  }

  async #create(request: CreateRequest, name: string): Promise<ContainerRecord> {
    const id = newContainerId();
    const { config, hostConfig, image, imageConfig } = request;
    const network = this.attachments ? undefined : networkMode(hostConfig.NetworkMode);
    if (hostConfig.Memory && hostConfig.Memory > 0 && hostConfig.Memory < 6 * 1024 * 1024)
      throw badRequest("Minimum memory limit allowed is 6MB");
    if (hostConfig.NanoCpus !== undefined && hostConfig.NanoCpus < 0) throw badRequest("invalid NanoCpus: must be positive");
    const restart = restartPolicy(hostConfig.RestartPolicy, hostConfig.AutoRemove === true);
    // Checked before anything is made: an isolation option that cannot be applied creates nothing.
    const security = securitySpecOptions(hostConfig);
    const idMap = this.remap && hostConfig.UsernsMode !== "host" ? this.remap : undefined;
    if (idMap) {
      // dockerd's rules: the host's namespaces and privileges are the host root's, not a remapped one's.
      if (hostConfig.Privileged === true)
        throw badRequest(
          "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode",
        );
      if (hostConfig.NetworkMode === "host") throw badRequest("cannot share the host's network namespace when user namespaces are enabled");
    }
    const healthcheck = effectiveHealthcheck(
      config.Healthcheck as HealthConfig | undefined,
      imageConfig.Healthcheck as HealthConfig | undefined,
    );

    const dir = this.dir(id);
    await mkdir(join(dir, "upper"), { recursive: true });
    await mkdir(join(dir, "work"), { recursive: true });
    await mkdir(join(dir, "rootfs"), { recursive: true });
    await mkdir(join(dir, "etc"), { recursive: true });
    try {
      if (idMap) {
        this.#idMaps.set(id, idMap);
        // The remapped root reaches its rootfs through the container's directory and owns `/` (the upper dir).
        await makeTraversable(dir);
        await lchown(join(dir, "upper"), idMap.root.uid, idMap.root.gid);
      }
      await this.#mount(id, image);
      const attached = await this.attachments?.prepare({
        id,
        name,
        rootfs: this.rootfs(id),
        config,
        hostConfig,
        imageConfig,
        networkingConfig: request.networkingConfig,
      });
      const networkSpec: NetworkMode = attached?.network ?? { mode: network ?? "none" };
      const onHost = networkSpec.mode === "host";
      const hostname = attached?.hostname ?? (config.Hostname || (onHost ? hostHostname() : id.slice(0, 12)));
      const etcFiles = await writeEtcFiles(join(dir, "etc"), {
        hostname,
        privateNetwork: !onHost,
        ...(onHost ? { hostHosts: await readFile("/etc/hosts", "utf8").catch(() => "") } : {}),
        ...attached?.etc,
      });
      if (idMap) for (const name of await readdir(join(dir, "etc"))) await lchown(join(dir, "etc", name), idMap.root.uid, idMap.root.gid);
      const userEnv = config.Env ?? [];
      const created = await createSpecDetailed({
        rootfs: this.rootfs(id),
        image: {
          ...(imageConfig.Entrypoint !== undefined ? { Entrypoint: imageConfig.Entrypoint } : {}),
          ...(imageConfig.Cmd !== undefined ? { Cmd: imageConfig.Cmd } : {}),
          ...(imageConfig.Env !== undefined ? { Env: imageConfig.Env } : {}),
          ...(imageConfig.User !== undefined ? { User: imageConfig.User } : {}),
          ...(imageConfig.WorkingDir !== undefined ? { WorkingDir: imageConfig.WorkingDir } : {}),
          ...((config.StopSignal ?? imageConfig.StopSignal) ? { StopSignal: config.StopSignal ?? imageConfig.StopSignal } : {}),
        },
        ...(config.Cmd && config.Cmd.length > 0 ? { cmd: config.Cmd } : {}),
        ...(config.Entrypoint ? { entrypoint: config.Entrypoint } : {}),
        env: userEnv,
        ...(config.User ? { user: config.User } : {}),
        ...(config.WorkingDir ? { workdir: config.WorkingDir } : {}),
        hostname,
        tty: config.Tty === true,
        readonlyRootfs: hostConfig.ReadonlyRootfs === true,
        ...(hostConfig.Tmpfs ? { tmpfs: hostConfig.Tmpfs } : {}),
        ...(hostConfig.Memory ? { memory: hostConfig.Memory } : {}),
        ...(hostConfig.NanoCpus ? { cpus: hostConfig.NanoCpus / 1e9 } : {}),
        ...(hostConfig.PidsLimit ? { pidsLimit: hostConfig.PidsLimit } : {}),
        network: networkSpec,
        ...(attached ? { mounts: attached.mounts } : {}),
        cgroupsPath: `/minato/${id}`,
        etcFiles,
        ...security,
        ...(idMap
          ? {
              userNamespace: {
                uidMappings: idMap.uids,
                gidMappings: idMap.gids,
                // A network namespace made for the container belongs to a user namespace made with it: join that one.
                // (its own, being made now with this mapping, or another remapped container's it shares).
                ...(networkSpec.mode === "path" && (networkSpec.path.endsWith(`/${id}`) || existsSync(`${networkSpec.path}.user`))
                  ? { path: `${networkSpec.path}.user` }
                  : {}),
              },
            }
          : {}),
      });
      await writeFile(join(dir, "config.json"), JSON.stringify(created.spec), { mode: 0o600 });
      const entrypointOverridden = config.Entrypoint !== undefined && config.Entrypoint !== null;
      const effective: ContainerConfig = {
        ...config,
        Hostname: hostname,
        Domainname: "",
        User: config.User ?? imageConfig.User ?? "",
        AttachStdin: config.AttachStdin ?? false,
        AttachStdout: config.AttachStdout ?? false,
        AttachStderr: config.AttachStderr ?? false,
        Tty: config.Tty === true,
        OpenStdin: config.OpenStdin === true,
        StdinOnce: config.StdinOnce === true,
        Env: mergeEnv(imageConfig.Env ?? [], userEnv),
        Cmd: config.Cmd && config.Cmd.length > 0 ? config.Cmd : entrypointOverridden ? null : (imageConfig.Cmd ?? null),
        Image: request.imageName,
        Volumes: null,
        WorkingDir: config.WorkingDir || imageConfig.WorkingDir || "",
        Entrypoint: entrypointOverridden ? config.Entrypoint : (imageConfig.Entrypoint ?? null),
        OnBuild: null,
        Labels: { ...(imageConfig.Labels ?? {}), ...(config.Labels ?? {}) },
        ...(healthcheck ? { Healthcheck: healthcheck } : {}),
        ...(config.StopSignal || imageConfig.StopSignal ? { StopSignal: config.StopSignal ?? imageConfig.StopSignal } : {}),
      };
      const storedHost: HostConfig = {
        ...hostConfig,
        NetworkMode: attached?.mode ?? network,
        Memory: hostConfig.Memory ?? 0,
        NanoCpus: hostConfig.NanoCpus ?? 0,
        PidsLimit: hostConfig.PidsLimit ?? null,
        ReadonlyRootfs: hostConfig.ReadonlyRootfs === true,
        AutoRemove: hostConfig.AutoRemove === true,
        RestartPolicy: restart,
      };
      try {
        this.#q.insert.run(
          id,
          name,
          image.id,
          request.imageName,
          JSON.stringify(effective),
          JSON.stringify(storedHost),
          created.stopSignal,
          new Date().toISOString(),
        );
      } catch (error) {
        if ((error as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE")
          throw conflict(
            `Conflict. The container name "/${name}" is already in use. You have to remove (or rename) that container to be able to reuse that name.`,
          );
        throw error;
      }
    } catch (error) {
      await this.attachments?.discard(id);
      await this.#unmount(id);
      await rm(dir, { recursive: true, force: true });
      this.#idMaps.delete(id);
      throw apiErrorFrom(error);
    }
    this.events?.container(this.get(id), "create");
    return this.get(id);
  }

  async #mount(id: string, image: ImageRecord): Promise<void> {
    const target = this.rootfs(id);
    if (await isMountPoint(target)) return;
    const map = this.#idMaps.get(id);
    // Under a user namespace the lowers are the snapshots' copies shifted into its ids.
    const lowers = map
      ? await Promise.all(
          [...image.layers]
            .reverse()
            .map((layer) => this.#shiftedFor(map).path(encodedOf(layer.chainId), this.snapshots.path(layer.chainId))),
        )
      : [...image.layers].reverse().map((layer) => this.snapshots.path(layer.chainId));
    if (lowers.length === 0) {
      const empty = join(this.dir(id), "empty");
      await mkdir(empty, { recursive: true });
      lowers.push(empty);
    }
    const dir = this.dir(id);
    await mountOverlay(lowers, join(dir, "upper"), join(dir, "work"), target).catch((error: Error) => {
      throw new ApiError(500, `mounting the container's rootfs: ${error.message}`);
    });
  }

  async #unmount(id: string): Promise<void> {
    await unmount(this.rootfs(id));
  }

  /** The log of earlier runs (conmon's log goes with the runtime bundle, which each start re-creates). */
  previousLog(id: string): string {
    return join(this.dir(id), "previous.log");
  }

  currentLog(id: string): string {
    return this.runtime.paths(id).log;
  }

  /**
   * `byPolicy`: a restart policy's start, which a user's stop (even one that came just now) cancels;
   * `countRestart`: it counts in RestartCount.
   */
  async start(
    input: string,
    image: () => ImageRecord,
    options: { byPolicy?: boolean; countRestart?: boolean } = {},
  ): Promise<"started" | "already"> {
    const record = this.get(input);
    return this.#locked(record.id, async () => {
      const c = this.get(record.id);
      if (c.status === "running" || (options.byPolicy && c.manuallyStopped)) return "already";
      if (options.countRestart) this.#update(c.id, { restart_count: c.restartCount + 1 });
      // A user's start undoes their earlier stop; a stop arriving during this start still counts.
      else this.#update(c.id, { manually_stopped: 0 });
      if (c.status === "paused") throw conflict("cannot start a paused container, try unpause instead");
      const id = c.id;
      await this.#mount(id, image());
      await this.#deleteBundle(id);
      const spec = JSON.parse(await readFile(join(this.dir(id), "config.json"), "utf8")) as OciSpec;
      // conmon reports the process's pid once `runc create` made it: no `runc state` needed after.
      let pid: number;
      let startedAt = "";
      try {
        // runc joins the network namespace by path as soon as it exists, while CNI makes the
        // interfaces; the process runs (`start`) once both are done.
        let namespaceReady: () => void = () => undefined;
        const namespace = new Promise<void>((resolve) => {
          namespaceReady = resolve;
        });
        const network = this.attachments?.beforeStart(id, namespaceReady) ?? Promise.resolve();
        network.catch(() => undefined); // awaited below; a failure meanwhile must not go unhandled
        await Promise.race([namespace, network]);
        ({ pid } = await this.runtime.create(id, spec, {
          stdin: c.config.OpenStdin === true,
          // Docker keeps stdin open for later attaches unless StdinOnce (what `run -i` asks for); a
          // TTY's input is never closed by a client leaving (moby closes stdin only without a TTY).
          leaveStdinOpen: c.config.StdinOnce !== true || c.config.Tty === true,
        }));
        await network;
        this.#watch(id);
        this.#runStartHooks(id, true);
        startedAt = new Date().toISOString();
        await this.runtime.start(id);
      } catch (error) {
        this.#runStartHooks(id, false);
        this.#unwatch(id);
        const exitCode = error instanceof RuntimeError && error.exitCode !== undefined ? error.exitCode : 128;
        await this.#deleteBundle(id).catch(() => undefined);
        await this.attachments?.stopped(id);
        this.#update(id, { status: "created", exit_code: exitCode, error: (error as Error).message, pid: 0 });
        if (c.hostConfig.AutoRemove) {
          this.#rememberRemoved(id, exitCode);
          void this.#removeNow(id, true).catch((e) => this.log.warn({ err: e, id }, "auto-remove failed"));
        }
        throw apiErrorFrom(error);
      }
      this.#update(id, {
        status: "running",
        pid,
        exit_code: 0,
        oom_killed: 0,
        error: "",
        started_at: startedAt,
        finished_at: null,
      });
      this.events?.container(c, "start");
      // It may have ended before the watch saw it.
      void this.#checkExit(id);
      return "started";
    });
  }

  /**
   * Calls `hook(true)` at the container's next start once its conmon listens on the attach socket and
   * before the process runs — the docker CLI attaches before it starts a container and must not miss
   * its first output — or `hook(false)` when that start fails first. Returns a function that cancels.
   */
  beforeNextStart(id: string, hook: (started: boolean) => void): () => void {
    const hooks = this.#startHooks.get(id) ?? new Set();
    this.#startHooks.set(id, hooks);
    hooks.add(hook);
    return () => {
      hooks.delete(hook);
      if (hooks.size === 0 && this.#startHooks.get(id) === hooks) this.#startHooks.delete(id);
    };
  }

  #runStartHooks(id: string, started: boolean): void {
    const hooks = this.#startHooks.get(id);
    this.#startHooks.delete(id);
    for (const hook of hooks ?? []) hook(started);
  }

  /** Removes the runc container and bundle of an earlier run, keeping its log. */
  async #deleteBundle(id: string): Promise<void> {
    const paths = this.runtime.paths(id);
    if (!existsSync(paths.bundle)) return;
    const log = await readFile(paths.log).catch(() => undefined);
    if (log && log.length > 0) await appendFile(this.previousLog(id), log);
    try {
      await this.runtime.delete(id, { force: true });
    } catch (error) {
      if (!(error instanceof RuntimeError && error.code === "NOT_FOUND")) throw error;
    }
  }

  #watch(id: string): void {
    this.#unwatch(id);
    try {
      const watcher = watch(join(this.runtime.paths(id).bundle, "exits"), () => void this.#checkExit(id));
      watcher.on("error", () => this.#unwatch(id));
      this.#watchers.set(id, watcher);
    } catch {
      // the 1 s poll still sees the exit
    }
  }

  #unwatch(id: string): void {
    this.#watchers.get(id)?.close();
    this.#watchers.delete(id);
  }

  async #pollExits(): Promise<void> {
    for (const c of this.list()) if (c.status === "running" || c.status === "paused") await this.#checkExit(c.id);
  }

  /**
   * Records the exit conmon wrote, once: state, waiters, auto-remove, restart policy. The exit file
   * belongs to the run that was current when it was read: a check that read it, then waited (on the
   * disk, on the network teardown) while a restart policy started the next run, must not record that
   * old code as the new run's exit — the new run would read as exited while running, and its own
   * exit code (and restart) would be lost.
   */
  async #checkExit(id: string): Promise<void> {
    if (this.#finishing.has(id)) return;
    const run = this.#currentRun(id);
    if (run === undefined) return;
    const code = await this.runtime.exitCode(id).catch(() => undefined);
    if (code === undefined || this.#finishing.has(id) || this.#currentRun(id) !== run) return;
    const c = this.get(id);
    this.#finishing.add(id);
    try {
      const paths = this.runtime.paths(id);
      const finished = await stat(paths.exitFile).then(
        (s) => s.mtime.toISOString(),
        () => new Date().toISOString(),
      );
      this.#unwatch(id);
      // Before the state changes: a remove waiting for this exit must find the network torn down.
      await this.attachments?.stopped(id);
      // Nothing else records this run's exit while #finishing holds it, but a remove may have come.
      if (this.#currentRun(id) !== run) return;
      const current = this.find(id);
      const oom = existsSync(paths.oomFile);
      this.#update(id, { status: "exited", pid: 0, exit_code: code, oom_killed: oom ? 1 : 0, finished_at: finished });
      if (oom) this.events?.container(c, "oom");
      const ran = Math.max(0, Math.round((Date.parse(finished) - Date.parse(current?.startedAt ?? finished)) / 1000));
      this.events?.container(c, "die", { exitCode: String(code), execDuration: String(ran) });
      for (const resolve of this.#exitWaiters.get(id)?.splice(0) ?? []) resolve(code);
      if (c.hostConfig.AutoRemove) {
        this.#rememberRemoved(id, code);
        await this.#locked(id, () => this.#removeNow(id, true)).catch((error) => this.log.warn({ err: error, id }, "auto-remove failed"));
      } else {
        const exited = this.get(id);
        if (restartsAfterExit(policyOf(exited), exited)) this.#scheduleRestart(exited);
      }
    } finally {
      this.#finishing.delete(id);
    }
  }

  /** Identifies the container's current run while it runs (pid and start time); undefined otherwise. */
  #currentRun(id: string): string | undefined {
    const c = this.find(id);
    if (!c || (c.status !== "running" && c.status !== "paused")) return undefined;
    return `${c.pid}@${c.startedAt}`;
  }

  #rememberRemoved(id: string, code: number): void {
    this.#removed.set(id, code);
    if (this.#removed.size > 256) this.#removed.delete(this.#removed.keys().next().value as string);
  }

  /** Resolves with the exit code at the next exit, or undefined after `timeoutMs`. */
  #nextExit(id: string, timeoutMs: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      const waiters = this.#exitWaiters.get(id) ?? [];
      this.#exitWaiters.set(id, waiters);
      let timer: NodeJS.Timeout | undefined;
      const done = (code: number | undefined) => {
        if (timer) clearTimeout(timer);
        const index = waiters.indexOf(done as (code: number) => void);
        if (index >= 0) waiters.splice(index, 1);
        resolve(code);
      };
      waiters.push(done as (code: number) => void);
      if (Number.isFinite(timeoutMs)) timer = setTimeout(() => done(undefined), timeoutMs);
      void this.#checkExit(id);
    });
  }

  /** `POST /containers/{id}/wait`. */
  async wait(input: string, condition: WaitCondition = "not-running"): Promise<number> {
    const c = this.find(input);
    if (!c) {
      const code = this.#removed.get(input);
      if (code !== undefined) return code;
      throw notFound(`No such container: ${input}`);
    }
    if (condition === "removed") {
      return new Promise((resolve) => {
        const waiters = this.#removeWaiters.get(c.id) ?? [];
        waiters.push(resolve);
        this.#removeWaiters.set(c.id, waiters);
      });
    }
    if (condition === "not-running" && c.status !== "running" && c.status !== "paused") return c.exitCode;
    const code = await this.#nextExit(c.id, Number.POSITIVE_INFINITY);
    return code ?? this.get(c.id).exitCode;
  }

  /** `docker stop`: the stop signal (image STOPSIGNAL or SIGTERM), then SIGKILL after `timeout` seconds. */
  async stop(input: string, options: { timeout?: number; signal?: string } = {}): Promise<"stopped" | "already"> {
    const record = this.get(input);
    this.#markManuallyStopped(record.id);
    return this.#locked(record.id, async () => {
      const c = this.get(record.id);
      if (c.status !== "running" && c.status !== "paused") return "already";
      const timeout = options.timeout ?? (typeof c.config.StopTimeout === "number" ? c.config.StopTimeout : 10);
      const exited = this.#nextExit(c.id, timeout < 0 ? Number.POSITIVE_INFINITY : timeout * 1000);
      await this.#signal(c, options.signal || c.stopSignal || "SIGTERM");
      if ((await exited) === undefined) {
        const killed = this.#nextExit(c.id, 30_000);
        await this.#signal(c, "SIGKILL");
        if ((await killed) === undefined) throw new ApiError(500, `container ${c.id} did not exit after SIGKILL`);
      }
      this.events?.container(c, "stop");
      return "stopped";
    });
  }

  async #signal(c: ContainerRecord, signal: string): Promise<void> {
    try {
      // Before the signal: the exit it causes (die, and the teardown's events) may be seen before kill returns.
      this.events?.container(c, "kill", { signal: signalNumber(signal) });
      await this.runtime.kill(c.id, signal);
      // A frozen process cannot act on its signal: thaw it (Docker does the same for kill/stop).
      if (this.get(c.id).status === "paused" && /^(SIG)?(KILL|TERM|9|15)$/i.test(signal)) {
        await this.runtime.resume(c.id).catch(() => undefined);
        this.#update(c.id, { status: "running" });
      }
    } catch (error) {
      if (error instanceof RuntimeError && (error.code === "INVALID_STATE" || error.code === "NOT_FOUND")) return;
      throw apiErrorFrom(error);
    }
  }

  /** `docker kill`. */
  async kill(input: string, signal = "SIGKILL"): Promise<void> {
    const c = this.get(input);
    if (c.status !== "running" && c.status !== "paused") throw conflict(`Container ${c.id} is not running`);
    if (!/^(SIG)?[A-Z0-9+-]+$/i.test(signal)) throw badRequest(`Invalid signal: ${signal}`);
    this.#markManuallyStopped(c.id);
    await this.#signal(c, signal);
    if (/^(SIG)?KILL$|^9$/i.test(signal)) await this.#nextExit(c.id, 30_000);
  }

  async restart(input: string, image: () => ImageRecord, options: { timeout?: number; signal?: string } = {}): Promise<void> {
    const c = this.get(input);
    await this.stop(c.id, options);
    await this.start(c.id, image);
    this.events?.container(c, "restart");
  }

  #markManuallyStopped(id: string): void {
    this.#cancelRestart(id);
    this.#update(id, { manually_stopped: 1 });
  }

  /** True while a restart policy's restart is pending (inspect's State.Restarting). */
  restarting(id: string): boolean {
    return this.#restartTimers.has(id) || this.#policyStarts.has(id);
  }

  #cancelRestart(id: string): void {
    clearTimeout(this.#restartTimers.get(id));
    this.#restartTimers.delete(id);
  }

  #scheduleRestart(c: ContainerRecord): void {
    const ran = Date.parse(c.finishedAt ?? "") - Date.parse(c.startedAt ?? "");
    const delay = this.#backoff.next(c.id, Number.isNaN(ran) ? 0 : ran);
    this.#cancelRestart(c.id);
    const timer = setTimeout(() => {
      this.#policyStarts.add(c.id);
      this.#restartTimers.delete(c.id);
      void this.#restartByPolicy(c.id).finally(() => this.#policyStarts.delete(c.id));
    }, delay);
    timer.unref();
    this.#restartTimers.set(c.id, timer);
  }

  /** `daemonStart`: the daemon's own start, where `always` restarts even a container a user stopped. */
  async #restartByPolicy(id: string, daemonStart = false): Promise<void> {
    const c = this.find(id);
    if (!c || c.status === "running" || c.status === "paused" || (c.manuallyStopped && !daemonStart)) return;
    const image = this.images(c.imageId);
    if (!image) {
      this.log.warn({ id, image: c.imageId }, "restart policy: the container's image is gone");
      return;
    }
    try {
      // At daemon start it is as if a user started it again; after an exit it is the policy's restart.
      await this.start(id, () => image, daemonStart ? {} : { byPolicy: true, countRestart: true });
    } catch (error) {
      this.log.warn({ err: error, id }, "restart policy: start failed");
      const failed = this.find(id);
      // A failed start is an exit too: the policy decides again, with a longer wait.
      if (failed && !failed.manuallyStopped && restartsAfterExit(policyOf(failed), { ...failed, exitCode: failed.exitCode || 128 }))
        this.#scheduleRestart(failed);
    }
  }

  async pause(input: string): Promise<void> {
    const record = this.get(input);
    await this.#locked(record.id, async () => {
      const c = this.get(record.id);
      if (c.status === "paused") throw conflict(`Container ${c.id} is already paused`);
      if (c.status !== "running") throw conflict(`Container ${c.id} is not running`);
      await this.runtime.pause(c.id).catch((error) => {
        throw apiErrorFrom(error);
      });
      this.#update(c.id, { status: "paused" });
      this.events?.container(c, "pause");
    });
  }

  async unpause(input: string): Promise<void> {
    const record = this.get(input);
    await this.#locked(record.id, async () => {
      const c = this.get(record.id);
      if (c.status !== "paused") throw conflict(`Container ${c.id} is not paused`);
      await this.runtime.resume(c.id).catch((error) => {
        throw apiErrorFrom(error);
      });
      this.#update(c.id, { status: "running" });
      this.events?.container(c, "unpause");
    });
  }

  /**
   * `docker update`: new cgroup limits, applied at once to a running or paused container, and a new
   * restart policy; both recorded (spec and HostConfig) so inspect shows them and later starts keep them.
   */
  async update(input: string, body: unknown): Promise<void> {
    const record = this.get(input);
    await this.#locked(record.id, async () => {
      const c = this.get(record.id);
      const change = parseUpdate(body, c.hostConfig);
      const specFile = join(this.dir(c.id), "config.json");
      const spec = JSON.parse(await readFile(specFile, "utf8")) as OciSpec;
      const { resources, recorded } = applyUpdate(spec.linux?.resources ?? {}, change.resources, detectCgroupMode());
      if (Object.keys(change.resources).length > 0 && (c.status === "running" || c.status === "paused")) {
        const { memory, cpu, pids, blockIO } = resources;
        await this.runtime.update(c.id, { memory, cpu, pids, blockIO }).catch((error) => {
          // Ended meanwhile: the limits apply at its next start.
          if (error instanceof RuntimeError && (error.code === "INVALID_STATE" || error.code === "NOT_FOUND")) return;
          throw apiErrorFrom(error);
        });
      }
      if (spec.linux) spec.linux.resources = resources;
      await writeFile(specFile, JSON.stringify(spec), { mode: 0o600 });
      const hostConfig: HostConfig = {
        ...c.hostConfig,
        ...recorded,
        ...(change.restartPolicy ? { RestartPolicy: change.restartPolicy } : {}),
      };
      this.#update(c.id, { host_config: JSON.stringify(hostConfig) });
    });
  }

  /** `docker rename`: names are unique; the hostname stays as it was (as in Docker). */
  async rename(input: string, newName: string): Promise<void> {
    const name = newName.replace(/^\//, "");
    if (!validName(name))
      throw badRequest(
        `Invalid container name (${name.slice(0, 300)}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at most 253 characters`,
      );
    const record = this.get(input);
    await this.#locked(record.id, async () => {
      const c = this.get(record.id);
      if (c.name === name) throw badRequest("Renaming a container with the same name as its current name");
      const owner = this.#q.byName.get(name) as Row | undefined;
      const inUse = () =>
        conflict(
          `Conflict. The container name "/${name}" is already in use by container "${owner?.id as string}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
      if (owner) throw inUse();
      try {
        this.#update(c.id, { name });
        this.events?.container({ ...c, name }, "rename", { oldName: `/${c.name}` });
      } catch (error) {
        if ((error as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") throw inUse();
        throw error;
      }
      await this.attachments?.renamed(c.id, name);
    });
  }

  /** `docker container prune`: removes the stopped containers `select` accepts; returns their IDs and freed bytes. */
  async prune(select: (c: ContainerRecord) => boolean): Promise<{ deleted: string[]; reclaimed: number }> {
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const c of this.list()) {
      if (c.status === "running" || c.status === "paused" || this.restarting(c.id) || !select(c)) continue;
      const size = await directorySize(join(this.dir(c.id), "upper"));
      try {
        await this.remove(c.id);
      } catch (error) {
        // Started or removed meanwhile: not this prune's to take.
        if (error instanceof ApiError && (error.status === 404 || error.status === 409)) continue;
        throw error;
      }
      deleted.push(c.id);
      reclaimed += size;
    }
    return { deleted, reclaimed };
  }

  /** `docker rm`: a running container needs `force` (SIGKILL first). Unmounts and removes all its files. */
  async remove(input: string, options: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const record = this.get(input);
    await this.#locked(record.id, async () => {
      const c = this.find(record.id);
      if (!c) return;
      if (c.status === "running" || c.status === "paused") {
        if (!options.force) {
          throw conflict(
            `cannot remove container "/${c.name}": container is ${c.status}: stop the container before removing or force remove`,
          );
        }
        const exited = this.#nextExit(c.id, 30_000);
        await this.#signal(c, "SIGKILL");
        await exited;
      }
      await this.#removeNow(c.id, options.volumes === true);
    });
  }

  /** `anonymousVolumes`: `rm -v` and auto-removal also remove the container's anonymous volumes. */
  async #removeNow(id: string, anonymousVolumes = false): Promise<void> {
    this.#cancelRestart(id);
    this.#backoff.forget(id);
    const holds = this.#holds.get(id);
    if (holds && holds.size > 0) await Promise.race([Promise.allSettled([...holds]), sleep(30_000)]);
    const c = this.find(id);
    this.#unwatch(id);
    // runc's state and the rootfs overlay are independent: both go at once.
    await Promise.all([this.#deleteBundle(id), this.#unmount(id)]);
    await this.attachments?.removed(id, anonymousVolumes);
    if (c) this.#q.remove.run(id);
    await rm(this.dir(id), { recursive: true, force: true });
    this.#idMaps.delete(id);
    if (c) this.events?.container(c, "destroy");
    const code = c?.exitCode ?? this.#removed.get(id) ?? 0;
    this.#rememberRemoved(id, code);
    for (const resolve of this.#removeWaiters.get(id)?.splice(0) ?? []) resolve(code);
    this.#removeWaiters.delete(id);
    this.#exitWaiters.delete(id);
  }

  /** After a daemon restart: containers conmon kept alive are watched again; ended ones get their exit codes. */
  async #recover(): Promise<void> {
    for (const c of this.list()) {
      if (c.status !== "running" && c.status !== "paused") continue;
      try {
        const state = await this.runtime.state(c.id);
        if (state.status === "running" || state.status === "paused") {
          this.#update(c.id, { status: state.status, pid: state.pid });
          this.#watch(c.id);
          continue;
        }
        if (state.exitCode !== undefined) {
          await this.#checkExit(c.id);
          continue;
        }
      } catch (error) {
        if (!(error instanceof RuntimeError && error.code === "NOT_FOUND")) this.log.warn({ err: error, id: c.id }, "container state");
      }
      // Gone without an exit code (the host rebooted): exited, as dockerd marks them.
      const code = (await this.runtime.exitCode(c.id).catch(() => undefined)) ?? 255;
      this.#update(c.id, { status: "exited", pid: 0, exit_code: code, finished_at: new Date().toISOString() });
      if (c.hostConfig.AutoRemove) await this.#removeNow(c.id, true).catch(() => undefined);
    }
    for (const c of this.list()) {
      if (c.status === "running" || c.status === "paused" || this.#restartTimers.has(c.id)) continue;
      if (restartsOnDaemonStart(policyOf(c), c.manuallyStopped)) void this.#restartByPolicy(c.id, true);
    }
  }

  /** inspect's GraphDriver. */
  graphDriver(c: ContainerRecord, image: ImageRecord | undefined) {
    const dir = this.dir(c.id);
    return {
      Name: "overlay2",
      Data: {
        LowerDir: [...(image?.layers ?? [])]
          .reverse()
          .map((l) => this.#lowerDir(c.id, l.chainId))
          .join(":"),
        MergedDir: this.rootfs(c.id),
        UpperDir: join(dir, "upper"),
        WorkDir: join(dir, "work"),
      },
    };
  }

  /** Path and Args: the process the container runs. */
  async command(c: ContainerRecord): Promise<string[]> {
    try {
      const spec = JSON.parse(await readFile(join(this.dir(c.id), "config.json"), "utf8")) as OciSpec;
      return spec.process.args ?? [];
    } catch {
      return [];
    }
  }

  static readonly ZERO_TIME = ZERO_TIME;
}
