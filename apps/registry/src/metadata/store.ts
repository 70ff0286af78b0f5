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
  /** Records a verified blob and makes it readable in `repository`. */
  linkBlob(repository: string, digest: Digest, size: number): Promise<void>;
  /** Makes a blob no longer readable in `repository`; false when it was not linked. */
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>;

  repositoryExists(repository: string): Promise<boolean>;
  /** Repositories holding at least one manifest, in ASCII order after `after`. */
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

  /** Records a session unless its repository or client is at its limit; then says which, and records nothing. */
  createUpload(session: UploadSession, limits: UploadLimits): Promise<"repository" | "client" | undefined>;
  getUpload(id: string): Promise<UploadSession | undefined>;
  /** Notes activity on a session at `at` (ms since epoch). */
  touchUpload(id: string, at: number): Promise<void>;
  deleteUpload(id: string): Promise<void>;
  /** Sessions last active before `idleBefore` or created before `createdBefore` (ms since epoch). */
  staleUploads(idleBefore: number, createdBefore?: number): Promise<UploadSession[]>;

  ping(): Promise<void>;
  close(): Promise<void>;
}
