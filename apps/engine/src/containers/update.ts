// `POST /containers/{id}/update` (swagger ContainerUpdate: `Resources` + `RestartPolicy`): which
// fields may change, checked as dockerd checks them (daemon_unix.go verifyPlatformContainerResources),
// and the container's new OCI resources and HostConfig. A zero, "" or null field means "unchanged", as
// the docker CLI sends every Resources field with zero values for flags not given.
import { existsSync, readFileSync } from "node:fs";
import { cpus as hostCpus } from "node:os";
import { join } from "node:path";
import { type CgroupMode, cgroupMountPoint, type OciResources } from "@minato/runtime";
import { badRequest, conflict } from "../api/errors.js";
import type { HostConfig } from "./manager.js";
import { type RestartPolicy, restartPolicy } from "./restart-policy.js";

const MIN_MEMORY = 6 * 1024 * 1024;
const DEFAULT_CPU_PERIOD = 100_000;

/** The fields an update applies. */
const UPDATABLE = [
  "Memory",
  "MemorySwap",
  "MemoryReservation",
  "NanoCpus",
  "CpuQuota",
  "CpuPeriod",
  "CpuShares",
  "CpusetCpus",
  "CpusetMems",
  "PidsLimit",
  "BlkioWeight",
] as const;

/** Resources fields Docker has that minatod cannot change on a container: refused unless left at their zero value. */
const NOT_UPDATABLE = [
  "CgroupParent",
  "BlkioWeightDevice",
  "BlkioDeviceReadBps",
  "BlkioDeviceWriteBps",
  "BlkioDeviceReadIOps",
  "BlkioDeviceWriteIOps",
  "CpuRealtimePeriod",
  "CpuRealtimeRuntime",
  "Devices",
  "DeviceCgroupRules",
  "DeviceRequests",
  "KernelMemory",
  "KernelMemoryTCP",
  "MemorySwappiness",
  "OomKillDisable",
  "Init",
  "Ulimits",
  "CpuCount",
  "CpuPercent",
  "IOMaximumIOps",
  "IOMaximumBandwidth",
] as const;

type Updatable = (typeof UPDATABLE)[number];

export interface ContainerUpdate {
  resources: Partial<Record<Exclude<Updatable, "CpusetCpus" | "CpusetMems">, number>> & { CpusetCpus?: string; CpusetMems?: string };
  restartPolicy?: RestartPolicy;
}

const isZero = (value: unknown) =>
  value === undefined ||
  value === null ||
  value === 0 ||
  value === "" ||
  value === false ||
  (Array.isArray(value) && value.length === 0) ||
  (typeof value === "object" && !Array.isArray(value) && Object.keys(value as object).length === 0);

/** The request body, checked field by field: unknown fields and values that cannot be applied are a 400. */
export function parseUpdate(body: unknown, hostConfig: HostConfig): ContainerUpdate {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw badRequest("invalid update: expected a JSON object");
  const update: ContainerUpdate = { resources: {} };
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    if (key === "RestartPolicy") {
      const raw = value as { Name?: unknown } | null;
      if (isZero(raw) || raw?.Name === "" || raw?.Name === undefined) continue;
      if (hostConfig.AutoRemove === true && raw.Name !== "no")
        throw badRequest("Restart policy cannot be updated because AutoRemove is enabled for the container");
      update.restartPolicy = restartPolicy(raw, false);
    } else if ((UPDATABLE as readonly string[]).includes(key)) {
      if (key === "CpusetCpus" || key === "CpusetMems") {
        if (value === null || value === undefined || value === "") continue;
        if (typeof value !== "string") throw badRequest(`invalid ${key}: expected a string`);
        update.resources[key] = value;
        continue;
      }
      // PidsLimit: null is "unchanged", 0 or -1 "unlimited" (moby's update sets an explicit value as given).
      if (value === null || value === undefined || (value === 0 && key !== "PidsLimit")) continue;
      if (typeof value !== "number" || !Number.isInteger(value)) throw badRequest(`invalid ${key}: expected an integer`);
      update.resources[key as Exclude<Updatable, "CpusetCpus" | "CpusetMems">] = value;
    } else if ((NOT_UPDATABLE as readonly string[]).includes(key)) {
      if (!isZero(value)) throw badRequest(`${key} cannot be updated on a container by minatod`);
    } else {
      throw badRequest(`unknown field ${JSON.stringify(key)} in the update`);
    }
  }
  return update;
}

