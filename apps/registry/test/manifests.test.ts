import { createHash } from "node:crypto";
import { type Digest, digestOf, MediaType } from "@minato/oci";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bytes,
  call,
  type Descriptor,
  descriptorOf,
  EMPTY_DIGEST,
  EMPTY_JSON,
  expectError,
  header,
  headStatus,
  pushBlob,
  pushImage,
  pushManifest,
  putManifest,
  randomBlob,
  startTestRegistry,
  type TestRegistry,
} from "./harness.js";

describe("manifests (end-3, end-7, end-9)", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(() => registry.destroy());

  /** GET by `reference` returns exactly `expected`, with matching Content-Type, Content-Length and digest. */
  async function expectManifest(name: string, reference: string, expected: Buffer, mediaType: string, accept?: string) {
    const res = await call(registry, "GET", `/v2/${name}/manifests/${reference}`, { headers: accept ? { accept } : {} });
    expect(res.statusCode).toBe(200);
    expect(header(res, "content-type")).toBe(mediaType);
    expect(header(res, "docker-content-digest")).toBe(digestOf(expected));
    expect(header(res, "content-length")).toBe(String(expected.byteLength));
    const body = await bytes(res);
    expect(body.equals(expected)).toBe(true);
  }

  async function pushConfigAndLayer(name: string, configType: string, layerType: string) {
    const configData = Buffer.from(JSON.stringify({ architecture: "arm64", os: "linux", n: Math.random() }));
    const layerData = randomBlob(512);
    await pushBlob(registry, name, configData);
    await pushBlob(registry, name, layerData);
    return { config: descriptorOf(configType, configData), layer: descriptorOf(layerType, layerData) };
  }

  describe("OCI image manifest", () => {
    const name = "man/oci";
    let manifestBytes: Buffer;
    let digest: Digest;

    beforeAll(async () => {
      const { config, layer } = await pushConfigAndLayer(name, MediaType.ociConfig, MediaType.ociLayerGzip);
      // Unusual but valid formatting: the registry must keep these exact bytes.
      const text = `{\n   "schemaVersion" : 2,\n\t"mediaType": "${MediaType.ociManifest}",  "config": ${JSON.stringify(config, null, 1)},\n"layers":[ ${JSON.stringify(layer)} ],"annotations":{"z":"last","a":"first"}}\n\n`;
      manifestBytes = Buffer.from(text);
      digest = digestOf(manifestBytes);
      const { res } = await putManifest(registry, name, "v1", manifestBytes, MediaType.ociManifest);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(header(res, "location")).toBe(`/v2/${name}/manifests/${digest}`);
      expect(header(res, "docker-content-digest")).toBe(digest);
      expect(header(res, "oci-subject")).toBeUndefined();
    });

    it("GET by tag returns the bytes exactly as pushed", async () => {
      await expectManifest(name, "v1", manifestBytes, MediaType.ociManifest);
    });

    it("GET by digest returns the bytes exactly as pushed", async () => {
      await expectManifest(name, digest, manifestBytes, MediaType.ociManifest);
    });

    it("HEAD by tag and by digest: 200 with Content-Length, Docker-Content-Digest and Content-Type, no body", async () => {
      for (const reference of ["v1", digest]) {
        const res = await call(registry, "HEAD", `/v2/${name}/manifests/${reference}`);
        expect(res.statusCode).toBe(200);
        expect(header(res, "content-length")).toBe(String(manifestBytes.byteLength));
        expect(header(res, "docker-content-digest")).toBe(digest);
        expect(header(res, "content-type")).toBe(MediaType.ociManifest);
        expect((await bytes(res)).byteLength).toBe(0);
      }
    });

    it("the Location of a push is pullable", async () => {
      await expectManifest(name, digest, manifestBytes, MediaType.ociManifest);
      expect(await headStatus(registry, `/v2/${name}/manifests/${digest}`)).toBe(200);
    });

    it("negotiates on Accept: the stored type, a list with q-values, or a wildcard", async () => {
      for (const accept of [
        MediaType.ociManifest,
        `${MediaType.dockerManifest}, ${MediaType.ociManifest};q=0.9, ${MediaType.ociIndex}`,
        `${MediaType.dockerManifestList},${MediaType.ociManifest}`,
        "*/*",
        "application/*",
      ]) {
        await expectManifest(name, "v1", manifestBytes, MediaType.ociManifest, accept);
      }
    });

    it("answers 404 MANIFEST_UNKNOWN when Accept admits only other manifest types", async () => {
      const accept = `${MediaType.dockerManifest}, ${MediaType.dockerManifestList}`;
      await expectError(await call(registry, "GET", `/v2/${name}/manifests/v1`, { headers: { accept } }), 404, "MANIFEST_UNKNOWN");
      expect(await headStatus(registry, `/v2/${name}/manifests/${digest}`, { accept })).toBe(404);
    });

    it("answers 404 MANIFEST_UNKNOWN for an unknown tag, an unknown digest and an unknown repository", async () => {
      await expectError(await call(registry, "GET", `/v2/${name}/manifests/nope`), 404, "MANIFEST_UNKNOWN");
      await expectError(await call(registry, "GET", `/v2/${name}/manifests/${digestOf("nope")}`), 404, "MANIFEST_UNKNOWN");
      await expectError(await call(registry, "GET", `/v2/man/missing/manifests/v1`), 404, "MANIFEST_UNKNOWN");
      expect(await headStatus(registry, `/v2/${name}/manifests/nope`)).toBe(404);
    });

    it("answers 404 MANIFEST_UNKNOWN to GET and HEAD of a reference that is neither a tag nor a digest (conformance)", async () => {
      // The distribution-spec conformance suite's exact case, and a malformed digest alike.
      for (const reference of [".INVALID_MANIFEST_NAME", "sha256:not-hex", "-dash"]) {
        await expectError(await call(registry, "GET", `/v2/${name}/manifests/${reference}`), 404, "MANIFEST_UNKNOWN");
        expect(await headStatus(registry, `/v2/${name}/manifests/${reference}`)).toBe(404);
      }
    });

    it("a manifest pushed by tag is not visible in another repository", async () => {
      await expectError(await call(registry, "GET", `/v2/man/other/manifests/${digest}`), 404, "MANIFEST_UNKNOWN");
    });
  });

  describe("PUT by digest", () => {
    it("stores the manifest under its digest without a tag, bytes exactly as sent", async () => {
      const name = "man/bydigest";
      const image = await pushConfigAndLayer(name, MediaType.ociConfig, MediaType.ociLayer);
      const body = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: image.config, layers: [image.layer] }, null, 8),
      );
      const digest = digestOf(body);
      const { res } = await putManifest(registry, name, digest, body, MediaType.ociManifest);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(header(res, "docker-content-digest")).toBe(digest);
      expect(header(res, "location")).toBe(`/v2/${name}/manifests/${digest}`);
      expect(header(res, "oci-tag")).toBeUndefined();
      await expectManifest(name, digest, body, MediaType.ociManifest);
      const tags = (await (await call(registry, "GET", `/v2/${name}/tags/list`)).body.json()) as { tags: string[] };
      expect(tags.tags).toEqual([]);
    });

    it("?tag=a&tag=b tags the manifest and reports each tag in OCI-Tag (end-7b)", async () => {
      const name = "man/multitag";
      const image = await pushImage(registry, name);
      const body = Buffer.from(JSON.stringify({ ...image.manifest, annotations: { n: "2" } }));
      const digest = digestOf(body);
      const res = await call(registry, "PUT", `/v2/${name}/manifests/${digest}?tag=1.2.3&tag=1.2&tag=latest`, {
        headers: { "content-type": MediaType.ociManifest },
        body,
      });
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(header(res, "docker-content-digest")).toBe(digest);
      const reported = (header(res, "oci-tag") ?? "").split(",").map((t) => t.trim());
      expect(reported.sort()).toEqual(["1.2", "1.2.3", "latest"]);
      for (const tag of ["1.2.3", "1.2", "latest"]) await expectManifest(name, tag, body, MediaType.ociManifest);
      const list = (await (await call(registry, "GET", `/v2/${name}/tags/list`)).body.json()) as { tags: string[] };
      expect(list.tags).toEqual(["1.2", "1.2.3", "latest"]);
    });

    it("accepts a manifest pushed under a sha512 digest and serves it by that digest", async () => {
      const name = "man/sha512";
      const configData = Buffer.from('{"architecture":"amd64","os":"linux"}');
      const layerData = randomBlob(300);
      const configDigest = await pushBlob(registry, name, configData, "sha512");
      const layerDigest = await pushBlob(registry, name, layerData, "sha512");
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configData.byteLength },
          layers: [{ mediaType: MediaType.ociLayerGzip, digest: layerDigest, size: layerData.byteLength }],
        }),
      );
      const digest = `sha512:${createHash("sha512").update(body).digest("hex")}`;
      const res = await call(registry, "PUT", `/v2/${name}/manifests/${digest}?tag=sha512`, {
        headers: { "content-type": MediaType.ociManifest },
        body,
      });
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(header(res, "docker-content-digest")).toBe(digest);
      expect(header(res, "location")).toBe(`/v2/${name}/manifests/${digest}`);

      const get = await call(registry, "GET", `/v2/${name}/manifests/${digest}`);
      expect(get.statusCode).toBe(200);
      expect(header(get, "docker-content-digest")).toBe(digest);
      expect((await bytes(get)).equals(body)).toBe(true);
      const byTag = await call(registry, "GET", `/v2/${name}/manifests/sha512`);
      expect(byTag.statusCode).toBe(200);
      expect((await bytes(byTag)).equals(body)).toBe(true);
    });

    it("answers a content/digest mismatch with 400 DIGEST_INVALID and stores nothing", async () => {
      const name = "man/mismatch";
      const image = await pushImage(registry, name, { tag: "base" });
      const body = Buffer.from(JSON.stringify({ ...image.manifest, annotations: { x: "y" } }));
      const claimed = digestOf("something else");
      const res = await call(registry, "PUT", `/v2/${name}/manifests/${claimed}?tag=mismatch`, {
        headers: { "content-type": MediaType.ociManifest },
        body,
      });
      await expectError(res, 400, "DIGEST_INVALID");
      expect(await headStatus(registry, `/v2/${name}/manifests/${claimed}`)).toBe(404);
      expect(await headStatus(registry, `/v2/${name}/manifests/${digestOf(body)}`)).toBe(404);
      expect(await headStatus(registry, `/v2/${name}/manifests/mismatch`)).toBe(404);
    });
  });

  describe("tags move", () => {
    it("pushing a new manifest to an existing tag repoints the tag; the old manifest stays by digest", async () => {
      const name = "man/retag";
      const first = await pushImage(registry, name, { tag: "latest" });
      const second = await pushImage(registry, name, { tag: "latest" });
      await expectManifest(name, "latest", second.bytes, MediaType.ociManifest);
      await expectManifest(name, first.digest, first.bytes, MediaType.ociManifest);
    });
  });

  describe("manifest types", () => {
    it("OCI image index referencing manifests in the repository", async () => {
      const name = "man/index";
      const amd = await pushImage(registry, name);
      const arm = await pushImage(registry, name);
      const index = {
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [
          {
            mediaType: MediaType.ociManifest,
            digest: amd.digest,
            size: amd.bytes.byteLength,
            platform: { architecture: "amd64", os: "linux" },
          },
          {
            mediaType: MediaType.ociManifest,
            digest: arm.digest,
            size: arm.bytes.byteLength,
            platform: { architecture: "arm64", os: "linux" },
          },
        ],
      };
      const { bytes: body, digest } = await pushManifest(registry, name, "multi", index);
      await expectManifest(name, "multi", body, MediaType.ociIndex);
      await expectManifest(name, digest, body, MediaType.ociIndex, MediaType.ociIndex);
      await expectError(
        await call(registry, "GET", `/v2/${name}/manifests/multi`, { headers: { accept: MediaType.ociManifest } }),
        404,
        "MANIFEST_UNKNOWN",
      );
    });

    it("OCI image index without a mediaType field, typed by Content-Type", async () => {
      const name = "man/index-notype";
      const child = await pushImage(registry, name);
      const index = {
        schemaVersion: 2,
        manifests: [{ mediaType: MediaType.ociManifest, digest: child.digest, size: child.bytes.byteLength }],
      };
      const { bytes: body } = await pushManifest(registry, name, "idx", index, MediaType.ociIndex);
      await expectManifest(name, "idx", body, MediaType.ociIndex);
    });

    it("Docker schema 2 manifest", async () => {
      const name = "man/docker";
      const { config, layer } = await pushConfigAndLayer(name, MediaType.dockerConfig, MediaType.dockerLayer);
      const manifest = { schemaVersion: 2, mediaType: MediaType.dockerManifest, config, layers: [layer] };
      const { bytes: body, digest } = await pushManifest(registry, name, "v2", manifest);
      await expectManifest(name, "v2", body, MediaType.dockerManifest);
      await expectManifest(name, digest, body, MediaType.dockerManifest, MediaType.dockerManifest);
    });

    it("Docker manifest list", async () => {
      const name = "man/docker-list";
      const { config, layer } = await pushConfigAndLayer(name, MediaType.dockerConfig, MediaType.dockerLayer);
      const child = await pushManifest(registry, name, "child", {
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config,
        layers: [layer],
      });
      const list = {
        schemaVersion: 2,
        mediaType: MediaType.dockerManifestList,
        manifests: [
          {
            mediaType: MediaType.dockerManifest,
            digest: child.digest,
            size: child.bytes.byteLength,
            platform: { architecture: "amd64", os: "linux" },
          },
        ],
      };
      const { bytes: body } = await pushManifest(registry, name, "list", list);
      await expectManifest(name, "list", body, MediaType.dockerManifestList);
      await expectManifest(
        name,
        "list",
        body,
        MediaType.dockerManifestList,
        `${MediaType.dockerManifestList}, ${MediaType.dockerManifest}`,
      );
    });

    it("artifact manifest: artifactType with the empty config {}", async () => {
      const name = "man/artifact";
      expect(digestOf(EMPTY_JSON)).toBe(EMPTY_DIGEST);
      const emptyDigest = await pushBlob(registry, name, EMPTY_JSON);
      expect(emptyDigest).toBe(EMPTY_DIGEST);
      const payload = Buffer.from('{"sbom":"spdx"}');
      await pushBlob(registry, name, payload);
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: "application/vnd.example.sbom.v1",
        config: { mediaType: MediaType.ociEmpty, digest: EMPTY_DIGEST, size: 2 },
        layers: [descriptorOf("application/spdx+json", payload)],
        annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
      };
      const { bytes: body, digest } = await pushManifest(registry, name, "sbom", manifest);
      await expectManifest(name, "sbom", body, MediaType.ociManifest);
      const config = await call(registry, "GET", `/v2/${name}/blobs/${EMPTY_DIGEST}`);
      expect((await bytes(config)).toString()).toBe("{}");
      expect(digest).toBe(digestOf(body));
    });

    it("artifact manifest whose only layer is the empty descriptor", async () => {
      const name = "man/artifact-empty";
      await pushBlob(registry, name, EMPTY_JSON);
      const empty = { mediaType: MediaType.ociEmpty, digest: EMPTY_DIGEST, size: 2 };
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: "application/vnd.example.marker",
        config: empty,
        layers: [empty],
      };
      const { bytes: body } = await pushManifest(registry, name, "marker", manifest);
      await expectManifest(name, "marker", body, MediaType.ociManifest);
    });

    it("accepts non-distributable layers that were never pushed", async () => {
      const name = "man/foreign";
      const { config, layer } = await pushConfigAndLayer(name, MediaType.dockerConfig, MediaType.dockerLayer);
      const foreign: Descriptor = {
        mediaType: MediaType.dockerForeignLayer,
        digest: digestOf("windows base layer"),
        size: 18,
      };
      const manifest = { schemaVersion: 2, mediaType: MediaType.dockerManifest, config, layers: [foreign, layer] };
      const { bytes: body } = await pushManifest(registry, name, "win", manifest);
      await expectManifest(name, "win", body, MediaType.dockerManifest);
    });

    it("accepts an image manifest with no layers (the list of blobs MAY be empty)", async () => {
      const name = "man/nolayers";
      const { config } = await pushConfigAndLayer(name, MediaType.ociConfig, MediaType.ociLayer);
      const { bytes: body } = await pushManifest(registry, name, "bare", {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config,
        layers: [],
      });
      await expectManifest(name, "bare", body, MediaType.ociManifest);
    });

    it("an empty index is the first push of a new repository, which then exists", async () => {
      const name = "man/empty-index-first";
      const { bytes: body } = await pushManifest(registry, name, "empty", {
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [],
      });
      await expectManifest(name, "empty", body, MediaType.ociIndex);
      const catalog = (await (await call(registry, "GET", "/v2/_catalog")).body.json()) as { repositories: string[] };
      expect(catalog.repositories).toContain(name);
      const tags = await call(registry, "GET", `/v2/${name}/tags/list`);
      expect(await tags.body.json()).toEqual({ name, tags: ["empty"] });
    });

    it("accepts Content-Type parameters and ignores them", async () => {
      const name = "man/params";
      const image = await pushImage(registry, name);
      const body = Buffer.from(JSON.stringify({ ...image.manifest, annotations: { p: "1" } }));
      const { res } = await putManifest(registry, name, "params", body, `${MediaType.ociManifest}; charset=utf-8`);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      await expectManifest(name, "params", body, MediaType.ociManifest);
    });
  });

  describe("subject", () => {
    it("answers OCI-Subject for a manifest with a subject, even when the subject does not exist", async () => {
      const name = "man/subject";
      const missingSubject: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf("not pushed yet"), size: 123 };
      await pushBlob(registry, name, EMPTY_JSON);
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: "application/vnd.example.signature",
        config: { mediaType: MediaType.ociEmpty, digest: EMPTY_DIGEST, size: 2 },
        layers: [{ mediaType: MediaType.ociEmpty, digest: EMPTY_DIGEST, size: 2 }],
        subject: missingSubject,
      };
      const { res, digest, bytes: body } = await putManifest(registry, name, digestOf(JSON.stringify(manifest)), manifest);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(header(res, "oci-subject")).toBe(missingSubject.digest);
      await expectManifest(name, digest, body, MediaType.ociManifest);
    });

    it("answers OCI-Subject for an index with a subject", async () => {
      const name = "man/subject-index";
      const subject = await pushImage(registry, name, { tag: "app" });
      const index = {
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [],
        subject: { mediaType: MediaType.ociManifest, digest: subject.digest, size: subject.bytes.byteLength },
      };
      const { res } = await putManifest(registry, name, "attached", index);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(header(res, "oci-subject")).toBe(subject.digest);
    });
  });

  describe("DELETE", () => {
    it("by digest: 202, the manifest and every tag pointing at it are gone", async () => {
      const name = "man/delete-digest";
      const image = await pushImage(registry, name, { tag: "one" });
      await pushManifest(registry, name, "two", image.bytes, MediaType.ociManifest);
      const keep = await pushImage(registry, name, { tag: "keep" });

      const res = await call(registry, "DELETE", `/v2/${name}/manifests/${image.digest}`);
      await res.body.dump();
      expect(res.statusCode).toBe(202);

      await expectError(await call(registry, "GET", `/v2/${name}/manifests/${image.digest}`), 404, "MANIFEST_UNKNOWN");
      await expectError(await call(registry, "GET", `/v2/${name}/manifests/one`), 404, "MANIFEST_UNKNOWN");
      await expectError(await call(registry, "GET", `/v2/${name}/manifests/two`), 404, "MANIFEST_UNKNOWN");
      const list = (await (await call(registry, "GET", `/v2/${name}/tags/list`)).body.json()) as { tags: string[] };
      expect(list.tags).toEqual(["keep"]);
      await expectManifest(name, "keep", keep.bytes, MediaType.ociManifest);
      // The layers stay: blobs are deleted separately.
      expect(await headStatus(registry, `/v2/${name}/blobs/${image.layers[0]?.digest}`)).toBe(200);
      await expectError(await call(registry, "DELETE", `/v2/${name}/manifests/${image.digest}`), 404, "MANIFEST_UNKNOWN");
    });

    it("by tag: 202, only the tag is gone; the manifest and its other tags stay", async () => {
      const name = "man/delete-tag";
      const image = await pushImage(registry, name, { tag: "old" });
      await pushManifest(registry, name, "other", image.bytes, MediaType.ociManifest);

      const res = await call(registry, "DELETE", `/v2/${name}/manifests/old`);
      await res.body.dump();
      expect(res.statusCode).toBe(202);

      await expectError(await call(registry, "GET", `/v2/${name}/manifests/old`), 404, "MANIFEST_UNKNOWN");
      await expectManifest(name, image.digest, image.bytes, MediaType.ociManifest);
      await expectManifest(name, "other", image.bytes, MediaType.ociManifest);
      const list = (await (await call(registry, "GET", `/v2/${name}/tags/list`)).body.json()) as { tags: string[] };
      expect(list.tags).toEqual(["other"]);
      await expectError(await call(registry, "DELETE", `/v2/${name}/manifests/old`), 404, "MANIFEST_UNKNOWN");
    });

    it("answers 404 NAME_UNKNOWN in a repository that does not exist", async () => {
      await expectError(await call(registry, "DELETE", `/v2/man/never-existed/manifests/${digestOf("x")}`), 404, "NAME_UNKNOWN");
      await expectError(await call(registry, "DELETE", `/v2/man/never-existed/manifests/latest`), 404, "NAME_UNKNOWN");
    });

    it("answers 400 DIGEST_INVALID for a malformed digest", async () => {
      await pushImage(registry, "man/delete-bad", { tag: "x" });
      await expectError(await call(registry, "DELETE", `/v2/man/delete-bad/manifests/sha256:short`), 400, "DIGEST_INVALID");
    });
  });
});
