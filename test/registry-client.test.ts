import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { type Descriptor, digestOf, MediaType } from "@minato/oci";
import { AuthenticationError, ContentDigestError, type Progress, RegistryClient, RegistryResponseError } from "@minato/registry-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Distribution, startDistribution } from "./support/distribution.js";
import { RegistryProcess } from "./support/registry-process.js";

function blob(bytes: Buffer, mediaType: string = MediaType.ociLayerGzip): { bytes: Buffer; descriptor: Descriptor } {
  return { bytes, descriptor: { mediaType, digest: digestOf(bytes), size: bytes.byteLength } };
}

const fromOffset = (bytes: Buffer) => (offset: number) => Readable.from([bytes.subarray(offset)]);

/** A small image: config, one layer, manifest — pushed through the client. */
async function pushImage(client: RegistryClient, repository: string, tag: string) {
  const config = blob(
    Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } })),
    MediaType.ociConfig,
  );
  const layer = blob(randomBytes(300_000));
  await client.pushBlob(repository, config.descriptor, fromOffset(config.bytes));
  await client.pushBlob(repository, layer.descriptor, fromOffset(layer.bytes));
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: config.descriptor, layers: [layer.descriptor] }),
  );
  const digest = await client.putManifest(repository, tag, manifest, MediaType.ociManifest);
  return { config, layer, manifest, digest };
}

