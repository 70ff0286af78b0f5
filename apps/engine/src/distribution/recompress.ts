// `push --compression gzip|zstd`: the image as an OCI manifest whose layers are all compressed one
// way (`application/vnd.oci.image.layer.v1.tar+zstd` or `+gzip`, image-spec media-types.md); layers
// stored otherwise are recompressed. Each layer's tar is the same, so the diff IDs and the config —
// and the image ID — stay; only blobs and manifest change. Both compressors are deterministic, so a
// second push makes the same digests and the registry already has them.
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { decompressLayer, zstdCompress } from "@minato/layers";
import { type Digest, Digester, MediaType } from "@minato/oci";
import type { Engine } from "../engine.js";
import type { ImageRecord } from "../image-store.js";

export type PushCompression = "gzip" | "zstd";

export interface BlobDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
}

const SUFFIX: Record<PushCompression, string> = { gzip: "+gzip", zstd: "+zstd" };
const LAYER_TYPE: Record<PushCompression, string> = { gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd };

function compress(tar: AsyncIterable<Buffer>, compression: PushCompression): AsyncIterable<Buffer> {
  if (compression === "zstd") return zstdCompress(tar);
  // No name or time in the gzip header (zlib writes none): the same tar gives the same blob.
  const gzip = createGzip({ level: 6 });
  void pipeline(tar, gzip).catch((error: Error) => gzip.destroy(error));
  return gzip;
}

/** A layer blob recompressed into the content store. */
async function recompressLayer(engine: Engine, digest: Digest, compression: PushCompression): Promise<BlobDescriptor> {
  const { tar } = await decompressLayer(engine.content.stream(digest));
  const temporary = engine.content.temporaryPath("zstd");
  const digester = new Digester();
  try {
    const file = createWriteStream(temporary);
    await pipeline(
      compress(tar, compression),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          digester.update(chunk);
          if (file.write(chunk)) done();
          else file.once("drain", done);
        },
        final(done) {
          file.end(done);
        },
      }),
    );
    const compressed = digester.digest();
    await engine.content.adopt(temporary, compressed);
    return { mediaType: LAYER_TYPE[compression], digest: compressed, size: digester.size };
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
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
    onLayer(layer.blobDigest);
    const already = layer.mediaType.endsWith(SUFFIX[compression]) || (compression === "gzip" && layer.mediaType === MediaType.dockerLayer);
    layers.push(
      already
        ? { mediaType: layer.mediaType, digest: layer.blobDigest, size: layer.blobSize }
        : await recompressLayer(engine, layer.blobDigest, compression),
    );
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
