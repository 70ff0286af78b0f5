// Test support: temp dirs, a root check, tree snapshots that capture everything a layer must keep,
// and tar archives built with an independent implementation (tar-stream) for hostile input.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import tar from "tar-stream";
import { afterAll } from "vitest";
import { native } from "../src/native.js";

/** These tests create devices, chown files and write trusted.* xattrs: they need root, as CI has. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      "libs/layers tests must run as root (they mknod, chown, set trusted.* xattrs and mount overlayfs); CI runs them as root",
    );
  }
}

/** A fresh temp dir, removed after the file's tests. */
export function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `minato-layers-${label}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr || result.error?.message}`);
  return result.stdout;
}

export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export interface Snapshot {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  content?: string;
  link?: string;
  rdev?: string;
  xattrs: Record<string, string>;
  /** For multiply-linked files: the first path (in sorted order) sharing the inode. */
  inode?: string;
}

function typeOf(stats: ReturnType<typeof lstatSync> & object): string {
  if (stats.isDirectory()) return "dir";
  if (stats.isFile()) return "file";
  if (stats.isSymbolicLink()) return "symlink";
  if (stats.isCharacterDevice()) return "char";
  if (stats.isBlockDevice()) return "block";
  if (stats.isFIFO()) return "fifo";
  return "socket";
}

/**
 * Everything a layer must preserve about a tree, by relative path ("" is the root): type, mode bits,
 * owner, whole-second mtime, content digest, link target, device numbers, xattrs (hex) and which
 * paths share an inode.
 */
export function snapshot(
  root: string,
  options: { includeRoot?: boolean; skipXattr?: (name: string) => boolean } = {},
): Record<string, Snapshot> {
  const out: Record<string, Snapshot> = {};
  const inodes = new Map<string, string>();
  const visit = (rel: string) => {
    const path = rel === "" ? root : join(root, rel);
    const stats = lstatSync(path, { bigint: true });
    const xattrs: Record<string, string> = {};
    for (const name of native().llistxattr(path).sort()) {
      if (options.skipXattr?.(name)) continue;
      xattrs[name] = native().lgetxattr(path, name)?.toString("hex") ?? "";
    }
    const entry: Snapshot = {
      type: typeOf(lstatSync(path)),
      mode: (stats.mode & 0o7777n).toString(8),
      uid: Number(stats.uid),
      gid: Number(stats.gid),
      mtime: Number(stats.mtimeNs / 1_000_000_000n),
      xattrs,
    };
    if (stats.isFile()) {
      entry.size = Number(stats.size);
      entry.content = sha256(readFileSync(path));
    }
    if (stats.isSymbolicLink()) entry.link = readlinkSync(path);
    if (stats.isCharacterDevice() || stats.isBlockDevice()) entry.rdev = stats.rdev.toString(16);
    if (!stats.isDirectory() && stats.nlink > 1n) {
      const key = `${stats.dev}:${stats.ino}`;
      if (!inodes.has(key)) inodes.set(key, rel);
      entry.inode = inodes.get(key);
    }
    if (rel !== "" || options.includeRoot) out[rel] = entry;
    if (stats.isDirectory()) {
      for (const name of readdirSync(path).sort()) visit(rel === "" ? name : `${rel}/${name}`);
    }
  };
  visit("");
  return out;
}

export interface TestEntry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

/** Builds a tar with tar-stream, entries verbatim (no path cleaning): the way to write hostile layers. */
export async function buildTar(entries: TestEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const done = collect(pack as AsyncIterable<Uint8Array>);
  for (const entry of entries) {
    const type = entry.type ?? "file";
    const header: Partial<tar.Header> & Pick<tar.Header, "name"> = {
      name: entry.name,
      type,
      mode: entry.mode ?? (type === "directory" ? 0o755 : 0o644),
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      mtime: entry.mtime ?? new Date(1_700_000_000_000),
    };
    if (entry.linkname !== undefined) header.linkname = entry.linkname;
    if (entry.devmajor !== undefined) header.devmajor = entry.devmajor;
    if (entry.devminor !== undefined) header.devminor = entry.devminor;
    if (entry.pax) header.pax = entry.pax;
    await new Promise<void>((resolve, reject) => {
      const content = type === "file" ? Buffer.from(entry.content ?? "") : undefined;
      if (content) pack.entry(header, content, (error) => (error ? reject(error) : resolve()));
      else pack.entry(header, (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  return done;
}

export function streamOf(data: Buffer, chunkSize = 4096): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < data.length; offset += chunkSize) yield data.subarray(offset, offset + chunkSize);
    })(),
  );
}

/** Entries of a tar as tar-stream (an independent reader) sees them. */
export async function listTar(data: Buffer): Promise<tar.Header[]> {
  const extract = tar.extract();
  const headers: tar.Header[] = [];
  const consumed = (async () => {
    for await (const entry of extract) {
      headers.push(entry.header);
      entry.resume();
    }
  })();
  extract.end(data);
  await consumed;
  return headers;
}
