import { describe, expect, it } from "vitest";
import { containerCreateBody } from "../src/commands/container.js";
import { parseDevice, parseUlimit } from "../src/commands/security-flags.js";

const files: Record<string, string> = { "/p/profile.json": '{"defaultAction":"SCMP_ACT_ALLOW"}' };
const io = {
  readText: (path: string) => {
    const text = files[path];
    if (text === undefined) throw new Error(`open ${path}: no such file or directory`);
    return text;
  },
  lookup: () => undefined,
};

describe("run/create security flags, as the docker CLI sends them", () => {
  it("every flag becomes its HostConfig field; a seccomp profile is sent as its content", () => {
    const body = containerCreateBody(
      {
        capAdd: ["NET_ADMIN"],
        capDrop: ["ALL"],
        privileged: true,
        securityOpt: ["no-new-privileges", "seccomp=/p/profile.json", "systempaths=unconfined"],
        ulimit: ["nofile=1024:2048", "nproc=10"],
        init: true,
        device: ["/dev/null", "/dev/zero:/dev/z", "/dev/full:r"],
        deviceCgroupRule: ["c 1:3 rwm"],
        sysctl: ["net.ipv4.ip_forward=1"],
        shmSize: "16m",
        groupAdd: ["audio"],
        oomScoreAdj: "-100",
        cpusetCpus: "0",
        cpuShares: "512",
        memorySwap: "-1",
        memoryReservation: "32m",
        blkioWeight: "300",
        deviceReadBps: ["/dev/vda:1mb"],
        deviceWriteIops: ["/dev/vda:100"],
        userns: "host",
      },
      "busybox",
      [],
      io,
    );
    expect(body.HostConfig).toEqual({
      CapAdd: ["NET_ADMIN"],
      CapDrop: ["ALL"],
      Privileged: true,
      SecurityOpt: ["no-new-privileges", 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'],
      MaskedPaths: [],
      ReadonlyPaths: [],
      Ulimits: [
        { Name: "nofile", Soft: 1024, Hard: 2048 },
        { Name: "nproc", Soft: 10, Hard: 10 },
      ],
      Init: true,
      Devices: [
        { PathOnHost: "/dev/null", PathInContainer: "/dev/null", CgroupPermissions: "rwm" },
        { PathOnHost: "/dev/zero", PathInContainer: "/dev/z", CgroupPermissions: "rwm" },
        { PathOnHost: "/dev/full", PathInContainer: "/dev/full", CgroupPermissions: "r" },
      ],
      DeviceCgroupRules: ["c 1:3 rwm"],
      Sysctls: { "net.ipv4.ip_forward": "1" },
      ShmSize: 16 * 1024 * 1024,
      GroupAdd: ["audio"],
      OomScoreAdj: -100,
      CpusetCpus: "0",
      CpuShares: 512,
      MemorySwap: -1,
      MemoryReservation: 32 * 1024 * 1024,
      BlkioWeight: 300,
      BlkioDeviceReadBps: [{ Path: "/dev/vda", Rate: 1024 * 1024 }],
      BlkioDeviceWriteIOps: [{ Path: "/dev/vda", Rate: 100 }],
      UsernsMode: "host",
    });
  });

  it("bad values are usage errors naming the flag", () => {
    expect(() => parseUlimit("nofile")).toThrow(/"--ulimit" flag: invalid ulimit argument/);
    expect(() => parseUlimit("nofile=2:1")).toThrow(/soft limit must be less than or equal to hard limit/);
    expect(() => parseUlimit("nofile=1:2:3")).toThrow(/can only have up to two/);
    expect(() => parseDevice("/dev/null:/x:rwx")).toThrow(/"--device" flag: invalid device specification/);
    expect(() => containerCreateBody({ securityOpt: ["seccomp=/p/missing.json"] }, "busybox", [], io)).toThrow(
      /opening seccomp profile \(\/p\/missing.json\) failed/,
    );
    expect(() => containerCreateBody({ deviceReadBps: ["vda:1mb"] }, "busybox", [], io)).toThrow(/"--device-read-bps" flag: bad format/);
    expect(() => containerCreateBody({ oomScoreAdj: "high" }, "busybox", [], io)).toThrow(/"--oom-score-adj" flag/);
  });
});
