// The security parts of spec generation: capability arithmetic bounded by the host, Docker's seccomp
// profile converted per container, privileged, --init, devices, sysctls, ulimits, cgroup options.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  capabilities,
  capabilitiesOfMask,
  createSpec,
  DEFAULT_CAPABILITIES,
  DOCKER_DEFAULT_SECCOMP_PROFILE,
  deviceCgroupRule,
  type HostLimit,
  INIT_PATH,
  LINUX_CAPABILITIES,
  parseSeccompProfile,
  RuntimeError,
  rlimits,
  seccompFromProfile,
} from "../src/index.js";

const rootfs = mkdtempSync(join(tmpdir(), "minato-security-spec-"));
afterAll(() => rmSync(rootfs, { recursive: true, force: true }));
mkdirSync(join(rootfs, "etc"));
writeFileSync(join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
writeFileSync(join(rootfs, "etc/group"), "root:x:0:\n");
const base = { rootfs, cgroupMode: "hybrid" as const, hostLimits: new Map<string, HostLimit>(), image: { Cmd: ["sh"] } };
// This machine's bounding set lacks CAP_SYS_RESOURCE (bit 24): the mask /proc/self/status shows there.
const HOST_WITHOUT_SYS_RESOURCE = capabilitiesOfMask("000001fffeffffff");

async function optionError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RuntimeError && error.code === "INVALID_OPTION") return error.message;
    throw error;
  }
  throw new Error("expected an INVALID_OPTION error");
}

