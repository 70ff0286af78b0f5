import { Duplex, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { constants, createGzip } from "node:zlib";
import { type Digest, Digester } from "@minato/oci";
import { zstdCompress } from "./zstd.js";

/** How a layer blob is written: image-spec media types `tar+gzip` and `tar+zstd` (media-types.md). */
export type LayerCompression = "gzip" | "zstd";

export interface LayerDigests {
  /** sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffId: Digest;
  /** Size in bytes of the uncompressed tar. */
  diffSize: number;
  /** sha256 of the compressed blob (the manifest's layer descriptor `digest`). */
  digest: Digest;
  /** Size in bytes of the compressed blob (the descriptor's `size`). */
  size: number;
}

export interface GzipOptions {
  /** zlib level 0–9; default 6 (zlib's default). Changing it changes the blob digest. */
  level?: number;
}

/** Pipes `tar` through `compressor` into `destination`, digesting both forms on the way. */
async function compressThrough(
  tar: Readable | AsyncIterable<Uint8Array>,
  compressor: Duplex,
  destination: Writable,
): Promise<LayerDigests> {
  const uncompressed = new Digester("sha256");
  const compressed = new Digester("sha256");
  await pipeline(
    tar,
    async function* (source: AsyncIterable<Uint8Array>) {
      for await (const chunk of source) {
        uncompressed.update(chunk);
        yield chunk;
      }
    },
    compressor,
    async function* (source: AsyncIterable<Uint8Array>) {
      for await (const chunk of source) {
        compressed.update(chunk);
        yield chunk;
      }
    },
    destination,
  );
  return { diffId: uncompressed.digest(), diffSize: uncompressed.size, digest: compressed.digest(), size: compressed.size };
}

/**
 * Compresses a layer tar into `destination` as `application/vnd.oci.image.layer.v1.tar+gzip`,
 * digesting both forms on the way. The gzip stream is deterministic: Node's zlib writes a header
 * with mtime 0, no file name and a fixed OS byte, and level, window, memLevel and strategy are fixed,
 * so the same tar gives the same blob with the same Node build (a different zlib may compress
 * differently; the diffID never changes).
 */
export function gzipLayer(
  tar: Readable | AsyncIterable<Uint8Array>,
  destination: Writable,
  options: GzipOptions = {},
): Promise<LayerDigests> {
  const gzip = createGzip({ level: options.level ?? 6, windowBits: 15, memLevel: 8, strategy: constants.Z_DEFAULT_STRATEGY });
  return compressThrough(tar, gzip, destination);
}

/**
 * A layer tar into `destination` as `tar+gzip` ({@link gzipLayer}) or `tar+zstd`: zstd at its
 * default level 3, whose frames are the same whatever the number of threads, so the same tar gives
 * the same blob with the same zstd build.
 */
export function compressLayer(
  tar: Readable | AsyncIterable<Uint8Array>,
  destination: Writable,
  compression: LayerCompression,
): Promise<LayerDigests> {
  if (compression === "gzip") return gzipLayer(tar, destination);
  return compressThrough(
    tar,
    Duplex.from((source: AsyncIterable<Uint8Array>) => zstdCompress(source)),
    destination,
  );
}
