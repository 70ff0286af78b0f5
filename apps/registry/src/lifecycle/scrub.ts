import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { type Digest, parseDigest } from "@minato/oci";
import { BlobNotFoundError, type BlobStore } from "@minato/storage";
import type { MetadataStore } from "../metadata/store.js";

export interface ScrubReport {
  checked: number;
  corrupt: { digest: Digest; actual: string; quarantinedTo?: string }[];
  /** Blobs the metadata lists that storage lacks. */
  missing: Digest[];
}

const PAGE = 500;

/**
 * Re-hashes every blob the metadata lists. With `quarantineDir`, a corrupt blob's bytes are moved
 * there (named by its digest) and out of storage, and a corrupt or missing blob is unlinked from every
 * repository: it becomes unknown, so the next push uploads it again and repairs the images using it.
 */
export async function scrubBlobs(metadata: MetadataStore, storage: BlobStore, quarantineDir?: string): Promise<ScrubReport> {
  const report: ScrubReport = { checked: 0, corrupt: [], missing: [] };
  let after: Digest | undefined;
  for (;;) {
    const page = await metadata.listBlobs(PAGE, after);
    for (const blob of page) {
      report.checked++;
      const actual = await hashStored(storage, blob.digest);
      if (actual === undefined) {
        report.missing.push(blob.digest);
        if (quarantineDir) await metadata.unlinkEverywhere(blob.digest);
      } else if (actual !== blob.digest) {
        const entry: ScrubReport["corrupt"][number] = { digest: blob.digest, actual };
        if (quarantineDir) {
          entry.quarantinedTo = join(quarantineDir, blob.digest.replace(":", "-"));
          await pipeline(await storage.read(blob.digest), createWriteStream(entry.quarantinedTo));
          await metadata.unlinkEverywhere(blob.digest);
          await storage.delete(blob.digest);
        }
        report.corrupt.push(entry);
      }
    }
    if (page.length < PAGE) return report;
    after = page.at(-1)?.digest;
  }
}

/** The digest of what storage holds at `digest`'s address (same algorithm), or undefined when absent. */
async function hashStored(storage: BlobStore, digest: Digest): Promise<string | undefined> {
  const { algorithm } = parseDigest(digest);
  const hash = createHash(algorithm);
  try {
    const stream = await storage.read(digest);
    for await (const chunk of stream) hash.update(chunk as Buffer);
  } catch (error) {
    if (error instanceof BlobNotFoundError) return undefined;
    throw error;
  }
  return `${algorithm}:${hash.digest("hex")}`;
}
