import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lifecycleCommand } from "../src/lifecycle/admin-cli.js";
import {
  bytes,
  call,
  headStatus,
  type PushedImage,
  pushBlob,
  pushImage,
  startTestRegistry,
  TEST_STORAGE,
  type TestRegistry,
} from "./harness.js";

/** Where the filesystem store keeps a blob (as libs/storage/src/filesystem.ts lays it out). */
function blobFile(dataDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(":") as [string, string];
  return join(dataDir, "blobs", algorithm, hex.slice(0, 2), hex);
}

// The test corrupts a blob file on disk; with S3 storage (the suite's S3 run) there is no file to corrupt.
describe.skipIf(TEST_STORAGE !== "filesystem")("scrub", () => {
  let registry: TestRegistry;
  let image: PushedImage;
  const scrub = async (...args: string[]): Promise<{ status: number; output: string }> => {
    const lines: string[] = [];
    const status = await lifecycleCommand("scrub", ["--data", registry.dataDir, ...args], (line) => lines.push(line));
    return { status, output: lines.join("\n") };
  };

  beforeAll(async () => {
    registry = await startTestRegistry();
    image = await pushImage(registry, "scrub/app", { tag: "v1", layers: 2 });
  });
  afterAll(() => registry.destroy());

  it("finds a blob corrupted on disk and one storage lost; --quarantine moves the bytes aside so a push repairs it", async () => {
    expect(await scrub()).toEqual({ status: 0, output: "scrub: 3 blobs checked, 0 corrupt, 0 missing" });

    const [corrupted, lost] = image.layers as [PushedImage["layers"][0], PushedImage["layers"][0]];
    const file = blobFile(registry.dataDir, corrupted.digest);
    const damaged = Buffer.from(await readFile(file));
    damaged[0] = (damaged[0] as number) ^ 0xff;
    await writeFile(file, damaged);
    await registry.deps.storage.delete(lost.digest);

    const found = await scrub();
    expect(found.status).toBe(1);
    expect(found.output).toMatch(new RegExp(`^corrupt ${corrupted.digest}: stored bytes hash to sha256:[0-9a-f]{64}$`, "m"));
    expect(found.output).toContain(`missing ${lost.digest}: the metadata lists it, storage lacks it`);
    expect(found.output).toContain("scrub: 3 blobs checked, 1 corrupt, 1 missing");
    // Reporting changes nothing.
    expect(await headStatus(registry, `/v2/scrub/app/blobs/${corrupted.digest}`)).toBe(200);

    const quarantined = await scrub("--quarantine");
    const moved = join(registry.dataDir, "quarantine", corrupted.digest.replace(":", "-"));
    expect(quarantined.output).toContain(`quarantined to ${moved}`);
    expect((await readFile(moved)).equals(damaged)).toBe(true);
    expect(await registry.deps.storage.stat(corrupted.digest)).toBeUndefined();
    // Both are unknown now, so a client uploads them again (a HEAD first, as every client does).
    for (const layer of [corrupted, lost]) expect(await headStatus(registry, `/v2/scrub/app/blobs/${layer.digest}`)).toBe(404);
    for (const data of image.layerData) await pushBlob(registry, "scrub/app", data);
    const repaired = await call(registry, "GET", `/v2/scrub/app/blobs/${corrupted.digest}`);
    expect((await bytes(repaired)).equals(image.layerData[0] as Buffer)).toBe(true);
    expect(await scrub()).toEqual({ status: 0, output: "scrub: 3 blobs checked, 0 corrupt, 0 missing" });
  });
});
