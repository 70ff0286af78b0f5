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
}

/** The builder's step cache in SQLite, so it outlives the daemon (Docker's build cache). */
export class BuildCache {
  readonly #q;

  constructor(db: EngineDatabase) {
    this.#q = {
      get: db.prepare("SELECT created, layer FROM build_cache WHERE key = ?"),
      touch: db.prepare("UPDATE build_cache SET used_at = ? WHERE key = ?"),
      put: db.prepare(
        "INSERT INTO build_cache (key, created, layer, size, used_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET created = excluded.created, layer = excluded.layer, size = excluded.size, used_at = excluded.used_at",
      ),
      all: db.prepare("SELECT key, size FROM build_cache"),
      clear: db.prepare("DELETE FROM build_cache"),
    };
  }

  get(key: string): CachedStep | undefined {
    const row = this.#q.get.get(key) as { created: string; layer: string | null } | undefined;
    if (!row) return undefined;
    this.#q.touch.run(Date.now(), key);
    return { created: row.created, ...(row.layer ? { layer: JSON.parse(row.layer) as CachedLayer } : {}) };
  }

  put(key: string, step: CachedStep): void {
    this.#q.put.run(key, step.created, step.layer ? JSON.stringify(step.layer) : null, step.layer?.size ?? 0, Date.now());
  }

  /** Drops every entry (`docker builder prune`); returns their keys and the layer bytes they named. */
  prune(): { keys: string[]; size: number } {
    const rows = this.#q.all.all() as { key: string; size: number }[];
    this.#q.clear.run();
    return { keys: rows.map((r) => r.key), size: rows.reduce((sum, r) => sum + r.size, 0) };
  }
}
