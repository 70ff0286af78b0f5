// `minato top` and `minato stats`: what a container's processes are and what they use, computed and
// laid out as the docker CLI does (cli/command/container/stats_helpers.go).
import { setTimeout as sleep } from "node:timers/promises";
import { defineCommand } from "../command.js";
import type { Context } from "../context.js";
import { DaemonError } from "../errors.js";
import { formatList, type ListFormat } from "../output/formatter.js";
import { shortId } from "../output/text.js";
import { bytesSize, humanSizeWithPrecision } from "../output/units.js";
import { type ContainerSummary, containerPath } from "./container.js";

/** The fields of swagger `ContainerStatsResponse` the table reads. */
export interface StatsResponse {
  id?: string;
  name?: string;
  read?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
  blkio_stats?: { io_service_bytes_recursive?: { op: string; value: number }[] | null };
  pids_stats?: { current?: number };
}

export const STATS_FORMAT: ListFormat = {
  table: "table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.NetIO}}\\t{{.BlockIO}}\\t{{.PIDs}}",
  quiet: "{{.ID}}",
  headers: {
    BlockIO: "BLOCK I/O",
    CPUPerc: "CPU %",
    Container: "CONTAINER",
    ID: "CONTAINER ID",
    MemPerc: "MEM %",
    MemUsage: "MEM USAGE / LIMIT",
    Name: "NAME",
    NetIO: "NET I/O",
    PIDs: "PIDS",
  },
};

/** One row of `docker stats` from a stats sample (with its previous CPU sample inside). */
export function statsRow(container: string, s: StatsResponse, options: { noTrunc?: boolean } = {}): Record<string, string> {
  const cpuDelta = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const cpus = s.cpu_stats?.online_cpus || s.cpu_stats?.cpu_usage?.percpu_usage?.length || 0;
  const cpuPercent = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0;
  const stats = s.memory_stats?.stats ?? {};
  // Page cache the kernel can drop is not usage: v1's total_inactive_file, v2's inactive_file.
  const inactive = stats.total_inactive_file ?? stats.inactive_file ?? 0;
  const usage = s.memory_stats?.usage ?? 0;
  const memory = inactive < usage ? usage - inactive : usage;
  const limit = s.memory_stats?.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const network of Object.values(s.networks ?? {})) {
    rx += network.rx_bytes ?? 0;
    tx += network.tx_bytes ?? 0;
  }
  let read = 0;
  let written = 0;
  for (const entry of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    if (entry.op.toLowerCase() === "read") read += entry.value;
    if (entry.op.toLowerCase() === "write") written += entry.value;
  }
  const id = s.id ?? container;
  return {
    Container: container,
    ID: options.noTrunc ? id : shortId(id),
    Name: (s.name ?? "").replace(/^\//, "") || "--",
    CPUPerc: `${cpuPercent.toFixed(2)}%`,
    MemUsage: `${bytesSize(memory)} / ${bytesSize(limit)}`,
    MemPerc: `${(limit > 0 ? (memory / limit) * 100 : 0).toFixed(2)}%`,
    NetIO: `${humanSizeWithPrecision(rx, 3)} / ${humanSizeWithPrecision(tx, 3)}`,
    BlockIO: `${humanSizeWithPrecision(read, 3)} / ${humanSizeWithPrecision(written, 3)}`,
    PIDs: String(s.pids_stats?.current ?? 0),
  };
}

const top = defineCommand({
  name: "top",
  shortcuts: ["top"],
  usage: "CONTAINER [ps OPTIONS]",
  description: "Display the running processes of a container",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) => {
    // Everything after CONTAINER is for ps.
    command.parent?.enablePositionalOptions();
    command.passThroughOptions();
  },
  async run(context, [name, ...psArgs]) {
    const result = await context.client.json<{ Titles: string[]; Processes: string[][] | null }>(
      "GET",
      containerPath(name as string, "/top"),
      { query: { ps_args: psArgs.length > 0 ? psArgs.join(" ") : undefined } },
    );
    const rows = [result.Titles, ...(result.Processes ?? [])];
    const widths = result.Titles.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
    const lines = rows.map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 3)))
        .join("")
        .trimEnd(),
    );
    context.out(`${lines.join("\n")}\n`);
    return 0;
  },
});

async function sampleOnce(context: Context, name: string): Promise<StatsResponse> {
  return context.client.json<StatsResponse>("GET", containerPath(name, "/stats"), { query: { stream: "false" } });
}

const stats = defineCommand<{ all?: boolean; stream?: boolean; format?: string; trunc?: boolean }>({
  name: "stats",
  shortcuts: ["stats"],
  usage: "[OPTIONS] [CONTAINER...]",
  description: "Display a live stream of container(s) resource usage statistics",
  args: { min: 0, max: Number.POSITIVE_INFINITY },
  options: (command) =>
    command
      .option("-a, --all", "Show all containers (default shows just running)")
      .option("--no-stream", "Disable streaming stats and only pull the first result")
      .option("--format <string>", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or 'TEMPLATE')")
      .option("--no-trunc", "Do not truncate output"),
  async run(context, names, options) {
    const noTrunc = options.trunc === false;
    const targets = async () => {
      if (names.length > 0) return names;
      const list = await context.client.json<ContainerSummary[]>("GET", "/containers/json", { query: { all: options.all || undefined } });
      return list.map((c) => c.Id);
    };
    const render = async () => {
      const rows: Record<string, string>[] = [];
      const errors: string[] = [];
      const results = await Promise.allSettled((await targets()).map(async (name) => [name, await sampleOnce(context, name)] as const));
      for (const result of results) {
        if (result.status === "fulfilled") rows.push(statsRow(result.value[0], result.value[1], { noTrunc }));
        else if (result.reason instanceof DaemonError) errors.push(`Error response from daemon: ${result.reason.message}`);
        else throw result.reason;
      }
      return { text: formatList(rows, STATS_FORMAT, { format: options.format }), errors };
    };
    if (options.stream === false || !context.io.stdout.isTTY) {
      const { text, errors } = await render();
      context.out(text);
      for (const line of errors) context.err(`${line}\n`);
      return errors.length > 0 && names.length > 0 ? 1 : 0;
    }
    // A terminal: redraw the table in place until interrupted, as docker stats does.
    for (;;) {
      const { text, errors } = await render();
      context.out(`\x1b[2J\x1b[H${text}${errors.map((e) => `${e}\n`).join("")}`);
      await sleep(500);
    }
  },
});

export const containerStatsCommands = [top, stats];
