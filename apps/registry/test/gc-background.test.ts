import { randomBytes } from "node:crypto";
import { digestOf, MediaType } from "@minato/oci";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { descriptorOf, headStatus, pushBlob, putManifest, randomBlob, startTestRegistry, type TestRegistry } from "./harness.js";

/**
 * Pushes a small image as a client does beside a zero-grace collector: when the collector took a blob
 * between its upload and the manifest PUT (MANIFEST_BLOB_UNKNOWN), it pushes again.
 */
async function pushImage(registry: TestRegistry, name: string, tag?: string): Promise<{ digest: string; configDigest: string }> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", nonce: randomBytes(8).toString("hex") }));
    const layer = randomBlob(100);
    await pushBlob(registry, name, config);
    await pushBlob(registry, name, layer);
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: descriptorOf(MediaType.ociConfig, config),
        layers: [descriptorOf(MediaType.ociLayerGzip, layer)],
      }),
    );
    const { res, digest } = await putManifest(registry, name, tag ?? digestOf(body), body, MediaType.ociManifest);
    const text = await res.body.text();
    if (res.statusCode === 201) return { digest, configDigest: digestOf(config) };
    expect(text).toContain("MANIFEST_BLOB_UNKNOWN");
  }
  throw new Error("no push got through in 100 attempts");
}

/** Polls until `check` holds (the background collector runs on its own schedule), or fails after the deadline. */
async function eventually(check: () => Promise<boolean>, what: string, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("background garbage collection settings", () => {
  it("are on by default, hourly, with a 24 h grace period, and take the --gc* flags and variables", () => {
    expect(loadConfig([], {}).gc).toEqual({ intervalMs: 3_600_000, graceMs: 86_400_000, deleteUntagged: false });
    expect(loadConfig(["--gc-interval", "5m", "--gc-grace", "1h", "--gc-delete-untagged", "true"], {}).gc).toEqual({
      intervalMs: 300_000,
      graceMs: 3_600_000,
      deleteUntagged: true,
    });
    expect(loadConfig([], { MINATO_REGISTRY_GC: "false" }).gc).toBeUndefined();
    expect(loadConfig([], { MINATO_REGISTRY_GC_GRACE: "2h" }).gc?.graceMs).toBe(7_200_000);
  });

  it("refuses bad values with one clear message", () => {
    expect(() => loadConfig(["--gc-interval", "0"], {})).toThrow(/--gc-interval must be positive/);
    expect(() => loadConfig(["--gc", "sometimes"], {})).toThrow(/--gc must be true or false/);
    expect(() => loadConfig(["--gc-grace", "a while"], {})).toThrow(/invalid duration/);
    expect(() => loadConfig(["--policy", "/nonexistent/policy.json"], {})).toThrow(/cannot read policy file/);
  });
});

describe("background garbage collection", () => {
  let registry: TestRegistry | undefined;
  afterEach(() => registry?.destroy());

  it("collects loose blobs on its schedule and keeps untagged manifests unless told otherwise", async () => {
    registry = await startTestRegistry({ gc: { intervalMs: 100, graceMs: 0, deleteUntagged: false } });
    const untagged = await pushImage(registry, "bg/app");
    const loose = await pushBlob(registry, "bg/app", randomBlob(700));
    const r = registry;
    await eventually(async () => (await r.deps.storage.stat(loose)) === undefined, "the loose blob is collected");
    expect(await headStatus(r, `/v2/bg/app/manifests/${untagged.digest}`)).toBe(200);
    expect(await r.deps.storage.stat(untagged.configDigest as `${string}:${string}`)).toBeDefined();
  });

  it("collects untagged manifests and their blobs with deleteUntagged", async () => {
    registry = await startTestRegistry({ gc: { intervalMs: 100, graceMs: 0, deleteUntagged: true } });
    const tagged = await pushImage(registry, "bg/app", "keep");
    const untagged = await pushImage(registry, "bg/app");
    const r = registry;
    await eventually(async () => (await headStatus(r, `/v2/bg/app/manifests/${untagged.digest}`)) === 404, "the manifest is collected");
    const config = untagged.configDigest as `${string}:${string}`;
    await eventually(async () => (await r.deps.storage.stat(config)) === undefined, "its config blob is collected");
    expect(await headStatus(r, "/v2/bg/app/manifests/keep")).toBe(200);
    expect(await r.deps.storage.stat(tagged.configDigest as `${string}:${string}`)).toBeDefined();
  });
});
