import { CLIENT_API_VERSION } from "../client.js";
import { type CommandGroup, defineCommand } from "../command.js";
import type { Context } from "../context.js";
import { describeError } from "../errors.js";
import { formatEach } from "../output/formatter.js";
import { alignColumns } from "../output/tabwriter.js";
import { bytesSize } from "../output/units.js";
import { CLI_VERSION, CLIENT_ARCH } from "../version.js";
import { diskUsageCommand } from "./system-df.js";

/** swagger `SystemVersion`. */
interface ServerVersion {
  Platform?: { Name?: string };
  Components?: { Name: string; Version: string; Details?: Record<string, string> }[];
  Version?: string;
  ApiVersion?: string;
  MinAPIVersion?: string;
  GitCommit?: string;
  GoVersion?: string;
  Os?: string;
  Arch?: string;
  KernelVersion?: string;
  Experimental?: boolean;
  BuildTime?: string;
}

async function clientVersion(context: Context, negotiate: boolean) {
  const apiVersion = negotiate ? await context.client.apiVersion().catch(() => CLIENT_API_VERSION) : CLIENT_API_VERSION;
  return {
    Platform: { Name: "" },
    Version: CLI_VERSION,
    ApiVersion: apiVersion,
    DefaultAPIVersion: CLIENT_API_VERSION,
    NodeVersion: process.version,
    Os: process.platform,
    Arch: CLIENT_ARCH,
    Context: "default",
  };
}

/** The `docker version` layout: labels and values aligned by a tabwriter 20 columns wide. */
function versionText(client: Awaited<ReturnType<typeof clientVersion>>, server: ServerVersion | undefined): string {
  let text = "Client:\n";
  text += ` Version:\t${client.Version}\n`;
  text += ` API version:\t${client.ApiVersion}${client.ApiVersion !== client.DefaultAPIVersion ? ` (downgraded from ${client.DefaultAPIVersion})` : ""}\n`;
  text += ` Node version:\t${client.NodeVersion}\n`;
  text += ` OS/Arch:\t${client.Os}/${client.Arch}\n`;
  text += ` Context:\t${client.Context}\n`;
  if (server) {
    const name = server.Platform?.Name;
    text += `\nServer:${name ? ` ${name}` : ""}\n`;
    const engine = server.Components?.find((c) => c.Name === "Engine");
    text += " Engine:\n";
    const detail = (key: keyof ServerVersion & string) => engine?.Details?.[key] ?? String(server[key] ?? "");
    text += `  Version:\t${engine?.Version ?? server.Version ?? ""}\n`;
    text += `  API version:\t${detail("ApiVersion")} (minimum version ${detail("MinAPIVersion")})\n`;
    const runtime = server.GoVersion ?? "";
    if (runtime) text += `  ${runtime.startsWith("node") ? "Node" : "Go"} version:\t${runtime}\n`;
    if (server.GitCommit) text += `  Git commit:\t${server.GitCommit}\n`;
    if (server.BuildTime) text += `  Built:\t${server.BuildTime}\n`;
    text += `  OS/Arch:\t${detail("Os")}/${server.Arch ?? ""}\n`;
    text += `  Experimental:\t${server.Experimental ?? false}\n`;
    for (const component of server.Components ?? []) {
      if (component.Name === "Engine") continue;
      text += ` ${component.Name}:\n  Version:\t${component.Version}\n`;
    }
  }
  return alignColumns(text, { minWidth: 20, padding: 1 });
}

const version = defineCommand<{ format?: string }>({
  name: "version",
  usage: "[OPTIONS]",
  description: "Show the Minato version information",
  options: (command) =>
    command.option("-f, --format <string>", "Format output using a custom template:\n'json': JSON\n'TEMPLATE': the given Go template"),
  async run(context, _args, options) {
    let server: ServerVersion | undefined;
    let failure: unknown;
    try {
      server = await context.client.json<ServerVersion>("GET", "/version");
    } catch (error) {
      failure = error;
    }
    const client = await clientVersion(context, server !== undefined);
    if (options.format) {
      const format = options.format === "json" ? "{{json .}}" : options.format;
      context.out(formatEach([{ Client: client, Server: server ?? null }], format));
    } else {
      context.out(versionText(client, server));
    }
    if (failure) {
      context.err(`${describeError(failure).line}\n`);
      return 1;
    }
    return 0;
  },
});

