import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { type Digest, isValidRepositoryName } from "@minato/oci";
import { assertUploadId, DigestMismatchError, UploadNotFoundError, UploadOffsetError, UploadTooLargeError } from "@minato/storage";
import { clientAddress } from "../auth/request.js";
import { RegistryError } from "../errors.js";
import { type Ctx, hasBody, type RegistryDeps, requireDigest } from "../http.js";
import { quotasFor } from "../lifecycle/policy.js";
import { enforceQuota, quotaDenied, quotaLimits } from "../lifecycle/quota.js";
import { QuotaExceededError, type UploadSession } from "../metadata/store.js";
import { BLOB_MEDIA_TYPE, eventsFor } from "../notifications/index.js";

const CONTENT_RANGE = /^(\d+)-(\d+)$/;

/** One request at a time may write to a session; a second concurrent writer would interleave bytes. */
const busy = new Set<string>();

function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

function blobLocation(name: string, digest: Digest): string {
  return `/v2/${name}/blobs/${digest}`;
}

/** `Range: 0-<last byte>` as Distribution sends it (0-0 for an empty session). */
function rangeHeader(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}

function sessionHeaders(name: string, id: string, size: number): Record<string, string> {
  return { Location: uploadLocation(name, id), Range: rangeHeader(size), "Docker-Upload-UUID": id, "Content-Length": "0" };
}

async function findSession(deps: RegistryDeps, name: string, id: string): Promise<UploadSession> {
  try {
    assertUploadId(id);
  } catch {
    throw new RegistryError(404, "BLOB_UPLOAD_UNKNOWN", { id: id.slice(0, 64) });
  }
  const session = await deps.metadata.getUpload(id);
  if (!session || session.repository !== name) throw new RegistryError(404, "BLOB_UPLOAD_UNKNOWN", { id });
  return session;
}

/**
 * Runs a request that writes to a session. The session counts as active from its start to its end
 * (a long streaming PATCH is never idle-expired midway: the janitor skips busy sessions).
 */
async function withSession<T>(deps: RegistryDeps, id: string, work: () => Promise<T>): Promise<T> {
  if (busy.has(id)) throw new RegistryError(416, "BLOB_UPLOAD_INVALID", { id }, "another request is writing to this upload");
  busy.add(id);
  try {
    await deps.metadata.touchUpload(id, Date.now());
    return await work();
  } finally {
    busy.delete(id);
    await deps.metadata.touchUpload(id, Date.now());
  }
}

/** Whether a request of this process is writing to the session now. */
export function isUploadBusy(id: string): boolean {
  return busy.has(id);
}

/**
 * Appends the request body to a session. With `Content-Range` the chunk must start at the current
 * offset (416 otherwise) and its length must match `Content-Length`; without it the body is streamed
 * onto the end, as Docker's streaming upload does.
 */
async function appendBody(c: Ctx, deps: RegistryDeps, name: string, id: string): Promise<number> {
  const incoming: IncomingMessage = c.env.incoming;
  const size = await deps.storage.uploadSize(id);
  if (size === undefined) throw new RegistryError(404, "BLOB_UPLOAD_UNKNOWN", { id });
  let offset = size;
  let maxBytes: number | undefined;
  const contentRange = c.req.header("content-range");
  if (contentRange !== undefined) {
    const match = CONTENT_RANGE.exec(contentRange.trim().replace(/^bytes[ =]/, ""));
    if (!match) throw new RegistryError(400, "BLOB_UPLOAD_INVALID", { contentRange }, "malformed Content-Range");
    const start = Number(match[1]);
    const end = Number(match[2]);
    if (start !== size || end < start) {
      throw new RegistryError(416, "BLOB_UPLOAD_INVALID", { expectedStart: size }, "chunk out of order", sessionHeaders(name, id, size));
    }
    maxBytes = end - start + 1;
    const length = incoming.headers["content-length"];
    if (length !== undefined && Number(length) !== maxBytes) {
      throw new RegistryError(400, "SIZE_INVALID", { contentRange, contentLength: length }, "Content-Length does not match Content-Range");
    }
    offset = start;
  }
  try {
    const newSize = await deps.storage.append(id, offset, incoming, maxBytes);
    // A chunked body has no Content-Length for the request observer to count: counted here.
    if (incoming.headers["content-length"] === undefined) deps.metrics.receivedBytes.inc({ kind: "upload" }, newSize - offset);
    return newSize;
  } catch (error) {
    if (error instanceof UploadOffsetError) {
      throw new RegistryError(
        416,
        "BLOB_UPLOAD_INVALID",
        { expectedStart: error.expected },
        "chunk out of order",
        sessionHeaders(name, id, error.expected),
      );
    }
    if (error instanceof UploadTooLargeError)
      throw new RegistryError(400, "SIZE_INVALID", undefined, "chunk longer than its Content-Range");
    if (error instanceof UploadNotFoundError) throw new RegistryError(404, "BLOB_UPLOAD_UNKNOWN", { id });
    throw error;
  }
}

