import type { Digest } from "@minato/oci";
import type { EngineDatabase } from "../db.js";

/** A layer a COPY/ADD/WORKDIR step produced. */
export interface CachedLayer {
  diffId: Digest;
  digest: Digest;
  size: number;
}

export interface CachedStep {
  created: string;
  layer?: CachedLayer;
  /**
   * The history's `created_by` for a layer step, when it depends on more than the key shows (COPY
   * names the destination as it found it in the image): a cache hit gives it without looking.
   */
  createdBy?: string;
  /** For an entry found under a second key (COPY --from by its source's layers): the step's own key. */
  key?: string;
}

/** The builder's step cache in SQLite, so it outlives the daemon (Docker's build cache). */
export class BuildCache {
  readonly #q;
  readonly #db: EngineDatabase;
  /** Keys read since the last {@link flush}, whose use time is still to record. */
  readonly #used = new Set<string>();

  constructor(db: EngineDatabase) {
    this.#db = db;
    this.#q = {
      get: db.prepare("SELECT created, layer FROM build_cache WHERE key = ?"),
      has: db.prepare("SELECT 1 FROM build_cache WHERE key = ?"),
      touch: db.prepare("UPDATE build_cache SET used_at = ? WHERE key = ?"),
      put: db.prepare(
        "INSERT INTO build_cache (key, created, layer, size, used_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET created = excluded.created, layer = excluded.layer, size = excluded.size, used_at = excluded.used_at",
      ),
      all: db.prepare("SELECT key, size FROM build_cache"),
      entries: db.prepare("SELECT key, created, layer, size, used_at FROM build_cache ORDER BY created"),
      clear: db.prepare("DELETE FROM build_cache"),
    };
  }

  get(key: string): CachedStep | undefined {
    const row = this.#q.get.get(key) as { created: string; layer: string | null } | undefined;
    if (!row) return undefined;
    this.#used.add(key);
    if (!row.layer) return { created: row.created };
    // The layer column holds the layer and, beside it, the step's created_by and own key when recorded.
    const { createdBy, key: own, ...layer } = JSON.parse(row.layer) as CachedLayer & { createdBy?: string; key?: string };
    return { created: row.created, layer, ...(createdBy !== undefined ? { createdBy } : {}), ...(own !== undefined ? { key: own } : {}) };
  }

  /** Whether `key` has an entry (without marking it used). */
  has(key: string): boolean {
    return this.#q.has.get(key) !== undefined;
  }

  put(key: string, step: CachedStep): void {
    const extra = {
      ...(step.createdBy !== undefined ? { createdBy: step.createdBy } : {}),
      ...(step.key !== undefined ? { key: step.key } : {}),
    };
    const layer = step.layer ? JSON.stringify({ ...step.layer, ...extra }) : null;
    this.#q.put.run(key, step.created, layer, step.layer?.size ?? 0, Date.now());
  }

  /** Records when the entries read were used, in one transaction. */
  flush(): void {
    if (this.#used.size === 0) return;
    const now = Date.now();
    this.#db.transaction(() => {
      for (const key of this.#used) this.#q.touch.run(now, key);
    })();
    this.#used.clear();
  }

  /** Every entry, for `docker system df`: its key, when it was made and last used, and its layer's bytes. */
  entries(): { key: string; created: string; usedAt: number; size: number; diffId?: Digest; createdBy?: string }[] {
    const rows = this.#q.entries.all() as { key: string; created: string; layer: string | null; size: number; used_at: number }[];
    return rows.map((row) => {
      const layer = row.layer ? (JSON.parse(row.layer) as Partial<CachedLayer> & { createdBy?: string }) : {};
      return {
        key: row.key,
        created: row.created,
        usedAt: row.used_at,
        size: row.size,
        ...(layer.diffId ? { diffId: layer.diffId } : {}),
        ...(layer.createdBy !== undefined ? { createdBy: layer.createdBy } : {}),
      };
    });
  }

  /** Drops every entry (`docker builder prune`); returns their keys and the layer bytes they named. */
  prune(): { keys: string[]; size: number } {
    const rows = this.#q.all.all() as { key: string; size: number }[];
    this.#q.clear.run();
    return { keys: rows.map((r) => r.key), size: rows.reduce((sum, r) => sum + r.size, 0) };
  }
}
