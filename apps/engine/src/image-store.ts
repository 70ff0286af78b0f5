import { type Digest, formatImageReference, type ImageReference, parseImageReference } from "@minato/oci";
import type { EngineDatabase } from "./db.js";

export interface LayerRecord {
  diffId: Digest;
  chainId: Digest;
  blobDigest: Digest;
  blobSize: number;
  mediaType: string;
}

export interface ImageRecord {
  /** The config digest: Docker's image ID. */
  id: Digest;
  manifestDigest?: Digest;
  manifestMediaType?: string;
  created?: string;
  /** Bytes of all layers unpacked. */
  size: number;
  layers: LayerRecord[];
  /** Fully qualified tags, e.g. `docker.io/library/busybox:latest`. */
  tags: string[];
  /** Fully qualified digests it was pulled or pushed by, e.g. `127.0.0.1:5000/app@sha256:…`. */
  repoDigests: string[];
}

export class AmbiguousImageError extends Error {}

type Row = Record<string, unknown>;

/**
 * Image metadata: images by config digest, their layers, tag and digest references, and the
 * content each keeps alive. Blobs themselves live in the content store, layers in snapshots.
 */
export class ImageStore {
  readonly #q;

  constructor(readonly db: EngineDatabase) {
    this.#q = {
      insertImage: db.prepare(
        `INSERT INTO images (id, manifest_digest, manifest_media_type, created, size, loaded_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET manifest_digest = excluded.manifest_digest, manifest_media_type = excluded.manifest_media_type`,
      ),
      deleteLayers: db.prepare("DELETE FROM image_layers WHERE image_id = ?"),
      insertLayer: db.prepare(
        "INSERT INTO image_layers (image_id, position, diff_id, chain_id, blob_digest, blob_size, media_type) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ),
      insertContent: db.prepare("INSERT INTO image_content (image_id, digest) VALUES (?, ?) ON CONFLICT DO NOTHING"),
      image: db.prepare("SELECT * FROM images WHERE id = ?"),
      images: db.prepare("SELECT * FROM images ORDER BY loaded_at DESC, id"),
      imageIds: db.prepare("SELECT id FROM images").pluck(),
      layers: db.prepare("SELECT * FROM image_layers WHERE image_id = ? ORDER BY position"),
      references: db.prepare("SELECT reference, kind FROM image_references WHERE image_id = ? ORDER BY reference"),
      reference: db.prepare("SELECT image_id FROM image_references WHERE reference = ?").pluck(),
      upsertReference: db.prepare(
        "INSERT INTO image_references (reference, image_id, kind) VALUES (?, ?, ?) ON CONFLICT (reference) DO UPDATE SET image_id = excluded.image_id",
      ),
      deleteReference: db.prepare("DELETE FROM image_references WHERE reference = ?"),
      idsByPrefix: db.prepare("SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2").pluck(),
      deleteImage: db.prepare("DELETE FROM images WHERE id = ?"),
      liveBlobs: db
        .prepare(
          `SELECT blob_digest FROM image_layers UNION SELECT id FROM images UNION SELECT manifest_digest FROM images WHERE manifest_digest IS NOT NULL
         UNION SELECT digest FROM image_content`,
        )
        .pluck(),
      liveChains: db.prepare("SELECT DISTINCT chain_id FROM image_layers").pluck(),
      insertSource: db.prepare("INSERT INTO blob_sources (digest, registry, repository) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
      sources: db.prepare("SELECT repository FROM blob_sources WHERE digest = ? AND registry = ?").pluck(),
    };
  }

  /** Records an image (idempotent: the same config is the same image) and the extra content it keeps. */
  save(image: Omit<ImageRecord, "tags" | "repoDigests">, keep: Digest[] = []): void {
    this.db.transaction(() => {
      this.#q.insertImage.run(
        image.id,
        image.manifestDigest ?? null,
        image.manifestMediaType ?? null,
        image.created ?? null,
        image.size,
        Date.now(),
      );
      this.#q.deleteLayers.run(image.id);
      image.layers.forEach((layer, position) => {
        this.#q.insertLayer.run(image.id, position, layer.diffId, layer.chainId, layer.blobDigest, layer.blobSize, layer.mediaType);
      });
      for (const digest of keep) this.#q.insertContent.run(image.id, digest);
    })();
  }