describe("registry client against Minato", () => {
  let registry: RegistryProcess;
  let client: RegistryClient;
  let dir: string;

  beforeAll(async () => {
    registry = await RegistryProcess.start();
    client = new RegistryClient({ registry: `127.0.0.1:${registry.port}` });
    dir = await mkdtemp(join(tmpdir(), "minato-client-"));
  });
  afterAll(async () => {
    await registry.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("uses plain HTTP for loopback registries", () => {
    expect(client.baseUrl).toBe(`http://127.0.0.1:${registry.port}`);
  });

  it("pushes an image, skips blobs already there, mounts across repositories", async () => {
    const { layer, manifest, digest } = await pushImage(client, "team/app", "1.0");
    expect(digest).toBe(digestOf(manifest));
    const events: Progress[] = [];
    expect(await client.pushBlob("team/app", layer.descriptor, fromOffset(layer.bytes), { onProgress: (p) => events.push(p) })).toBe(
      "exists",
    );
    expect(events.at(-1)?.status).toBe("exists");
    expect(await client.pushBlob("team/other", layer.descriptor, fromOffset(layer.bytes), { mountFrom: "team/app" })).toBe("mounted");
    expect(await client.blobSize("team/other", layer.descriptor.digest)).toBe(layer.bytes.byteLength);
    const fetched = await client.getManifest("team/app", "1.0");
    expect(fetched.bytes.equals(manifest)).toBe(true);
    expect(fetched.mediaType).toBe(MediaType.ociManifest);
    expect((await client.headManifest("team/app", digest))?.digest).toBe(digest);
    expect(await client.headManifest("team/app", "nope")).toBeUndefined();
  });

  it("resumes an upload interrupted mid-stream from the registry's offset", async () => {
    const data = blob(randomBytes(3 * 1024 * 1024 + 17));
    const opened: number[] = [];
    const open = (offset: number) => {
      opened.push(offset);
      if (opened.length > 1) return Readable.from([data.bytes.subarray(offset)]);
      // First attempt: a source that fails after 1 MiB, as a broken disk read or a dropped pipe would.
      return Readable.from(
        (async function* () {
          yield data.bytes.subarray(0, 1024 * 1024);
          await new Promise((r) => setTimeout(r, 50));
          throw new Error("source interrupted");
        })(),
      );
    };
    expect(await client.pushBlob("team/resume", data.descriptor, open)).toBe("uploaded");
    expect(opened.length).toBe(2);
    expect(opened[1]).toBeGreaterThan(0);
    const target = join(dir, "resumed");
    await client.downloadBlob("team/resume", data.descriptor, target);
    expect((await readFile(target)).equals(data.bytes)).toBe(true);
  });

  it("downloads with verification and resumes a partial file with Range", async () => {
    const data = blob(randomBytes(2 * 1024 * 1024 + 5));
    await client.pushBlob("team/dl", data.descriptor, fromOffset(data.bytes));
    const target = join(dir, "partial");
    const have = 1024 * 1024 + 3;
    await writeFile(target, data.bytes.subarray(0, have));
    const events: Progress[] = [];
    await client.downloadBlob("team/dl", data.descriptor, target, (p) => events.push(p));
    expect((await readFile(target)).equals(data.bytes)).toBe(true);
    const downloading = events.filter((e) => e.status === "downloading");
    // Every byte counted came after the partial prefix: the server honoured Range.
    expect(Math.min(...downloading.map((e) => e.current))).toBeGreaterThan(have);
    expect(events.at(-1)).toMatchObject({ status: "done", current: data.bytes.byteLength });
  });

  it("refuses a partial file whose bytes are wrong, and removes it", async () => {
    const data = blob(randomBytes(512 * 1024));
    await client.pushBlob("team/dl", data.descriptor, fromOffset(data.bytes));
    const target = join(dir, "corrupt");
    await writeFile(target, randomBytes(1000));
    await expect(client.downloadBlob("team/dl", data.descriptor, target)).rejects.toBeInstanceOf(ContentDigestError);
    await expect(stat(target)).rejects.toThrow(/ENOENT/);
  });

  it("reports the registry's error codes", async () => {
    const error = await client.getManifest("team/app", "missing").catch((e) => e);
    expect(error).toBeInstanceOf(RegistryResponseError);
    expect(error.code).toBe("MANIFEST_UNKNOWN");
    const unknown = blob(Buffer.from("never pushed"));
    await expect(client.downloadBlob("team/app", unknown.descriptor, join(dir, "x"))).rejects.toMatchObject({ code: "BLOB_UNKNOWN" });
  });

  it("lists tags across pages", async () => {
    const { manifest } = await pushImage(client, "team/tags", "t0");
    for (const tag of ["a", "b", "c"]) await client.putManifest("team/tags", tag, manifest, MediaType.ociManifest);
    expect(await client.listTags("team/tags")).toEqual(["a", "b", "c", "t0"]);
  });
});

describe("registry client against CNCF Distribution with Basic auth", () => {
  let distribution: Distribution;

  beforeAll(async () => {
    distribution = await startDistribution({ users: { alice: "wonderland" } });
  });
  afterAll(() => distribution.stop());

  it("rejects a wrong password", async () => {
    const client = new RegistryClient({ registry: distribution.registry, credentials: { username: "alice", password: "nope" } });
    await expect(client.ping()).rejects.toBeInstanceOf(AuthenticationError);
    const anonymous = new RegistryClient({ registry: distribution.registry });
    await expect(anonymous.ping()).rejects.toBeInstanceOf(AuthenticationError);
  });

  it("pushes and pulls an image byte for byte", async () => {
    const client = new RegistryClient({ registry: distribution.registry, credentials: { username: "alice", password: "wonderland" } });
    await client.ping();
    const { layer, manifest, digest } = await pushImage(client, "peer/app", "v1");
    const fetched = await client.getManifest("peer/app", "v1");
    expect(fetched.digest).toBe(digest);
    expect(fetched.bytes.equals(manifest)).toBe(true);
    const dir = await mkdtemp(join(tmpdir(), "minato-client-"));
    try {
      await client.downloadBlob("peer/app", layer.descriptor, join(dir, "layer"));
      expect((await readFile(join(dir, "layer"))).equals(layer.bytes)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(await client.listTags("peer/app")).toEqual(["v1"]);
  });
});

describe("registry client against a hostile registry", () => {
  let server: Server;
  let client: RegistryClient;
  const good = blob(Buffer.from("the real content"));
  const manifestBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: good.descriptor, layers: [] }),
  );
  const manifestDigest = digestOf(manifestBytes);

  beforeAll(async () => {
    // Answers every manifest and blob request with other bytes than those asked for.
    server = createServer((req, res) => {
      if (req.url?.includes("/manifests/")) {
        res.writeHead(200, { "content-type": MediaType.ociManifest, "docker-content-digest": manifestDigest });
        res.end(Buffer.concat([manifestBytes, Buffer.from(" ")]));
      } else if (req.url?.includes("/blobs/")) {
        res.writeHead(200, { "content-length": String(good.bytes.byteLength) });
        res.end(Buffer.from("the fake content"));
      } else res.writeHead(200).end("{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    client = new RegistryClient({ registry: `127.0.0.1:${(server.address() as AddressInfo).port}`, retries: 0 });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("rejects a manifest that does not match its digest", async () => {
    await expect(client.getManifest("x/y", manifestDigest)).rejects.toBeInstanceOf(ContentDigestError);
    await expect(client.getManifest("x/y", "latest")).rejects.toBeInstanceOf(ContentDigestError);
  });

  it("keeps nothing of a blob that does not match its digest", async () => {
    const dir = await mkdtemp(join(tmpdir(), "minato-client-"));
    try {
      await expect(client.downloadBlob("x/y", good.descriptor, join(dir, "blob"))).rejects.toBeInstanceOf(ContentDigestError);
      await expect(stat(join(dir, "blob"))).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
