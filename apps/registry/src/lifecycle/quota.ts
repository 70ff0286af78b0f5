import { matchesPattern } from "../auth/acl.js";
import { RegistryError } from "../errors.js";
import { type MetadataStore, QuotaExceededError, type QuotaLimit } from "../metadata/store.js";
import { allRepositories } from "./collector.js";
import { type Policy, type QuotaRule, quotasFor } from "./policy.js";

export interface QuotaUsage {
  rule: QuotaRule;
  repositories: string[];
  /** Distinct blobs linked in the scope's repositories, each counted once. */
  usedBytes: number;
}

async function scopeOf(metadata: MetadataStore, rule: QuotaRule): Promise<string[]> {
  const names: string[] = [];
  for await (const name of allRepositories(metadata)) if (matchesPattern(rule.repositories, name)) names.push(name);
  return names;
}

export async function quotaUsage(metadata: MetadataStore, policy: Policy): Promise<QuotaUsage[]> {
  const usage: QuotaUsage[] = [];
  for (const rule of policy.quotas) {
    const repositories = await scopeOf(metadata, rule);
    usage.push({ rule, repositories, usedBytes: await metadata.blobUsage(repositories) });
  }
  return usage;
}

/** The quotas covering `repository`, as the store checks them when it links a blob. */
export function quotaLimits(policy: Policy | undefined, repository: string): QuotaLimit[] {
  return (policy ? quotasFor(policy, repository) : []).map((rule) => ({
    label: rule.label,
    bytes: rule.bytes,
    covers: (name: string) => matchesPattern(rule.repositories, name),
  }));
}

/** 403 DENIED naming the rule, with the numbers. */
export function quotaDenied(error: QuotaExceededError): RegistryError {
  return new RegistryError(403, "DENIED", { rule: error.rule, quota: error.quota, used: error.used, size: error.size }, error.message);
}

/**
 * Refuses a blob of `size` bytes that would take a quota scope past its limit, before anything is
 * stored (the store checks again, exactly, when it links the blob). A blob already linked somewhere in
 * the scope costs nothing; an unknown digest (a chunked upload still in progress) counts as new.
 */
export async function enforceQuota(
  metadata: MetadataStore,
  policy: Policy | undefined,
  repository: string,
  digest: string | undefined,
  size: number,
): Promise<void> {
  for (const rule of policy ? quotasFor(policy, repository) : []) {
    const scope = await scopeOf(metadata, rule);
    if (!scope.includes(repository)) scope.push(repository);
    if (digest !== undefined && (await metadata.linkedInAny(scope, digest as `${string}:${string}`))) continue;
    const used = await metadata.blobUsage(scope);
    if (used + size > rule.bytes) throw quotaDenied(new QuotaExceededError(rule.label, rule.bytes, used, size));
  }
}
