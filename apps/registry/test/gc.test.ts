import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { digestOf, MediaType } from "@minato/oci";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { lifecycleCommand } from "../src/lifecycle/admin-cli.js";
import { collectGarbage } from "../src/lifecycle/collector.js";
import { EMPTY_POLICY } from "../src/lifecycle/policy.js";
import {
  bytes,
  call,
  descriptorOf,
  expectError,
  headStatus,
  pushBlob,
  pushImage,
  pushManifest,
  putManifest,
  randomBlob,
  sessionsOf,
  startTestRegistry,
  startUpload,
  storedObjects,
  type TestRegistry,
  uploadId,
} from "./harness.js";

/**
 * Garbage collection on the registry's storage (the filesystem here, the S3 bucket in the suite's S3
 * run): `gc` is run beside the live registry, on its data directory and storage, as an operator would.
 */
describe("garbage collection", () => {
  let registry: TestRegistry;
  const gc = async (...args: string[]): Promise<string> => {
    const lines: string[] = [];
    await lifecycleCommand("gc", ["--data", registry.dataDir, ...registry.storage.args, ...args], (line) => lines.push(line));
    return lines.join("\n");
  };
  /** Storage objects under blobs/ (either driver names them by digest). */
  const blobObjects = async () => (await storedObjects(registry)).filter((path) => path.startsWith("blobs/")).sort();
  const storedDigest = (objects: string[], digest: string) => objects.some((path) => path.endsWith(digest.split(":")[1] as string));

  beforeEach(async () => {
    registry = await startTestRegistry();
  });
  afterEach(() => registry.destroy());

  /** Two images in two repositories sharing one layer, each with a layer and a config of its own. */
  async function pushSharing() {
    const shared = randomBlob(4096);
    const images = [];
    for (const name of ["gc/a", "gc/b"]) {
      const own = randomBlob(8192);
      const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", name }));
      for (const blob of [shared, own, config]) await pushBlob(registry, name, blob);
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: descriptorOf(MediaType.ociConfig, config),
        layers: [descriptorOf(MediaType.ociLayerGzip, shared), descriptorOf(MediaType.ociLayerGzip, own)],
      };
      const pushed = await pushManifest(registry, name, "v1", manifest);
      images.push({ name, own, config, manifest, digest: pushed.digest });
    }
    return { shared, images: images as [(typeof images)[0], (typeof images)[0]] };
  }

  it("push, delete, gc: the bytes leave storage, the shared layer stays, the other image still pulls; a dry run changes nothing", async () => {
    const { shared, images } = await pushSharing();
    const [a, b] = images;
    const before = await blobObjects();
    expect(before).toHaveLength(5);

    const deleted = await call(registry, "DELETE", `/v2/gc/a/manifests/${a.digest}`);
    expect(deleted.statusCode).toBe(202);
    await deleted.body.dump();
    // Deleting only unlinks: every byte is still there.
    expect(await blobObjects()).toEqual(before);

    const dry = await gc("--dry-run", "--grace", "0");
    const freed = a.own.byteLength + a.config.byteLength;
    expect(dry).toContain(`would delete blob ${a.manifest.layers[1]?.digest} (${a.own.byteLength} bytes)`);
    expect(dry).toContain(`would delete blob ${a.manifest.config.digest}`);
    expect(dry).not.toContain(`delete blob ${a.manifest.layers[0]?.digest}`);
    expect(dry).toMatch(new RegExp(`gc \\(dry run\\): 2 blobs, ${freed} bytes would be freed`));
    expect(await blobObjects()).toEqual(before);
    // The links survive a dry run too: the blobs are still readable in gc/a.
    expect(await headStatus(registry, `/v2/gc/a/blobs/${a.manifest.layers[1]?.digest}`)).toBe(200);

    const real = await gc("--grace", "0");
    expect(real).toMatch(new RegExp(`^gc: 2 blobs, ${freed} bytes freed;`, "m"));
    expect(real).toContain("removed empty repository gc/a");
    const after = await blobObjects();
    expect(after).toHaveLength(3);
    expect(storedDigest(after, a.manifest.layers[1]?.digest as string)).toBe(false);
    expect(storedDigest(after, a.manifest.config.digest)).toBe(false);
    expect(storedDigest(after, a.manifest.layers[0]?.digest as string)).toBe(true);
    expect(await headStatus(registry, `/v2/gc/a/blobs/${a.manifest.layers[1]?.digest}`)).toBe(404);

    // gc/b pulls completely, shared layer included.
    const manifest = await call(registry, "GET", "/v2/gc/b/manifests/v1", { headers: { accept: MediaType.ociManifest } });
    expect(manifest.statusCode).toBe(200);
    await manifest.body.dump();
    for (const [digest, data] of [
      [b.manifest.layers[0]?.digest, shared],
      [b.manifest.layers[1]?.digest, b.own],
      [b.manifest.config.digest, b.config],
    ] as const) {
      const res = await call(registry, "GET", `/v2/gc/b/blobs/${digest}`);
      expect(res.statusCode).toBe(200);
      expect((await bytes(res)).equals(data)).toBe(true);
    }
    const catalog = await call(registry, "GET", "/v2/_catalog");
    expect(((await catalog.body.json()) as { repositories: string[] }).repositories).toEqual(["gc/b"]);

    // A second run finds nothing more.
    expect(await gc("--grace", "0")).toMatch(/^gc: 0 blobs, 0 bytes freed; 0 manifests/m);

    // Deleting the last image frees the shared layer as well.
    const last = await call(registry, "DELETE", `/v2/gc/b/manifests/${b.digest}`);
    await last.body.dump();
    await gc("--grace", "0");
    expect(await blobObjects()).toEqual([]);
  });

  it("keeps blobs uploaded within the grace period, and untagged manifests unless asked", async () => {
    const image = await pushImage(registry, "gc/grace", { layers: 2 });
    await pushImage(registry, "gc/grace", { tag: "kept" });
    const unreferenced = await pushBlob(registry, "gc/grace", randomBlob(1000));
    const before = await blobObjects();

    expect(await gc("--grace", "1h", "--delete-untagged")).toMatch(/^gc: 0 blobs, 0 bytes freed; 0 manifests/m);
    // Zero grace, but the untagged manifest is kept (and so are its blobs): only the loose blob goes.
    const kept = await gc("--grace", "0");
    expect(kept).toMatch(/^gc: 1 blobs, 1000 bytes freed; 0 manifests/m);
    expect(kept).toContain(unreferenced);
    expect(await blobObjects()).toHaveLength(before.length - 1);
    expect(await headStatus(registry, `/v2/gc/grace/manifests/${image.digest}`)).toBe(200);

    const untagged = await gc("--grace", "0", "--delete-untagged");
    expect(untagged).toContain(`deleted manifest gc/grace@${image.digest}`);
    expect(untagged).toMatch(/^gc: 3 blobs, \d+ bytes freed; 1 manifests/m);
    expect(await headStatus(registry, `/v2/gc/grace/manifests/${image.digest}`)).toBe(404);
    expect(await headStatus(registry, "/v2/gc/grace/manifests/kept")).toBe(200);
  });

  it("keeps the children of a tagged index and the referrers of a live subject; collects them with it", async () => {
    const child = await pushImage(registry, "gc/index");
    const referrer = await pushImage(registry, "gc/index", {
      artifactType: "application/vnd.example.sbom",
      subject: descriptorOf(MediaType.ociManifest, child.bytes),
    });
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [{ ...descriptorOf(MediaType.ociManifest, child.bytes), platform: { architecture: "amd64", os: "linux" } }],
    };
    const pushedIndex = await pushManifest(registry, "gc/index", "multi", index);

    expect(await gc("--grace", "0", "--delete-untagged")).toMatch(/^gc: 0 blobs, 0 bytes freed; 0 manifests/m);
    for (const digest of [child.digest, referrer.digest]) expect(await headStatus(registry, `/v2/gc/index/manifests/${digest}`)).toBe(200);

    const untag = await call(registry, "DELETE", "/v2/gc/index/manifests/multi");
    await untag.body.dump();
    const output = await gc("--grace", "0", "--delete-untagged");
    for (const digest of [pushedIndex.digest, child.digest, referrer.digest])
      expect(output).toContain(`deleted manifest gc/index@${digest}`);
    expect(await blobObjects()).toEqual([]);
  });

  it("a blob being deleted is invisible, cannot be referenced, and an upload of it waits and then stores it anew", async () => {
    const data = randomBlob(5000);
    const digest = await pushBlob(registry, "gc/race", data);
    const config = Buffer.from("{}");
    await pushBlob(registry, "gc/race", config);
    // The first half of a collection (mark), as a collector that then crashed would leave it.
    const marked = await registry.deps.metadata.sweep({
      now: Date.now(),
      dryRun: false,
      linkCutoff: Date.now() + 1,
      writeCutoff: 0,
      markLimit: 100,
    });
    expect(marked.blobs.map((b) => b.digest).sort()).toEqual([digest, descriptorOf("x", config).digest].sort());
    expect(await registry.deps.storage.stat(digest)).toBeDefined();

    expect(await headStatus(registry, `/v2/gc/race/blobs/${digest}`)).toBe(404);
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: descriptorOf(MediaType.ociConfig, config),
      layers: [descriptorOf(MediaType.ociLayerGzip, data)],
    };
    await expectError((await putManifest(registry, "gc/race", "v1", manifest)).res, 400, "MANIFEST_BLOB_UNKNOWN");
    // A mount of it falls back to an upload session.
    const mount = await call(registry, "POST", `/v2/gc/other/blobs/uploads/?mount=${digest}&from=gc/race`);
    expect(mount.statusCode).toBe(202);
    await mount.body.dump();

    // The client uploads it again: the upload waits while the blob is being deleted...
    let settled = false;
    const upload = pushBlob(registry, "gc/race", data).finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);
    // ...the next collection finishes the interrupted one...
    const report = await collectGarbage(registry.deps, { graceMs: 0, deleteUntagged: false, dryRun: false, policy: EMPTY_POLICY });
    expect(report.blobs.map((b) => b.digest)).toContain(digest);
    // ...and the upload then stores the bytes anew.
    await upload;
    await pushBlob(registry, "gc/race", config);
    expect(await registry.deps.storage.stat(digest)).toEqual({ size: data.byteLength });
    await pushManifest(registry, "gc/race", "v1", manifest);
    const pulled = await call(registry, "GET", `/v2/gc/race/blobs/${digest}`);
    expect((await bytes(pulled)).equals(data)).toBe(true);
  });

  it("deletes bytes in storage that the metadata knows nothing of, once older than the grace period", async () => {
    // As a process that died between writing a blob and recording it would leave them.
    const orphan = randomBlob(3000);
    const id = randomUUID();
    const storage = registry.deps.storage;
    await storage.createUpload(id);
    await storage.append(id, 0, Readable.from([orphan]));
    const { digest } = await storage.commit(id, digestOf(orphan));
    const live = await pushImage(registry, "gc/orphans", { tag: "v1" });

    expect(await gc("--grace", "1h")).toMatch(/^gc: 0 blobs/m);
    const dry = await gc("--grace", "0", "--dry-run");
    expect(dry).toContain(`would delete blob ${digest} (3000 bytes)`);
    expect(dry).toMatch(/^gc \(dry run\): 1 blobs, 3000 bytes would be freed/m);
    expect(await storage.stat(digest)).toEqual({ size: 3000 });
    expect(await gc("--grace", "0")).toMatch(/^gc: 1 blobs, 3000 bytes freed/m);
    expect(await storage.stat(digest)).toBeUndefined();
    expect(await storage.stat(live.config.digest)).toBeDefined();
    // Gone from the database too: the same bytes pushed later are a normal blob.
    await pushBlob(registry, "gc/orphans", orphan);
    expect(await gc("--grace", "1h")).toMatch(/^gc: 0 blobs/m);
    expect(await storage.stat(digest)).toEqual({ size: 3000 });
  });

  it("cancels upload sessions past the upload TTL, and not younger ones", async () => {
    const session = await startUpload(registry, "gc/uploads");
    const id = uploadId(session);
    expect(await gc("--upload-ttl", "1h")).toMatch(/, 0 upload sessions$/m);
    expect(await sessionsOf(registry, "gc/uploads")).toEqual([id]);
    // A dry run cancels nothing.
    await gc("--upload-ttl", "0", "--dry-run");
    expect(await sessionsOf(registry, "gc/uploads")).toEqual([id]);
    expect(await gc("--upload-ttl", "0")).toMatch(/, 1 upload sessions$/m);
    expect(await sessionsOf(registry, "gc/uploads")).toEqual([]);
    expect((await storedObjects(registry)).filter((path) => path.startsWith("uploads/"))).toEqual([]);
  });

  it("refuses bad flags with a clear error", async () => {
    await expect(gc("--grace", "soon")).rejects.toThrow(/invalid duration "soon"/);
    await expect(gc("extra")).rejects.toThrow(/too many arguments/);
    await expect(gc("--dry-run=yes")).rejects.toThrow(/unknown option '--dry-run=yes'/);
    const lines: string[] = [];
    await expect(lifecycleCommand("gc", ["--data", `${registry.dataDir}/typo`], (l) => lines.push(l))).rejects.toThrow(
      /no registry database at .*typo\/registry\.db/,
    );
    expect(await lifecycleCommand("gc", ["--help"], (l) => lines.push(l))).toBe(0);
    expect(lines.join("\n")).toMatch(/Usage: minato-registry gc \[options\][\s\S]*--dry-run[\s\S]*--delete-untagged[\s\S]*--grace/);
  });
});
