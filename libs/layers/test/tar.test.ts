import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { applyLayer, END_OF_ARCHIVE, encodeHeader, LayerError, padding, readTar, type TarHeader } from "../src/index.js";
import { buildTar, collect, listTar, requireRoot, streamOf, tempDir } from "./helpers.js";

requireRoot();
const work = tempDir("tar");
let counter = 0;

function header(fields: Partial<TarHeader> & Pick<TarHeader, "name">): TarHeader {
  return {
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 1_700_000_000,
    linkname: "",
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
    ...fields,
  };
}

function archive(entries: [TarHeader, Buffer?][]): Buffer {
  const parts: Buffer[] = [];
  for (const [h, content] of entries) {
    parts.push(encodeHeader(h));
    if (content) parts.push(content, padding(content.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

async function readAll(data: Buffer, chunkSize = 512) {
  const out: { header: TarHeader; content: Buffer }[] = [];
  for await (const { header, body } of readTar(streamOf(data, chunkSize))) out.push({ header, content: await collect(body) });
  return out;
}

describe("tar codec", () => {
  it("round-trips what ustar cannot hold: long and non-ASCII names, big ids, old mtimes, binary xattrs", async () => {
    const long = `${"directory/".repeat(30)}file`;
    const entries: [TarHeader, Buffer?][] = [
      [header({ name: long, size: 5 }), Buffer.from("hello")],
      [header({ name: "ünïcödé/日本語.txt", size: 1 }), Buffer.from("x")],
      [header({ name: "sym", type: "symlink", linkname: `/${"target/".repeat(20)}end` })],
      [header({ name: "sym-ü", type: "symlink", linkname: "ziel-ü" })],
      [header({ name: "ids", uid: 5_000_000, gid: 4_000_000 })],
      [header({ name: "before-1970", mtime: -86_400 })],
      [
        header({
          name: "xattrs",
          xattrs: new Map([
            ["user.nl", Buffer.from("a\nb=c 1 d\n")],
            ["security.capability", Buffer.from([1, 0, 0, 2, 0x80, 0xff, 0, 0])],
            ["user.empty", Buffer.alloc(0)],
          ]),
        }),
      ],
      [header({ name: "dev", type: "block", devmajor: 259, devminor: 1_048_575, mode: 0o660 })],
      [header({ name: "dir", type: "directory", mode: 0o1777 })],
    ];
    const data = archive(entries);
    for (const chunkSize of [1, 100, 512, 70_000]) {
      const read = await readAll(data, chunkSize);
      expect(read.map((entry) => entry.header.name)).toEqual([...entries.map(([h]) => h.name).slice(0, -1), "dir/"]);
      expect(read[0]?.content.toString()).toBe("hello");
      expect(read[2]?.header.linkname).toBe(entries[2]?.[0].linkname);
      expect(read[3]?.header.linkname).toBe("ziel-ü");
      expect(read[4]?.header).toMatchObject({ uid: 5_000_000, gid: 4_000_000 });
      expect(read[5]?.header.mtime).toBe(-86_400);
      expect(read[6]?.header.xattrs).toEqual(entries[6]?.[0].xattrs);
      expect(read[7]?.header).toMatchObject({ type: "block", devmajor: 259, devminor: 1_048_575, mode: 0o660 });
      expect(read[8]?.header).toMatchObject({ type: "directory", mode: 0o1777 });
    }
    // GNU tar agrees on names, ids and link targets.
    const listing = spawnSync("tar", ["-tv", "--numeric-owner", "--full-time"], {
      input: data,
      encoding: "utf8",
      env: { ...process.env, TZ: "UTC" },
    });
    expect(listing.status).toBe(0);
    expect(listing.stdout).toContain(long);
    expect(listing.stdout).toContain("ünïcödé/日本語.txt");
    expect(listing.stdout).toMatch(/5000000\/4000000 .* ids/);
    expect(listing.stdout).toContain("1969-12-31 00:00:00 before-1970");
  });

  it("reads tar-stream's archives, and tar-stream reads ours", async () => {
    const theirs = await buildTar([
      { name: "a/", type: "directory", mode: 0o700, uid: 1, gid: 2 },
      { name: "a/file", content: "content", mode: 0o600 },
      { name: "a/link", type: "link", linkname: "a/file" },
      { name: `${"x".repeat(150)}/y`, content: "" },
      { name: "a/fifo", type: "fifo" },
    ]);
    const read = await readAll(theirs);
    expect(read.map(({ header: h }) => [h.name, h.type, h.mode.toString(8), h.linkname])).toEqual([
      ["a/", "directory", "700", ""],
      ["a/file", "file", "600", ""],
      ["a/link", "link", "644", "a/file"],
      [`${"x".repeat(150)}/y`, "file", "644", ""],
      ["a/fifo", "fifo", "644", ""],
    ]);
    expect(read[1]?.content.toString()).toBe("content");

    const ours = archive([
      [header({ name: "n".repeat(300), size: 2 }), Buffer.from("ok")],
      [header({ name: "l", type: "link", linkname: "n".repeat(300) })],
    ]);
    expect((await listTar(ours)).map((h) => [h.name, h.type, h.linkname ?? null])).toEqual([
      ["n".repeat(300), "file", null],
      ["l", "link", "n".repeat(300)],
    ]);
  });

  it("names what is wrong with a broken archive", async () => {
    const good = archive([[header({ name: "file", size: 3000 }), Buffer.alloc(3000, 7)]]);
    const cases: [string, Buffer, string, RegExp][] = [
      ["random bytes", Buffer.from("this is not a tar archive at all".repeat(40)), "INVALID_TAR", /checksum mismatch/],
      ["empty input", Buffer.alloc(0), "INVALID_TAR", /empty input/],
      ["cut inside a header", good.subarray(0, 300), "INVALID_TAR", /unexpected end/],
      ["cut inside content", good.subarray(0, 2000), "INVALID_TAR", /unexpected end/],
      ["truncated gzip", zlib.gzipSync(good).subarray(0, 40), "INVALID_TAR", /corrupt gzip data/],
    ];
    const sparse = Buffer.from(encodeHeader(header({ name: "sparse" })));
    sparse[156] = "S".charCodeAt(0);
    sparse.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of sparse) sum += byte;
    sparse.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    cases.push(["a GNU sparse file", Buffer.concat([sparse, END_OF_ARCHIVE]), "UNSUPPORTED_ENTRY", /"sparse": type "S"/]);

    for (const [what, data, code, message] of cases) {
      const error = await applyLayer(streamOf(data), `${work}/broken-${++counter}`).catch((e: unknown) => e);
      expect(error, what).toBeInstanceOf(LayerError);
      expect(error, what).toMatchObject({ code });
      expect((error as Error).message, what).toMatch(message);
    }
  });

  it("reads the empty layer (only the end-of-archive marker, as images carry it) as no entries", async () => {
    const entries = [];
    for await (const entry of readTar(streamOf(Buffer.alloc(1024)))) entries.push(entry.header.name);
    expect(entries).toEqual([]);
    const dir = `${work}/empty-${++counter}`;
    const result = await applyLayer(streamOf(zlib.gzipSync(Buffer.alloc(1024))), dir);
    // The well-known diffID of the empty layer.
    expect(result).toMatchObject({
      diffId: "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
      size: 1024,
      compression: "gzip",
    });
    expect(readdirSync(dir)).toEqual([]);
  });

  it("accepts an archive without its end-of-archive marker, and leaves unread content behind", async () => {
    const data = archive([
      [header({ name: "a", size: 1000 }), Buffer.alloc(1000, 1)],
      [header({ name: "b", size: 3 }), Buffer.from("bbb")],
    ]).subarray(0, -1024);
    const names: string[] = [];
    for await (const { header: h, body } of readTar(streamOf(data, 333))) {
      names.push(h.name);
      if (h.name === "b") expect((await collect(body)).toString()).toBe("bbb");
    }
    expect(names).toEqual(["a", "b"]);
  });

  it("accepts an archive that ends right after its last entry's data, as the docker CLI sends `build -f -`", async () => {
    const whole = archive([
      [header({ name: "a", size: 1000 }), Buffer.alloc(1000, 1)],
      [header({ name: "b", size: 3 }), Buffer.from("bbb")],
    ]);
    // No padding after "bbb" and no end-of-archive marker.
    const data = whole.subarray(0, 512 + 1024 + 512 + 3);
    const read = await readAll(data, 100);
    expect(read.map((e) => [e.header.name, e.content.length])).toEqual([
      ["a", 1000],
      ["b", 3],
    ]);
    // Cut one byte into the padding instead: that is a truncated archive.
    const error = await readAll(whole.subarray(0, 512 + 1024 + 512 + 4)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LayerError);
    expect((error as Error).message).toMatch(/unexpected end/);
  });
});