describe("capabilities", () => {
  it("reads a status mask: bit n is capability n", () => {
    expect(capabilitiesOfMask("a80425fb")).toEqual(
      expect.arrayContaining(["CAP_CHOWN", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_AUDIT_WRITE", "CAP_KILL"]),
    );
    expect([...capabilitiesOfMask("a80425fb")].sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
    expect(HOST_WITHOUT_SYS_RESOURCE).toHaveLength(LINUX_CAPABILITIES.length - 1);
    expect(HOST_WITHOUT_SYS_RESOURCE).not.toContain("CAP_SYS_RESOURCE");
  });

  it("names with or without CAP_, any case; ALL and privileged mean what the host can give, never more", () => {
    const available = HOST_WITHOUT_SYS_RESOURCE;
    expect(capabilities(["net_admin", "CAP_SYS_PTRACE"], ["chown"], { available })).toEqual(
      expect.arrayContaining(["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]),
    );
    expect(capabilities(["net_admin"], ["chown"], { available })).not.toContain("CAP_CHOWN");
    expect(capabilities(["NET_ADMIN"], ["ALL"], { available })).toEqual(["CAP_NET_ADMIN"]);
    expect(capabilities([], ["ALL"], { available })).toEqual([]);
    expect(capabilities(["ALL"], [], { available })).toEqual([...available]);
    expect(capabilities([], [], { privileged: true, available })).toEqual([...available]);
    expect(() => capabilities(["SYS_RESOURCE"], [], { available })).toThrow(/--cap-add CAP_SYS_RESOURCE: this host cannot grant it/);
    expect(() => capabilities(["NOPE"], [], { available })).toThrow('unknown capability: "CAP_NOPE"');
  });
});

describe("seccomp", () => {
  const rule = (s: ReturnType<typeof seccompFromProfile>, name: string) => s.syscalls?.filter((r) => r.names.includes(name)) ?? [];

  it("Docker's default profile on amd64: its arch map, clone's namespace-flag filter, no unshare/mount/keyctl without CAP_SYS_ADMIN", () => {
    const s = seccompFromProfile(DOCKER_DEFAULT_SECCOMP_PROFILE, { capabilities: DEFAULT_CAPABILITIES, arch: "x64", kernel: "6.1.0" });
    expect(s.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(s.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    for (const name of ["unshare", "mount", "keyctl", "init_module", "bpf", "setns"]) expect(rule(s, name), name).toEqual([]);
    expect(rule(s, "clone")).toEqual([
      { names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 2114060288, op: "SCMP_CMP_MASKED_EQ" }] },
    ]);
    expect(rule(s, "clone3")).toEqual([{ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 }]);
    expect(rule(s, "arch_prctl")).toHaveLength(1);
    expect(rule(s, "personality").length).toBeGreaterThan(1);
    expect(rule(s, "ptrace")).toHaveLength(1); // minKernel 4.8
    expect(seccompFromProfile(DOCKER_DEFAULT_SECCOMP_PROFILE, { capabilities: [], kernel: "4.4.0", arch: "x64" }).syscalls).not.toEqual(
      expect.arrayContaining([expect.objectContaining({ names: ["ptrace"] })]),
    );
  });

  it("granted capabilities unlock their syscalls, as Docker's includes/excludes say; other arches' rules are left out", () => {
    const admin = seccompFromProfile(DOCKER_DEFAULT_SECCOMP_PROFILE, {
      capabilities: [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_MODULE"],
      arch: "x64",
      kernel: "6.1.0",
    });
    for (const name of ["unshare", "mount", "setns", "init_module"]) expect(rule(admin, name).length, name).toBeGreaterThan(0);
    expect(rule(admin, "clone").every((r) => !r.args)).toBe(true);
    const arm = seccompFromProfile(DOCKER_DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: "arm64", kernel: "6.1.0" });
    expect(arm.architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    expect(rule(arm, "arch_prctl")).toEqual([]);
    expect(rule(arm, "breakpoint")).toHaveLength(1);
  });

  it("a user's profile in Docker's format: names or name, architectures; bad ones are refused", () => {
    const p = parseSeccompProfile(
      JSON.stringify({
        defaultAction: "SCMP_ACT_ALLOW",
        architectures: ["SCMP_ARCH_X86_64"],
        syscalls: [{ name: "mkdir", action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
      }),
    );
    expect(seccompFromProfile(p, { capabilities: [] })).toEqual({
      defaultAction: "SCMP_ACT_ALLOW",
      architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
    });
    expect(() => parseSeccompProfile("{not json")).toThrow(/decoding seccomp profile failed/);
    expect(() => parseSeccompProfile("[]")).toThrow(/not a JSON object/);
    expect(() => parseSeccompProfile("{}")).toThrow(/defaultAction is required/);
    expect(() => parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/x"}')).toThrow(/listenerPath/);
    expect(() =>
      seccompFromProfile({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"], archMap: [] }, { capabilities: [] }),
    ).toThrow(/cannot both be set/);
  });

  it("on by default; off when unconfined or privileged", async () => {
    expect((await createSpec(base)).linux.seccomp?.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect((await createSpec({ ...base, seccomp: "unconfined" })).linux.seccomp).toBeUndefined();
    expect((await createSpec({ ...base, privileged: true })).linux.seccomp).toBeUndefined();
  });
});

describe("privileged, init, devices, sysctls, ulimits", () => {
  it("privileged: every available capability, all host devices, nothing masked or read-only, /sys and cgroupfs writable", async () => {
    const spec = await createSpec({ ...base, privileged: true, availableCapabilities: HOST_WITHOUT_SYS_RESOURCE });
    expect(spec.process.capabilities?.bounding).toEqual([...HOST_WITHOUT_SYS_RESOURCE]);
    expect(spec.linux.maskedPaths).toEqual([]);
    expect(spec.linux.readonlyPaths).toEqual([]);
    expect(spec.linux.resources?.devices).toEqual([{ allow: true, access: "rwm" }]);
    expect(spec.linux.devices?.some((d) => d.path === "/dev/null")).toBe(true);
    expect(spec.mounts.find((m) => m.type === "sysfs")?.options).not.toContain("ro");
    expect(spec.mounts.find((m) => m.type === "cgroup")?.options).not.toContain("ro");
  });

  it("--init runs the init as PID 1 with the command after --, bind-mounted read-only", async () => {
    const spec = await createSpec({ ...base, init: "/usr/bin/tini-static", cmd: ["echo", "hi"] });
    expect(spec.process.args).toEqual([INIT_PATH, "--", "echo", "hi"]);
    expect(spec.mounts).toContainEqual({
      destination: INIT_PATH,
      type: "bind",
      source: "/usr/bin/tini-static",
      options: ["rbind", "ro", "rprivate"],
    });
  });

  it("--device adds the node and a cgroup rule for it; a missing one or a bad mode is refused", async () => {
    const spec = await createSpec({ ...base, devices: [{ pathOnHost: "/dev/null", pathInContainer: "/dev/mynull", permissions: "r" }] });
    expect(spec.linux.devices).toContainEqual(expect.objectContaining({ path: "/dev/mynull", type: "c", major: 1, minor: 3 }));
    expect(spec.linux.resources?.devices?.at(-1)).toEqual({ allow: true, type: "c", major: 1, minor: 3, access: "r" });
    expect(
      await optionError(createSpec({ ...base, devices: [{ pathOnHost: "/dev/nope", pathInContainer: "", permissions: "rwm" }] })),
    ).toMatch(/adding custom device "\/dev\/nope": no such file or directory/);
    expect(
      await optionError(createSpec({ ...base, devices: [{ pathOnHost: "/dev/null", pathInContainer: "", permissions: "rwx" }] })),
    ).toMatch(/invalid device mode/);
    expect(deviceCgroupRule("c 1:* rwm")).toEqual({ allow: true, type: "c", major: 1, access: "rwm" });
    expect(() => deviceCgroupRule("c one:3 rwm")).toThrow(/invalid device cgroup rule/);
  });

  it("--sysctl: namespaced ones only; net.* not with the host's network", async () => {
    const spec = await createSpec({ ...base, sysctls: { "kernel.shmmax": "1234", "net.ipv4.ip_forward": "1", "fs.mqueue.msg_max": "20" } });
    expect(spec.linux.sysctl).toMatchObject({ "kernel.shmmax": "1234", "net.ipv4.ip_forward": "1", "fs.mqueue.msg_max": "20" });
    expect(await optionError(createSpec({ ...base, sysctls: { "kernel.domainname": "x" } }))).toMatch(
      /sysctl 'kernel.domainname' is not whitelisted/,
    );
    expect(await optionError(createSpec({ ...base, sysctls: { "vm.swappiness": "1" } }))).toMatch(/not whitelisted/);
    expect(await optionError(createSpec({ ...base, network: { mode: "host" }, sysctls: { "net.ipv4.ip_forward": "1" } }))).toMatch(
      /not allowed in the host network namespace/,
    );
  });

  it("--ulimit within the host's hard limits; above them refused, naming the option", () => {
    const host = new Map([["RLIMIT_NOFILE", { soft: 1024, hard: 4096 }]]);
    expect(rlimits([{ name: "nofile", soft: 100, hard: 200 }], host)).toEqual([{ type: "RLIMIT_NOFILE", soft: 100, hard: 200 }]);
    expect(() => rlimits([{ name: "nofile", soft: 100, hard: 5000 }], host)).toThrow(
      /--ulimit nofile=100:5000: above the host's hard limit \(4096\)/,
    );
    expect(() => rlimits([{ name: "nofile", soft: 300, hard: 200 }], host)).toThrow(/soft limit must be less than or equal to hard limit/);
  });

  it("--oom-score-adj range, --shm-size, --memory-swap without --memory, --blkio-weight range are checked", async () => {
    expect(await optionError(createSpec({ ...base, oomScoreAdj: 1001 }))).toMatch(/range for oom score adj is \[-1000, 1000\]/);
    expect(await optionError(createSpec({ ...base, memorySwap: 100 * 1024 * 1024 }))).toMatch(/always set the Memory limit/);
    expect(await optionError(createSpec({ ...base, blkioWeight: 5 }))).toMatch(/Range of blkio weight is from 10 to 1000/);
    expect(await optionError(createSpec({ ...base, cpusetCpus: "0-x" }))).toMatch(/--cpuset-cpus: invalid value 0-x/);
    expect(await optionError(createSpec({ ...base, cpusetCpus: "4095" }))).toMatch(
      /--cpuset-cpus: (requested 4095 is not available|this host has no cpuset cgroup controller)/,
    );
    const shm = await createSpec({ ...base, shmSize: 8 * 1024 * 1024 });
    expect(shm.mounts.find((m) => m.destination === "/dev/shm")?.options).toContain(`size=${8 * 1024 * 1024}`);
  });
});
