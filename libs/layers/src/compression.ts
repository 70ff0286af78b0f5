import { pipeline, Readable } from "node:stream";
import * as zlib from "node:zlib";
import { LayerError } from "./errors.js";
import { zstdDecompress, zstdProgram } from "./zstd.js";

/** How a layer blob is compressed (image-spec layer.md media types `tar`, `tar+gzip`, `tar+zstd`). */
export type Compression = "none" | "gzip" | "zstd";

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const OTHER_FORMATS: [string, Buffer][] = [
  ["bzip2", Buffer.from("BZh", "latin1")],
  ["xz", Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
];

/** Recognises a compressed stream by its first bytes; anything else is taken as a plain tar. */
export function detectCompression(head: Buffer): Compression {
  if (head.subarray(0, 2).equals(GZIP_MAGIC)) return "gzip";
  if (head.subarray(0, 4).equals(ZSTD_MAGIC)) return "zstd";
  for (const [name, magic] of OTHER_FORMATS) {
    if (head.subarray(0, magic.length).equals(magic)) {
      throw new LayerError("UNSUPPORTED_COMPRESSION", `unsupported layer compression: ${name}`);
    }
  }
  return "none";
}

type ZstdFactory = () => zlib.Gunzip;
/** Node ≥ 22.15 ships zstd in node:zlib; before it (Node 20) the zstd program decompresses (./zstd.ts). */
const createZstdDecompress = (zlib as unknown as { createZstdDecompress?: ZstdFactory }).createZstdDecompress;

export interface DecompressedLayer {
  compression: Compression;
  /** The uncompressed tar bytes. */
  tar: AsyncIterable<Buffer>;
}

/**
 * Sniffs the compression of `source` and returns its uncompressed bytes. `expected` other than
 * "auto" makes a mismatch an error (a descriptor's media type says gzip but the blob is not).
 */
export async function decompressLayer(
  source: AsyncIterable<Uint8Array>,
  expected: "auto" | Compression = "auto",
): Promise<DecompressedLayer> {
  const iterator = source[Symbol.asyncIterator]();
  const headChunks: Buffer[] = [];
  let headLength = 0;
  let ended = false;
  while (headLength < 6) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    headChunks.push(Buffer.from(next.value));
    headLength += next.value.byteLength;
  }
  const head = Buffer.concat(headChunks);
  const compression = detectCompression(head);
  if (expected !== "auto" && expected !== compression) {
    throw new LayerError("UNSUPPORTED_COMPRESSION", `layer compression mismatch: expected ${expected}, found ${compression}`);
  }
  async function* rest(): AsyncGenerator<Buffer> {
    try {
      if (head.length > 0) yield head;
      if (ended) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
      }
    } finally {
      await iterator.return?.();
    }
  }
  if (compression === "none") return { compression, tar: rest() };
  if (compression === "zstd" && (zstdProgram() || !createZstdDecompress)) return { compression, tar: zstdDecompress(rest()) };

  let decompressor: zlib.Gunzip;
  // 1 MiB output chunks: with zlib's 16 KiB default, handling the chunks cost ~2.5x the CPU of the inflate.
  if (compression === "gzip") decompressor = zlib.createGunzip({ chunkSize: 1024 * 1024 });
  else if (createZstdDecompress) decompressor = createZstdDecompress();
  else throw new LayerError("UNSUPPORTED_COMPRESSION", "unsupported layer compression: zstd");
  pipeline(Readable.from(rest(), { objectMode: false }), decompressor, () => {
    // Errors surface through the decompressor, which the caller iterates.
  });
  return { compression, tar: rethrowCorrupt(decompressor, compression) };
}

async function* rethrowCorrupt(stream: AsyncIterable<Buffer>, compression: Compression): AsyncGenerator<Buffer> {
  try {
    yield* stream;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("Z_")) {
      throw new LayerError("INVALID_TAR", `invalid layer: corrupt ${compression} data (${(error as Error).message})`);
    }
    throw error;
  }
}
