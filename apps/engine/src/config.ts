import { resolve } from "node:path";
import { addSettings, ConfigError, quietErrors, type Setting, settingReader } from "@minato/settings";
import { Command } from "commander";

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
  /** Build stages run at once per build. */
  buildParallelism: number;
  /** Directory of the CNI plugins. */
  cniPath: string;
  /** dockerd's --userns-remap: `default` or USER[:GROUP]; containers' root is a subordinate id of that user. */
  usernsRemap?: string;
  /** dockerd's --metrics-addr: where Prometheus metrics are served (none when unset). */
  metricsAddr?: { host: string; port: number };
}

/** Every setting: its flag (named as dockerd's), environment variable, default and meaning (rendered by --help). */
export const SETTINGS = [
  {
    flag: "data-root",
    env: "MINATO_DATA_ROOT",
    default: "/var/lib/minato",
    value: "dir",
    help: "persistent state: images, containers, volumes",
  },
  { flag: "exec-root", env: "MINATO_EXEC_ROOT", default: "/run/minato", value: "dir", help: "runtime state: socket, pid file, netns" },
  {
    flag: "host",
    short: "-H",
    env: "MINATO_HOST",
    default: "",
    value: "unix://path",
    help: "API socket (default unix://<exec-root>/minato.sock)",
  },
  {
    flag: "insecure-registry",
    env: "MINATO_INSECURE_REGISTRIES",
    default: "",
    kind: "list",
    value: "host[:port]",
    help: "registry reached over plain HTTP (loopback ones always are)",
  },
  {
    flag: "max-concurrent-downloads",
    env: "MINATO_MAX_CONCURRENT_DOWNLOADS",
    default: "3",
    value: "n",
    help: "layers pulled at once per pull",
  },
  {
    flag: "max-concurrent-uploads",
    env: "MINATO_MAX_CONCURRENT_UPLOADS",
    default: "5",
    value: "n",
    help: "layers pushed at once per push",
  },
  { flag: "build-parallelism", env: "MINATO_BUILD_PARALLELISM", default: "4", value: "n", help: "build stages run at once per build" },
  {
    flag: "cni-path",
    env: "MINATO_CNI_PATH",
    default: "/usr/lib/cni",
    value: "dir",
    help: "directory of the CNI plugins (bridge, portmap…)",
  },
  {
    flag: "userns-remap",
    env: "MINATO_USERNS_REMAP",
    default: "",
    value: "default|user[:group]",
    help: "run containers in a user namespace whose root is a subordinate id of USER (/etc/subuid, /etc/subgid); default: the dockremap user, created",
  },
  {
    flag: "metrics-addr",
    env: "MINATO_METRICS_ADDR",
    default: "",
    value: "host:port",
    help: "serve Prometheus metrics at http://HOST:PORT/metrics, unauthenticated: keep it on loopback (default: not served)",
  },
  { flag: "log-level", env: "MINATO_LOG_LEVEL", default: "info", value: "level", help: "trace|debug|info|warn|error|silent" },
] as const satisfies readonly Setting[];

type SettingName = (typeof SETTINGS)[number]["flag"];

export { ConfigError };

/** minatod's flags are the settings. */
export function daemonOptions(command: Command): Command {
  return addSettings(command, SETTINGS);
}

function positiveInteger(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new ConfigError(`--${name} must be a positive integer, not ${JSON.stringify(value)}`);
  return n;
}

/** `HOST:PORT` as dockerd's --metrics-addr; an IPv6 host in brackets. */
export function parseMetricsAddr(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535)
    throw new ConfigError(`--metrics-addr must be HOST:PORT (e.g. 127.0.0.1:9323 or [::1]:9323), not ${JSON.stringify(value)}`);
  return { host: (match[1] ?? match[2]) as string, port };
}

/** Parses the flags alone (tests, embedding); the CLI parses them as its program. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const command = daemonOptions(quietErrors(new Command("minatod")));
  try {
    command.parse(argv, { from: "user" });
  } catch (error) {
    throw new ConfigError((error as Error).message.replace(/^error: /, ""));
  }
  return resolveConfig(command.opts(), env);
}

/** Flags win over environment variables, which win over defaults. */
export function resolveConfig(options: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const get: (flag: SettingName) => string = settingReader(SETTINGS, options, env);
  const dataRoot = resolve(get("data-root"));
  const execRoot = resolve(get("exec-root"));
  const host = get("host") || `unix://${execRoot}/minato.sock`;
  const usernsRemap = get("userns-remap") || undefined;
  const metricsAddr = get("metrics-addr") ? parseMetricsAddr(get("metrics-addr")) : undefined;
  if (!host.startsWith("unix://")) throw new ConfigError(`--host must be unix://PATH, not ${JSON.stringify(host)}`);
  const logLevel = get("log-level") as EngineConfig["logLevel"];
  if (!["trace", "debug", "info", "warn", "error", "silent"].includes(logLevel))
    throw new ConfigError(`--log-level must be one of trace, debug, info, warn, error, silent, not ${JSON.stringify(logLevel)}`);
  return {
    dataRoot,
    execRoot,
    socket: resolve(host.slice("unix://".length)),
    logLevel,
    insecureRegistries: get("insecure-registry")
      .split(",")
      .map((entry) => entry.trim())
      .filter(Boolean),
    maxConcurrentDownloads: positiveInteger("max-concurrent-downloads", get("max-concurrent-downloads")),
    maxConcurrentUploads: positiveInteger("max-concurrent-uploads", get("max-concurrent-uploads")),
    buildParallelism: positiveInteger("build-parallelism", get("build-parallelism")),
    cniPath: resolve(get("cni-path")),
    ...(usernsRemap ? { usernsRemap } : {}),
    ...(metricsAddr ? { metricsAddr } : {}),
  };
}
