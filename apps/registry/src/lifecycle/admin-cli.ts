import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { quietErrors } from "@minato/settings";
import type { BlobStore } from "@minato/storage";
import { Command, CommanderError } from "commander";
import { AuditLog, localUser } from "../audit.js";
import { ConfigError, parseDuration, type RegistryConfig, resolveConfig, serveOptions } from "../config.js";
import { DEFAULT_LIMITS } from "../limits.js";
import { createLogger } from "../logger.js";
import { SqliteMetadataStore } from "../metadata/sqlite.js";
import { openStorage } from "../storage.js";
import { auditCollection, type CollectReport, collectGarbage } from "./collector.js";
import { EMPTY_POLICY } from "./policy.js";
import { quotaUsage } from "./quota.js";
import { type ScrubReport, scrubBlobs } from "./scrub.js";

type Out = (line: string) => void;

export interface GcOptions {
  config: RegistryConfig;
  dryRun: boolean;
  deleteUntagged: boolean;
  graceMs: number;
}

export interface ScrubOptions {
  config: RegistryConfig;
  quarantine: boolean;
}

/**
 * Storage lifecycle commands. Like the other admin commands they open the data directory's database
 * and the blob storage directly, also while the registry runs: SQLite in WAL mode lets both processes
 * write, each write transaction takes the lock first (BEGIN IMMEDIATE), and the collector's marks
 * live in the database, so a collection here and one in the server never step on each other.
 * Each takes the serve settings (--data, --storage, --s3-*, --policy, or their environment variables).
 * `gc`, `scrub` and `quota` become subcommands of `program`.
 */
export function addLifecycleCommands(program: Command, out: Out = (l) => process.stdout.write(`${l}\n`)): Command {
  serveOptions(program.command("gc").description("collect garbage now: prints what it removes and the bytes freed"))
    .option("--dry-run", "report what would be removed; change nothing")
    .option("--delete-untagged", "also collect manifests no tag, index or subject keeps")
    .option("--grace <duration>", "keep blobs uploaded or mounted this recently (default: --gc-grace)")
    .action(async (options: Record<string, unknown>) => {
      const config = resolveConfig(options);
      const grace = options.grace as string | undefined;
      await gcCommand(
        {
          config,
          dryRun: options.dryRun === true,
          deleteUntagged: options.deleteUntagged === true || (config.gc?.deleteUntagged ?? false),
          graceMs: grace !== undefined ? parseDuration(grace) : (config.gc?.graceMs ?? parseDuration("24h")),
        },
        out,
      );
    });
  program
    .command("audit")
    .description("show the audit trail, newest first: logins, tokens, pushes, deletes, admin changes, GC deletions")
    .option("--data <dir>", "the registry's data directory (default: MINATO_REGISTRY_DATA or ./data)")
    .option("--since <when>", "only entries this recent (24h, 7d) or since this date (2026-01-31, ISO 8601)")
    .option("--user <name>", "only this actor's entries")
    .option("--action <action>", "only this action (login, login-failed, token, push, delete, gc-delete, user add, grant …)")
    .option("--limit <n>", "at most this many entries", "100")
    .option("--json", "one JSON object per line")
    .action((options: Record<string, unknown>) => auditCommand(options, out));
  serveOptions(program.command("scrub").description("re-hash every blob; report corrupt or missing ones (exit 1 if any)"))
    .option("--quarantine", "move corrupt bytes to DATA/quarantine/ and unlink them, so clients upload them again")
    .action(async (options: Record<string, unknown>) => {
      const report = await scrubCommand({ config: resolveConfig(options), quarantine: options.quarantine === true }, out);
      if (report.corrupt.length + report.missing.length > 0) process.exitCode = 1;
    });
  serveOptions(program.command("quota").description("usage of each quota of the --policy file")).action(
    async (options: Record<string, unknown>) => quotaCommand(resolveConfig(options), out),
  );
  return program;
}

/** Runs one lifecycle command line (`gc --dry-run`), as `minato-registry` would; resolves to its exit status. */
export async function lifecycleCommand(command: string, argv: string[], out?: Out): Promise<number> {
  const program = quietErrors(new Command("minato-registry"));
  if (out) program.configureOutput({ writeOut: (text) => out(text.trimEnd()) });
  addLifecycleCommands(program, out);
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync([command, ...argv], { from: "user" });
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed") return 0;
      throw new ConfigError(error.message.replace(/^error: /, ""));
    }
    throw error;
  } finally {
    process.exitCode = before;
  }
}

async function withData<T>(config: RegistryConfig, work: (metadata: SqliteMetadataStore, storage: BlobStore) => Promise<T>): Promise<T> {
  // A mistyped --data must not quietly create (and collect) an empty registry.
  const database = join(config.dataDir, "registry.db");
  if (!existsSync(database)) throw new ConfigError(`no registry database at ${database}: is --data the registry's data directory?`);
  const storage = await openStorage(config.storage, config.dataDir);
  const metadata = new SqliteMetadataStore(join(config.dataDir, "registry.db"));
  try {
    return await work(metadata, storage);
  } finally {
    await metadata.close();
    storage.destroy?.();
  }
}

