import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { BlobStore } from "@minato/storage";
import { ConfigError, loadConfig, parseDuration, type RegistryConfig, SETTINGS } from "../config.js";
import { createLogger } from "../logger.js";
import { SqliteMetadataStore } from "../metadata/sqlite.js";
import { openStorage } from "../storage.js";
import { type CollectReport, collectGarbage } from "./collector.js";
import { EMPTY_POLICY } from "./policy.js";
import { quotaUsage } from "./quota.js";
import { type ScrubReport, scrubBlobs } from "./scrub.js";

/**
 * Storage lifecycle commands. Like the other admin commands they open the data directory's database
 * and the blob storage directly, also while the registry runs: SQLite in WAL mode lets both processes
 * write, each write transaction takes the lock first (BEGIN IMMEDIATE), and the collector's marks
 * live in the database, so a collection here and one in the server never step on each other.
 * Each takes the serve settings (--data, --storage, --s3-*, --policy, or their environment variables).
 */
export const LIFECYCLE_USAGE = `Storage lifecycle (each takes --data DIR and the storage settings of serve):
  gc [--dry-run] [--delete-untagged] [--grace 1h]   collect garbage now (prints what it removes and the
                                                   bytes freed); --dry-run changes nothing
  scrub [--quarantine]                             re-hash every blob; report corrupt or missing ones
                                                   (--quarantine moves corrupt bytes to DATA/quarantine/
                                                   and unlinks them, so clients upload them again)
  quota                                            usage of each quota of the --policy file
`;

export const LIFECYCLE_COMMANDS = new Set(["gc", "scrub", "quota"]);

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

/** Splits the command's own flags from the serve settings (then parsed by loadConfig). */
function parseCommand(
  argv: string[],
  own: Record<string, { type: "string" | "boolean" }>,
): { values: Record<string, unknown>; rest: string[] } {
  const settings = Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: "switch" in s ? ("boolean" as const) : ("string" as const) }]));
  let tokens: ReturnType<typeof parseArgs>["tokens"];
  try {
    ({ tokens } = parseArgs({ args: argv, options: { ...settings, ...own }, strict: true, allowPositionals: false, tokens: true }));
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const values: Record<string, unknown> = {};
  const rest: string[] = [];
  for (const token of tokens ?? []) {
    if (token.kind !== "option") continue;
    if (token.name in own) values[token.name] = token.value ?? true;
    else rest.push(token.value === undefined ? token.rawName : `${token.rawName}=${token.value}`);
  }
  return { values, rest };
}

/** Runs a command; resolves to its exit status (scrub: 1 when it found a damaged blob). */
export async function lifecycleCommand(command: string, argv: string[], out: Out = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    out(LIFECYCLE_USAGE.trimEnd());
    return 0;
  }
  if (command === "gc") {
    const { values, rest } = parseCommand(argv, {
      "dry-run": { type: "boolean" },
      "delete-untagged": { type: "boolean" },
      grace: { type: "string" },
    });
    const config = loadConfig(rest);
    const graceMs = values.grace !== undefined ? parseDuration(values.grace as string) : (config.gc?.graceMs ?? parseDuration("24h"));
    await gcCommand(
      {
        config,
        dryRun: values["dry-run"] === true,
        deleteUntagged: values["delete-untagged"] === true || (config.gc?.deleteUntagged ?? false),
        graceMs,
      },
      out,
    );
  } else if (command === "scrub") {
    const { values, rest } = parseCommand(argv, { quarantine: { type: "boolean" } });
    const report = await scrubCommand({ config: loadConfig(rest), quarantine: values.quarantine === true }, out);
    return report.corrupt.length + report.missing.length > 0 ? 1 : 0;
  } else if (command === "quota") {
    const { rest } = parseCommand(argv, {});
    await quotaCommand(loadConfig(rest), out);
  } else {
    throw new ConfigError(`unknown command ${JSON.stringify(command)}`);
  }
  return 0;
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
        uploadTtlMs: config.uploadTtlMs,
      },
    );
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
