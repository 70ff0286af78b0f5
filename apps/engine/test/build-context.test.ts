/**
 * The build context's index (as root: unpacking sets owners): what cache keys read from it must be
 * what they would read from the unpacked context, entry for entry, for the tar shapes a context can
 * have (implicit parents, replaced entries, hard links, a setgid parent, a root entry, gzip), with
 * .dockerignore applied on either side; tars it does not mirror are read from disk instead.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeader } from "@minato/layers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../src/api/errors.js";
import { BuildContext } from "../src/builder/context.js";
import { DiskTree, pathDigest, type SourceTree } from "../src/builder/fs.js";

type Entry = Partial<TarHeader> & { name: string; content?: string };

function tarOf(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const content = Buffer.from(entry.content ?? "");
    const type = entry.type ?? "file";
    parts.push(
      encodeHeader({
        type,
        mode: type === "directory" ? 0o755 : 0o644,
        uid: 0,
        gid: 0,
        size: type === "file" ? content.length : 0,
        mtime: 1_700_000_000,
        linkname: "",
        devmajor: 0,
        devminor: 0,
        xattrs: new Map(),
        ...entry,
      }),
    );
    if (type === "file") parts.push(content, padding(content.length));
  }
  return Buffer.concat([...parts, END_OF_ARCHIVE]);
}

/** Every entry of a tree with what a cache key reads of it (sorted paths). */
async function listing(tree: SourceTree): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const walk = async (rel: string): Promise<void> => {
    const stats = await tree.lstat(rel);
    out[rel || "/"] = {
      ...stats,
      size: stats?.type === "file" ? stats.size : 0,
      ...(stats?.type === "symlink" ? { link: await tree.readlink(rel) } : {}),
      ...(stats?.type === "file" ? { digest: await tree.fileDigest(rel) } : {}),
    };
    if (stats?.type === "directory") for (const name of (await tree.readdir(rel)).sort()) await walk(rel ? `${rel}/${name}` : name);
  };
  await walk("");
  return out;
}

const SHAPES: Entry[] = [
  { name: "./", type: "directory", mode: 0o750, uid: 5, gid: 6 },
  { name: "Dockerfile", content: "FROM scratch\nCOPY . /\n" },
  { name: "a/b/c.txt", content: "c\n", mode: 0o600, uid: 1000, gid: 1000 },
  { name: "d/", type: "directory", mode: 0o2775, gid: 50 },
  { name: "d/e/f", content: "f\n" },
  { name: "x", content: "a file first\n" },
  { name: "x/", type: "directory", mode: 0o700 },
  { name: "x/y", content: "y\n" },
  { name: "z/w", content: "w\n" },
  { name: "z", content: "then a file\n" },
  { name: "a/", type: "directory", mode: 0o711, uid: 7 },
  { name: "l", type: "symlink", linkname: "a/b", mode: 0o644, uid: 3 },
  { name: "h", type: "link", linkname: "./a/b/c.txt" },
  { name: "/abs/suid", content: "#!/bin/sh\n", mode: 0o4755, uid: 1000 },
  { name: "empty", content: "" },
  { name: "notes.md", content: "ignored\n" },
  { name: "data/skip1.txt", content: "skipped\n" },
  { name: "data/skip-keep.txt", content: "kept\n" },
  { name: "ex/drop", content: "dropped\n" },
  { name: "ex/keep", content: "kept\n" },
  { name: "only/excluded.md", content: "x\n" },
];
const IGNORE = ["*.md", "**/*.md", "data/skip*", "!data/skip-keep.txt", "ex", "!ex/keep"];

