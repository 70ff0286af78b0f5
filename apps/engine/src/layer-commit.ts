// Turning a changeset into an image, shared by the builder and `docker commit`: a layer tar is
// compressed into the content store (gzip, or zstd with `--compression zstd`) and unpacked as a
// snapshot on its parent chain; a config and an OCI manifest are written and the image recorded.
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import type { Readable } from "node:stream";
import { compressLayer, decompressLayer, type LayerCompression } from "@minato/layers";
import { type Digest, digestOf, MediaType } from "@minato/oci";
import type { ImageConfig } from "./distribution/pull.js";
import type { Engine } from "./engine.js";
import type { LayerRecord } from "./image-store.js";
import { chainIds } from "./snapshots.js";

export interface StoredLayer {
  diffId: Digest;
  /** Digest, size and media type of the compressed blob. */
  digest: Digest;
  size: number;
  mediaType: string;
}

const LAYER_TYPE: Record<LayerCompression, string> = { gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd };

/** Compresses a layer tar into the content store (gzip unless told otherwise). */
export async function storeLayer(
  engine: Engine,
  tar: Readable | AsyncIterable<Uint8Array>,
  compression: LayerCompression = "gzip",
): Promise<StoredLayer> {
  const file = engine.content.temporaryPath("layer");
  try {
    const packed = await compressLayer(tar, createWriteStream(file), compression);
    await engine.content.adopt(file, packed.digest);
    return { diffId: packed.diffId, digest: packed.digest, size: packed.size, mediaType: LAYER_TYPE[compression] };
  } finally {
    await rm(file, { force: true });
  }
}

/** Whether a layer's blob is compressed as `compression` (Docker's schema2 layer type is gzip). */
export function compressedAs(layer: { mediaType: string }, compression: LayerCompression): boolean {
  return layer.mediaType.endsWith(`+${compression}`) || (compression === "gzip" && layer.mediaType === MediaType.dockerLayer);
}

/**
 * `layer` with its blob compressed as `compression`: itself when it already is, else its tar
 * recompressed into the content store — same diff ID and chain ID, so its snapshot stays. The new
 * blob is the caller's to lease until an image references it.
 */
export async function recompressLayer(engine: Engine, layer: LayerRecord, compression: LayerCompression): Promise<LayerRecord> {
  if (compressedAs(layer, compression)) return layer;
  const { tar } = await decompressLayer(engine.content.stream(layer.blobDigest));
  const stored = await storeLayer(engine, tar, compression);
  if (stored.diffId !== layer.diffId) throw new Error(`layer ${layer.blobDigest} does not hold its diff ID ${layer.diffId}`);
  return { ...layer, blobDigest: stored.digest, blobSize: stored.size, mediaType: stored.mediaType };
}

/**
 * Puts a stored layer on top of `parents` (image-spec config.md "Layer ChainID") and unpacks its
 * snapshot. The caller leases the returned record's keys until an image references them.
 */
export async function stackLayer(engine: Engine, parents: LayerRecord[], layer: StoredLayer): Promise<LayerRecord> {
  const chainId = chainIds([...parents.map((l) => l.diffId), layer.diffId]).at(-1) as Digest;
  await engine.snapshots.unpack(chainId, parents.at(-1)?.chainId, layer.diffId, () => engine.content.stream(layer.digest));
  return { diffId: layer.diffId, chainId, blobDigest: layer.digest, blobSize: layer.size, mediaType: layer.mediaType };
}

/**
 * Writes the config and an OCI manifest for `layers`, records the image and returns its ID (the
 * config digest). `keep` names more blobs the image keeps alive (the build cache's gzip layers).
 */
export async function writeImage(engine: Engine, config: ImageConfig, layers: LayerRecord[], keep: Digest[] = []): Promise<Digest> {
  const configBytes = Buffer.from(JSON.stringify(config));
  const id = digestOf(configBytes);
  await engine.content.put(configBytes, id);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: id, size: configBytes.byteLength },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.blobDigest, size: l.blobSize })),
    }),
  );
  const manifestDigest = await engine.content.put(manifest);
  const size = layers.reduce((sum, l) => sum + (engine.snapshots.size(l.chainId) ?? 0), 0);
  engine.images.save(
    {
      id,
      manifestDigest,
      manifestMediaType: MediaType.ociManifest,
      ...(config.created ? { created: config.created } : {}),
      size,
      layers,
    },
    keep,
  );
  return id;
}
