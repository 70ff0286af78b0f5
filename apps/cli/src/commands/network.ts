// `minato network …` (create, ls, inspect, rm, prune, connect, disconnect), `minato port`, and the
// network flags of `run`/`create` (-p, -P, --expose, --ip, --network-alias, --add-host, --dns).
import { type CommandGroup, collect, defineCommand } from "../command.js";
import type { Context } from "../context.js";
import { CliError, DaemonError, UsageError } from "../errors.js";
import { formatEach, formatList, type ListFormat } from "../output/formatter.js";
import { indentedJson, shortId } from "../output/text.js";
import { confirm } from "../prompt.js";
import { eachName, filtersParam } from "./common.js";

export interface NetworkFlags {
  publish?: string[];
  publishAll?: boolean;
  expose?: string[];
  ip?: string;
  networkAlias?: string[];
  addHost?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  network?: string;
}

type PortBindings = Record<string, { HostIp: string; HostPort: string }[]>;

/**
 * `-p [ip:][hostPort:]containerPort[/proto]` (docker's nat.ParsePortSpec): ranges of equal length
 * map one to one; a missing host port means a random one.
 */
export function parsePublish(spec: string): { exposed: string[]; bindings: PortBindings } {
  const fail = () => new UsageError(`invalid argument "${spec}" for "-p, --publish" flag: invalid port specification: "${spec}"`);
  let rest = spec;
  let proto = "tcp";
  const slash = rest.lastIndexOf("/");
  if (slash !== -1) {
    proto = rest.slice(slash + 1).toLowerCase();
    rest = rest.slice(0, slash);
    if (!["tcp", "udp", "sctp"].includes(proto)) throw fail();
  }
  const parts = rest.split(":");
  if (parts.length > 3) throw fail();
  const containerText = parts.pop() as string;
  const hostText = parts.length > 0 ? (parts.pop() as string) : "";
  const hostIp = parts.length > 0 ? (parts.pop() as string).replace(/^\[|\]$/g, "") : "";
  const range = (text: string): [number, number] | undefined => {
    if (text === "") return undefined;
    const match = /^(\d+)(?:-(\d+))?$/.exec(text);
    if (!match) throw fail();
    const start = Number(match[1]);
    const end = Number(match[2] ?? match[1]);
    if (start < 1 || end > 65535 || end < start) throw fail();
    return [start, end];
  };
  const container = range(containerText);
  if (!container) throw fail();
  const host = range(hostText);
  const count = container[1] - container[0];
  if (host && host[1] - host[0] !== count && host[0] !== host[1]) throw fail();
  const exposed: string[] = [];
  const bindings: PortBindings = {};
  for (let i = 0; i <= count; i++) {
    const key = `${container[0] + i}/${proto}`;
    exposed.push(key);
    const hostPort = host ? (host[0] === host[1] && count > 0 ? String(host[0]) : String(host[0] + i)) : "";
    bindings[key] = [...(bindings[key] ?? []), { HostIp: hostIp, HostPort: hostPort }];
  }
  return { exposed, bindings };
}

/** Applies the network flags to a create body (Config) and its HostConfig. */
export function applyNetworkFlags(flags: NetworkFlags, body: Record<string, unknown>, hostConfig: Record<string, unknown>): void {
  const exposed: Record<string, object> = {};
  const bindings: PortBindings = {};
  for (const spec of flags.publish ?? []) {
    const parsed = parsePublish(spec);
    for (const key of parsed.exposed) exposed[key] = {};
    for (const [key, list] of Object.entries(parsed.bindings)) bindings[key] = [...(bindings[key] ?? []), ...list];
  }
  for (const spec of flags.expose ?? []) {
    const match = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
    if (!match) throw new UsageError(`invalid argument "${spec}" for "--expose" flag: invalid range format for --expose: ${spec}`);
    for (let port = Number(match[1]); port <= Number(match[2] ?? match[1]); port++)
      exposed[`${port}/${(match[3] ?? "tcp").toLowerCase()}`] = {};
  }
  if (Object.keys(exposed).length > 0) body.ExposedPorts = exposed;
  if (Object.keys(bindings).length > 0) hostConfig.PortBindings = bindings;
  if (flags.publishAll) hostConfig.PublishAllPorts = true;
  if (flags.addHost?.length) hostConfig.ExtraHosts = flags.addHost;
  if (flags.dns?.length) hostConfig.Dns = flags.dns;
  if (flags.dnsSearch?.length) hostConfig.DnsSearch = flags.dnsSearch;
  if (flags.dnsOption?.length) hostConfig.DnsOptions = flags.dnsOption;
  if (flags.ip || flags.networkAlias?.length) {
    const network = flags.network || "default";
    body.NetworkingConfig = {
      EndpointsConfig: {
        [network]: {
          ...(flags.ip ? { IPAMConfig: { IPv4Address: flags.ip } } : {}),
          ...(flags.networkAlias?.length ? { Aliases: flags.networkAlias } : {}),
        },
      },
    };
  }
}

