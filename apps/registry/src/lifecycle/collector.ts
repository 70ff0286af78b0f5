import type { BlobStore } from "@minato/storage";
import type { AuditLog } from "../audit.js";
import type { Logger } from "../logger.js";
import type { BlobRecord, MetadataStore, SweepResult, TagDeletion } from "../metadata/store.js";
import type { RegistryMetrics } from "../metrics.js";
import { expiredTags, type Policy, retentionFor, tagRules } from "./policy.js";
import { expireUploads, type UploadTtl } from "./uploads.js";

/**
 * Online garbage collection. Every reference lives in the metadata database, so what is garbage is
 * decided exactly, in a transaction (MetadataStore.sweep), while pushes go on:
 *
 * 1. The sweep deletes garbage manifests and tags, drops blob links older than the grace period that
 *    no manifest of their repository references, and marks blobs that nothing links or references as
 *    *being deleted*. From then on the blob is invisible (HEAD/GET 404, so a client uploads it again),
 *    a manifest PUT naming it fails with MANIFEST_BLOB_UNKNOWN (its link is gone), a mount falls back
 *    to an upload, and an upload committing the same bytes waits for the deletion to finish.
 * 2. The bytes are deleted from storage, then the blob's row. An upload that commits the same digest
 *    first reserves it (MetadataStore.reserveBlobWrite), which the sweep respects, so bytes a push is
 *    about to reference are never deleted under it.
 *
 * A crash between 1 and 2 leaves the blob marked; the next collection (in any process) finishes it.
 */
export interface CollectOptions {
  /** Blobs uploaded or mounted, and manifests pushed, within this window are kept (ms). */
  graceMs: number;
  /** Also delete manifests that no tag, index or live subject keeps. */
  deleteUntagged: boolean;
  /** Report what would be removed; change nothing. */
  dryRun: boolean;
  /** Retention rules (immutable tags are never deleted). */
  policy: Policy;
  /** Also cancel upload sessions idle or open this long. */
  uploadTtl?: UploadTtl;
}

export interface CollectReport extends SweepResult {
  dryRun: boolean;
  /** Bytes deleted from storage (would be, in a dry run). */
  bytesFreed: number;
  /** Upload sessions expired. */
  uploads: number;
}

export interface CollectorDeps {
  metadata: MetadataStore;
  storage: BlobStore;
  logger: Logger;
  /** The serving registry's metrics (background passes); absent for the command-line collector. */
  metrics?: RegistryMetrics;
  /** The audit trail: what the collector removed. */
  audit?: AuditLog;
}

/** Blobs marked per transaction: a small batch keeps each write lock short and deletions prompt. */
const MARK_BATCH = 256;
const DELETE_CONCURRENCY = 8;
/** A write reservation this old belongs to a process that died mid-upload. */
const WRITE_RESERVATION_TTL_MS = 3_600_000;
const FIRST_PASS_DELAY_MS = 5_000;

export async function collectGarbage(deps: CollectorDeps, options: CollectOptions): Promise<CollectReport> {
  const now = Date.now();
  const report: CollectReport = {
    dryRun: options.dryRun,
    tags: [],
    manifests: [],
    links: [],
    repositories: [],
    blobs: [],
    bytesFreed: 0,
    uploads: 0,
  };
  // Deletions an earlier collection started but did not finish (it crashed, or storage failed).
  if (options.dryRun) report.blobs.push(...(await deps.metadata.blobsBeingDeleted(Number.MAX_SAFE_INTEGER)));
  else await finishDeletions(deps, report);
  if (options.uploadTtl !== undefined && !options.dryRun) report.uploads = await expireUploads(deps, options.uploadTtl);

  const retention = await planRetention(deps.metadata, options.policy, now, options.graceMs);
  let tagDeletions: TagDeletion[] = retention.tagDeletions;
  for (;;) {
    const result = await deps.metadata.sweep({
      now: Date.now(),
      dryRun: options.dryRun,
      linkCutoff: now - options.graceMs,
      ...(options.deleteUntagged ? { untaggedCutoff: now - options.graceMs } : {}),
      untaggedCutoffs: retention.untaggedCutoffs,
      tagDeletions,
      writeCutoff: now - WRITE_RESERVATION_TTL_MS,
      markLimit: MARK_BATCH,
    });
    tagDeletions = [];
    report.tags.push(...result.tags);
    report.manifests.push(...result.manifests);
    report.links.push(...result.links);
    report.repositories.push(...result.repositories);
    if (options.dryRun) {
      report.blobs.push(...result.blobs);
      break;
    }
    await deleteBlobs(deps, result.blobs, report);
    if (result.blobs.length < MARK_BATCH) break;
  }
  await collectOrphans(deps, options, now, report);
  if (options.dryRun) report.bytesFreed = report.blobs.reduce((sum, b) => sum + b.size, 0);
  return report;
}

/**
 * Bytes in storage that the metadata knows nothing of (written by a process that died before
 * recording them, or by an older version), older than the grace period: claimed in the database like
 * garbage, then deleted.
 */
async function collectOrphans(deps: CollectorDeps, options: CollectOptions, now: number, report: CollectReport): Promise<void> {
  let batch: BlobRecord[] = [];
  const flush = async () => {
    const orphans = await deps.metadata.claimOrphans(batch, Date.now(), options.dryRun);
    batch = [];
    if (options.dryRun) report.blobs.push(...orphans);
    else await deleteBlobs(deps, orphans, report);
  };
  for await (const stored of deps.storage.list()) {
    if (stored.modifiedAt >= now - options.graceMs) continue;
    batch.push({ digest: stored.digest, size: stored.size });
    if (batch.length === MARK_BATCH) await flush();
  }
  if (batch.length > 0) await flush();
}

