import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { Descriptor, Digest } from "@minato/oci";
import Database from "better-sqlite3";
import type { StorageStats } from "../metrics.js";
import type { OutboxEvent } from "../notifications/events.js";
import {
  type BlobRecord,
  ImmutableTagError,
  type ManifestOverview,
  type ManifestToStore,
  type MetadataStore,
  type MissingReference,
  type Page,
  type PullRecord,
  QuotaExceededError,
  type QuotaLimit,
  type RepositoryOverview,
  type RepositorySort,
  type StoredManifest,
  type SweepRequest,
  type SweepResult,
  type TagDetail,
  type TagOverview,
  type TagRules,
  type TagSort,
  type UploadLimits,
  type UploadSession,
} from "./store.js";

/** Versioned migrations: index i brings the schema from version i to i + 1. Never edit a shipped one. */
const MIGRATIONS: string[] = [
  `
  CREATE TABLE repositories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  -- A blob is readable in a repository only once pushed or mounted there.
  CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
  ) WITHOUT ROWID;
  CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest);
  CREATE TABLE manifests (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    content BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
  ) WITHOUT ROWID;
  CREATE INDEX manifests_by_subject ON manifests(repository_id, subject) WHERE subject IS NOT NULL;
  -- What each manifest references, for reference checks and garbage collection.
  CREATE TABLE manifest_references (
    repository_id INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    child_digest TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (repository_id, manifest_digest, kind, child_digest),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
  ) WITHOUT ROWID;
  CREATE INDEX manifest_references_by_child ON manifest_references(child_digest);
  CREATE TABLE tags (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
  ) WITHOUT ROWID;
  CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 2: users and access control (src/auth/users.ts). Secrets are stored only as hashes.
  `
  CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT,  -- scrypt; NULL: no password login (robot accounts use access tokens)
    admin INTEGER NOT NULL DEFAULT 0,
    robot INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
  ) WITHOUT ROWID;
  CREATE INDEX group_members_by_user ON group_members(user_id);
  -- Actions (pull,push,delete) on repositories matching a pattern, for one user or one group.
  CREATE TABLE grants (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    pattern TEXT NOT NULL,
    actions TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
  );
  CREATE UNIQUE INDEX grants_unique ON grants(ifnull(user_id, 0), ifnull(group_id, 0), pattern);
  CREATE INDEX grants_by_group ON grants(group_id) WHERE group_id IS NOT NULL;
  -- Repository patterns anyone, anonymous included, may pull.
  CREATE TABLE public_repositories (
    pattern TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  -- Personal access tokens: usable as a password, limited to their scopes (JSON rules).
  CREATE TABLE access_tokens (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER
  ) WITHOUT ROWID;
  CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    access_token_id TEXT REFERENCES access_tokens(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    client_id TEXT,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  ) WITHOUT ROWID;
  `,
  // 3: upload sessions know their client and last activity (limits per client, idle expiry).
  `
  ALTER TABLE uploads ADD COLUMN client TEXT NOT NULL DEFAULT '';
  ALTER TABLE uploads ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
  UPDATE uploads SET updated_at = created_at;
  CREATE INDEX uploads_by_repository ON uploads(repository);
  CREATE INDEX uploads_by_client ON uploads(client);
  CREATE INDEX uploads_by_updated ON uploads(updated_at);
  `,
  // 4: storage lifecycle (src/lifecycle/). A blob with deleting_at set is being removed from storage by
  // the collector: it is invisible, and cannot be linked or reserved until the row is gone.
  `
  ALTER TABLE blobs ADD COLUMN deleting_at INTEGER;
  -- Uploads committing a blob's bytes to storage right now; the collector leaves those blobs alone.
  CREATE TABLE blob_writes (
    digest TEXT NOT NULL,
    writer TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    PRIMARY KEY (digest, writer)
  ) WITHOUT ROWID;
  CREATE INDEX tags_by_manifest ON tags(repository_id, manifest_digest);
  `,
  // 5: browsing (src/api/): when things were last pulled, tags by push time, and web UI sessions.
  `
  ALTER TABLE repositories ADD COLUMN last_pulled_at INTEGER;
  ALTER TABLE manifests ADD COLUMN last_pulled_at INTEGER;
  ALTER TABLE tags ADD COLUMN last_pulled_at INTEGER;
  CREATE INDEX tags_by_update ON tags(repository_id, updated_at);
  -- A repository's last push without reading its manifests' content.
  CREATE INDEX manifests_by_push ON manifests(repository_id, created_at);
  -- A browser's login: the cookie holds the id and a secret, of which only the hash is kept.
  CREATE TABLE browser_sessions (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    access_token_id TEXT REFERENCES access_tokens(id) ON DELETE CASCADE,
    -- Hash of the password hash at login: a password change ends password sessions.
    password_stamp TEXT,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX browser_sessions_by_expiry ON browser_sessions(expires_at);
  `,
  // 6: observability (src/notifications/, src/audit.ts). Events are written in the transaction of the
  // change they report; each endpoint delivers from its own cursor, claimed with a lease so that one
  // replica at a time sends for it. AUTOINCREMENT: ids are never reused once delivered rows are pruned.
  `
  CREATE TABLE notification_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    media_type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE notification_cursors (
    endpoint TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    retry_at INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
  );
  CREATE INDEX audit_log_by_time ON audit_log(at);
  CREATE INDEX audit_log_by_actor ON audit_log(actor, at);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

type Row = Record<string, unknown>;

const UPLOAD_COLUMNS = "id, repository, client, created_at AS createdAt, updated_at AS updatedAt";

/**
 * Opens the registry database (the metadata tables and the auth tables share it): WAL so readers
 * never wait for the writer, a busy timeout for the admin commands writing alongside the server,
 * foreign keys on, schema migrated to the current version.
 */
export function openDatabase(path: string): Database.Database {
  if (path !== ":memory:") restrictDatabaseFiles(path);
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  migrate(db);
  return db;
}

/**
 * The database holds password hashes and token records: mode 0600 like the signing keys. Created so
 * before SQLite opens it (SQLite gives its -wal and -shm files the database file's mode), and an
 * older, wider database is narrowed.
 */
function restrictDatabaseFiles(path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  closeSync(openSync(path, "a", 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  }
}

/** better-sqlite3 in WAL mode: one writer, many readers, every query prepared once. */
export class SqliteMetadataStore implements MetadataStore {
  readonly #db: Database.Database;
  readonly #q;
  readonly #browse;

  constructor(path: string) {
    const db = openDatabase(path);
    this.#db = db;
    const repositoryId = "(SELECT id FROM repositories WHERE name = ?)";
    this.#q = {
      ensureRepository: db.prepare("INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"),
      repositoryId: db.prepare("SELECT id FROM repositories WHERE name = ?").pluck(),
      linkedBlob: db.prepare(
        `SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
         WHERE rb.repository_id = ${repositoryId} AND rb.digest = ? AND b.deleting_at IS NULL`,
      ),
      storedBlob: db.prepare(
        "SELECT b.size FROM blobs b WHERE b.digest = ? AND b.deleting_at IS NULL AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)",
      ),
      insertEvent: db.prepare("INSERT INTO notification_events (action, media_type, body, created_at) VALUES (?, ?, ?, ?)"),
      insertBlob: db.prepare("INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT (digest) DO NOTHING"),
      linkBlob: db.prepare(
        `INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?)
         ON CONFLICT DO UPDATE SET created_at = excluded.created_at`,
      ),
      blobDeleting: db.prepare("SELECT deleting_at FROM blobs WHERE digest = ?").pluck(),
      reserveWrite: db.prepare(
        `INSERT INTO blob_writes (digest, writer, started_at) VALUES (?, ?, ?)
         ON CONFLICT DO UPDATE SET started_at = excluded.started_at`,
      ),
      releaseWrite: db.prepare("DELETE FROM blob_writes WHERE digest = ? AND writer = ?"),
      tagTarget: db.prepare("SELECT manifest_digest FROM tags WHERE repository_id = ? AND name = ?").pluck(),
      tagsOf: db.prepare(`SELECT name FROM tags WHERE repository_id = ${repositoryId} AND manifest_digest = ?`).pluck(),
      tagDetails: db.prepare(
        `SELECT t.name AS tag, t.manifest_digest AS digest, t.updated_at AS pushedAt, m.last_pulled_at AS pulledAt FROM tags t
         JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
         WHERE t.repository_id = ${repositoryId} ORDER BY t.name`,
      ),
      deleteTagIf: db.prepare(
        `DELETE FROM tags WHERE repository_id = ${repositoryId} AND name = ? AND manifest_digest = ? AND updated_at = ?`,
      ),
      untaggedManifests: db.prepare(
        `SELECT r.name AS repository, m.repository_id AS id, m.digest, length(m.content) AS size, m.created_at AS createdAt
         FROM manifests m JOIN repositories r ON r.id = m.repository_id
         WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
           AND NOT EXISTS (SELECT 1 FROM manifest_references mr
                           WHERE mr.child_digest = m.digest AND mr.repository_id = m.repository_id AND mr.kind = 'manifest')
           AND NOT (m.subject IS NOT NULL
                    AND EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject))`,
      ),
      deleteManifestById: db.prepare("DELETE FROM manifests WHERE repository_id = ? AND digest = ?"),
      staleLinks: db.prepare(
        `SELECT r.name AS repository, rb.repository_id AS id, rb.digest FROM repository_blobs rb
         JOIN repositories r ON r.id = rb.repository_id
         WHERE rb.created_at < ? AND NOT EXISTS (SELECT 1 FROM manifest_references mr
               WHERE mr.child_digest = rb.digest AND mr.repository_id = rb.repository_id AND mr.kind = 'blob')`,
      ),
      deleteLink: db.prepare("DELETE FROM repository_blobs WHERE repository_id = ? AND digest = ?"),
      emptyRepositories: db.prepare(
        `SELECT id, name FROM repositories r
         WHERE NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
           AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = r.id)
           AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.repository = r.name)`,
      ),
      deleteRepository: db.prepare("DELETE FROM repositories WHERE id = ?"),
      abandonedWrites: db.prepare("SELECT DISTINCT digest FROM blob_writes WHERE started_at < ?").pluck(),
      deleteAbandonedWrites: db.prepare("DELETE FROM blob_writes WHERE started_at < ?"),
      // Bytes an upload committed but never linked (its writer died): a row so the collector removes them.
      tombstone: db.prepare("INSERT INTO blobs (digest, size, created_at, deleting_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"),
      known: db
        .prepare("SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = @digest) OR EXISTS (SELECT 1 FROM blob_writes WHERE digest = @digest)")
        .pluck(),
      unreferencedBlobs: db.prepare(
        `SELECT b.digest, b.size FROM blobs b WHERE b.deleting_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
           AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.child_digest = b.digest AND mr.kind = 'blob')
           AND NOT EXISTS (SELECT 1 FROM blob_writes w WHERE w.digest = b.digest)
         ORDER BY b.digest LIMIT ?`,
      ),
      markDeleting: db.prepare("UPDATE blobs SET deleting_at = ? WHERE digest = ?"),
      blobsBeingDeleted: db.prepare("SELECT digest, size FROM blobs WHERE deleting_at IS NOT NULL LIMIT ?"),
      forgetBlob: db.prepare("DELETE FROM blobs WHERE digest = ? AND deleting_at IS NOT NULL"),
      listBlobs: db.prepare("SELECT digest, size FROM blobs WHERE deleting_at IS NULL AND digest > ? ORDER BY digest LIMIT ?"),
      unlinkEverywhere: db.prepare("DELETE FROM repository_blobs WHERE digest = ?"),
      blobUsage: db
        .prepare(
          `SELECT ifnull(sum(size), 0) FROM blobs WHERE digest IN (
           SELECT rb.digest FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
           WHERE r.name IN (SELECT value FROM json_each(?)))`,
        )
        .pluck(),
      linkedInAny: db
        .prepare(
          `SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
         WHERE rb.digest = ? AND r.name IN (SELECT value FROM json_each(?)) LIMIT 1`,
        )
        .pluck(),
      unlinkBlob: db.prepare(`DELETE FROM repository_blobs WHERE repository_id = ${repositoryId} AND digest = ?`),
      // A repository is listed while it holds a manifest: once its last one is deleted it is gone from
      // the catalog (its blob links stay for a re-push, until garbage collection).
      listRepositories: db
        .prepare(
          "SELECT name FROM repositories r WHERE name > ? AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id) ORDER BY name LIMIT ?",
        )
        .pluck(),
      allRepositories: db.prepare("SELECT name FROM repositories").pluck(),
      manifestExists: db.prepare("SELECT 1 FROM manifests WHERE repository_id = ? AND digest = ?").pluck(),
      blobLinked: db.prepare("SELECT 1 FROM repository_blobs WHERE repository_id = ? AND digest = ?").pluck(),
      insertManifest: db.prepare(
        `INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject, annotations, content, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository_id, digest) DO NOTHING`,
      ),
      insertReference: db.prepare(
        "INSERT INTO manifest_references (repository_id, manifest_digest, child_digest, kind) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
      ),
      upsertTag: db.prepare(
        `INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repository_id, name) DO UPDATE SET manifest_digest = excluded.manifest_digest, updated_at = excluded.updated_at`,
      ),
      manifestByDigest: db.prepare(
        `SELECT digest, media_type AS mediaType, content FROM manifests WHERE repository_id = ${repositoryId} AND digest = ?`,
      ),
      manifestByTag: db.prepare(
        `SELECT m.digest, m.media_type AS mediaType, m.content FROM tags t
         JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
         WHERE t.repository_id = ${repositoryId} AND t.name = ?`,
      ),
      deleteManifest: db.prepare(`DELETE FROM manifests WHERE repository_id = ${repositoryId} AND digest = ?`),
      deleteTag: db.prepare(`DELETE FROM tags WHERE repository_id = ${repositoryId} AND name = ?`),
      listTags: db.prepare("SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name LIMIT ?").pluck(),
      referrers: db.prepare(
        `SELECT digest, media_type AS mediaType, length(content) AS size, artifact_type AS artifactType, annotations
         FROM manifests WHERE repository_id = ${repositoryId} AND subject = ? ORDER BY digest`,
      ),
      createUpload: db.prepare("INSERT INTO uploads (id, repository, client, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"),
      uploadsOfRepository: db.prepare("SELECT count(*) FROM uploads WHERE repository = ?").pluck(),
      uploadsOfClient: db.prepare("SELECT count(*) FROM uploads WHERE client = ?").pluck(),
      getUpload: db.prepare(`SELECT ${UPLOAD_COLUMNS} FROM uploads WHERE id = ?`),
      touchUpload: db.prepare("UPDATE uploads SET updated_at = max(updated_at, ?) WHERE id = ?"),
      deleteUpload: db.prepare("DELETE FROM uploads WHERE id = ?"),
      staleUploads: db.prepare(`SELECT ${UPLOAD_COLUMNS} FROM uploads WHERE updated_at < ? OR created_at < ?`),
    };
    this.#browse = prepareBrowsing(db);
  }

  #ensureRepository(name: string): number {
    this.#q.ensureRepository.run(name, Date.now());
    return this.#q.repositoryId.get(name) as number;
  }

  async linkedBlob(repository: string, digest: Digest): Promise<{ size: number } | undefined> {
    return this.#q.linkedBlob.get(repository, digest) as { size: number } | undefined;
  }

  async storedBlob(digest: Digest): Promise<{ size: number } | undefined> {
    return this.#q.storedBlob.get(digest) as { size: number } | undefined;
  }

  #deleting(digest: Digest): boolean {
    const deletingAt = this.#q.blobDeleting.get(digest) as number | null | undefined;
    return deletingAt !== undefined && deletingAt !== null;
  }

  // Writes that read first take the write lock first (BEGIN IMMEDIATE): with another process (an admin
  // command) writing too, a deferred transaction could not upgrade its read snapshot and would fail.
  /** Adds notification events to the outbox: inside a write transaction, they commit with it. */
  #enqueue(events: readonly OutboxEvent[]): void {
    const now = Date.now();
    for (const e of events) this.#q.insertEvent.run(e.action, e.mediaType, e.body, now);
  }

  async recordEvents(events: readonly OutboxEvent[]): Promise<void> {
    if (events.length > 0) this.#db.transaction(() => this.#enqueue(events))();
  }

  async linkBlob(
    repository: string,
    digest: Digest,
    size: number,
    writer?: string,
    quotas: QuotaLimit[] = [],
    events: readonly OutboxEvent[] = [],
  ): Promise<boolean> {
    const now = Date.now();
    return this.#db
      .transaction((): boolean => {
        if (this.#deleting(digest)) return false;
        for (const quota of quotas) {
          const scope = (this.#q.allRepositories.all() as string[]).filter((name) => quota.covers(name));
          if (!scope.includes(repository)) scope.push(repository);
          const names = JSON.stringify(scope);
          if (this.#q.linkedInAny.get(digest, names) !== undefined) continue;
          const used = this.#q.blobUsage.get(names) as number;
          if (used + size > quota.bytes) throw new QuotaExceededError(quota.label, quota.bytes, used, size);
        }
        const id = this.#ensureRepository(repository);
        this.#q.insertBlob.run(digest, size, now);
        this.#q.linkBlob.run(id, digest, now);
        if (writer !== undefined) this.#q.releaseWrite.run(digest, writer);
        this.#enqueue(events);
        return true;
      })
      .immediate();
  }

  async reserveBlobWrite(digest: Digest, writer: string): Promise<boolean> {
    return this.#db
      .transaction((): boolean => {
        if (this.#deleting(digest)) return false;
        this.#q.reserveWrite.run(digest, writer, Date.now());
        return true;
      })
      .immediate();
  }

  async releaseBlobWrite(digest: Digest, writer: string): Promise<void> {
    this.#q.releaseWrite.run(digest, writer);
  }

  async unlinkBlob(repository: string, digest: Digest, events: readonly OutboxEvent[] = []): Promise<boolean> {
    return this.#db.transaction((): boolean => {
      const unlinked = this.#q.unlinkBlob.run(repository, digest).changes > 0;
      if (unlinked) this.#enqueue(events);
      return unlinked;
    })();
  }

  async repositoryExists(repository: string): Promise<boolean> {
    return this.#q.repositoryId.get(repository) !== undefined;
  }

  async listRepositories(limit: number, after = ""): Promise<Page<string>> {
    const names = this.#q.listRepositories.all(after, limit + 1) as string[];
    return { items: names.slice(0, limit), more: names.length > limit };
  }

  async putManifest(
    repository: string,
    manifest: ManifestToStore,
    tags: string[],
    rules: TagRules = {},
    events: readonly OutboxEvent[] = [],
  ): Promise<MissingReference[]> {
    const { summary } = manifest;
    const now = Date.now();
    const put = this.#db.transaction((): MissingReference[] => {
      // A rejected manifest must not create its repository (it would then be listed and have tags/list).
      const existing = this.#q.repositoryId.get(repository) as number | undefined;
      const missing: MissingReference[] = [];
      for (const blob of summary.blobs) {
        if (existing === undefined || this.#q.blobLinked.get(existing, blob.digest) === undefined) {
          missing.push({ digest: blob.digest, kind: "blob" });
        }
      }
      for (const child of summary.manifests) {
        if (existing === undefined || this.#q.manifestExists.get(existing, child.digest) === undefined) {
          missing.push({ digest: child.digest, kind: "manifest" });
        }
      }
      if (missing.length > 0) return missing;
      if (existing !== undefined && rules.immutable) {
        for (const tag of tags) {
          const current = this.#q.tagTarget.get(existing, tag) as string | undefined;
          const rule = current !== undefined && current !== manifest.digest ? rules.immutable(tag) : undefined;
          if (rule !== undefined) throw new ImmutableTagError(tag, rule);
        }
      }
      const id = existing ?? this.#ensureRepository(repository);
      this.#q.insertManifest.run(
        id,
        manifest.digest,
        manifest.mediaType,
        summary.artifactType ?? null,
        summary.subject?.digest ?? null,
        summary.annotations ? JSON.stringify(summary.annotations) : null,
        manifest.content,
        now,
      );
      for (const blob of summary.blobs) this.#q.insertReference.run(id, manifest.digest, blob.digest, "blob");
      for (const child of summary.manifests) this.#q.insertReference.run(id, manifest.digest, child.digest, "manifest");
      for (const tag of tags) this.#q.upsertTag.run(id, tag, manifest.digest, now);
      this.#enqueue(events);
      return [];
    });
    return put.immediate();
  }

  async getManifest(repository: string, reference: string): Promise<StoredManifest | undefined> {
    const query = reference.includes(":") ? this.#q.manifestByDigest : this.#q.manifestByTag;
    return query.get(repository, reference) as StoredManifest | undefined;
  }

  async deleteManifest(repository: string, digest: Digest, rules: TagRules = {}, events: readonly OutboxEvent[] = []): Promise<boolean> {
    return this.#db
      .transaction((): boolean => {
        if (rules.immutable) {
          for (const tag of this.#q.tagsOf.all(repository, digest) as string[]) {
            const rule = rules.immutable(tag);
            if (rule !== undefined) throw new ImmutableTagError(tag, rule);
          }
        }
        // Tags and references go with it through ON DELETE CASCADE.
        const deleted = this.#q.deleteManifest.run(repository, digest).changes > 0;
        if (deleted) this.#enqueue(events);
        return deleted;
      })
      .immediate();
  }

  async deleteTag(repository: string, tag: string, rules: TagRules = {}, events: readonly OutboxEvent[] = []): Promise<boolean> {
    const rule = rules.immutable?.(tag);
    return this.#db
      .transaction((): boolean => {
        // Refused only when there is such a tag: deleting an absent one stays a plain 404.
        const id = this.#q.repositoryId.get(repository) as number | undefined;
        if (rule !== undefined && id !== undefined && this.#q.tagTarget.get(id, tag) !== undefined) {
          throw new ImmutableTagError(tag, rule);
        }
        const deleted = this.#q.deleteTag.run(repository, tag).changes > 0;
        if (deleted) this.#enqueue(events);
        return deleted;
      })
      .immediate();
  }

  async tagDetails(repository: string): Promise<TagDetail[]> {
    const rows = this.#q.tagDetails.all(repository) as (TagDetail & { pulledAt: number | null })[];
    return rows.map(({ pulledAt, ...row }) => (pulledAt === null ? row : { ...row, pulledAt }));
  }

  async listTags(repository: string, limit: number, after = ""): Promise<Page<string> | undefined> {
    const id = this.#q.repositoryId.get(repository) as number | undefined;
    if (id === undefined) return undefined;
    const names = this.#q.listTags.all(id, after, limit + 1) as string[];
    return { items: names.slice(0, limit), more: names.length > limit };
  }

  async listReferrers(repository: string, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const rows = this.#q.referrers.all(repository, subject) as Row[];
    const descriptors: Descriptor[] = [];
    for (const row of rows) {
      if (artifactType !== undefined && row.artifactType !== artifactType) continue;
      const descriptor: Descriptor = { mediaType: row.mediaType as string, digest: row.digest as Digest, size: row.size as number };
      if (row.artifactType) descriptor.artifactType = row.artifactType as string;
      if (row.annotations) descriptor.annotations = JSON.parse(row.annotations as string);
      descriptors.push(descriptor);
    }
    return descriptors;
  }

  async createUpload(session: UploadSession, limits: UploadLimits): Promise<"repository" | "client" | undefined> {
    // Counted and inserted in one transaction, so concurrent requests cannot overshoot a limit. It reads
    // before it writes, so it takes the write lock first (see linkBlob): with an admin command writing
    // beside the server, a deferred one would fail with SQLITE_BUSY instead of waiting.
    return this.#db
      .transaction(() => {
        if ((this.#q.uploadsOfRepository.get(session.repository) as number) >= limits.perRepository) return "repository" as const;
        if ((this.#q.uploadsOfClient.get(session.client) as number) >= limits.perClient) return "client" as const;
        this.#q.createUpload.run(session.id, session.repository, session.client, session.createdAt, session.updatedAt);
        return undefined;
      })
      .immediate();
  }

  async touchUpload(id: string, at: number): Promise<void> {
    this.#q.touchUpload.run(at, id);
  }

  async getUpload(id: string): Promise<UploadSession | undefined> {
    return this.#q.getUpload.get(id) as UploadSession | undefined;
  }

  async deleteUpload(id: string): Promise<void> {
    this.#q.deleteUpload.run(id);
  }

  async staleUploads(idleBefore: number, createdBefore = idleBefore): Promise<UploadSession[]> {
    return this.#q.staleUploads.all(idleBefore, createdBefore) as UploadSession[];
  }

  async sweep(request: SweepRequest): Promise<SweepResult> {
    const q = this.#q;
    const run = (): SweepResult => {
      const result: SweepResult = { tags: [], manifests: [], links: [], repositories: [], blobs: [] };
      for (const d of request.tagDeletions ?? []) {
        if (q.deleteTagIf.run(d.repository, d.tag, d.digest, d.pushedAt).changes > 0)
          result.tags.push({ repository: d.repository, tag: d.tag });
      }
      // Untagged manifests, until none is left: deleting an index frees its children, a subject its referrers.
      const cutoffs = request.untaggedCutoffs ?? {};
      if (request.untaggedCutoff !== undefined || Object.keys(cutoffs).length > 0) {
        for (;;) {
          type Candidate = { repository: string; id: number; digest: Digest; size: number; createdAt: number };
          const garbage = (q.untaggedManifests.all() as Candidate[]).filter((m) => {
            const cutoff = cutoffs[m.repository] ?? request.untaggedCutoff;
            return cutoff !== undefined && m.createdAt < cutoff;
          });
          if (garbage.length === 0) break;
          for (const m of garbage) {
            q.deleteManifestById.run(m.id, m.digest);
            result.manifests.push({ repository: m.repository, digest: m.digest, size: m.size });
          }
        }
      }
      for (const link of q.staleLinks.all(request.linkCutoff) as { repository: string; id: number; digest: Digest }[]) {
        q.deleteLink.run(link.id, link.digest);
        result.links.push({ repository: link.repository, digest: link.digest });
      }
      for (const repo of q.emptyRepositories.all() as { id: number; name: string }[]) {
        q.deleteRepository.run(repo.id);
        result.repositories.push(repo.name);
      }
      for (const digest of q.abandonedWrites.all(request.writeCutoff) as Digest[]) {
        if (q.tombstone.run(digest, 0, request.now, request.now).changes > 0) result.blobs.push({ digest, size: 0 });
      }
      q.deleteAbandonedWrites.run(request.writeCutoff);
      const limit = request.dryRun ? -1 : request.markLimit;
      for (const blob of q.unreferencedBlobs.all(limit) as BlobRecord[]) {
        q.markDeleting.run(request.now, blob.digest);
        result.blobs.push(blob);
      }
      if (request.dryRun) throw new DryRun(result);
      return result;
    };
    try {
      return this.#db.transaction(run).immediate();
    } catch (error) {
      if (error instanceof DryRun) return error.result;
      throw error;
    }
  }

  async claimOrphans(blobs: BlobRecord[], now: number, dryRun: boolean): Promise<BlobRecord[]> {
    const claim = this.#db.transaction((): BlobRecord[] => {
      const orphans = blobs.filter((blob) => this.#q.known.get({ digest: blob.digest }) === 0);
      if (!dryRun) for (const blob of orphans) this.#q.tombstone.run(blob.digest, blob.size, now, now);
      return orphans;
    });
    return claim.immediate();
  }

  async blobsBeingDeleted(limit: number): Promise<BlobRecord[]> {
    return this.#q.blobsBeingDeleted.all(limit) as BlobRecord[];
  }

  async forgetBlobs(digests: Digest[]): Promise<void> {
    this.#db.transaction(() => {
      for (const digest of digests) this.#q.forgetBlob.run(digest);
    })();
  }

  async listBlobs(limit: number, after = ""): Promise<BlobRecord[]> {
    return this.#q.listBlobs.all(after, limit) as BlobRecord[];
  }

  async unlinkEverywhere(digest: Digest): Promise<number> {
    return this.#q.unlinkEverywhere.run(digest).changes;
  }

  async blobUsage(repositories: string[]): Promise<number> {
    return this.#q.blobUsage.get(JSON.stringify(repositories)) as number;
  }

  async linkedInAny(repositories: string[], digest: Digest): Promise<boolean> {
    return this.#q.linkedInAny.get(digest, JSON.stringify(repositories)) !== undefined;
  }

  // --- Browsing (api/) ---

  async repositoryNames(options: { search?: string; sort: RepositorySort; descending: boolean }): Promise<string[]> {
    const query = this.#browse.repositoryNames[`${options.sort}:${options.descending ? "desc" : "asc"}`];
    return query.all((options.search ?? "").toLowerCase()) as string[];
  }

  async repositoryOverviews(repositories: readonly string[]): Promise<RepositoryOverview[]> {
    const overviews: RepositoryOverview[] = [];
    for (const name of repositories) {
      const row = this.#browse.repository.get(name) as Row | undefined;
      if (!row) continue;
      const id = row.id as number;
      const blobs = this.#browse.blobSizes.get({ id }) as { total: number; unique: number };
      const manifests = this.#browse.manifestBytes.get(id) as number;
      overviews.push({
        name,
        tagCount: row.tagCount as number,
        lastPushedAt: latest(row.manifestPushedAt as number | null, row.tagPushedAt as number | null),
        lastPulledAt: row.lastPulledAt as number | null,
        size: { total: blobs.total + manifests, unique: blobs.unique + manifests },
      });
    }
    return overviews;
  }

  async tagOverviews(
    repository: string,
    options: { sort: TagSort; descending: boolean; offset: number; limit: number },
  ): Promise<{ items: TagOverview[]; total: number } | undefined> {
    const id = this.#q.repositoryId.get(repository) as number | undefined;
    if (id === undefined) return undefined;
    const query = this.#browse.tags[`${options.sort}:${options.descending ? "desc" : "asc"}`];
    const items = query.all(id, options.limit, options.offset) as TagOverview[];
    return { items, total: this.#browse.tagCount.get(id) as number };
  }

  async manifestOverview(repository: string, digest: Digest): Promise<ManifestOverview | undefined> {
    return this.#browse.manifest.get(repository, digest) as ManifestOverview | undefined;
  }

  async manifestsByDigest(repository: string, digests: readonly Digest[]): Promise<Map<Digest, StoredManifest>> {
    const found = new Map<Digest, StoredManifest>();
    for (const digest of new Set(digests)) {
      const manifest = this.#q.manifestByDigest.get(repository, digest) as StoredManifest | undefined;
      if (manifest) found.set(digest, manifest);
    }
    return found;
  }

  async referrerCounts(repository: string, subjects: readonly Digest[]): Promise<Map<Digest, Record<string, number>>> {
    const counts = new Map<Digest, Record<string, number>>();
    const id = this.#q.repositoryId.get(repository) as number | undefined;
    if (id === undefined) return counts;
    for (const subject of new Set(subjects)) {
      const rows = this.#browse.referrerCounts.all(id, subject) as { artifactType: string; count: number }[];
      counts.set(subject, Object.fromEntries(rows.map((row) => [row.artifactType, row.count])));
    }
    return counts;
  }

  async recordPulls(pulls: readonly PullRecord[]): Promise<void> {
    this.#db.transaction(() => {
      for (const pull of pulls) {
        this.#browse.pulledRepository.run(pull.at, pull.repository);
        this.#browse.pulledManifest.run(pull.at, pull.repository, pull.digest);
        if (pull.tag !== undefined) this.#browse.pulledTag.run(pull.at, pull.repository, pull.tag);
      }
    })();
  }

  async storageStats(perRepository: boolean): Promise<StorageStats> {
    // Blobs being deleted by the collector are already invisible; they are not counted.
    const total = this.#db
      .prepare("SELECT count(*) AS blobs, ifnull(sum(size), 0) AS bytes FROM blobs WHERE deleting_at IS NULL")
      .get() as {
      blobs: number;
      bytes: number;
    };
    if (!perRepository) return { totalBytes: total.bytes, totalBlobs: total.blobs };
    const repositories = this.#db
      .prepare(
        `SELECT r.name AS repository, count(b.digest) AS blobs, ifnull(sum(b.size), 0) AS bytes
         FROM repositories r LEFT JOIN repository_blobs rb ON rb.repository_id = r.id
         LEFT JOIN blobs b ON b.digest = rb.digest AND b.deleting_at IS NULL GROUP BY r.id`,
      )
      .all() as { repository: string; blobs: number; bytes: number }[];
    return { totalBytes: total.bytes, totalBlobs: total.blobs, repositories };
  }

  async ping(): Promise<void> {
    this.#db.prepare("SELECT 1").get();
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}

