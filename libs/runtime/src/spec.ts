// createSpec: an OCI runtime config.json from an image config and `docker run`-style options, with
// Docker's defaults (moby's oci.DefaultLinuxSpec plus what its daemon adds per container).
import { existsSync, readFileSync } from "node:fs";
import { cpus as hostCpus, hostname as hostHostname } from "node:os";
import { isAbsolute, posix } from "node:path";
import { capabilities } from "./capabilities.js";
import { combineCommand } from "./command.js";
import {
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH,
  DEFAULT_READONLY_PATHS,
  DEFAULT_SHM_SIZE,
  defaultDeviceRules,
  defaultDevices,
  defaultMounts,
  OCI_VERSION,
} from "./defaults.js";
import { blockDevice, type DeviceMapping, deviceCgroupRule, mappedDevices, privilegedDevices } from "./devices.js";
import { RuntimeError } from "./errors.js";
import { type EtcFiles, etcFileMounts } from "./etc-files.js";
import { type CgroupMode, cgroupMountPoint, detectCgroupMode, type HostLimit, hostLimits } from "./host.js";
import { type DockerSeccompProfile, seccompFromProfile } from "./seccomp.js";
import { DOCKER_DEFAULT_SECCOMP_PROFILE } from "./seccomp-default.js";
import type { OciDevice, OciIdMapping, OciMount, OciNamespace, OciResources, OciRlimit, OciSpec, OciThrottleDevice } from "./spec-types.js";
import { type ResolvedUser, resolveUserInRootfs } from "./user.js";

/** The parts of an OCI image config (`config` object of the image's config blob) a container uses. */
export interface ImageRunConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  User?: string;
  WorkingDir?: string;
  StopSignal?: string;
}

export type NetworkMode =
  /** A new network namespace with only `lo` (`--network none`; also the base for bridge networking). */
  | { mode: "none" }
  /** The host's network namespace (`--network host`). */
  | { mode: "host" }
  /** Join an existing network namespace, e.g. /run/netns/x or /proc/<pid>/ns/net. */
  | { mode: "path"; path: string };

export interface MountOption {
  /** "bind" (default) or another filesystem type ("tmpfs", ...). */
  type?: string;
  source: string;
  destination: string;
  readonly?: boolean;
  /** Extra mount options (for binds: a propagation mode replaces the default `rprivate`). */
  options?: string[];
}

export interface Ulimit {
  /** Docker's names: nofile, nproc, core, memlock, stack, ... */
  name: string;
  soft: number;
  hard: number;
}

