import {
  bareMediaType,
  type Descriptor,
  digestOf,
  isIndexMediaType,
  isNonDistributable,
  ManifestError,
  MediaType,
  parseDescriptor,
  parseManifest,
} from "@minato/oci";
import { describe, expect, it } from "vitest";

const EMPTY: Descriptor = { mediaType: MediaType.ociEmpty, digest: digestOf("{}"), size: 2 };
const config: Descriptor = { mediaType: MediaType.ociConfig, digest: digestOf("config"), size: 6 };
const layer: Descriptor = { mediaType: MediaType.ociLayerGzip, digest: digestOf("layer"), size: 5 };
const child: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf("child"), size: 500 };

function bytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));
}

function fails(value: unknown, contentType?: string): string {
  try {
    parseManifest(bytes(value), contentType);
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    return (error as Error).message;
  }
  throw new Error(`parsed: ${JSON.stringify(value)}`);
}

const ociManifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer] };

describe("parseManifest: each manifest type", () => {
  it("OCI image manifest: config and layers are the blobs; artifactType falls back to the config type", () => {
    const summary = parseManifest(bytes(ociManifest), MediaType.ociManifest);
    expect(summary).toEqual({
      mediaType: MediaType.ociManifest,
      kind: "image",
      artifactType: MediaType.ociConfig,
      blobs: [config, layer],
      manifests: [],
    });
  });

  it("OCI image manifest with subject, annotations and artifactType", () => {
    const subject: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf("subject"), size: 10 };
    const summary = parseManifest(
      bytes({ ...ociManifest, artifactType: "application/vnd.example+type", subject, annotations: { a: "b" } }),
      MediaType.ociManifest,
    );
    expect(summary.artifactType).toBe("application/vnd.example+type");
    expect(summary.subject).toEqual(subject);
    expect(summary.annotations).toEqual({ a: "b" });
  });

  it("an empty artifactType on an image manifest falls back to the config media type", () => {
    expect(parseManifest(bytes({ ...ociManifest, artifactType: "" })).artifactType).toBe(MediaType.ociConfig);
  });

  it("artifact manifest with the empty config", () => {
    const summary = parseManifest(bytes({ ...ociManifest, artifactType: "application/vnd.example.sbom", config: EMPTY, layers: [EMPTY] }));
    expect(summary.kind).toBe("image");
    expect(summary.artifactType).toBe("application/vnd.example.sbom");
    expect(summary.blobs).toEqual([EMPTY, EMPTY]);
  });

  it("OCI image index: children are manifests, no blobs, no artifactType unless given", () => {
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [{ ...child, platform: { architecture: "amd64", os: "linux" } }],
    };
    const summary = parseManifest(bytes(index), MediaType.ociIndex);
    expect(summary.kind).toBe("index");
    expect(summary.mediaType).toBe(MediaType.ociIndex);
    expect(summary.blobs).toEqual([]);
    expect(summary.manifests).toEqual([{ ...child, platform: { architecture: "amd64", os: "linux" } }]);
    expect(summary).not.toHaveProperty("artifactType");
    expect(parseManifest(bytes({ ...index, artifactType: "application/x" })).artifactType).toBe("application/x");
    expect(parseManifest(bytes({ ...index, manifests: [] })).manifests).toEqual([]);
  });

  it("Docker schema 2 manifest", () => {
    const dockerConfig = { ...config, mediaType: MediaType.dockerConfig };
    const dockerLayer = { ...layer, mediaType: MediaType.dockerLayer };
    const summary = parseManifest(
      bytes({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config: dockerConfig, layers: [dockerLayer] }),
    );
    expect(summary).toEqual({
      mediaType: MediaType.dockerManifest,
      kind: "image",
      artifactType: MediaType.dockerConfig,
      blobs: [dockerConfig, dockerLayer],
      manifests: [],
    });
  });

  it("Docker manifest list", () => {
    const entry = { ...child, mediaType: MediaType.dockerManifest };
    const summary = parseManifest(bytes({ schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests: [entry] }));
    expect(summary.kind).toBe("index");
    expect(summary.mediaType).toBe(MediaType.dockerManifestList);
    expect(summary.manifests).toEqual([entry]);
  });

  it("leaves non-distributable and foreign layers out of the blobs that must exist", () => {
    const foreign = { ...layer, mediaType: MediaType.dockerForeignLayer, urls: ["https://example.com/layer"] };
    const nondist = { ...layer, digest: digestOf("nd"), mediaType: MediaType.ociLayerNondistributableGzip };
    const summary = parseManifest(bytes({ ...ociManifest, layers: [foreign, nondist, layer] }));
    expect(summary.blobs).toEqual([config, layer]);
  });

  it("takes the type from Content-Type when the manifest has no mediaType field", () => {
    const { mediaType: _, ...untyped } = ociManifest;
    expect(parseManifest(bytes(untyped), MediaType.ociManifest).mediaType).toBe(MediaType.ociManifest);
    expect(parseManifest(bytes(untyped), `${MediaType.dockerManifest}; charset=utf-8`).mediaType).toBe(MediaType.dockerManifest);
  });

  it("infers the type from the shape when neither field nor header names one", () => {
    const { mediaType: _, ...untyped } = ociManifest;
    expect(parseManifest(bytes(untyped)).mediaType).toBe(MediaType.ociManifest);
    expect(parseManifest(bytes(untyped), "application/json").mediaType).toBe(MediaType.ociManifest);
    expect(parseManifest(bytes({ schemaVersion: 2, manifests: [child] })).mediaType).toBe(MediaType.ociIndex);
  });

  it("ignores Content-Type parameters and a non-manifest Content-Type", () => {
    expect(parseManifest(bytes(ociManifest), `${MediaType.ociManifest} ; charset=utf-8`).mediaType).toBe(MediaType.ociManifest);
    expect(parseManifest(bytes(ociManifest), "application/octet-stream").mediaType).toBe(MediaType.ociManifest);
  });

  it("parses bytes that are a view into a larger buffer", () => {
    const text = JSON.stringify(ociManifest);
    const backing = Buffer.from(`garbage${text}garbage`);
    const view = backing.subarray(7, 7 + Buffer.byteLength(text));
    expect(parseManifest(view).mediaType).toBe(MediaType.ociManifest);
  });
});

