import type { Descriptor, Digest, ManifestSummary } from "@minato/oci";
import type { StorageStats } from "../metrics.js";
import type { OutboxEvent } from "../notifications/events.js";

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
  /** The client address that opened it ("" for sessions older than this column). */
  client: string;
  createdAt: number;
  /** Last request on the session (ms since epoch). */
  updatedAt: number;
}

/** Open sessions allowed per repository and per client address. */
export interface UploadLimits {
  perRepository: number;
  perClient: number;
}

/** References a manifest makes that the repository does not hold. */
export interface MissingReference {
  digest: Digest;
  kind: "blob" | "manifest";
}

/** Tag rules the store enforces inside its transactions. */
export interface TagRules {
  /** Names the rule that makes `tag` immutable, or undefined. */
  immutable?(tag: string): string | undefined;
}

/** A manifest PUT or delete that would move or remove an immutable tag. */
export class ImmutableTagError extends Error {
  constructor(
    readonly tag: string,
    readonly rule: string,
  ) {
    super(`tag ${JSON.stringify(tag)} is immutable (rule ${rule})`);
  }
}

/** A quota the store checks when it links a blob: the distinct blobs of the scope, each counted once. */
export interface QuotaLimit {
  label: string;
  bytes: number;
  /** Whether a repository belongs to the scope. */
  covers(repository: string): boolean;
}

export class QuotaExceededError extends Error {
  constructor(
    readonly rule: string,
    readonly quota: number,
    readonly used: number,
    readonly size: number,
  ) {
    super(`quota exceeded: rule ${rule} allows ${quota} bytes, ${used} are used and this blob needs ${size}`);
  }
}

export interface TagDetail {
  tag: string;
  digest: Digest;
  /** When the tag was last pointed at its manifest (ms since epoch). */
  pushedAt: number;
  /** When its manifest was last pulled, if ever tracked. */
  pulledAt?: number;
}

export interface BlobRecord {
  digest: Digest;
  size: number;
}

export interface SweepRequest {
  now: number;
  dryRun: boolean;
  /** Blob links created before this, which no manifest of their repository references, are dropped. */
  linkCutoff: number;
  /** Untagged manifests created before this are garbage (unless kept as below); undefined: none. */
  untaggedCutoff?: number;
  /** Per repository, overriding untaggedCutoff (retention policies' delete-untagged-after). */
  untaggedCutoffs?: Record<string, number>;
  /** Tags to delete (retention), each only if it still points where it did when chosen. */
  tagDeletions?: TagDeletion[];
  /** Write reservations older than this are abandoned (their writer died). */
  writeCutoff: number;
  /** At most this many blobs are marked per call (ignored by a dry run, which reports all). */
  markLimit: number;
}

export interface TagDeletion {
  repository: string;
  tag: string;
  digest: Digest;
  pushedAt: number;
}

export interface SweepResult {
  tags: { repository: string; tag: string }[];
  manifests: { repository: string; digest: Digest; size: number }[];
  links: { repository: string; digest: Digest }[];
  repositories: string[];
  /** Blobs now marked as being deleted: their bytes are to be removed from storage. */
  blobs: BlobRecord[];
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
  /** A verified blob linked in at least one repository, with its size (an automatic cross-mount's source). */
  storedBlob(digest: Digest): Promise<{ size: number } | undefined>;
  /**
   * Records a verified blob and makes it readable in `repository` (a new link, or a refreshed one: its
   * grace period starts again), releasing the write reservation `writer` took. False, and nothing
   * written, when the collector is deleting the blob. Throws {@link QuotaExceededError}, nothing
   * written, when the link would take a quota scope past its limit (checked in the transaction, so
   * concurrent pushes cannot overshoot together).
   */
  linkBlob(
    repository: string,
    digest: Digest,
    size: number,
    writer?: string,
    quotas?: QuotaLimit[],
    events?: readonly OutboxEvent[],
  ): Promise<boolean>;
  /**
   * Reserves `digest` for an upload about to commit its bytes to storage, so the collector leaves the
   * blob alone until {@link linkBlob} (or {@link releaseBlobWrite}). False when the collector is deleting
   * the blob right now: the caller waits for it to finish, then writes the bytes anew.
   */
  reserveBlobWrite(digest: Digest, writer: string): Promise<boolean>;
  releaseBlobWrite(digest: Digest, writer: string): Promise<void>;
  /** Makes a blob no longer readable in `repository`; false when it was not linked. */
  unlinkBlob(repository: string, digest: Digest, events?: readonly OutboxEvent[]): Promise<boolean>;

