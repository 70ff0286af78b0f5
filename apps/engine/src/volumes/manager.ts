// Volumes with the local driver: a directory <data-root>/volumes/<name>/_data per volume, metadata
// in SQLite, and the mounts each container has (binds, volumes, tmpfs) so a volume in use is never
// removed and inspect can show them.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chown, mkdir, readdir, realpath, rm, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { badRequest, conflict, notFound } from "../api/errors.js";
import type { EngineDatabase } from "../db.js";
import type { EventLog } from "../events/log.js";
import { makeTraversable } from "../userns.js";

const run = promisify(execFile);

export interface VolumeRecord {
  name: string;
  driver: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  anonymous: boolean;
  created: string;
}

/** A container's mount as it is kept (and shown as inspect's `Mounts`). */
export interface ContainerMount {
  type: "bind" | "volume" | "tmpfs";
  /** The volume's name (volumes only). */
  name?: string;
  /** Host path: the bind's source or the volume's _data directory ("" for tmpfs). */
  source: string;
  destination: string;
  rw: boolean;
  /** The mode string as given (`ro`, `z`, …), as Docker shows it. */
  mode: string;
  propagation: string;
  /** tmpfs options (size=, mode=). */
  options?: string[];
}

type Row = Record<string, unknown>;

function toVolume(row: Row): VolumeRecord {
  return {
    name: row.name as string,
    driver: row.driver as string,
    labels: JSON.parse(row.labels as string) as Record<string, string>,
    options: JSON.parse(row.options as string) as Record<string, string>,
    anonymous: row.anonymous === 1,
    created: row.created as string,
  };
}

function toMount(row: Row): ContainerMount {
  return {
    type: row.type as ContainerMount["type"],
    ...(row.name ? { name: row.name as string } : {}),
    source: row.source as string,
    destination: row.destination as string,
    rw: row.rw === 1,
    mode: row.mode as string,
    propagation: row.propagation as string,
    ...(row.options ? { options: JSON.parse(row.options as string) as string[] } : {}),
  };
}