export interface CreateSpecOptions {
  /** The container's root filesystem (a directory or overlay mount point); USER is resolved against it. */
  rootfs: string;
  image?: ImageRunConfig;
  /** The command after the image name (`docker run IMAGE cmd...`). */
  cmd?: string[];
  /** `--entrypoint`; see combineCommand for [] and [""]. */
  entrypoint?: string[];
  /** `-e`: `KEY=value` replaces or adds, a bare `KEY` removes. */
  env?: string[];
  /** `-u`: name, uid, uid:gid, name:group. Defaults to the image's USER, then root. */
  user?: string;
  /** `--group-add`. */
  groupAdd?: string[];
  /** `-w`: absolute; defaults to the image's WorkingDir, then /. */
  workdir?: string;
  /** The container's hostname (Docker: the first 12 characters of the id; the host's with `--network host`). */
  hostname?: string;
  tty?: boolean;
  /** `--read-only`. */
  readonlyRootfs?: boolean;
  /** `--tmpfs PATH[:OPTIONS]`, as HostConfig.Tmpfs: destination → comma-separated options. */
  tmpfs?: Record<string, string>;
  /** `-v /src:/dst[:ro]` as strings. */
  binds?: string[];
  /** `--mount` style mounts. */
  mounts?: MountOption[];
  /** `--memory` in bytes (minimum 6 MiB, as Docker). */
  memory?: number;
  /** `--memory-swap` in bytes (memory + swap); -1 for unlimited; default twice `memory` when the host accounts swap. */
  memorySwap?: number;
  /** `--cpus`: becomes a CFS quota over a 100 ms period. */
  cpus?: number;
  /** `--cpu-shares`. */
  cpuShares?: number;
  /** `--pids-limit`: 0 or negative means unlimited. */
  pidsLimit?: number;
  /** Default: a new namespace (`none`). */
  network?: NetworkMode;
  /** linux.cgroupsPath, e.g. /minato/<id>. */
  cgroupsPath?: string;
  /** Generated /etc/hosts, /etc/hostname, /etc/resolv.conf to bind-mount (see writeEtcFiles). */
  etcFiles?: EtcFiles;
  /** `--shm-size` in bytes (default 64 MiB). */
  shmSize?: number;
  /** `--ulimit`: refused above the host's hard limits (runc could not raise them). */
  ulimits?: Ulimit[];
  /** `--cap-add` / `--cap-drop` (with or without the CAP_ prefix; ALL allowed). */
  capAdd?: string[];
  capDrop?: string[];
  /** The capabilities the host lets containers have; minatod's bounding set when omitted. */
  availableCapabilities?: readonly string[];
  /**
   * `--privileged`: every available capability, every host device, no masked or read-only paths,
   * writable /sys and cgroupfs, no seccomp filter.
   */
  privileged?: boolean;
  /** `--security-opt seccomp=...`: a profile in Docker's format, or "unconfined"; Docker's default profile when omitted. */
  seccomp?: DockerSeccompProfile | "unconfined";
  /** `--init`: the init binary on the host (tini), bind-mounted as /sbin/docker-init and run as PID 1. */
  init?: string;
  /** HostConfig.MaskedPaths / ReadonlyPaths (`--security-opt systempaths=unconfined` empties both); Docker's when omitted. */
  maskedPaths?: string[];
  readonlyPaths?: string[];
  /** A user namespace with these mappings (`minatod --userns-remap`): container root is an unprivileged host id. */
  userNamespace?: { uidMappings: OciIdMapping[]; gidMappings: OciIdMapping[]; path?: string };
  /** `--device`. */
  devices?: DeviceMapping[];
  /** `--device-cgroup-rule`. */
  deviceCgroupRules?: string[];
  /** `--cpuset-cpus`, `--cpuset-mems`: lists like 0-1,3. */
  cpusetCpus?: string;
  cpusetMems?: string;
  /** `--cpu-quota`, `--cpu-period` (microseconds). */
  cpuQuota?: number;
  cpuPeriod?: number;
  /** `--memory-reservation` in bytes (the soft limit). */
  memoryReservation?: number;
  /** `--memory-swappiness` 0..100 (-1 or omitted: the host's). */
  memorySwappiness?: number;
  /** `--oom-kill-disable`. */
  oomKillDisable?: boolean;
  /** `--blkio-weight` 10..1000 and `--blkio-weight-device`. */
  blkioWeight?: number;
  blkioWeightDevice?: { path: string; weight: number }[];
  /** `--device-read-bps` and friends: a block device path and a rate (bytes or operations per second). */
  deviceReadBps?: { path: string; rate: number }[];
  deviceWriteBps?: { path: string; rate: number }[];
  deviceReadIops?: { path: string; rate: number }[];
  deviceWriteIops?: { path: string; rate: number }[];
  /** `--security-opt no-new-privileges` (Docker's default is false). */
  noNewPrivileges?: boolean;
  /** `--oom-score-adj`. */
  oomScoreAdj?: number;
  /** `--sysctl`. */
  sysctls?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Detected when omitted. */
  cgroupMode?: CgroupMode;
  /** The limits to clamp to; this process's (/proc/self/limits) when omitted. */
  hostLimits?: Map<string, HostLimit>;
}

/** Docker's minimum for `--memory`. */
export const MIN_MEMORY = 6 * 1024 * 1024;
/** The CFS period `--cpus` uses (100 ms). */
export const CPU_PERIOD = 100_000;
/** The NOFILE limit containers get under Docker (containerd's LimitNOFILE=infinity, i.e. nr_open), clamped to the host's. */
export const DEFAULT_NOFILE = 1_048_576;

/** Env merge as moby's ReplaceOrAppendEnvValues: same key replaces in place, `KEY` without `=` removes. */
export function mergeEnv(base: string[], overrides: string[]): string[] {
  const result = [...base];
  const key = (e: string) => (e.includes("=") ? e.slice(0, e.indexOf("=")) : e);
  for (const entry of overrides) {
    const k = key(entry);
    const index = result.findIndex((e) => key(e) === k);
    if (!entry.includes("=")) {
      if (index >= 0) result.splice(index, 1);
      continue;
    }
    if (index >= 0) result[index] = entry;
    else result.push(entry);
  }
  return result;
}

