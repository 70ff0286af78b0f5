// The isolation and resource options of a create request (swagger `HostConfig`: capabilities,
// privileged, SecurityOpt, Init, devices, sysctls, ulimits, cgroup settings) turned into the spec
// options of @minato/runtime. Each one takes effect or is refused with a 400 naming it: a security
// option accepted and ignored would let a user believe a container is confined when it is not.
import { existsSync } from "node:fs";
import { type CreateSpecOptions, type DockerSeccompProfile, detectCgroupMode, parseSeccompProfile } from "@minato/runtime";
import { badRequest } from "../api/errors.js";
import type { HostConfig } from "./manager.js";

/** Where `--init` finds tini: its static build first, which runs in any image (Debian's tini package). */
export const INIT_BINARIES = ["/usr/bin/tini-static", "/usr/local/bin/tini-static", "/usr/bin/docker-init"];

export function initBinary(): string | undefined {
  return INIT_BINARIES.find((p) => existsSync(p));
}

/** What /info lists under SecurityOptions (dockerd's names). */
export function securityOptionsInfo(usernsRemap: boolean): string[] {
  return ["name=seccomp,profile=builtin", ...(usernsRemap ? ["name=userns"] : [])];
}

type SpecSecurity = Pick<
  CreateSpecOptions,
  | "privileged"
  | "capAdd"
  | "capDrop"
  | "seccomp"
  | "noNewPrivileges"
  | "init"
  | "devices"
  | "deviceCgroupRules"
  | "sysctls"
  | "shmSize"
  | "groupAdd"
  | "oomScoreAdj"
  | "ulimits"
  | "cpusetCpus"
  | "cpusetMems"
  | "cpuShares"
  | "cpuQuota"
  | "cpuPeriod"
  | "memorySwap"
  | "memoryReservation"
  | "memorySwappiness"
  | "oomKillDisable"
  | "blkioWeight"
  | "blkioWeightDevice"
  | "deviceReadBps"
  | "deviceWriteBps"
  | "deviceReadIops"
  | "deviceWriteIops"
  | "maskedPaths"
  | "readonlyPaths"
>;

const typeName = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

function wrongType(field: string, want: string, value: unknown): never {
  throw badRequest(`invalid HostConfig.${field}: expected ${want}, got ${typeName(value)}`);
}

function int(h: HostConfig, field: string): number | undefined {
  const v = h[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) wrongType(field, "an integer", v);
  return v;
}

function str(h: HostConfig, field: string): string | undefined {
  const v = h[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") wrongType(field, "a string", v);
  return v;
}

function strings(h: HostConfig, field: string): string[] | undefined {
  const v = h[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) wrongType(field, "a list of strings", v);
  return v as string[];
}

function objects<T>(h: HostConfig, field: string): T[] | undefined {
  const v = h[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => !x || typeof x !== "object")) wrongType(field, "a list of objects", v);
  return v as T[];
}

function throttles(h: HostConfig, field: string): { path: string; rate: number }[] | undefined {
  return objects<{ Path?: unknown; Rate?: unknown }>(h, field)?.map((d) => {
    if (typeof d.Path !== "string" || typeof d.Rate !== "number")
      throw badRequest(`invalid HostConfig.${field}: each entry needs Path and Rate`);
    return { path: d.Path, rate: d.Rate };
  });
}

/** `no-new-privileges`, `no-new-privileges=true|false` (and the legacy `:` separator). */
function parseBool(value: string | undefined, option: string): boolean {
  if (value === undefined) return true;
  if (["1", "t", "T", "true", "TRUE", "True"].includes(value)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(value)) return false;
  throw badRequest(`invalid --security-opt ${option}: ${value} is not a boolean`);
}

