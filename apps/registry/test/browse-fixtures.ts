import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { MediaType } from "@minato/oci";
import { expect } from "vitest";
import { tarOf, writeTree } from "../../../test/support/build.js";
import { Skopeo } from "../../../test/support/skopeo.js";
import { ADMIN, bearer, tokenFor } from "./auth-helpers.js";
import { call, type TestRegistry } from "./harness.js";

/**
 * Images for the browsing tests, written as an OCI image layout and pushed with skopeo (a real
 * client): a single-platform image with a full configuration, a two-platform index, and an SBOM
 * artifact whose subject is the image, pushed over the distribution API.
 */

export interface Blob {
  digest: string;
  size: number;
}

export interface PushedImage {
  manifest: Blob;
  config: Blob;
  layers: Blob[];
  /** What the configuration says. */
  created: string;
  architecture: string;
  history: { created_by: string; empty_layer?: boolean }[];
}

export interface Fixtures {
  /** `team/app:1.0` (also tagged 1.1 and latest). */
  app: PushedImage;
  /** `team/multi:latest`: an index of linux/amd64 and linux/arm64/v8. */
  index: { manifest: Blob; platforms: Record<string, PushedImage> };
  /** An SBOM artifact (`application/spdx+json`) with `team/app:1.0` as its subject. */
  sbom: Blob;
}

const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

class Layout {
  constructor(readonly dir: string) {}

  async put(data: Buffer): Promise<Blob> {
    const digest = sha256(data);
    await writeFile(join(this.dir, "blobs", "sha256", digest.slice(7)), data);
    return { digest, size: data.length };
  }

  async layer(files: Record<string, string>): Promise<{ blob: Blob; diffId: string }> {
    const tree = await mkdtemp(join(tmpdir(), "minato-browse-layer-"));
    try {
      await writeTree(tree, files);
      const tar = tarOf(tree);
      return { blob: await this.put(gzipSync(tar)), diffId: sha256(tar) };
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
  }

  async image(options: { created: string; architecture: string; variant?: string; files: Record<string, string>[] }): Promise<PushedImage> {
    const layers = [];
    for (const files of options.files) layers.push(await this.layer(files));
    const history = [
      { created_by: "/bin/sh -c #(nop) ADD file:rootfs in / ", created: options.created },
      { created_by: "/bin/sh -c #(nop)  ENV APP_MODE=production", created: options.created, empty_layer: true },
      ...layers.slice(1).map((_, i) => ({ created_by: `RUN /bin/sh -c make step-${i + 1} # buildkit`, created: options.created })),
    ];
    const config = await this.put(
      Buffer.from(
        JSON.stringify({
          created: options.created,
          architecture: options.architecture,
          ...(options.variant ? { variant: options.variant } : {}),
          os: "linux",
          config: {
            Entrypoint: ["/usr/bin/app"],
            Cmd: ["--serve", "--port=8080"],
            Env: ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_MODE=production"],
            Labels: { "org.opencontainers.image.source": "https://example.invalid/app", maintainer: "team@example.invalid" },
            ExposedPorts: { "8080/tcp": {}, "9090/udp": {} },
            User: "app",
            WorkingDir: "/srv/app",
          },
          rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
          history,
        }),
      ),
    );
    const manifest = await this.put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, ...config },
          layers: layers.map((l) => ({ mediaType: MediaType.ociLayerGzip, ...l.blob })),
        }),
      ),
    );
    return { manifest, config, layers: layers.map((l) => l.blob), created: options.created, architecture: options.architecture, history };
  }
}

/** Pushes the fixtures into `registry` (as the admin when it has authentication). */
export async function pushFixtures(registry: TestRegistry): Promise<Fixtures> {
  const dir = await mkdtemp(join(tmpdir(), "minato-browse-layout-"));
  const skopeo = await Skopeo.create();
  try {
    await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    const layout = new Layout(dir);
    const app = await layout.image({
      created: "2024-03-01T10:00:00Z",
      architecture: "amd64",
      files: [{ "etc/os-release": "NAME=minato-test\n" }, { "usr/bin/app": "#!/bin/sh\necho app\n".repeat(50) }],
    });
    const amd64 = await layout.image({ created: "2024-05-01T08:00:00Z", architecture: "amd64", files: [{ "bin/tool": "amd64 build" }] });
    const arm64 = await layout.image({
      created: "2024-05-02T09:30:00Z",
      architecture: "arm64",
      variant: "v8",
      files: [{ "bin/tool": "arm64 build, a little longer" }],
    });
    const indexBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [
          { mediaType: MediaType.ociManifest, ...amd64.manifest, platform: { os: "linux", architecture: "amd64" } },
          { mediaType: MediaType.ociManifest, ...arm64.manifest, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
        ],
      }),
    );
    const index = await layout.put(indexBytes);
    const ref = (name: string) => ({ "org.opencontainers.image.ref.name": name });
    await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await writeFile(
      join(dir, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          { mediaType: MediaType.ociManifest, ...app.manifest, annotations: ref("app") },
          { mediaType: MediaType.ociIndex, ...index, annotations: ref("multi") },
        ],
      }),
    );

    const host = new URL(registry.url).host;
    const creds = registry.auth ? ["--dest-creds", `${ADMIN.user}:${ADMIN.password}`] : [];
    const copy = ["copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", ...creds];
    await skopeo.run([...copy, `oci:${dir}:app`, `docker://${host}/team/app:1.0`]);
    await skopeo.run([...copy, `oci:${dir}:app`, `docker://${host}/team/app:1.1`]);
    await skopeo.run([...copy, `oci:${dir}:app`, `docker://${host}/team/app:latest`]);
    await skopeo.run([...copy, "--all", `oci:${dir}:multi`, `docker://${host}/team/multi:latest`]);

    // The SBOM refers to the app image (distribution-spec "Pushing Manifests with Subject").
    const headers = registry.auth ? bearer(await tokenFor(registry, ADMIN, "repository:team/app:pull,push")) : {};
    const sbomLayer = Buffer.from(JSON.stringify({ spdxVersion: "SPDX-2.3", name: "team/app" }));
    const empty = Buffer.from("{}");
    for (const blob of [sbomLayer, empty]) {
      const res = await call(registry, "POST", `/v2/team/app/blobs/uploads/?digest=${sha256(blob)}`, {
        headers: { ...headers, "content-type": "application/octet-stream" },
        body: blob,
      });
      expect(res.statusCode, await res.body.text()).toBe(201);
    }
    const sbomManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: "application/spdx+json",
        config: { mediaType: MediaType.ociEmpty, digest: sha256(empty), size: empty.length },
        layers: [{ mediaType: "application/spdx+json", digest: sha256(sbomLayer), size: sbomLayer.length }],
        subject: { mediaType: MediaType.ociManifest, ...app.manifest },
      }),
    );
    const sbom = { digest: sha256(sbomManifest), size: sbomManifest.length };
    const res = await call(registry, "PUT", `/v2/team/app/manifests/${sbom.digest}`, {
      headers: { ...headers, "content-type": MediaType.ociManifest },
      body: sbomManifest,
    });
    expect(res.statusCode, await res.body.text()).toBe(201);
    return { app, index: { manifest: index, platforms: { "linux/amd64": amd64, "linux/arm64/v8": arm64 } }, sbom };
  } finally {
    await skopeo.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Bytes of an image as the API counts them: manifest, configuration and layers. */
export const imageSize = (image: PushedImage): number =>
  image.manifest.size + image.config.size + image.layers.reduce((sum, layer) => sum + layer.size, 0);