/** Merges tmpfs options as moby's MergeTmpfsOptions: a later flag overrides its opposite, later key=value wins. */
export function mergeTmpfsOptions(options: string[]): string[] {
  const opposites: Record<string, string> = {
    ro: "rw",
    rw: "ro",
    exec: "noexec",
    noexec: "exec",
    suid: "nosuid",
    nosuid: "suid",
    dev: "nodev",
    nodev: "dev",
    atime: "noatime",
    noatime: "atime",
    diratime: "nodiratime",
    nodiratime: "diratime",
  };
  const result: string[] = [];
  for (const option of options) {
    if (option === "") continue;
    const eq = option.indexOf("=");
    if (eq >= 0) {
      const key = option.slice(0, eq + 1);
      const index = result.findIndex((o) => o.startsWith(key));
      if (index >= 0) result.splice(index, 1);
    } else {
      const opposite = opposites[option];
      const index = result.findIndex((o) => o === option || o === opposite);
      if (index >= 0) result.splice(index, 1);
    }
    result.push(option);
  }
  return result;
}

const PROPAGATIONS = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

function checkDestination(destination: string): string {
  if (!isAbsolute(destination))
    throw new RuntimeError("INVALID_OPTION", `invalid mount config: mount path must be absolute: ${destination}`);
  const clean = posix.normalize(destination);
  return clean.length > 1 && clean.endsWith("/") ? clean.slice(0, -1) : clean;
}

function bindMount(source: string, destination: string, readonly: boolean, extra: string[] = []): OciMount {
  if (!isAbsolute(source)) throw new RuntimeError("INVALID_OPTION", `invalid mount config: bind source path must be absolute: ${source}`);
  const propagation = extra.find((o) => PROPAGATIONS.includes(o)) ?? "rprivate";
  const others = extra.filter((o) => !PROPAGATIONS.includes(o) && o !== "ro" && o !== "rw" && o !== "z" && o !== "Z");
  return {
    destination: checkDestination(destination),
    type: "bind",
    source,
    options: ["rbind", ...(readonly ? ["ro"] : []), ...others, propagation],
  };
}

/** Parses `-v /src:/dst[:opts]` (host paths only; named volumes are the engine's business). */
export function parseBind(spec: string): OciMount {
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3 || parts[0] === "" || parts[1] === "") {
    throw new RuntimeError("INVALID_OPTION", `invalid volume specification: '${spec}'`);
  }
  const options = (parts[2] ?? "").split(",").filter((o) => o !== "");
  for (const o of options) {
    if (!["ro", "rw", "z", "Z", "nocopy", ...PROPAGATIONS].includes(o)) throw new RuntimeError("INVALID_OPTION", `invalid mode: ${o}`);
  }
  return bindMount(
    parts[0]!,
    parts[1]!,
    options.includes("ro"),
    options.filter((o) => o !== "nocopy"),
  );
}

const ULIMIT_NAMES: Record<string, string> = {
  core: "RLIMIT_CORE",
  cpu: "RLIMIT_CPU",
  data: "RLIMIT_DATA",
  fsize: "RLIMIT_FSIZE",
  locks: "RLIMIT_LOCKS",
  memlock: "RLIMIT_MEMLOCK",
  msgqueue: "RLIMIT_MSGQUEUE",
  nice: "RLIMIT_NICE",
  nofile: "RLIMIT_NOFILE",
  nproc: "RLIMIT_NPROC",
  rss: "RLIMIT_RSS",
  rtprio: "RLIMIT_RTPRIO",
  rttime: "RLIMIT_RTTIME",
  sigpending: "RLIMIT_SIGPENDING",
  stack: "RLIMIT_STACK",
  as: "RLIMIT_AS",
};

/**
 * Rlimits for the process: NOFILE as under Docker (clamped to the host's hard limit) plus `--ulimit`s,
 * which are refused above the host's hard limits: raising a hard limit needs CAP_SYS_RESOURCE on the
 * host, which runc may not have, and a limit silently lowered is a limit ignored.
 */
export function rlimits(ulimits: Ulimit[], host: Map<string, HostLimit>): OciRlimit[] {
  const wanted = new Map<string, { soft: number; hard: number }>();
  wanted.set("RLIMIT_NOFILE", { soft: DEFAULT_NOFILE, hard: DEFAULT_NOFILE });
  for (const u of ulimits) {
    const type = ULIMIT_NAMES[u.name.toLowerCase()];
    if (!type) throw new RuntimeError("INVALID_OPTION", `invalid ulimit type: ${u.name}`);
    if (!Number.isSafeInteger(u.soft) || !Number.isSafeInteger(u.hard) || u.soft < -1 || u.hard < -1)
      throw new RuntimeError("INVALID_OPTION", `invalid ulimit ${u.name}: limits must be integers (-1 for unlimited)`);
    const soft = u.soft === -1 ? Number.POSITIVE_INFINITY : u.soft;
    const hard = u.hard === -1 ? Number.POSITIVE_INFINITY : u.hard;
    if (soft > hard)
      throw new RuntimeError("INVALID_OPTION", `ulimit soft limit must be less than or equal to hard limit: ${u.soft} > ${u.hard}`);
    const hostHard = host.get(type)?.hard ?? Number.POSITIVE_INFINITY;
    if (hard > hostHard)
      throw new RuntimeError(
        "INVALID_OPTION",
        `--ulimit ${u.name}=${u.soft}:${u.hard}: above the host's hard limit (${hostHard}) for ${type}, which minatod cannot raise`,
      );
    wanted.set(type, { soft, hard });
  }
  const result: OciRlimit[] = [];
  for (const [type, limit] of wanted) {
    const hostHard = host.get(type)?.hard ?? Number.POSITIVE_INFINITY;
    const hard = Math.min(limit.hard, hostHard);
    const soft = Math.min(limit.soft, hard);
    // "unlimited" cannot be written as a JSON number exactly (2^64-1): leave such a limit inherited.
    if (!Number.isFinite(hard) || !Number.isFinite(soft)) continue;
    result.push({ type, soft, hard });
  }
  return result;
}

