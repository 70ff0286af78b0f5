import { type Digest, parseDigest } from "./digest.js";
import { findDuplicateKey } from "./json.js";
import { bareMediaType, isIndexMediaType, isNonDistributable, MANIFEST_MEDIA_TYPES, MediaType } from "./media-types.js";

/** image-spec descriptor.md: the three required properties plus what registries pass through. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export interface Platform {
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
}

/** What a registry needs to know about a manifest to store, link and list it. */
export interface ManifestSummary {
  mediaType: string;
  kind: "image" | "index";
  /** The artifact type a referrers listing reports (distribution-spec "Listing Referrers"). */
  artifactType?: string;
  annotations?: Record<string, string>;
  subject?: Descriptor;
  /** Blobs that must exist in the repository: config and distributable layers. */
  blobs: Descriptor[];
  /** Child manifests that must exist in the repository (indexes only). */
  manifests: Descriptor[];
}

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseAnnotations(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === "string")) {
    throw new ManifestError(`${where}.annotations must be a map of strings`);
  }
  return value as Record<string, string>;
}

export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw new ManifestError(`${where} must be a descriptor object`);
  const { mediaType, digest, size, artifactType } = value;
  if (typeof mediaType !== "string" || mediaType === "") throw new ManifestError(`${where}.mediaType is required`);
  if (typeof digest !== "string") throw new ManifestError(`${where}.digest is required`);
  try {
    parseDigest(digest);
  } catch (error) {
    throw new ManifestError(`${where}.digest: ${(error as Error).message}`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new ManifestError(`${where}.size must be a non-negative integer`);
  }
  if (artifactType !== undefined && typeof artifactType !== "string") throw new ManifestError(`${where}.artifactType must be a string`);
  const descriptor: Descriptor = { mediaType, digest: digest as Digest, size };
  if (artifactType) descriptor.artifactType = artifactType;
  const annotations = parseAnnotations(value.annotations, where);
  if (annotations) descriptor.annotations = annotations;
  if (isObject(value.platform)) descriptor.platform = value.platform as unknown as Platform;
  if (Array.isArray(value.urls)) descriptor.urls = value.urls as string[];
  return descriptor;
}

function parseDescriptorList(value: unknown, where: string): Descriptor[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ManifestError(`${where} must be an array`);
  return value.map((item, i) => parseDescriptor(item, `${where}[${i}]`));
}

/**
 * Parses manifest bytes as pushed. The media type comes from the manifest's own `mediaType` field,
 * else from the request's Content-Type; when both are present they must agree (distribution-spec
 * "Pushing Manifests": clients MUST set Content-Type to the `mediaType` field).
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): ManifestSummary {
  let document: unknown;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  try {
    document = JSON.parse(text);
  } catch {
    throw new ManifestError("manifest is not valid JSON");
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined)
    throw new ManifestError(`manifest has the key ${JSON.stringify(duplicate.slice(0, 100))} twice in one object`);
  if (!isObject(document)) throw new ManifestError("manifest must be a JSON object");
  if (document.schemaVersion !== 2) throw new ManifestError("schemaVersion must be 2");

  const declared = document.mediaType;
  if (declared !== undefined && typeof declared !== "string") throw new ManifestError("mediaType must be a string");
  const header = contentType ? bareMediaType(contentType) : undefined;
  const headerIsManifest = header !== undefined && MANIFEST_MEDIA_TYPES.includes(header);
  if (declared && headerIsManifest && declared !== header) {
    throw new ManifestError(`mediaType ${declared} does not match Content-Type ${header}`);
  }
  const mediaType = declared || (headerIsManifest ? header : inferMediaType(document));
  if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) throw new ManifestError(`unsupported manifest media type ${mediaType}`);

  const annotations = parseAnnotations(document.annotations, "manifest");
  const subject = document.subject === undefined ? undefined : parseDescriptor(document.subject, "subject");
  const artifactType = document.artifactType;
  if (artifactType !== undefined && typeof artifactType !== "string") throw new ManifestError("artifactType must be a string");

  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(document.manifests)) throw new ManifestError("manifests must be an array");
    const summary: ManifestSummary = {
      mediaType,
      kind: "index",
      blobs: [],
      manifests: parseDescriptorList(document.manifests, "manifests"),
    };
    if (artifactType) summary.artifactType = artifactType;
    if (annotations) summary.annotations = annotations;
    if (subject) summary.subject = subject;
    return summary;
  }

  const config = parseDescriptor(document.config, "config");
  if (!Array.isArray(document.layers)) throw new ManifestError("layers must be an array");
  const layers = parseDescriptorList(document.layers, "layers");
  if (mediaType === MediaType.dockerManifest && layers.length === 0) throw new ManifestError("layers must not be empty");
  const summary: ManifestSummary = {
    mediaType,
    kind: "image",
    // Referrers report artifactType, falling back to the config media type for image manifests.
    artifactType: artifactType || config.mediaType,
    blobs: [config, ...layers.filter((layer) => !isNonDistributable(layer.mediaType))],
    manifests: [],
  };
  if (annotations) summary.annotations = annotations;
  if (subject) summary.subject = subject;
  return summary;
}

/** Manifests without a mediaType field (allowed by image-spec) are recognised by shape. */
function inferMediaType(document: Json): string {
  if (Array.isArray(document.manifests)) return MediaType.ociIndex;
  if (isObject(document.config)) return MediaType.ociManifest;
  throw new ManifestError("manifest has no mediaType and its type cannot be inferred");
}
