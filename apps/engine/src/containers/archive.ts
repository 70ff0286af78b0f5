// `docker cp`'s side in the daemon (swagger "ContainerArchive", "PutContainerArchive"): a path in a
// container as a tar named by its base name, with its stat in a header; a tar extracted into a
// directory of the container. Paths resolve inside the rootfs only (rootfs-path.ts). While a tar is
// extracted into a running container it is frozen, so no process in it can swap a directory for a
// symlink under the extraction; every final component is created or opened without following links.
import { execFile } from "node:child_process";
import { constants, type Stats } from "node:fs";
import { type FileHandle, lchown, link, lstat, lutimes, mkdir, open, readlink, rm, symlink } from "node:fs/promises";
import { join, posix } from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import {
  archivePathComponents,
  decompressLayer,
  END_OF_ARCHIVE,
  encodeHeader,
  LayerError,
  packDirectory,
  padding,
  readTar,
  statHeader,
  type TarHeader,
} from "@minato/layers";
import { ApiError, badRequest, notFound } from "../api/errors.js";
import type { Engine } from "../engine.js";
import type { IdMap } from "../userns.js";
import type { ContainerRecord } from "./manager.js";
import { containerPath, mountedRootfs, type ResolvedPath, resolveInRoot } from "./rootfs-path.js";

const run = promisify(execFile);

/** swagger `ContainerPathStat`, sent base64-encoded in `X-Docker-Container-Path-Stat`. */
export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits, which the docker CLI decodes. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

// Go io/fs FileMode type bits.
const GO_MODE = {
  dir: 2 ** 31,
  symlink: 2 ** 27,
  device: 2 ** 26,
  namedPipe: 2 ** 25,
  socket: 2 ** 24,
  setuid: 2 ** 23,
  setgid: 2 ** 22,
  charDevice: 2 ** 21,
  sticky: 2 ** 20,
};

export function goFileMode(stats: Stats): number {
  let mode = stats.mode & 0o777;
  if (stats.isDirectory()) mode += GO_MODE.dir;
  else if (stats.isSymbolicLink()) mode += GO_MODE.symlink;
  else if (stats.isBlockDevice()) mode += GO_MODE.device;
  else if (stats.isCharacterDevice()) mode += GO_MODE.device + GO_MODE.charDevice;
  else if (stats.isFIFO()) mode += GO_MODE.namedPipe;
  else if (stats.isSocket()) mode += GO_MODE.socket;
  if (stats.mode & 0o4000) mode += GO_MODE.setuid;
  if (stats.mode & 0o2000) mode += GO_MODE.setgid;
  if (stats.mode & 0o1000) mode += GO_MODE.sticky;
  return mode;
}

export function encodePathStat(stat: PathStat): string {
  return Buffer.from(JSON.stringify(stat)).toString("base64");
}

interface Located {
  resolved: ResolvedPath;
  stats: Stats;
  stat: PathStat;
  /** The name the archive's entries start with. */
  rebase: string;
}

/**
 * Finds `path` as moby's ResolvePath does: the parent resolved in the container's root, the last
 * component itself (a symlink is the symlink) unless the path ends in `/` or `/.`.
 */
async function locate(engine: Engine, c: ContainerRecord, path: string): Promise<Located> {
  if (path === "") throw badRequest("Path cannot be empty");
  const root = await mountedRootfs(engine, c);
  const { absolute, trailingDot, trailingSlash } = containerPath(path);
  const resolved = await resolveInRoot(root, absolute, trailingDot || trailingSlash);
  const stats = await lstat(resolved.host).catch(() => undefined);
  if (!stats) throw notFound(`Could not find the file ${path} in container ${c.name}`);
  if (trailingSlash && !stats.isDirectory()) throw badRequest(`not a directory: ${path}`);
  const name = trailingDot ? "." : absolute === "/" ? "/" : posix.basename(absolute);
  let linkTarget = "";
  if (stats.isSymbolicLink()) linkTarget = (await resolveInRoot(root, absolute, true)).container;
  return {
    resolved,
    stats,
    stat: { name, size: stats.size, mode: goFileMode(stats), mtime: stats.mtime.toISOString(), linkTarget },
    rebase: name === "/" ? "." : name,
  };
}

