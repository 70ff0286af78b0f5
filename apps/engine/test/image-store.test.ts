import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Digest, digestOf, parseImageReference } from "@minato/oci";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db.js";
import { AmbiguousImageError, ImageStore } from "../src/image-store.js";

const layer = (n: number) => {
  const diffId = digestOf(`diff ${n}`);
  return {
    diffId,
    chainId: diffId,
    blobDigest: digestOf(`blob ${n}`),
    blobSize: n,
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  };
};

describe("ImageStore", () => {
  let dir: string;
  let store: ImageStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "minato-images-"));
    store = new ImageStore(openDatabase(join(dir, "minato.db")));
  });
  afterEach(async () => {
    store.db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("records images with layers, tags and repo digests, and resolves them the docker way", () => {
    const id = digestOf("config a") as Digest;
    store.save({ id, size: 10, layers: [layer(1), layer(2)], manifestDigest: digestOf("manifest a"), manifestMediaType: "m" });
    store.reference(parseImageReference("busybox"), id);
    store.reference(parseImageReference("127.0.0.1:5000/team/app:1.0"), id);
    store.reference({ ...parseImageReference("127.0.0.1:5000/team/app"), tag: undefined, digest: digestOf("manifest a") }, id);
    const image = store.get(id);
    expect(image?.layers.map((l) => l.blobSize)).toEqual([1, 2]);
    expect(image?.tags).toEqual(["127.0.0.1:5000/team/app:1.0", "docker.io/library/busybox:latest"]);
    expect(image?.repoDigests).toEqual([`127.0.0.1:5000/team/app@${digestOf("manifest a")}`]);
    for (const name of [
      "busybox",
      "busybox:latest",
      "docker.io/library/busybox",
      "127.0.0.1:5000/team/app:1.0",
      id,
      id.slice(7),
      id.slice(7, 19),
    ]) {
      expect(store.resolve(name)?.id, name).toBe(id);
    }
    expect(store.resolve(`127.0.0.1:5000/team/app@${digestOf("manifest a")}`)?.id).toBe(id);
    expect(store.resolve("busybox:1.0")).toBeUndefined();
    expect(store.resolve("127.0.0.1:5000/team/app")).toBeUndefined();
    expect(store.resolve("NOT A REFERENCE")).toBeUndefined();
  });

  it("moves a tag to the newest image and refuses ambiguous ID prefixes", () => {
    // Two IDs sharing a prefix are found by brute force over small inputs.
    const ids: Digest[] = [];
    for (let i = 0; ids.length < 2 && i < 10_000; i++) {
      const id = digestOf(`config ${i}`);
      if (id.startsWith("sha256:a")) ids.push(id);
    }
    const [first, second] = ids as [Digest, Digest];
    store.save({ id: first, size: 1, layers: [] });
    store.save({ id: second, size: 1, layers: [] });
    store.reference(parseImageReference("app:1"), first);
    store.reference(parseImageReference("app:1"), second);
    expect(store.resolve("app:1")?.id).toBe(second);
    expect(store.get(first)?.tags).toEqual([]);
    expect(() => store.resolve("a")).toThrow(AmbiguousImageError);
    expect(store.resolve(first.slice(7, 20))?.id).toBe(first);
  });

  it("knows which content and snapshots are live", () => {
    const id = digestOf("config b") as Digest;
    store.save({ id, size: 1, layers: [layer(3)], manifestDigest: digestOf("manifest b") }, [digestOf("index b")]);
    expect(store.liveContent()).toEqual(new Set([id, digestOf("manifest b"), digestOf("index b"), layer(3).blobDigest]));
    expect(store.liveChains()).toEqual(new Set([layer(3).chainId]));
    store.delete(id);
    expect(store.liveContent().size).toBe(0);
    expect(store.liveChains().size).toBe(0);
  });

  it("remembers which repositories hold a blob, for cross-repository mounts", () => {
    const digest = digestOf("blob");
    store.recordSource(digest, "127.0.0.1:5000", "a/one");
    store.recordSource(digest, "127.0.0.1:5000", "a/one");
    store.recordSource(digest, "127.0.0.1:5000", "b/two");
    store.recordSource(digest, "other:5000", "c");
    expect(store.sources(digest, "127.0.0.1:5000").sort()).toEqual(["a/one", "b/two"]);
  });
});