/** Verifies and publishes a session's bytes; a digest mismatch discards the session (nothing is stored). */
async function complete(c: Ctx, deps: RegistryDeps, name: string, id: string, digest: Digest): Promise<Response> {
  // The final PUT is where a quota is enforced at the latest: the size is known, nothing is stored yet.
  if (deps.policy && quotasFor(deps.policy, name).length > 0) {
    await enforceQuota(deps.metadata, deps.policy, name, digest, (await deps.storage.uploadSize(id)) ?? 0);
  }
  await reserveBlobWrite(deps, digest, id);
  let size: number;
  try {
    ({ size } = await deps.storage.commit(id, digest));
  } catch (error) {
    await deps.metadata.releaseBlobWrite(digest, id);
    if (error instanceof DigestMismatchError) {
      await discard(deps, id);
      throw new RegistryError(400, "DIGEST_INVALID", { expected: error.expected, actual: error.actual });
    }
    throw error;
  }
  let linked: boolean;
  try {
    const events = eventsFor(c, deps, "push", "blobs", { mediaType: BLOB_MEDIA_TYPE, size, digest, repository: name });
    linked = await deps.metadata.linkBlob(name, digest, size, id, quotaLimits(deps.policy, name), events);
  } catch (error) {
    if (!(error instanceof QuotaExceededError)) throw error;
    // A concurrent push took the quota first. The committed bytes, never linked, are collected as orphans.
    await deps.metadata.releaseBlobWrite(digest, id);
    await deps.metadata.deleteUpload(id);
    throw quotaDenied(error);
  }
  // Cannot be refused: the reservation kept the collector from marking the blob.
  if (!linked) throw new Error(`blob ${digest} was collected while reserved`);
  deps.notifications?.written();
  await deps.metadata.deleteUpload(id);
  return c.body(null, 201, { Location: blobLocation(name, digest), "Docker-Content-Digest": digest, "Content-Length": "0" });
}

async function linkMounted(c: Ctx, deps: RegistryDeps, name: string, digest: Digest, source: MountSource): Promise<boolean> {
  const { size, repository: fromRepository } = source;
  const target = { mediaType: BLOB_MEDIA_TYPE, size, digest, repository: name, ...(fromRepository ? { fromRepository } : {}) };
  try {
    const linked = await deps.metadata.linkBlob(
      name,
      digest,
      size,
      undefined,
      quotaLimits(deps.policy, name),
      eventsFor(c, deps, "mount", "blobs", target),
    );
    if (linked) deps.notifications?.written();
    return linked;
  } catch (error) {
    throw error instanceof QuotaExceededError ? quotaDenied(error) : error;
  }
}

/** How long an upload waits for the collector to finish deleting the same blob before giving up. */
const COLLECTION_WAIT_MS = 30_000;

/**
 * Reserves the digest so the collector leaves the blob alone while its bytes are committed. When the
 * collector is deleting that very blob, waits for the deletion to finish (then the bytes are written
 * anew); after COLLECTION_WAIT_MS the client is told to retry, its session intact.
 */
