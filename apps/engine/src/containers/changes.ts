// A container's changes to its image: its overlay upper dir, diffed into a layer tar
// (@minato/layers diffDirectory) without the runtime's own traces. The rootfs is mounted without an
// init layer, so when the image lacks a mount point the runtime needs (/proc, /sys, /dev, the
// generated /etc files, --tmpfs targets), runc creates it — empty — in the upper dir, with the
// parent directories it copied up for it. Docker keeps those in its init layer, under the container's
// own layer; here they are left out of `docker diff` and `docker commit` instead.
import type { Stats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join, posix } from "node:path";
import {
  diffDirectory,
  END_OF_ARCHIVE,
  encodeHeader,
  OPAQUE_WHITEOUT,
  padding,
  readTar,
  type TarHeader,
  WHITEOUT_PREFIX,
} from "@minato/layers";
import type { Digest } from "@minato/oci";
import type { Engine } from "../engine.js";
import type { IdMap } from "../userns.js";
import type { ContainerRecord } from "./manager.js";

/** Mount points every container gets (runtime defaults and the generated /etc files). */
const RUNTIME_MOUNT_POINTS = ["proc", "sys", "dev", "etc/hosts", "etc/hostname", "etc/resolv.conf"];

export interface ContainerLayers {
  upper: string;
  /** The image's snapshot dirs, top-down. */
  lowers: string[];
  /** Relative paths the runtime mounts over. */
  mountPoints: string[];
  /** The container's user namespace mapping: its layer is written with the container's ids. */
  idMap?: IdMap;
}

export function containerLayers(engine: Engine, c: ContainerRecord): ContainerLayers {
  const image = engine.images.get(c.imageId as Digest);
  const { Data } = engine.containers.graphDriver(c, image);
  const tmpfs = Object.keys(c.hostConfig.Tmpfs ?? {}).map((path) => posix.normalize(path.split(":")[0] ?? path).replace(/^\/+|\/+$/g, ""));
  return {
    upper: Data.UpperDir,
    lowers: Data.LowerDir ? Data.LowerDir.split(":") : [],
    mountPoints: [...RUNTIME_MOUNT_POINTS, ...tmpfs.filter((p) => p !== "" && p !== ".")],
    ...(engine.containers.idMapOf(c) ? { idMap: engine.containers.idMapOf(c) } : {}),
  };
}

/** The entry at `rel` in the image (the first lower that has it), unless a whiteout hides it. */
export async function inImage(lowers: string[], rel: string): Promise<Stats | undefined> {
  for (const lower of lowers) {
    const stats = await lstat(join(lower, rel)).catch(() => undefined);
    if (!stats) continue;
    if (stats.isCharacterDevice() && stats.rdev === 0) return undefined;
    return stats;
  }
  return undefined;
}

/** What to leave out of the upper dir's diff: the runtime's empty mount points, and their parents when nothing else changed in them. */
export interface RuntimeTraces {
  mountPoints: Set<string>;
  /** Directories kept only when the diff has other entries under them. */
  parents: Set<string>;
}

export async function runtimeTraces(layers: ContainerLayers): Promise<RuntimeTraces> {
  const traces: RuntimeTraces = { mountPoints: new Set(), parents: new Set() };
  for (const point of layers.mountPoints) {
    const upper = await lstat(join(layers.upper, point)).catch(() => undefined);
    if (!upper || (await inImage(layers.lowers, point))) continue;
    const empty = upper.isDirectory() ? (await readdir(join(layers.upper, point))).length === 0 : upper.isFile() && upper.size === 0;
    if (!empty) continue;
    traces.mountPoints.add(point);
    const parts = point.split("/");
    for (let i = parts.length - 1; i > 0; i--) {
      const parent = parts.slice(0, i).join("/");
      const copied = await lstat(join(layers.upper, parent)).catch(() => undefined);
      const original = await inImage(layers.lowers, parent);
      if (!copied?.isDirectory()) break;
      // A directory whose owner or mode the container changed is a change of its own.
      if (
        original &&
        (!original.isDirectory() || original.mode !== copied.mode || original.uid !== copied.uid || original.gid !== copied.gid)
      )
        break;
      traces.parents.add(parent);
    }
  }
  return traces;
}

function entryPath(name: string): string {
  return name.replace(/^(\.\/)+|^\/+/, "").replace(/\/+$/, "");
}

/**
 * Re-emits a layer tar without the runtime's traces; `onEntry` sees each header kept. Entries come
 * depth first (diffDirectory's order), so a parent held back is written as soon as a kept entry
 * under it shows up, and dropped when its subtree ends without one.
 */
export async function* withoutTraces(
  tar: AsyncIterable<Uint8Array>,
  traces: RuntimeTraces,
  onEntry?: (header: TarHeader) => void,
): AsyncGenerator<Buffer> {
  const held: { path: string; header: TarHeader }[] = [];
  for await (const { header, body } of readTar(tar)) {
    const path = entryPath(header.name);
    if (traces.mountPoints.has(path)) continue;
    while (held.length > 0 && !path.startsWith(`${held.at(-1)?.path}/`)) held.pop();
    if (header.type === "directory" && traces.parents.has(path)) {
      held.push({ path, header });
      continue;
    }
    for (const parent of held.splice(0)) {
      onEntry?.(parent.header);
      yield encodeHeader(parent.header);
    }
    onEntry?.(header);
    yield encodeHeader(header);
    // Copied: the reader's chunks are only valid until its next read.
    for await (const chunk of body) yield Buffer.from(chunk);
    if (header.size % 512 !== 0) yield padding(header.size);
  }
  yield END_OF_ARCHIVE;
}

/** The container's layer tar: its upper dir without the runtime's traces. */
export async function containerDiff(layers: ContainerLayers, onEntry?: (header: TarHeader) => void): Promise<AsyncGenerator<Buffer>> {
  const traces = await runtimeTraces(layers);
  const map = layers.idMap;
  return withoutTraces(diffDirectory(layers.upper, map ? { mapOwner: (uid, gid) => map.containerOwner(uid, gid) } : {}), traces, onEntry);
}

export const ChangeKind = { modified: 0, added: 1, deleted: 2 } as const;

export interface Change {
  Path: string;
  Kind: 0 | 1 | 2;
}

/**
 * swagger `FilesystemChange`s, sorted by path: whiteouts are deletions, entries the image has are
 * modifications (the parents of every change among them), the others additions.
 */
export async function containerChanges(layers: ContainerLayers): Promise<Change[]> {
  const headers: TarHeader[] = [];
  for await (const _ of await containerDiff(layers, (header) => headers.push(header))) {
    // drained for the headers
  }
  const changes: Change[] = [];
  for (const header of headers) {
    const path = entryPath(header.name);
    const base = posix.basename(path);
    const parent = posix.dirname(path);
    if (base === OPAQUE_WHITEOUT) continue;
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const deleted = base.slice(WHITEOUT_PREFIX.length);
      changes.push({ Path: posix.join("/", parent, deleted), Kind: ChangeKind.deleted });
      continue;
    }
    const existed = await inImage(layers.lowers, path);
    changes.push({ Path: `/${path}`, Kind: existed ? ChangeKind.modified : ChangeKind.added });
  }
  return changes.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
}