/** HostConfig.SecurityOpt as dockerd parses it (daemon parseSecurityOpt). */
function securityOpts(list: string[], out: SpecSecurity): void {
  for (const entry of list) {
    const sep = /[=:]/.exec(entry);
    const key = sep ? entry.slice(0, sep.index) : entry;
    const value = sep ? entry.slice(sep.index + 1) : undefined;
    switch (key) {
      case "no-new-privileges":
        out.noNewPrivileges = parseBool(value, key);
        break;
      case "seccomp":
        if (value === "unconfined") out.seccomp = "unconfined";
        else if (value === "builtin" || value === "default") delete out.seccomp;
        else if (value?.trimStart().startsWith("{")) {
          let profile: DockerSeccompProfile;
          try {
            profile = parseSeccompProfile(value);
          } catch (error) {
            throw badRequest(`invalid --security-opt seccomp: ${(error as Error).message}`);
          }
          out.seccomp = profile;
        } else
          throw badRequest(
            "invalid --security-opt seccomp: expected unconfined, builtin or a profile's JSON content (the docker CLI sends the file's content)",
          );
        break;
      case "systempaths":
        if (value !== "unconfined") throw badRequest(`invalid --security-opt systempaths=${value ?? ""}: only unconfined is supported`);
        out.maskedPaths = [];
        out.readonlyPaths = [];
        break;
      case "apparmor":
        // No AppArmor here: only "unconfined" is what the container really gets.
        if (value !== "unconfined")
          throw badRequest(
            `invalid --security-opt apparmor=${value ?? ""}: AppArmor is not available on this host (only apparmor=unconfined)`,
          );
        break;
      case "label":
        if (value !== "disable")
          throw badRequest(`invalid --security-opt label=${value ?? ""}: SELinux is not available on this host (only label=disable)`);
        break;
      default:
        throw badRequest(`invalid --security-opt: ${entry}`);
    }
  }
}

/** Options this engine does not implement: refused unless at their default (what the docker CLI sends). */
function refuseUnsupported(h: HostConfig): void {
  const zero = (field: string, option: string) => {
    const v = h[field];
    if (v !== undefined && v !== null && v !== 0 && v !== "" && !(Array.isArray(v) && v.length === 0))
      throw badRequest(`${option} is not supported by this engine`);
  };
  zero("CpuRealtimePeriod", "--cpu-rt-period");
  zero("CpuRealtimeRuntime", "--cpu-rt-runtime");
  zero("KernelMemory", "--kernel-memory");
  zero("KernelMemoryTCP", "HostConfig.KernelMemoryTCP");
  zero("CpuCount", "--cpu-count");
  zero("CpuPercent", "--cpu-percent");
  zero("IOMaximumIOps", "--io-maxiops");
  zero("IOMaximumBandwidth", "--io-maxbandwidth");
  zero("CgroupParent", "--cgroup-parent");
  zero("Cgroup", "HostConfig.Cgroup");
  zero("PidMode", "--pid");
  zero("UTSMode", "--uts");
  const ipc = str(h, "IpcMode");
  if (ipc && ipc !== "private" && ipc !== "shareable") throw badRequest(`--ipc ${ipc} is not supported by this engine (private only)`);
  const userns = str(h, "UsernsMode");
  if (userns && userns !== "host") throw badRequest(`--userns ${userns} is not supported (only host)`);
  const runtime = str(h, "Runtime");
  if (runtime && runtime !== "runc") throw badRequest(`--runtime ${runtime} is not supported (runc only)`);
  const isolation = str(h, "Isolation");
  if (isolation && isolation !== "default") throw badRequest(`--isolation ${isolation} is not supported on Linux`);
  const cgroupns = str(h, "CgroupnsMode");
  if (cgroupns) {
    const mode = detectCgroupMode() === "unified" ? "private" : "host";
    if (cgroupns !== mode) throw badRequest(`--cgroupns ${cgroupns} is not supported on this host (${mode} only)`);
  }
}

/**
 * The spec options of a create request's HostConfig security and resource fields; throws a 400 for
 * a malformed or unsupported one before anything is created.
 */
