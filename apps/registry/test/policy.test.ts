import { digestOf, MediaType } from "@minato/oci";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePolicy } from "../src/lifecycle/policy.js";
import {
  call,
  expectError,
  headStatus,
  location,
  pushBlob,
  pushImage,
  putManifest,
  randomBlob,
  startTestRegistry,
  startUpload,
  storedObjects,
  type TestRegistry,
  withDigest,
} from "./harness.js";

const QUOTA = 10_000;

describe("lifecycle policies over HTTP", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry({
      policy: parsePolicy({
        immutableTags: [{ repositories: "locked/*", tags: ["v*", "release"] }],
        quotas: [
          { repositories: "small/*", bytes: QUOTA },
          { repositories: "tight/*", bytes: QUOTA },
        ],
      }),
    });
  });
  afterAll(() => registry.destroy());

  it("refuses moving an immutable tag through ?tag= on a push by digest, and deleting its manifest by digest", async () => {
    const first = await pushImage(registry, "locked/app", { tag: "v1" });
    const second = await pushImage(registry, "locked/app");
    const moved = await putManifest(
      registry,
      "locked/app",
      `${second.digest}?tag=ok&tag=release&tag=v1`,
      second.bytes,
      MediaType.ociManifest,
    );
    const [entry] = await expectError(moved.res, 403, "DENIED");
    expect(entry?.message).toBe('tag "v1" is immutable (rule immutableTags[0] locked/* v*,release)');
    // Nothing of the refused push was applied: not even the tags it could have set.
    expect(await headStatus(registry, "/v2/locked/app/manifests/ok")).toBe(404);
    expect(await headStatus(registry, "/v2/locked/app/manifests/release")).toBe(404);

    await expectError(await call(registry, "DELETE", `/v2/locked/app/manifests/${first.digest}`), 403, "DENIED");
    // A tag the rule does not name, and a new immutable tag, are fine; deleting a missing one is a plain 404.
    const pushed = await putManifest(registry, "locked/app", `${second.digest}?tag=release`, second.bytes, MediaType.ociManifest);
    expect(pushed.res.statusCode).toBe(201);
    await pushed.res.body.dump();
    await expectError(await call(registry, "DELETE", "/v2/locked/app/manifests/v9"), 404, "MANIFEST_UNKNOWN");
    await expectError(await call(registry, "DELETE", "/v2/locked/app/manifests/release"), 403, "DENIED");
  });

  it("enforces a quota at the final PUT of a chunked upload, storing nothing, and at a mount", async () => {
    const first = randomBlob(6000);
    await pushBlob(registry, "small/a", first);
    // The same blob again in another repository of the scope costs nothing.
    await pushBlob(registry, "small/b", first);

    const second = randomBlob(6000);
    const session = await startUpload(registry, "small/b");
    const patched = await call(registry, "PATCH", session, {
      headers: { "content-type": "application/octet-stream", "content-range": `0-${second.length - 1}` },
      body: second,
    });
    expect(patched.statusCode).toBe(202);
    await patched.body.dump();
    const refused = await call(registry, "PUT", withDigest(location(patched), digestOf(second)));
    const [entry] = await expectError(refused, 403, "DENIED");
    expect(entry?.message).toBe(`quota exceeded: rule quotas[0] small/* allows ${QUOTA} bytes, 6000 are used and this blob needs 6000`);
    expect(entry?.detail).toEqual({ rule: "quotas[0] small/*", quota: QUOTA, used: 6000, size: 6000 });
    expect(await registry.deps.storage.stat(digestOf(second))).toBeUndefined();
    const hex = digestOf(second).slice("sha256:".length);
    expect((await storedObjects(registry)).filter((path) => path.endsWith(hex))).toEqual([]);

    // Outside the scope the same blob is fine; mounting it into the scope is refused.
    const outside = await pushBlob(registry, "elsewhere/app", second);
    await expectError(await call(registry, "POST", `/v2/small/c/blobs/uploads/?mount=${outside}&from=elsewhere/app`), 403, "DENIED");
  });
});

describe("quotas under concurrent pushes", () => {
  it("never let concurrent pushes into one scope overshoot together: the limit is checked where the blob is linked", async () => {
    const registry = await startTestRegistry({ policy: parsePolicy({ quotas: [{ repositories: "tight/*", bytes: QUOTA }] }) });
    try {
      const blobs = Array.from({ length: 8 }, () => randomBlob(3000));
      const results = await Promise.all(
        blobs.map(async (data, i) => {
          const res = await call(registry, "POST", `/v2/tight/r${i % 3}/blobs/uploads/?digest=${digestOf(data)}`, {
            headers: { "content-type": "application/octet-stream" },
            body: data,
          });
          const text = await res.body.text();
          if (res.statusCode !== 201) expect(JSON.parse(text).errors[0].code, text).toBe("DENIED");
          return res.statusCode;
        }),
      );
      // 3 × 3000 fit in 10,000; a fourth never does, whatever the interleaving.
      expect(results.filter((status) => status === 201)).toHaveLength(3);
      expect(await registry.deps.metadata.blobUsage(["tight/r0", "tight/r1", "tight/r2"])).toBe(9000);
    } finally {
      await registry.destroy();
    }
  });
});

describe("policy files", () => {
  it("refuses what would be ignored or misread, naming the field", () => {
    const cases: [unknown, RegExp][] = [
      [[], /policy must be an object/],
      [{ retention: {} }, /retention must be an array/],
      [{ immutableTags: [{ repositories: "../x" }] }, /immutableTags\[0\]\.repositories must be a repository pattern/],
      [{ immutableTags: [{ repositories: "a/*", tags: ["v 1"] }] }, /immutableTags\[0\]\.tags must be tag patterns/],
      [{ quotas: [{ repositories: "a/*", bytes: -1 }] }, /quotas\[0\]\.bytes must be a byte count/],
      [{ quotas: [{ repositories: "a/*", bytes: "1 PB" }] }, /quotas\[0\]\.bytes must be a byte count/],
      [{ retention: [{ repositories: "a/*", keepLast: 1.5 }] }, /keepLast must be a non-negative integer/],
      [{ retention: [{ repositories: "a/*", keepPushedWithin: "forever" }] }, /keepPushedWithin: invalid duration/],
      [{ retention: [{ repositories: "a/*" }] }, /retention\[0\] says nothing/],
      [{ quota: [] }, /unknown field "quota"/],
    ];
    for (const [document, message] of cases) expect(() => parsePolicy(document), JSON.stringify(document)).toThrow(message);
    expect(parsePolicy({ quotas: [{ repositories: "*", bytes: "1.5GiB" }] }).quotas[0]?.bytes).toBe(1.5 * 2 ** 30);
  });
});
