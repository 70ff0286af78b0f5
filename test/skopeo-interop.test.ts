import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { header, RegistryClient, sha256 } from "./support/http.js";
import {
  type Artifact,
  artifact,
  type Blob,
  type Image,
  type ImageIndex,
  image,
  imageIndex,
  layoutBlobs,
  layoutRef,
  OCI,
  randomLayer,
  writeLayout,
} from "./support/oci-layout.js";
import { RegistryProcess } from "./support/registry-process.js";
import { Skopeo } from "./support/skopeo.js";

/**
 * Interop with a real client: skopeo copies OCI image layouts built here into the registry binary
 * and back out, and every byte must survive the round trip. skopeo is required — when it is missing
 * Skopeo.create() throws and every test here fails with instructions.
 */

const SBOM_TYPE = "application/vnd.example.sbom.v1+json";

interface InspectOutput {
  Name: string;
  Digest: string;
  RepoTags: string[];
  Architecture: string;
  Os: string;
  Layers: string[];
  Labels: Record<string, string> | null;
}

let registry: RegistryProcess;
let skopeo: Skopeo;
let client: RegistryClient;
let work: string;
/** The source OCI image layout. */
let src: string;

let app: Image;
let multi: ImageIndex;
let sbom: Artifact;

/** A setup failure (skopeo missing, above all) fails every test by name instead of leaving them skipped. */
let setupError: unknown;
beforeEach(() => {
  if (setupError) throw setupError;
});

beforeAll(async () => {
  try {
    await setup();
  } catch (error) {
    setupError = error;
  }
});

async function setup(): Promise<void> {
  skopeo = await Skopeo.create();
  registry = await RegistryProcess.start();
  client = new RegistryClient(registry.url);
  work = await mkdtemp(join(tmpdir(), "minato-layouts-"));
  src = join(work, "src");

  // (a) three gzip layers and a config whose diff_ids are the digests of the uncompressed tars
  app = image({ architecture: "amd64", os: "linux" }, [randomLayer("base"), randomLayer("lib"), randomLayer("app")], "app");
  // (b) an index of two single-platform images
  multi = imageIndex([
    image({ architecture: "amd64", os: "linux" }, [randomLayer("amd64-root"), randomLayer("amd64-bin")], "multi-amd64"),
    image({ architecture: "arm64", os: "linux" }, [randomLayer("arm64-root"), randomLayer("arm64-bin")], "multi-arm64"),
  ]);
  // (c) an artifact with the empty config whose subject is the image of (a)
  sbom = artifact(SBOM_TYPE, Buffer.from(JSON.stringify({ spdxVersion: "SPDX-2.3", name: "app" })), app.manifest.descriptor);

  const blobs: Blob[] = [app.manifest, ...app.blobs, multi.index, sbom.manifest, ...sbom.blobs];
  for (const child of multi.images) blobs.push(child.manifest, ...child.blobs);
  await writeLayout(src, blobs, {
    app: app.manifest.descriptor,
    multi: multi.index.descriptor,
    sbom: sbom.manifest.descriptor,
  });
}

afterEach(() => {
  // skopeo saw no 500s, and the registry logged none.
  expect(registry?.errorLogs() ?? []).toEqual([]);
});