/** CPUs or memory nodes a cpuset list names ("0-2,4"), or undefined when it is malformed. */
export function parseCpuset(list: string): Set<number> | undefined {
  const ids = new Set<number>();
  for (const part of list.split(",")) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!range) return undefined;
    const first = Number(range[1]);
    const last = range[2] === undefined ? first : Number(range[2]);
    if (last < first || last - first > 4096) return undefined;
    for (let id = first; id <= last; id++) ids.add(id);
  }
  return ids;
}

function available(kind: "cpus" | "mems", mode: CgroupMode): string {
  const cpuset = cgroupMountPoint("cpuset", mode);
  const candidates = [
    ...(cpuset ? [join(cpuset, `cpuset.${kind}`), join(cpuset, `cpuset.${kind}.effective`)] : []),
    kind === "cpus" ? "/sys/devices/system/cpu/online" : "/sys/devices/system/node/online",
  ];
  for (const file of candidates) {
    const text = existsSync(file) ? readFileSync(file, "utf8").trim() : "";
    if (text !== "") return text;
  }
  return kind === "cpus" ? `0-${hostCpus().length - 1}` : "0";
}

function checkCpuset(kind: "cpus" | "mems", list: string, mode: CgroupMode): void {
  const wanted = parseCpuset(list);
  if (!wanted) throw badRequest(`Invalid value ${list} for cpuset ${kind}`);
  const host = available(kind, mode);
  const have = parseCpuset(host) ?? new Set<number>();
  if ([...wanted].some((id) => !have.has(id))) {
    const what = kind === "cpus" ? "CPUs" : "memory nodes";
    throw badRequest(`Requested ${what} are not available - requested ${list}, available: ${host}`);
  }
}

/** Whether the host's cgroup has a Block I/O weight file (v1 blkio.weight needs CFQ or BFQ). */
function blkioWeightSupported(mode: CgroupMode): boolean {
  if (mode === "unified") {
    const root = cgroupMountPoint("io", mode) ?? "/sys/fs/cgroup";
    return readFileSync(join(root, "cgroup.controllers"), "utf8").split(/\s+/).includes("io");
  }
  const blkio = cgroupMountPoint("blkio", mode);
  return blkio !== undefined && (existsSync(join(blkio, "blkio.weight")) || existsSync(join(blkio, "blkio.bfq.weight")));
}

/**
 * The container's resources after `update`, from those it has (its OCI spec's), checked as dockerd
 * checks them; and the HostConfig fields to record, so inspect shows them and a start keeps them.
 */
