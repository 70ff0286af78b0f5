// The build context: the tar the client sends. It is read once, as it arrives, into an index of its
// entries (type, mode, owner, size, content digest) that gives what unpacking it would give (the path
// rules and results of applyLayer: no `..`, later entries replace earlier ones, missing parents made
// 0755), and the tar is kept as it came in a file. Cache keys are computed from the index, so a
// cached build never writes the context out; it is unpacked only when a step must run with it (a
// COPY that misses the cache, a bind mount). A tar the index does not mirror exactly (whiteout names,
// devices, entries under a symlink or a file, odd hard links) is unpacked at once and read from disk.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, chown, lstat, mkdir, open, readdir, readFile, rm, rmdir } from "node:fs/promises";
import { join, posix } from "node:path";
import type { Readable } from "node:stream";
import { createMatcher, type DockerignoreMatcher, dockerignoreFor, parseDockerignore } from "@minato/dockerfile";
import { applyLayer, archivePathComponents, decompressLayer, LayerError, readTar, type TarHeader } from "@minato/layers";
import { badRequest } from "../api/errors.js";
import { DiskTree, resolvePath, type SourceTree, type TreeStat } from "./fs.js";

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_ISGID = 0o2000;

interface Node {
  type: "file" | "directory" | "symlink";
  /** Permission bits (0o7777) as the unpacked entry has them. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** sha256 (hex) of a file's content. */
  digest: string;
  linkname: string;
  children: Map<string, Node> | undefined;
}

const directory = (mode: number, uid: number, gid: number): Node => ({
  type: "directory",
  mode,
  uid,
  gid,
  size: 0,
  digest: "",
  linkname: "",
  children: new Map(),
});

/** Thrown inside the indexer for an entry it does not mirror: the tar is then unpacked instead. */
class NotMirrored extends Error {}

/** The build context: its index as a {@link SourceTree}, and its directory on disk when a step needs one. */
export class BuildContext {
  readonly #tarFile: string;
  readonly #dir: string;
  /** The root entry of the index, or undefined when the context is read from disk. */
  #root: Node | undefined = directory(0o755, 0, 0);
  /** Contents of the files read before the build (the Dockerfile, the ignore files), by path. */
  readonly #captured = new Map<string, Buffer>();
  #ignore: string[] = [];
  #extracted: Promise<string> | undefined;

  private constructor(work: string) {
    this.#tarFile = join(work, "context.tar");
    this.#dir = join(work, "context");
  }

