// The local half of `minato cp`: a file or directory of this machine packed into the tar the daemon
// extracts, and a tar from the daemon extracted here. Extraction never writes through a symlink: a
// parent that is not a real directory stops it, and final components are replaced, not followed,
// so a container's files cannot reach outside the destination.
import { constants, createReadStream, type Stats } from "node:fs";
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, rm, stat, symlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { archivePathComponents, END_OF_ARCHIVE, encodeHeader, padding, readTar, statHeader } from "@minato/layers";
import { CliError } from "./errors.js";

/** Exactly `size` bytes of a file (zeros if it shrank, cut if it grew), so the tar stays well formed. */
async function* content(path: string, size: number): AsyncGenerator<Buffer> {
  let sent = 0;
  if (size > 0) {
    for await (const chunk of createReadStream(path, { end: size - 1 })) {
      const buffer = chunk as Buffer;
      sent += buffer.length;
      yield buffer;
    }
  }
  if (sent < size) yield Buffer.alloc(size - sent);
  yield padding(size);
}

/**
 * A tar of `path` whose entries start with `name` (`.` for a directory's contents). `followLink`
 * packs what a symlink at `path` points to instead of the link.
 */
export async function* packLocal(path: string, name: string, followLink: boolean): AsyncGenerator<Buffer> {
  const top = followLink ? await stat(path) : await lstat(path);
  const links = new Map<string, string>();
  async function* entry(host: string, archiveName: string, stats: Stats): AsyncGenerator<Buffer> {
    if (stats.isDirectory()) {
      yield encodeHeader(statHeader(archiveName, stats, { type: "directory" }));
      for (const child of (await readdir(host)).sort()) {
        const childPath = join(host, child);
        yield* entry(childPath, `${archiveName}/${child}`, await lstat(childPath));
      }
      return;
    }
    if (stats.nlink > 1 && !stats.isSymbolicLink()) {
      const key = `${stats.dev}:${stats.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        yield encodeHeader(statHeader(archiveName, stats, { type: "link", linkname: first }));
        return;
      }
      links.set(key, archiveName);
    }
    if (stats.isFile()) {
      yield encodeHeader(statHeader(archiveName, stats, { size: stats.size }));
      yield* content(host, stats.size);
    } else if (stats.isSymbolicLink()) {
      yield encodeHeader(statHeader(archiveName, stats, { type: "symlink", linkname: await readlink(host) }));
    } else if (stats.isFIFO()) {
      yield encodeHeader(statHeader(archiveName, stats, { type: "fifo" }));
    } else if (stats.isCharacterDevice() || stats.isBlockDevice()) {
      const major = (stats.rdev >>> 8) & 0xfff;
      const minor = (stats.rdev & 0xff) | ((stats.rdev >>> 12) & 0xfff00);
      yield encodeHeader(
        statHeader(archiveName, stats, { type: stats.isCharacterDevice() ? "char" : "block", devmajor: major, devminor: minor }),
      );
    }
    // Sockets have no tar form; docker leaves them out too.
  }
  yield* entry(path, name, top);
  yield END_OF_ARCHIVE;
}

export interface LocalExtractOptions {
  /** Keep the archive's owners (`cp -a`); otherwise files belong to whoever runs the command. */
  archive: boolean;
}

/**
 * Extracts a tar whose entries start with `rebase` (one component, or `.`) so that the top entry
 * becomes `target` and the rest go below it. `target`'s parent must exist.
 */
export async function extractLocal(
  tar: AsyncIterable<Uint8Array>,
  rebase: string,
  target: string,
  options: LocalExtractOptions,
): Promise<void> {
  const dirTimes: [string, number][] = [];
  const stripTop = archivePathComponents(rebase).length;
  for await (const { header, body } of readTar(tar)) {
    let parts: string[];
    try {
      parts = archivePathComponents(header.name);
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    if (parts.length < stripTop) continue;
    const rel = parts.slice(stripTop);
    // Parents must be real directories: made here or already there, never symlinks.
    let parent = target;
    for (let i = 0; i < rel.length - 1; i++) {
      parent = join(parent, rel[i] as string);
      const stats = await lstat(parent).catch(() => undefined);
      if (!stats) await mkdir(parent, { mode: 0o755 });
      else if (!stats.isDirectory()) throw new CliError(`refusing to extract ${JSON.stringify(header.name)}: ${parent} is not a directory`);
    }
    const path = rel.length === 0 ? target : join(parent, rel.at(-1) as string);
    const existing = await lstat(path).catch(() => undefined);
    if (existing && !(existing.isDirectory() && header.type === "directory")) await rm(path, { recursive: true, force: true });
    // Owner before mode: chown clears setuid and setgid bits.
    const own = async (chown: () => Promise<void>) => {
      if (!options.archive) return;
      await chown().catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "EPERM") throw error;
      });
    };
    switch (header.type) {
      case "directory":
        if (!existing?.isDirectory()) await mkdir(path, { mode: 0o700 });
        await own(() => lchown(path, header.uid, header.gid));
        await chmod(path, header.mode & 0o7777);
        dirTimes.push([path, header.mtime]);
        break;
      case "file": {
        const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body) await handle.write(chunk);
          await own(() => handle.chown(header.uid, header.gid));
          await handle.chmod(header.mode & 0o7777);
          await handle.utimes(header.mtime, header.mtime);
        } finally {
          await handle.close();
        }
        break;
      }
      case "symlink":
        await symlink(header.linkname, path);
        await own(() => lchown(path, header.uid, header.gid));
        await lutimes(path, header.mtime, header.mtime).catch(() => undefined);
        break;
      case "link": {
        const source = archivePathComponents(header.linkname).slice(stripTop);
        let sourcePath = target;
        for (const [i, part] of source.entries()) {
          sourcePath = join(sourcePath, part);
          const stats = await lstat(sourcePath).catch(() => undefined);
          if (i < source.length - 1 && !stats?.isDirectory()) throw new CliError(`hard link ${JSON.stringify(header.name)}: bad target`);
        }
        await link(sourcePath, path);
        break;
      }
      default:
        // Devices and FIFOs need root and are rare in copies; docker cp needs root for them too.
        throw new CliError(`cannot extract ${JSON.stringify(header.name)}: ${header.type} entries are not supported by minato cp`);
    }
  }
  for (const [path, mtime] of dirTimes.reverse()) await utimes(path, mtime, mtime).catch(() => undefined);
}
