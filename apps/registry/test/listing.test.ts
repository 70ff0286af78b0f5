import { MediaType } from "@minato/oci";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  call,
  expectError,
  header,
  pushBlob,
  pushImage,
  pushManifest,
  type Response,
  startTestRegistry,
  type TestRegistry,
} from "./harness.js";

/** `Link: <url>; rel="next"` → url, or undefined without a next page. */
function nextLink(res: Response): string | undefined {
  const link = header(res, "link");
  if (link === undefined) return undefined;
  const match = /^<([^>]+)>;\s*rel="next"$/.exec(link);
  expect(match, link).not.toBeNull();
  return match?.[1];
}

describe("tags/list (end-8a, end-8b)", () => {
  let registry: TestRegistry;
  const name = "list/tags";
  // ASCII order puts digits before upper case before "_" before lower case.
  const tags = ["latest", "v1.0", "1.0", "V2", "_internal", "beta-1", "Alpha", "v1.0.1", "a", "b", "z9"];
  const sorted = [...tags].sort();

  beforeAll(async () => {
    registry = await startTestRegistry();
    const image = await pushImage(registry, name);
    for (const tag of tags) await pushManifest(registry, name, tag, image.bytes, MediaType.ociManifest);
  });
  afterAll(() => registry.destroy());

  async function list(query = "") {
    const res = await call(registry, "GET", `/v2/${name}/tags/list${query}`);
    expect(res.statusCode).toBe(200);
    const body = (await res.body.json()) as { name: string; tags: string[] };
    return { res, body };
  }

  it("lists every tag in ASCII order with the repository name", async () => {
    const { res, body } = await list();
    expect(body).toEqual({ name, tags: sorted });
    expect(sorted[0]).toBe("1.0");
    expect(header(res, "link")).toBeUndefined();
  });

  it("?n= returns the first n tags and a Link to the next page", async () => {
    const { res, body } = await list("?n=3");
    expect(body.tags).toEqual(sorted.slice(0, 3));
    expect(nextLink(res)).toBe(`/v2/${name}/tags/list?n=3&last=${encodeURIComponent(sorted[2] as string)}`);
  });

  it("following Link pages through every tag exactly once", async () => {
    const seen: string[] = [];
    let path: string | undefined = `/v2/${name}/tags/list?n=4`;
    let pages = 0;
    while (path) {
      const res = await call(registry, "GET", path);
      expect(res.statusCode).toBe(200);
      const body = (await res.body.json()) as { tags: string[] };
      expect(body.tags.length).toBeLessThanOrEqual(4);
      seen.push(...body.tags);
      path = nextLink(res);
      pages++;
    }
    expect(seen).toEqual(sorted);
    expect(pages).toBe(Math.ceil(sorted.length / 4));
  });

  it("?n=&last= returns up to n tags after last, exclusive", async () => {
    const { body } = await list(`?n=2&last=${sorted[3]}`);
    expect(body.tags).toEqual(sorted.slice(4, 6));
  });

  it("?last= without n returns every tag after last", async () => {
    const { res, body } = await list(`?last=${sorted[5]}`);
    expect(body.tags).toEqual(sorted.slice(6));
    expect(header(res, "link")).toBeUndefined();
  });

  it("?last= that is not itself a tag starts after where it would sort", async () => {
    const { body } = await list("?last=b0");
    expect(body.tags).toEqual(sorted.filter((t) => t > "b0"));
  });

  it("n=0 returns an empty list and no Link", async () => {
    const { res, body } = await list("?n=0");
    expect(body.tags).toEqual([]);
    expect(header(res, "link")).toBeUndefined();
  });

  it("last past the end returns an empty list and no Link", async () => {
    const { res, body } = await list("?last=zzzz");
    expect(body.tags).toEqual([]);
    expect(header(res, "link")).toBeUndefined();
    const paged = await list("?n=5&last=zzzz");
    expect(paged.body.tags).toEqual([]);
    expect(header(paged.res, "link")).toBeUndefined();
  });

  it("n equal to or larger than the number of tags returns them all without Link", async () => {
    for (const n of [sorted.length, sorted.length + 10]) {
      const { res, body } = await list(`?n=${n}`);
      expect(body.tags).toEqual(sorted);
      expect(header(res, "link")).toBeUndefined();
    }
  });

  it("the last full page has no Link", async () => {
    const { res, body } = await list(`?n=3&last=${sorted[sorted.length - 4]}`);
    expect(body.tags).toEqual(sorted.slice(-3));
    expect(header(res, "link")).toBeUndefined();
  });

  it("caps pages at the registry's maximum page size, with a Link to continue", async () => {
    const saved = registry.deps.options.maxPageSize;
    registry.deps.options.maxPageSize = 5;
    try {
      const first = await list();
      expect(first.body.tags).toEqual(sorted.slice(0, 5));
      const next = nextLink(first.res);
      expect(next).toBeDefined();
      const big = await list("?n=1000");
      expect(big.body.tags).toEqual(sorted.slice(0, 5));
      expect(nextLink(big.res)).toBeDefined();

      const seen: string[] = [...first.body.tags];
      let path = next;
      while (path) {
        const res = await call(registry, "GET", path);
        const body = (await res.body.json()) as { tags: string[] };
        seen.push(...body.tags);
        path = nextLink(res);
      }
      expect(seen).toEqual(sorted);
    } finally {
      registry.deps.options.maxPageSize = saved;
    }
  });

  it("answers 404 NAME_UNKNOWN for a repository that does not exist", async () => {
    await expectError(await call(registry, "GET", "/v2/list/nope/tags/list"), 404, "NAME_UNKNOWN");
  });

  it("answers 200 with an empty list for a repository holding only blobs", async () => {
    await pushBlob(registry, "list/blobs-only", Buffer.from("just a blob"));
    const res = await call(registry, "GET", "/v2/list/blobs-only/tags/list");
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ name: "list/blobs-only", tags: [] });
  });

  it("refuses an n that is not a non-negative integer", async () => {
    for (const n of ["-1", "abc", "1.5"]) {
      await expectError(await call(registry, "GET", `/v2/${name}/tags/list?n=${n}`), 400, "UNSUPPORTED");
    }
  });

  it("drops a deleted tag from the list", async () => {
    const res = await call(registry, "DELETE", `/v2/${name}/manifests/z9`);
    await res.body.dump();
    expect(res.statusCode).toBe(202);
    const { body } = await list();
    expect(body.tags).toEqual(sorted.filter((t) => t !== "z9"));
    const image = await pushImage(registry, name);
    await pushManifest(registry, name, "z9", image.bytes, MediaType.ociManifest);
  });
});

