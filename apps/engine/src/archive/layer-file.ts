import { createReadStream, createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { type Compression, detectCompression, zstdDecompress } from "@minato/layers";
import { type Digest, Digester } from "@minato/oci";

export interface LayerFile {
  /** Digest and size of the file as stored (the blob). */
  digest: Digest;
  size: number;
  /** Digest of the uncompressed tar (image-spec config.md `rootfs.diff_ids`). */
  diffId: Digest;
  gzip: boolean;
  /** How the file is compressed (an archive from a zstd image holds zstd layers). */
  compression: Compression;
}

async function compressionOf(path: string): Promise<Compression> {
  const handle = await open(path, "r");
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(6), 0, 6, 0);
    return detectCompression(buffer.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/** The uncompressed tar of a layer file. */
export function layerTarStream(path: string, compression: Compression): Readable {
  const file = createReadStream(path, { highWaterMark: 1024 * 1024 });
  if (compression === "gzip") return file.pipe(createGunzip({ chunkSize: 1024 * 1024 }));
  if (compression === "zstd") return Readable.from(zstdDecompress(file));
  return file;
}

function hashing(digester: Digester): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      digester.update(chunk);
      callback(null, chunk);
    },
  });
}

async function drain(source: NodeJS.ReadableStream, digester: Digester): Promise<void> {
  for await (const chunk of source) digester.update(chunk as Buffer);
}

/** Hashes a layer file as stored and as uncompressed, in one read. */
export async function describeLayerFile(path: string): Promise<LayerFile> {
  const compression = await compressionOf(path);
  const blob = new Digester();
  const diff = new Digester();
  if (compression === "gzip") {
    const gunzip = createGunzip({ chunkSize: 1024 * 1024 });
    const finished = drain(gunzip, diff);
    await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hashing(blob), gunzip);
    await finished;
  } else if (compression === "zstd") {
    const file = createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(hashing(blob));
    for await (const chunk of zstdDecompress(file)) diff.update(chunk);
  } else {
    await drain(createReadStream(path, { highWaterMark: 1024 * 1024 }), blob);
  }
  const digest = blob.digest();
  return { digest, size: blob.size, diffId: compression === "none" ? digest : diff.digest(), gzip: compression === "gzip", compression };
}

/**
 * Gzips a stream of tar bytes into `target`, returning the blob's digest and size and the diff ID.
 * No name or timestamp goes into the gzip header, so the same tar always yields the same blob.
 */
export async function gzipToFile(source: NodeJS.ReadableStream, target: string): Promise<LayerFile> {
  const blob = new Digester();
  const diff = new Digester();
  await pipeline(source, hashing(diff), createGzip({ level: 6 }), hashing(blob), createWriteStream(target));
  return { digest: blob.digest(), size: blob.size, diffId: diff.digest(), gzip: true, compression: "gzip" };
}
