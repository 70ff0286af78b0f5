import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { LogLevel } from "./logger.js";

export interface RegistryConfig {
  host: string;
  port: number;
  dataDir: string;
  tlsCert?: string;
  tlsKey?: string;
  deletesEnabled: boolean;
  logLevel: LogLevel;
  /** Upload sessions untouched for this long are cancelled (ms). */
  uploadTtlMs: number;
  maxManifestBytes: number;
}

/** Every setting: its flag, environment variable, default and meaning (rendered by --help). */
export const SETTINGS = [
  { flag: "listen", env: "MINATO_REGISTRY_LISTEN", default: "127.0.0.1:5000", help: "address to serve on, HOST:PORT" },
  { flag: "data", env: "MINATO_REGISTRY_DATA", default: "./data", help: "data directory: blobs, uploads, metadata database" },
  { flag: "tls-cert", env: "MINATO_REGISTRY_TLS_CERT", default: "", help: "PEM certificate chain; serves HTTPS with --tls-key" },
  { flag: "tls-key", env: "MINATO_REGISTRY_TLS_KEY", default: "", help: "PEM private key for --tls-cert" },
  { flag: "deletes", env: "MINATO_REGISTRY_DELETES", default: "true", help: "allow DELETE of blobs, manifests and tags (true|false)" },
  { flag: "log-level", env: "MINATO_REGISTRY_LOG_LEVEL", default: "info", help: "trace|debug|info|warn|error|silent" },
  { flag: "upload-ttl", env: "MINATO_REGISTRY_UPLOAD_TTL", default: "24h", help: "cancel upload sessions idle this long (s, m, h, d)" },
  { flag: "max-manifest-size", env: "MINATO_REGISTRY_MAX_MANIFEST_SIZE", default: "4194304", help: "largest manifest accepted, bytes" },
] as const;

type SettingName = (typeof SETTINGS)[number]["flag"];

export class ConfigError extends Error {}

const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) throw new ConfigError(`invalid duration ${JSON.stringify(value)} (use e.g. 90s, 30m, 24h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "s"] as number;
  return Number(match[1]) * unit;
}

function parseBoolean(name: string, value: string): boolean {
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new ConfigError(`--${name} must be true or false, not ${JSON.stringify(value)}`);
}

export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new ConfigError(`--listen must be HOST:PORT, not ${JSON.stringify(value)}`);
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}

/** Flags win over environment variables, which win over defaults. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): RegistryConfig {
  const options = Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: "string" as const }]));
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }) as {
      values: Record<string, string | undefined>;
    });
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const get = (flag: SettingName): string => {
    const setting = SETTINGS.find((s) => s.flag === flag) as (typeof SETTINGS)[number];
    return values[flag] ?? env[setting.env] ?? setting.default;
  };

  const { host, port } = parseListen(get("listen"));
  const logLevel = get("log-level") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(", ")}`);
  const tlsCert = get("tls-cert") || undefined;
  const tlsKey = get("tls-key") || undefined;
  if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new ConfigError("--tls-cert and --tls-key go together");
  const maxManifestBytes = Number(get("max-manifest-size"));
  if (!Number.isSafeInteger(maxManifestBytes) || maxManifestBytes < 1024)
    throw new ConfigError("--max-manifest-size must be an integer ≥ 1024");

  return {
    host,
    port,
    dataDir: resolve(get("data")),
    ...(tlsCert ? { tlsCert, tlsKey } : {}),
    deletesEnabled: parseBoolean("deletes", get("deletes")),
    logLevel,
    uploadTtlMs: parseDuration(get("upload-ttl")),
    maxManifestBytes,
  };
}
