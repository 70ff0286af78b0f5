// `minatod --userns-remap`, as dockerd has it: containers run in a user namespace whose root is an
// unprivileged host id taken from the subordinate ranges of a user (/etc/subuid, /etc/subgid;
// `default` creates and uses `dockremap`). Image snapshots are made usable for those ids with a
// per-mapping copy whose ownership is shifted (Docker's remapped graph root); what crosses the
// boundary (`cp`, commit, export) is shifted back.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, lchown, lstat, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { ConfigError } from "./config.js";

const execFileAsync = promisify(execFile);

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** The remapping of a daemon: uid and gid maps, container id 0 first. */
export class IdMap {
  constructor(
    readonly uids: IdMapping[],
    readonly gids: IdMapping[],
  ) {}

  /** Container root on the host. */
  get root(): { uid: number; gid: number } {
    return { uid: this.toHost(0, this.uids), gid: this.toHost(0, this.gids) };
  }

  /** The directory name of this mapping's shifted snapshots (dockerd: `<uid>.<gid>`). */
  get key(): string {
    return `${this.root.uid}.${this.root.gid}`;
  }

  private toHost(id: number, map: IdMapping[]): number {
    for (const m of map) if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
    // Outside the mapping: the overflow id (nobody), as the kernel shows unmapped ids.
    return 65534;
  }

  private toContainer(id: number, map: IdMapping[]): number {
    for (const m of map) if (id >= m.hostID && id < m.hostID + m.size) return m.containerID + (id - m.hostID);
    return 65534;
  }

  hostOwner(uid: number, gid: number): { uid: number; gid: number } {
    return { uid: this.toHost(uid, this.uids), gid: this.toHost(gid, this.gids) };
  }

  containerOwner(uid: number, gid: number): { uid: number; gid: number } {
    return { uid: this.toContainer(uid, this.uids), gid: this.toContainer(gid, this.gids) };
  }
}

export class UsernsError extends ConfigError {}

interface SubRange {
  start: number;
  count: number;
}

function subordinateRanges(file: string, name: string, id: number): SubRange[] {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const ranges: SubRange[] = [];
  for (const line of text.split("\n")) {
    const [owner, start, count] = line.trim().split(":");
    if (!owner || start === undefined || count === undefined) continue;
    if (owner !== name && owner !== String(id)) continue;
    ranges.push({ start: Number(start), count: Number(count) });
  }
  return ranges.filter((r) => Number.isSafeInteger(r.start) && Number.isSafeInteger(r.count) && r.count > 0);
}

function lookup(database: "passwd" | "group", key: string): string[] | undefined {
  try {
    return execFileSync("getent", [database, key], { encoding: "utf8" }).trim().split(":");
  } catch {
    return undefined;
  }
}

function toMappings(ranges: SubRange[]): IdMapping[] {
  let next = 0;
  return ranges.map((r) => {
    const m = { containerID: next, hostID: r.start, size: r.count };
    next += r.count;
    return m;
  });
}

const DEFAULT_USER = "dockremap";
const DEFAULT_RANGE = 65536;

/** The first free subordinate range at or above 100000 (what dockerd picks for dockremap). */
function freeRange(): number {
  let start = 100_000;
  for (const file of ["/etc/subuid", "/etc/subgid"]) {
    const text = existsSync(file) ? readFileSync(file, "utf8") : "";
    for (const line of text.split("\n")) {
      const [, s, c] = line.trim().split(":");
      if (s === undefined || c === undefined) continue;
      const end = Number(s) + Number(c);
      if (Number.isSafeInteger(end) && end > start) start = end;
    }
  }
  return start;
}

/** Creates `dockremap` with a subordinate range of 65536 ids, as dockerd does for `default`. */
function ensureDefaultUser(): void {
  if (!lookup("passwd", DEFAULT_USER)) {
    execFileSync("useradd", ["--system", "--no-create-home", "--shell", "/bin/false", DEFAULT_USER], { stdio: "pipe" });
  }
  const uid = Number(lookup("passwd", DEFAULT_USER)?.[2]);
  if (subordinateRanges("/etc/subuid", DEFAULT_USER, uid).length > 0 && subordinateRanges("/etc/subgid", DEFAULT_USER, uid).length > 0)
    return;
  const start = freeRange();
  const range = `${start}-${start + DEFAULT_RANGE - 1}`;
  execFileSync("usermod", ["--add-subuids", range, "--add-subgids", range, DEFAULT_USER], { stdio: "pipe" });
}

