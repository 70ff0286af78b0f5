import { resolve } from "node:path";
import { parseArgs } from "node:util";

export interface EngineConfig {
  /** Persistent state: content, snapshots, metadata database. */
  dataRoot: string;
  /** Runtime state: the API socket, pid file; gone at reboot. */
  execRoot: string;
  /** Path of the API's unix socket. */
  socket: string;
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "silent";
  /** Registries reached over plain HTTP besides loopback ones (dockerd's --insecure-registry). */
  insecureRegistries: string[];
  /** Layers downloaded at once per pull (dockerd's --max-concurrent-downloads). */
  maxConcurrentDownloads: number;
  maxConcurrentUploads: number;
  /** dockerd's --userns-remap: `default` or USER[:GROUP]; containers' root is a subordinate id of that user. */
  usernsRemap?: string;
}

export class ConfigError extends Error {}

export const USAGE = `Usage: minatod [flags]

The Minato engine daemon: images, containers, builds, volumes and networks,
served as the Docker Engine API on a unix socket. Runs as root.

Flags (named as dockerd's):
  --data-root DIR                 persistent state (default /var/lib/minato)     MINATO_DATA_ROOT
  --exec-root DIR                 runtime state (default /run/minato)            MINATO_EXEC_ROOT
  -H, --host unix://PATH          API socket (default unix://<exec-root>/minato.sock) MINATO_HOST
  --insecure-registry HOST[:PORT] plain-HTTP registry (repeatable; loopback always is)
  --max-concurrent-downloads N    layers pulled at once (default 3)
  --max-concurrent-uploads N      layers pushed at once (default 5)
  --log-level LEVEL               trace|debug|info|warn|error (default info)
  --userns-remap default|USER[:GROUP]  run containers in a user namespace whose root is
                                  a subordinate id of USER (/etc/subuid, /etc/subgid;
                                  default: the dockremap user, created)          MINATO_USERNS_REMAP
  -h, --help                      show this help
`;

function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(`--${name} must be a positive integer`);
  return n;
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): EngineConfig {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        "data-root": { type: "string" },
        "exec-root": { type: "string" },
        host: { type: "string", short: "H" },
        "insecure-registry": { type: "string", multiple: true },
        "max-concurrent-downloads": { type: "string" },
        "max-concurrent-uploads": { type: "string" },
        "log-level": { type: "string" },
        "userns-remap": { type: "string" },
      },
      strict: true,
    }));
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const usernsRemap = (values["userns-remap"] as string | undefined) ?? (env.MINATO_USERNS_REMAP || undefined);
  if (usernsRemap === "") throw new ConfigError("--userns-remap needs default or USER[:GROUP]");
  const dataRoot = resolve((values["data-root"] as string | undefined) ?? env.MINATO_DATA_ROOT ?? "/var/lib/minato");
  const execRoot = resolve((values["exec-root"] as string | undefined) ?? env.MINATO_EXEC_ROOT ?? "/run/minato");
  const host = (values.host as string | undefined) ?? env.MINATO_HOST ?? `unix://${execRoot}/minato.sock`;
  if (!host.startsWith("unix://")) throw new ConfigError(`--host must be unix://PATH, not ${JSON.stringify(host)}`);
  const logLevel = ((values["log-level"] as string | undefined) ?? env.MINATO_LOG_LEVEL ?? "info") as EngineConfig["logLevel"];
  if (!["trace", "debug", "info", "warn", "error", "silent"].includes(logLevel)) throw new ConfigError(`invalid --log-level ${logLevel}`);
  return {
    dataRoot,
    execRoot,
    socket: resolve(host.slice("unix://".length)),
    logLevel,
    insecureRegistries: (values["insecure-registry"] as string[] | undefined) ?? [],
    maxConcurrentDownloads: positiveInteger("max-concurrent-downloads", values["max-concurrent-downloads"] as string | undefined, 3),
    maxConcurrentUploads: positiveInteger("max-concurrent-uploads", values["max-concurrent-uploads"] as string | undefined, 5),
    ...(usernsRemap ? { usernsRemap } : {}),
  };
}
