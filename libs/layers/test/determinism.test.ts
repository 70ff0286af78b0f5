import { spawnSync } from "node:child_process";
import { mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { applyLayer, diffDirectory, gzipLayer, packDirectory } from "../src/index.js";
import { native, S_IFCHR } from "../src/native.js";
import { buildTar, collect, listTar, requireRoot, sha256, streamOf, tempDir } from "./helpers.js";
import { makeKitchenSink } from "./kitchen-sink.js";

requireRoot();
const work = tempDir("determinism");
let counter = 0;
const fresh = (label: string) => join(work, `${label}-${++counter}`);

async function gzipped(tar: AsyncIterable<Uint8Array>) {
  const sink = new PassThrough();
  const blob = collect(sink);
  const digests = await gzipLayer(tar, sink);
  return { ...digests, blob: await blob };
}

/** A small tree whose mtimes are whatever "now" is when it is made. */
function makeTreeNow(root: string, offsetSeconds = 0): void {
  mkdirSync(join(root, "app/lib"), { recursive: true });
  writeFileSync(join(root, "app/main.js"), "console.log('hi')\n");
  writeFileSync(join(root, "app/lib/util.js"), "export {}\n");
  writeFileSync(join(root, "README"), "readme\n");
  // Make sure two copies really differ in time.
  const later = Date.now() / 1000 + offsetSeconds;
  utimesSync(join(root, "README"), later, later);
}

describe("deterministic layers", () => {
  it("packs the same tree made twice into identical bytes and digests", async () => {
    const a = fresh("tree");
    const b = fresh("tree");
    mkdirSync(a);
    mkdirSync(b);
    makeKitchenSink(a);
    makeKitchenSink(b); // other inodes, atimes and ctimes; same content, modes and mtimes
    const tarA = await collect(packDirectory(a));
    const tarB = await collect(packDirectory(b));
    expect(tarB.equals(tarA)).toBe(true);
    const gzA = await gzipped(packDirectory(a));
    const gzB = await gzipped(packDirectory(b));
    expect(gzB.blob.equals(gzA.blob)).toBe(true);
    expect(gzA.digest).toBe(gzB.digest);
    expect(gzA.diffId).toBe(sha256(tarA));
    expect(gzA.digest).toBe(sha256(gzA.blob));
    expect(gzA.size).toBe(gzA.blob.length);
    expect(gzA.diffSize).toBe(tarA.length);
    // No names, atimes or ctimes that could differ between machines.
    const text = tarA.toString("latin1");
    expect(text).not.toMatch(/atime=|ctime=/);
    expect((await listTar(tarA)).every((header) => header.uname === "" && header.gname === "")).toBe(true);
  });

  it("clamps mtimes to SOURCE_DATE_EPOCH, so trees made at different times give the same layer", async () => {
    const epoch = 1_500_000_000;
    const a = fresh("now");
    const b = fresh("now");
    mkdirSync(a);
    makeTreeNow(a);
    mkdirSync(b);
    makeTreeNow(b, 1000);
    writeFileSync(join(a, "old"), "old");
    writeFileSync(join(b, "old"), "old");
    utimesSync(join(a, "old"), 1_000_000_000, 1_000_000_000);
    utimesSync(join(b, "old"), 1_000_000_000, 1_000_000_000);

    expect((await collect(packDirectory(a))).equals(await collect(packDirectory(b)))).toBe(false);
    const tarA = await collect(packDirectory(a, { sourceDateEpoch: epoch }));
    const tarB = await collect(packDirectory(b, { sourceDateEpoch: epoch }));
    expect(tarB.equals(tarA)).toBe(true);
    const mtimes = Object.fromEntries((await listTar(tarA)).map((header) => [header.name, header.mtime?.getTime()]));
    expect(mtimes).toEqual({
      README: epoch * 1000,
      "app/": epoch * 1000,
      "app/lib/": epoch * 1000,
      "app/lib/util.js": epoch * 1000,
      "app/main.js": epoch * 1000,
      old: 1_000_000_000_000, // earlier than the epoch: kept
    });
    expect((await gzipped(packDirectory(a, { sourceDateEpoch: epoch }))).digest).toBe(
      (await gzipped(packDirectory(b, { sourceDateEpoch: epoch }))).digest,
    );
    expect(() => packDirectory(a, { sourceDateEpoch: 1.5 })).toThrow(/non-negative integer/);
    expect(() => diffDirectory(a, { sourceDateEpoch: -1 })).toThrow(/non-negative integer/);
  });

  it("diffs the same upper dir made twice into identical bytes", async () => {
    const make = () => {
      const upper = fresh("upper");
      mkdirSync(join(upper, "etc"), { recursive: true });
      native().mknod(join(upper, "etc/gone"), S_IFCHR, 0, 0);
      mkdirSync(join(upper, "var"));
      native().lsetxattr(join(upper, "var"), "trusted.overlay.opaque", Buffer.from("y"));
      makeTreeNow(join(upper, "var"));
      return upper;
    };
    const a = await collect(diffDirectory(make(), { sourceDateEpoch: 1_600_000_000 }));
    const b = await collect(diffDirectory(make(), { sourceDateEpoch: 1_600_000_000 }));
    expect(b.equals(a)).toBe(true);
  });

  it("writes gzip with a fixed header: no mtime, no file name, Unix OS byte", async () => {
    const dir = fresh("gz");
    mkdirSync(dir);
    makeTreeNow(dir);
    const { blob } = await gzipped(packDirectory(dir, { sourceDateEpoch: 0 }));
    expect([...blob.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    expect(zlib.gunzipSync(blob).equals(await collect(packDirectory(dir, { sourceDateEpoch: 0 })))).toBe(true);
  });
});

describe("diffID and compression", () => {
  const layerTar = () =>
    buildTar([
      { name: "hello", content: "hello world\n" },
      { name: "dir/", type: "directory" },
    ]);

  it("is the sha256 of the uncompressed tar for plain, gzip and multi-member gzip input", async () => {
    const plain = await layerTar();
    const expected = { diffId: sha256(plain), size: plain.length };
    expect(await applyLayer(streamOf(plain), fresh("plain"))).toMatchObject({ ...expected, compression: "none" });
    expect(await applyLayer(streamOf(zlib.gzipSync(plain)), fresh("gzip"))).toMatchObject({ ...expected, compression: "gzip" });
    // pigz and some registries write several gzip members; the tar is their concatenation.
    const members = Buffer.concat([zlib.gzipSync(plain.subarray(0, 700)), zlib.gzipSync(plain.subarray(700))]);
    expect(await applyLayer(streamOf(members, 100), fresh("members"))).toMatchObject(expected);
    // The system gzip, for an independent compressor.
    const gzip = spawnSync("gzip", ["-9", "-c"], { input: plain });
    expect(await applyLayer(streamOf(gzip.stdout), fresh("system-gzip"))).toMatchObject(expected);
    // A tar with bytes after the end-of-archive marker: they count too.
    const padded = Buffer.concat([plain, Buffer.alloc(10240)]);
    expect(await applyLayer(streamOf(padded), fresh("padded"))).toMatchObject({ diffId: sha256(padded), size: padded.length });
  });

  it("refuses bzip2 and xz by name (zstd: zstd.test.ts)", async () => {
    for (const [name, magic] of [
      ["bzip2", Buffer.from("BZh91AY&SY")],
      ["xz", Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0])],
    ] as const) {
      await expect(applyLayer(streamOf(magic), fresh(name))).rejects.toMatchObject({
        code: "UNSUPPORTED_COMPRESSION",
        message: `unsupported layer compression: ${name}`,
      });
    }
  });

  it("checks the compression a media type names", async () => {
    const plain = await layerTar();
    await expect(applyLayer(streamOf(plain), fresh("mismatch"), { compression: "gzip" })).rejects.toMatchObject({
      code: "UNSUPPORTED_COMPRESSION",
      message: "layer compression mismatch: expected gzip, found none",
    });
    expect((await applyLayer(streamOf(zlib.gzipSync(plain)), fresh("match"), { compression: "gzip" })).diffId).toBe(sha256(plain));
  });
});