/** `HEAD /containers/{id}/archive`. */
export async function statContainerPath(engine: Engine, c: ContainerRecord, path: string): Promise<PathStat> {
  return (await locate(engine, c, path)).stat;
}

// glibc's gnu_dev_major/gnu_dev_minor, for the 32-bit device numbers Node's Stats carries.
const devMajor = (rdev: number) => (rdev >>> 8) & 0xfff;
const devMinor = (rdev: number) => (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);

/** Exactly `size` bytes of an open file (zeros if it shrank, cut if it grew), so the tar stays well formed. */
async function* fileContent(handle: FileHandle, size: number): AsyncGenerator<Buffer> {
  let remaining = size;
  while (remaining > 0) {
    const chunk = Buffer.alloc(Math.min(remaining, 1024 * 1024));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) {
      yield chunk;
    } else {
      yield chunk.subarray(0, bytesRead);
    }
    remaining -= bytesRead === 0 ? chunk.length : bytesRead;
  }
}

async function* pathArchive(located: Located, idMap?: IdMap): AsyncGenerator<Buffer> {
  const { resolved, stats, rebase } = located;
  // Under --userns-remap the files belong to shifted host ids: the archive shows the container's.
  const mapOwner = idMap ? (uid: number, gid: number) => idMap.containerOwner(uid, gid) : undefined;
  const owner = mapOwner ? mapOwner(stats.uid, stats.gid) : {};
  if (stats.isDirectory()) {
    yield encodeHeader(statHeader(rebase, stats, { type: "directory", ...owner }));
    for await (const { header, body } of readTar(packDirectory(resolved.host, mapOwner ? { mapOwner } : {}))) {
      const renamed: TarHeader = { ...header, name: `${rebase}/${header.name}` };
      if (header.type === "link") renamed.linkname = `${rebase}/${header.linkname}`;
      yield encodeHeader(renamed);
      for await (const chunk of body) yield Buffer.from(chunk);
      yield padding(header.size);
    }
  } else if (stats.isFile()) {
    const handle = await open(resolved.host, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      yield encodeHeader(statHeader(rebase, stats, { size: stats.size, ...owner }));
      yield* fileContent(handle, stats.size);
      yield padding(stats.size);
    } finally {
      await handle.close();
    }
  } else if (stats.isSymbolicLink()) {
    yield encodeHeader(statHeader(rebase, stats, { type: "symlink", linkname: await readlink(resolved.host), ...owner }));
  } else if (stats.isFIFO()) {
    yield encodeHeader(statHeader(rebase, stats, { type: "fifo", ...owner }));
  } else if (stats.isCharacterDevice() || stats.isBlockDevice()) {
    const type = stats.isCharacterDevice() ? "char" : "block";
    yield encodeHeader(statHeader(rebase, stats, { type, devmajor: devMajor(stats.rdev), devminor: devMinor(stats.rdev), ...owner }));
  }
  yield END_OF_ARCHIVE;
}

/** `GET /containers/{id}/archive`: the stat and the tar of `path`. */
export async function archiveContainerPath(
  engine: Engine,
  c: ContainerRecord,
  path: string,
): Promise<{ stat: PathStat; tar: AsyncGenerator<Buffer> }> {
  const located = await locate(engine, c, path);
  return { stat: located.stat, tar: pathArchive(located, engine.containers.idMapOf(c)) };
}

