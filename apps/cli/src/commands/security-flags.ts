// The isolation and resource flags of `run`/`create`, with Docker's names and parsing (docker's
// opts package and go-units), turned into HostConfig fields. The daemon checks what they mean.
import type { Command } from "commander";
import { collect } from "../command.js";
import { UsageError } from "../errors.js";
import { ramInBytes } from "./container.js";

export interface SecurityFlags {
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  securityOpt?: string[];
  ulimit?: string[];
  init?: boolean;
  device?: string[];
  deviceCgroupRule?: string[];
  sysctl?: string[];
  shmSize?: string;
  groupAdd?: string[];
  oomScoreAdj?: string;
  oomKillDisable?: boolean;
  cpusetCpus?: string;
  cpusetMems?: string;
  cpuShares?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  memorySwap?: string;
  memoryReservation?: string;
  memorySwappiness?: string;
  blkioWeight?: string;
  blkioWeightDevice?: string[];
  deviceReadBps?: string[];
  deviceWriteBps?: string[];
  deviceReadIops?: string[];
  deviceWriteIops?: string[];
  userns?: string;
}

export function securityOptions(command: Command): Command {
  return command
    .option("--cap-add <list>", "Add Linux capabilities", collect)
    .option("--cap-drop <list>", "Drop Linux capabilities", collect)
    .option("--privileged", "Give extended privileges to this container")
    .option("--security-opt <list>", "Security Options", collect)
    .option("--ulimit <ulimit>", "Ulimit options", collect)
    .option("--init", "Run an init inside the container that forwards signals and reaps processes")
    .option("--device <list>", "Add a host device to the container", collect)
    .option("--device-cgroup-rule <list>", "Add a rule to the cgroup allowed devices list", collect)
    .option("--sysctl <map>", "Sysctl options", collect)
    .option("--shm-size <bytes>", "Size of /dev/shm")
    .option("--group-add <list>", "Add additional groups to join", collect)
    .option("--oom-score-adj <int>", "Tune host's OOM preferences (-1000 to 1000)")
    .option("--oom-kill-disable", "Disable OOM Killer")
    .option("--cpuset-cpus <string>", "CPUs in which to allow execution (0-3, 0,1)")
    .option("--cpuset-mems <string>", "MEMs in which to allow execution (0-3, 0,1)")
    .option("-c, --cpu-shares <int>", "CPU shares (relative weight)")
    .option("--cpu-period <int>", "Limit CPU CFS (Completely Fair Scheduler) period")
    .option("--cpu-quota <int>", "Limit CPU CFS (Completely Fair Scheduler) quota")
    .option("--memory-swap <bytes>", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    .option("--memory-reservation <bytes>", "Memory soft limit")
    .option("--memory-swappiness <int>", "Tune container memory swappiness (0 to 100)")
    .option("--blkio-weight <uint16>", "Block IO (relative weight), between 10 and 1000, or 0 to disable")
    .option("--blkio-weight-device <list>", "Block IO weight (relative device weight)", collect)
    .option("--device-read-bps <list>", "Limit read rate (bytes per second) from a device", collect)
    .option("--device-write-bps <list>", "Limit write rate (bytes per second) to a device", collect)
    .option("--device-read-iops <list>", "Limit read rate (IO per second) from a device", collect)
    .option("--device-write-iops <list>", "Limit write rate (IO per second) to a device", collect)
    .option("--userns <string>", "User namespace to use");
}

const invalid = (value: string, flag: string, why: string) => new UsageError(`invalid argument "${value}" for "${flag}" flag: ${why}`);

function integer(value: string, flag: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw invalid(value, flag, `strconv.ParseInt: parsing "${value}": invalid syntax`);
  return Number(value);
}

function bytes(value: string, flag: string): number {
  if (value === "-1") return -1;
  try {
    return ramInBytes(value);
  } catch (error) {
    throw invalid(value, flag, (error as Error).message);
  }
}

/** `name=soft[:hard]` (go-units ParseUlimit): hard defaults to soft; -1 is unlimited. */
export function parseUlimit(value: string): { Name: string; Soft: number; Hard: number } {
  const eq = value.indexOf("=");
  if (eq <= 0) throw invalid(value, "--ulimit", `invalid ulimit argument: ${value}`);
  const limits = value.slice(eq + 1).split(":");
  if (limits.length > 2 || limits.some((l) => !/^-?\d+$/.test(l)))
    throw invalid(value, "--ulimit", `too many limit value arguments - ${value.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``);
  const soft = Number(limits[0]);
  const hard = limits[1] !== undefined ? Number(limits[1]) : soft;
  if (soft > hard && hard !== -1)
    throw invalid(value, "--ulimit", `ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: value.slice(0, eq), Soft: soft, Hard: hard };
}

/** `/dev/host[:/dev/container][:rwm]` (docker's opts.ParseDevice). */
export function parseDevice(value: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  const parts = value.split(":");
  const isMode = (s: string) => /^[rwm]{1,3}$/.test(s);
  let [src = "", dst = "", perms = "rwm"] = parts;
  if (parts.length === 2 && isMode(dst)) {
    perms = dst;
    dst = "";
  }
  if (parts.length > 3 || src === "" || !isMode(perms)) throw invalid(value, "--device", `invalid device specification: ${value}`);
  return { PathOnHost: src, PathInContainer: dst || src, CgroupPermissions: perms };
}

function deviceRate(value: string, flag: string, parse: (rate: string) => number): { Path: string; Rate: number } {
  const colon = value.lastIndexOf(":");
  const path = colon > 0 ? value.slice(0, colon) : "";
  if (!path.startsWith("/dev/")) throw invalid(value, flag, `bad format: ${value}`);
  return { Path: path, Rate: parse(value.slice(colon + 1)) };
}

/** Reads a `seccomp=<file>` profile, as the docker CLI does: the daemon gets its content. */
function securityOpts(list: string[], readText: (path: string) => string, hostConfig: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const opt of list) {
    const eq = opt.indexOf("=");
    const key = eq >= 0 ? opt.slice(0, eq) : opt;
    const value = eq >= 0 ? opt.slice(eq + 1) : "";
    if (key === "seccomp" && value !== "unconfined" && value !== "builtin" && value !== "") {
      let content: string;
      try {
        content = readText(value);
      } catch (error) {
        throw invalid(opt, "--security-opt", `opening seccomp profile (${value}) failed: ${(error as Error).message}`);
      }
      out.push(`seccomp=${content}`);
    } else if (key === "systempaths" && value === "unconfined") {
      hostConfig.MaskedPaths = [];
      hostConfig.ReadonlyPaths = [];
    } else out.push(opt);
  }
  return out;
}

