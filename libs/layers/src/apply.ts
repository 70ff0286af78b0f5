// Applying a layer changeset into one overlay-ready directory (image-spec layer.md "Applying
// Changesets"). The directory holds this layer alone: lower layers are other directories that
// overlayfs stacks, so a whiteout here is not a deletion but an overlay whiteout (a 0/0 character
// device, or `trusted.overlay.opaque=y` on a directory) that hides the lower layers' entry.
//
// Confinement: every path is resolved component by component from the target with lstat, and a
// parent that is not a real directory created by this layer (a symlink above all) is refused, so no
// entry is ever written through a symlink. Final components are replaced, never followed: regular
// files are created with O_CREAT|O_EXCL|O_NOFOLLOW, and everything else with calls that do not follow
// symlinks (mkdir, symlink, link, mknod, lchown, lutimes, lsetxattr). The target is assumed to be
// written by this process only while the layer is applied.
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  realpathSync,
  rmSync,
  type Stats,
  symlinkSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { type Digest, Digester } from "@minato/oci";
import { type Compression, decompressLayer } from "./compression.js";
import { LayerError, quote } from "./errors.js";
import { native, S_IFBLK, S_IFCHR, S_IFIFO } from "./native.js";
import { archivePathComponents } from "./paths.js";
import { readTar, type TarHeader } from "./tar.js";
import { OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIX, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX } from "./whiteouts.js";

export interface ApplyOptions {
  /**
   * The blob's compression: "auto" (default) sniffs gzip, zstd or plain tar from the first bytes;
   * naming one makes any other an error (use the descriptor's media type).
   */
  compression?: "auto" | Compression;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar: the layer's diffID (image-spec config.md `rootfs.diff_ids`). */
  diffId: Digest;
  /** Size in bytes of the uncompressed tar. */
  size: number;
  /** The compression found on the blob. */
  compression: Compression;
  /** What was kept out, each a one-line reason: xattrs the filesystem refused, overlay xattrs in the tar. */
  warnings: string[];
}

/**
 * Streams a layer blob (gzip, zstd where Node supports it, or plain tar) into `target`, an empty or
 * missing directory that becomes this layer's overlay lower dir. Computes the diffID on the way.
 *
 * Kept: regular files, directories, symlinks, hard links to earlier entries of the same layer,
 * character and block devices, FIFOs, uid/gid, all mode bits (setuid, setgid, sticky), mtimes
 * (directories' after their content) and xattrs from PAX `SCHILY.xattr.*` records (except
 * `trusted.overlay.*`, which only whiteouts may produce). Sockets cannot be in a tar.
 *
 * Paths: leading `/` and `./` are dropped (absolute names are relative to the layer root, as in
 * Docker); a name with a `..` component, a parent that is a symlink or other non-directory, and a hard
 * link whose target is outside the layer, missing, or a directory are refused with a LayerError. On
 * any error the target may hold part of the layer and nothing outside it; the caller discards it.
 *
 * Needs root: it sets ownership, creates device nodes and writes `trusted.*` xattrs.
 */
export async function applyLayer(
  source: Readable | AsyncIterable<Uint8Array>,
  target: string,
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  if (process.getuid?.() !== 0) {
    throw new Error("applyLayer must run as root: it sets ownership, creates device nodes and writes trusted.* xattrs");
  }
  mkdirSync(target, { recursive: true });
  const root = realpathSync(target);
  if (!lstatSync(root).isDirectory()) throw new Error(`applyLayer target ${root} is not a directory`);

  const { compression, tar } = await decompressLayer(source, options.compression ?? "auto");
  const digester = new Digester("sha256");
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of tar) {
      digester.update(chunk);
      yield chunk;
    }
  }
  const applier = new Applier(root);
  for await (const { header, body } of readTar(hashed())) {
    try {
      await applier.apply(header, body);
    } catch (error) {
      if (error instanceof LayerError) throw error;
      const failure = error as Error;
      failure.message = `applying layer entry ${quote(header.name)}: ${failure.message}`;
      throw failure;
    }
  }
  applier.finish();
  return { diffId: digester.digest(), size: digester.size, compression, warnings: applier.warnings() };
}

const O_CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const DEFAULT_DIR_MODE = 0o755;

function lstatOrNull(path: string): Stats | null {
  return lstatSync(path, { throwIfNoEntry: false }) ?? null;
}

function isOverlayWhiteout(stats: Stats): boolean {
  return stats.isCharacterDevice() && stats.rdev === 0;
}

class Applier {
  readonly #warnings: string[] = [];
  #moreWarnings = 0;
  /** Relative paths known to be real directories of this layer (the root is ""). */
  readonly #dirs = new Set<string>([""]);
  /** Overlay whiteouts this layer created (relative paths). */
  readonly #whiteouts = new Set<string>();
  /** Directory mtimes, set last so that creating their content does not change them. */
  readonly #dirTimes = new Map<string, number>();

  constructor(readonly root: string) {}

