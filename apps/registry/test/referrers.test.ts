import { type Digest, digestOf, MediaType } from "@minato/oci";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  call,
  type Descriptor,
  descriptorOf,
  EMPTY_DIGEST,
  EMPTY_JSON,
  expectError,
  header,
  pushBlob,
  pushImage,
  pushManifest,
  type Response,
  startTestRegistry,
  type TestRegistry,
} from "./harness.js";

interface ReferrersIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: Descriptor[];
}

const SBOM = "application/vnd.example.sbom.v1";
const SIGNATURE = "application/vnd.example.signature.v1";
const SIG_CONFIG = "application/vnd.example.signature.config.v1+json";
const EMPTY = { mediaType: MediaType.ociEmpty, digest: EMPTY_DIGEST, size: 2 };

describe("referrers (end-12a, end-12b)", () => {
  let registry: TestRegistry;
  const name = "ref/app";
  let subject: Descriptor;
  /** Every referrer of `subject` in `name`, as the listing must describe it. */
  const expected: Descriptor[] = [];

  async function referrers(digest: string, query = "", repository = name): Promise<{ res: Response; index: ReferrersIndex }> {
    const res = await call(registry, "GET", `/v2/${repository}/referrers/${digest}${query}`);
    const text = await res.body.text();
    expect(res.statusCode, text).toBe(200);
    expect(header(res, "content-type")).toBe(MediaType.ociIndex);
    const index = JSON.parse(text) as ReferrersIndex;
    expect(index.schemaVersion).toBe(2);
    expect(index.mediaType).toBe(MediaType.ociIndex);
    return { res, index };
  }

  function sortByDigest(list: Descriptor[]): Descriptor[] {
    return [...list].sort((a, b) => (a.digest < b.digest ? -1 : 1));
  }

  /** Pushes a referrer manifest by digest and records the descriptor the listing must report for it. */
  async function pushReferrer(manifest: Record<string, unknown>, listed: Partial<Descriptor>, repository = name): Promise<Descriptor> {
    const pushed = await pushManifest(registry, repository, digestOf(JSON.stringify(manifest)), manifest);
    expect(header(pushed.res, "oci-subject")).toBe((manifest.subject as Descriptor).digest);
    const descriptor: Descriptor = {
      mediaType: manifest.mediaType as string,
      digest: pushed.digest,
      size: pushed.bytes.byteLength,
      ...listed,
    };
    if (repository === name && (manifest.subject as Descriptor).digest === subject.digest) expected.push(descriptor);
    return descriptor;
  }

  beforeAll(async () => {
    registry = await startTestRegistry();
    const image = await pushImage(registry, name, { tag: "v1" });
    subject = { mediaType: MediaType.ociManifest, digest: image.digest, size: image.bytes.byteLength };
    await pushBlob(registry, name, EMPTY_JSON);
    const sigConfig = Buffer.from('{"signer":"ci"}');
    await pushBlob(registry, name, sigConfig);
    const sbomData = Buffer.from('{"packages":[]}');
    await pushBlob(registry, name, sbomData);

    // An artifact with artifactType and annotations.
    const sbomAnnotations = { "org.opencontainers.image.created": "2024-01-01T00:00:00Z", "org.example.sbom.format": "json" };
    await pushReferrer(
      {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: SBOM,
        config: EMPTY,
        layers: [descriptorOf("application/json", sbomData)],
        subject,
        annotations: sbomAnnotations,
      },
      { artifactType: SBOM, annotations: sbomAnnotations },
    );
    // An image manifest without artifactType: the listing falls back to the config media type.
    await pushReferrer(
      { schemaVersion: 2, mediaType: MediaType.ociManifest, config: descriptorOf(SIG_CONFIG, sigConfig), layers: [EMPTY], subject },
      { artifactType: SIG_CONFIG },
    );
    // An image manifest whose artifactType is the empty string: still the config media type.
    await pushReferrer(
      {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: "",
        config: descriptorOf(SIG_CONFIG, sigConfig),
        layers: [],
        subject,
        annotations: { n: "3" },
      },
      { artifactType: SIG_CONFIG, annotations: { n: "3" } },
    );
    // A signature artifact.
    await pushReferrer(
      { schemaVersion: 2, mediaType: MediaType.ociManifest, artifactType: SIGNATURE, config: EMPTY, layers: [EMPTY], subject },
      { artifactType: SIGNATURE },
    );
    // An index without artifactType: listed without one, annotations copied.
    await pushReferrer(
      { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [], subject, annotations: { "org.example.kind": "bundle" } },
      { annotations: { "org.example.kind": "bundle" } },
    );
    // An index with artifactType.
    await pushReferrer(
      { schemaVersion: 2, mediaType: MediaType.ociIndex, artifactType: SBOM, manifests: [], subject },
      { artifactType: SBOM },
    );
    // Not referrers of `subject`: an artifact in another repository, and one with another subject.
    await pushBlob(registry, "ref/other", EMPTY_JSON);
    await pushReferrer(
      { schemaVersion: 2, mediaType: MediaType.ociManifest, artifactType: SBOM, config: EMPTY, layers: [EMPTY], subject },
      { artifactType: SBOM },
      "ref/other",
    );
    await pushReferrer(
      {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: SBOM,
        config: EMPTY,
        layers: [EMPTY],
        subject: { ...subject, digest: digestOf("another subject") },
      },
      { artifactType: SBOM },
    );
  });
  afterAll(() => registry.destroy());

  it("lists every manifest whose subject is the digest, with artifactType, annotations, size and media type", async () => {
    const { res, index } = await referrers(subject.digest);
    expect(header(res, "oci-filters-applied")).toBeUndefined();
    expect(header(res, "link")).toBeUndefined();
    expect(sortByDigest(index.manifests)).toEqual(sortByDigest(expected));
  });

  it("omits artifactType for an index without one", async () => {
    const { index } = await referrers(subject.digest);
    const indexes = index.manifests.filter((d) => d.mediaType === MediaType.ociIndex);
    expect(indexes).toHaveLength(2);
    const bare = indexes.find((d) => d.annotations?.["org.example.kind"] === "bundle");
    expect(bare).toBeDefined();
    expect(bare).not.toHaveProperty("artifactType");
  });

  it("filters on ?artifactType= and says so in OCI-Filters-Applied", async () => {
    const { res, index } = await referrers(subject.digest, `?artifactType=${encodeURIComponent(SBOM)}`);
    expect(header(res, "oci-filters-applied")).toBe("artifactType");
    expect(index.manifests.length).toBe(2);
    expect(sortByDigest(index.manifests)).toEqual(sortByDigest(expected.filter((d) => d.artifactType === SBOM)));
  });

  it("filters on the config media type an image manifest falls back to", async () => {
    const { res, index } = await referrers(subject.digest, `?artifactType=${encodeURIComponent(SIG_CONFIG)}`);
    expect(header(res, "oci-filters-applied")).toBe("artifactType");
    expect(sortByDigest(index.manifests)).toEqual(sortByDigest(expected.filter((d) => d.artifactType === SIG_CONFIG)));
    expect(index.manifests).toHaveLength(2);
  });

  it("answers a filter that matches nothing with an empty list", async () => {
    const { res, index } = await referrers(subject.digest, "?artifactType=application%2Fvnd.nothing");
    expect(header(res, "oci-filters-applied")).toBe("artifactType");
    expect(index.manifests).toEqual([]);
  });

  it("never answers 404 for a valid digest: unknown subject, unknown repository, sha512", async () => {
    expect((await referrers(digestOf("no such manifest"))).index.manifests).toEqual([]);
    expect((await referrers(subject.digest, "", "ref/does-not-exist")).index.manifests).toEqual([]);
    expect((await referrers(digestOf("x", "sha512"))).index.manifests).toEqual([]);
  });

  it("answers 400 for an invalid digest", async () => {
    for (const bad of ["sha256:abc", "latest", `sha256:${"G".repeat(64)}`, "md5:d41d8cd98f00b204e9800998ecf8427e"]) {
      await expectError(await call(registry, "GET", `/v2/${name}/referrers/${bad}`), 400, "DIGEST_INVALID");
    }
  });

  it("lists a referrer pushed before its subject, and keeps listing it once the subject arrives", async () => {
    const repository = "ref/early";
    await pushBlob(registry, repository, EMPTY_JSON);
    const configData = Buffer.from('{"architecture":"amd64","os":"linux","early":true}');
    await pushBlob(registry, repository, configData);
    const futureManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: descriptorOf(MediaType.ociConfig, configData),
        layers: [],
      }),
    );
    const future: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(futureManifest), size: futureManifest.byteLength };
    const referrer = await pushReferrer(
      { schemaVersion: 2, mediaType: MediaType.ociManifest, artifactType: SIGNATURE, config: EMPTY, layers: [EMPTY], subject: future },
      { artifactType: SIGNATURE },
      repository,
    );
    expect((await referrers(future.digest, "", repository)).index.manifests).toEqual([referrer]);
    await pushManifest(registry, repository, "v1", futureManifest, MediaType.ociManifest);
    expect((await referrers(future.digest, "", repository)).index.manifests).toEqual([referrer]);
  });

  it("drops a deleted referrer from the list", async () => {
    const repository = "ref/delete";
    const image = await pushImage(registry, repository, { tag: "v1" });
    const target: Descriptor = { mediaType: MediaType.ociManifest, digest: image.digest, size: image.bytes.byteLength };
    await pushBlob(registry, repository, EMPTY_JSON);
    const kept = await pushReferrer(
      { schemaVersion: 2, mediaType: MediaType.ociManifest, artifactType: SBOM, config: EMPTY, layers: [EMPTY], subject: target },
      { artifactType: SBOM },
      repository,
    );
    const doomed = await pushReferrer(
      { schemaVersion: 2, mediaType: MediaType.ociManifest, artifactType: SIGNATURE, config: EMPTY, layers: [EMPTY], subject: target },
      { artifactType: SIGNATURE },
      repository,
    );
    expect((await referrers(target.digest, "", repository)).index.manifests).toHaveLength(2);
    const res = await call(registry, "DELETE", `/v2/${repository}/manifests/${doomed.digest}`);
    await res.body.dump();
    expect(res.statusCode).toBe(202);
    expect((await referrers(target.digest, "", repository)).index.manifests).toEqual([kept]);
  });

  it("lists referrers of a sha512 subject", async () => {
    const repository = "ref/sha512";
    await pushBlob(registry, repository, EMPTY_JSON);
    const target: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf("a sha512 subject", "sha512"), size: 16 };
    const referrer = await pushReferrer(
      { schemaVersion: 2, mediaType: MediaType.ociManifest, artifactType: SBOM, config: EMPTY, layers: [EMPTY], subject: target },
      { artifactType: SBOM },
      repository,
    );
    expect((await referrers(target.digest, "", repository)).index.manifests).toEqual([referrer]);
  });

  describe("pagination", () => {
    function nextLink(res: Response): string | undefined {
      const link = header(res, "link");
      if (link === undefined) return undefined;
      const match = /^<([^>]+)>;\s*rel="next"$/.exec(link);
      expect(match, link).not.toBeNull();
      return match?.[1];
    }

    async function collect(first: string): Promise<{ all: Descriptor[]; pages: number; links: string[] }> {
      const all: Descriptor[] = [];
      const links: string[] = [];
      let path: string | undefined = first;
      let pages = 0;
      while (path) {
        const res = await call(registry, "GET", path);
        expect(res.statusCode).toBe(200);
        const index = (await res.body.json()) as ReferrersIndex;
        expect(index.manifests.length).toBeGreaterThan(0);
        expect(index.manifests.length).toBeLessThanOrEqual(2);
        all.push(...index.manifests);
        path = nextLink(res);
        if (path) links.push(path);
        pages++;
      }
      return { all, pages, links };
    }

    it("splits the list into pages of the maximum size, linked with rel=next", async () => {
      const saved = registry.deps.options.maxPageSize;
      registry.deps.options.maxPageSize = 2;
      try {
        const { all, pages, links } = await collect(`/v2/${name}/referrers/${subject.digest}`);
        expect(pages).toBe(Math.ceil(expected.length / 2));
        expect(links.every((l) => l.startsWith(`/v2/${name}/referrers/${subject.digest}?`))).toBe(true);
        expect(all).toHaveLength(expected.length);
        expect(sortByDigest(all)).toEqual(sortByDigest(expected));
      } finally {
        registry.deps.options.maxPageSize = saved;
      }
    });

    it("keeps the artifactType filter on every page", async () => {
      const saved = registry.deps.options.maxPageSize;
      registry.deps.options.maxPageSize = 1;
      try {
        const { all, links } = await collect(`/v2/${name}/referrers/${subject.digest}?artifactType=${encodeURIComponent(SBOM)}`);
        expect(links).toHaveLength(1);
        expect(new URL(links[0] as string, registry.url).searchParams.get("artifactType")).toBe(SBOM);
        expect(sortByDigest(all)).toEqual(sortByDigest(expected.filter((d) => d.artifactType === SBOM)));
      } finally {
        registry.deps.options.maxPageSize = saved;
      }
    });

    it("honours ?n= below the maximum, and n=0 answers an empty list without Link", async () => {
      const { all } = await collect(`/v2/${name}/referrers/${subject.digest}?n=2`);
      expect(sortByDigest(all)).toEqual(sortByDigest(expected));
      const res = await call(registry, "GET", `/v2/${name}/referrers/${subject.digest}?n=0`);
      expect(header(res, "link")).toBeUndefined();
      expect(((await res.body.json()) as ReferrersIndex).manifests).toEqual([]);
    });
  });

  it("reports the digest a referrer was pushed under", async () => {
    const { index } = await referrers(subject.digest);
    for (const descriptor of index.manifests) {
      const res = await call(registry, "GET", `/v2/${name}/manifests/${descriptor.digest as Digest}`);
      const body = Buffer.from(await res.body.arrayBuffer());
      expect(res.statusCode).toBe(200);
      expect(body.byteLength).toBe(descriptor.size);
      expect(header(res, "content-type")).toBe(descriptor.mediaType);
    }
  });
});
