// `minato update`'s flags as the API body docker's `runUpdate` sends: only the flags given, sizes in
// bytes, CPUs as NanoCpus, `--memory-swap -1` unlimited; bad values refused before any request.
import { describe, expect, it } from "vitest";
import { updateBody } from "../src/commands/container-update.js";

describe("updateBody", () => {
  it("maps docker update's flags to Resources fields", () => {
    expect(
      updateBody({
        memory: "96m",
        memorySwap: "-1",
        memoryReservation: "32m",
        cpus: "1.5",
        cpuShares: "512",
        cpusetCpus: "0,1",
        cpusetMems: "0",
        pidsLimit: "-1",
        blkioWeight: "300",
        restart: "on-failure:3",
      }),
    ).toEqual({
      Memory: 96 * 1024 * 1024,
      MemorySwap: -1,
      MemoryReservation: 32 * 1024 * 1024,
      NanoCpus: 1_500_000_000,
      CpuShares: 512,
      CpusetCpus: "0,1",
      CpusetMems: "0",
      PidsLimit: -1,
      BlkioWeight: 300,
      RestartPolicy: { Name: "on-failure", MaximumRetryCount: 3 },
    });
    expect(updateBody({ cpuPeriod: "50000", cpuQuota: "20000" })).toEqual({ CpuPeriod: 50000, CpuQuota: 20000 });
    expect(updateBody({})).toEqual({});
  });

  it("refuses malformed values with docker's flag message", () => {
    expect(() => updateBody({ memory: "lots" })).toThrow(`invalid argument "lots" for "-m, --memory" flag`);
    expect(() => updateBody({ cpus: "abc" })).toThrow(`invalid argument "abc" for "--cpus" flag`);
    expect(() => updateBody({ pidsLimit: "1.5" })).toThrow(`invalid argument "1.5" for "--pids-limit" flag`);
    expect(() => updateBody({ restart: "sometimes" })).toThrow("invalid restart policy 'sometimes'");
  });
});
