// `minato system df [-v]`: disk usage in docker's layout (cli/command/formatter/disk_usage.go).
import { familiarName, parseImageReference } from "@minato/oci";
import { defineCommand } from "../command.js";
import { CliError } from "../errors.js";
import { alignColumns } from "../output/tabwriter.js";
import { ellipsis, shortId } from "../output/text.js";
import { humanSize, humanSizeWithPrecision, timeAgo } from "../output/units.js";

interface Counts<T> {
  ActiveCount: number;
  TotalCount: number;
  Reclaimable: number;
  TotalSize: number;
  Items?: T[];
}

interface ImageItem {
  Id: string;
  RepoTags: string[];
  Created: number;
  Size: number;
  SharedSize: number;
  Containers: number;
}

interface ContainerItem {
  Id: string;
  Names: string[];
  Image: string;
  Command: string;
  Created: number;
  Status: string;
  SizeRw?: number;
  Mounts?: { Type?: string }[];
}

interface VolumeItem {
  Name: string;
  UsageData?: { Size: number; RefCount: number } | null;
}

interface CacheItem {
  ID: string;
  Type: string;
  Size: number;
  CreatedAt: string;
  LastUsedAt?: string | null;
  UsageCount?: number;
  InUse: boolean;
  Shared: boolean;
}

interface DiskUsage {
  ImageUsage?: Counts<ImageItem>;
  ContainerUsage?: Counts<ContainerItem>;
  VolumeUsage?: Counts<VolumeItem>;
  BuildCacheUsage?: Counts<CacheItem>;
}

/** "1.2MB (50%)", as docker shows a reclaimable size next to its total. */
function reclaimable(bytes: number, total: number, percent: boolean): string {
  if (!percent || total <= 0) return humanSize(bytes);
  return `${humanSize(bytes)} (${Math.trunc((bytes * 100) / total)}%)`;
}

const seconds = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : Number.NaN);

function summaryTable(usage: DiskUsage): string {
  let text = "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE\n";
  const row = (label: string, counts: Counts<unknown> | undefined, percent: boolean) => {
    if (!counts) return;
    text += `${label}\t${counts.TotalCount}\t${counts.ActiveCount}\t${humanSize(counts.TotalSize)}\t${reclaimable(counts.Reclaimable, counts.TotalSize, percent)}\n`;
  };
  row("Images", usage.ImageUsage, true);
  row("Containers", usage.ContainerUsage, true);
  row("Local Volumes", usage.VolumeUsage, true);
  row("Build Cache", usage.BuildCacheUsage, false);
  return alignColumns(text);
}

function verboseTables(usage: DiskUsage): string {
  let out = "Images space usage:\n\n";
  let images = "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n";
  for (const image of usage.ImageUsage?.Items ?? []) {
    const tags = image.RepoTags.length > 0 ? image.RepoTags : ["<none>:<none>"];
    for (const tag of tags) {
      let repository = "<none>";
      let name = "<none>";
      if (tag !== "<none>:<none>") {
        const reference = parseImageReference(tag);
        repository = familiarName(reference);
        name = reference.tag ?? "<none>";
      }
      images += `${repository}\t${name}\t${shortId(image.Id)}\t${timeAgo(image.Created)}\t${humanSizeWithPrecision(image.Size, 3)}\t${humanSize(image.SharedSize)}\t${humanSize(image.Size - image.SharedSize)}\t${image.Containers}\n`;
    }
  }
  out += `${alignColumns(images)}\nContainers space usage:\n\n`;
  let containers = "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n";
  for (const c of usage.ContainerUsage?.Items ?? []) {
    const volumes = (c.Mounts ?? []).filter((m) => m.Type === "volume").length;
    const names = c.Names.map((n) => n.replace(/^\//, "")).join(",");
    containers += `${shortId(c.Id)}\t${c.Image}\t"${ellipsis(c.Command, 20)}"\t${volumes}\t${humanSize(c.SizeRw ?? 0)}\t${timeAgo(c.Created)}\t${c.Status}\t${names}\n`;
  }
  out += `${alignColumns(containers)}\nLocal Volumes space usage:\n\n`;
  let volumes = "VOLUME NAME\tLINKS\tSIZE\n";
  for (const v of usage.VolumeUsage?.Items ?? [])
    volumes += `${v.Name}\t${v.UsageData?.RefCount ?? 0}\t${humanSize(v.UsageData?.Size ?? 0)}\n`;
  out += `${alignColumns(volumes)}\nBuild cache usage: ${humanSize(usage.BuildCacheUsage?.TotalSize ?? 0)}\n\n`;
  let cache = "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED\n";
  for (const entry of usage.BuildCacheUsage?.Items ?? []) {
    const lastUsed = Number.isNaN(seconds(entry.LastUsedAt)) ? "" : timeAgo(seconds(entry.LastUsedAt));
    cache += `${entry.ID.slice(0, 12)}${entry.InUse ? "*" : ""}\t${entry.Type}\t${humanSize(entry.Size)}\t${timeAgo(seconds(entry.CreatedAt))}\t${lastUsed}\t${entry.UsageCount ?? ""}\t${entry.Shared}\n`;
  }
  return out + alignColumns(cache);
}

export const diskUsageCommand = defineCommand<{ verbose?: boolean }>({
  name: "df",
  usage: "[OPTIONS]",
  description: "Show minato disk usage",
  options: (command) => command.option("-v, --verbose", "Show detailed information on space usage"),
  async run(context, _args, options) {
    const usage = await context.client.json<DiskUsage>("GET", "/system/df", { query: { verbose: options.verbose ? "1" : undefined } });
    if (!usage.ImageUsage) throw new CliError("the daemon's /system/df answer has no ImageUsage: it speaks an API older than 1.52");
    context.out(options.verbose ? verboseTables(usage) : summaryTable(usage));
    return 0;
  },
});