export interface ExtractOptions {
  /** The container's user namespace mapping (`--userns-remap`): archive owners are container ids. */
  idMap?: IdMap;
  /** Refuse to replace a directory with a non-directory or the reverse. */
  noOverwriteDirNonDir: boolean;
  /** Keep the archive's owners; otherwise entries belong to root (docker cp without -a). */
  copyUIDGID: boolean;
}

/** Runs `work` with the container frozen when it is running (a paused one stays paused). */
export async function frozen<T>(engine: Engine, c: ContainerRecord, work: () => Promise<T>): Promise<T> {
  let paused = false;
  if (engine.containers.get(c.id).status === "running") {
    paused = await engine.containers.pause(c.id).then(
      () => true,
      () => false,
    );
  }
  try {
    return await work();
  } finally {
    if (paused) await engine.containers.unpause(c.id).catch(() => undefined);
  }
}

/** `PUT /containers/{id}/archive`: extracts a tar (plain, gzip or zstd) into the directory `path`. */
export async function extractIntoContainer(
  engine: Engine,
  c: ContainerRecord,
  path: string,
  body: Readable,
  options: ExtractOptions,
): Promise<void> {
  if (path === "") throw badRequest("Path cannot be empty");
  if (c.hostConfig.ReadonlyRootfs) throw new ApiError(403, "container rootfs is marked read-only");
  const root = await mountedRootfs(engine, c);
  await frozen(engine, c, async () => {
    // The last component is followed too: extracting to a symlink to a directory is allowed.
    const dest = await resolveInRoot(root, containerPath(path).absolute, true);
    const stats = await lstat(dest.host).catch(() => undefined);
    if (!stats) throw notFound(`Could not find the file ${path} in container ${c.name}`);
    if (!stats.isDirectory()) throw badRequest("extraction point is not a directory");
    const extractor = new Extractor(root, dest, options);
    try {
      const { tar } = await decompressLayer(body);
      for await (const { header, body: content } of readTar(tar)) await extractor.entry(header, content);
      await extractor.finish();
    } catch (error) {
      if (error instanceof LayerError) throw badRequest(error.message);
      throw error;
    }
  });
}

const O_CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const O_OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

class Extractor {
  /** Directories made or seen, by container path, so deep archives do not resolve each parent again. */
  readonly #dirs = new Map<string, string>();
  readonly #dirTimes = new Map<string, number>();

  constructor(
    readonly root: string,
    readonly dest: ResolvedPath,
    readonly options: ExtractOptions,
  ) {}