describe("parseManifest: failure modes", () => {
  it("invalid JSON, or JSON that is not an object", () => {
    for (const text of ["", "{", "not json", '{"schemaVersion":2,}', "[]", "null", "2", '"manifest"']) {
      fails(text);
    }
  });

  it("schemaVersion other than the number 2", () => {
    for (const schemaVersion of [undefined, 1, 3, "2", null]) fails({ ...ociManifest, schemaVersion });
  });

  it("unsupported or malformed media types", () => {
    expect(fails({ ...ociManifest, mediaType: "application/vnd.docker.distribution.manifest.v1+json" })).toMatch(/unsupported/);
    fails({ ...ociManifest, mediaType: "application/json" });
    fails({ ...ociManifest, mediaType: 5 });
    fails({ schemaVersion: 2, layers: [] });
  });

  it("mediaType field disagreeing with a manifest Content-Type", () => {
    expect(fails(ociManifest, MediaType.dockerManifest)).toMatch(/does not match/);
    fails(ociManifest, MediaType.ociIndex);
  });

  it("image manifests without a valid config", () => {
    fails({ ...ociManifest, config: undefined });
    fails({ ...ociManifest, config: "sha256:abc" });
    fails({ ...ociManifest, config: [config] });
    fails({ ...ociManifest, config: { ...config, mediaType: "" } });
    fails({ ...ociManifest, config: { ...config, mediaType: undefined } });
  });

  it("image manifests without a layers array", () => {
    fails({ ...ociManifest, layers: undefined });
    fails({ ...ociManifest, layers: layer });
    fails({ ...ociManifest, layers: "none" });
  });

  it("descriptors with a missing or malformed digest or size", () => {
    for (const bad of [
      { ...layer, digest: undefined },
      { ...layer, digest: "sha256:1234" },
      { ...layer, digest: `sha256:${"A".repeat(64)}` },
      { ...layer, digest: 42 },
      { ...layer, size: undefined },
      { ...layer, size: -1 },
      { ...layer, size: 1.5 },
      { ...layer, size: "5" },
      { ...layer, size: 2 ** 60 },
      { ...layer, artifactType: 1 },
      { ...layer, annotations: { a: 1 } },
      { ...layer, annotations: ["a"] },
      "layer",
      null,
    ]) {
      fails({ ...ociManifest, layers: [layer, bad] });
    }
  });

  it("a Docker schema 2 manifest with no layers", () => {
    expect(fails({ ...ociManifest, mediaType: MediaType.dockerManifest, layers: [] })).toMatch(/layers/);
  });

  it("an index without a manifests array, or with a bad child", () => {
    fails({ schemaVersion: 2, mediaType: MediaType.ociIndex });
    fails({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: child });
    fails({ schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests: [{ ...child, size: -5 }] });
  });

  it("manifest-level annotations, artifactType and subject of the wrong shape", () => {
    fails({ ...ociManifest, annotations: "a=b" });
    fails({ ...ociManifest, annotations: { a: true } });
    fails({ ...ociManifest, artifactType: ["x"] });
    fails({ ...ociManifest, subject: "sha256:abc" });
    fails({ ...ociManifest, subject: { ...child, digest: "nope" } });
  });
});

describe("parseDescriptor", () => {
  it("keeps the registry-relevant fields and drops unknown ones", () => {
    const parsed = parseDescriptor(
      {
        ...layer,
        artifactType: "application/x",
        annotations: { k: "v" },
        platform: { architecture: "arm64", os: "linux", variant: "v8" },
        urls: ["https://example.com"],
        data: "e30=",
        unknown: true,
      },
      "layer",
    );
    expect(parsed).toEqual({
      ...layer,
      artifactType: "application/x",
      annotations: { k: "v" },
      platform: { architecture: "arm64", os: "linux", variant: "v8" },
      urls: ["https://example.com"],
    });
  });

  it("names where the problem is", () => {
    expect(() => parseDescriptor({ ...layer, size: -1 }, "layers[3]")).toThrow(/layers\[3\]\.size/);
  });
});

describe("media types", () => {
  it("bareMediaType strips parameters, whitespace and case", () => {
    expect(bareMediaType(" Application/JSON ; charset=utf-8")).toBe("application/json");
    expect(bareMediaType(MediaType.ociManifest)).toBe(MediaType.ociManifest);
  });

  it("isIndexMediaType and isNonDistributable", () => {
    expect(isIndexMediaType(MediaType.ociIndex)).toBe(true);
    expect(isIndexMediaType(MediaType.dockerManifestList)).toBe(true);
    expect(isIndexMediaType(MediaType.ociManifest)).toBe(false);
    expect(isNonDistributable(MediaType.dockerForeignLayer)).toBe(true);
    expect(isNonDistributable(MediaType.ociLayerNondistributable)).toBe(true);
    expect(isNonDistributable(MediaType.ociLayerNondistributableZstd)).toBe(true);
    expect(isNonDistributable(MediaType.ociLayerGzip)).toBe(false);
    expect(isNonDistributable(MediaType.dockerLayer)).toBe(false);
  });
});
