// Turning a directory into a layer tar: an overlay upper dir into a changeset (diffDirectory), or a
// plain tree into a layer that adds it (packDirectory). Output is deterministic: entries depth
// first with siblings in byte order of their names, numeric ids only (no user or group names), no
// atime/ctime, whole-second mtimes — optionally clamped to SOURCE_DATE_EPOCH — and hard links named
// after the first path of their inode in that order.
import { type BigIntStats, closeSync, constants, lstatSync, openSync, readdirSync, readlinkSync, readSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { LayerError, quote } from "./errors.js";
import { native } from "./native.js";
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeader } from "./tar.js";
import {
  OPAQUE_WHITEOUT,
  OVERLAY_METACOPY_XATTR,
  OVERLAY_OPAQUE_XATTR,
  OVERLAY_REDIRECT_XATTR,
  OVERLAY_WHITEOUT_XATTR,
  OVERLAY_XATTR_PREFIX,
  WHITEOUT_PREFIX,
} from "./whiteouts.js";

export interface PackOptions {
  /**
   * SOURCE_DATE_EPOCH in seconds: every mtime later than it is clamped to it (as BuildKit's
   * rewrite-timestamp does), so the same tree built at different times gives the same bytes.
   */
  sourceDateEpoch?: number;
  /** The owner written for an entry's on-disk owner (e.g. a user namespace's ids shifted back). */
  mapOwner?: (uid: number, gid: number) => { uid: number; gid: number };
}

/**
 * Diffs an overlayfs upper dir into a layer tar (image-spec layer.md "Representing Changes"):
 * overlay whiteouts (0/0 character devices) become `.wh.<name>` entries, opaque directories
 * (`trusted.overlay.opaque=y`) are followed by `.wh..wh..opq`, hard links within the upper dir are tar
 * hard links, xattrs are PAX `SCHILY.xattr.*` records (`trusted.overlay.*` left out); sockets are
 * skipped. The overlay must have been mounted without `redirect_dir` and `metacopy` (their upper dirs
 * only make sense with the lowers): such an upper dir is refused. Needs root, to read `trusted.*` xattrs.
 */
export function diffDirectory(upper: string, options: PackOptions = {}): Readable {
  if (process.getuid?.() !== 0) throw new Error("diffDirectory must run as root: overlay whiteouts are trusted.* xattrs");
  checkOptions(options);
  return Readable.from(packTree(upper, true, options), { objectMode: false });
}

/**
 * Packs a plain directory tree (for `import`, `COPY` and `ADD`) into a layer tar that adds every
 * entry under `dir` (not `dir` itself), with the same deterministic encoding as {@link diffDirectory}.
 * Character devices are kept as devices; a name starting with `.wh.` cannot be represented and is an error.
 */
export function packDirectory(dir: string, options: PackOptions = {}): Readable {
  checkOptions(options);
  return Readable.from(packTree(dir, false, options), { objectMode: false });
}

function checkOptions(options: PackOptions): void {
  const epoch = options.sourceDateEpoch;
  if (epoch !== undefined && !(Number.isSafeInteger(epoch) && epoch >= 0)) {
    throw new RangeError(`sourceDateEpoch must be a non-negative integer of seconds, got ${epoch}`);
  }
}

const READ_CHUNK = 1024 * 1024;