interface NetworkJson {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
  Created: string;
  Internal: boolean;
  Labels?: Record<string, string> | null;
}

const NETWORK_FORMAT: ListFormat = {
  table: "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}",
  quiet: "{{.ID}}",
  headers: {
    ID: "NETWORK ID",
    Name: "NAME",
    Driver: "DRIVER",
    Scope: "SCOPE",
    CreatedAt: "CREATED AT",
    Internal: "INTERNAL",
    Labels: "LABELS",
  },
};

const labelsOf = (flags: string[] | undefined) =>
  Object.fromEntries((flags ?? []).map((l) => (l.includes("=") ? [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] : [l, ""])));

const networkPath = (name: string, suffix = "") => `/networks/${encodeURIComponent(name)}${suffix}`;

const create = defineCommand<{ driver?: string; subnet?: string; gateway?: string; internal?: boolean; label?: string[]; opt?: string[] }>({
  name: "create",
  usage: "[OPTIONS] NETWORK",
  description: "Create a network",
  args: { min: 1, max: 1 },
  options: (command) =>
    command
      .option("-d, --driver <string>", "Driver to manage the Network", "bridge")
      .option("--subnet <string>", "Subnet in CIDR format that represents a network segment")
      .option("--gateway <string>", "IPv4 Gateway for the master subnet")
      .option("--internal", "Restrict external access to the network")
      .option("--label <list>", "Set metadata on a network", collect)
      .option("-o, --opt <list>", "Set driver specific options", collect),
  async run(context, [name], options) {
    const created = await context.client.json<{ Id: string }>("POST", "/networks/create", {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        Name: name,
        Driver: options.driver,
        Internal: options.internal === true,
        Labels: labelsOf(options.label),
        Options: labelsOf(options.opt),
        IPAM: {
          Driver: "default",
          Config: options.subnet ? [{ Subnet: options.subnet, ...(options.gateway ? { Gateway: options.gateway } : {}) }] : [],
        },
      }),
    });
    context.out(`${created.Id}\n`);
    return 0;
  },
});

const list = defineCommand<{ filter?: string[]; format?: string; quiet?: boolean; trunc?: boolean }>({
  name: "ls",
  aliases: ["list"],
  usage: "[OPTIONS]",
  description: "List networks",
  options: (command) =>
    command
      .option("-f, --filter <filter>", 'Provide filter values (e.g. "driver=bridge")', collect)
      .option("--format <string>", "Format output using a custom template")
      .option("--no-trunc", "Do not truncate the output")
      .option("-q, --quiet", "Only display network IDs"),
  async run(context, _args, options) {
    const networks = await context.client.json<NetworkJson[]>("GET", "/networks", { query: { filters: filtersParam(options.filter) } });
    const rows = (networks ?? [])
      .sort((a, b) => a.Name.localeCompare(b.Name))
      .map((n) => ({
        ID: options.trunc === false ? n.Id : shortId(n.Id),
        Name: n.Name,
        Driver: n.Driver,
        Scope: n.Scope,
        CreatedAt: n.Created,
        Internal: String(n.Internal),
        Labels: Object.entries(n.Labels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(","),
      }));
    context.out(formatList(rows, NETWORK_FORMAT, { format: options.format, quiet: options.quiet ?? false }));
    return 0;
  },
});

/** inspect of several objects: found ones printed, "No such …" errors after them, status 1 if any missing. */
export async function inspectAll(
  context: Context,
  names: string[],
  path: (name: string) => string,
  format: string | undefined,
): Promise<number> {
  const found: unknown[] = [];
  const errors: string[] = [];
  for (const name of names) {
    try {
      found.push(await context.client.json("GET", path(name)));
    } catch (error) {
      if (!(error instanceof DaemonError) || error.status !== 404) throw error;
      errors.push(`Error: ${error.message}`);
    }
  }
  if (!format || format === "json") context.out(`${indentedJson(found)}\n`);
  else context.out(formatEach(found, format));
  for (const line of errors) context.err(`${line}\n`);
  return errors.length > 0 ? 1 : 0;
}

const inspect = defineCommand<{ format?: string }>({
  name: "inspect",
  usage: "[OPTIONS] NETWORK [NETWORK...]",
  description: "Display detailed information on one or more networks",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) => command.option("-f, --format <string>", "Format output using a custom template"),
  async run(context, names, options) {
    return inspectAll(context, names, (name) => networkPath(name), options.format);
  },
});