afterAll(async () => {
  await registry?.dispose();
  await skopeo?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

function ref(repo: string, reference: string): string {
  const separator = reference.startsWith("sha256:") ? "@" : ":";
  return `docker://${registry.authority}/${repo}${separator}${reference}`;
}

async function push(layoutRef: string, repo: string, tag: string, extra: string[] = []): Promise<void> {
  await skopeo.run([
    "copy",
    "--quiet",
    "--preserve-digests",
    "--dest-tls-verify=false",
    ...extra,
    `oci:${src}:${layoutRef}`,
    ref(repo, tag),
  ]);
}

async function pull(repo: string, tag: string, out: string, extra: string[] = []): Promise<void> {
  await skopeo.run(["copy", "--quiet", "--preserve-digests", "--src-tls-verify=false", ...extra, ref(repo, tag), `oci:${out}:${tag}`]);
}

/** Every blob file skopeo wrote is the source layout's file byte for byte, and exactly `expected` were written. */
async function expectSameBlobs(out: string, expected: Blob[]): Promise<void> {
  const source = await layoutBlobs(src);
  const copied = await layoutBlobs(out);
  expect([...copied.keys()].sort()).toEqual([...new Set(expected.map((b) => b.descriptor.digest))].sort());
  for (const [digest, bytes] of copied) {
    expect(sha256(bytes), `blob file ${digest} is named by its content`).toBe(digest);
    expect(bytes.equals(source.get(digest) as Buffer), `blob ${digest} identical to the source layout`).toBe(true);
  }
}

/** The registry serves exactly these bytes for the manifest and every blob. */
async function expectServed(repo: string, reference: string, manifest: Blob, blobs: Blob[]): Promise<void> {
  const response = await client.request("GET", `/v2/${repo}/manifests/${reference}`, {
    headers: { Accept: manifest.descriptor.mediaType },
  });
  expect(response.status).toBe(200);
  expect(header(response.headers, "docker-content-digest")).toBe(manifest.descriptor.digest);
  expect(header(response.headers, "content-type")).toBe(manifest.descriptor.mediaType);
  expect(response.body.equals(manifest.bytes)).toBe(true);
  for (const b of blobs) {
    const got = await client.getBlob(repo, b.descriptor.digest);
    expect(got.status, `GET blob ${b.descriptor.digest}`).toBe(200);
    expect(got.body.equals(b.bytes)).toBe(true);
  }
}

describe("skopeo interop", () => {
  test("a three-layer image is copied in and out byte for byte, and inspect reports its digest and layers", async () => {
    await push("app", "e2e/app", "v1");
    await expectServed("e2e/app", "v1", app.manifest, app.blobs);

    const out = join(work, "out-app");
    await pull("e2e/app", "v1", out);
    expect((await layoutRef(out, "v1")).digest).toBe(app.manifest.descriptor.digest);
    await expectSameBlobs(out, [app.manifest, ...app.blobs]);

    const inspect = await skopeo.json<InspectOutput>(["inspect", "--tls-verify=false", ref("e2e/app", "v1")]);
    expect(inspect.Name).toBe(`${registry.authority}/e2e/app`);
    expect(inspect.Digest).toBe(app.manifest.descriptor.digest);
    expect(inspect.RepoTags).toEqual(["v1"]);
    expect(inspect.Architecture).toBe("amd64");
    expect(inspect.Os).toBe("linux");
    expect(inspect.Layers).toEqual(app.layers.map((l) => l.descriptor.digest));
    expect(inspect.Labels).toEqual({ fixture: "app" });

    const raw = await skopeo.run(["inspect", "--raw", "--tls-verify=false", ref("e2e/app", "v1")]);
    expect(raw.stdout).toBe(app.manifest.bytes.toString("utf8"));
    const config = await skopeo.run(["inspect", "--config", "--raw", "--tls-verify=false", ref("e2e/app", "v1")]);
    expect(config.stdout).toBe(app.config.bytes.toString("utf8"));
  });

  test("a two-platform index is copied with --all in and out byte for byte", async () => {
    await push("multi", "e2e/multi", "v1", ["--all"]);
    const children = multi.images.flatMap((img) => [img.manifest, ...img.blobs]);
    await expectServed("e2e/multi", "v1", multi.index, []);
    for (const img of multi.images) await expectServed("e2e/multi", img.manifest.descriptor.digest, img.manifest, img.blobs);

    const out = join(work, "out-multi");
    await pull("e2e/multi", "v1", out, ["--all"]);
    expect((await layoutRef(out, "v1")).digest).toBe(multi.index.descriptor.digest);
    await expectSameBlobs(out, [multi.index, ...children]);

    const raw = await skopeo.run(["inspect", "--raw", "--tls-verify=false", ref("e2e/multi", "v1")]);
    expect(raw.stdout).toBe(multi.index.bytes.toString("utf8"));
    // inspect reports the index digest and the layers of the platform it resolves to.
    for (const [arch, img] of [
      ["amd64", multi.images[0]],
      ["arm64", multi.images[1]],
    ] as const) {
      const inspect = await skopeo.json<InspectOutput>([
        "--override-os",
        "linux",
        "--override-arch",
        arch,
        "inspect",
        "--tls-verify=false",
        ref("e2e/multi", "v1"),
      ]);
      expect(inspect.Digest).toBe(multi.index.descriptor.digest);
      expect(inspect.Architecture).toBe(arch);
      expect(inspect.Layers).toEqual(img?.layers.map((l) => l.descriptor.digest));
    }

    // Without --all one platform's image comes out, chosen by --override-arch, byte for byte.
    const arm64 = multi.images[1] as Image;
    const single = join(work, "out-multi-arm64");
    await skopeo.run([
      "--override-os",
      "linux",
      "--override-arch",
      "arm64",
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      ref("e2e/multi", "v1"),
      `oci:${single}:v1`,
    ]);
    expect((await layoutRef(single, "v1")).digest).toBe(arm64.manifest.descriptor.digest);
    await expectSameBlobs(single, [arm64.manifest, ...arm64.blobs]);
  });

  test("an artifact whose subject is the image is copied, listed by the referrers API and read back raw", async () => {
    // skopeo 1.9 copies this artifact (empty config, artifactType, subject) unchanged with
    // --preserve-digests. Its plain `inspect` refuses artifacts ("unsupported image-specific operation
    // on artifact with type application/vnd.oci.empty.v1+json"), so the artifact is checked with
    // `inspect --raw` and the referrers API over plain HTTP instead.
    await push("app", "e2e/signed", "v1");
    await push("sbom", "e2e/signed", "sbom");
    await expectServed("e2e/signed", sbom.manifest.descriptor.digest, sbom.manifest, sbom.blobs);

    const referrers = await client.request("GET", `/v2/e2e/signed/referrers/${app.manifest.descriptor.digest}`);
    expect(referrers.status).toBe(200);
    expect(header(referrers.headers, "content-type")).toBe(OCI.index);
    expect(JSON.parse(referrers.body.toString("utf8"))).toEqual({
      schemaVersion: 2,
      mediaType: OCI.index,
      manifests: [
        {
          mediaType: OCI.manifest,
          digest: sbom.manifest.descriptor.digest,
          size: sbom.manifest.descriptor.size,
          artifactType: SBOM_TYPE,
          annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
        },
      ],
    });
    const filtered = await client.request("GET", `/v2/e2e/signed/referrers/${app.manifest.descriptor.digest}?artifactType=text%2Fplain`);
    expect(filtered.status).toBe(200);
    expect(header(filtered.headers, "oci-filters-applied")).toBe("artifactType");
    expect(JSON.parse(filtered.body.toString("utf8")).manifests).toEqual([]);

    const raw = await skopeo.run(["inspect", "--raw", "--tls-verify=false", ref("e2e/signed", sbom.manifest.descriptor.digest)]);
    expect(raw.stdout).toBe(sbom.manifest.bytes.toString("utf8"));
    expect(JSON.parse(raw.stdout).subject.digest).toBe(app.manifest.descriptor.digest);

    const out = join(work, "out-sbom");
    await pull("e2e/signed", "sbom", out);
    expect((await layoutRef(out, "sbom")).digest).toBe(sbom.manifest.descriptor.digest);
    await expectSameBlobs(out, [sbom.manifest, ...sbom.blobs]);
  });

  test("list-tags and registry-to-registry copies (same repository and cross-repository mount)", async () => {
    await push("app", "e2e/tags", "v1");
    const copy = ["copy", "--quiet", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"];
    await skopeo.run([...copy, ref("e2e/tags", "v1"), ref("e2e/tags", "v2")]);
    await skopeo.run([...copy, ref("e2e/tags", "v1"), ref("e2e/tags", "latest")]);
    await skopeo.run([...copy, ref("e2e/tags", "v1"), ref("e2e/tags-mirror", "v1")]);

    const tags = await skopeo.json<{ Repository: string; Tags: string[] }>([
      "list-tags",
      "--tls-verify=false",
      `docker://${registry.authority}/e2e/tags`,
    ]);
    expect(tags).toEqual({ Repository: `${registry.authority}/e2e/tags`, Tags: ["latest", "v1", "v2"] });
    const mirrorTags = await skopeo.json<{ Tags: string[] }>([
      "list-tags",
      "--tls-verify=false",
      `docker://${registry.authority}/e2e/tags-mirror`,
    ]);
    expect(mirrorTags.Tags).toEqual(["v1"]);

    for (const [repo, tag] of [
      ["e2e/tags", "v2"],
      ["e2e/tags", "latest"],
      ["e2e/tags-mirror", "v1"],
    ] as const) {
      const inspect = await skopeo.json<InspectOutput>(["inspect", "--tls-verify=false", ref(repo, tag)]);
      expect(inspect.Digest).toBe(app.manifest.descriptor.digest);
      expect(inspect.Layers).toEqual(app.layers.map((l) => l.descriptor.digest));
      await expectServed(repo, tag, app.manifest, app.blobs);
    }
  });
});