  repositoryExists(repository: string): Promise<boolean>;
  /** Repositories holding at least one manifest, in ASCII order after `after`. */
  listRepositories(limit: number, after?: string): Promise<Page<string>>;

  /**
   * Stores a manifest and points `tags` at it, atomically. When a referenced blob or child manifest
   * is not in the repository nothing is written and the missing references are returned.
   */
  putManifest(
    repository: string,
    manifest: ManifestToStore,
    tags: string[],
    rules?: TagRules,
    events?: readonly OutboxEvent[],
  ): Promise<MissingReference[]>;
  /** By tag or by digest. */
  getManifest(repository: string, reference: string): Promise<StoredManifest | undefined>;
  /** Deletes a manifest and every tag pointing at it; false when absent. */
  deleteManifest(repository: string, digest: Digest, rules?: TagRules, events?: readonly OutboxEvent[]): Promise<boolean>;
  deleteTag(repository: string, tag: string, rules?: TagRules, events?: readonly OutboxEvent[]): Promise<boolean>;
  /** Notification events not tied to a write (pulls), in one transaction. */
  recordEvents(events: readonly OutboxEvent[]): Promise<void>;
  /** Every tag of `repository` with when it was pushed and when its manifest was last pulled. */
  tagDetails(repository: string): Promise<TagDetail[]>;
  /** Tags in ASCII order after `after`; undefined when the repository does not exist. */
  listTags(repository: string, limit: number, after?: string): Promise<Page<string> | undefined>;
  /** Manifests in `repository` whose subject is `subject`, optionally of one artifact type. */
  listReferrers(repository: string, subject: Digest, artifactType?: string): Promise<Descriptor[]>;

  /** Records a session unless its repository or client is at its limit; then says which, and records nothing. */
  createUpload(session: UploadSession, limits: UploadLimits): Promise<"repository" | "client" | undefined>;
  getUpload(id: string): Promise<UploadSession | undefined>;
  /** Notes activity on a session at `at` (ms since epoch). */
  touchUpload(id: string, at: number): Promise<void>;
  deleteUpload(id: string): Promise<void>;
  /** Sessions last active before `idleBefore` or created before `createdBefore` (ms since epoch). */
  staleUploads(idleBefore: number, createdBefore?: number): Promise<UploadSession[]>;

  /**
   * One step of garbage collection, in one transaction (see lifecycle/collector.ts): deletes the tags
   * and manifests the request names as garbage, unlinks stale blob links, forgets empty repositories,
   * and marks unreferenced blobs as being deleted (they are then invisible and cannot be linked or
   * reserved) until {@link forgetBlob}. A dry run computes the same and writes nothing.
   */
  sweep(request: SweepRequest): Promise<SweepResult>;
  /**
   * Of blobs found in storage, those the metadata knows nothing of (no row, no write reservation):
   * marks them as being deleted, like garbage, so no upload can write them until they are gone. A dry
   * run only reports them.
   */
  claimOrphans(blobs: BlobRecord[], now: number, dryRun: boolean): Promise<BlobRecord[]>;
  /** Blobs marked as being deleted (by this or an earlier, interrupted, collection). */
  blobsBeingDeleted(limit: number): Promise<BlobRecord[]>;
  /** Drops blobs marked as being deleted, once their bytes are gone from storage (one transaction). */
  forgetBlobs(digests: Digest[]): Promise<void>;
  /** Every blob known (not being deleted), in digest order after `after`. */
  listBlobs(limit: number, after?: Digest): Promise<BlobRecord[]>;
  /** Makes a blob unreadable everywhere (its links go) so that clients upload it again; manifests stay. */
  unlinkEverywhere(digest: Digest): Promise<number>;
  /** Bytes of the distinct blobs linked in these repositories (a blob shared by several counts once). */
  blobUsage(repositories: string[]): Promise<number>;
  /** Whether `digest` is linked in any of these repositories. */
  linkedInAny(repositories: string[], digest: Digest): Promise<boolean>;

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

  /** Blob bytes and count, in total and (when asked) per repository, for the metrics scrape. */
  storageStats(perRepository: boolean): Promise<StorageStats>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
