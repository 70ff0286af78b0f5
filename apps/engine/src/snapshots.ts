import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { applyLayer } from "@minato/layers";
import { type Digest, digestOf, parseDigest } from "@minato/oci";
import type { EngineDatabase } from "./db.js";

/** image-spec config.md "Layer ChainID": chain(L0) = diffID(L0); chain(Ln) = sha256(chain(Ln-1) + " " + diffID(Ln)). */
export function chainIds(diffIds: Digest[]): Digest[] {
  const chains: Digest[] = [];
  for (const diffId of diffIds) {
    const parent = chains.at(-1);
    chains.push(parent ? digestOf(`${parent} ${diffId}`) : diffId);
  }
  return chains;
}

export class LayerDiffError extends Error {}

/**
 * Unpacked layers, each once, keyed by chain ID: `<root>/<chain hex>/fs` is an overlay lower dir.
 * A layer is unpacked into a private temporary directory and renamed into place only when complete
 * and its diff ID matched the image config, so a snapshot that exists is whole.
 */
export class SnapshotStore {
  readonly #inflight = new Map<string, Promise<number>>();
  readonly #q;
  /** Called for each snapshot pruned (copies of it made elsewhere, e.g. for --userns-remap, go too). */
  onRemove?: (encoded: string) => Promise<void>;

  private constructor(
    readonly root: string,
    db: EngineDatabase,
  ) {
    this.#q = {
      get: db.prepare("SELECT size FROM snapshots WHERE chain_id = ?").pluck(),
      insert: db.prepare(
        "INSERT INTO snapshots (chain_id, parent, diff_id, size, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (chain_id) DO NOTHING",
      ),
      remove: db.prepare("DELETE FROM snapshots WHERE chain_id = ?"),
      all: db.prepare("SELECT chain_id FROM snapshots").pluck(),
    };
  }

  static async open(root: string, db: EngineDatabase): Promise<SnapshotStore> {
    await mkdir(root, { recursive: true });
    const store = new SnapshotStore(root, db);
    // Leftovers of unpacks a crash interrupted.
    for (const name of await readdir(root)) if (name.startsWith("tmp-")) await rm(join(root, name), { recursive: true, force: true });
    return store;
  }

  /** The directory holding the layer's files. */
  path(chainId: Digest): string {
    return join(this.root, parseDigest(chainId).encoded, "fs");
  }

  size(chainId: Digest): number | undefined {
    return this.#q.get.get(chainId) as number | undefined;
  }

  /**
   * Unpacks a layer blob as snapshot `chainId` unless it exists; returns its unpacked size.
   * Concurrent requests for the same chain share one unpack.
   */
  async unpack(chainId: Digest, parent: Digest | undefined, diffId: Digest, open: () => Readable): Promise<number> {
    const existing = this.size(chainId);
    if (existing !== undefined) return existing;
    const running = this.#inflight.get(chainId);
    if (running) return running;
    const work = this.#unpack(chainId, parent, diffId, open).finally(() => this.#inflight.delete(chainId));
    this.#inflight.set(chainId, work);
    return work;
  }

  async #unpack(chainId: Digest, parent: Digest | undefined, diffId: Digest, open: () => Readable): Promise<number> {
    const temporary = join(this.root, `tmp-${randomBytes(8).toString("hex")}`);
    await mkdir(join(temporary, "fs"), { recursive: true });
    try {
      const result = await applyLayer(open(), join(temporary, "fs"));
      if (result.diffId !== diffId)
        throw new LayerDiffError(`layer content ${result.diffId} does not match the image config's diff ID ${diffId}`);
      const target = join(this.root, parseDigest(chainId).encoded);
      await rm(target, { recursive: true, force: true });
      await rename(temporary, target);
      this.#q.insert.run(chainId, parent ?? null, diffId, result.size, Date.now());
      return result.size;
    } finally {
      await rm(temporary, { recursive: true, force: true });
    }
  }

  /** Removes every snapshot not in `live`; returns the bytes freed. */
  async prune(live: Set<string>): Promise<number> {
    let freed = 0;
    for (const chainId of this.#q.all.all() as Digest[]) {
      if (live.has(chainId)) continue;
      freed += this.size(chainId) ?? 0;
      this.#q.remove.run(chainId);
      await rm(join(this.root, parseDigest(chainId).encoded), { recursive: true, force: true });
      await this.onRemove?.(parseDigest(chainId).encoded);
    }
    return freed;
  }

  async exists(chainId: Digest): Promise<boolean> {
    return stat(this.path(chainId)).then(
      () => true,
      () => false,
    );
  }
}
