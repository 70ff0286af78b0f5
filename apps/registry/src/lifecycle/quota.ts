import { matchesPattern } from "../auth/acl.js";
import { RegistryError } from "../errors.js";
import type { MetadataStore } from "../metadata/store.js";
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

/**
 * Refuses (403 DENIED, naming the rule) a blob of `size` bytes that would take a quota scope past its
 * limit. A blob already linked somewhere in the scope costs nothing; an unknown digest (a chunked
 * upload still in progress) is counted as new.
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
    if (used + size > rule.bytes) {
      throw new RegistryError(
        403,
        "DENIED",
        { rule: rule.label, quota: rule.bytes, used, size },
        `quota exceeded: rule ${rule.label} allows ${rule.bytes} bytes, ${used} are used and this blob needs ${size}`,
      );
    }
  }
}
