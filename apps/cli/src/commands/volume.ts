// `minato volume …` (create, ls, inspect, rm, prune) and the mount flags of `run`/`create`
// (-v, --mount, --volumes-from).
import { type CommandGroup, collect, defineCommand } from "../command.js";
import { UsageError } from "../errors.js";
import { formatList, type ListFormat } from "../output/formatter.js";
import { humanSize } from "../output/units.js";
import { confirm } from "../prompt.js";
import { eachName, filtersParam } from "./common.js";
import { inspectAll } from "./network.js";

export interface VolumeFlags {
  volume?: string[];
  mount?: string[];
  volumesFrom?: string[];
}

/** `--mount type=…,src=…,dst=…,readonly,…` (docker's opts.MountOpt) as swagger `Mount`. */
export function parseMount(spec: string): Record<string, unknown> {
  const fail = (why: string) => new UsageError(`invalid argument "${spec}" for "--mount" flag: ${why}`);
  const mount: Record<string, unknown> = { Type: "volume" };
  const bind: Record<string, unknown> = {};
  const volume: Record<string, unknown> = {};
  const tmpfs: Record<string, unknown> = {};
  for (const field of spec.split(",")) {
    const eq = field.indexOf("=");
    const key = (eq === -1 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? undefined : field.slice(eq + 1);
    const flag = () => value === undefined || ["1", "true"].includes(value.toLowerCase());
    switch (key) {
      case "type":
        mount.Type = value;
        break;
      case "source":
      case "src":
        mount.Source = value;
        break;
      case "target":
      case "dst":
      case "destination":
        mount.Target = value;
        break;
      case "readonly":
      case "ro":
        mount.ReadOnly = flag();
        break;
      case "bind-propagation":
        bind.Propagation = value;
        break;
      case "volume-nocopy":
        volume.NoCopy = flag();
        break;
      case "volume-label": {
        const labels = (volume.Labels ?? {}) as Record<string, string>;
        const [k = "", v = ""] = (value ?? "").split("=");
        labels[k] = v;
        volume.Labels = labels;
        break;
      }
      case "volume-driver":
        volume.DriverConfig = { Name: value };
        break;
      case "tmpfs-size": {
        const match = /^(\d+)([kmg]?)$/i.exec(value ?? "");
        if (!match) throw fail(`invalid value for tmpfs-size: ${value}`);
        tmpfs.SizeBytes = Number(match[1]) * ({ "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? "").toLowerCase()] as number);
        break;
      }
      case "tmpfs-mode":
        tmpfs.Mode = Number.parseInt(value ?? "", 8);
        break;
      default:
        throw fail(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!mount.Target) throw fail("target is required");
  if (Object.keys(bind).length > 0) mount.BindOptions = bind;
  if (Object.keys(volume).length > 0) mount.VolumeOptions = volume;
  if (Object.keys(tmpfs).length > 0) mount.TmpfsOptions = tmpfs;
  return mount;
}

/** Applies the mount flags: `-v /path` is an anonymous volume (Config.Volumes), other `-v`s are binds. */
export function applyVolumeFlags(flags: VolumeFlags, body: Record<string, unknown>, hostConfig: Record<string, unknown>): void {
  const binds: string[] = [];
  const anonymous: Record<string, object> = {};
  for (const spec of flags.volume ?? []) {
    if (spec === "") throw new UsageError(`invalid argument "" for "-v, --volume" flag: invalid empty volume spec`);
    if (!spec.includes(":")) anonymous[spec] = {};
    else binds.push(spec);
  }
  if (binds.length > 0) hostConfig.Binds = binds;
  if (Object.keys(anonymous).length > 0) body.Volumes = anonymous;
  if (flags.mount?.length) hostConfig.Mounts = flags.mount.map(parseMount);
  if (flags.volumesFrom?.length) hostConfig.VolumesFrom = flags.volumesFrom;
}

interface VolumeJson {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt?: string;
  Labels?: Record<string, string> | null;
  Scope: string;
}

const VOLUME_FORMAT: ListFormat = {
  table: "table {{.Driver}}\\t{{.Name}}",
  quiet: "{{.Name}}",
  headers: { Driver: "DRIVER", Name: "VOLUME NAME", Mountpoint: "MOUNTPOINT", Scope: "SCOPE", Labels: "LABELS", CreatedAt: "CREATED AT" },
};

const labelsOf = (flags: string[] | undefined) =>
  Object.fromEntries((flags ?? []).map((l) => (l.includes("=") ? [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] : [l, ""])));

const volumePath = (name: string) => `/volumes/${encodeURIComponent(name)}`;

const create = defineCommand<{ driver?: string; label?: string[]; opt?: string[]; name?: string }>({
  name: "create",
  usage: "[OPTIONS] [VOLUME]",
  description: "Create a volume",
  args: { min: 0, max: 1 },
  options: (command) =>
    command
      .option("-d, --driver <string>", "Specify volume driver name", "local")
      .option("--label <list>", "Set metadata for a volume", collect)
      .option("-o, --opt <map>", "Set driver specific options", collect)
      .option("--name <string>", "Specify volume name"),
  async run(context, [name], options) {
    if (name && options.name && name !== options.name)
      throw new UsageError(`conflicting options: cannot specify a volume-name through both --name and as a positional arg`);
    const created = await context.client.json<VolumeJson>("POST", "/volumes/create", {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        Name: name ?? options.name ?? "",
        Driver: options.driver,
        Labels: labelsOf(options.label),
        DriverOpts: labelsOf(options.opt),
      }),
    });
    context.out(`${created.Name}\n`);
    return 0;
  },
});

const list = defineCommand<{ filter?: string[]; format?: string; quiet?: boolean }>({
  name: "ls",
  aliases: ["list"],
  usage: "[OPTIONS]",
  description: "List volumes",
  options: (command) =>
    command
      .option("-f, --filter <filter>", 'Provide filter values (e.g. "dangling=true")', collect)
      .option("--format <string>", "Format output using a custom template")
      .option("-q, --quiet", "Only display volume names"),
  async run(context, _args, options) {
    const result = await context.client.json<{ Volumes: VolumeJson[] | null }>("GET", "/volumes", {
      query: { filters: filtersParam(options.filter) },
    });
    const rows = (result.Volumes ?? []).map((v) => ({
      Driver: v.Driver,
      Name: v.Name,
      Mountpoint: v.Mountpoint,
      Scope: v.Scope,
      CreatedAt: v.CreatedAt ?? "",
      Labels: Object.entries(v.Labels ?? {})
        .map(([k, val]) => `${k}=${val}`)
        .join(","),
    }));
    context.out(formatList(rows, VOLUME_FORMAT, { format: options.format, quiet: options.quiet ?? false }));
    return 0;
  },
});

const inspect = defineCommand<{ format?: string }>({
  name: "inspect",
  usage: "[OPTIONS] VOLUME [VOLUME...]",
  description: "Display detailed information on one or more volumes",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) => command.option("-f, --format <string>", "Format output using a custom template"),
  async run(context, names, options) {
    return inspectAll(context, names, volumePath, options.format);
  },
});

const remove = defineCommand<{ force?: boolean }>({
  name: "rm",
  aliases: ["remove"],
  usage: "[OPTIONS] VOLUME [VOLUME...]",
  description: "Remove one or more volumes",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) => command.option("-f, --force", "Force the removal of one or more volumes"),
  async run(context, names, options) {
    return eachName(context, names, async (name) => {
      await (await context.client.call("DELETE", volumePath(name), { query: { force: options.force || undefined } })).body.dump();
      return name;
    });
  },
});

const prune = defineCommand<{ all?: boolean; force?: boolean; filter?: string[] }>({
  name: "prune",
  usage: "[OPTIONS]",
  description: "Remove unused local volumes",
  options: (command) =>
    command
      .option("-a, --all", "Remove all unused volumes, not just anonymous ones")
      .option("--filter <filter>", 'Provide filter values (e.g. "label=<label>")', collect)
      .option("-f, --force", "Do not prompt for confirmation"),
  async run(context, _args, options) {
    if (
      !options.force &&
      !(await confirm(
        context,
        "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?",
      ))
    )
      return 0;
    const report = await context.client.json<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>("POST", "/volumes/prune", {
      query: { filters: filtersParam(options.filter, options.all ? { all: ["true"] } : {}) },
    });
    const deleted = report.VolumesDeleted ?? [];
    if (deleted.length > 0) context.out(`Deleted Volumes:\n${deleted.map((n) => `${n}\n`).join("")}\n`);
    context.out(`Total reclaimed space: ${humanSize(report.SpaceReclaimed ?? 0)}\n`);
    return 0;
  },
});

/** `minato volume …`. */
export const volumeGroup: CommandGroup = {
  name: "volume",
  description: "Manage volumes",
  commands: [create, list, inspect, remove, prune],
};