function swapAccounting(mode: CgroupMode): boolean {
  const memory = cgroupMountPoint("memory", mode);
  if (!memory) return false;
  if (mode === "unified") return existsSync("/sys/fs/cgroup/init.scope/memory.swap.max") || existsSync("/proc/swaps");
  return existsSync(posix.join(memory, "memory.memsw.limit_in_bytes"));
}

/** A cgroup controller's directory, or a 400 naming the option that needs it. */
function controller(name: string, option: string, mode: CgroupMode): string {
  const dir = cgroupMountPoint(name, mode);
  const present = dir && (mode !== "unified" || readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8").split(/\s+/).includes(name));
  if (!present || !dir) throw new RuntimeError("INVALID_OPTION", `${option}: this host has no ${name} cgroup controller`);
  return dir;
}

/** A cgroup file this host's kernel must offer for an option, or a 400 naming the option. */
function needFile(dir: string, files: string[], option: string, why: string): void {
  if (!files.some((f) => existsSync(posix.join(dir, f)))) throw new RuntimeError("INVALID_OPTION", `${option}: ${why}`);
}

/** `0-2,4` → the CPU (or memory node) numbers; throws on a malformed list. */
export function parseCpuList(list: string, option: string): Set<number> {
  const result = new Set<number>();
  for (const part of list.trim().split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!match) throw new RuntimeError("INVALID_OPTION", `${option}: invalid value ${list}`);
    const from = Number(match[1]);
    const to = match[2] !== undefined ? Number(match[2]) : from;
    if (to < from || to - from > 4096) throw new RuntimeError("INVALID_OPTION", `${option}: invalid value ${list}`);
    for (let i = from; i <= to; i++) result.add(i);
  }
  return result;
}

function checkCpuset(list: string, option: string, file: string, mode: CgroupMode): void {
  const requested = parseCpuList(list, option);
  const dir = controller("cpuset", option, mode);
  const hostFile = mode === "unified" ? `${file}.effective` : file;
  const availableText = readFileSync(posix.join(dir, hostFile), "utf8").trim();
  const available = availableText === "" ? new Set<number>() : parseCpuList(availableText, option);
  if ([...requested].some((n) => !available.has(n)))
    throw new RuntimeError("INVALID_OPTION", `${option}: requested ${list} is not available - available: ${availableText}`);
}

function throttle(list: { path: string; rate: number }[] | undefined, option: string): OciThrottleDevice[] | undefined {
  if (!list || list.length === 0) return undefined;
  return list.map(({ path, rate }) => {
    if (!Number.isSafeInteger(rate) || rate < 0) throw new RuntimeError("INVALID_OPTION", `${option}: invalid rate ${rate}`);
    return { ...blockDevice(path, option), rate };
  });
}

/**
 * The cgroup settings. Each one is checked against what this host's cgroups offer: a setting the
 * kernel cannot apply is refused naming its option (Docker would warn and drop it).
 */
