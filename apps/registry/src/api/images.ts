import { type Digest, isIndexMediaType, MediaType } from "@minato/oci";
import type { RegistryDeps } from "../http.js";
import type { StoredManifest } from "../metadata/store.js";

/** What the browsing API shows of an image configuration (image-spec config.md). */
export interface ImageConfig {
  created: string | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  entrypoint: string[] | null;
  cmd: string[] | null;
  env: string[];
  labels: Record<string, string>;
  exposedPorts: string[];
  user: string | null;
  workingDir: string | null;
  history: HistoryEntry[];
}

export interface HistoryEntry {
  created: string | null;
  createdBy: string | null;
  comment: string | null;
  emptyLayer: boolean;
}

export interface PlatformView {
  os: string | null;
  architecture: string | null;
  variant: string | null;
  digest: Digest;
  /** The platform's manifest, configuration and layers, in bytes. */
  size: number;
}

export interface LayerView {
  digest: Digest;
  mediaType: string;
  size: number;
  /** The history entry that made this layer (the Dockerfile step), when the configuration records it. */
  createdBy: string | null;
  created: string | null;
}

export type ManifestKind = "image" | "index" | "artifact";

/** A manifest's facts, worked out from its content, its children and its configuration. */
export interface ManifestFacts {
  kind: ManifestKind;
  artifactType: string | null;
  /** Manifest + configuration + layers; for an index, the index plus every platform's size. */
  size: number;
  created: string | null;
  platforms: PlatformView[];
  config: ImageConfig | null;
  layers: LayerView[];
  document: Record<string, unknown>;
}

type Json = Record<string, unknown>;
interface RawDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
}

const IMAGE_CONFIG_TYPES = new Set<string>([MediaType.ociConfig, MediaType.dockerConfig]);
/** Configurations are small; anything larger is not read into memory for a page view. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const str = (value: unknown): string | null => (typeof value === "string" ? value : null);
const strings = (value: unknown): string[] | null =>
  Array.isArray(value) && value.every((v) => typeof v === "string") ? (value as string[]) : null;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** Parsed configurations by digest: content-addressed, so never stale. Bounded. */
export class ConfigCache {
  readonly #entries = new Map<Digest, ImageConfig | null>();
  constructor(private readonly max = 5_000) {}

  async get(deps: RegistryDeps, digest: Digest, size: number): Promise<ImageConfig | null> {
    const cached = this.#entries.get(digest);
    if (cached !== undefined) return cached;
    const config = size > MAX_CONFIG_BYTES || size <= 0 ? null : await readConfig(deps, digest, size);
    if (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value as Digest);
    this.#entries.set(digest, config);
    return config;
  }
}

async function readConfig(deps: RegistryDeps, digest: Digest, size: number): Promise<ImageConfig | null> {
  let raw: Json;
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    // The range sizes the read buffer to the blob (a whole-blob read allocates for large blobs).
    for await (const chunk of await deps.storage.read(digest, { start: 0, end: size - 1 })) {
      total += (chunk as Buffer).byteLength;
      if (total > MAX_CONFIG_BYTES) return null;
      chunks.push(chunk as Buffer);
    }
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (!isObject(parsed)) return null;
    raw = parsed;
  } catch (error) {
    deps.logger.debug({ err: error, digest }, "image configuration unreadable");
    return null;
  }
  const run = isObject(raw.config) ? raw.config : {};
  const labels = isObject(run.Labels) ? run.Labels : {};
  return {
    created: str(raw.created),
    os: str(raw.os),
    architecture: str(raw.architecture),
    variant: str(raw.variant),
    entrypoint: strings(run.Entrypoint),
    cmd: strings(run.Cmd),
    env: strings(run.Env) ?? [],
    labels: Object.fromEntries(Object.entries(labels).filter((entry): entry is [string, string] => typeof entry[1] === "string")),
    exposedPorts: isObject(run.ExposedPorts) ? Object.keys(run.ExposedPorts) : [],
    user: str(run.User) || null,
    workingDir: str(run.WorkingDir) || null,
    history: (Array.isArray(raw.history) ? raw.history : []).filter(isObject).map((h) => ({
      created: str(h.created),
      createdBy: str(h.created_by),
      comment: str(h.comment),
      emptyLayer: h.empty_layer === true,
    })),
  };
}

export class ManifestDescriber {
  readonly configs = new ConfigCache();
  constructor(private readonly deps: RegistryDeps) {}

  /** `withChildren`: an index's platforms are looked up (their manifests and configurations). */
  async describe(repository: string, manifest: StoredManifest): Promise<ManifestFacts> {
    const document = JSON.parse(manifest.content.toString("utf8")) as Json;
    const ownSize = manifest.content.byteLength;
    if (isIndexMediaType(manifest.mediaType)) {
      const children = (Array.isArray(document.manifests) ? document.manifests : []) as RawDescriptor[];
      const stored = await this.deps.metadata.manifestsByDigest(
        repository,
        children.map((child) => child.digest),
      );
      const platforms: PlatformView[] = [];
      let created: string | null = null;
      for (const child of children) {
        const found = stored.get(child.digest);
        const facts = found && !isIndexMediaType(found.mediaType) ? await this.describe(repository, found) : undefined;
        if (facts?.created && (created === null || facts.created > created)) created = facts.created;
        platforms.push({
          os: child.platform?.os ?? null,
          architecture: child.platform?.architecture ?? null,
          variant: child.platform?.variant ?? null,
          digest: child.digest,
          size: facts?.size ?? child.size,
        });
      }
      return {
        kind: "index",
        artifactType: str(document.artifactType),
        size: ownSize + platforms.reduce((sum, p) => sum + p.size, 0),
        created,
        platforms,
        config: null,
        layers: [],
        document,
      };
    }
    const configDescriptor = document.config as RawDescriptor;
    const layerDescriptors = (Array.isArray(document.layers) ? document.layers : []) as RawDescriptor[];
    const size = ownSize + configDescriptor.size + layerDescriptors.reduce((sum, layer) => sum + layer.size, 0);
    const isImage = IMAGE_CONFIG_TYPES.has(configDescriptor.mediaType) && document.artifactType === undefined;
    const config = isImage ? await this.configs.get(this.deps, configDescriptor.digest, configDescriptor.size) : null;
    // Each history entry not marked empty made the next layer (image-spec config.md "history").
    const makers = (config?.history ?? []).filter((h) => !h.emptyLayer);
    const layers = layerDescriptors.map((layer, i) => ({
      digest: layer.digest,
      mediaType: layer.mediaType,
      size: layer.size,
      createdBy: makers[i]?.createdBy ?? null,
      created: makers[i]?.created ?? null,
    }));
    return {
      kind: isImage ? "image" : "artifact",
      artifactType: str(document.artifactType) ?? (isImage ? null : configDescriptor.mediaType),
      size,
      created: config?.created ?? null,
      platforms: isImage
        ? [
            {
              os: config?.os ?? null,
              architecture: config?.architecture ?? null,
              variant: config?.variant ?? null,
              digest: manifest.digest,
              size,
            },
          ]
        : [],
      config,
      layers,
      document,
    };
  }
}