/** Docker's volume name rule: at least two characters of [a-zA-Z0-9_.-], starting alphanumeric. */
export const VALID_VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export class VolumeManager {
  readonly root: string;
  /** Where create/destroy are published (set by the engine). */
  events: EventLog | undefined;
  readonly #q;
  /** The owner of new volumes' data (the remapped root under --userns-remap). */
  newOwner?: { uid: number; gid: number };

  constructor(
    dataRoot: string,
    private readonly db: EngineDatabase,
  ) {
    this.root = join(dataRoot, "volumes");
    this.#q = {
      all: db.prepare("SELECT * FROM volumes ORDER BY name"),
      byName: db.prepare("SELECT * FROM volumes WHERE name = ?"),
      insert: db.prepare("INSERT INTO volumes (name, driver, labels, options, anonymous, created) VALUES (?, ?, ?, ?, ?, ?)"),
      remove: db.prepare("DELETE FROM volumes WHERE name = ?"),
      users: db.prepare("SELECT DISTINCT container_id FROM container_mounts WHERE name = ?"),
      mountsOf: db.prepare("SELECT * FROM container_mounts WHERE container_id = ? ORDER BY destination"),
      insertMount: db.prepare(
        `INSERT INTO container_mounts (container_id, destination, type, name, source, mode, rw, propagation, options)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      deleteMounts: db.prepare("DELETE FROM container_mounts WHERE container_id = ?"),
    };
  }

  dataDir(name: string): string {
    return join(this.root, name, "_data");
  }

  list(): VolumeRecord[] {
    return (this.#q.all.all() as Row[]).map(toVolume);
  }

  find(name: string): VolumeRecord | undefined {
    const row = this.#q.byName.get(name) as Row | undefined;
    return row ? toVolume(row) : undefined;
  }

  get(name: string): VolumeRecord {
    const found = this.find(name);
    if (!found) throw notFound(`get ${name}: no such volume`);
    return found;
  }

  /** IDs of the containers that mount the volume. */
  users(name: string): string[] {
    return (this.#q.users.all(name) as Row[]).map((r) => r.container_id as string);
  }

  /**
   * `POST /volumes/create`: a new volume, or the existing one of that name (as Docker answers a
   * create of an existing local volume). Without a name: an anonymous volume with a random one.
   */
  async create(
    request: {
      name?: string;
      driver?: string;
      labels?: Record<string, string>;
      options?: Record<string, string>;
      anonymous?: boolean;
    } = {},
  ): Promise<{ volume: VolumeRecord; created: boolean }> {
    const name = request.name || randomBytes(32).toString("hex");
    if (!VALID_VOLUME_NAME.test(name))
      throw badRequest(
        `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
      );
    const driver = request.driver || "local";
    if (driver !== "local") throw notFound(`plugin "${driver}" not found`);
    const options = request.options ?? {};
    for (const key of Object.keys(options)) if (!["type", "device", "o"].includes(key)) throw badRequest(`invalid option: "${key}"`);
    if (Object.keys(options).length > 0)
      throw badRequest("local volume options (type, device, o) are not supported: create the volume without them");
    const existing = this.find(name);
    if (existing) return { volume: existing, created: false };
    await mkdir(this.dataDir(name), { recursive: true, mode: 0o755 });
    // Under --userns-remap a new volume belongs to the containers' root, as dockerd makes it.
    if (this.newOwner) {
      await makeTraversable(this.root);
      await makeTraversable(join(this.root, name));
      await chown(this.dataDir(name), this.newOwner.uid, this.newOwner.gid);
    }
    const anonymous = request.anonymous === true || !request.name;
    this.#q.insert.run(
      name,
      driver,
      JSON.stringify(request.labels ?? {}),
      JSON.stringify(options),
      anonymous ? 1 : 0,
      new Date().toISOString(),
    );
    this.events?.publish("volume", "create", name, { driver });
    return { volume: this.get(name), created: true };
  }

  /** `DELETE /volumes/{name}`: 409 while a container mounts it; `force` only ignores a missing volume. */
  async remove(name: string, options: { force?: boolean } = {}): Promise<void> {
    const volume = this.find(name);
    if (!volume) {
      if (options.force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    const users = this.users(name);
    if (users.length > 0) throw conflict(`remove ${name}: volume is in use - [${users.join(", ")}]`);
    this.#q.remove.run(name);
    await rm(join(this.root, name), { recursive: true, force: true });
    this.events?.publish("volume", "destroy", name, { driver: volume.driver });
  }

  /** `POST /volumes/prune`: unused volumes; only anonymous ones unless `all` (Docker ≥ 23). */
  async prune(options: { all?: boolean; keep?: (v: VolumeRecord) => boolean } = {}): Promise<{ names: string[]; reclaimed: number }> {
    const names: string[] = [];
    let reclaimed = 0;
    for (const volume of this.list()) {
      if (!options.all && !volume.anonymous) continue;
      if (options.keep?.(volume) || this.users(volume.name).length > 0) continue;
      reclaimed += await directoryBytes(this.dataDir(volume.name));
      await this.remove(volume.name);
      names.push(volume.name);
    }
    return { names, reclaimed };
  }

  mountsOf(containerId: string): ContainerMount[] {
    return (this.#q.mountsOf.all(containerId) as Row[]).map(toMount);
  }

  record(containerId: string, mounts: ContainerMount[]): void {
    this.db.transaction(() => {
      for (const m of mounts)
        this.#q.insertMount.run(
          containerId,
          m.destination,
          m.type,
          m.name ?? null,
          m.source,
          m.mode,
          m.rw ? 1 : 0,
          m.propagation,
          m.options ? JSON.stringify(m.options) : null,
        );
    })();
  }

  /** When a container goes: its mount records, and with `anonymous` its anonymous volumes no one else uses. */
  async release(containerId: string, options: { anonymous: boolean }): Promise<void> {
    const mounts = this.mountsOf(containerId);
    this.#q.deleteMounts.run(containerId);
    if (!options.anonymous) return;
    for (const m of mounts) {
      if (m.type !== "volume" || !m.name) continue;
      const volume = this.find(m.name);
      if (volume?.anonymous && this.users(m.name).length === 0) await this.remove(m.name).catch(() => undefined);
    }
  }

  /**
   * Docker's copy-up: a new, empty volume mounted over a directory of the image starts with that
   * directory's content (owners, modes, links kept). Paths that leave the rootfs through symlinks are
   * left alone.
   */
  async seed(name: string, rootfs: string, destination: string): Promise<void> {
    const target = this.dataDir(name);
    if ((await readdir(target)).length > 0) return;
    let source: string;
    try {
      source = await realpath(join(rootfs, destination));
    } catch {
      return;
    }
    const inside = relative(rootfs, source);
    if (inside.startsWith("..") || !(await stat(source)).isDirectory()) return;
    if ((await readdir(source)).length === 0) return;
    await run("cp", ["-a", `${source}/.`, `${target}/`]);
  }

  /** inspect's `Mounts`. */
  inspectMounts(containerId: string) {
    return this.mountsOf(containerId).map((m) => ({
      Type: m.type,
      ...(m.name ? { Name: m.name } : {}),
      Source: m.source,
      Destination: m.destination,
      ...(m.type === "volume" ? { Driver: "local" } : {}),
      Mode: m.mode,
      RW: m.rw,
      Propagation: m.propagation,
    }));
  }
}

/** Bytes under a directory (for prune's SpaceReclaimed). */
async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    total += await stat(join(entry.parentPath ?? dir, entry.name)).then(
      (s) => s.size,
      () => 0,
    );
  }
  return total;
}
