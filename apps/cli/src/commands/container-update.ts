// `minato update`: docker's flags for changing a container's resources and restart policy.
import { defineCommand } from "../command.js";
import { UsageError } from "../errors.js";
import { eachName } from "./common.js";
import { containerPath, nanoCpus, ramInBytes, restartPolicyFlag } from "./container.js";

interface UpdateFlags {
  blkioWeight?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpuShares?: string;
  cpus?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  pidsLimit?: string;
  restart?: string;
}

const invalid = (value: string, flag: string, why: string) => new UsageError(`invalid argument "${value}" for "${flag}" flag: ${why}`);

function integer(value: string, flag: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw invalid(value, flag, `strconv.ParseInt: parsing "${value}": invalid syntax`);
  return Number(value);
}

function bytes(value: string, flag: string): number {
  try {
    return ramInBytes(value);
  } catch (error) {
    throw invalid(value, flag, (error as Error).message);
  }
}

/** The `POST /containers/{id}/update` body for the flags given (docker's `runUpdate`). */
export function updateBody(flags: UpdateFlags): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (flags.blkioWeight !== undefined) body.BlkioWeight = integer(flags.blkioWeight, "--blkio-weight");
  if (flags.cpuPeriod !== undefined) body.CpuPeriod = integer(flags.cpuPeriod, "--cpu-period");
  if (flags.cpuQuota !== undefined) body.CpuQuota = integer(flags.cpuQuota, "--cpu-quota");
  if (flags.cpuShares !== undefined) body.CpuShares = integer(flags.cpuShares, "-c, --cpu-shares");
  if (flags.cpus !== undefined) {
    try {
      body.NanoCpus = nanoCpus(flags.cpus);
    } catch (error) {
      throw invalid(flags.cpus, "--cpus", (error as Error).message);
    }
  }
  if (flags.cpusetCpus !== undefined) body.CpusetCpus = flags.cpusetCpus;
  if (flags.cpusetMems !== undefined) body.CpusetMems = flags.cpusetMems;
  if (flags.memory !== undefined) body.Memory = bytes(flags.memory, "-m, --memory");
  if (flags.memoryReservation !== undefined) body.MemoryReservation = bytes(flags.memoryReservation, "--memory-reservation");
  if (flags.memorySwap !== undefined) body.MemorySwap = flags.memorySwap === "-1" ? -1 : bytes(flags.memorySwap, "--memory-swap");
  if (flags.pidsLimit !== undefined) body.PidsLimit = integer(flags.pidsLimit, "--pids-limit");
  if (flags.restart !== undefined) body.RestartPolicy = restartPolicyFlag(flags.restart);
  return body;
}

export const updateCommand = defineCommand<UpdateFlags>({
  name: "update",
  shortcuts: ["update"],
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  description: "Update configuration of one or more containers",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) =>
    command
      .option("--blkio-weight <uint16>", "Block IO (relative weight), between 10 and 1000")
      .option("--cpu-period <int>", "Limit CPU CFS (Completely Fair Scheduler) period")
      .option("--cpu-quota <int>", "Limit CPU CFS (Completely Fair Scheduler) quota")
      .option("-c, --cpu-shares <int>", "CPU shares (relative weight)")
      .option("--cpus <decimal>", "Number of CPUs")
      .option("--cpuset-cpus <string>", "CPUs in which to allow execution (0-3, 0,1)")
      .option("--cpuset-mems <string>", "MEMs in which to allow execution (0-3, 0,1)")
      .option("-m, --memory <bytes>", "Memory limit")
      .option("--memory-reservation <bytes>", "Memory soft limit")
      .option("--memory-swap <bytes>", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
      .option("--pids-limit <int>", "Tune container pids limit (set -1 for unlimited)")
      .option("--restart <string>", "Restart policy to apply when a container exits"),
  async run(context, names, options) {
    const body = updateBody(options);
    if (Object.keys(body).length === 0) throw new UsageError("you must provide one or more flags when using this command");
    const json = JSON.stringify(body);
    return eachName(context, names, async (name) => {
      const response = await context.client.call("POST", containerPath(name, "/update"), {
        headers: { "Content-Type": "application/json" },
        body: json,
      });
      await response.body.dump();
      return name;
    });
  },
});