function resources(options: CreateSpecOptions, mode: CgroupMode, extraDeviceRules: OciResources["devices"]): OciResources {
  const res: OciResources = {
    devices: options.privileged ? [{ allow: true, access: "rwm" }] : [...defaultDeviceRules(), ...(extraDeviceRules ?? [])],
  };
  const memory: NonNullable<OciResources["memory"]> = {};
  if (options.memory !== undefined && options.memory > 0) {
    if (options.memory < MIN_MEMORY) throw new RuntimeError("INVALID_OPTION", "Minimum memory limit allowed is 6MB");
    controller("memory", "--memory", mode);
    memory.limit = options.memory;
    if (options.memorySwap !== undefined && options.memorySwap !== 0) {
      if (options.memorySwap > 0 && options.memorySwap < options.memory) {
        throw new RuntimeError("INVALID_OPTION", "Minimum memoryswap limit should be larger than memory limit, see usage");
      }
      if (options.memorySwap > 0 && !swapAccounting(mode))
        throw new RuntimeError(
          "INVALID_OPTION",
          "--memory-swap: this host's kernel does not account swap (no memsw/swap.max cgroup files)",
        );
      memory.swap = options.memorySwap;
    } else if (swapAccounting(mode)) {
      memory.swap = options.memory * 2;
    }
  } else if (options.memorySwap !== undefined && options.memorySwap > 0) {
    throw new RuntimeError("INVALID_OPTION", "You should always set the Memory limit when using Memoryswap limit, see usage");
  }
  if (options.memoryReservation !== undefined && options.memoryReservation !== 0) {
    if (options.memoryReservation < MIN_MEMORY) throw new RuntimeError("INVALID_OPTION", "Minimum memory reservation allowed is 6MB");
    if (memory.limit !== undefined && memory.limit < options.memoryReservation)
      throw new RuntimeError("INVALID_OPTION", "Minimum memory limit can not be less than memory reservation limit, see usage");
    const dir = controller("memory", "--memory-reservation", mode);
    if (mode !== "unified")
      needFile(dir, ["memory.soft_limit_in_bytes"], "--memory-reservation", "this host's memory cgroup has no soft limit");
    memory.reservation = options.memoryReservation;
  }
  if (options.memorySwappiness !== undefined && options.memorySwappiness !== -1) {
    if (!Number.isInteger(options.memorySwappiness) || options.memorySwappiness < 0 || options.memorySwappiness > 100)
      throw new RuntimeError("INVALID_OPTION", `Invalid value: ${options.memorySwappiness}, valid memory swappiness range is 0-100`);
    const dir = controller("memory", "--memory-swappiness", mode);
    needFile(dir, ["memory.swappiness"], "--memory-swappiness", "this host's memory cgroup has no swappiness setting (cgroup v2)");
    memory.swappiness = options.memorySwappiness;
  }
  if (options.oomKillDisable) {
    const dir = controller("memory", "--oom-kill-disable", mode);
    needFile(dir, ["memory.oom_control"], "--oom-kill-disable", "this host's memory cgroup cannot disable the OOM killer (cgroup v2)");
    memory.disableOOMKiller = true;
  }
  if (Object.keys(memory).length > 0) res.memory = memory;

  const cpu: NonNullable<OciResources["cpu"]> = {};
  if (options.cpus !== undefined && options.cpus !== 0) {
    const max = hostCpus().length;
    if (options.cpus < 0.01 || options.cpus > max) {
      throw new RuntimeError("INVALID_OPTION", `range of CPUs is from 0.01 to ${max}.00, as there are only ${max} CPUs available`);
    }
    if (options.cpuQuota || options.cpuPeriod)
      throw new RuntimeError("INVALID_OPTION", "Conflicting options: Nano CPUs and CPU Period cannot both be set");
    controller("cpu", "--cpus", mode);
    cpu.quota = Math.round(options.cpus * CPU_PERIOD);
    cpu.period = CPU_PERIOD;
  }
  if (options.cpuPeriod !== undefined && options.cpuPeriod !== 0) {
    if (options.cpuPeriod < 1000 || options.cpuPeriod > 1_000_000)
      throw new RuntimeError("INVALID_OPTION", "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
    controller("cpu", "--cpu-period", mode);
    cpu.period = options.cpuPeriod;
  }
  if (options.cpuQuota !== undefined && options.cpuQuota !== 0 && options.cpuQuota !== -1) {
    if (options.cpuQuota < 1000) throw new RuntimeError("INVALID_OPTION", "CPU cfs quota can not be less than 1ms (i.e. 1000)");
    controller("cpu", "--cpu-quota", mode);
    cpu.quota = options.cpuQuota;
  }
  if (options.cpuShares !== undefined && options.cpuShares !== 0) {
    if (options.cpuShares < 2 || options.cpuShares > 262_144)
      throw new RuntimeError("INVALID_OPTION", `--cpu-shares: ${options.cpuShares} is out of range (2 to 262144)`);
    controller("cpu", "--cpu-shares", mode);
    cpu.shares = options.cpuShares;
  }
  if (options.cpusetCpus) {
    checkCpuset(options.cpusetCpus, "--cpuset-cpus", "cpuset.cpus", mode);
    cpu.cpus = options.cpusetCpus;
  }
  if (options.cpusetMems) {
    checkCpuset(options.cpusetMems, "--cpuset-mems", "cpuset.mems", mode);
    cpu.mems = options.cpusetMems;
  }
  if (Object.keys(cpu).length > 0) res.cpu = cpu;

  if (options.pidsLimit !== undefined && options.pidsLimit > 0) res.pids = { limit: options.pidsLimit };

  const blockIO: NonNullable<OciResources["blockIO"]> = {};
  const blkio = mode === "unified" ? "io" : "blkio";
  const weightFiles = mode === "unified" ? ["io.weight", "io.bfq.weight"] : ["blkio.weight", "blkio.bfq.weight"];
  const weightWhy = "this host's block I/O controller has no weight support (needs the BFQ or CFQ I/O scheduler)";
  if (options.blkioWeight !== undefined && options.blkioWeight !== 0) {
    if (options.blkioWeight < 10 || options.blkioWeight > 1000)
      throw new RuntimeError("INVALID_OPTION", "Range of blkio weight is from 10 to 1000");
    // On v2 the weight files exist only below the root: look at this process's own cgroup's siblings' parent.
    if (mode !== "unified") needFile(controller(blkio, "--blkio-weight", mode), weightFiles, "--blkio-weight", weightWhy);
    else controller(blkio, "--blkio-weight", mode);
    blockIO.weight = options.blkioWeight;
  }
  if (options.blkioWeightDevice?.length) {
    if (mode !== "unified") needFile(controller(blkio, "--blkio-weight-device", mode), weightFiles, "--blkio-weight-device", weightWhy);
    else controller(blkio, "--blkio-weight-device", mode);
    blockIO.weightDevice = options.blkioWeightDevice.map(({ path, weight }) => {
      if (weight < 10 || weight > 1000) throw new RuntimeError("INVALID_OPTION", "Range of blkio weight is from 10 to 1000");
      return { ...blockDevice(path, "--blkio-weight-device"), weight };
    });
  }
  const throttles: [keyof typeof blockIO, { path: string; rate: number }[] | undefined, string, string][] = [
    ["throttleReadBpsDevice", options.deviceReadBps, "--device-read-bps", "blkio.throttle.read_bps_device"],
    ["throttleWriteBpsDevice", options.deviceWriteBps, "--device-write-bps", "blkio.throttle.write_bps_device"],
    ["throttleReadIOPSDevice", options.deviceReadIops, "--device-read-iops", "blkio.throttle.read_iops_device"],
    ["throttleWriteIOPSDevice", options.deviceWriteIops, "--device-write-iops", "blkio.throttle.write_iops_device"],
  ];
  for (const [key, list, option, file] of throttles) {
    const devices = throttle(list, option);
    if (!devices) continue;
    const dir = controller(blkio, option, mode);
    if (mode !== "unified") needFile(dir, [file], option, "this host's kernel has no block I/O throttling (CONFIG_BLK_DEV_THROTTLING)");
    (blockIO as Record<string, unknown>)[key] = devices;
  }
  if (Object.keys(blockIO).length > 0) res.blockIO = blockIO;
  return res;
}

/** Where `--init` puts the init binary in the container (Docker's path). */
export const INIT_PATH = "/sbin/docker-init";

/** IPC sysctls a private IPC namespace scopes (moby's opts.ValidateSysctl list). */
const IPC_SYSCTLS = new Set([
  "kernel.msgmax",
  "kernel.msgmnb",
  "kernel.msgmni",
  "kernel.sem",
  "kernel.shmall",
  "kernel.shmmax",
  "kernel.shmmni",
  "kernel.shm_rmid_forced",
]);

/** `--sysctl`: only namespaced ones, as Docker validates them; net.* only in a private network namespace. */
export function checkSysctls(sysctls: Record<string, string>, network: NetworkMode): void {
  for (const [key, value] of Object.entries(sysctls)) {
    if (typeof value !== "string") throw new RuntimeError("INVALID_OPTION", `sysctl '${key}': the value must be a string`);
    if (IPC_SYSCTLS.has(key) || key.startsWith("fs.mqueue.")) continue;
    if (key.startsWith("net.")) {
      if (network.mode === "host") throw new RuntimeError("INVALID_OPTION", `sysctl '${key}' is not allowed in the host network namespace`);
      if (!/^net\.[A-Za-z0-9_.-]+$/.test(key) || key.includes(".."))
        throw new RuntimeError("INVALID_OPTION", `sysctl '${key}' is not a valid name`);
      continue;
    }
    throw new RuntimeError(
      "INVALID_OPTION",
      `sysctl '${key}' is not whitelisted: only namespaced sysctls (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*) can be set`,
    );
  }
}

function namespaces(network: NetworkMode, mode: CgroupMode): OciNamespace[] {
  const ns: OciNamespace[] = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  if (network.mode === "none") ns.push({ type: "network" });
  else if (network.mode === "path") {
    if (!isAbsolute(network.path)) throw new RuntimeError("INVALID_OPTION", `network namespace path must be absolute: ${network.path}`);
    ns.push({ type: "network", path: network.path });
  }
  // Docker's default cgroupns mode is private on cgroup v2 and host on v1 (and hybrid).
  if (mode === "unified") ns.push({ type: "cgroup" });
  return ns;
}

/** All mounts: the defaults (minus those a user mount replaces), the generated /etc files, then user mounts parents-first. */
function mounts(options: CreateSpecOptions): OciMount[] {
  const user: OciMount[] = [];
  for (const [destination, data] of Object.entries(options.tmpfs ?? {})) {
    const opts = mergeTmpfsOptions(["noexec", "nosuid", "nodev", ...data.split(",")]);
    user.push({ destination: checkDestination(destination), type: "tmpfs", source: "tmpfs", options: opts });
  }
  for (const bind of options.binds ?? []) user.push(parseBind(bind));
  for (const m of options.mounts ?? []) {
    const type = m.type ?? "bind";
    if (type === "bind") user.push(bindMount(m.source, m.destination, m.readonly ?? false, m.options));
    else
      user.push({
        destination: checkDestination(m.destination),
        type,
        source: m.source,
        options: [...(m.readonly ? ["ro"] : []), ...(m.options ?? [])],
      });
  }
  const seen = new Set<string>();
  for (const m of user) {
    if (seen.has(m.destination)) throw new RuntimeError("INVALID_OPTION", `Duplicate mount point: ${m.destination}`);
    seen.add(m.destination);
  }
  const etc = options.etcFiles
    ? etcFileMounts(options.etcFiles, options.readonlyRootfs ?? false).filter((m) => !seen.has(m.destination))
    : [];
  if (options.init) user.push({ destination: INIT_PATH, type: "bind", source: options.init, options: ["rbind", "ro", "rprivate"] });
  let defaults = defaultMounts(options.shmSize || DEFAULT_SHM_SIZE).filter((m) => !seen.has(m.destination));
  // Privileged: /sys and the cgroup hierarchy writable, as Docker mounts them.
  if (options.privileged)
    defaults = defaults.map((m) =>
      m.type === "sysfs" || m.type === "cgroup" ? { ...m, options: (m.options ?? []).filter((o) => o !== "ro").concat("rw") } : m,
    );
  const depth = (m: OciMount) => m.destination.split("/").filter((p) => p !== "").length;
  const sorted = [...etc, ...user].map((m, i) => ({ m, i })).sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i);
  return [...defaults, ...sorted.map((x) => x.m)];
}

