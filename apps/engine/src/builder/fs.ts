// Filesystem helpers of the builder: source trees (a directory, or the context's index) with paths
// resolved inside them (symlinks cannot lead out) and digests of their entries for cache keys, and
// trees copied with the ownership and modes COPY gives.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, copyFile, lchown, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes } from "node:fs/promises";
import { join, posix } from "node:path";

/** What a step reads of a source entry: its type, mode (with the type bits, as lstat gives it), owner and size. */
export interface TreeStat {
  type: "file" | "directory" | "symlink" | "other";
  mode: number;
  uid: number;
  gid: number;
  size: number;
}

/**
 * A read-only file tree that COPY/ADD sources and bind mounts come from, addressed by relative paths
 * ("" is the root) that never follow a final symlink: a directory on disk, or the build context's
 * index (context.ts), which answers without unpacking the context.
 */
export interface SourceTree {
  lstat(rel: string): Promise<TreeStat | undefined>;
  /** The names in a directory (unsorted); throws when `rel` is not one. */
  readdir(rel: string): Promise<string[]>;
  readlink(rel: string): Promise<string>;
  /** sha256 (hex) of a regular file's content. */
  fileDigest(rel: string): Promise<string>;
}

const join_ = (rel: string, name: string) => (rel === "" ? name : `${rel}/${name}`);

/** A directory on disk as a {@link SourceTree}. */
export class DiskTree implements SourceTree {
  constructor(readonly root: string) {}

  path(rel: string): string {
    return rel === "" ? this.root : join(this.root, rel);
  }

  async lstat(rel: string): Promise<TreeStat | undefined> {
    const s = await lstat(this.path(rel)).catch(() => undefined);
    if (!s) return undefined;
    const type = s.isFile() ? "file" : s.isDirectory() ? "directory" : s.isSymbolicLink() ? "symlink" : "other";
    return { type, mode: s.mode, uid: s.uid, gid: s.gid, size: s.size };
  }

  readdir(rel: string): Promise<string[]> {
    return readdir(this.path(rel));
  }

  readlink(rel: string): Promise<string> {
    return readlink(this.path(rel));
  }

  async fileDigest(rel: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(this.path(rel))) hash.update(chunk as Buffer);
    return hash.digest("hex");
  }
}

/**
 * The relative path `path` names inside a tree, every symlink resolved within it (absolute targets
 * are relative to the root; `..` stops at the root); the last component is followed when `followLast`.
 */
export async function resolvePath(tree: SourceTree, path: string, followLast = true): Promise<string> {
  let pending = posix
    .normalize(`/${path}`)
    .split("/")
    .filter((p) => p !== "" && p !== ".");
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === "..") {
      done.pop();
      continue;
    }
    const candidate = [...done, part].join("/");
    const stats = await tree.lstat(candidate);
    if (stats?.type === "symlink" && (pending.length > 0 || followLast)) {
      if (++links > 255) throw new Error(`too many levels of symbolic links: ${path}`);
      const target = await tree.readlink(candidate);
      if (target.startsWith("/")) done.length = 0;
      pending = [...target.split("/").filter((p) => p !== "" && p !== "."), ...pending];
      continue;
    }
    done.push(part);
  }
  return done.join("/");
}

/** A path inside `root` with every symlink resolved within it (absolute targets are relative to root; `..` stops at root). */
export async function resolveIn(root: string, path: string, followLast = true): Promise<string> {
  const rel = await resolvePath(new DiskTree(root), path, followLast);
  return rel === "" ? root : join(root, rel);
}