export function applyUpdate(
  current: OciResources,
  update: ContainerUpdate["resources"],
  mode: CgroupMode,
): { resources: OciResources; recorded: Partial<HostConfig> } {
  const u = update;
  const memory = { ...current.memory };
  const cpu = { ...current.cpu };
  const recorded: Partial<HostConfig> = {};

  if (u.Memory !== undefined) {
    if (u.Memory < MIN_MEMORY) throw badRequest("Minimum memory limit allowed is 6MB");
    // dockerd refuses to raise the limit past the swap limit already set unless the swap changes too.
    if (u.MemorySwap === undefined && (memory.swap ?? 0) > 0 && u.Memory > (memory.swap as number))
      throw conflict("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time");
    memory.limit = u.Memory;
    recorded.Memory = u.Memory;
  }
  if (u.MemorySwap !== undefined) {
    if (u.MemorySwap < -1) throw badRequest("invalid MemorySwap: must be -1 (unlimited) or a byte count");
    if (!memory.limit) throw badRequest("You should always set the Memory limit when using Memoryswap limit, see usage");
    if (u.MemorySwap > 0 && u.MemorySwap < memory.limit)
      throw badRequest("Minimum memoryswap limit should be larger than memory limit, see usage");
    const mount = cgroupMountPoint("memory", mode);
    const accounted = mount !== undefined && (mode === "unified" ? true : existsSync(join(mount, "memory.memsw.limit_in_bytes")));
    if (!accounted) throw badRequest("this host's kernel does not account swap: MemorySwap cannot be set");
    memory.swap = u.MemorySwap;
    recorded.MemorySwap = u.MemorySwap;
  }
  if (u.MemoryReservation !== undefined) {
    if (u.MemoryReservation < MIN_MEMORY) throw badRequest("Minimum memory reservation allowed is 6MB");
    if (memory.limit && memory.limit < u.MemoryReservation)
      throw badRequest("Minimum memory limit can not be less than memory reservation limit, see usage");
    memory.reservation = u.MemoryReservation;
    recorded.MemoryReservation = u.MemoryReservation;
  }

  if (u.NanoCpus !== undefined) {
    if (u.CpuQuota !== undefined) throw badRequest("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
    if (u.CpuPeriod !== undefined) throw badRequest("Conflicting options: Nano CPUs and CPU Period cannot both be set");
    const max = hostCpus().length;
    if (u.NanoCpus < 1e7 || u.NanoCpus > max * 1e9)
      throw badRequest(`Range of CPUs is from 0.01 to ${max}.00, as there are only ${max} CPUs available`);
    cpu.period = DEFAULT_CPU_PERIOD;
    cpu.quota = Math.round((u.NanoCpus / 1e9) * DEFAULT_CPU_PERIOD);
    Object.assign(recorded, { NanoCpus: u.NanoCpus, CpuQuota: 0, CpuPeriod: 0 });
  }
  if (u.CpuPeriod !== undefined) {
    if (u.CpuPeriod < 1000 || u.CpuPeriod > 1_000_000)
      throw badRequest("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)");
    cpu.period = u.CpuPeriod;
    Object.assign(recorded, { CpuPeriod: u.CpuPeriod, NanoCpus: 0 });
  }
  if (u.CpuQuota !== undefined) {
    if (u.CpuQuota !== -1 && u.CpuQuota < 1000) throw badRequest("CPU cfs quota can not be less than 1ms (i.e. 1000)");
    cpu.quota = u.CpuQuota;
    cpu.period ??= DEFAULT_CPU_PERIOD;
    Object.assign(recorded, { CpuQuota: u.CpuQuota, NanoCpus: 0 });
  }
  if (u.CpuShares !== undefined) {
    // The kernel's range for cpu.shares (v1); runc converts to cpu.weight on v2.
    if (u.CpuShares < 2 || u.CpuShares > 262_144) throw badRequest("invalid CpuShares: the range is from 2 to 262144");
    cpu.shares = u.CpuShares;
    recorded.CpuShares = u.CpuShares;
  }
  if (u.CpusetCpus !== undefined) {
    checkCpuset("cpus", u.CpusetCpus, mode);
    cpu.cpus = u.CpusetCpus;
    recorded.CpusetCpus = u.CpusetCpus;
  }
  if (u.CpusetMems !== undefined) {
    checkCpuset("mems", u.CpusetMems, mode);
    cpu.mems = u.CpusetMems;
    recorded.CpusetMems = u.CpusetMems;
  }

  let pids = current.pids;
  if (u.PidsLimit !== undefined) {
    if (u.PidsLimit < -1) throw badRequest("invalid PidsLimit: must be a positive number, or 0 or -1 for unlimited");
    pids = { limit: u.PidsLimit > 0 ? u.PidsLimit : -1 };
    recorded.PidsLimit = u.PidsLimit > 0 ? u.PidsLimit : null;
  }

  let blockIO = current.blockIO;
  if (u.BlkioWeight !== undefined) {
    if (u.BlkioWeight < 10 || u.BlkioWeight > 1000) throw badRequest("Range of blkio weight is from 10 to 1000");
    if (!blkioWeightSupported(mode))
      throw badRequest("this host's kernel does not support Block I/O weight (no blkio.weight or io.weight cgroup file)");
    blockIO = { ...blockIO, weight: u.BlkioWeight };
    recorded.BlkioWeight = u.BlkioWeight;
  }

  const resources: OciResources = { ...current };
  if (Object.keys(memory).length > 0) resources.memory = memory;
  if (Object.keys(cpu).length > 0) resources.cpu = cpu;
  if (pids) resources.pids = pids;
  if (blockIO) resources.blockIO = blockIO;
  return { resources, recorded };
}