/** swagger `SystemInfo`, the parts `info` prints. */
interface SystemInfo {
  ID?: string;
  Containers?: number;
  ContainersRunning?: number;
  ContainersPaused?: number;
  ContainersStopped?: number;
  Images?: number;
  Driver?: string;
  DriverStatus?: [string, string][] | null;
  DockerRootDir?: string;
  Name?: string;
  ServerVersion?: string;
  OperatingSystem?: string;
  OSType?: string;
  Architecture?: string;
  KernelVersion?: string;
  NCPU?: number;
  MemTotal?: number;
  IndexServerAddress?: string;
  RegistryConfig?: {
    InsecureRegistryCIDRs?: string[];
    IndexConfigs?: Record<string, { Name: string; Secure: boolean }>;
    Mirrors?: string[];
  };
  Debug?: boolean;
  ExperimentalBuild?: boolean;
  LiveRestoreEnabled?: boolean;
  CgroupDriver?: string;
  CgroupVersion?: string;
  Runtimes?: Record<string, { path?: string }>;
  DefaultRuntime?: string;
  Swarm?: { LocalNodeState?: string };
  Labels?: string[] | null;
  Warnings?: string[] | null;
  [key: string]: unknown;
}

function clientInfo() {
  return { Version: CLI_VERSION, Context: "default", Debug: false };
}

function clientInfoText(): string {
  const info = clientInfo();
  return `Client:\n Version:    ${info.Version}\n Context:    ${info.Context}\n Debug Mode: ${info.Debug}\n`;
}

/** The server half of `docker info` (docker/cli system/info.go, the parts minatod reports). */
function serverInfoText(info: SystemInfo): string {
  const lines: string[] = ["Server:"];
  const add = (line: string, value: unknown) => {
    if (value !== undefined && value !== null && value !== "") lines.push(`${line}: ${value}`);
  };
  add(" Containers", info.Containers ?? 0);
  add("  Running", info.ContainersRunning ?? 0);
  add("  Paused", info.ContainersPaused ?? 0);
  add("  Stopped", info.ContainersStopped ?? 0);
  add(" Images", info.Images ?? 0);
  add(" Server Version", info.ServerVersion);
  add(" Storage Driver", info.Driver);
  for (const [key, value] of info.DriverStatus ?? []) add(`  ${key}`, value);
  add(" Cgroup Driver", info.CgroupDriver);
  add(" Cgroup Version", info.CgroupVersion);
  if (info.Runtimes) add(" Runtimes", Object.keys(info.Runtimes).join(" "));
  add(" Default Runtime", info.DefaultRuntime);
  add(" Swarm", info.Swarm?.LocalNodeState);
  add(" Kernel Version", info.KernelVersion);
  add(" Operating System", info.OperatingSystem);
  add(" OSType", info.OSType);
  add(" Architecture", info.Architecture);
  add(" CPUs", info.NCPU);
  if (info.MemTotal !== undefined) add(" Total Memory", bytesSize(info.MemTotal));
  add(" Name", info.Name);
  add(" ID", info.ID);
  add(" Minato Root Dir", info.DockerRootDir);
  add(" Debug Mode", info.Debug ?? false);
  add(" Experimental", info.ExperimentalBuild ?? false);
  const labels = info.Labels ?? [];
  if (labels.length) lines.push(" Labels:", ...labels.map((l) => `  ${l}`));
  const insecure = [
    ...Object.values(info.RegistryConfig?.IndexConfigs ?? {})
      .filter((c) => !c.Secure && c.Name !== "docker.io")
      .map((c) => c.Name),
    ...(info.RegistryConfig?.InsecureRegistryCIDRs ?? []),
  ];
  if (insecure.length) lines.push(" Insecure Registries:", ...insecure.map((r) => `  ${r}`));
  const mirrors = info.RegistryConfig?.Mirrors ?? [];
  if (mirrors.length) lines.push(" Registry Mirrors:", ...mirrors.map((m) => `  ${m}`));
  add(" Live Restore Enabled", info.LiveRestoreEnabled ?? false);
  return `${lines.join("\n")}\n`;
}

const info = defineCommand<{ format?: string }>({
  name: "info",
  shortcuts: ["info"],
  usage: "[OPTIONS]",
  description: "Display system-wide information",
  options: (command) =>
    command.option("-f, --format <string>", "Format output using a custom template:\n'json': JSON\n'TEMPLATE': the given Go template"),
  async run(context, _args, options) {
    if (options.format) {
      const server = await context.client.json<SystemInfo>("GET", "/info");
      const format = options.format === "json" ? "{{json .}}" : options.format;
      context.out(formatEach([{ ...server, ClientInfo: clientInfo() }], format));
      return 0;
    }
    context.out(clientInfoText());
    let server: SystemInfo;
    try {
      server = await context.client.json<SystemInfo>("GET", "/info");
    } catch (error) {
      context.out("\nServer:\n");
      context.err(`ERROR: ${describeError(error).line}\n`);
      return 1;
    }
    context.out(`\n${serverInfoText(server)}`);
    for (const warning of server.Warnings ?? []) context.err(`WARNING: ${warning}\n`);
    return 0;
  },
});

/** `minato system …` (with `info` also at the top level) and `minato version`. */
export const systemGroups: CommandGroup[] = [
  { commands: [version] },
  { name: "system", description: "Manage Minato", commands: [info, diskUsageCommand] },
];
