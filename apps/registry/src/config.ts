import { resolve } from "node:path";
import { addSettings, ConfigError, parseBoolean, quietErrors, type Setting, settingReader } from "@minato/settings";
import { Command } from "commander";
import { type AuthConfig, resolveAuthConfig } from "./auth/config.js";
import { loadPolicy, type Policy } from "./lifecycle/policy.js";
import { loadLimits, type RegistryLimits } from "./limits.js";
import type { LogLevel } from "./logger.js";
import { type Endpoint, loadNotifications } from "./notifications/config.js";
import { loadProxyConfig, type UpstreamConfig } from "./proxy/config.js";
import { loadStorageConfig, type StorageConfig } from "./storage.js";

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
  /** Token authentication; absent means none (allowed on loopback, or with insecureAllowAnonymous). */
  auth?: AuthConfig;
  insecureAllowAnonymous?: boolean;
  /** Blob storage; absent means the filesystem under dataDir. */
  storage?: StorageConfig;
  /** Upload session, connection and body-rate limits; each absent one takes its DEFAULT_LIMITS value. */
  limits?: Partial<RegistryLimits>;
  /** Background garbage collection; absent means none. */
  gc?: GcConfig;
  /** Immutable tags, quotas, retention (--policy); absent means none. */
  policy?: Policy;
  /** Pull-through cache namespaces (--proxy-config); absent means none. */
  proxy?: UpstreamConfig[];
  /** Prometheus metrics exposure; absent means /metrics on the main listener, no repository labels. */
  metrics?: MetricsConfig;
  /** Webhook endpoints (--notifications); absent or empty: no events are recorded. */
  notifications?: Endpoint[];
  /** How long audit entries are kept (ms); absent: 90 days. */
  auditRetentionMs?: number;
  /** On shutdown, keep serving this long with /ready answering 503 before draining (ms); absent: 0. */
  drainDelayMs?: number;
}

export interface MetricsConfig {
  /** Serve /metrics at all (recording goes on either way; it is cheap). */
  enabled: boolean;
  /** A separate HOST:PORT serving only /metrics, without auth; then the main listener has none. */
  listen?: { host: string; port: number };
  /** Per-repository storage gauges. */
  repositoryLabels: boolean;
}

export interface GcConfig {
  intervalMs: number;
  graceMs: number;
  deleteUntagged: boolean;
}

