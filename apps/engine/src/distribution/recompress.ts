// `push --compression gzip|zstd`: the image as an OCI manifest whose layers are all compressed one
// way (`application/vnd.oci.image.layer.v1.tar+zstd` or `+gzip`, image-spec media-types.md); layers
// stored otherwise are recompressed. Each layer's tar is the same, so the diff IDs and the config —
// and the image ID — stay; only blobs and manifest change. Both compressors are deterministic, so a
// second push makes the same digests and the registry already has them.
import type { LayerCompression } from "@minato/layers";
import { type Digest, MediaType } from "@minato/oci";
import type { Engine } from "../engine.js";
import type { ImageRecord } from "../image-store.js";
import { compressedAs, recompressLayer } from "../layer-commit.js";

export type PushCompression = LayerCompression;

export interface BlobDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
}

/** The layers and manifest to push for `image` with all its layers compressed as `compression`. */
export async function recompressImage(
  engine: Engine,
  image: ImageRecord,
  compression: PushCompression,
  onLayer: (digest: Digest) => void,
): Promise<{ layers: BlobDescriptor[]; manifest: Buffer; mediaType: string }> {
  const layers: BlobDescriptor[] = [];
  for (const layer of image.layers) {
    if (!compressedAs(layer, compression)) onLayer(layer.blobDigest);
    const blob = await recompressLayer(engine, layer, compression);
    layers.push({ mediaType: blob.mediaType, digest: blob.blobDigest, size: blob.blobSize });
  }
  const config = await engine.content.read(image.id);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: image.id, size: config.byteLength },
      layers,
    }),
  );
  return { layers, manifest, mediaType: MediaType.ociManifest };
}