  /**
   * Reads a context tar (plain or gzip) into a context kept under `work`, a private directory. The
   * contents of `keep` (paths in the context: the Dockerfile and its ignore files) stay in memory.
   */
  static async receive(body: Readable, work: string, dockerfile: string): Promise<BuildContext> {
    const context = new BuildContext(work);
    const keep = new Set([dockerfile, ...dockerignoreFor(dockerfile)].map((name) => posix.normalize(`/${name}`).slice(1)));
    const file = await open(context.#tarFile, "wx", 0o600);
    try {
      // The bytes go to the file as they are read, so the tar kept is exactly what came in.
      async function* saved(): AsyncGenerator<Buffer> {
        for await (const chunk of body) {
          await file.write(chunk as Buffer);
          yield chunk as Buffer;
        }
      }
      const { tar } = await decompressLayer(saved());
      for await (const { header, body: content } of readTar(tar)) {
        if (!context.#root) continue;
        try {
          await context.#add(header, content, keep);
        } catch (error) {
          if (!(error instanceof NotMirrored)) throw error;
          context.#root = undefined;
          context.#captured.clear();
        }
      }
    } catch (error) {
      if (error instanceof LayerError) throw badRequest(`invalid build context: ${error.message}`);
      throw error;
    } finally {
      await file.close();
    }
    if (!context.#root) {
      try {
        await context.dir();
      } catch (error) {
        if (error instanceof LayerError) throw badRequest(`invalid build context: ${error.message}`);
        throw error;
      }
    }
    return context;
  }

  /** Adds one tar entry to the index as applyLayer would unpack it (its comments say why each rule). */
  async #add(header: TarHeader, content: AsyncIterable<Buffer>, keep: Set<string>): Promise<void> {
    const parts = archivePathComponents(header.name);
    if (parts.some((part) => part.startsWith(".wh."))) throw new NotMirrored();
    const root = this.#root as Node;
    const attributes = (node: Node) => {
      node.mode = header.mode & 0o7777;
      node.uid = header.uid;
      node.gid = header.gid;
    };
    if (parts.length === 0) {
      if (header.type !== "directory") throw new NotMirrored();
      attributes(root);
      return;
    }
    let parent = root;
    for (const part of parts.slice(0, -1)) {
      let next = parent.children?.get(part);
      if (!next) {
        // A missing parent is made 0755 by root; in a setgid directory it takes the directory's group.
        next = directory(0o755, 0, parent.mode & S_ISGID ? parent.gid : 0);
        parent.children?.set(part, next);
      }
      if (next.type !== "directory") throw new NotMirrored();
      parent = next;
    }
    const name = parts.at(-1) as string;
    const existing = parent.children?.get(name);
    if (existing?.type === "directory" && header.type === "directory") {
      attributes(existing);
      return;
    }
    this.#captured.delete(parts.join("/"));
    let node: Node;
    switch (header.type) {
      case "directory":
        node = directory(0, 0, 0);
        attributes(node);
        break;
      case "file": {
        const hash = createHash("sha256");
        const kept: Buffer[] | undefined = keep.has(parts.join("/")) ? [] : undefined;
        for await (const chunk of content) {
          hash.update(chunk);
          kept?.push(Buffer.from(chunk));
        }
        if (kept) this.#captured.set(parts.join("/"), Buffer.concat(kept));
        node = { type: "file", mode: 0, uid: 0, gid: 0, size: header.size, digest: hash.digest("hex"), linkname: "", children: undefined };
        attributes(node);
        break;
      }
      case "symlink":
        // symlink(2) makes links 0777, whatever the header says.
        node = {
          type: "symlink",
          mode: 0o777,
          uid: header.uid,
          gid: header.gid,
          size: 0,
          digest: "",
          linkname: header.linkname,
          children: undefined,
        };
        break;
      case "link": {
        // A hard link shares the earlier entry's inode: the same type, metadata and content.
        let target: Node | undefined = root;
        for (const part of header.linkname.split("/").filter((p) => p !== "" && p !== ".")) {
          if (target?.type !== "directory" || part === "..") throw new NotMirrored();
          target = target.children?.get(part);
        }
        if (!target || target === root || target.type === "directory") throw new NotMirrored();
        node = target;
        break;
      }
      default:
        throw new NotMirrored();
    }
    parent.children?.set(name, node);
  }

  /** The context's files: the index, or the unpacked directory when the index could not mirror the tar. */
  get tree(): SourceTree {
    return this.#root ? new IndexTree(this.#root) : new DiskTree(this.#dir);
  }

  /** The context unpacked on disk (once, on first use), `.dockerignore` applied. */
  dir(): Promise<string> {
    this.#extracted ??= (async () => {
      // The root as the index has it: made here, 0755, root's.
      await mkdir(this.#dir);
      await chown(this.#dir, 0, 0);
      await chmod(this.#dir, 0o755);
      await applyLayer(createReadStream(this.#tarFile), this.#dir);
      await pruneDirectory(this.#dir, this.#ignore);
      return this.#dir;
    })();
    return this.#extracted;
  }

  /** Reads the Dockerfile (a path inside the context) and the ignore patterns that go with it. */
  async readBuildFiles(dockerfile: string): Promise<{ text: string; ignore: string[] }> {
    const text = await this.#read(dockerfile);
    if (text === undefined) throw badRequest(`Cannot locate specified Dockerfile: ${dockerfile}`);
    for (const name of dockerignoreFor(dockerfile)) {
      const found = await this.#read(name);
      if (found !== undefined) return { text, ignore: parseDockerignore(found) };
    }
    return { text, ignore: [] };
  }

  async #read(path: string): Promise<string | undefined> {
    const tree = this.tree;
    const rel = await resolvePath(tree, path);
    const stats = await tree.lstat(rel);
    if (stats?.type !== "file") return undefined;
    const captured = this.#captured.get(rel);
    if (captured && this.#root) return captured.toString("utf8");
    return readFile(join(await this.dir(), rel), "utf8").catch(() => undefined);
  }

  /** Removes what `.dockerignore` excludes from the context (the classic builder does the same daemon-side). */
  async applyIgnore(patterns: string[]): Promise<void> {
    this.#ignore = patterns;
    if (patterns.length === 0) return;
    if (this.#root) pruneIndex(this.#root, "", createMatcher(patterns));
    if (this.#extracted) await pruneDirectory(await this.#extracted, patterns);
  }
}

/** The index as a {@link SourceTree}. */
class IndexTree implements SourceTree {
  constructor(readonly root: Node) {}

  #node(rel: string): Node | undefined {
    let node: Node | undefined = this.root;
    if (rel === "") return node;
    for (const part of rel.split("/")) node = node?.children?.get(part);
    return node;
  }

  async lstat(rel: string): Promise<TreeStat | undefined> {
    const node = this.#node(rel);
    if (!node) return undefined;
    const type = node.type === "file" ? S_IFREG : node.type === "directory" ? S_IFDIR : S_IFLNK;
    return { type: node.type, mode: type | node.mode, uid: node.uid, gid: node.gid, size: node.size };
  }

  async readdir(rel: string): Promise<string[]> {
    const children = this.#node(rel)?.children;
    if (!children) throw new Error(`${rel}: not a directory`);
    return [...children.keys()];
  }

  async readlink(rel: string): Promise<string> {
    const node = this.#node(rel);
    if (node?.type !== "symlink") throw new Error(`${rel}: not a symlink`);
    return node.linkname;
  }

  async fileDigest(rel: string): Promise<string> {
    const node = this.#node(rel);
    if (node?.type !== "file") throw new Error(`${rel}: not a file`);
    return node.digest;
  }
}

/** {@link pruneDirectory} on the index. */
function pruneIndex(node: Node, rel: string, matcher: DockerignoreMatcher): void {
  for (const [name, child] of node.children ?? []) {
    const r = rel === "" ? name : `${rel}/${name}`;
    const excluded = matcher(r);
    if (child.type === "directory") {
      if (excluded && !matcher.mayHaveExceptions(r)) {
        node.children?.delete(name);
        continue;
      }
      pruneIndex(child, r, matcher);
      if (excluded && child.children?.size === 0) node.children?.delete(name);
    } else if (excluded) node.children?.delete(name);
  }
}

/**
 * Removes what the patterns exclude from an unpacked context: an excluded directory goes whole
 * unless an exception may keep something in it, and then stays only if something did.
 */
async function pruneDirectory(dir: string, patterns: string[]): Promise<void> {
  if (patterns.length === 0) return;
  const matcher = createMatcher(patterns);
  const prune = async (path: string, rel: string): Promise<void> => {
    for (const name of await readdir(path)) {
      const child = join(path, name);
      const r = rel === "" ? name : `${rel}/${name}`;
      const excluded = matcher(r);
      const stats = await lstat(child);
      if (stats.isDirectory()) {
        if (excluded && !matcher.mayHaveExceptions(r)) {
          await rm(child, { recursive: true, force: true });
          continue;
        }
        await prune(child, r);
        if (excluded) await rmdir(child).catch(() => undefined);
      } else if (excluded) await rm(child, { force: true });
    }
  };
  await prune(dir, "");
}