const remove = defineCommand({
  name: "rm",
  aliases: ["remove"],
  usage: "NETWORK [NETWORK...]",
  description: "Remove one or more networks",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  async run(context, names) {
    return eachName(context, names, async (name) => {
      await (await context.client.call("DELETE", networkPath(name))).body.dump();
      return name;
    });
  },
});

const prune = defineCommand<{ force?: boolean; filter?: string[] }>({
  name: "prune",
  usage: "[OPTIONS]",
  description: "Remove all unused networks",
  options: (command) =>
    command
      .option("--filter <filter>", 'Provide filter values (e.g. "label=<key>=<value>")', collect)
      .option("-f, --force", "Do not prompt for confirmation"),
  async run(context, _args, options) {
    if (
      !options.force &&
      !(await confirm(
        context,
        "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
      ))
    )
      return 0;
    const report = await context.client.json<{ NetworksDeleted: string[] | null }>("POST", "/networks/prune", {
      query: { filters: filtersParam(options.filter) },
    });
    const deleted = report.NetworksDeleted ?? [];
    if (deleted.length > 0) context.out(`Deleted Networks:\n${deleted.map((n) => `${n}\n`).join("")}`);
    return 0;
  },
});

const connect = defineCommand<{ ip?: string; alias?: string[] }>({
  name: "connect",
  usage: "[OPTIONS] NETWORK CONTAINER",
  description: "Connect a container to a network",
  args: { min: 2, max: 2 },
  options: (command) =>
    command
      .option("--ip <string>", "IPv4 address (e.g., 172.30.100.104)")
      .option("--alias <strings>", "Add network-scoped alias for the container", collect),
  async run(context, [network, container], options) {
    await (
      await context.client.call("POST", networkPath(network as string, "/connect"), {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          Container: container,
          EndpointConfig: {
            ...(options.ip ? { IPAMConfig: { IPv4Address: options.ip } } : {}),
            ...(options.alias ? { Aliases: options.alias } : {}),
          },
        }),
      })
    ).body.dump();
    return 0;
  },
});

const disconnect = defineCommand<{ force?: boolean }>({
  name: "disconnect",
  usage: "[OPTIONS] NETWORK CONTAINER",
  description: "Disconnect a container from a network",
  args: { min: 2, max: 2 },
  options: (command) => command.option("-f, --force", "Force the container to disconnect from a network"),
  async run(context, [network, container], options) {
    await (
      await context.client.call("POST", networkPath(network as string, "/disconnect"), {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ Container: container, Force: options.force === true }),
      })
    ).body.dump();
    return 0;
  },
});

/** `minato port CONTAINER [PRIVATE_PORT[/PROTO]]`: the published ports from the container's inspect. */
export const port = defineCommand({
  name: "port",
  shortcuts: ["port"],
  usage: "CONTAINER [PRIVATE_PORT[/PROTO]]",
  description: "List port mappings or a specific mapping for the container",
  args: { min: 1, max: 2 },
  async run(context, [container, wanted]) {
    const info = await context.client.json<{
      NetworkSettings?: { Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> | null };
    }>("GET", `/containers/${encodeURIComponent(container as string)}/json`);
    const ports = info.NetworkSettings?.Ports ?? {};
    if (wanted !== undefined) {
      const key = wanted.includes("/") ? wanted : `${wanted}/tcp`;
      const bindings = ports[key];
      if (!bindings || bindings.length === 0) throw new CliError(`Error: No public port '${key}' published for ${container}`);
      for (const b of bindings) context.out(`${b.HostIp}:${b.HostPort}\n`);
      return 0;
    }
    const keys = Object.keys(ports).sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
    for (const key of keys) for (const b of ports[key] ?? []) context.out(`${key} -> ${b.HostIp}:${b.HostPort}\n`);
    return 0;
  },
});

/** `minato network …`. */
export const networkGroup: CommandGroup = {
  name: "network",
  description: "Manage networks",
  commands: [create, list, inspect, remove, prune, connect, disconnect],
};
