// Facts about the host the spec and the runtime depend on: resource limits and the cgroup layout.
import { readFileSync } from "node:fs";

/** The spec's rlimit names for the rows of /proc/<pid>/limits. */
const LIMIT_ROWS: Record<string, string> = {
  "Max cpu time": "RLIMIT_CPU",
  "Max file size": "RLIMIT_FSIZE",
  "Max data size": "RLIMIT_DATA",
  "Max stack size": "RLIMIT_STACK",
  "Max core file size": "RLIMIT_CORE",
  "Max resident set": "RLIMIT_RSS",
  "Max processes": "RLIMIT_NPROC",
  "Max open files": "RLIMIT_NOFILE",
  "Max locked memory": "RLIMIT_MEMLOCK",
  "Max address space": "RLIMIT_AS",
  "Max file locks": "RLIMIT_LOCKS",
  "Max pending signals": "RLIMIT_SIGPENDING",
  "Max msgqueue size": "RLIMIT_MSGQUEUE",
  "Max nice priority": "RLIMIT_NICE",
  "Max realtime priority": "RLIMIT_RTPRIO",
  "Max realtime timeout": "RLIMIT_RTTIME",
};

export interface HostLimit {
  /** Infinity for "unlimited". */
  soft: number;
  hard: number;
}

/** Parses /proc/<pid>/limits text into RLIMIT_* → soft/hard. */
export function parseLimits(text: string): Map<string, HostLimit> {
  const limits = new Map<string, HostLimit>();
  for (const line of text.split("\n")) {
    for (const [row, name] of Object.entries(LIMIT_ROWS)) {
      if (!line.startsWith(row)) continue;
      const [soft, hard] = line.slice(row.length).trim().split(/\s+/);
      const value = (v: string | undefined) => (v === "unlimited" ? Number.POSITIVE_INFINITY : Number(v));
      limits.set(name, { soft: value(soft), hard: value(hard) });
    }
  }
  return limits;
}

/** This process's limits — what conmon, runc and the container inherit (like `prlimit` of self). */
export function hostLimits(): Map<string, HostLimit> {
  return parseLimits(readFileSync("/proc/self/limits", "utf8"));
}

/**
 * legacy: cgroup v1 only; hybrid: v1 controllers with a v2 hierarchy at /sys/fs/cgroup/unified
 * (crun refuses these); unified: cgroup v2 at /sys/fs/cgroup.
 */
export type CgroupMode = "legacy" | "hybrid" | "unified";

interface MountInfo {
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

function mountInfo(): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(" ");
    const right = line.slice(sep + 3).split(" ");
    mounts.push({ mountPoint: left[4] ?? "", fsType: right[0] ?? "", superOptions: right[2] ?? "" });
  }
  return mounts;
}

export function detectCgroupMode(): CgroupMode {
  const mounts = mountInfo();
  const root = mounts.filter((m) => m.mountPoint === "/sys/fs/cgroup").at(-1);
  if (root?.fsType === "cgroup2") return "unified";
  return mounts.some((m) => m.mountPoint === "/sys/fs/cgroup/unified" && m.fsType === "cgroup2") ? "hybrid" : "legacy";
}

/** The cgroup controllers usable for containers: v1 hierarchies mounted, or those enabled at the v2 root. */
export function cgroupControllers(mode: CgroupMode = detectCgroupMode()): Set<string> {
  if (mode === "unified") {
    const text = readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8").trim();
    return new Set([...text.split(/\s+/).filter((c) => c !== ""), "freezer", "devices"]);
  }
  const controllers = new Set<string>();
  for (const m of mountInfo()) {
    if (m.fsType !== "cgroup") continue;
    for (const option of m.superOptions.split(",")) controllers.add(option);
  }
  return controllers;
}

/**
 * The v1 mount point of a controller (e.g. memory → /sys/fs/cgroup/memory), or the v2 root.
 * Used to find a container's cgroup files.
 */
export function cgroupMountPoint(controller: string, mode: CgroupMode = detectCgroupMode()): string | undefined {
  if (mode === "unified") return "/sys/fs/cgroup";
  for (const m of mountInfo()) {
    if (m.fsType === "cgroup" && m.superOptions.split(",").includes(controller)) return m.mountPoint;
  }
  return undefined;
}
