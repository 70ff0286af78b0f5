import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Digest, digestOf, MediaType, parseManifest } from "@minato/oci";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PullRecorder } from "../src/api/pulls.js";
import { createLogger } from "../src/logger.js";
import { SqliteMetadataStore } from "../src/metadata/sqlite.js";
import type { PullRecord } from "../src/metadata/store.js";

/** A real SQLite store that counts the batches written to it. */
class CountingStore extends SqliteMetadataStore {
  batches: PullRecord[][] = [];
  override async recordPulls(pulls: readonly PullRecord[]): Promise<void> {
    this.batches.push([...pulls]);
    return super.recordPulls(pulls);
  }
}

describe("pull times", () => {
  let dir: string;
  let store: CountingStore;
  let digest: Digest;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "minato-pulls-"));
    store = new CountingStore(join(dir, "registry.db"));
    const config = Buffer.from("{}");
    await store.linkBlob("team/app", digestOf(config), config.length);
    const content = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: 2 },
        layers: [],
      }),
    );
    digest = digestOf(content);
    expect(
      await store.putManifest("team/app", { digest, mediaType: MediaType.ociManifest, content, summary: parseManifest(content) }, [
        "v1",
        "v2",
      ]),
    ).toEqual([]);
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("gathers many pulls into one write, keeping one entry per repository, manifest and tag", async () => {
    const recorder = new PullRecorder(store, createLogger("silent"), 3_600_000);
    for (let i = 0; i < 500; i++) recorder.record({ repository: "team/app", digest, tag: "v1", at: 1_000 + i });
    recorder.record({ repository: "team/app", digest, at: 5_000 });
    expect(store.batches).toEqual([]);
    expect(
      (await store.tagOverviews("team/app", { sort: "name", descending: false, offset: 0, limit: 10 }))?.items[0]?.pulledAt,
    ).toBeNull();
    await recorder.close();
    expect(store.batches).toHaveLength(1);
    expect(store.batches[0]).toHaveLength(2);
    const tags = await store.tagOverviews("team/app", { sort: "name", descending: false, offset: 0, limit: 10 });
    expect(tags?.items.map((t) => [t.name, t.pulledAt])).toEqual([
      ["v1", 1_499],
      ["v2", null],
    ]);
    expect((await store.manifestOverview("team/app", digest))?.pulledAt).toBe(5_000);
    expect((await store.repositoryOverviews(["team/app"]))[0]?.lastPulledAt).toBe(5_000);
  });

  it("writes as soon as many distinct pulls are pending, and never moves a time backwards", async () => {
    const recorder = new PullRecorder(store, createLogger("silent"), 3_600_000, 2);
    recorder.record({ repository: "team/app", digest, tag: "v1", at: 9_000 });
    recorder.record({ repository: "team/app", digest, tag: "v2", at: 8_000 });
    await recorder.flush();
    expect(store.batches).toHaveLength(1);
    // An older batch (another replica's, flushed late) leaves the newer time in place.
    await store.recordPulls([{ repository: "team/app", digest, tag: "v1", at: 100 }]);
    const tags = await store.tagOverviews("team/app", { sort: "name", descending: false, offset: 0, limit: 10 });
    expect(tags?.items.map((t) => t.pulledAt)).toEqual([9_000, 8_000]);
    await recorder.close();
  });
});