function compareNames(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

async function* packTree(root: string, overlay: boolean, options: PackOptions): AsyncGenerator<Buffer> {
  const epoch = options.sourceDateEpoch;
  const rootStats = lstatSync(root, { bigint: true });
  if (!rootStats.isDirectory()) throw new Error(`${root} is not a directory`);
  const ops = overlay ? native() : undefined;
  /** First archive path of each multiply-linked inode, by `dev:ino`. */
  const links = new Map<string, string>();

  const mtimeOf = (stats: BigIntStats): number => {
    const seconds = Number(stats.mtimeNs / 1_000_000_000n) - (stats.mtimeNs < 0n && stats.mtimeNs % 1_000_000_000n !== 0n ? 1 : 0);
    return epoch !== undefined && seconds > epoch ? epoch : seconds;
  };

  const xattrsOf = (path: string, name: string): Map<string, Buffer> => {
    const xattrs = new Map<string, Buffer>();
    const calls = native();
    for (const key of calls.llistxattr(path)) {
      if (key.startsWith(OVERLAY_XATTR_PREFIX)) {
        if (overlay && (key === OVERLAY_REDIRECT_XATTR || key === OVERLAY_METACOPY_XATTR)) {
          throw new LayerError(
            "UNSUPPORTED_UPPER",
            `${quote(name)} carries ${key}: mount the overlay with redirect_dir=off,metacopy=off to diff its upper dir`,
          );
        }
        continue;
      }
      const value = calls.lgetxattr(path, key);
      if (value !== null) xattrs.set(key, value);
    }
    return xattrs;
  };

  const owner = (stats: BigIntStats) =>
    options.mapOwner ? options.mapOwner(Number(stats.uid), Number(stats.gid)) : { uid: Number(stats.uid), gid: Number(stats.gid) };
  const header = (name: string, stats: BigIntStats, fields: Partial<TarHeader>): TarHeader => ({
    name,
    type: "file",
    mode: Number(stats.mode & 0o7777n),
    ...owner(stats),
    size: 0,
    mtime: mtimeOf(stats),
    linkname: "",
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
    ...fields,
  });

  /** A whiteout or opaque marker: an empty regular file owned by root, mode 0600. */
  const marker = (name: string, stats: BigIntStats): Buffer =>
    encodeHeader(header(name, stats, { mode: 0o600, uid: 0, gid: 0, xattrs: new Map() }));

  async function* walk(dir: string, prefix: string): AsyncGenerator<Buffer> {
    const names = readdirSync(dir, { encoding: "buffer" }).sort(compareNames);
    for (const rawName of names) {
      const name = rawName.toString("utf8");
      if (!Buffer.from(name, "utf8").equals(rawName)) {
        throw new LayerError("INVALID_ENTRY", `${quote(prefix + name)}: file names must be valid UTF-8 to be stored in a layer`);
      }
      const path = join(dir, name);
      const archivePath = prefix + name;
      const stats = lstatSync(path, { bigint: true });

      if (overlay) {
        const whiteout =
          (stats.isCharacterDevice() && stats.rdev === 0n) ||
          (stats.isFile() && stats.size === 0n && ops!.lgetxattr(path, OVERLAY_WHITEOUT_XATTR) !== null);
        if (whiteout) {
          yield marker(prefix + WHITEOUT_PREFIX + name, stats);
          continue;
        }
      }
      if (name.startsWith(WHITEOUT_PREFIX)) {
        throw new LayerError("INVALID_ENTRY", `${quote(archivePath)}: a name starting with ${WHITEOUT_PREFIX} cannot be stored in a layer`);
      }
      if (stats.isSocket()) continue; // tar has no socket type; Docker skips them too

      if (stats.isDirectory()) {
        yield encodeHeader(header(archivePath, stats, { type: "directory", xattrs: xattrsOf(path, archivePath) }));
        if (overlay && ops!.lgetxattr(path, OVERLAY_OPAQUE_XATTR)?.toString() === "y") {
          yield marker(`${archivePath}/${OPAQUE_WHITEOUT}`, stats);
        }
        yield* walk(path, `${archivePath}/`);
        continue;
      }

      if (stats.nlink > 1n) {
        const key = `${stats.dev}:${stats.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          yield encodeHeader(header(archivePath, stats, { type: "link", linkname: first, xattrs: new Map() }));
          continue;
        }
        links.set(key, archivePath);
      }

      const xattrs = xattrsOf(path, archivePath);
      if (stats.isSymbolicLink()) {
        yield encodeHeader(header(archivePath, stats, { type: "symlink", linkname: readlinkSync(path), xattrs }));
      } else if (stats.isCharacterDevice() || stats.isBlockDevice()) {
        const type = stats.isCharacterDevice() ? "char" : "block";
        yield encodeHeader(header(archivePath, stats, { type, devmajor: devMajor(stats.rdev), devminor: devMinor(stats.rdev), xattrs }));
      } else if (stats.isFIFO()) {
        yield encodeHeader(header(archivePath, stats, { type: "fifo", xattrs }));
      } else if (stats.isFile()) {
        const size = Number(stats.size);
        yield encodeHeader(header(archivePath, stats, { type: "file", size, xattrs }));
        yield* readContent(path, archivePath, size);
        if (size % 512 !== 0) yield padding(size);
      }
    }
  }

  yield* walk(root, "");
  yield END_OF_ARCHIVE;
}

/** Exactly `size` bytes of a file, or an error if it changed size while the layer was written. */
async function* readContent(path: string, name: string, size: number): AsyncGenerator<Buffer> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let remaining = size;
    while (remaining > 0) {
      const chunk = Buffer.allocUnsafe(Math.min(remaining, READ_CHUNK));
      let filled = 0;
      while (filled < chunk.length) {
        const got = readSync(fd, chunk, filled, chunk.length - filled, null);
        if (got === 0) throw new Error(`${quote(name)} shrank while it was being packed`);
        filled += got;
      }
      remaining -= filled;
      yield chunk;
    }
    const extra = readSync(fd, Buffer.alloc(1), 0, 1, null);
    if (extra !== 0) throw new Error(`${quote(name)} grew while it was being packed`);
  } finally {
    closeSync(fd);
  }
}
