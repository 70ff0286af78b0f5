import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { s3TestClient } from "../../../libs/storage/test/s3-server.js";
import { lifecycleCommand } from "../src/lifecycle/admin-cli.js";
import { bytes, call, headStatus, type PushedImage, pushBlob, pushImage, startTestRegistry, type TestRegistry } from "./harness.js";

/** Where either store keeps a blob, relative to its root (libs/storage: filesystem.ts, s3.ts). */
function blobPath(digest: string): string {
  const [algorithm, hex] = digest.split(":") as [string, string];
  return join("blobs", algorithm, hex.slice(0, 2), hex);
}

/** Overwrites a stored blob behind the registry's back: the file on disk, or the object in the bucket. */
async function corrupt(registry: TestRegistry, digest: string, bytes: Buffer): Promise<void> {
  const config = registry.storage.config;
  if (config?.driver !== "s3") return writeFile(join(registry.dataDir, blobPath(digest)), bytes);
  const client = s3TestClient(inject("minatoS3Endpoint"));
  try {
    await client.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key: `${config.s3.prefix}/${blobPath(digest)}`, Body: bytes }));
  } finally {
    client.destroy();
  }
}

describe("scrub", () => {
  let registry: TestRegistry;
  let image: PushedImage;
  const scrub = async (...args: string[]): Promise<{ status: number; output: string }> => {
    const lines: string[] = [];
    const status = await lifecycleCommand("scrub", ["--data", registry.dataDir, ...registry.storage.args, ...args], (line) =>
      lines.push(line),
    );
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
    const damaged = Buffer.from(image.layerData[0] as Buffer);
    damaged[0] = (damaged[0] as number) ^ 0xff;
    await corrupt(registry, corrupted.digest, damaged);
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
