// Filesystem helpers of the builder: paths resolved inside a root (symlinks cannot lead out), layer
// snapshots merged into a plain rootfs view, trees copied with the ownership and modes COPY gives.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, copyFile, lchown, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes } from "node:fs/promises";
import { join, posix } from "node:path";

/** A path inside `root` with every symlink resolved within it (absolute targets are relative to root; `..` stops at root). */
export async function resolveIn(root: string, path: string, followLast = true): Promise<string> {
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
    const candidate = join(root, ...done, part);
    const stats = await lstat(candidate).catch(() => undefined);
    if (stats?.isSymbolicLink() && (pending.length > 0 || followLast)) {
      if (++links > 255) throw new Error(`too many levels of symbolic links: ${path}`);
      const target = await readlink(candidate);
      if (target.startsWith("/")) done.length = 0;
      pending = [...target.split("/").filter((p) => p !== "" && p !== "."), ...pending];
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
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

/** The relative paths under `root` a source pattern names (wildcards per segment, as Docker's COPY). */
export async function expandSource(root: string, source: string): Promise<string[]> {
  const parts = posix
    .normalize(`/${source}`)
    .split("/")
    .filter((p) => p !== "");
  let matches: string[] = [""];
  for (const part of parts) {
    const next: string[] = [];
    for (const base of matches) {
      if (!hasGlob(part)) {
        next.push(base === "" ? part : `${base}/${part}`);
        continue;
      }
      const dir = await resolveIn(root, base);
      const names = await readdir(dir).catch(() => [] as string[]);
      const re = segmentRegExp(part);
      for (const name of names.sort()) if (re.test(name)) next.push(base === "" ? name : `${base}/${name}`);
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
 * Merges a snapshot (an overlay lower dir) over `target`: overlay whiteouts (0/0 character
 * devices) remove what they name, opaque directories are not distinguished.
 */
export async function mergeLayer(layer: string, target: string): Promise<void> {
  for (const name of (await readdir(layer)).sort()) {
    const src = join(layer, name);
    const dst = join(target, name);
    const stats = await lstat(src);
    if (stats.isCharacterDevice() && stats.rdev === 0) {
      await rm(dst, { recursive: true, force: true });
      continue;
    }
    if (stats.isDirectory()) {
      const existing = await lstat(dst).catch(() => undefined);
      if (existing && !existing.isDirectory()) await rm(dst, { recursive: true, force: true });
      await mkdir(dst, { recursive: true });
      await mergeLayer(src, dst);
      await lchown(dst, stats.uid, stats.gid);
      await chmod(dst, stats.mode & 0o7777);
      await utimes(dst, stats.atime, stats.mtime);
    } else if (stats.isFile() || stats.isSymbolicLink()) {
      await copyEntry(src, dst, {});
    }
  }
}

/**
 * A digest of a tree's names, types, modes, owners, sizes, link targets and file contents — not
 * its mtimes: the part of a COPY/ADD step's cache key that says what it copied.
 */
export async function treeDigest(root: string): Promise<string> {
  const hash = createHash("sha256");
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const r = `${rel}/${name}`;
      const s = await lstat(path);
      hash.update(`${JSON.stringify([r, s.mode, s.uid, s.gid])}\n`);
      if (s.isSymbolicLink()) hash.update(`-> ${await readlink(path)}\n`);
      else if (s.isFile()) {
        const file = createHash("sha256");
        for await (const chunk of createReadStream(path)) file.update(chunk as Buffer);
        hash.update(`${s.size} ${file.digest("hex")}\n`);
      } else if (s.isDirectory()) await walk(path, r);
    }
  };
  await walk(root, "");
  return hash.digest("hex");
}

/** {@link treeDigest} for a directory; for a file (or symlink) its mode, owner and content. */
export async function pathDigest(path: string): Promise<string> {
  const s = await lstat(path);
  if (s.isDirectory()) return treeDigest(path);
  const hash = createHash("sha256").update(`${JSON.stringify([s.mode, s.uid, s.gid])}\n`);
  if (s.isSymbolicLink()) hash.update(`-> ${await readlink(path)}\n`);
  else if (s.isFile()) for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