/** Every setting: its flag, environment variable, default and meaning (rendered by --help). */
export const SETTINGS = [
  { flag: "listen", env: "MINATO_REGISTRY_LISTEN", default: "127.0.0.1:5000", help: "address to serve on, HOST:PORT" },
  { flag: "data", env: "MINATO_REGISTRY_DATA", default: "./data", help: "data directory: blobs, uploads, metadata database" },
  { flag: "tls-cert", env: "MINATO_REGISTRY_TLS_CERT", default: "", help: "PEM certificate chain; serves HTTPS with --tls-key" },
  { flag: "tls-key", env: "MINATO_REGISTRY_TLS_KEY", default: "", help: "PEM private key for --tls-cert" },
  {
    flag: "deletes",
    env: "MINATO_REGISTRY_DELETES",
    default: "true",
    kind: "boolean",
    help: "allow DELETE of blobs, manifests and tags (--no-deletes: 405)",
  },
  { flag: "log-level", env: "MINATO_REGISTRY_LOG_LEVEL", default: "info", help: "trace|debug|info|warn|error|silent" },
  {
    flag: "upload-ttl",
    env: "MINATO_REGISTRY_UPLOAD_TTL",
    default: "24h",
    help: "cancel upload sessions this long after they began, however active (s, m, h, d)",
  },
  {
    flag: "upload-idle-ttl",
    env: "MINATO_REGISTRY_UPLOAD_IDLE_TTL",
    default: "30m",
    help: "cancel upload sessions that received no request for this long",
  },
  {
    flag: "max-uploads-per-repo",
    env: "MINATO_REGISTRY_MAX_UPLOADS_PER_REPO",
    default: "1000",
    help: "open upload sessions per repository, then 429",
  },
  {
    flag: "max-uploads-per-client",
    env: "MINATO_REGISTRY_MAX_UPLOADS_PER_CLIENT",
    default: "100",
    help: "open upload sessions per client address, then 429",
  },
  { flag: "headers-timeout", env: "MINATO_REGISTRY_HEADERS_TIMEOUT", default: "60s", help: "time to receive a request's headers" },
  {
    flag: "keep-alive-timeout",
    env: "MINATO_REGISTRY_KEEP_ALIVE_TIMEOUT",
    default: "5s",
    help: "how long an idle keep-alive connection waits for its next request",
  },
  {
    flag: "idle-timeout",
    env: "MINATO_REGISTRY_IDLE_TIMEOUT",
    default: "120s",
    help: "close a connection on which nothing moves either way for this long",
  },
  {
    flag: "min-body-rate",
    env: "MINATO_REGISTRY_MIN_BODY_RATE",
    default: "1024",
    help: "cut request bodies slower than this many bytes/s over a window (408); 0: no floor",
  },
  { flag: "body-rate-window", env: "MINATO_REGISTRY_BODY_RATE_WINDOW", default: "30s", help: "window of --min-body-rate" },
  {
    flag: "max-connections-per-client",
    env: "MINATO_REGISTRY_MAX_CONNECTIONS_PER_CLIENT",
    default: "128",
    help: "open connections per client address (not behind --trust-proxy)",
  },
  { flag: "max-manifest-size", env: "MINATO_REGISTRY_MAX_MANIFEST_SIZE", default: "4194304", help: "largest manifest accepted, bytes" },
  { flag: "gc", env: "MINATO_REGISTRY_GC", default: "true", kind: "boolean", help: "collect garbage in the background (--no-gc: never)" },
  { flag: "gc-interval", env: "MINATO_REGISTRY_GC_INTERVAL", default: "1h", help: "time between background collections" },
  {
    flag: "gc-grace",
    env: "MINATO_REGISTRY_GC_GRACE",
    default: "24h",
    help: "keep blobs uploaded/mounted (and manifests pushed) this recently",
  },
  {
    flag: "gc-delete-untagged",
    env: "MINATO_REGISTRY_GC_DELETE_UNTAGGED",
    default: "false",
    kind: "boolean",
    help: "also collect manifests no tag, index or subject keeps",
  },
  { flag: "policy", env: "MINATO_REGISTRY_POLICY", default: "", help: "JSON file: immutable tags, quotas, retention rules" },
  {
    flag: "proxy-config",
    env: "MINATO_REGISTRY_PROXY_CONFIG",
    default: "",
    help: "JSON file: namespaces served as pull-through caches of upstream registries",
  },
  { flag: "storage", env: "MINATO_REGISTRY_STORAGE", default: "filesystem", help: "blob storage: filesystem (under --data) or s3" },
  { flag: "s3-bucket", env: "MINATO_REGISTRY_S3_BUCKET", default: "", help: "S3 bucket for blobs and upload sessions (--storage s3)" },
  { flag: "s3-prefix", env: "MINATO_REGISTRY_S3_PREFIX", default: "", help: "key prefix inside the bucket" },
  {
    flag: "s3-region",
    env: "MINATO_REGISTRY_S3_REGION",
    default: "",
    help: "region; unset: AWS_REGION or AWS config, us-east-1 with an endpoint",
  },
  {
    flag: "s3-endpoint",
    env: "MINATO_REGISTRY_S3_ENDPOINT",
    default: "",
    help: "URL of an S3-compatible server (MinIO, Ceph, R2…); unset: AWS",
  },
  {
    flag: "s3-force-path-style",
    env: "MINATO_REGISTRY_S3_FORCE_PATH_STYLE",
    default: "false",
    kind: "boolean",
    help: "path-style URLs (endpoint/bucket/key)",
  },
  {
    flag: "s3-access-key-id",
    env: "MINATO_REGISTRY_S3_ACCESS_KEY_ID",
    default: "",
    help: "access key; unset: the standard AWS credential chain",
  },
  { flag: "s3-secret-access-key", env: "MINATO_REGISTRY_S3_SECRET_ACCESS_KEY", default: "", help: "its secret (prefer the env var)" },
  {
    flag: "s3-redirect",
    env: "MINATO_REGISTRY_S3_REDIRECT",
    default: "false",
    kind: "boolean",
    help: "answer blob GETs with 307 to a presigned S3 URL",
  },
  {
    flag: "s3-part-size",
    env: "MINATO_REGISTRY_S3_PART_SIZE",
    default: "8",
    help: "multipart part size, MiB (5-5120); blobs ≤ 10000 parts",
  },
  { flag: "auth", env: "MINATO_REGISTRY_AUTH", default: "", help: "none|token; unset: none on loopback, token on any other address" },
  {
    flag: "insecure-allow-anonymous",
    env: "MINATO_REGISTRY_INSECURE_ALLOW_ANONYMOUS",
    default: "false",
    kind: "boolean",
    help: "allow --auth none on a non-loopback address (anyone can push)",
  },
  {
    flag: "public-url",
    env: "MINATO_REGISTRY_PUBLIC_URL",
    default: "",
    help: "external base URL, e.g. https://registry.example.com (token realm)",
  },
  {
    flag: "trust-proxy",
    env: "MINATO_REGISTRY_TRUST_PROXY",
    default: "false",
    kind: "boolean",
    help: "honour X-Forwarded-Proto/-Host/-For from a TLS proxy",
  },
  { flag: "auth-service", env: "MINATO_REGISTRY_AUTH_SERVICE", default: "minato-registry", help: "service name: token audience (aud)" },
  { flag: "auth-issuer", env: "MINATO_REGISTRY_AUTH_ISSUER", default: "", help: "token issuer (iss); default minato-registry (built-in)" },
  { flag: "auth-realm", env: "MINATO_REGISTRY_AUTH_REALM", default: "", help: "external issuer: URL of its token service" },
  { flag: "auth-jwks-url", env: "MINATO_REGISTRY_AUTH_JWKS_URL", default: "", help: "external issuer: trust the keys of this JWKS URL" },
  { flag: "auth-keys", env: "MINATO_REGISTRY_AUTH_KEYS", default: "", help: "external issuer: trust these PEM public keys/certs (a,b)" },
  { flag: "token-path", env: "MINATO_REGISTRY_TOKEN_PATH", default: "/token", help: "path of the built-in token service" },
  { flag: "token-ttl", env: "MINATO_REGISTRY_TOKEN_TTL", default: "5m", help: "lifetime of access tokens (60s to 24h)" },
  { flag: "admin-user", env: "MINATO_REGISTRY_ADMIN_USER", default: "admin", help: "first admin, created when there are no users" },
  {
    flag: "admin-password",
    env: "MINATO_REGISTRY_ADMIN_PASSWORD",
    default: "",
    help: "its password (use the env var); else generated, printed once",
  },
  {
    flag: "login-limit",
    env: "MINATO_REGISTRY_LOGIN_LIMIT",
    default: "10",
    help: "failed logins per user from one address per window, then 429",
  },
  {
    flag: "login-limit-addr",
    env: "MINATO_REGISTRY_LOGIN_LIMIT_ADDR",
    default: "50",
    help: "failed logins per client address per window, then 429",
  },
  { flag: "login-window", env: "MINATO_REGISTRY_LOGIN_WINDOW", default: "15m", help: "window of the login limits" },
  {
    flag: "notifications",
    env: "MINATO_REGISTRY_NOTIFICATIONS",
    default: "",
    help: "JSON file of webhook endpoints for push/pull/mount/delete events",
  },
  {
    flag: "drain-delay",
    env: "MINATO_REGISTRY_DRAIN_DELAY",
    default: "0s",
    help: "on SIGTERM, keep serving this long with /ready answering 503, then drain",
  },
  {
    flag: "audit-retention",
    env: "MINATO_REGISTRY_AUDIT_RETENTION",
    default: "90d",
    help: "keep audit trail entries this long (minato-registry audit)",
  },
  {
    flag: "metrics",
    env: "MINATO_REGISTRY_METRICS",
    default: "true",
    kind: "boolean",
    help: "record and serve Prometheus metrics at /metrics (admins or a metrics grant under token auth)",
  },
  {
    flag: "metrics-listen",
    env: "MINATO_REGISTRY_METRICS_LISTEN",
    default: "",
    help: "serve /metrics on this HOST:PORT instead, without auth (keep it private)",
  },
  {
    flag: "metrics-repository-labels",
    env: "MINATO_REGISTRY_METRICS_REPOSITORY_LABELS",
    default: "false",
    kind: "boolean",
    help: "add per-repository storage bytes and blob counts (one series per repository)",
  },
] as const satisfies readonly Setting[];

