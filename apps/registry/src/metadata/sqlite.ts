import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { Descriptor, Digest } from "@minato/oci";
import Database from "better-sqlite3";
import type { ManifestToStore, MetadataStore, MissingReference, Page, StoredManifest, UploadLimits, UploadSession } from "./store.js";

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

  constructor(path: string) {
    const db = openDatabase(path);
    this.#db = db;
    const repositoryId = "(SELECT id FROM repositories WHERE name = ?)";
    this.#q = {
      ensureRepository: db.prepare("INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"),
      repositoryId: db.prepare("SELECT id FROM repositories WHERE name = ?").pluck(),
      linkedBlob: db.prepare(
        `SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.repository_id = ${repositoryId} AND rb.digest = ?`,
      ),
      storedBlob: db.prepare(
        "SELECT b.size FROM blobs b WHERE b.digest = ? AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)",
      ),
      insertBlob: db.prepare("INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT (digest) DO NOTHING"),
      linkBlob: db.prepare("INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
      unlinkBlob: db.prepare(`DELETE FROM repository_blobs WHERE repository_id = ${repositoryId} AND digest = ?`),
      // A repository is listed while it holds a manifest: once its last one is deleted it is gone from
      // the catalog (its blob links stay for a re-push, until garbage collection).
      listRepositories: db
        .prepare(
          "SELECT name FROM repositories r WHERE name > ? AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id) ORDER BY name LIMIT ?",
        )
        .pluck(),
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

  async linkBlob(repository: string, digest: Digest, size: number): Promise<void> {
    const now = Date.now();
    this.#db.transaction(() => {
      const id = this.#ensureRepository(repository);
      this.#q.insertBlob.run(digest, size, now);
      this.#q.linkBlob.run(id, digest, now);
    })();
  }

  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    return this.#q.unlinkBlob.run(repository, digest).changes > 0;
  }

  async repositoryExists(repository: string): Promise<boolean> {
    return this.#q.repositoryId.get(repository) !== undefined;
  }

  async listRepositories(limit: number, after = ""): Promise<Page<string>> {
    const names = this.#q.listRepositories.all(after, limit + 1) as string[];
    return { items: names.slice(0, limit), more: names.length > limit };
  }

  async putManifest(repository: string, manifest: ManifestToStore, tags: string[]): Promise<MissingReference[]> {
    const { summary } = manifest;
    const now = Date.now();
    return this.#db.transaction((): MissingReference[] => {
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
      return [];
    })();
  }

  async getManifest(repository: string, reference: string): Promise<StoredManifest | undefined> {
    const query = reference.includes(":") ? this.#q.manifestByDigest : this.#q.manifestByTag;
    return query.get(repository, reference) as StoredManifest | undefined;
  }

  async deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    // Tags and references go with it through ON DELETE CASCADE.
    return this.#q.deleteManifest.run(repository, digest).changes > 0;
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    return this.#q.deleteTag.run(repository, tag).changes > 0;
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
    // Counted and inserted in one transaction, so concurrent requests cannot overshoot a limit.
    return this.#db.transaction(() => {
      if ((this.#q.uploadsOfRepository.get(session.repository) as number) >= limits.perRepository) return "repository" as const;
      if ((this.#q.uploadsOfClient.get(session.client) as number) >= limits.perClient) return "client" as const;
      this.#q.createUpload.run(session.id, session.repository, session.client, session.createdAt, session.updatedAt);
      return undefined;
    })();
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

  async ping(): Promise<void> {
    this.#db.prepare("SELECT 1").get();
  }

  async close(): Promise<void> {
    this.#db.close();
  }
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
