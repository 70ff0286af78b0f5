// zstd layers on Node 20 through the zstd program: plain, multi-frame and zstd:chunked-style streams
// (skippable frames between and after the data) unpack to the same diff ID as the tar; corrupt and
// truncated streams are refused; zstdCompress round-trips through an independent decoder.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { applyLayer, compressLayer, zstdCompress } from "../src/index.js";
import { buildTar, collect, sha256, streamOf, tempDir } from "./helpers.js";

const zstd = (input: Buffer, ...args: string[]) => {
  const result = spawnSync("zstd", ["-c", "-q", ...args], { input, maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`zstd ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
};

/** A skippable frame (RFC 8878 §3.1.2): magic 0x184D2A5?, a 4-byte little-endian size, then user data. */
function skippableFrame(data: Buffer, nibble = 0xe): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(0x184d2a50 + nibble, 0);
  header.writeUInt32LE(data.length, 4);
  return Buffer.concat([header, data]);
}

const layerTar = () =>
  buildTar([
    { name: "etc/", type: "directory" },
    { name: "etc/motd", content: "hello from a zstd layer\n".repeat(100) },
    { name: "bin/blob", content: randomBytes(300_000) },
  ]);

describe("zstd layers (the zstd program, from Debian's zstd, which setup installs)", () => {
  it("unpacks single-frame, multi-frame and zstd:chunked-style streams to the tar's diff ID", async () => {
    const plain = await layerTar();
    const expected = { diffId: sha256(plain), size: plain.length, compression: "zstd" };
    expect(await applyLayer(streamOf(zstd(plain, "-19")), tempDir("zstd-one"))).toMatchObject(expected);
    // zstd:chunked compresses each file on its own frame and appends its table of contents in skippable frames.
    const half = Math.floor(plain.length / 2);
    const chunked = Buffer.concat([
      zstd(plain.subarray(0, half)),
      skippableFrame(Buffer.from("between frames")),
      zstd(plain.subarray(half)),
      skippableFrame(Buffer.from('{"version":1,"entries":[]}'), 0x0),
    ]);
    expect(await applyLayer(streamOf(chunked, 333), tempDir("zstd-chunked"))).toMatchObject(expected);
  });

  it("refuses corrupt and truncated zstd data with a clear error, and checks the media type's compression", async () => {
    const plain = await layerTar();
    const good = zstd(plain);
    // A frame header with its reserved bit set: zstd refuses it before any output.
    const badHeader = Buffer.from(good);
    badHeader[4] = (badHeader[4] as number) | 0x08;
    await expect(applyLayer(streamOf(badHeader), tempDir("zstd-header"))).rejects.toMatchObject({
      code: "INVALID_TAR",
      message: expect.stringContaining("corrupt zstd data"),
    });
    // Damage inside the data: refused, by zstd or by the tar reader, whichever sees it first.
    const damaged = Buffer.from(good);
    damaged.fill(0x55, 20, 60);
    await expect(applyLayer(streamOf(damaged), tempDir("zstd-damaged"))).rejects.toMatchObject({ code: "INVALID_TAR" });
    await expect(applyLayer(streamOf(good.subarray(0, good.length - 100)), tempDir("zstd-short"))).rejects.toMatchObject({
      code: "INVALID_TAR",
    });
    await expect(applyLayer(streamOf(good), tempDir("zstd-mismatch"), { compression: "gzip" })).rejects.toMatchObject({
      message: "layer compression mismatch: expected gzip, found zstd",
    });
  });

  it("zstdCompress makes a stream zstd itself decodes to the same bytes", async () => {
    const plain = await layerTar();
    const compressed = await collect(zstdCompress(streamOf(plain, 4096)));
    expect(compressed.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    expect(sha256(zstd(compressed, "-d"))).toBe(sha256(plain));
    // The same input gives the same blob (a layer's digest must not depend on the run).
    expect(sha256(await collect(zstdCompress(streamOf(plain, 100_000))))).toBe(sha256(compressed));
  });

  it("compressLayer writes a zstd layer blob whose digests are the blob's and the tar's, and which unpacks", async () => {
    const plain = await layerTar();
    const sink = new PassThrough();
    const [digests, blob] = await Promise.all([compressLayer(streamOf(plain), sink, "zstd"), collect(sink)]);
    expect(blob.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    expect(digests).toEqual({ diffId: sha256(plain), diffSize: plain.length, digest: sha256(blob), size: blob.length });
    expect(sha256(zstd(blob, "-d"))).toBe(sha256(plain));
    expect(await applyLayer(streamOf(blob), tempDir("zstd-compressed"))).toMatchObject({ diffId: sha256(plain), compression: "zstd" });
    // A corrupt source fails the write instead of storing a truncated blob.
    const failing = new PassThrough();
    failing.destroy(new Error("source went away"));
    await expect(compressLayer(failing, new PassThrough().resume(), "zstd")).rejects.toThrow("source went away");
  });
});
