// createSpec: an OCI runtime config.json from an image config and `docker run`-style options, with
// Docker's defaults (moby's oci.DefaultLinuxSpec plus what its daemon adds per container).
import { existsSync } from "node:fs";
import { cpus as hostCpus, hostname as hostHostname } from "node:os";
import { isAbsolute, posix } from "node:path";
import { combineCommand } from "./command.js";
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH,
  DEFAULT_READONLY_PATHS,
  DEFAULT_SHM_SIZE,
  defaultDeviceRules,
  defaultDevices,
  defaultMounts,
  OCI_VERSION,
} from "./defaults.js";
import { RuntimeError } from "./errors.js";
import { type EtcFiles, etcFileMounts } from "./etc-files.js";
import { type CgroupMode, cgroupMountPoint, detectCgroupMode, type HostLimit, hostLimits } from "./host.js";
import type { OciMount, OciNamespace, OciResources, OciRlimit, OciSpec } from "./spec-types.js";
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
  /** `--ulimit`: clamped to the host's hard limits. */
  ulimits?: Ulimit[];
  /** `--cap-add` / `--cap-drop` (with or without the CAP_ prefix; ALL allowed). */
  capAdd?: string[];
  capDrop?: string[];
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

function normalizeCap(cap: string): string {
  const upper = cap.toUpperCase();
  return upper === "ALL" || upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
}

const ALL_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
];

/** Docker's capability arithmetic: defaults, then adds, then drops (drop ALL first, then adds, when ALL is dropped). */
export function capabilities(capAdd: string[] = [], capDrop: string[] = []): string[] {
  const add = capAdd.map(normalizeCap);
  const drop = capDrop.map(normalizeCap);
  for (const cap of [...add, ...drop]) {
    if (cap !== "ALL" && !ALL_CAPABILITIES.includes(cap)) throw new RuntimeError("INVALID_OPTION", `unknown capability: "${cap}"`);
  }
  let caps: string[];
  if (drop.includes("ALL")) caps = add.includes("ALL") ? [...ALL_CAPABILITIES] : add.filter((c) => c !== "ALL");
  else {
    caps = add.includes("ALL") ? [...ALL_CAPABILITIES] : [...DEFAULT_CAPABILITIES, ...add.filter((c) => !DEFAULT_CAPABILITIES.includes(c))];
    caps = caps.filter((c) => !drop.includes(c));
  }
  return [...new Set(caps)];
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

/** Rlimits for the process: NOFILE as under Docker plus `--ulimit`s, none above the host's hard limits. */
export function rlimits(ulimits: Ulimit[], host: Map<string, HostLimit>): OciRlimit[] {
  const wanted = new Map<string, { soft: number; hard: number }>();
  wanted.set("RLIMIT_NOFILE", { soft: DEFAULT_NOFILE, hard: DEFAULT_NOFILE });
  for (const u of ulimits) {
    const type = ULIMIT_NAMES[u.name.toLowerCase()];
    if (!type) throw new RuntimeError("INVALID_OPTION", `invalid ulimit type: ${u.name}`);
    if (u.soft > u.hard)
      throw new RuntimeError("INVALID_OPTION", `ulimit soft limit must be less than or equal to hard limit: ${u.soft} > ${u.hard}`);
    wanted.set(type, { soft: u.soft, hard: u.hard });
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

function resources(options: CreateSpecOptions, mode: CgroupMode): OciResources {
  const res: OciResources = { devices: defaultDeviceRules() };
  if (options.memory !== undefined && options.memory > 0) {
    if (options.memory < MIN_MEMORY) throw new RuntimeError("INVALID_OPTION", "Minimum memory limit allowed is 6MB");
    res.memory = { limit: options.memory };
    if (options.memorySwap !== undefined && options.memorySwap !== 0) {
      if (options.memorySwap > 0 && options.memorySwap < options.memory) {
        throw new RuntimeError("INVALID_OPTION", "Minimum memoryswap limit should be larger than memory limit, see usage");
      }
      res.memory.swap = options.memorySwap;
    } else if (swapAccounting(mode)) {
      res.memory.swap = options.memory * 2;
    }
  }
  if (options.cpus !== undefined && options.cpus !== 0) {
    const max = hostCpus().length;
    if (options.cpus < 0.01 || options.cpus > max) {
      throw new RuntimeError("INVALID_OPTION", `range of CPUs is from 0.01 to ${max}.00, as there are only ${max} CPUs available`);
    }
    res.cpu = { quota: Math.round(options.cpus * CPU_PERIOD), period: CPU_PERIOD };
  }
  if (options.cpuShares !== undefined && options.cpuShares > 0) res.cpu = { ...res.cpu, shares: options.cpuShares };
  if (options.pidsLimit !== undefined && options.pidsLimit > 0) res.pids = { limit: options.pidsLimit };
  return res;
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
  const defaults = defaultMounts(options.shmSize ?? DEFAULT_SHM_SIZE).filter((m) => !seen.has(m.destination));
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

  const caps = capabilities(options.capAdd, options.capDrop);
  const sysctl: Record<string, string> = {};
  if (network.mode !== "host") {
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
      args,
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
      namespaces: namespaces(network, mode),
      devices: defaultDevices(),
      resources: resources(options, mode),
      ...(options.cgroupsPath !== undefined ? { cgroupsPath: options.cgroupsPath } : {}),
      ...(Object.keys(sysctl).length > 0 ? { sysctl } : {}),
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
    ...(options.annotations ? { annotations: { ...options.annotations } } : {}),
  };
  return { spec, user, stopSignal: image.StopSignal || "SIGTERM" };
}