async function finishDeletions(deps: CollectorDeps, report: CollectReport): Promise<void> {
  const seen = new Set<string>();
  for (;;) {
    const pending = (await deps.metadata.blobsBeingDeleted(MARK_BATCH)).filter((b) => !seen.has(b.digest));
    if (pending.length === 0) return;
    for (const blob of pending) seen.add(blob.digest);
    await deleteBlobs(deps, pending, report);
  }
}

/**
 * Deletes marked blobs from storage, then their rows in one transaction (few write locks: pushes
 * beside the collector wait less); a storage failure leaves that blob marked for the next run.
 */
async function deleteBlobs(deps: CollectorDeps, blobs: BlobRecord[], report: CollectReport): Promise<void> {
  const deleted: BlobRecord[] = [];
  let next = 0;
  const worker = async () => {
    while (next < blobs.length) {
      const blob = blobs[next++] as BlobRecord;
      try {
        // A tombstone of an abandoned upload has no recorded size: whatever storage holds is freed.
        const size = blob.size > 0 ? blob.size : ((await deps.storage.stat(blob.digest))?.size ?? 0);
        await deps.storage.delete(blob.digest);
        deleted.push({ digest: blob.digest, size });
      } catch (error) {
        deps.logger.warn({ err: error, digest: blob.digest }, "could not delete blob; the next collection retries");
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, blobs.length) }, worker));
  await deps.metadata.forgetBlobs(deleted.map((b) => b.digest));
  report.blobs.push(...deleted);
  for (const blob of deleted) report.bytesFreed += blob.size;
}

interface RetentionPlan {
  tagDeletions: TagDeletion[];
  untaggedCutoffs: Record<string, number>;
}

/**
 * Applies retention rules repository by repository. The tags chosen are deleted by the sweep only if
 * they still point where they did (a tag pushed again meanwhile stays). In a repository under a rule,
 * untagged manifests go after the rule's deleteUntaggedAfter (by default, the grace period).
 */
export async function planRetention(metadata: MetadataStore, policy: Policy, now: number, graceMs: number): Promise<RetentionPlan> {
  const plan: RetentionPlan = { tagDeletions: [], untaggedCutoffs: {} };
  if (policy.retention.length === 0) return plan;
  for await (const repository of allRepositories(metadata)) {
    const rule = retentionFor(policy, repository);
    if (!rule) continue;
    plan.untaggedCutoffs[repository] = now - (rule.deleteUntaggedAfterMs ?? graceMs);
    const tags = await metadata.tagDetails(repository);
    for (const tag of expiredTags(rule, tags, now, tagRules(policy, repository))) {
      plan.tagDeletions.push({ repository, tag: tag.tag, digest: tag.digest, pushedAt: tag.pushedAt });
    }
  }
  return plan;
}

export async function* allRepositories(metadata: MetadataStore): AsyncGenerator<string> {
  let after = "";
  for (;;) {
    const page = await metadata.listRepositories(1000, after);
    yield* page.items;
    if (!page.more || page.items.length === 0) return;
    after = page.items.at(-1) as string;
  }
}

/**
 * The collector in the background: one pass at a time, every `intervalMs`. A pass that fails is
 * logged and the next one starts over (the database holds everything it needs to resume).
 */
export class BackgroundCollector {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(
    readonly deps: CollectorDeps,
    readonly options: Omit<CollectOptions, "dryRun">,
    readonly intervalMs: number,
  ) {}

  /** The first pass comes soon after start: it finishes deletions a crash interrupted, which uploads wait for. */
  start(): void {
    this.#schedule(Math.min(this.intervalMs, FIRST_PASS_DELAY_MS));
  }

  #schedule(delayMs = this.intervalMs): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#pass().finally(() => {
        this.#running = undefined;
        this.#schedule();
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #pass(): Promise<void> {
    const metrics = this.deps.metrics;
    const end = metrics?.gcDuration.startTimer();
    try {
      const report = await collectGarbage(this.deps, { ...this.options, dryRun: false });
      end?.();
      metrics?.gcRuns.inc({ outcome: "ok" });
      metrics?.gcFreedBytes.inc(report.bytesFreed);
      metrics?.gcDeletedBlobs.inc(report.blobs.length);
      auditCollection(this.deps.audit, report);
      const removed = report.blobs.length + report.manifests.length + report.tags.length + report.repositories.length;
      if (removed > 0) {
        this.deps.logger.info(
          {
            blobs: report.blobs.length,
            bytesFreed: report.bytesFreed,
            manifests: report.manifests.length,
            tags: report.tags.length,
            repositories: report.repositories.length,
          },
          "garbage collected",
        );
      }
    } catch (error) {
      end?.();
      metrics?.gcRuns.inc({ outcome: "error" });
      this.deps.logger.error({ err: error }, "garbage collection failed; retrying at the next interval");
    }
  }

  /** Stops scheduling and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}

/** One audit entry per tag and manifest removed, and one for the blobs (with the bytes freed). */
export function auditCollection(audit: AuditLog | undefined, report: CollectReport, actor = "gc"): void {
  if (!audit || report.dryRun) return;
  const record = (target: string, detail?: Record<string, unknown>) =>
    audit.record({ actor, address: "local", action: "gc-delete", target, ...(detail ? { detail } : {}) });
  for (const tag of report.tags) record(`${tag.repository}:${tag.tag}`);
  for (const manifest of report.manifests) record(`${manifest.repository}@${manifest.digest}`);
  if (report.blobs.length > 0) record("blobs", { count: report.blobs.length, bytesFreed: report.bytesFreed });
}