export function securitySpecOptions(h: HostConfig): SpecSecurity {
  refuseUnsupported(h);
  const out: SpecSecurity = {};
  const privileged = h.Privileged;
  if (privileged !== undefined && privileged !== null && typeof privileged !== "boolean") wrongType("Privileged", "a boolean", privileged);
  if (privileged) out.privileged = true;
  const capAdd = strings(h, "CapAdd");
  const capDrop = strings(h, "CapDrop");
  if (capAdd?.length) out.capAdd = capAdd;
  if (capDrop?.length) out.capDrop = capDrop;
  securityOpts(strings(h, "SecurityOpt") ?? [], out);
  const masked = strings(h, "MaskedPaths");
  const readonly = strings(h, "ReadonlyPaths");
  if (masked) out.maskedPaths = masked;
  if (readonly) out.readonlyPaths = readonly;

  if (h.Init !== undefined && h.Init !== null && typeof h.Init !== "boolean") wrongType("Init", "a boolean", h.Init);
  if (h.Init === true) {
    const init = initBinary();
    if (!init) throw badRequest("--init: no init binary on this host (install Debian's tini package: tini-static)");
    out.init = init;
  }
  const devices = objects<{ PathOnHost?: unknown; PathInContainer?: unknown; CgroupPermissions?: unknown }>(h, "Devices");
  if (devices?.length)
    out.devices = devices.map((d) => {
      if (typeof d.PathOnHost !== "string" || d.PathOnHost === "") throw badRequest("invalid HostConfig.Devices: PathOnHost is required");
      return {
        pathOnHost: d.PathOnHost,
        pathInContainer: typeof d.PathInContainer === "string" ? d.PathInContainer : "",
        permissions: typeof d.CgroupPermissions === "string" ? d.CgroupPermissions : "rwm",
      };
    });
  const rules = strings(h, "DeviceCgroupRules");
  if (rules?.length) out.deviceCgroupRules = rules;

  const sysctls = h.Sysctls;
  if (sysctls !== undefined && sysctls !== null) {
    if (typeof sysctls !== "object" || Array.isArray(sysctls)) wrongType("Sysctls", "an object", sysctls);
    if (Object.keys(sysctls).length > 0) out.sysctls = sysctls as Record<string, string>;
  }
  const shm = int(h, "ShmSize");
  if (shm) out.shmSize = shm;
  const groups = strings(h, "GroupAdd");
  if (groups?.length) out.groupAdd = groups;
  const oom = int(h, "OomScoreAdj");
  if (oom) out.oomScoreAdj = oom;
  const ulimits = objects<{ Name?: unknown; Soft?: unknown; Hard?: unknown }>(h, "Ulimits");
  if (ulimits?.length)
    out.ulimits = ulimits.map((u) => {
      if (typeof u.Name !== "string" || typeof u.Soft !== "number" || typeof u.Hard !== "number")
        throw badRequest("invalid HostConfig.Ulimits: each entry needs Name, Soft and Hard");
      return { name: u.Name, soft: u.Soft, hard: u.Hard };
    });

  const cpusetCpus = str(h, "CpusetCpus");
  if (cpusetCpus) out.cpusetCpus = cpusetCpus;
  const cpusetMems = str(h, "CpusetMems");
  if (cpusetMems) out.cpusetMems = cpusetMems;
  const shares = int(h, "CpuShares");
  if (shares) out.cpuShares = shares;
  const quota = int(h, "CpuQuota");
  if (quota) out.cpuQuota = quota;
  const period = int(h, "CpuPeriod");
  if (period) out.cpuPeriod = period;
  const swap = int(h, "MemorySwap");
  if (swap) out.memorySwap = swap;
  const reservation = int(h, "MemoryReservation");
  if (reservation) out.memoryReservation = reservation;
  const swappiness = int(h, "MemorySwappiness");
  if (swappiness !== undefined && swappiness !== -1) out.memorySwappiness = swappiness;
  if (h.OomKillDisable === true) out.oomKillDisable = true;
  const weight = int(h, "BlkioWeight");
  if (weight) out.blkioWeight = weight;
  const weightDevice = objects<{ Path?: unknown; Weight?: unknown }>(h, "BlkioWeightDevice");
  if (weightDevice?.length)
    out.blkioWeightDevice = weightDevice.map((d) => {
      if (typeof d.Path !== "string" || typeof d.Weight !== "number")
        throw badRequest("invalid HostConfig.BlkioWeightDevice: each entry needs Path and Weight");
      return { path: d.Path, weight: d.Weight };
    });
  const readBps = throttles(h, "BlkioDeviceReadBps");
  if (readBps?.length) out.deviceReadBps = readBps;
  const writeBps = throttles(h, "BlkioDeviceWriteBps");
  if (writeBps?.length) out.deviceWriteBps = writeBps;
  const readIops = throttles(h, "BlkioDeviceReadIOps");
  if (readIops?.length) out.deviceReadIops = readIops;
  const writeIops = throttles(h, "BlkioDeviceWriteIOps");
  if (writeIops?.length) out.deviceWriteIops = writeIops;
  return out;
}