  #owner(header: TarHeader): [number, number] {
    const [uid, gid] = this.options.copyUIDGID ? [header.uid, header.gid] : [0, 0];
    if (!this.options.idMap) return [uid, gid];
    const host = this.options.idMap.hostOwner(uid, gid);
    return [host.uid, host.gid];
  }

  /** The host path of a directory of the container, made (like mkdir -p) when missing. */
  async #directory(containerDir: string, name: string): Promise<string> {
    const known = this.#dirs.get(containerDir);
    if (known) return known;
    const parts = containerDir.split("/").filter(Boolean);
    let host = this.root;
    for (let i = 1; i <= parts.length; i++) {
      const resolved = await resolveInRoot(this.root, `/${parts.slice(0, i).join("/")}`, true);
      const stats = await lstat(resolved.host).catch(() => undefined);
      if (!stats) {
        await mkdir(resolved.host, { mode: 0o755 });
        const root = this.options.idMap?.root;
        if (root) await lchown(resolved.host, root.uid, root.gid);
      } else if (!stats.isDirectory()) throw badRequest(`cannot extract ${JSON.stringify(name)}: ${resolved.container} is not a directory`);
      host = resolved.host;
    }
    this.#dirs.set(containerDir, host);
    return host;
  }

  async entry(header: TarHeader, content: AsyncIterable<Buffer>): Promise<void> {
    const parts = archivePathComponents(header.name);
    if (parts.length === 0) return; // the archive's own root: the destination keeps its metadata
    const base = parts.at(-1) as string;
    const containerTarget = posix.join(this.dest.container, ...parts);
    const parent = await this.#directory(posix.dirname(containerTarget), header.name);
    const target = join(parent, base);
    const existing = await lstat(target).catch(() => undefined);
    if (existing) {
      if (existing.isDirectory() && header.type === "directory") {
        await this.#directoryAttributes(target, containerTarget, header);
        return;
      }
      if (this.options.noOverwriteDirNonDir) {
        if (existing.isDirectory())
          throw badRequest(
            `cannot overwrite directory ${JSON.stringify(containerTarget)} with non-directory ${JSON.stringify(header.name)}`,
          );
        if (header.type === "directory")
          throw badRequest(
            `cannot overwrite non-directory ${JSON.stringify(containerTarget)} with directory ${JSON.stringify(header.name)}`,
          );
      }
      await rm(target, { recursive: true, force: true });
      // What was resolved through the removed entry may now lead elsewhere.
      this.#dirs.clear();
    }
    const [uid, gid] = this.#owner(header);
    switch (header.type) {
      case "directory":
        await mkdir(target, { mode: 0o700 });
        await this.#directoryAttributes(target, containerTarget, header);
        return;
      case "file": {
        const handle = await open(target, O_CREATE_FILE, 0o600);
        try {
          for await (const chunk of content) await handle.write(chunk);
          await handle.chown(uid, gid);
          await handle.chmod(header.mode & 0o7777);
          await handle.utimes(header.mtime, header.mtime);
        } finally {
          await handle.close();
        }
        return;
      }
      case "symlink":
        // Stored as written: the container reads it in its own root, and this daemon only ever resolves it in-root.
        await symlink(header.linkname, target);
        await lchown(target, uid, gid);
        await lutimes(target, header.mtime, header.mtime);
        this.#dirs.clear();
        return;
      case "link": {
        const linkParts = archivePathComponents(header.linkname, `hard link ${JSON.stringify(header.name)} to`);
        const source = await resolveInRoot(this.root, posix.join(this.dest.container, ...linkParts), false);
        const sourceStats = await lstat(source.host).catch(() => undefined);
        if (!sourceStats || sourceStats.isDirectory())
          throw badRequest(
            `hard link ${JSON.stringify(header.name)} -> ${JSON.stringify(header.linkname)}: no such file in the destination`,
          );
        await link(source.host, target);
        return;
      }
      case "char":
      case "block":
      case "fifo": {
        const kind =
          header.type === "char"
            ? ["c", String(header.devmajor), String(header.devminor)]
            : header.type === "block"
              ? ["b", String(header.devmajor), String(header.devminor)]
              : ["p"];
        await run("mknod", ["-m", (header.mode & 0o7777).toString(8), target, ...kind]);
        await lchown(target, uid, gid);
        await lutimes(target, header.mtime, header.mtime);
        return;
      }
    }
  }

  async #directoryAttributes(target: string, containerTarget: string, header: TarHeader): Promise<void> {
    const [uid, gid] = this.#owner(header);
    const handle = await open(target, O_OPEN_DIR);
    try {
      await handle.chown(uid, gid);
      await handle.chmod(header.mode & 0o7777);
    } finally {
      await handle.close();
    }
    this.#dirTimes.set(containerTarget, header.mtime);
  }

  /** Directory mtimes last, deepest first, once nothing more is created in them. */
  async finish(): Promise<void> {
    const depth = (path: string) => path.split("/").length;
    for (const [containerTarget, mtime] of [...this.#dirTimes].sort(([a], [b]) => depth(b) - depth(a))) {
      const resolved = await resolveInRoot(this.root, containerTarget, false);
      const handle = await open(resolved.host, O_OPEN_DIR).catch(() => undefined);
      if (!handle) continue;
      try {
        await handle.utimes(mtime, mtime);
      } finally {
        await handle.close();
      }
    }
  }
}