/** Thrown to roll a dry run's transaction back, carrying what it would have done. */
class DryRun extends Error {
  constructor(readonly result: SweepResult) {
    super("dry run");
  }
}

const latest = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.max(a, b));

/** The browsing API's statements (src/api/), apart from the registry's own. */
function prepareBrowsing(db: Database.Database) {
  const repositoryId = "(SELECT id FROM repositories WHERE name = ?)";
  const tagColumns = `SELECT t.name, t.manifest_digest AS digest, m.media_type AS mediaType, m.content,
      t.updated_at AS pushedAt, t.last_pulled_at AS pulledAt
    FROM tags t JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
    WHERE t.repository_id = ?`;
  const tagPage = (order: string) => db.prepare(`${tagColumns} ORDER BY ${order} LIMIT ? OFFSET ?`);
  const names = (order: string, key = "NULL") =>
    db
      .prepare(`SELECT name FROM (SELECT name, last_pulled_at, ${key} AS k FROM repositories WHERE instr(name, ?) > 0) ORDER BY ${order}`)
      .pluck();
  // Both maxima come from an index (manifests_by_push, tags_by_update); 0 when never pushed.
  const lastPush = `max(
    coalesce((SELECT max(created_at) FROM manifests m WHERE m.repository_id = repositories.id), 0),
    coalesce((SELECT max(updated_at) FROM tags t WHERE t.repository_id = repositories.id), 0))`;
  // Only the latest time is kept: batches may be flushed out of order by concurrent replicas.
  const later = "last_pulled_at = max(coalesce(last_pulled_at, 0), ?)";
  return {
    repositoryNames: {
      "name:asc": names("name ASC"),
      "name:desc": names("name DESC"),
      "pushed:asc": names("k = 0, k ASC, name", lastPush),
      "pushed:desc": names("k = 0, k DESC, name", lastPush),
      "pulled:asc": names("last_pulled_at IS NULL, last_pulled_at ASC, name"),
      "pulled:desc": names("last_pulled_at IS NULL, last_pulled_at DESC, name"),
    },
    repository: db.prepare(
      `SELECT r.id, r.last_pulled_at AS lastPulledAt,
         (SELECT count(*) FROM tags t WHERE t.repository_id = r.id) AS tagCount,
         (SELECT max(created_at) FROM manifests m WHERE m.repository_id = r.id) AS manifestPushedAt,
         (SELECT max(updated_at) FROM tags t WHERE t.repository_id = r.id) AS tagPushedAt
       FROM repositories r WHERE r.name = ?`,
    ),
    blobSizes: db.prepare(
      `WITH used AS (SELECT DISTINCT child_digest AS digest FROM manifest_references WHERE repository_id = @id AND kind = 'blob')
       SELECT coalesce(sum(b.size), 0) AS total,
         coalesce(sum(CASE WHEN EXISTS (
           SELECT 1 FROM manifest_references o WHERE o.child_digest = used.digest AND o.repository_id <> @id
         ) THEN 0 ELSE b.size END), 0) AS "unique"
       FROM used JOIN blobs b ON b.digest = used.digest`,
    ),
    manifestBytes: db.prepare("SELECT coalesce(sum(length(content)), 0) FROM manifests WHERE repository_id = ?").pluck(),
    tagCount: db.prepare("SELECT count(*) FROM tags WHERE repository_id = ?").pluck(),
    tags: {
      "name:asc": tagPage("t.name ASC"),
      "name:desc": tagPage("t.name DESC"),
      "pushed:asc": tagPage("t.updated_at ASC, t.name ASC"),
      "pushed:desc": tagPage("t.updated_at DESC, t.name ASC"),
    },
    manifest: db.prepare(
      `SELECT digest, media_type AS mediaType, content, created_at AS pushedAt, last_pulled_at AS pulledAt
       FROM manifests WHERE repository_id = ${repositoryId} AND digest = ?`,
    ),
    referrerCounts: db.prepare(
      `SELECT coalesce(artifact_type, '') AS artifactType, count(*) AS count
       FROM manifests WHERE repository_id = ? AND subject = ? GROUP BY 1 ORDER BY 1`,
    ),
    pulledRepository: db.prepare(`UPDATE repositories SET ${later} WHERE name = ?`),
    pulledManifest: db.prepare(`UPDATE manifests SET ${later} WHERE repository_id = ${repositoryId} AND digest = ?`),
    pulledTag: db.prepare(`UPDATE tags SET ${later} WHERE repository_id = ${repositoryId} AND name = ?`),
  };
}

function migrate(db: Database.Database): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`metadata database schema v${current} is newer than this registry (v${MIGRATIONS.length}); upgrade minato-registry`);
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
