import { existsSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { type Digest, digestOf, MediaType } from "@minato/oci";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  bytes,
  call,
  callRaw,
  descriptorOf,
  expectError,
  header,
  headStatus,
  location,
  pushBlob,
  pushImage,
  pushManifest,
  putManifest,
  randomBlob,
  rawConnection,
  sessionsOf,
  startTestRegistry,
  startUpload,
  statusCodes,
  stored,
  storedObjects,
  type TestRegistry,
  uploadId,
  withDigest,
} from "./harness.js";

const OCTETS = { "content-type": "application/octet-stream" };

describe("bad input", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(() => registry.destroy());

  async function catalog(): Promise<string[]> {
    const res = await call(registry, "GET", "/v2/_catalog");
    expect(res.statusCode).toBe(200);
    return ((await res.body.json()) as { repositories: string[] }).repositories;
  }

  /** Nothing is known about `name`: no tags listing, not in the catalog. */
  async function expectNoRepository(name: string): Promise<void> {
    expect(await catalog()).not.toContain(name);
    await expectError(await call(registry, "GET", `/v2/${name}/tags/list`), 404, "NAME_UNKNOWN");
  }

  async function expectNoManifest(name: string, ...references: string[]): Promise<void> {
    for (const reference of references) {
      await expectError(await call(registry, "GET", `/v2/${name}/manifests/${reference}`), 404, "MANIFEST_UNKNOWN");
    }
  }

  describe("wrong digest on upload (DIGEST_INVALID)", () => {
    it("single POST: 400, nothing stored under either digest, no session left", async () => {
      const name = "bad/digest-post";
      const data = randomBlob(500);
      const claimed = digestOf(randomBlob(500));
      const res = await call(registry, "POST", `/v2/${name}/blobs/uploads/?digest=${claimed}`, { headers: OCTETS, body: data });
      await expectError(res, 400, "DIGEST_INVALID");
      expect(await stored(registry, claimed)).toBe(false);
      expect(await stored(registry, digestOf(data))).toBe(false);
      expect(await headStatus(registry, `/v2/${name}/blobs/${claimed}`)).toBe(404);
      expect(await sessionsOf(registry, name)).toEqual([]);
      await expectNoRepository(name);
    });

    it("POST then PUT: 400, nothing stored under either digest", async () => {
      const name = "bad/digest-put";
      const data = randomBlob(500);
      const claimed = digestOf(randomBlob(500));
      const loc = await startUpload(registry, name);
      await expectError(await call(registry, "PUT", withDigest(loc, claimed), { headers: OCTETS, body: data }), 400, "DIGEST_INVALID");
      expect(await stored(registry, claimed)).toBe(false);
      expect(await stored(registry, digestOf(data))).toBe(false);
      expect(await headStatus(registry, `/v2/${name}/blobs/${claimed}`)).toBe(404);
      expect(await headStatus(registry, `/v2/${name}/blobs/${digestOf(data)}`)).toBe(404);
    });

    it("chunked, the digest naming only the last chunk: 400, nothing stored", async () => {
      const name = "bad/digest-chunked";
      const data = randomBlob(1000);
      const loc = await startUpload(registry, name);
      const patch = await call(registry, "PATCH", loc, { headers: { ...OCTETS, "content-range": "0-499" }, body: data.subarray(0, 500) });
      await patch.body.dump();
      expect(patch.statusCode).toBe(202);
      const lastChunk = data.subarray(500);
      const res = await call(registry, "PUT", withDigest(location(patch), digestOf(lastChunk)), {
        headers: { ...OCTETS, "content-range": "500-999" },
        body: lastChunk,
      });
      await expectError(res, 400, "DIGEST_INVALID");
      expect(await stored(registry, digestOf(lastChunk))).toBe(false);
      expect(await stored(registry, digestOf(data))).toBe(false);
    });

    it("a malformed digest on PUT: 400 DIGEST_INVALID", async () => {
      const loc = await startUpload(registry, "bad/digest-malformed");
      for (const digest of ["sha256:abc", "sha256", `sha256:${"F".repeat(64)}`, `blake3:${"a".repeat(64)}`]) {
        await expectError(await call(registry, "PUT", withDigest(loc, digest), { headers: OCTETS, body: "x" }), 400, "DIGEST_INVALID");
      }
    });
  });

  describe("invalid manifests (MANIFEST_INVALID)", () => {
    const name = "bad/manifest";
    let config: ReturnType<typeof descriptorOf>;
    let layer: ReturnType<typeof descriptorOf>;
    let valid: Record<string, unknown>;

    beforeAll(async () => {
      const configData = Buffer.from('{"architecture":"amd64","os":"linux"}');
      const layerData = randomBlob(100);
      await pushBlob(registry, "bad/manifest-blobs", configData);
      await pushBlob(registry, "bad/manifest-blobs", layerData);
      config = descriptorOf(MediaType.ociConfig, configData);
      layer = descriptorOf(MediaType.ociLayerGzip, layerData);
      valid = { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer] };
    });

    const cases: [string, () => string, string?][] = [
      ["truncated JSON", () => '{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {'],
      ["not JSON at all", () => "this is not a manifest"],
      ["a JSON array", () => "[]"],
      ["JSON null", () => "null"],
      ["no schemaVersion", () => JSON.stringify({ ...valid, schemaVersion: undefined })],
      ["schemaVersion 1", () => JSON.stringify({ ...valid, schemaVersion: 1 })],
      ['schemaVersion "2"', () => JSON.stringify({ ...valid, schemaVersion: "2" })],
      ["no config", () => JSON.stringify({ ...valid, config: undefined })],
      ["no layers", () => JSON.stringify({ ...valid, layers: undefined })],
      ["layers not an array", () => JSON.stringify({ ...valid, layers: layer })],
      ["a layer without digest", () => JSON.stringify({ ...valid, layers: [{ mediaType: layer.mediaType, size: layer.size }] })],
      ["a layer without size", () => JSON.stringify({ ...valid, layers: [{ mediaType: layer.mediaType, digest: layer.digest }] })],
      ["a layer without mediaType", () => JSON.stringify({ ...valid, layers: [{ digest: layer.digest, size: layer.size }] })],
      ["a negative size", () => JSON.stringify({ ...valid, config: { ...config, size: -1 } })],
      ["a fractional size", () => JSON.stringify({ ...valid, config: { ...config, size: 1.5 } })],
      ["a malformed config digest", () => JSON.stringify({ ...valid, config: { ...config, digest: "sha256:1234" } })],
      ["non-string annotations", () => JSON.stringify({ ...valid, annotations: { a: 1 } })],
      ["a non-string artifactType", () => JSON.stringify({ ...valid, artifactType: 7 })],
      ["a malformed subject", () => JSON.stringify({ ...valid, subject: { mediaType: MediaType.ociManifest, digest: "nope", size: 1 } })],
      [
        "a Docker schema 1 manifest",
        () => JSON.stringify({ schemaVersion: 1, name: "x", tag: "y", fsLayers: [] }),
        "application/vnd.docker.distribution.manifest.v1+json",
      ],
      ["an unknown media type", () => JSON.stringify({ ...valid, mediaType: "application/vnd.example.unknown+json" }), "application/json"],
      ["mediaType disagreeing with Content-Type", () => JSON.stringify(valid), MediaType.dockerManifest],
      ["an index without manifests", () => JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex })],
      ["a Docker manifest without layers", () => JSON.stringify({ ...valid, mediaType: MediaType.dockerManifest, layers: [] })],
      ["no mediaType and no recognisable shape", () => JSON.stringify({ schemaVersion: 2, something: [] }), "application/json"],
    ];

    for (const [what, body, contentType] of cases) {
      it(`refuses ${what} with 400 MANIFEST_INVALID and stores nothing`, async () => {
        const text = body();
        const mediaType =
          contentType ?? (JSON.parse(text.startsWith("{") && text.endsWith("}") ? text : "{}").mediaType || MediaType.ociManifest);
        const res = await call(registry, "PUT", `/v2/${name}/manifests/bad`, { headers: { "content-type": mediaType }, body: text });
        await expectError(res, 400, "MANIFEST_INVALID");
        await expectNoManifest(name, "bad", digestOf(text));
        const byDigest = await call(registry, "PUT", `/v2/${name}/manifests/${digestOf(text)}`, {
          headers: { "content-type": mediaType },
          body: text,
        });
        await expectError(byDigest, 400, "MANIFEST_INVALID");
        await expectNoManifest(name, digestOf(text));
      });
    }

    it("left no trace of the repository", async () => {
      await expectNoRepository(name);
    });

    it("does not move an existing tag", async () => {
      const repository = "bad/manifest-keep";
      const image = await pushImage(registry, repository, { tag: "stable" });
      const res = await call(registry, "PUT", `/v2/${repository}/manifests/stable`, {
        headers: { "content-type": MediaType.ociManifest },
        body: '{"schemaVersion":2,',
      });
      await expectError(res, 400, "MANIFEST_INVALID");
      const get = await call(registry, "GET", `/v2/${repository}/manifests/stable`);
      expect(get.statusCode).toBe(200);
      expect((await bytes(get)).equals(image.bytes)).toBe(true);
    });
  });

  describe("manifest size", () => {
    const limit = 4 * 1024 * 1024;

    /** A valid manifest padded with an annotation to exactly `size` bytes. */
    async function paddedManifest(name: string, size: number): Promise<Buffer> {
      const image = await pushImage(registry, name);
      const base = Buffer.from(JSON.stringify({ ...image.manifest, annotations: { pad: "" } }));
      const manifest = { ...image.manifest, annotations: { pad: "x".repeat(size - base.byteLength) } };
      const body = Buffer.from(JSON.stringify(manifest));
      expect(body.byteLength).toBe(size);
      return body;
    }

    it("accepts a manifest of exactly 4 MiB", async () => {
      const name = "bad/size-ok";
      const body = await paddedManifest(name, limit);
      const { digest } = await pushManifest(registry, name, "big", body, MediaType.ociManifest);
      const get = await call(registry, "GET", `/v2/${name}/manifests/${digest}`);
      expect(get.statusCode).toBe(200);
      expect((await bytes(get)).equals(body)).toBe(true);
    });

    it("refuses a manifest over 4 MiB with 413 and stores nothing", async () => {
      const name = "bad/size-over";
      const body = await paddedManifest(name, limit + 1);
      const { res, digest } = await putManifest(registry, name, "big", body, MediaType.ociManifest);
      await expectError(res, 413, "MANIFEST_INVALID");
      await expectNoManifest(name, "big", digest);
    });

    it("refuses an oversized manifest sent without Content-Length (chunked) with 413", async () => {
      const name = "bad/size-chunked";
      const body = await paddedManifest(name, limit + 1000);
      const res = await call(registry, "PUT", `/v2/${name}/manifests/big`, {
        headers: { "content-type": MediaType.ociManifest },
        body: Readable.from([body.subarray(0, 1_000_000), body.subarray(1_000_000, 3_000_000), body.subarray(3_000_000)]),
      });
      await expectError(res, 413, "MANIFEST_INVALID");
      await expectNoManifest(name, "big", digestOf(body));
      expect((await call(registry, "GET", "/v2/")).statusCode).toBe(200);
    });
  });

  describe("manifests naming unknown content (MANIFEST_BLOB_UNKNOWN)", () => {
    it("answers one error entry per missing blob and stores nothing, not even the repository", async () => {
      const name = "bad/blob-unknown";
      const configData = Buffer.from('{"os":"linux"}');
      const present = randomBlob(10);
      const missingLayer = randomBlob(20);
      await pushBlob(registry, "bad/elsewhere", configData); // pushed, but to another repository
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: descriptorOf(MediaType.ociConfig, configData),
        layers: [descriptorOf(MediaType.ociLayerGzip, missingLayer), descriptorOf(MediaType.ociLayerGzip, present)],
      };
      await pushBlob(registry, "bad/blob-unknown-seed", present);
      const { res, digest } = await putManifest(registry, name, "v1", manifest);
      const errors = await expectError(res, 400, "MANIFEST_BLOB_UNKNOWN");
      expect(errors).toHaveLength(3);
      const named = errors.map((e) => JSON.stringify(e.detail));
      for (const missing of [digestOf(configData), digestOf(missingLayer), digestOf(present)]) {
        expect(named.filter((d) => d.includes(missing))).toHaveLength(1);
      }
      await expectNoManifest(name, "v1", digest);
      await expectNoRepository(name);
    });

    it("lists only the blobs that are missing", async () => {
      const name = "bad/blob-partial";
      const configData = Buffer.from('{"os":"linux","partial":true}');
      const present = randomBlob(10);
      const missingA = randomBlob(11);
      const missingB = randomBlob(12);
      await pushBlob(registry, name, configData);
      await pushBlob(registry, name, present);
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: descriptorOf(MediaType.ociConfig, configData),
        layers: [present, missingA, missingB].map((d) => descriptorOf(MediaType.ociLayerGzip, d)),
      };
      const { res, digest } = await putManifest(registry, name, "v1", manifest);
      const errors = await expectError(res, 400, "MANIFEST_BLOB_UNKNOWN");
      expect(errors).toHaveLength(2);
      expect(JSON.stringify(errors)).toContain(digestOf(missingA));
      expect(JSON.stringify(errors)).toContain(digestOf(missingB));
      expect(JSON.stringify(errors)).not.toContain(digestOf(present));
      await expectNoManifest(name, "v1", digest);
      const tags = await call(registry, "GET", `/v2/${name}/tags/list`);
      expect(((await tags.body.json()) as { tags: string[] }).tags).toEqual([]);
    });

    it("refuses an index naming a manifest the repository does not have", async () => {
      const name = "bad/index-unknown";
      const child = await pushImage(registry, "bad/index-child-elsewhere");
      const index = {
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [{ mediaType: MediaType.ociManifest, digest: child.digest, size: child.bytes.byteLength }],
      };
      const { res, digest } = await putManifest(registry, name, "multi", index);
      const errors = await expectError(res, 400, "MANIFEST_BLOB_UNKNOWN");
      expect(errors).toHaveLength(1);
      expect(JSON.stringify(errors[0]?.detail)).toContain(child.digest);
      await expectNoManifest(name, "multi", digest);
      await expectNoRepository(name);
    });
  });

  describe("invalid repository names (NAME_INVALID)", () => {
    const invalid = [
      "..",
      "a/..",
      "../a",
      "a/../b",
      "%2e%2e",
      "a/%2e%2e/b",
      "a/%2E%2E",
      "Upper",
      "library/Ubuntu",
      "a".repeat(256),
      `${"a".repeat(200)}/${"b".repeat(55)}`,
      "-lead",
      "_lead",
      ".lead",
      "/lead",
      "trail-",
      "trail/",
      "a//b",
      "a..b",
      "a___b",
      "a%20b",
      "a:b",
    ];

    it("refuses each on every kind of endpoint and stores nothing", async () => {
      const before = await catalog();
      const data = randomBlob(32);
      const blobDigest = digestOf(data);
      for (const name of invalid) {
        await expectError(await callRaw(registry, "GET", `/v2/${name}/tags/list`), 400, "NAME_INVALID");
        await expectError(await callRaw(registry, "GET", `/v2/${name}/manifests/latest`), 400, "NAME_INVALID");
        const head = await callRaw(registry, "HEAD", `/v2/${name}/blobs/${blobDigest}`);
        await head.body.dump();
        expect(head.statusCode, name).toBe(400);
        await expectError(await callRaw(registry, "GET", `/v2/${name}/blobs/${blobDigest}`), 400, "NAME_INVALID");
        await expectError(
          await callRaw(registry, "POST", `/v2/${name}/blobs/uploads/?digest=${blobDigest}`, { headers: OCTETS, body: data }),
          400,
          "NAME_INVALID",
        );
        await expectError(
          await callRaw(registry, "PUT", `/v2/${name}/manifests/latest`, {
            headers: { "content-type": MediaType.ociManifest },
            body: '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}',
          }),
          400,
          "NAME_INVALID",
        );
        await expectError(await callRaw(registry, "GET", `/v2/${name}/referrers/${blobDigest}`), 400, "NAME_INVALID");
      }
      expect(await catalog()).toEqual(before);
      expect(await stored(registry, blobDigest)).toBe(false);
    });

    it("does not let dot segments reach another repository", async () => {
      const image = await pushImage(registry, "bad/victim", { tag: "v1" });
      // Resolved by a URL parser, these would name bad/victim.
      for (const path of [
        "/v2/bad/x/../victim/manifests/v1",
        "/v2/bad/x/%2e%2e/victim/manifests/v1",
        "/v2/bad/x/%2E%2E/victim/manifests/v1",
      ]) {
        await expectError(await callRaw(registry, "GET", path), 400, "NAME_INVALID");
      }
      const data = randomBlob(40);
      const res = await callRaw(registry, "POST", `/v2/bad/x/%2e%2e/victim/blobs/uploads/?digest=${digestOf(data)}`, {
        headers: OCTETS,
        body: data,
      });
      await expectError(res, 400, "NAME_INVALID");
      expect(await headStatus(registry, `/v2/bad/victim/blobs/${digestOf(data)}`)).toBe(404);
      const del = await callRaw(registry, "DELETE", `/v2/bad/x/../victim/manifests/${image.digest}`);
      await expectError(del, 400, "NAME_INVALID");
      expect(await headStatus(registry, `/v2/bad/victim/manifests/v1`)).toBe(200);
    });

    it("accepts a name of 255 characters and the full separator grammar", async () => {
      for (const name of [`${"a".repeat(200)}/${"b".repeat(54)}`, "a.b_c__d---e/f0/g1", "0/1/2"]) {
        await pushBlob(registry, name, Buffer.from("ok"));
        expect(await headStatus(registry, `/v2/${name}/blobs/${digestOf("ok")}`)).toBe(200);
      }
    });
  });

  describe("invalid tags", () => {
    const name = "bad/tags";
    let body: Buffer;
    beforeAll(async () => {
      const image = await pushImage(registry, name, { tag: "base" });
      body = Buffer.from(JSON.stringify({ ...image.manifest, annotations: { t: "tags" } }));
    });

    const invalidTags = ["-leading-dash", ".leading-dot", "t".repeat(129), "a+b", "a%20b", "a@b", "a%2Fb"];

    it("refuses a push to an invalid tag with 400 NAME_INVALID and stores nothing", async () => {
      for (const tag of invalidTags) {
        const res = await call(registry, "PUT", `/v2/${name}/manifests/${tag}`, {
          headers: { "content-type": MediaType.ociManifest },
          body,
        });
        await expectError(res, 400, "NAME_INVALID");
        // Reading one names no manifest: 404, as the conformance suite expects.
        await expectError(await call(registry, "GET", `/v2/${name}/manifests/${tag}`), 404, "MANIFEST_UNKNOWN");
      }
      await expectNoManifest(name, digestOf(body));
      const tags = await call(registry, "GET", `/v2/${name}/tags/list`);
      expect(((await tags.body.json()) as { tags: string[] }).tags).toEqual(["base"]);
    });

    it("refuses an invalid ?tag= on a push by digest, creating neither the manifest nor the valid tags", async () => {
      const digest = digestOf(body);
      const res = await call(registry, "PUT", `/v2/${name}/manifests/${digest}?tag=good&tag=-bad`, {
        headers: { "content-type": MediaType.ociManifest },
        body,
      });
      await expectError(res, 400, "NAME_INVALID");
      await expectNoManifest(name, digest, "good");
    });

    it("accepts a tag of 128 characters", async () => {
      const tag = `_${"T".repeat(127)}`;
      await pushManifest(registry, name, tag, body, MediaType.ociManifest);
      expect(await headStatus(registry, `/v2/${name}/manifests/${tag}`)).toBe(200);
    });
  });

  describe("repository isolation", () => {
    it("a blob pushed to A is 404 BLOB_UNKNOWN in B until mounted, then readable there", async () => {
      const data = randomBlob(256);
      const digest = await pushBlob(registry, "iso/a", data);
      await expectError(await call(registry, "GET", `/v2/iso/b/blobs/${digest}`), 404, "BLOB_UNKNOWN");
      expect(await headStatus(registry, `/v2/iso/b/blobs/${digest}`)).toBe(404);
      await expectError(await call(registry, "DELETE", `/v2/iso/b/blobs/${digest}`), 404, "BLOB_UNKNOWN");

      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: descriptorOf(MediaType.ociConfig, data),
        layers: [],
      };
      const refused = await putManifest(registry, "iso/b", "v1", manifest);
      await expectError(refused.res, 400, "MANIFEST_BLOB_UNKNOWN");

      const mount = await call(registry, "POST", `/v2/iso/b/blobs/uploads/?mount=${digest}&from=iso/a`, {
        headers: { "content-length": "0" },
      });
      await mount.body.dump();
      expect(mount.statusCode).toBe(201);
      const res = await call(registry, "GET", `/v2/iso/b/blobs/${digest}`);
      expect(res.statusCode).toBe(200);
      expect((await bytes(res)).equals(data)).toBe(true);
      await pushManifest(registry, "iso/b", "v1", manifest);
    });
  });

  describe("unknown upload sessions (BLOB_UPLOAD_UNKNOWN)", () => {
    const name = "bad/session";

    async function expectUnknownSession(path: string, raw = false): Promise<void> {
      const send = raw ? callRaw : call;
      await expectError(await send(registry, "GET", path), 404, "BLOB_UPLOAD_UNKNOWN");
      await expectError(await send(registry, "PATCH", path, { headers: OCTETS, body: "data" }), 404, "BLOB_UPLOAD_UNKNOWN");
      await expectError(
        await send(registry, "PUT", withDigest(path, digestOf("data")), { headers: OCTETS, body: "data" }),
        404,
        "BLOB_UPLOAD_UNKNOWN",
      );
      await expectError(await send(registry, "DELETE", path), 404, "BLOB_UPLOAD_UNKNOWN");
    }

    it("a well-formed UUID the registry never issued", async () => {
      await expectUnknownSession(`/v2/${name}/blobs/uploads/3f2a9c4e-0b1d-4c8e-9f7a-1234567890ab`);
      expect(await stored(registry, digestOf("data"))).toBe(false);
    });

    it("ids that are not UUIDs, including traversal attempts, touch no file", async () => {
      for (const id of [
        encodeURIComponent("../../etc"),
        encodeURIComponent("../../escape"),
        "..%2F..%2Fescape",
        "not-a-uuid",
        "3F2A9C4E-0B1D-4C8E-9F7A-1234567890AB",
        "3f2a9c4e0b1d4c8e9f7a1234567890ab",
        "..",
        "%2e%2e",
      ]) {
        await expectUnknownSession(`/v2/${name}/blobs/uploads/${id}`, true);
      }
      expect(existsSync(join(registry.dataDir, "escape"))).toBe(false);
      expect(existsSync(join(registry.dataDir, "..", "escape"))).toBe(false);
      expect(await stored(registry, digestOf("data"))).toBe(false);
      // In the blob store (files, or S3 keys), only content addresses and sessions the registry issued.
      for (const path of await storedObjects(registry)) {
        expect(path).toMatch(/^(blobs\/sha(256|512)\/[0-9a-f]{2}\/[0-9a-f]+|uploads\/[0-9a-f-]{36}(\/(state\.[01]|tail\.\d+|data))?)$/);
      }
    });

    it("a session of repository A used through repository B", async () => {
      const loc = await startUpload(registry, "bad/session-a");
      const id = uploadId(loc);
      await expectUnknownSession(`/v2/bad/session-b/blobs/uploads/${id}`);
      // Still intact in A.
      const status = await call(registry, "GET", loc);
      await status.body.dump();
      expect(status.statusCode).toBe(204);
      expect(await registry.deps.storage.uploadSize(id)).toBe(0);
    });
  });

  describe("bodies that disagree with Content-Length (raw sockets)", () => {
    async function waitForSize(id: string, size: number): Promise<void> {
      await vi.waitFor(async () => expect(await registry.deps.storage.uploadSize(id)).toBe(size), { timeout: 30_000, interval: 10 });
    }

    /** Once no request is writing to the session, its size (via an empty PATCH, which 416s while another writer holds it). */
    async function settledSize(loc: string): Promise<number | "gone"> {
      let settled: number | "gone" = "gone";
      await vi.waitFor(
        async () => {
          const res = await call(registry, "PATCH", loc, { headers: { "content-length": "0" } });
          await res.body.dump();
          expect(res.statusCode).not.toBe(416);
          settled = res.statusCode === 404 ? "gone" : Number(/^0-(\d+)$/.exec(header(res, "range") ?? "")?.[1]) + 1;
        },
        { timeout: 30_000, interval: 10 },
      );
      return settled;
    }

    function head(method: string, path: string, contentLength: number, extra = ""): string {
      return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`;
    }

    it("single POST, body shorter than Content-Length, digest of the bytes that did arrive: nothing committed", async () => {
      const name = "raw/short-post";
      const sent = randomBlob(3000);
      const digest = digestOf(sent);
      const conn = await rawConnection(registry);
      await conn.write(head("POST", `/v2/${name}/blobs/uploads/?digest=${digest}`, 5000) + "");
      await conn.write(sent);
      let id = "";
      await vi.waitFor(
        async () => {
          const ids = await sessionsOf(registry, name);
          expect(ids).toHaveLength(1);
          id = ids[0] as string;
        },
        { timeout: 30_000, interval: 10 },
      );
      await waitForSize(id, sent.byteLength);
      conn.end();
      const answer = await conn.closed;
      expect(statusCodes(answer)).not.toContain(201);
      // The handler has finished once it discarded its session.
      await vi.waitFor(async () => expect(await sessionsOf(registry, name)).toEqual([]), { timeout: 30_000, interval: 10 });
      expect(await stored(registry, digest)).toBe(false);
      expect(await headStatus(registry, `/v2/${name}/blobs/${digest}`)).toBe(404);
      expect(await registry.deps.storage.uploadSize(id)).toBeUndefined();
    });

    it("closing PUT, body shorter than Content-Length, digest of the bytes that did arrive: nothing committed", async () => {
      const name = "raw/short-put";
      const first = randomBlob(1000);
      const sent = randomBlob(2000);
      const digest = digestOf(Buffer.concat([first, sent]));
      const loc = await startUpload(registry, name);
      const patch = await call(registry, "PATCH", loc, { headers: { ...OCTETS, "content-range": "0-999" }, body: first });
      await patch.body.dump();
      expect(patch.statusCode).toBe(202);

      const conn = await rawConnection(registry);
      await conn.write(head("PUT", withDigest(location(patch), digest), 4000));
      await conn.write(sent);
      await waitForSize(uploadId(loc), 3000);
      conn.end();
      expect(statusCodes(await conn.closed)).not.toContain(201);

      // The session survives with whatever arrived, for the client to resume.
      expect(await settledSize(loc)).toBe(3000);
      expect(await stored(registry, digest)).toBe(false);
      expect(await headStatus(registry, `/v2/${name}/blobs/${digest}`)).toBe(404);
    });

    it("PATCH, body shorter than Content-Length: the bytes that arrived are kept and the upload resumes from them", async () => {
      const name = "raw/short-patch";
      const data = randomBlob(6000);
      const loc = await startUpload(registry, name);
      const conn = await rawConnection(registry);
      await conn.write(head("PATCH", loc, 6000));
      await conn.write(data.subarray(0, 2500));
      await waitForSize(uploadId(loc), 2500);
      conn.end();
      expect(statusCodes(await conn.closed)).not.toContain(202);

      const offset = await settledSize(loc);
      expect(offset).toBe(2500);
      const rest = await call(registry, "PATCH", loc, { headers: { ...OCTETS, "content-range": `2500-5999` }, body: data.subarray(2500) });
      await rest.body.dump();
      expect(rest.statusCode).toBe(202);
      const done = await call(registry, "PUT", withDigest(loc, digestOf(data)));
      await done.body.dump();
      expect(done.statusCode).toBe(201);
      const pulled = await call(registry, "GET", `/v2/${name}/blobs/${digestOf(data)}`);
      expect((await bytes(pulled)).equals(data)).toBe(true);
    });

    it("single POST, body longer than Content-Length: not stored under the claimed digest", async () => {
      const name = "raw/long-post";
      const all = randomBlob(4000);
      const declared = 2500;
      const claimed = digestOf(all);
      const conn = await rawConnection(registry);
      // All but the last declared byte first, so the session is seen before the request completes.
      await conn.write(head("POST", `/v2/${name}/blobs/uploads/?digest=${claimed}`, declared));
      await conn.write(all.subarray(0, declared - 1));
      await vi.waitFor(async () => expect(await sessionsOf(registry, name)).toHaveLength(1), { timeout: 30_000, interval: 10 });
      await conn.write(all.subarray(declared - 1));
      conn.end();
      const answer = await conn.closed;
      expect(statusCodes(answer)).not.toContain(201);
      await vi.waitFor(async () => expect(await sessionsOf(registry, name)).toEqual([]), { timeout: 30_000, interval: 10 });
      expect(await stored(registry, claimed)).toBe(false);
      expect(await stored(registry, digestOf(all.subarray(0, declared)))).toBe(false);
      expect(await headStatus(registry, `/v2/${name}/blobs/${claimed}`)).toBe(404);
      expect((await call(registry, "GET", "/v2/")).statusCode).toBe(200);
    });

    it("single POST, body longer than Content-Length, the request answered before the extra bytes: DIGEST_INVALID", async () => {
      const name = "raw/long-post-answered";
      const all = randomBlob(1000);
      const claimed = digestOf(all);
      const conn = await rawConnection(registry);
      await conn.write(head("POST", `/v2/${name}/blobs/uploads/?digest=${claimed}`, 600));
      await conn.write(all.subarray(0, 600));
      const answer = await conn.until((received) => /\r\n\r\n\{"errors".*\}\]\}/s.test(received.toString("latin1")));
      expect(statusCodes(answer)[0]).toBe(400);
      expect(answer.toString("latin1")).toContain('"code":"DIGEST_INVALID"');
      await conn.write(all.subarray(600));
      conn.end();
      await conn.closed;
      expect(await stored(registry, claimed)).toBe(false);
      expect(await stored(registry, digestOf(all.subarray(0, 600)))).toBe(false);
    });

    it("PATCH, body longer than Content-Length: the session holds at most Content-Length bytes; the claimed digest is refused", async () => {
      const name = "raw/long-patch";
      const all = randomBlob(3000);
      const declared = 1000;
      const loc = await startUpload(registry, name);
      const conn = await rawConnection(registry);
      await conn.write(head("PATCH", loc, declared));
      await conn.write(all.subarray(0, declared - 1));
      await waitForSize(uploadId(loc), declared - 1);
      await conn.write(all.subarray(declared - 1));
      conn.end();
      await conn.closed;

      const size = await settledSize(loc);
      expect(size).not.toBe("gone");
      expect(size as number).toBeLessThanOrEqual(declared);
      const res = await call(registry, "PUT", withDigest(loc, digestOf(all)));
      await expectError(res, 400, "DIGEST_INVALID");
      expect(await stored(registry, digestOf(all))).toBe(false);
      expect(await headStatus(registry, `/v2/${name}/blobs/${digestOf(all)}`)).toBe(404);
    });

    it("PATCH whose Content-Length disagrees with its Content-Range: 400 SIZE_INVALID, nothing appended", async () => {
      const loc = await startUpload(registry, "raw/size");
      const conn = await rawConnection(registry);
      await conn.write(head("PATCH", loc, 5, "Content-Range: 0-9\r\nConnection: close\r\n") + "abcde");
      const answer = (await conn.closed).toString("latin1");
      expect(statusCodes(Buffer.from(answer))[0]).toBe(400);
      expect(answer).toContain('"code":"SIZE_INVALID"');
      expect(await registry.deps.storage.uploadSize(uploadId(loc))).toBe(0);
    });
  });
});

describe("deletes disabled", () => {
  let registry: TestRegistry;
  let blob: Digest;
  let manifest: Digest;
  beforeAll(async () => {
    registry = await startTestRegistry({ deletesEnabled: false });
    blob = await pushBlob(registry, "nodelete/app", randomBlob(64));
    manifest = (await pushImage(registry, "nodelete/app", { tag: "v1" })).digest;
  });
  afterAll(() => registry.destroy());

  it("DELETE of a blob answers 405 UNSUPPORTED and the blob stays", async () => {
    await expectError(await call(registry, "DELETE", `/v2/nodelete/app/blobs/${blob}`), 405, "UNSUPPORTED");
    expect(await headStatus(registry, `/v2/nodelete/app/blobs/${blob}`)).toBe(200);
  });

  it("DELETE of a manifest by digest answers 405 UNSUPPORTED and the manifest and its tag stay", async () => {
    await expectError(await call(registry, "DELETE", `/v2/nodelete/app/manifests/${manifest}`), 405, "UNSUPPORTED");
    expect(await headStatus(registry, `/v2/nodelete/app/manifests/${manifest}`)).toBe(200);
    expect(await headStatus(registry, "/v2/nodelete/app/manifests/v1")).toBe(200);
  });

  it("DELETE of a tag answers 405 UNSUPPORTED and the tag stays", async () => {
    await expectError(await call(registry, "DELETE", "/v2/nodelete/app/manifests/v1"), 405, "UNSUPPORTED");
    expect(await headStatus(registry, "/v2/nodelete/app/manifests/v1")).toBe(200);
  });

  it("cancelling an upload session still works", async () => {
    const loc = await startUpload(registry, "nodelete/app");
    const res = await call(registry, "DELETE", loc);
    await res.body.dump();
    expect(res.statusCode).toBe(204);
  });
});