/** Go's filepath.Match for one path segment. */
function segmentRegExp(pattern: string): RegExp {
  let body = "";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === "*") body += "[^/]*";
    else if (ch === "?") body += "[^/]";
    else if (ch === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end === -1) throw new Error(`syntax error in pattern: ${pattern}`);
      let set = pattern.slice(i + 1, end);
      if (set.startsWith("^")) set = `!${set.slice(1)}`;
      body += `[${set.startsWith("!") ? `^${set.slice(1)}` : set}]`;
      i = end;
    } else if (ch === "\\" && i + 1 < pattern.length) body += `\\${pattern[++i]}`;
    else body += ch.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${body}$`);
}

export const hasGlob = (path: string) => /[*?[]/.test(path);

/** The relative paths in `tree` a source pattern names (wildcards per segment, as Docker's COPY). */
export async function expandSource(tree: SourceTree, source: string): Promise<string[]> {
  const parts = posix
    .normalize(`/${source}`)
    .split("/")
    .filter((p) => p !== "");
  let matches: string[] = [""];
  for (const part of parts) {
    const next: string[] = [];
    for (const base of matches) {
      if (!hasGlob(part)) {
        next.push(join_(base, part));
        continue;
      }
      const dir = await resolvePath(tree, base);
      const names = await tree.readdir(dir).catch(() => [] as string[]);
      const re = segmentRegExp(part);
      for (const name of names.sort()) if (re.test(name)) next.push(join_(base, name));
    }
    matches = next;
  }
  return matches;
}

export interface CopyOptions {
  /** uid/gid every copied entry gets; undefined keeps the source's. */
  owner?: [number, number] | undefined;
  /** Mode bits every copied entry gets (--chmod). */
  mode?: number | undefined;
  /** Skip a path relative to the copy's source root. */
  omit?: ((relative: string) => boolean) | undefined;
}

/** Copies `src` (file, dir or symlink, not followed) to `dst`, recursively, keeping mtimes. */
export async function copyEntry(src: string, dst: string, options: CopyOptions, relative = ""): Promise<void> {
  const stats = await lstat(src);
  const uid = options.owner ? options.owner[0] : stats.uid;
  const gid = options.owner ? options.owner[1] : stats.gid;
  const mode = options.mode ?? stats.mode & 0o7777;
  if (stats.isDirectory()) {
    const existing = await lstat(dst).catch(() => undefined);
    if (existing && !existing.isDirectory()) await rm(dst, { recursive: true, force: true });
    await mkdir(dst, { recursive: true });
    for (const name of (await readdir(src)).sort()) {
      const rel = relative === "" ? name : `${relative}/${name}`;
      if (options.omit?.(rel)) continue;
      await copyEntry(join(src, name), join(dst, name), options, rel);
    }
    await lchown(dst, uid, gid);
    await chmod(dst, mode);
    await utimes(dst, stats.atime, stats.mtime);
    return;
  }
  await rm(dst, { recursive: true, force: true });
  if (stats.isSymbolicLink()) {
    await symlink(await readlink(src), dst);
    await lchown(dst, uid, gid);
    await lutimes(dst, stats.atime, stats.mtime);
    return;
  }
  if (!stats.isFile()) return; // devices, fifos and sockets are not copied from a context
  await copyFile(src, dst);
  await lchown(dst, uid, gid);
  await chmod(dst, mode);
  await utimes(dst, stats.atime, stats.mtime);
}

/**
 * Feeds an entry of a tree into `hash`: its mode (with type bits), owner, link target or size and
 * content digest, and for a directory each child's name and entry, sorted, except those `omit`
 * (given the path relative to `rel`) leaves out. Not mtimes: a cache key must not change when only
 * they do. `own` false leaves out the entry's own metadata (a directory's contents only).
 */
async function digestEntry(
  hash: ReturnType<typeof createHash>,
  tree: SourceTree,
  rel: string,
  own: boolean,
  omit?: (relative: string) => boolean,
  relative = "",
): Promise<void> {
  const s = await tree.lstat(rel);
  if (!s) throw new Error(`${rel}: no such file or directory`);
  if (own) hash.update(`${JSON.stringify([s.mode, s.uid, s.gid])}\n`);
  if (s.type === "symlink") hash.update(`-> ${await tree.readlink(rel)}\n`);
  else if (s.type === "file") hash.update(`${s.size} ${await tree.fileDigest(rel)}\n`);
  else if (s.type === "directory") {
    for (const name of (await tree.readdir(rel)).sort()) {
      const r = join_(relative, name);
      if (omit?.(r)) continue;
      hash.update(`${JSON.stringify(["/", name])}\n`);
      await digestEntry(hash, tree, join_(rel, name), true, omit, r);
      hash.update(")\n");
    }
  }
}

/** A digest of the tree's content below its root (names, types, modes, owners, link targets, file contents; not mtimes). */
export async function treeDigest(root: string): Promise<string> {
  const hash = createHash("sha256");
  await digestEntry(hash, new DiskTree(root), "", false);
  return hash.digest("hex");
}

/** A digest of one entry of a tree and, for a directory, everything below it except what `omit` leaves out. */
export async function pathDigest(tree: SourceTree, rel: string, omit?: (relative: string) => boolean): Promise<string> {
  const hash = createHash("sha256");
  await digestEntry(hash, tree, rel, true, omit);
  return hash.digest("hex");
}
