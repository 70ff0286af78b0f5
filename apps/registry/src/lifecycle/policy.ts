import { readFileSync } from "node:fs";
import { isValidPattern, matchesPattern } from "../auth/acl.js";
import { ConfigError, parseDuration } from "../config.js";
import type { TagDetail, TagRules } from "../metadata/store.js";

/**
 * Storage lifecycle policies, read from a JSON file (`--policy`): immutable tags, quotas and retention,
 * each per repository pattern (`*` stands for any run of characters, slashes included, as in grants).
 *
 *   {
 *     "immutableTags": [{ "repositories": "prod/*", "tags": ["v*"] }],
 *     "quotas": [{ "repositories": "team-a/*", "bytes": "10GiB" }],
 *     "retention": [{ "repositories": "ci/*", "keepLast": 10, "keepTags": ["latest", "release-*"],
 *                     "keepPushedWithin": "7d", "keepPulledWithin": "30d", "deleteUntaggedAfter": "1d" }]
 *   }
 */
export interface Policy {
  immutableTags: ImmutableRule[];
  quotas: QuotaRule[];
  retention: RetentionRule[];
}

export interface ImmutableRule {
  label: string;
  repositories: string;
  tags: string[];
}

export interface QuotaRule {
  label: string;
  repositories: string;
  bytes: number;
}

export interface RetentionRule {
  label: string;
  repositories: string;
  keepLast?: number;
  keepTags?: string[];
  keepPushedWithinMs?: number;
  keepPulledWithinMs?: number;
  deleteUntaggedAfterMs?: number;
}

export const EMPTY_POLICY: Policy = { immutableTags: [], quotas: [], retention: [] };

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** `10GiB`, `500MB`, `1048576` → bytes. */
export function parseBytes(value: string | number, where: string): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  const match = typeof value === "string" ? /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i.exec(value.trim()) : null;
  if (!match) throw new ConfigError(`${where} must be a byte count such as 1073741824, "500MB" or "10GiB"`);
  return Math.floor(Number(match[1]) * (UNITS[(match[2] ?? "").toLowerCase()] as number));
}