  #abs(parts: readonly string[]): string {
    return parts.length === 0 ? this.root : join(this.root, ...parts);
  }

  async apply(header: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const parts = archivePathComponents(header.name);
    if (parts[0]?.startsWith(WHITEOUT_META_PREFIX) && parts[0] !== OPAQUE_WHITEOUT) return; // AUFS metadata
    if (parts.length === 0) {
      if (header.type !== "directory") throw new LayerError("INVALID_ENTRY", `layer root entry ${quote(header.name)} is not a directory`);
      this.#setDirectoryAttributes([], header);
      return;
    }
    const base = parts[parts.length - 1]!;
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.#whiteout(parts, header);
      return;
    }
    this.#parentDirectory(parts, header.name);
    const rel = parts.join("/");
    const path = this.#abs(parts);
    const existing = lstatOrNull(path);
    let replacedWhiteout = false;
    if (existing) {
      if (existing.isDirectory() && header.type === "directory") {
        this.#setDirectoryAttributes(parts, header);
        return;
      }
      // image-spec: "removing the file path ... recreating the file path" for every other case.
      replacedWhiteout = this.#whiteouts.has(rel) && isOverlayWhiteout(existing);
      this.#remove(parts, existing);
    }

    switch (header.type) {
      case "directory":
        mkdirSync(path, { mode: DEFAULT_DIR_MODE });
        this.#dirs.add(rel);
        // A directory deleted from the lower layers and recreated here must not show their children.
        if (replacedWhiteout) this.#setOpaque(parts);
        this.#setDirectoryAttributes(parts, header);
        return;
      case "file":
        await this.#writeFile(path, header, body);
        return;
      case "symlink":
        symlinkSync(header.linkname, path);
        lchownSync(path, header.uid, header.gid);
        this.#setXattrs(path, header);
        lutimesSync(path, header.mtime, header.mtime);
        return;
      case "link":
        linkSync(this.#hardLinkTarget(header), path);
        return;
      case "char":
      case "block":
      case "fifo": {
        const kind = header.type === "char" ? S_IFCHR : header.type === "block" ? S_IFBLK : S_IFIFO;
        native().mknod(path, kind | (header.mode & 0o777), header.devmajor, header.devminor);
        lchownSync(path, header.uid, header.gid);
        chmodSync(path, header.mode & 0o7777); // mknod applies the umask; the path is the node just made
        this.#setXattrs(path, header);
        lutimesSync(path, header.mtime, header.mtime);
        return;
      }
    }
  }

  /** Makes sure every parent of `parts` is a real directory of this layer, creating missing ones. */
  #parentDirectory(parts: readonly string[], name: string): void {
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i);
      const rel = prefix.join("/");
      if (this.#dirs.has(rel)) continue;
      const path = this.#abs(prefix);
      const stats = lstatOrNull(path);
      if (stats?.isDirectory()) {
        this.#dirs.add(rel);
        continue;
      }
      if (stats && !(this.#whiteouts.has(rel) && isOverlayWhiteout(stats))) {
        const what = stats.isSymbolicLink() ? "a symlink" : "not a directory";
        const code = stats.isSymbolicLink() ? "BREAKOUT" : "INVALID_ENTRY";
        throw new LayerError(code, `layer entry ${quote(name)}: parent ${quote(rel)} is ${what}; refusing to write through it`);
      }
      if (stats) {
        // `.wh.a` then `a/b`: a was deleted below and is a new directory here.
        unlinkSync(path);
        this.#whiteouts.delete(rel);
        mkdirSync(path, { mode: DEFAULT_DIR_MODE });
        this.#setOpaque(prefix);
      } else {
        mkdirSync(path, { mode: DEFAULT_DIR_MODE });
      }
      chmodSync(path, DEFAULT_DIR_MODE);
      this.#dirs.add(rel);
    }
  }

  #remove(parts: readonly string[], existing: Stats): void {
    const rel = parts.join("/");
    const path = this.#abs(parts);
    if (existing.isDirectory()) {
      rmSync(path, { recursive: true, force: true });
      const prefix = `${rel}/`;
      for (const set of [this.#dirs, this.#whiteouts]) {
        for (const key of set) if (key === rel || key.startsWith(prefix)) set.delete(key);
      }
      for (const key of this.#dirTimes.keys()) if (key === rel || key.startsWith(prefix)) this.#dirTimes.delete(key);
    } else {
      unlinkSync(path);
      this.#whiteouts.delete(rel);
    }
  }

  async #writeFile(path: string, header: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const fd = openSync(path, O_CREATE_FILE, 0o600);
    try {
      for await (const chunk of body) {
        for (let offset = 0; offset < chunk.length; ) offset += writeSync(fd, chunk, offset);
      }
      // Ownership before mode (chown may clear setuid bits), xattrs after both (chown clears
      // security.capability), times last.
      fchownSync(fd, header.uid, header.gid);
      fchmodSync(fd, header.mode & 0o7777);
      this.#setXattrs(path, header);
      futimesSync(fd, header.mtime, header.mtime);
    } finally {
      closeSync(fd);
    }
  }

  #hardLinkTarget(header: TarHeader): string {
    const parts = archivePathComponents(header.linkname, `hard link ${quote(header.name)} to`);
    const fail = (why: string) => new LayerError("HARDLINK_TARGET", `hard link ${quote(header.name)} -> ${quote(header.linkname)}: ${why}`);
    if (parts.length === 0) throw fail("the target is the layer root");
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i);
      const rel = prefix.join("/");
      if (this.#dirs.has(rel)) continue;
      const stats = lstatOrNull(this.#abs(prefix));
      if (stats?.isSymbolicLink()) {
        throw new LayerError("BREAKOUT", `hard link ${quote(header.name)} -> ${quote(header.linkname)}: ${quote(rel)} is a symlink`);
      }
      if (!stats?.isDirectory()) throw fail("the target is not an entry of this layer");
      this.#dirs.add(rel);
    }
    const path = this.#abs(parts);
    const stats = lstatOrNull(path);
    if (!stats || this.#whiteouts.has(parts.join("/"))) throw fail("the target is not an entry of this layer");
    if (stats.isDirectory()) throw fail("the target is a directory");
    return path;
  }

  #whiteout(parts: readonly string[], header: TarHeader): void {
    const base = parts[parts.length - 1]!;
    const parent = parts.slice(0, -1);
    if (base === OPAQUE_WHITEOUT) {
      this.#parentDirectory(parts, header.name);
      this.#setOpaque(parent);
      return;
    }
    if (base.startsWith(WHITEOUT_META_PREFIX)) return; // AUFS bookkeeping
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === "") throw new LayerError("INVALID_ENTRY", `whiteout ${quote(header.name)} names nothing to delete`);
    if (name === "." || name === "..") throw new LayerError("BREAKOUT", `whiteout ${quote(header.name)} names ${quote(name)}; refusing it`);
    this.#parentDirectory(parts, header.name);
    const hidden = [...parent, name];
    const path = this.#abs(hidden);
    const existing = lstatOrNull(path);
    if (!existing) {
      native().mknod(path, S_IFCHR, 0, 0);
      lutimesSync(path, header.mtime, header.mtime);
      this.#whiteouts.add(hidden.join("/"));
    } else if (existing.isDirectory()) {
      // Deleted below and recreated earlier in this layer: keep this layer's content, hide the rest.
      this.#setOpaque(hidden);
    }
    // Any other entry of this layer already hides the lower one entirely ("Files that are present in
    // the same layer as a whiteout file can only be hidden by whiteout files in subsequent layers").
  }

  #setOpaque(parts: readonly string[]): void {
    try {
      native().lsetxattr(this.#abs(parts), OVERLAY_OPAQUE_XATTR, Buffer.from("y"));
    } catch (error) {
      (error as Error).message =
        `cannot mark ${quote(parts.join("/") || "/")} opaque (needs root and a filesystem with trusted xattrs): ${(error as Error).message}`;
      throw error;
    }
  }

  #setDirectoryAttributes(parts: readonly string[], header: TarHeader): void {
    const path = this.#abs(parts);
    lchownSync(path, header.uid, header.gid);
    chmodSync(path, header.mode & 0o7777);
    // image-spec: an existing directory's attributes are replaced by the entry's, xattrs included.
    const keep = new Set(header.xattrs.keys());
    for (const name of native().llistxattr(path)) {
      if (!keep.has(name) && !name.startsWith(OVERLAY_XATTR_PREFIX)) native().lremovexattr(path, name);
    }
    this.#setXattrs(path, header);
    this.#dirTimes.set(parts.join("/"), header.mtime);
  }

  #setXattrs(path: string, header: TarHeader): void {
    for (const [name, value] of header.xattrs) {
      if (name.startsWith(OVERLAY_XATTR_PREFIX)) {
        this.#warn(`${quote(header.name)}: dropped xattr ${name} (overlay metadata comes from whiteouts only)`);
        continue;
      }
      try {
        native().lsetxattr(path, name, value);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // As Docker does: a filesystem without support for an xattr namespace loses the xattr, not the layer.
        if (code !== "ENOTSUP" && code !== "EPERM") throw error;
        this.#warn(`${quote(header.name)}: xattr ${name} not kept (${code})`);
      }
    }
  }

  /** Keeps the first 100 warnings: a hostile layer must not grow memory through them. */
  #warn(message: string): void {
    if (this.#warnings.length < 100) this.#warnings.push(message);
    else this.#moreWarnings++;
  }

  warnings(): string[] {
    return this.#moreWarnings === 0 ? [...this.#warnings] : [...this.#warnings, `... and ${this.#moreWarnings} more`];
  }

  /** Sets directory mtimes, deepest first, once nothing more will be created in them. */
  finish(): void {
    const depth = (rel: string) => (rel === "" ? 0 : rel.split("/").length);
    const entries = [...this.#dirTimes].sort(([a], [b]) => depth(b) - depth(a));
    for (const [rel, mtime] of entries) {
      const path = rel === "" ? this.root : join(this.root, rel);
      lutimesSync(path, mtime, mtime);
    }
  }
}