  get(id: Digest): ImageRecord | undefined {
    const row = this.#q.image.get(id) as Row | undefined;
    return row ? this.#record(row) : undefined;
  }

  list(): ImageRecord[] {
    return (this.#q.images.all() as Row[]).map((row) => this.#record(row));
  }

  #record(row: Row): ImageRecord {
    const id = row.id as Digest;
    const layers = (this.#q.layers.all(id) as Row[]).map((l) => ({
      diffId: l.diff_id as Digest,
      chainId: l.chain_id as Digest,
      blobDigest: l.blob_digest as Digest,
      blobSize: l.blob_size as number,
      mediaType: l.media_type as string,
    }));
    const references = this.#q.references.all(id) as { reference: string; kind: string }[];
    const record: ImageRecord = {
      id,
      size: row.size as number,
      layers,
      tags: references.filter((r) => r.kind === "tag").map((r) => r.reference),
      repoDigests: references.filter((r) => r.kind === "digest").map((r) => r.reference),
    };
    if (row.manifest_digest) record.manifestDigest = row.manifest_digest as Digest;
    if (row.manifest_media_type) record.manifestMediaType = row.manifest_media_type as string;
    if (row.created) record.created = row.created as string;
    return record;
  }

  /** Points a tag (`name:tag`) or digest reference (`name@digest`) at an image. */
  reference(reference: ImageReference, id: Digest): void {
    const kind = reference.tag ? "tag" : "digest";
    this.#q.upsertReference.run(formatImageReference(reference.tag ? { ...reference, digest: undefined } : reference), id, kind);
  }

  /** Removes one reference; false when it did not exist. */
  unreference(reference: string): boolean {
    return this.#q.deleteReference.run(reference).changes > 0;
  }

  /**
   * Finds an image the way the docker CLI names one: a reference (`busybox`, `busybox:1`,
   * `host/app@sha256:…`), a full ID (`sha256:…`), or an unambiguous ID prefix (`3f57d9401f8d`).
   */
  resolve(input: string): ImageRecord | undefined {
    const hex = /^(?:sha256:)?([a-f0-9]{1,64})$/.exec(input)?.[1];
    if (hex) {
      const [first, second] = this.#q.idsByPrefix.all(`sha256:${hex}`, `sha256:${hex}g`) as Digest[];
      if (first && second && hex.length < 64) throw new AmbiguousImageError(`multiple IDs found with provided prefix: ${input}`);
      if (first) return this.get(first);
      if (input.startsWith("sha256:")) return undefined;
    }
    let reference: ImageReference;
    try {
      reference = parseImageReference(input);
    } catch {
      return undefined;
    }
    const id = this.#q.reference.get(formatImageReference(reference.digest ? { ...reference, tag: undefined } : reference)) as
      | Digest
      | undefined;
    return id ? this.get(id) : undefined;
  }

  delete(id: Digest): void {
    this.#q.deleteImage.run(id);
  }

  /** Digests of all content some image still needs. */
  liveContent(): Set<string> {
    return new Set(this.#q.liveBlobs.all() as string[]);
  }

  /** Chain IDs of all snapshots some image still needs (with their parents, via the chain). */
  liveChains(): Set<string> {
    return new Set(this.#q.liveChains.all() as string[]);
  }

  recordSource(digest: Digest, registry: string, repository: string): void {
    this.#q.insertSource.run(digest, registry, repository);
  }

  sources(digest: Digest, registry: string): string[] {
    return this.#q.sources.all(digest, registry) as string[];
  }
}
