import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { blobPath, listUploads, verifyBlobStore } from "./support/data-dir.js";
import { header, RegistryClient, sha256 } from "./support/http.js";
import { OCI } from "./support/oci-layout.js";
import { RegistryProcess } from "./support/registry-process.js";

/** Many clients pushing the same content, and racing for one tag, against the real binary. */

const CLIENTS = 16;
const MiB = 1024 * 1024;

let registry: RegistryProcess;
let client: RegistryClient;

beforeAll(async () => {
  registry = await RegistryProcess.start();
  client = new RegistryClient(registry.url);
});

afterAll(async () => {
  await registry?.dispose();
});

function manifestFor(config: Buffer, layer: Buffer, annotations: Record<string, string>): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI.manifest,
      config: { mediaType: OCI.config, digest: sha256(config), size: config.byteLength },
      layers: [{ mediaType: OCI.layerGzip, digest: sha256(layer), size: layer.byteLength }],
      annotations,
    }),
  );
}

function configFor(label: string): Buffer {
  return Buffer.from(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: { Labels: { label } } }),
  );
}

/** The tag resolves to one manifest whose bytes hash to the digest it is served under; returns that digest. */
async function resolveTag(repo: string, tag: string): Promise<string> {
  const response = await client.request("GET", `/v2/${repo}/manifests/${tag}`, { headers: { Accept: OCI.manifest } });
  expect(response.status).toBe(200);
  const digest = header(response.headers, "docker-content-digest") as string;
  expect(sha256(response.body)).toBe(digest);
  const byDigest = await client.request("GET", `/v2/${repo}/manifests/${digest}`, { headers: { Accept: OCI.manifest } });
  expect(byDigest.status).toBe(200);
  expect(byDigest.body.equals(response.body)).toBe(true);
  return digest;
}

async function expectTags(repo: string, tags: string[]): Promise<void> {
  const response = await client.request("GET", `/v2/${repo}/tags/list`);
  expect(response.status).toBe(200);
  expect(JSON.parse(response.body.toString("utf8"))).toEqual({ name: repo, tags });
}

describe(`${CLIENTS} concurrent clients`, () => {
  test("push the same 4 MiB blob in chunks, each in its own session, then the same manifest to the same tag", async () => {
    const repo = "e2e/same";
    const layer = randomBytes(4 * MiB);
    const config = configFor("same");
    const digest = sha256(layer);

    // Every client does its own POST, PATCHes (512 KiB chunks) and PUT at the same time.
    const pushed = await Promise.all(Array.from({ length: CLIENTS }, () => client.pushBlob(repo, layer, 512 * 1024)));
    expect(pushed).toEqual(Array(CLIENTS).fill(digest));
    await client.pushBlob(repo, config);

    const manifest = manifestFor(config, layer, { "org.opencontainers.image.title": "same" });
    const responses = await Promise.all(Array.from({ length: CLIENTS }, () => client.pushManifest(repo, "latest", manifest, OCI.manifest)));
    for (const response of responses) {
      expect(response.status).toBe(201);
      expect(header(response.headers, "docker-content-digest")).toBe(sha256(manifest));
    }

    expect(await resolveTag(repo, "latest")).toBe(sha256(manifest));
    await expectTags(repo, ["latest"]);
    const blob = await client.getBlob(repo, digest);
    expect(blob.status).toBe(200);
    expect(blob.body.equals(layer)).toBe(true);
    expect((await readFile(blobPath(registry.dataDir, digest))).equals(layer)).toBe(true);
    expect(await listUploads(registry.dataDir)).toEqual([]);
    expect(await verifyBlobStore(registry.dataDir)).toEqual([digest, sha256(config)].sort());
    expect(registry.errorLogs()).toEqual([]);
  });

  test("push different manifests to the same tag: every push succeeds and the tag names one of them", async () => {
    const repo = "e2e/race";
    const layer = randomBytes(2 * MiB);

    // Each client pushes the shared layer, its own config and its own manifest, all at once.
    const pushes = Array.from({ length: CLIENTS }, async (_, i) => {
      const config = configFor(`client-${i}`);
      await client.pushBlob(repo, layer, 256 * 1024);
      await client.pushBlob(repo, config);
      const manifest = manifestFor(config, layer, { "org.opencontainers.image.title": `client-${i}` });
      const response = await client.pushManifest(repo, "latest", manifest, OCI.manifest);
      return { manifest, response };
    });
    const results = await Promise.all(pushes);
    const digests = new Set<string>();
    for (const { manifest, response } of results) {
      expect(response.status).toBe(201);
      expect(header(response.headers, "docker-content-digest")).toBe(sha256(manifest));
      digests.add(sha256(manifest));
    }
    expect(digests.size).toBe(CLIENTS);

    const winner = await resolveTag(repo, "latest");
    expect(digests.has(winner)).toBe(true);
    await expectTags(repo, ["latest"]);
    // Every pushed manifest stays readable by digest.
    for (const { manifest } of results) {
      const response = await client.request("GET", `/v2/${repo}/manifests/${sha256(manifest)}`, { headers: { Accept: OCI.manifest } });
      expect(response.status).toBe(200);
      expect(response.body.equals(manifest)).toBe(true);
    }
    const blob = await client.getBlob(repo, sha256(layer));
    expect(blob.status).toBe(200);
    expect(blob.body.equals(layer)).toBe(true);
    expect(await listUploads(registry.dataDir)).toEqual([]);
    const stored = await verifyBlobStore(registry.dataDir);
    expect(stored).toContain(sha256(layer));
    for (const { manifest } of results) {
      const config = JSON.parse(manifest.toString("utf8")).config.digest as string;
      expect(stored).toContain(config);
    }
    expect(registry.errorLogs()).toEqual([]);
  });
});