async function reserveBlobWrite(deps: RegistryDeps, digest: Digest, id: string): Promise<void> {
  const deadline = Date.now() + COLLECTION_WAIT_MS;
  while (!(await deps.metadata.reserveBlobWrite(digest, id))) {
    if (Date.now() > deadline) {
      throw new RegistryError(503, "BLOB_UPLOAD_INVALID", { digest }, "blob is being garbage-collected; retry the upload", {
        "Retry-After": "1",
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function discard(deps: RegistryDeps, id: string): Promise<void> {
  await deps.storage.abort(id);
  await deps.metadata.deleteUpload(id);
}

/**
 * A new session, unless the repository or the client already holds its limit of open ones (each one
 * costs storage and, on S3, a multipart upload): then 429 TOOMANYREQUESTS, nothing created.
 */
async function openSession(c: Ctx, deps: RegistryDeps, name: string): Promise<string> {
  const id = randomUUID();
  const now = Date.now();
  const client = clientAddress(c, deps.options.trustProxy);
  const limits = deps.options.uploadLimits;
  const full = await deps.metadata.createUpload({ id, repository: name, client, createdAt: now, updatedAt: now }, limits);
  if (full) {
    const limit = full === "repository" ? limits.perRepository : limits.perClient;
    const whose = full === "repository" ? `repository ${name}` : "this client address";
    throw new RegistryError(
      429,
      "TOOMANYREQUESTS",
      { limit, per: full },
      `too many open upload sessions for ${whose} (limit ${limit}): finish or cancel some (DELETE their Location), or wait for idle ones to expire`,
      { "Retry-After": "60" },
    );
  }
  try {
    await deps.storage.createUpload(id);
  } catch (error) {
    await deps.metadata.deleteUpload(id);
    throw error;
  }
  return id;
}

/** `?mount=&from=`: with authentication, mounting needs pull on `from`; without it the blob is not revealed. */
/** Where a mounted blob comes from (its repository, when known, for the mount event). */
type MountSource = { size: number; repository?: string };

async function explicitMountSource(c: Ctx, deps: RegistryDeps, from: string, digest: Digest): Promise<MountSource | undefined> {
  if (!isValidRepositoryName(from) || !(deps.auth?.permits(c, from, "pull") ?? true)) return undefined;
  const blob = await deps.metadata.linkedBlob(from, digest);
  return blob && { size: blob.size, repository: from };
}

/**
 * `?mount=` without `from` (distribution-spec "Mounting a blob": the registry MAY mount from any
 * repository it chooses). With token authentication only repositories the token grants pull on are
 * looked at, so a mount never reveals a blob the caller could not read; without authentication, any.
 */
async function automaticMountSource(c: Ctx, deps: RegistryDeps, digest: Digest): Promise<MountSource | undefined> {
  if (!deps.auth) return deps.metadata.storedBlob(digest);
  for (const repository of deps.auth.pullableRepositories(c)) {
    const blob = await deps.metadata.linkedBlob(repository, digest);
    if (blob) return { size: blob.size, repository };
  }
  return undefined;
}

/** POST /v2/<name>/blobs/uploads/ — a session, a single-request upload, or a cross-repository mount. */
export async function startUpload(c: Ctx, deps: RegistryDeps, name: string): Promise<Response> {
  const mount = c.req.query("mount");
  if (mount !== undefined) {
    const digest = requireDigest(mount);
    const from = c.req.query("from");
    const source = from === undefined ? await automaticMountSource(c, deps, digest) : await explicitMountSource(c, deps, from, digest);
    // Refused when the collector started deleting the blob meanwhile: then it is uploaded instead.
    if (source && (await linkMounted(c, deps, name, digest, source))) {
      return c.body(null, 201, { Location: blobLocation(name, digest), "Docker-Content-Digest": digest, "Content-Length": "0" });
    }
    // Not mountable: fall back to a fresh session (distribution-spec "Mounting a blob": 202).
  }

  const algorithm = c.req.query("digest-algorithm");
  if (algorithm !== undefined && algorithm !== "sha256" && algorithm !== "sha512") {
    throw new RegistryError(400, "DIGEST_INVALID", { algorithm }, "unsupported digest algorithm");
  }

  const digestParam = c.req.query("digest");
  if (digestParam !== undefined) {
    const digest = requireDigest(digestParam);
    // A quota refuses before the client sends the bytes when it announces their length.
    const length = c.req.header("content-length");
    if (length !== undefined && /^\d+$/.test(length)) await enforceQuota(deps.metadata, deps.policy, name, digest, Number(length));
    const id = await openSession(c, deps, name);
    try {
      await appendBody(c, deps, name, id);
      return await complete(c, deps, name, id, digest);
    } catch (error) {
      await discard(deps, id);
      throw error;
    }
  }

  const id = await openSession(c, deps, name);
  return c.body(null, 202, sessionHeaders(name, id, 0));
}

/** PATCH <location> — one chunk, or a stream. */
export async function patchUpload(c: Ctx, deps: RegistryDeps, name: string, id: string): Promise<Response> {
  await findSession(deps, name, id);
  return withSession(deps, id, async () => {
    const size = await appendBody(c, deps, name, id);
    return c.body(null, 202, sessionHeaders(name, id, size));
  });
}

/** PUT <location>?digest= — optional last chunk, then verify and publish. */
export async function finishUpload(c: Ctx, deps: RegistryDeps, name: string, id: string): Promise<Response> {
  const digest = requireDigest(c.req.query("digest"));
  await findSession(deps, name, id);
  return withSession(deps, id, async () => {
    if (hasBody(c.env.incoming)) await appendBody(c, deps, name, id);
    return complete(c, deps, name, id, digest);
  });
}

/** GET <location> — where to resume. */
export async function uploadStatus(c: Ctx, deps: RegistryDeps, name: string, id: string): Promise<Response> {
  await findSession(deps, name, id);
  const size = await deps.storage.uploadSize(id);
  if (size === undefined) throw new RegistryError(404, "BLOB_UPLOAD_UNKNOWN", { id });
  return c.body(null, 204, sessionHeaders(name, id, size));
}

/** DELETE <location> — cancel. */
export async function cancelUpload(c: Ctx, deps: RegistryDeps, name: string, id: string): Promise<Response> {
  await findSession(deps, name, id);
  return withSession(deps, id, async () => {
    await discard(deps, id);
    return c.body(null, 204);
  });
}
