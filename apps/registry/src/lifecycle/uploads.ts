import type { BlobStore } from "@minato/storage";
import type { Logger } from "../logger.js";
import type { MetadataStore } from "../metadata/store.js";

/** Cancels upload sessions older than the TTL (distribution-spec: servers SHOULD time out unfinished uploads). */
export async function expireUploads(deps: { metadata: MetadataStore; storage: BlobStore; logger: Logger }, ttlMs: number): Promise<number> {
  const stale = await deps.metadata.staleUploads(Date.now() - ttlMs);
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
  if (stale.length > 0) deps.logger.info({ count: stale.length }, "expired abandoned upload sessions");
  return stale.length;
}