/** Tag glob: `*` any run of characters, `?` one character. */
export function matchesTag(pattern: string, tag: string): boolean {
  const body = pattern
    .replace(/[.+^${}()|[\]\\-]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`).test(tag);
}

type Json = Record<string, unknown>;

function object(value: unknown, where: string, keys: string[]): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(`${where} must be an object`);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw new ConfigError(`${where} has an unknown field ${JSON.stringify(key)} (known: ${keys.join(", ")})`);
  }
  return value as Json;
}

function list(value: unknown, where: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ConfigError(`${where} must be an array`);
  return value;
}

function repositories(rule: Json, where: string): string {
  const pattern = rule.repositories;
  if (typeof pattern !== "string" || !isValidPattern(pattern)) {
    throw new ConfigError(`${where}.repositories must be a repository pattern such as "team-a/*" or "*"`);
  }
  return pattern;
}

function tagPatterns(value: unknown, where: string): string[] {
  const patterns = list(value, where);
  for (const p of patterns)
    if (typeof p !== "string" || !/^[\w.*?-]{1,128}$/.test(p)) throw new ConfigError(`${where} must be tag patterns`);
  return patterns as string[];
}

function duration(value: unknown, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new ConfigError(`${where} must be a duration such as "7d"`);
  try {
    return parseDuration(value);
  } catch (error) {
    throw new ConfigError(`${where}: ${(error as Error).message}`);
  }
}

/** Validates a policy document; every field takes effect or is refused here. */
export function parsePolicy(document: unknown, source = "policy"): Policy {
  const root = object(document, source, ["immutableTags", "quotas", "retention"]);
  const immutableTags = list(root.immutableTags, `${source}: immutableTags`).map((value, i): ImmutableRule => {
    const where = `${source}: immutableTags[${i}]`;
    const rule = object(value, where, ["repositories", "tags"]);
    const pattern = repositories(rule, where);
    const tags = tagPatterns(rule.tags ?? ["*"], `${where}.tags`);
    return { label: `immutableTags[${i}] ${pattern} ${tags.join(",")}`, repositories: pattern, tags };
  });
  const quotas = list(root.quotas, `${source}: quotas`).map((value, i): QuotaRule => {
    const where = `${source}: quotas[${i}]`;
    const rule = object(value, where, ["repositories", "bytes"]);
    const pattern = repositories(rule, where);
    const bytes = parseBytes(rule.bytes as string | number, `${where}.bytes`);
    return { label: `quotas[${i}] ${pattern}`, repositories: pattern, bytes };
  });
  const retention = list(root.retention, `${source}: retention`).map((value, i): RetentionRule => {
    const where = `${source}: retention[${i}]`;
    const fields = ["repositories", "keepLast", "keepTags", "keepPushedWithin", "keepPulledWithin", "deleteUntaggedAfter"];
    const rule = object(value, where, fields);
    const pattern = repositories(rule, where);
    const keepLast = rule.keepLast;
    if (keepLast !== undefined && (!Number.isSafeInteger(keepLast) || (keepLast as number) < 0)) {
      throw new ConfigError(`${where}.keepLast must be a non-negative integer`);
    }
    const result: RetentionRule = { label: `retention[${i}] ${pattern}`, repositories: pattern };
    if (keepLast !== undefined) result.keepLast = keepLast as number;
    if (rule.keepTags !== undefined) result.keepTags = tagPatterns(rule.keepTags, `${where}.keepTags`);
    const pushed = duration(rule.keepPushedWithin, `${where}.keepPushedWithin`);
    const pulled = duration(rule.keepPulledWithin, `${where}.keepPulledWithin`);
    const untagged = duration(rule.deleteUntaggedAfter, `${where}.deleteUntaggedAfter`);
    if (pushed !== undefined) result.keepPushedWithinMs = pushed;
    if (pulled !== undefined) result.keepPulledWithinMs = pulled;
    if (untagged !== undefined) result.deleteUntaggedAfterMs = untagged;
    if (!keepsTags(result) && untagged === undefined) {
      throw new ConfigError(`${where} says nothing: give keepLast, keepTags, keepPushedWithin, keepPulledWithin or deleteUntaggedAfter`);
    }
    return result;
  });
  return { immutableTags, quotas, retention };
}

export function loadPolicy(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read policy file ${path}: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`policy file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parsePolicy(document, path);
}

/** The tag rules the metadata store enforces for `repository`. */
export function tagRules(policy: Policy, repository: string): TagRules {
  const rules = policy.immutableTags.filter((r) => matchesPattern(r.repositories, repository));
  if (rules.length === 0) return {};
  return { immutable: (tag) => rules.find((r) => r.tags.some((p) => matchesTag(p, tag)))?.label };
}

export function quotasFor(policy: Policy, repository: string): QuotaRule[] {
  return policy.quotas.filter((r) => matchesPattern(r.repositories, repository));
}

/** The first retention rule whose pattern matches, as in an ordered rule list. */
export function retentionFor(policy: Policy, repository: string): RetentionRule | undefined {
  return policy.retention.find((r) => matchesPattern(r.repositories, repository));
}

/** Whether a rule decides about tags (a rule with only deleteUntaggedAfter keeps every tag). */
function keepsTags(rule: RetentionRule): boolean {
  return (
    rule.keepLast !== undefined ||
    rule.keepTags !== undefined ||
    rule.keepPushedWithinMs !== undefined ||
    rule.keepPulledWithinMs !== undefined
  );
}

/**
 * Tags a retention rule deletes: a tag stays when any of the rule's keep conditions holds (one of the
 * N most recently pushed, matching a kept pattern, pushed or pulled within the duration); tags an
 * immutability rule protects always stay.
 */
export function expiredTags(rule: RetentionRule, tags: TagDetail[], now: number, rules: TagRules): TagDetail[] {
  if (!keepsTags(rule)) return [];
  const newest = new Set(
    [...tags]
      .sort((a, b) => b.pushedAt - a.pushedAt || a.tag.localeCompare(b.tag))
      .slice(0, rule.keepLast ?? 0)
      .map((t) => t.tag),
  );
  return tags.filter((t) => {
    if (newest.has(t.tag)) return false;
    if (rule.keepTags?.some((p) => matchesTag(p, t.tag))) return false;
    if (rule.keepPushedWithinMs !== undefined && now - t.pushedAt < rule.keepPushedWithinMs) return false;
    if (rule.keepPulledWithinMs !== undefined && t.pulledAt !== undefined && now - t.pulledAt < rule.keepPulledWithinMs) return false;
    return rules.immutable?.(t.tag) === undefined;
  });
}
