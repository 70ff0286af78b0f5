import type { BlobStore } from "@minato/storage";
import type { Logger } from "../logger.js";
import type { MetadataStore } from "../metadata/store.js";
import { isUploadBusy } from "../routes/uploads.js";

export interface UploadTtl {
  /** A session that received no request for this long is cancelled. */
  idleTtlMs: number;
  /** A session that began this long ago is cancelled however active. */
  ttlMs: number;
}

/**
 * Cancels upload sessions that received no request for `idleTtlMs`, or began more than `ttlMs` ago
 * (distribution-spec: servers SHOULD time out unfinished uploads). A session a request of this
 * process is writing to is kept: it is active.
 */
export async function expireUploads(
  deps: { metadata: MetadataStore; storage: BlobStore; logger: Logger },
  ttl: UploadTtl,
  now = Date.now(),
): Promise<number> {
  const stale = (await deps.metadata.staleUploads(now - ttl.idleTtlMs, now - ttl.ttlMs)).filter((s) => !isUploadBusy(s.id));
  for (const session of stale) {
    try {
      // Also aborts the session's S3 multipart upload; a failure keeps it for the next round.
      await deps.storage.abort(session.id);
    } catch (error) {
      deps.logger.warn({ err: error, upload: session.id }, "could not expire upload session");
      continue;
    }
    await deps.metadata.deleteUpload(session.id);
  }
  if (stale.length > 0) deps.logger.info({ count: stale.length }, "expired idle or abandoned upload sessions");
  return stale.length;
}
