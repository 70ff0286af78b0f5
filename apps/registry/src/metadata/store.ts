import type { Descriptor, Digest, ManifestSummary } from "@minato/oci";

export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  /** The exact bytes the client pushed. */
  content: Buffer;
}

export interface ManifestToStore {
  digest: Digest;
  mediaType: string;
  content: Buffer;
  summary: ManifestSummary;
}

export interface Page<T> {
  items: T[];
  /** True when more items follow the last one returned. */
  more: boolean;
}

export interface UploadSession {
  id: string;
  repository: string;
  createdAt: number;
}

/** References a manifest makes that the repository does not hold. */
export interface MissingReference {
  digest: Digest;
  kind: "blob" | "manifest";
}

// ---------------------------------------------------------------------------------------------
// Browsing (the JSON API under /api/v1 and the web UI): read-only summaries and pull times.

export type RepositorySort = "name" | "pushed" | "pulled";

/** One repository as the browsing API lists it; times in ms since epoch, null when never. */
export interface RepositoryOverview {
  name: string;
  tagCount: number;
  lastPushedAt: number | null;
  lastPulledAt: number | null;
  size: RepositorySizes;
}

export interface RepositorySizes {
  /** Manifests plus every distinct blob their manifests reference. */
  total: number;
  /** The same without blobs that a manifest of another repository references too. */
  unique: number;
}

export type TagSort = "name" | "pushed";

export interface TagOverview {
  name: string;
  digest: Digest;
  mediaType: string;
  content: Buffer;
  pushedAt: number;
  pulledAt: number | null;
}

export interface ManifestOverview extends StoredManifest {
  pushedAt: number;
  pulledAt: number | null;
}

/** A pull to record: a manifest fetched by digest, or by tag (then `tag` is set too). */
export interface PullRecord {
  repository: string;
  digest: Digest;
  tag?: string;
  at: number;
}

/**
 * Registry metadata: repositories, blob links, manifests, tags, referrers, upload sessions.
 * Every query the registry makes goes through this interface, so a PostgreSQL implementation can
 * replace the SQLite one for multi-replica deployments. Methods are async for that reason.
 */
export interface MetadataStore {
  /** A blob readable in `repository` (pushed or mounted there), with its size. */
  linkedBlob(repository: string, digest: Digest): Promise<{ size: number } | undefined>;
  /** Records a verified blob and makes it readable in `repository`. */
  linkBlob(repository: string, digest: Digest, size: number): Promise<void>;
  /** Makes a blob no longer readable in `repository`; false when it was not linked. */
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>;

  repositoryExists(repository: string): Promise<boolean>;
  listRepositories(limit: number, after?: string): Promise<Page<string>>;

  /**
   * Stores a manifest and points `tags` at it, atomically. When a referenced blob or child manifest
   * is not in the repository nothing is written and the missing references are returned.
   */
  putManifest(repository: string, manifest: ManifestToStore, tags: string[]): Promise<MissingReference[]>;
  /** By tag or by digest. */
  getManifest(repository: string, reference: string): Promise<StoredManifest | undefined>;
  /** Deletes a manifest and every tag pointing at it; false when absent. */
  deleteManifest(repository: string, digest: Digest): Promise<boolean>;
  deleteTag(repository: string, tag: string): Promise<boolean>;
  /** Tags in ASCII order after `after`; undefined when the repository does not exist. */
  listTags(repository: string, limit: number, after?: string): Promise<Page<string> | undefined>;
  /** Manifests in `repository` whose subject is `subject`, optionally of one artifact type. */
  listReferrers(repository: string, subject: Digest, artifactType?: string): Promise<Descriptor[]>;

  createUpload(session: UploadSession): Promise<void>;
  getUpload(id: string): Promise<UploadSession | undefined>;
  deleteUpload(id: string): Promise<void>;
  /** Upload sessions created before `before` (ms since epoch). */
  staleUploads(before: number): Promise<UploadSession[]>;

  // --- Browsing (api/): read-only queries, and pull times recorded in batches ---
  /**
   * Names of every repository whose name contains `search`, in the order asked; ties by name, and
   * never pushed or pulled last either way. Only names: callers filter by rights, then page.
   */
  repositoryNames(options: { search?: string; sort: RepositorySort; descending: boolean }): Promise<string[]>;
  /** Tag counts, times and sizes of the named repositories, in the same order (absent ones are left out). */
  repositoryOverviews(repositories: readonly string[]): Promise<RepositoryOverview[]>;
  /** One page of a repository's tags with their manifests; undefined when the repository does not exist. */
  tagOverviews(
    repository: string,
    options: { sort: TagSort; descending: boolean; offset: number; limit: number },
  ): Promise<{ items: TagOverview[]; total: number } | undefined>;
  /** A manifest by digest with its push and pull times. */
  manifestOverview(repository: string, digest: Digest): Promise<ManifestOverview | undefined>;
  /** Manifests of `repository` by digest (an index's children); absent ones are left out. */
  manifestsByDigest(repository: string, digests: readonly Digest[]): Promise<Map<Digest, StoredManifest>>;
  /** How many referrers each subject has, by artifact type ("" when a referrer has none). */
  referrerCounts(repository: string, subjects: readonly Digest[]): Promise<Map<Digest, Record<string, number>>>;
  /** Stores the latest pull time of each repository, manifest and tag in `pulls`, in one transaction. */
  recordPulls(pulls: readonly PullRecord[]): Promise<void>;

  ping(): Promise<void>;
  close(): Promise<void>;
}