describe("_catalog", () => {
  let registry: TestRegistry;
  const repositories = ["library/ubuntu", "a/b/c", "zeta", "alpine", "library/alpine", "0-numeric", "my.org/app_1"];
  const sorted = [...repositories].sort();

  beforeAll(async () => {
    registry = await startTestRegistry();
    // A repository is listed while it holds a manifest.
    for (const repository of repositories) await pushImage(registry, repository);
  });
  afterAll(() => registry.destroy());

  async function catalog(query = "") {
    const res = await call(registry, "GET", `/v2/_catalog${query}`);
    expect(res.statusCode).toBe(200);
    const body = (await res.body.json()) as { repositories: string[] };
    return { res, body };
  }

  it("lists every repository in ASCII order", async () => {
    const { res, body } = await catalog();
    expect(body).toEqual({ repositories: sorted });
    expect(header(res, "link")).toBeUndefined();
  });

  it("paginates with n and a Link, and following it visits every repository once", async () => {
    const first = await catalog("?n=2");
    expect(first.body.repositories).toEqual(sorted.slice(0, 2));
    expect(nextLink(first.res)).toBe(`/v2/_catalog?n=2&last=${encodeURIComponent(sorted[1] as string)}`);
    const seen = [...first.body.repositories];
    let path = nextLink(first.res);
    while (path) {
      const res = await call(registry, "GET", path);
      expect(res.statusCode).toBe(200);
      const body = (await res.body.json()) as { repositories: string[] };
      seen.push(...body.repositories);
      path = nextLink(res);
    }
    expect(seen).toEqual(sorted);
  });

  it("?last= returns the repositories after it", async () => {
    const { body } = await catalog(`?n=3&last=${encodeURIComponent(sorted[2] as string)}`);
    expect(body.repositories).toEqual(sorted.slice(3, 6));
  });

  it("n=0 returns an empty list and no Link", async () => {
    const { res, body } = await catalog("?n=0");
    expect(body.repositories).toEqual([]);
    expect(header(res, "link")).toBeUndefined();
  });

  it("last past the end returns an empty list and no Link", async () => {
    const { res, body } = await catalog("?last=zzzzzz");
    expect(body.repositories).toEqual([]);
    expect(header(res, "link")).toBeUndefined();
  });

  it("caps pages at the registry's maximum page size", async () => {
    const saved = registry.deps.options.maxPageSize;
    registry.deps.options.maxPageSize = 3;
    try {
      const { res, body } = await catalog();
      expect(body.repositories).toEqual(sorted.slice(0, 3));
      expect(nextLink(res)).toBe(`/v2/_catalog?n=3&last=${encodeURIComponent(sorted[2] as string)}`);
    } finally {
      registry.deps.options.maxPageSize = saved;
    }
  });

  it("refuses an n that is not a non-negative integer", async () => {
    await expectError(await call(registry, "GET", "/v2/_catalog?n=many"), 400, "UNSUPPORTED");
  });

  it("drops a repository whose last manifest is deleted, and lists it again when one is pushed", async () => {
    const name = "catalog/emptied";
    const tagged = await pushImage(registry, name, { tag: "v1" });
    const untagged = await pushImage(registry, name);
    await pushBlob(registry, "catalog/blobs-only", Buffer.from("no manifest here"));
    let { body } = await catalog();
    expect(body.repositories).toContain(name);
    expect(body.repositories).not.toContain("catalog/blobs-only");

    for (const digest of [tagged.digest, untagged.digest]) {
      const res = await call(registry, "DELETE", `/v2/${name}/manifests/${digest}`);
      await res.body.dump();
      expect(res.statusCode).toBe(202);
    }
    ({ body } = await catalog());
    expect(body.repositories).toEqual(sorted);

    await pushImage(registry, name, { tag: "v2" });
    ({ body } = await catalog());
    expect(body.repositories).toContain(name);
    const res = await call(registry, "DELETE", `/v2/${name}/manifests/v2`);
    await res.body.dump();
    // Deleting the tag alone leaves the manifest (by digest): still listed.
    ({ body } = await catalog());
    expect(body.repositories).toContain(name);
  });
});
