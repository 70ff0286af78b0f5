// `docker stats`: one sample of a container's cgroup counters in the shape of swagger
// `ContainerStatsResponse`, so the docker CLI computes CPU % from two samples (cpu_stats against
// precpu_stats, scaled by system_cpu_usage) and memory as usage minus inactive file cache.
import { readFile } from "node:fs/promises";
import { totalmem } from "node:os";
import type { ContainerCgroup } from "./cgroup.js";

/** USER_HZ on Linux: /proc/stat and cpuacct.stat count in these ticks. */
const TICKS_PER_SECOND = 100;
const NS_PER_TICK = 1e9 / TICKS_PER_SECOND;

export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export interface StatsSample {
  read: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: { io_service_bytes_recursive: { major: number; minor: number; op: string; value: number }[] | null };
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: CpuStats;
  memory_stats: { usage?: number; max_usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, Record<string, number>>;
}

export const EMPTY_CPU: CpuStats = {
  cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
  throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
};

/** Host CPU time in ns (the first line of /proc/stat) and the number of CPUs. */
export async function hostCpu(): Promise<{ systemUsage: number; onlineCpus: number }> {
  const text = await readFile("/proc/stat", "utf8");
  const lines = text.split("\n");
  const total = (lines[0] ?? "")
    .split(/\s+/)
    .slice(1, 8)
    .reduce((sum, field) => sum + (Number(field) || 0), 0);
  const onlineCpus = lines.filter((line) => /^cpu\d+ /.test(line)).length;
  return { systemUsage: total * NS_PER_TICK, onlineCpus };
}

/** Interface counters from /proc/<pid>/net/dev (the container's network namespace), loopback left out. */
export function parseNetDev(text: string): Record<string, Record<string, number>> {
  const networks: Record<string, Record<string, number>> = {};
  for (const line of text.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === "lo") continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    networks[name] = {
      rx_bytes: f[0] ?? 0,
      rx_packets: f[1] ?? 0,
      rx_errors: f[2] ?? 0,
      rx_dropped: f[3] ?? 0,
      tx_bytes: f[8] ?? 0,
      tx_packets: f[9] ?? 0,
      tx_errors: f[10] ?? 0,
      tx_dropped: f[11] ?? 0,
    };
  }
  return networks;
}

async function cpuStats(cgroup: ContainerCgroup): Promise<CpuStats> {
  const host = await hostCpu();
  if (cgroup.mode === "unified") {
    const stat = await cgroup.keyed("cpu", "cpu.stat");
    return {
      cpu_usage: {
        total_usage: (stat.get("usage_usec") ?? 0) * 1000,
        usage_in_kernelmode: (stat.get("system_usec") ?? 0) * 1000,
        usage_in_usermode: (stat.get("user_usec") ?? 0) * 1000,
      },
      system_cpu_usage: host.systemUsage,
      online_cpus: host.onlineCpus,
      throttling_data: {
        periods: stat.get("nr_periods") ?? 0,
        throttled_periods: stat.get("nr_throttled") ?? 0,
        throttled_time: (stat.get("throttled_usec") ?? 0) * 1000,
      },
    };
  }
  const percpu = ((await cgroup.read("cpuacct", "cpuacct.usage_percpu")) ?? "")
    .trim()
    .split(/\s+/)
    .filter((v) => v !== "")
    .map(Number);
  const ticks = await cgroup.keyed("cpuacct", "cpuacct.stat");
  const throttling = await cgroup.keyed("cpu", "cpu.stat");
  return {
    cpu_usage: {
      total_usage: (await cgroup.number("cpuacct", "cpuacct.usage")) ?? 0,
      ...(percpu.length > 0 ? { percpu_usage: percpu } : {}),
      usage_in_kernelmode: (ticks.get("system") ?? 0) * NS_PER_TICK,
      usage_in_usermode: (ticks.get("user") ?? 0) * NS_PER_TICK,
    },
    system_cpu_usage: host.systemUsage,
    online_cpus: host.onlineCpus,
    throttling_data: {
      periods: throttling.get("nr_periods") ?? 0,
      throttled_periods: throttling.get("nr_throttled") ?? 0,
      throttled_time: throttling.get("throttled_time") ?? 0,
    },
  };
}

async function memoryStats(cgroup: ContainerCgroup): Promise<StatsSample["memory_stats"]> {
  const unified = cgroup.mode === "unified";
  const stats = Object.fromEntries(await cgroup.keyed("memory", "memory.stat"));
  const usage = await cgroup.number("memory", unified ? "memory.current" : "memory.usage_in_bytes");
  const maxUsage = unified ? await cgroup.number("memory", "memory.peak") : await cgroup.number("memory", "memory.max_usage_in_bytes");
  // No limit reads as "max" (v2) or a page-rounded 2^63 (v1): the host's memory bounds it, as Docker shows.
  const limit = Math.min((await cgroup.number("memory", unified ? "memory.max" : "memory.limit_in_bytes")) ?? Infinity, totalmem());
  return { ...(usage !== undefined ? { usage } : {}), ...(maxUsage !== undefined ? { max_usage: maxUsage } : {}), limit, stats };
}

async function blkioStats(cgroup: ContainerCgroup): Promise<StatsSample["blkio_stats"]> {
  const entries: { major: number; minor: number; op: string; value: number }[] = [];
  if (cgroup.mode === "unified") {
    for (const line of ((await cgroup.read("io", "io.stat")) ?? "").split("\n")) {
      const [device, ...fields] = line.trim().split(/\s+/);
      const [major, minor] = (device ?? "").split(":").map(Number);
      if (major === undefined || minor === undefined || Number.isNaN(minor)) continue;
      for (const field of fields) {
        const [key, value] = field.split("=");
        if (key === "rbytes") entries.push({ major, minor, op: "read", value: Number(value) });
        if (key === "wbytes") entries.push({ major, minor, op: "write", value: Number(value) });
      }
    }
  } else {
    for (const line of ((await cgroup.read("blkio", "blkio.throttle.io_service_bytes")) ?? "").split("\n")) {
      const [device, op, value] = line.trim().split(/\s+/);
      const [major, minor] = (device ?? "").split(":").map(Number);
      if (major === undefined || minor === undefined || Number.isNaN(minor) || !op || value === undefined) continue;
      entries.push({ major, minor, op: op.toLowerCase(), value: Number(value) });
    }
  }
  return { io_service_bytes_recursive: entries.length > 0 ? entries : null };
}

/** One sample of a running container; `pid` is its init process on the host (for the network counters). */
export async function sampleStats(cgroup: ContainerCgroup, pid: number): Promise<StatsSample> {
  const [cpu, memory, blkio, current, limit, netDev] = await Promise.all([
    cpuStats(cgroup),
    memoryStats(cgroup),
    blkioStats(cgroup),
    cgroup.number("pids", "pids.current"),
    cgroup.number("pids", "pids.max"),
    pid > 0 ? readFile(`/proc/${pid}/net/dev`, "utf8").catch(() => "") : Promise.resolve(""),
  ]);
  const networks = parseNetDev(netDev);
  return {
    read: new Date().toISOString(),
    pids_stats: { ...(current !== undefined ? { current } : {}), ...(limit !== undefined ? { limit } : {}) },
    blkio_stats: blkio,
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpu,
    memory_stats: memory,
    ...(Object.keys(networks).length > 0 ? { networks } : {}),
  };
}