export function applySecurityFlags(flags: SecurityFlags, hostConfig: Record<string, unknown>, readText: (path: string) => string): void {
  if (flags.capAdd?.length) hostConfig.CapAdd = flags.capAdd;
  if (flags.capDrop?.length) hostConfig.CapDrop = flags.capDrop;
  if (flags.privileged) hostConfig.Privileged = true;
  if (flags.securityOpt?.length) {
    const opts = securityOpts(flags.securityOpt, readText, hostConfig);
    if (opts.length > 0) hostConfig.SecurityOpt = opts;
  }
  if (flags.ulimit?.length) hostConfig.Ulimits = flags.ulimit.map(parseUlimit);
  if (flags.init) hostConfig.Init = true;
  if (flags.device?.length) hostConfig.Devices = flags.device.map(parseDevice);
  if (flags.deviceCgroupRule?.length) hostConfig.DeviceCgroupRules = flags.deviceCgroupRule;
  if (flags.sysctl?.length) {
    const sysctls: Record<string, string> = {};
    for (const s of flags.sysctl) {
      const eq = s.indexOf("=");
      if (eq <= 0) throw invalid(s, "--sysctl", `${s} is not a valid sysctl value`);
      sysctls[s.slice(0, eq)] = s.slice(eq + 1);
    }
    hostConfig.Sysctls = sysctls;
  }
  if (flags.shmSize !== undefined) hostConfig.ShmSize = bytes(flags.shmSize, "--shm-size");
  if (flags.groupAdd?.length) hostConfig.GroupAdd = flags.groupAdd;
  if (flags.oomScoreAdj !== undefined) hostConfig.OomScoreAdj = integer(flags.oomScoreAdj, "--oom-score-adj");
  if (flags.oomKillDisable) hostConfig.OomKillDisable = true;
  if (flags.cpusetCpus !== undefined) hostConfig.CpusetCpus = flags.cpusetCpus;
  if (flags.cpusetMems !== undefined) hostConfig.CpusetMems = flags.cpusetMems;
  if (flags.cpuShares !== undefined) hostConfig.CpuShares = integer(flags.cpuShares, "-c, --cpu-shares");
  if (flags.cpuPeriod !== undefined) hostConfig.CpuPeriod = integer(flags.cpuPeriod, "--cpu-period");
  if (flags.cpuQuota !== undefined) hostConfig.CpuQuota = integer(flags.cpuQuota, "--cpu-quota");
  if (flags.memorySwap !== undefined) hostConfig.MemorySwap = bytes(flags.memorySwap, "--memory-swap");
  if (flags.memoryReservation !== undefined) hostConfig.MemoryReservation = bytes(flags.memoryReservation, "--memory-reservation");
  if (flags.memorySwappiness !== undefined) hostConfig.MemorySwappiness = integer(flags.memorySwappiness, "--memory-swappiness");
  if (flags.blkioWeight !== undefined) hostConfig.BlkioWeight = integer(flags.blkioWeight, "--blkio-weight");
  if (flags.blkioWeightDevice?.length)
    hostConfig.BlkioWeightDevice = flags.blkioWeightDevice.map((v) => {
      const { Path, Rate } = deviceRate(v, "--blkio-weight-device", (w) => integer(w, "--blkio-weight-device"));
      return { Path, Weight: Rate };
    });
  const rates: [keyof SecurityFlags, string, string, (v: string, flag: string) => number][] = [
    ["deviceReadBps", "BlkioDeviceReadBps", "--device-read-bps", bytes],
    ["deviceWriteBps", "BlkioDeviceWriteBps", "--device-write-bps", bytes],
    ["deviceReadIops", "BlkioDeviceReadIOps", "--device-read-iops", integer],
    ["deviceWriteIops", "BlkioDeviceWriteIOps", "--device-write-iops", integer],
  ];
  for (const [key, field, flag, parse] of rates) {
    const list = flags[key] as string[] | undefined;
    if (list?.length) hostConfig[field] = list.map((v) => deviceRate(v, flag, (rate) => parse(rate, flag)));
  }
  if (flags.userns !== undefined) hostConfig.UsernsMode = flags.userns;
}