export async function gcCommand(options: GcOptions, out: Out): Promise<CollectReport> {
  const { config } = options;
  return withData(config, async (metadata, storage) => {
    const report = await collectGarbage(
      { metadata, storage, logger: createLogger(config.logLevel === "info" ? "warn" : config.logLevel) },
      {
        graceMs: options.graceMs,
        deleteUntagged: options.deleteUntagged,
        dryRun: options.dryRun,
        policy: config.policy ?? EMPTY_POLICY,
        uploadTtl: { idleTtlMs: config.limits?.uploadIdleTtlMs ?? DEFAULT_LIMITS.uploadIdleTtlMs, ttlMs: config.uploadTtlMs },
      },
    );
    const audit = new AuditLog(join(config.dataDir, "registry.db"));
    try {
      auditCollection(audit, report, `gc by ${localUser()}`);
    } finally {
      audit.close();
    }
    printReport(report, out);
    return report;
  });
}

function printReport(report: CollectReport, out: Out): void {
  const verb = report.dryRun ? "would delete" : "deleted";
  for (const t of report.tags) out(`${verb} tag ${t.repository}:${t.tag}`);
  for (const m of report.manifests) out(`${verb} manifest ${m.repository}@${m.digest} (${m.size} bytes)`);
  for (const l of report.links) out(`${report.dryRun ? "would unlink" : "unlinked"} blob ${l.digest} from ${l.repository}`);
  for (const b of report.blobs) out(`${verb} blob ${b.digest} (${b.size} bytes)`);
  for (const r of report.repositories) out(`${report.dryRun ? "would remove" : "removed"} empty repository ${r}`);
  out(
    `gc${report.dryRun ? " (dry run)" : ""}: ${report.blobs.length} blobs, ${report.bytesFreed} bytes ${report.dryRun ? "would be " : ""}freed; ` +
      `${report.manifests.length} manifests, ${report.tags.length} tags, ${report.links.length} blob links, ` +
      `${report.repositories.length} repositories, ${report.uploads} upload sessions`,
  );
}

export async function scrubCommand(options: ScrubOptions, out: Out): Promise<ScrubReport> {
  const { config } = options;
  return withData(config, async (metadata, storage) => {
    const quarantineDir = join(config.dataDir, "quarantine");
    if (options.quarantine) await mkdir(quarantineDir, { recursive: true });
    const report = await scrubBlobs(metadata, storage, options.quarantine ? quarantineDir : undefined);
    for (const c of report.corrupt) {
      out(`corrupt ${c.digest}: stored bytes hash to ${c.actual}${c.quarantinedTo ? `; quarantined to ${c.quarantinedTo}` : ""}`);
    }
    for (const m of report.missing) out(`missing ${m}: the metadata lists it, storage lacks it${options.quarantine ? "; unlinked" : ""}`);
    out(`scrub: ${report.checked} blobs checked, ${report.corrupt.length} corrupt, ${report.missing.length} missing`);
    return report;
  });
}

export async function quotaCommand(config: RegistryConfig, out: Out): Promise<void> {
  const policy = config.policy ?? EMPTY_POLICY;
  if (policy.quotas.length === 0) throw new ConfigError('no quotas: give --policy FILE with a "quotas" list');
  await withData(config, async (metadata) => {
    out(["RULE", "PATTERN", "REPOSITORIES", "USED", "LIMIT", "USE%"].join("\t"));
    for (const u of await quotaUsage(metadata, policy)) {
      const percent = u.rule.bytes > 0 ? ((100 * u.usedBytes) / u.rule.bytes).toFixed(1) : "-";
      out([u.rule.label, u.rule.repositories, u.repositories.length, u.usedBytes, u.rule.bytes, percent].join("\t"));
    }
  });
}

/** `minato-registry audit`: reads the trail straight from the database, also while the registry runs. */
export function auditCommand(options: Record<string, unknown>, out: Out): void {
  const dataDir = resolve((options.data as string | undefined) ?? (process.env.MINATO_REGISTRY_DATA || "./data"));
  const database = join(dataDir, "registry.db");
  if (!existsSync(database)) throw new ConfigError(`no registry database at ${database}: is --data the registry's data directory?`);
  const limit = Number(options.limit);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new ConfigError("--limit must be a positive integer");
  const since = options.since === undefined ? undefined : parseSince(options.since as string);
  const audit = new AuditLog(database);
  try {
    const entries = audit.query({
      limit,
      ...(since !== undefined ? { since } : {}),
      ...(options.user !== undefined ? { user: options.user as string } : {}),
      ...(options.action !== undefined ? { action: options.action as string } : {}),
    });
    if (options.json) {
      for (const e of entries) out(JSON.stringify({ ...e, at: new Date(e.at).toISOString() }));
      return;
    }
    for (const e of entries) {
      const detail = e.detail ? ` ${JSON.stringify(e.detail)}` : "";
      out(`${new Date(e.at).toISOString()}  ${e.actor || "(anonymous)"}  ${e.address}  ${e.action}  ${e.target}${detail}`);
    }
  } finally {
    audit.close();
  }
}

/** A duration back from now (90s, 24h, 7d) or a date. */
function parseSince(text: string): number {
  if (/^\d+(ms|s|m|h|d)$/.test(text)) return Date.now() - parseDuration(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new ConfigError(`--since must be a duration (24h, 7d) or a date (2026-01-31), not ${JSON.stringify(text)}`);
  return at;
}
