import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { type Digest, digestOf, parseDigest } from "@minato/oci";

/**
 * Blobs by digest — manifests, configs, compressed layers — as containerd's content store keeps them.
 * Writes land in `ingest/` first and are renamed into `blobs/` only once verified, so a blob that
 * exists is whole. An interrupted download stays in `ingest/` and resumes on the next pull.
 */
export class ContentStore {
  readonly #blobs: string;
  readonly #ingest: string;

  private constructor(root: string) {
    this.#blobs = join(root, "blobs");
    this.#ingest = join(root, "ingest");
  }

  static async open(root: string): Promise<ContentStore> {
    const store = new ContentStore(root);
    await mkdir(store.#blobs, { recursive: true });
    await mkdir(store.#ingest, { recursive: true });
    return store;
  }

  path(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.#blobs, algorithm, encoded);
  }

  /** Where a download of `digest` accumulates; stable so a later pull can resume it. */
  ingestPath(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.#ingest, `${algorithm}-${encoded}`);
  }

  async size(digest: Digest): Promise<number | undefined> {
    return stat(this.path(digest)).then(
      (s) => s.size,
      () => undefined,
    );
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.size(digest)) !== undefined;
  }

  /** Moves a verified ingest file into place. The caller verified it (the registry client does). */
  async commitIngest(digest: Digest): Promise<void> {
    const target = this.path(digest);
    await mkdir(join(target, ".."), { recursive: true });
    await rename(this.ingestPath(digest), target);
  }

  /** A private temporary path next to the store, on the same filesystem so `adopt` can rename. */
  temporaryPath(label: string): string {
    return join(this.#ingest, `${label}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  }

  /** Moves a file whose digest the caller computed into the store. */
  async adopt(path: string, digest: Digest): Promise<void> {
    if (await this.has(digest)) {
      await rm(path, { force: true });
      return;
    }
    const target = this.path(digest);
    await mkdir(join(target, ".."), { recursive: true });
    await rename(path, target);
  }

  /** Stores small content (manifests, configs) after checking it hashes to `digest`. */
  async put(bytes: Buffer, expected?: Digest): Promise<Digest> {
    const digest = digestOf(bytes, expected ? parseDigest(expected).algorithm : "sha256");
    if (expected && digest !== expected) throw new Error(`content digest mismatch: expected ${expected}, got ${digest}`);
    if (await this.has(digest)) return digest;
    const target = this.path(digest);
    await mkdir(join(target, ".."), { recursive: true });
    const temporary = this.temporaryPath("put");
    await writeFile(temporary, bytes);
    await rename(temporary, target);
    return digest;
  }

  async read(digest: Digest): Promise<Buffer> {
    return readFile(this.path(digest));
  }

  stream(digest: Digest, start = 0): Readable {
    return createReadStream(this.path(digest), { start, highWaterMark: 1024 * 1024 });
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  /** Removes every blob whose digest is not in `live`; returns the bytes freed. */
  async prune(live: Set<string>): Promise<number> {
    let freed = 0;
    for (const algorithm of await readdir(this.#blobs)) {
      for (const encoded of await readdir(join(this.#blobs, algorithm))) {
        if (live.has(`${algorithm}:${encoded}`)) continue;
        const path = join(this.#blobs, algorithm, encoded);
        freed += (await stat(path)).size;
        await rm(path, { force: true });
      }
    }
    return freed;
  }
}