type SettingName = (typeof SETTINGS)[number]["flag"];

export { ConfigError, parseBoolean };

const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) throw new ConfigError(`invalid duration ${JSON.stringify(value)} (use e.g. 90s, 30m, 24h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "s"] as number;
  return Number(match[1]) * unit;
}

export function parseListen(value: string, flag = "--listen"): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new ConfigError(`${flag} must be HOST:PORT, not ${JSON.stringify(value)}`);
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}

/** `minato-registry serve`: its flags are the settings. */
export function serveOptions(command: Command): Command {
  return addSettings(command, SETTINGS);
}

/** Parses serve's flags alone (tests, embedding); the CLI parses them as part of its program. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): RegistryConfig {
  const command = serveOptions(quietErrors(new Command("serve")));
  try {
    command.parse(argv, { from: "user" });
  } catch (error) {
    throw new ConfigError((error as Error).message.replace(/^error: /, ""));
  }
  return resolveConfig(command.opts(), env);
}

/** Flags win over environment variables, which win over defaults. */
export function resolveConfig(options: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): RegistryConfig {
  const get: (flag: SettingName) => string = settingReader(SETTINGS, options, env);

  const { host, port } = parseListen(get("listen"));
  const logLevel = get("log-level") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(", ")}`);
  const tlsCert = get("tls-cert") || undefined;
  const tlsKey = get("tls-key") || undefined;
  if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new ConfigError("--tls-cert and --tls-key go together");
  const maxManifestBytes = Number(get("max-manifest-size"));
  if (!Number.isSafeInteger(maxManifestBytes) || maxManifestBytes < 1024)
    throw new ConfigError("--max-manifest-size must be an integer ≥ 1024");

  let auth: ReturnType<typeof resolveAuthConfig>;
  try {
    auth = resolveAuthConfig(host, get, parseDuration);
  } catch (error) {
    throw error instanceof ConfigError ? error : new ConfigError((error as Error).message);
  }

  const gcIntervalMs = parseDuration(get("gc-interval"));
  if (gcIntervalMs < 1) throw new ConfigError("--gc-interval must be positive (turn collection off with --no-gc)");
  const policyFile = get("policy");
  const metricsListen = get("metrics-listen");
  const notificationsFile = get("notifications");
  const auditRetentionMs = parseDuration(get("audit-retention"));
  if (auditRetentionMs < 60_000) throw new ConfigError("--audit-retention must be at least 1m");
  const proxyFile = get("proxy-config");

  return {
    host,
    port,
    dataDir: resolve(get("data")),
    ...(tlsCert ? { tlsCert, tlsKey } : {}),
    deletesEnabled: parseBoolean("deletes", get("deletes")),
    logLevel,
    uploadTtlMs: parseDuration(get("upload-ttl")),
    maxManifestBytes,
    ...auth,
    storage: loadStorageConfig((flag) => get(flag as SettingName)),
    limits: loadLimits(get),
    ...(parseBoolean("gc", get("gc"))
      ? {
          gc: {
            intervalMs: gcIntervalMs,
            graceMs: parseDuration(get("gc-grace")),
            deleteUntagged: parseBoolean("gc-delete-untagged", get("gc-delete-untagged")),
          },
        }
      : {}),
    ...(policyFile ? { policy: loadPolicy(policyFile) } : {}),
    ...(notificationsFile ? { notifications: loadNotifications(notificationsFile) } : {}),
    auditRetentionMs,
    drainDelayMs: parseDuration(get("drain-delay")),
    metrics: {
      enabled: parseBoolean("metrics", get("metrics")),
      ...(metricsListen ? { listen: parseListen(metricsListen, "--metrics-listen") } : {}),
      repositoryLabels: parseBoolean("metrics-repository-labels", get("metrics-repository-labels")),
    },
    ...(proxyFile ? { proxy: loadProxyConfig(proxyFile, env) } : {}),
  };
}