export interface CreatedSpec {
  spec: OciSpec;
  /** The resolved user (uid, gid, supplementary groups, home). */
  user: ResolvedUser;
  /** The signal `stop` should send first: the image's STOPSIGNAL, else SIGTERM. */
  stopSignal: string;
}

/** Builds a container's config.json (as an object) from an image config and run options. */
export async function createSpec(options: CreateSpecOptions): Promise<OciSpec> {
  return (await createSpecDetailed(options)).spec;
}

/** createSpec, also returning the resolved user and the stop signal. */
export async function createSpecDetailed(options: CreateSpecOptions): Promise<CreatedSpec> {
  if (!isAbsolute(options.rootfs)) throw new RuntimeError("INVALID_OPTION", `rootfs path must be absolute: ${options.rootfs}`);
  const image = options.image ?? {};
  const mode = options.cgroupMode ?? detectCgroupMode();
  const network = options.network ?? { mode: "none" };
  const args = combineCommand({ imageEntrypoint: image.Entrypoint, imageCmd: image.Cmd, entrypoint: options.entrypoint, cmd: options.cmd });

  const workdir = options.workdir || image.WorkingDir || "/";
  if (!isAbsolute(workdir))
    throw new RuntimeError("INVALID_OPTION", `the working directory '${workdir}' is invalid, it needs to be an absolute path`);

  const userSpec = options.user ?? image.User ?? "";
  const user = await resolveUserInRootfs(options.rootfs, userSpec, options.groupAdd ?? []);

  const hostname = options.hostname ?? (network.mode === "host" ? hostHostname() : undefined);
  const base = [`PATH=${DEFAULT_PATH}`];
  if (hostname !== undefined) base.push(`HOSTNAME=${hostname}`);
  if (options.tty) base.push("TERM=xterm");
  const env = mergeEnv(mergeEnv(base, image.Env ?? []), options.env ?? []);

  const caps = capabilities(options.capAdd, options.capDrop, {
    ...(options.privileged ? { privileged: true } : {}),
    ...(options.availableCapabilities ? { available: options.availableCapabilities } : {}),
  });
  if (options.sysctls) checkSysctls(options.sysctls, network);
  if (options.userNamespace && Object.keys(options.sysctls ?? {}).some((k) => k.startsWith("net.")))
    throw new RuntimeError("INVALID_OPTION", "--sysctl net.*: not settable from a remapped user namespace (use --userns host)");
  if (
    options.oomScoreAdj !== undefined &&
    (!Number.isInteger(options.oomScoreAdj) || options.oomScoreAdj < -1000 || options.oomScoreAdj > 1000)
  )
    throw new RuntimeError("INVALID_OPTION", `Invalid value ${options.oomScoreAdj}, range for oom score adj is [-1000, 1000]`);
  if (options.shmSize !== undefined && options.shmSize < 0) throw new RuntimeError("INVALID_OPTION", "SHM size can not be less than 0");
  if (options.init && !isAbsolute(options.init)) throw new RuntimeError("INVALID_OPTION", `init path must be absolute: ${options.init}`);
  const processArgs = options.init ? [INIT_PATH, "--", ...args] : args;

  // Devices: the defaults plus --device nodes, or every host device when privileged.
  const extraRules = [];
  let devices: OciDevice[] = defaultDevices();
  for (const mapping of options.devices ?? []) {
    const mapped = mappedDevices(mapping);
    devices = [...devices.filter((d) => !mapped.devices.some((m) => m.path === d.path)), ...mapped.devices];
    extraRules.push(...mapped.rules);
  }
  for (const rule of options.deviceCgroupRules ?? []) extraRules.push(deviceCgroupRule(rule));
  if (options.privileged) {
    const host = privilegedDevices();
    devices = [...devices.filter((d) => !host.some((h) => h.path === d.path)), ...host];
  }
  const unconfined = options.privileged || options.seccomp === "unconfined";
  const seccomp = unconfined
    ? undefined
    : seccompFromProfile((options.seccomp as DockerSeccompProfile | undefined) ?? DOCKER_DEFAULT_SECCOMP_PROFILE, { capabilities: caps });
  const sysctl: Record<string, string> = {};
  // Network sysctls belong to the network namespace's owner, the host's user namespace: a container in
  // its own user namespace cannot write them (dockerd leaves them out under userns-remap too).
  if (network.mode !== "host" && !options.userNamespace) {
    // moby: unprivileged ports and ICMP sockets for everyone inside a private network namespace.
    sysctl["net.ipv4.ip_unprivileged_port_start"] = "0";
    sysctl["net.ipv4.ping_group_range"] = "0 2147483647";
  }
  Object.assign(sysctl, options.sysctls ?? {});

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    root: { path: options.rootfs, readonly: options.readonlyRootfs ?? false },
    process: {
      terminal: options.tty ?? false,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}) },
      args: processArgs,
      env,
      cwd: workdir,
      capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
      rlimits: rlimits(options.ulimits ?? [], options.hostLimits ?? hostLimits()),
      noNewPrivileges: options.noNewPrivileges ?? false,
      ...(options.oomScoreAdj !== undefined ? { oomScoreAdj: options.oomScoreAdj } : {}),
    },
    ...(hostname !== undefined ? { hostname } : {}),
    mounts: mounts(options),
    linux: {
      namespaces: [
        ...namespaces(network, mode),
        ...(options.userNamespace
          ? [{ type: "user" as const, ...(options.userNamespace.path ? { path: options.userNamespace.path } : {}) }]
          : []),
      ],
      ...(options.userNamespace
        ? { uidMappings: [...options.userNamespace.uidMappings], gidMappings: [...options.userNamespace.gidMappings] }
        : {}),
      devices,
      resources: resources(options, mode, extraRules),
      ...(options.cgroupsPath !== undefined ? { cgroupsPath: options.cgroupsPath } : {}),
      ...(Object.keys(sysctl).length > 0 ? { sysctl } : {}),
      maskedPaths: options.privileged ? [] : [...(options.maskedPaths ?? DEFAULT_MASKED_PATHS)],
      readonlyPaths: options.privileged ? [] : [...(options.readonlyPaths ?? DEFAULT_READONLY_PATHS)],
      ...(seccomp ? { seccomp } : {}),
    },
    ...(options.annotations ? { annotations: { ...options.annotations } } : {}),
  };
  return { spec, user, stopSignal: image.StopSignal || "SIGTERM" };
}
