import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Digest, type DigestAlgorithm, Digester, isDigest, parseDigest } from "@minato/oci";
import {
  assertUploadId,
  BlobNotFoundError,
  type BlobStat,
  type BlobStore,
  type ByteRange,
  type CommitResult,
  DigestMismatchError,
  type StoredBlob,
  UploadNotFoundError,
  UploadOffsetError,
  UploadTooLargeError,
} from "./driver.js";

/** A running hash of an upload's bytes, valid while `offset` equals the session's size. */
interface HashState {
  digester: Digester;
  offset: number;
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

/**
 * Filesystem driver. Layout under `root`:
 *   blobs/<algorithm>/<first two hex>/<hex>   committed, verified content
 *   uploads/<uuid>                            bytes received by an upload session
 * Commit hashes while streaming (or re-reads the session file after a restart), fsyncs, then renames
 * into place: a reader sees a whole verified blob or nothing.
 */
export class FilesystemBlobStore implements BlobStore {
  readonly #blobs: string;
  readonly #uploads: string;
  readonly #hashes = new Map<string, HashState>();

  private constructor(readonly root: string) {
    this.#blobs = join(root, "blobs");
    this.#uploads = join(root, "uploads");
  }

  static async open(root: string): Promise<FilesystemBlobStore> {
    const store = new FilesystemBlobStore(root);
    await mkdir(store.#blobs, { recursive: true });
    await mkdir(store.#uploads, { recursive: true });
    return store;
  }

  #blobPath(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.#blobs, algorithm, encoded.slice(0, 2), encoded);
  }

  #uploadPath(id: string): string {
    assertUploadId(id);
    return join(this.#uploads, id);
  }

  async stat(digest: Digest): Promise<BlobStat | undefined> {
    try {
      return { size: (await stat(this.#blobPath(digest))).size };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    // A path stream owns its descriptor (a FileHandle's stream would leave the handle to the garbage
    // collector, which closes the fd a second time) and reads with callbacks, not promises. 2 MiB reads
    // measured ~1.6x the throughput of a 256 KiB FileHandle stream; callers pass a range to bound the
    // buffer for small blobs.
    const stream = createReadStream(this.#blobPath(digest), { start: range?.start, end: range?.end, highWaterMark: 2 * 1024 * 1024 });
    // Wait for the open, so a missing blob is an error here rather than on the stream.
    await new Promise<void>((resolve, reject) => {
      stream.once("ready", () => resolve());
      stream.once("error", (error) => reject(isMissing(error) ? new BlobNotFoundError(`blob ${digest} not found`) : error));
    });
    return stream;
  }

  async delete(digest: Digest): Promise<boolean> {
    try {
      await unlink(this.#blobPath(digest));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async *list(): AsyncIterable<StoredBlob> {
    for (const algorithm of await readdir(this.#blobs).catch(() => [] as string[])) {
      for (const prefix of await readdir(join(this.#blobs, algorithm)).catch(() => [] as string[])) {
        for (const encoded of await readdir(join(this.#blobs, algorithm, prefix)).catch(() => [] as string[])) {
          const digest = `${algorithm}:${encoded}`;
          if (!isDigest(digest)) continue;
          const info = await stat(join(this.#blobs, algorithm, prefix, encoded)).catch(() => undefined);
          if (info?.isFile()) yield { digest, size: info.size, modifiedAt: info.mtimeMs };
        }
      }
    }
  }

  async createUpload(id: string): Promise<void> {
    const handle = await open(this.#uploadPath(id), "wx");
    await handle.close();
    this.#hashes.set(id, { digester: new Digester("sha256"), offset: 0 });
  }

  async uploadSize(id: string): Promise<number | undefined> {
    try {
      return (await stat(this.#uploadPath(id))).size;
    } catch (error) {
      if (isMissing(error) || error instanceof UploadNotFoundError) return undefined;
      throw error;
    }
  }

  async append(id: string, offset: number, body: Readable, maxBytes = Number.POSITIVE_INFINITY): Promise<number> {
    const path = this.#uploadPath(id);
    const size = await this.uploadSize(id);
    if (size === undefined) throw new UploadNotFoundError(`unknown upload ${id}`);
    if (size !== offset) throw new UploadOffsetError(size);

    let hash = this.#hashes.get(id);
    if (hash && hash.offset !== offset) {
      this.#hashes.delete(id);
      hash = undefined;
    }
    let written = 0;
    const out = createWriteStream(path, { flags: "r+", start: offset, highWaterMark: 2 * 1024 * 1024 });
    try {
      await pipeline(
        body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            written += chunk.byteLength;
            if (written > maxBytes) throw new UploadTooLargeError(`upload exceeds ${maxBytes} bytes`);
            hash?.digester.update(chunk);
            yield chunk;
          }
        },
        out,
      );
      if (hash) hash.offset = offset + written;
    } catch (error) {
      // Whatever reached the file stays there for a resume; the running hash no longer matches it.
      this.#hashes.delete(id);
      throw error;
    }
    return offset + written;
  }

  async commit(id: string, digest: Digest): Promise<CommitResult> {
    const path = this.#uploadPath(id);
    const { algorithm } = parseDigest(digest);
    const size = await this.uploadSize(id);
    if (size === undefined) throw new UploadNotFoundError(`unknown upload ${id}`);

    const running = this.#hashes.get(id);
    const actual =
      running && running.offset === size && running.digester.algorithm === algorithm
        ? running.digester.digest()
        : await hashFile(path, algorithm);
    this.#hashes.delete(id);
    if (actual !== digest) throw new DigestMismatchError(digest, actual);

    const handle = await open(path, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    const target = this.#blobPath(digest);
    await mkdir(join(target, ".."), { recursive: true });
    // Same content at the same address: whichever rename lands last is equally correct.
    await rename(path, target);
    return { digest, size };
  }

  async abort(id: string): Promise<void> {
    this.#hashes.delete(id);
    await rm(this.#uploadPath(id), { force: true });
  }

  async staleUploads(olderThan: number): Promise<string[]> {
    const stale: string[] = [];
    for (const name of await readdir(this.#uploads)) {
      const info = await stat(join(this.#uploads, name)).catch(() => undefined);
      if (info && info.mtimeMs < olderThan) stale.push(name);
    }
    return stale;
  }

  async healthy(): Promise<boolean> {
    return stat(this.#blobs).then(
      () => true,
      () => false,
    );
  }
}

async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<Digest> {
  const digester = new Digester(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) digester.update(chunk as Buffer);
  return digester.digest();
}