describe("build context index", () => {
  let work: string;
  let count = 0;
  const receive = async (tar: Buffer, dockerfile = "Dockerfile") => {
    const dir = join(work, `c${count++}`);
    await mkdir(dir);
    return BuildContext.receive(Readable.from([tar]), dir, dockerfile);
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-context-"));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it("gives every entry as the unpacked context has it, plain or gzipped", async () => {
    for (const tar of [tarOf(SHAPES), gzipSync(tarOf(SHAPES))]) {
      const context = await receive(tar);
      expect(context.tree).not.toBeInstanceOf(DiskTree);
      const indexed = await listing(context.tree);
      const unpacked = await listing(new DiskTree(await context.dir()));
      expect(indexed).toEqual(unpacked);
      expect(indexed["d/e"]).toMatchObject({ type: "directory", mode: 0o40755, gid: 50 });
      expect(indexed.l).toMatchObject({ mode: 0o120777, uid: 3, link: "a/b" });
      expect(indexed.h).toEqual(indexed["a/b/c.txt"]);
      expect(await pathDigest(context.tree, "")).toBe(await pathDigest(new DiskTree(await context.dir()), ""));
    }
  });

  it("applies .dockerignore to the index as to the unpacked context, whichever comes first", async () => {
    const late = await receive(tarOf(SHAPES));
    await late.applyIgnore(IGNORE);
    const early = await receive(tarOf(SHAPES));
    await early.dir();
    await early.applyIgnore(IGNORE);
    const indexed = await listing(late.tree);
    expect(indexed).toEqual(await listing(new DiskTree(await late.dir())));
    expect(indexed).toEqual(await listing(new DiskTree(await early.dir())));
    expect(Object.keys(indexed)).toContain("data/skip-keep.txt");
    expect(Object.keys(indexed)).toContain("ex/keep");
    // A directory that is not excluded itself stays, emptied.
    expect(indexed.only).toMatchObject({ type: "directory" });
    for (const gone of ["notes.md", "data/skip1.txt", "ex/drop", "only/excluded.md"]) expect(Object.keys(indexed)).not.toContain(gone);
  });

  it("reads the Dockerfile and its ignore file, through a symlink too", async () => {
    const context = await receive(
      tarOf([
        { name: "build/app.Dockerfile", content: "FROM scratch\n" },
        { name: "build/app.Dockerfile.dockerignore", content: "*.tmp\n" },
        { name: "Dockerfile", type: "symlink", linkname: "build/app.Dockerfile" },
      ]),
      "build/app.Dockerfile",
    );
    expect(await context.readBuildFiles("build/app.Dockerfile")).toEqual({ text: "FROM scratch\n", ignore: ["*.tmp"] });
    expect((await context.readBuildFiles("Dockerfile")).text).toBe("FROM scratch\n");
    await expect(context.readBuildFiles("missing")).rejects.toThrow("Cannot locate specified Dockerfile: missing");
  });

  it("reads from disk a tar it does not mirror, and refuses one that escapes", async () => {
    const whiteout = await receive(tarOf([...SHAPES, { name: "a/.wh.gone", content: "" }]));
    expect(whiteout.tree).toBeInstanceOf(DiskTree);
    expect(await whiteout.readBuildFiles("Dockerfile")).toMatchObject({ text: "FROM scratch\nCOPY . /\n" });
    const fifo = await receive(
      tarOf([
        { name: "Dockerfile", content: "FROM scratch\n" },
        { name: "p", type: "fifo" },
      ]),
    );
    expect(fifo.tree).toBeInstanceOf(DiskTree);
    expect((await fifo.tree.lstat("p"))?.type).toBe("other");

    const escapes = [
      tarOf([{ name: "../../x", content: "x" }]),
      tarOf([
        { name: "l", type: "symlink", linkname: "/etc" },
        { name: "l/passwd", content: "x" },
      ]),
      tarOf([{ name: "h", type: "link", linkname: "missing" }]),
    ];
    for (const tar of escapes) {
      const refused = await receive(tar).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ApiError);
      expect((refused as ApiError).status).toBe(400);
      expect((refused as Error).message).toMatch(/^invalid build context: /);
    }
  });
});