/** `default` or `USER[:GROUP]` (names or ids) → the id map, from /etc/subuid and /etc/subgid. */
export function resolveRemap(spec: string): IdMap {
  if (spec === "") throw new UsernsError("--userns-remap needs default or USER[:GROUP]");
  if (spec === "default") ensureDefaultUser();
  const [userPart = "", groupPart] = spec === "default" ? [DEFAULT_USER] : spec.split(":");
  const user = lookup("passwd", userPart);
  if (!user) throw new UsernsError(`--userns-remap: no such user: ${userPart}`);
  const userName = user[0] as string;
  const uid = Number(user[2]);
  const group = lookup("group", groupPart ?? userName) ?? (groupPart === undefined ? [userName, "x", user[3] ?? ""] : undefined);
  if (!group) throw new UsernsError(`--userns-remap: no such group: ${groupPart}`);
  const uidRanges = subordinateRanges("/etc/subuid", userName, uid);
  const gidRanges = subordinateRanges("/etc/subgid", group[0] as string, Number(group[2]));
  if (uidRanges.length === 0) throw new UsernsError(`--userns-remap: no subordinate uid range for ${userName} in /etc/subuid`);
  if (gidRanges.length === 0) throw new UsernsError(`--userns-remap: no subordinate gid range for ${group[0]} in /etc/subgid`);
  // The first range of each: a network namespace's owner is made with `unshare --map-users`, which takes one.
  return new IdMap(toMappings(uidRanges.slice(0, 1)), toMappings(gidRanges.slice(0, 1)));
}

/**
 * Every directory from `/` to `path` must let the remapped root through (o+x), or runc, inside the
 * user namespace, cannot reach the container's rootfs — refused as dockerd does.
 */
export async function checkTraversable(path: string): Promise<void> {
  for (let dir = path; ; dir = dirname(dir)) {
    const s = await stat(dir).catch(() => undefined);
    if (s && (s.mode & 0o001) === 0)
      throw new UsernsError(
        `--userns-remap: ${dir} (mode ${(s.mode & 0o777).toString(8)}) keeps the remapped root out; allow o+x on it (chmod o+x ${dir})`,
      );
    if (dir === dirname(dir)) return;
  }
}

/** Makes a directory minatod owns traversable by the remapped root (0711). */
export async function makeTraversable(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const s = await stat(dir);
  if ((s.mode & 0o001) === 0) await chmod(dir, (s.mode & 0o777) | 0o011);
}

/** Shifts the owner of every entry under `dir` (itself included) into the mapping; modes are kept (chown clears setuid). */
export async function shiftTree(dir: string, map: IdMap): Promise<void> {
  const visit = async (path: string): Promise<void> => {
    const s = await lstat(path);
    const owner = map.hostOwner(s.uid, s.gid);
    await lchown(path, owner.uid, owner.gid);
    if (!s.isSymbolicLink() && (s.mode & 0o6000) !== 0) await chmod(path, s.mode & 0o7777);
    if (s.isDirectory()) for (const name of await readdir(path)) await visit(join(path, name));
  };
  await visit(dir);
}

/** Per-mapping copies of snapshots with shifted ownership: `<root>/<uid>.<gid>/<chain hex>`. */
export class ShiftedSnapshots {
  readonly #inflight = new Map<string, Promise<string>>();

  constructor(
    readonly root: string,
    readonly map: IdMap,
  ) {}

  /** Where the shifted copy of a snapshot is (or will be). */
  pathOf(key: string): string {
    return join(this.root, this.map.key, key);
  }

  /** The shifted copy of the snapshot at `source` (made once; a crash leaves only a tmp- dir). */
  async path(key: string, source: string): Promise<string> {
    const target = this.pathOf(key);
    if (existsSync(target)) return target;
    const running = this.#inflight.get(target);
    if (running) return running;
    const work = (async () => {
      const tmp = join(this.root, this.map.key, `tmp-${key}-${process.pid}-${Date.now()}`);
      await mkdir(dirname(tmp), { recursive: true });
      try {
        // GNU cp -a keeps owners, modes, times, device nodes and xattrs — overlay whiteouts and opaque
        // directories included (trusted.overlay.*, as root).
        await execFileAsync("cp", ["-a", "--reflink=auto", "--no-target-directory", source, tmp]);
        await shiftTree(tmp, this.map);
        await rename(tmp, target);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
      return target;
    })().finally(() => this.#inflight.delete(target));
    this.#inflight.set(target, work);
    return work;
  }

  /** Removes every mapping's shifted copy of a snapshot (when the snapshot itself goes). */
  static async remove(root: string, key: string): Promise<void> {
    for (const dir of await readdir(root).catch(() => [] as string[])) await rm(join(root, dir, key), { recursive: true, force: true });
  }

  /** Removes the leftovers of copies a crash interrupted. */
  static async cleanup(root: string): Promise<void> {
    for (const dir of await readdir(root).catch(() => [] as string[]))
      for (const name of await readdir(join(root, dir)).catch(() => [] as string[]))
        if (name.startsWith("tmp-")) await rm(join(root, dir, name), { recursive: true, force: true });
  }
}
