// Container paths → host paths, confined to the container's root filesystem. Symlinks met on the
// way (absolute or relative) are resolved as if the rootfs were `/`, and `..` never climbs above it,
// as a process chrooted into the container would see them — so no path the container controls can
// point the daemon at a host file. The walk uses lstat/readlink only; a running container could still
// swap a directory for a symlink between this walk and the caller's use of the result, so callers
// also open final components with O_NOFOLLOW.
import { lstat, mkdir, readlink } from "node:fs/promises";
import { join, posix } from "node:path";
import type { Digest } from "@minato/oci";
import { ApiError } from "../api/errors.js";
import type { Engine } from "../engine.js";
import { isMountPoint, mountOverlay } from "../overlay.js";
import type { ContainerRecord } from "./manager.js";

/** Linux's own limit on symlinks followed while resolving one path (MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

export interface ResolvedPath {
  /** The path on the host, inside `root`. */
  host: string;
  /** The same path as the container sees it, absolute and clean. */
  container: string;
}

/**
 * Resolves `path` (taken as absolute in the container) under `root`. Every component but the last is
 * followed when it is a symlink; the last one too when `followLast`. Components that do not exist
 * are kept as written, so the result may name something missing.
 */
export async function resolveInRoot(root: string, path: string, followLast: boolean): Promise<ResolvedPath> {
  const pending = path.split("/").filter((part) => part !== "" && part !== ".");
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    if (pending.length === 0 && !followLast) {
      resolved.push(part);
      break;
    }
    const host = join(root, ...resolved, part);
    const stats = await lstat(host).catch(() => undefined);
    if (stats?.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new ApiError(400, `too many levels of symbolic links in ${path}`);
      const target = await readlink(host);
      if (target.startsWith("/")) resolved.length = 0;
      pending.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
      continue;
    }
    resolved.push(part);
  }
  return { host: resolved.length === 0 ? root : join(root, ...resolved), container: `/${resolved.join("/")}` };
}

/** The container path a request names, with what its spelling says: a trailing `/.` or `/`. */
export function containerPath(path: string): { absolute: string; trailingDot: boolean; trailingSlash: boolean } {
  const trailingDot = path === "." || path.endsWith("/.");
  const trailingSlash = !trailingDot && path.endsWith("/");
  return { absolute: posix.join("/", path), trailingDot, trailingSlash };
}

/**
 * The container's rootfs, mounted: it is from create to rm, but not after a host reboot, so a
 * stopped container's files can still be read and written then.
 */
export async function mountedRootfs(engine: Engine, c: ContainerRecord): Promise<string> {
  const manager = engine.containers;
  const target = manager.rootfs(c.id);
  if (await isMountPoint(target)) return target;
  const image = engine.images.get(c.imageId as Digest);
  if (!image) throw new ApiError(500, `the image ${c.imageId} of container ${c.id} is gone: its rootfs cannot be mounted`);
  const { Data } = manager.graphDriver(c, image);
  const lowers = Data.LowerDir ? Data.LowerDir.split(":") : [join(manager.dir(c.id), "empty")];
  if (!Data.LowerDir) await mkdir(lowers[0] as string, { recursive: true });
  await mountOverlay(lowers, Data.UpperDir, Data.WorkDir, target).catch((error: Error) => {
    throw new ApiError(500, `mounting the container's rootfs: ${error.message}`);
  });
  return target;
}
