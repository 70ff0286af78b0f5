import type { Readable } from "node:stream";
import type { Digest } from "@minato/oci";

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobStat {
  size: number;
}

/** A committed blob as a listing sees it. */
export interface StoredBlob {
  digest: Digest;
  size: number;
  /** When it was written (ms since epoch). */
  modifiedAt: number;
}

export interface CommitResult {
  digest: Digest;
  size: number;
}

/**
 * Content-addressed blob storage with resumable upload sessions.
 *
 * The contract is shaped so object stores fit it as well as filesystems: blobs are streamed in and
 * out (never held whole in memory), an upload becomes visible at its content address only after its
 * digest was verified, and nothing relies on rename being cheap — `commit` is the one place a driver
 * moves data, and it may copy.
 */
export interface BlobStore {
  /** Size of a committed blob, or undefined when it is not stored. */
  stat(digest: Digest): Promise<BlobStat | undefined>;
  /** Streams a committed blob, or the inclusive `range` of it. Throws {@link BlobNotFoundError}. */
  read(digest: Digest, range?: ByteRange): Promise<Readable>;
  /** Removes a committed blob; false when it was not stored. */
  delete(digest: Digest): Promise<boolean>;
  /** Every committed blob, in no particular order (for garbage collection and scrub). */
  list(): AsyncIterable<StoredBlob>;

  /** Starts an empty upload session. `id` is chosen by the caller and is a UUID. */
  createUpload(id: string): Promise<void>;
  /** Bytes received so far, or undefined when the session does not exist. Survives restarts. */
  uploadSize(id: string): Promise<number | undefined>;
  /**
   * Appends `body` at `offset`, which must equal the current size (else {@link UploadOffsetError}).
   * Bytes that arrived before the body failed stay appended, so a client can resume after asking
   * for the size. `maxBytes` bounds the append (else {@link UploadTooLargeError}).
   */
  append(id: string, offset: number, body: Readable, maxBytes?: number): Promise<number>;
  /**
   * Verifies the session's bytes against `digest` and makes them readable at that address.
   * Throws {@link DigestMismatchError} (the session is left as it was) or {@link UploadNotFoundError}.
   */
  commit(id: string, digest: Digest): Promise<CommitResult>;
  /** Discards a session and everything it received. */
  abort(id: string): Promise<void>;
  /** Upload sessions last touched before `olderThan` (ms since epoch), for cleanup. */
  staleUploads(olderThan: number): Promise<string[]>;
  /** Whether the backend answers (for readiness probes). */
  healthy(): Promise<boolean>;
  /**
   * Optional: a short-lived URL a client may fetch the committed blob from directly (an object
   * store's presigned GET, which also honours Range), or undefined to serve it through the registry.
   */
  redirectUrl?(digest: Digest): Promise<string | undefined>;
  /** Optional: releases what the store holds open (an object store's connections); it is unusable after. */
  destroy?(): void;
}

export class StorageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
export class BlobNotFoundError extends StorageError {}
export class UploadNotFoundError extends StorageError {}
export class UploadOffsetError extends StorageError {
  constructor(readonly expected: number) {
    super(`upload offset must be ${expected}`);
  }
}
export class UploadTooLargeError extends StorageError {}
export class DigestMismatchError extends StorageError {
  constructor(
    readonly expected: Digest,
    readonly actual: Digest,
  ) {
    super(`content digest ${actual} does not match ${expected}`);
  }
}

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Upload ids reach drivers from URLs; only canonical UUIDs are ever names of anything. */
export function assertUploadId(id: string): void {
  if (!UPLOAD_ID.test(id)) throw new UploadNotFoundError(`unknown upload ${JSON.stringify(id.slice(0, 64))}`);
}
