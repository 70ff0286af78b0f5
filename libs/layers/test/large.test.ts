import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { applyLayer, gzipLayer, packDirectory } from "../src/index.js";
import { collect, requireRoot, sha256, tempDir } from "./helpers.js";

requireRoot();
const work = tempDir("large");
const DIRS = 50;
const PER_DIR = 100;

const dirName = (d: number) => `d${String(d).padStart(2, "0")}`;
const fileName = (f: number) => `f${String(f).padStart(4, "0")}`;

describe("a layer of 5,000 small files", () => {
  it("packs, compresses and applies it as a stream", async () => {
    const source = join(work, "source");
    for (let d = 0; d < DIRS; d++) {
      mkdirSync(join(source, dirName(d)), { recursive: true });
      for (let f = 0; f < PER_DIR; f++) writeFileSync(join(source, dirName(d), fileName(f)), `file ${d}/${f}\n`.repeat((f % 7) + 1));
    }

    const blob = join(work, "layer.tar.gz");
    const digests = await gzipLayer(packDirectory(source, { sourceDateEpoch: 1_700_000_000 }), createWriteStream(blob));

    // Feed the blob in small chunks and look at the target halfway through: files are already
    // there, so the layer is applied while it streams in, not after it has been buffered.
    const target = join(work, "target");
    const compressed = readFileSync(blob);
    let seenHalfway: boolean | undefined;
    async function* source64k() {
      for (let offset = 0; offset < compressed.length; offset += 16 * 1024) {
        if (seenHalfway === undefined && offset >= compressed.length / 2) seenHalfway = existsSync(join(target, dirName(0), fileName(0)));
        yield compressed.subarray(offset, offset + 16 * 1024);
      }
    }
    const result = await applyLayer(source64k(), target);
    expect(seenHalfway).toBe(true);
    expect(result.diffId).toBe(digests.diffId);
    expect(result.size).toBe(digests.diffSize);

    const dirs = readdirSync(target).sort();
    expect(dirs).toHaveLength(DIRS);
    let files = 0;
    for (const dir of dirs) files += readdirSync(join(target, dir)).length;
    expect(files).toBe(DIRS * PER_DIR);
    expect(readFileSync(join(target, dirName(49), fileName(99)), "utf8")).toBe("file 49/99\n".repeat((99 % 7) + 1));

    // The same blob from a file stream gives the same diffID.
    expect((await applyLayer(createReadStream(blob), join(work, "again"))).diffId).toBe(digests.diffId);
    expect(sha256(await collect(packDirectory(target, { sourceDateEpoch: 1_700_000_000 })))).toBe(digests.diffId);
  });
});
