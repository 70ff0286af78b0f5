// Container security read from inside real runc containers, driven by the stock docker CLI against
// minatod (and its API where the CLI would refuse first): capabilities, privileged, seccomp, no-new-
// privileges, ulimits, --init, devices, sysctls, cgroup settings, escape attempts, and options the
// host cannot apply refused with a 400 that names them, creating nothing.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { capabilitiesOfMask, detectCgroupMode } from "@minato/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess, until } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const run = (command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Run> =>
  new Promise((resolve, reject) => {
    execFile(command, args, { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") reject(error);
      else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
    });
  });

/** A field of /proc/<pid>/status text. */
const field = (status: string, name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1]?.trim();

const MINATO = join(ROOT, "apps/cli/bin/minato.js");
const HOST_CAP_BND = field(readFileSync("/proc/self/status", "utf8"), "CapBnd") ?? "";
const CGROUP_MODE = detectCgroupMode();

/** A block device of this host (for the io controller's per-device limits), or undefined. */
function hostBlockDevice(): { path: string; majorMinor: string } | undefined {
  const names = readdirSync("/dev").filter((n) => /^(vd|sd|nvme|xvd)[a-z0-9]+$/.test(n) || /^loop\d+$/.test(n));
  names.sort((a, b) => Number(a.startsWith("loop")) - Number(b.startsWith("loop")) || a.localeCompare(b));
  for (const name of names) {
    const s = statSync(join("/dev", name), { bigint: true });
    if (!s.isBlockDevice()) continue;
    const major = ((s.rdev >> 8n) & 0xfffn) | ((s.rdev >> 32n) & ~0xfffn);
    const minor = (s.rdev & 0xffn) | ((s.rdev >> 12n) & ~0xffn);
    return { path: join("/dev", name), majorMinor: `${major}:${minor}` };
  }
  return undefined;
}

describe("container security, from inside the container (root, runc)", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let probe: string;
  const image = "security/busybox:1";

  const docker = (args: string[]) => run("docker", args, env);
  /** `docker run --rm` that must succeed; its stdout. */
  const inside = async (args: string[]): Promise<string> => {
    const r = await docker(["run", "--rm", ...args]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const statusOf = (args: string[]) => inside([...args, image, "cat", "/proc/self/status"]);
  const probeIn = (args: string[], syscall: string) =>
    docker(["run", "--rm", "-v", `${probe}:/probe:ro`, ...args, image, "/probe", syscall]).then((r) => r.stdout.trim());
  const containerCount = async () => (await engine.json<unknown[]>("GET", "/containers/json?all=1")).body.length;

  /** POST /containers/create with a HostConfig: must be a 400 naming `option`, and create nothing. */
  const refused = async (hostConfig: Record<string, unknown>, option: RegExp) => {
    const before = await containerCount();
    const entries = readdirSync(join(engine.dataRoot, "containers")).length;
    const r = await engine.json<{ message: string }>("POST", "/containers/create", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ Image: image, Cmd: ["true"], HostConfig: hostConfig }),
    });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.message).toMatch(option);
    expect(await containerCount()).toBe(before);
    expect(readdirSync(join(engine.dataRoot, "containers"))).toHaveLength(entries);
    return r.body.message;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-security-"));
    engine = await EngineProcess.start();
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    const imported = await docker(["import", "--change", 'CMD ["/bin/sh"]', await busyboxRootfs(work), image]);
    expect(imported.code, imported.stderr).toBe(0);
    // A static syscall probe (test/support/syscall-probe.c) to try what busybox has no applet for.
    probe = join(work, "probe");
    const built = await run("cc", ["-static", "-O1", "-o", probe, join(ROOT, "test/support/syscall-probe.c")]);
    expect(built.code, built.stderr).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await engine?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("by default: Docker's 14 capabilities (none inheritable or ambient), seccomp filter on, new privileges allowed; /info says seccomp", async () => {
    const status = await statusOf([]);
    expect(field(status, "CapEff")).toBe("00000000a80425fb");
    expect(field(status, "CapPrm")).toBe("00000000a80425fb");
    expect(field(status, "CapBnd")).toBe("00000000a80425fb");
    expect(field(status, "CapInh")).toBe("0000000000000000");
    expect(field(status, "CapAmb")).toBe("0000000000000000");
    expect(field(status, "Seccomp")).toBe("2");
    expect(field(status, "NoNewPrivs")).toBe("0");
    const info = await docker(["info", "--format", "{{json .SecurityOptions}}"]);
    expect(JSON.parse(info.stdout)).toContain("name=seccomp,profile=builtin");
  });

  it("--cap-drop ALL --cap-add NET_ADMIN: only CAP_NET_ADMIN, chown is refused; an exec inherits the same sets", async () => {
    const out = await inside([
      "--cap-drop",
      "ALL",
      "--cap-add",
      "net_admin",
      image,
      "sh",
      "-c",
      "grep Cap /proc/self/status; chown 1 /tmp && echo chowned; true",
    ]);
    expect(field(out, "CapEff")).toBe("0000000000001000");
    expect(field(out, "CapBnd")).toBe("0000000000001000");
    expect(out).not.toContain("chowned");
    const started = await docker(["run", "-d", "--cap-drop", "ALL", "--cap-add", "CAP_KILL", image, "sleep", "1000"]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    const exec = await docker(["exec", id, "cat", "/proc/self/status"]);
    expect(field(exec.stdout, "CapEff")).toBe("0000000000000020");
    expect(field(exec.stdout, "Seccomp")).toBe("2");
    await docker(["rm", "-f", id]);
  });

  it("a capability this host cannot grant (absent from minatod's bounding set) is a 400, not a broken start", async () => {
    const missing = ["CAP_SYS_RESOURCE", "CAP_CHECKPOINT_RESTORE", "CAP_BPF"].find((c) => !capabilitiesOfMask(HOST_CAP_BND).includes(c));
    if (!missing) return; // this host holds them all: nothing to refuse
    await refused({ CapAdd: [missing.replace("CAP_", "")] }, new RegExp(`--cap-add ${missing}: this host cannot grant it`));
    await refused({ CapAdd: ["NOT_A_CAP"] }, /unknown capability: "CAP_NOT_A_CAP"/);
  });

  it("--privileged: every capability minatod holds, no seccomp, host devices, writable /sys; exec --privileged works", async () => {
    const out = await inside([
      "--privileged",
      image,
      "sh",
      "-c",
      "grep -E 'Cap|Seccomp:' /proc/self/status; ip link add mzt0 type bridge && echo link-added; grep -E ' /sys (sysfs|cgroup)' /proc/mounts; ls /dev; ip link del mzt0; grep -E ' /sys/fs/cgroup(/[a-z]+)? cgroup2? ' /proc/mounts",
    ]);
    expect(field(out, "CapEff")).toBe(HOST_CAP_BND);
    expect(field(out, "CapBnd")).toBe(HOST_CAP_BND);
    expect(field(out, "Seccomp")).toBe("0");
    expect(out).toContain("link-added");
    expect(out).toMatch(/\/sys sysfs rw,/);
    // The cgroup hierarchy is writable too (v1: each controller's mount; v2: the one cgroup2 mount).
    const cgroupMounts = out.split("\n").filter((l) => / cgroup2? /.test(l));
    expect(cgroupMounts.length).toBeGreaterThan(0);
    for (const line of cgroupMounts) expect(line).toMatch(/ cgroup2? rw,/);
    const hostDevices = readdirSync("/dev").filter((n) => n.startsWith("loop") || n === "kmsg" || n === "fuse");
    for (const name of hostDevices) expect(out.split(/\s+/)).toContain(name);

    const started = await docker(["run", "-d", "--privileged", image, "sleep", "1000"]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    const exec = await docker(["exec", "--privileged", id, "cat", "/proc/self/status"]);
    expect(exec.code, exec.stderr).toBe(0);
    expect(field(exec.stdout, "CapEff")).toBe(HOST_CAP_BND);
    await docker(["rm", "-f", id]);
  });

  it("seccomp: a syscall the default profile blocks fails with EPERM and works under seccomp=unconfined; a custom profile applies", async () => {
    expect(await probeIn([], "keyctl")).toBe("EPERM");
    expect(await probeIn(["--security-opt", "seccomp=unconfined"], "keyctl")).toBe("ok");
    expect(await probeIn([], "unshare-user")).toBe("EPERM");
    expect(await probeIn(["--security-opt", "seccomp=unconfined"], "unshare-user")).toBe("ok");
    // Docker's format, sent by the docker CLI as the file's content.
    const profile = join(work, "no-mkdir.json");
    await writeFile(
      profile,
      JSON.stringify({
        defaultAction: "SCMP_ACT_ALLOW",
        archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86"] }],
        syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
      }),
    );
    expect(await probeIn(["--security-opt", `seccomp=${profile}`], "mkdir")).toBe("EPERM");
    expect(await probeIn(["--security-opt", `seccomp=${profile}`], "keyctl")).toBe("ok");
    expect(await probeIn([], "mkdir")).toBe("ok");
    await refused({ SecurityOpt: ["seccomp={not json"] }, /invalid --security-opt seccomp: decoding seccomp profile failed/);
    await refused({ SecurityOpt: ["seccomp=/etc/profile.json"] }, /invalid --security-opt seccomp/);
    await refused({ SecurityOpt: ["apparmor=docker-default"] }, /apparmor=docker-default: AppArmor is not available/);
    await refused({ SecurityOpt: ["bogus=1"] }, /invalid --security-opt: bogus=1/);
  });

  it("escape attempts from a default container are refused at each layer", async () => {
    // The host's disk: its node can be made (CAP_MKNOD, as in Docker) but not read (device cgroup) nor mounted.
    const disk = hostBlockDevice();
    if (disk) {
      const [major, minor] = disk.majorMinor.split(":");
      const out = await inside([
        image,
        "sh",
        "-c",
        `mknod /tmp/disk b ${major} ${minor}; head -c 512 /tmp/disk >/dev/null && echo read-disk; mkdir /tmp/m; mount /tmp/disk /tmp/m && echo mounted-disk; true`,
      ]);
      expect(out).not.toContain("read-disk");
      expect(out).not.toContain("mounted-disk");
    }
    // unshare into a user namespace to hold every capability there: seccomp says no.
    expect(await probeIn([], "unshare-user")).toBe("EPERM");
    expect(await probeIn([], "unshare-mount")).toBe("EPERM");
    expect(await probeIn([], "mount")).toBe("EPERM");
    expect(await probeIn([], "keyctl")).toBe("EPERM");
    expect(await probeIn([], "finit_module")).toBe("EPERM");
    // /proc/sysrq-trigger is read-only in the container (when this kernel has one at all).
    const sysrq = await docker(["run", "--rm", image, "sh", "-c", "echo h > /proc/sysrq-trigger"]);
    expect(sysrq.code).not.toBe(0);
    if (existsSync("/proc/sysrq-trigger")) expect(sysrq.stderr).toMatch(/Read-only file system/);
  });

  it("--security-opt no-new-privileges sets NoNewPrivs", async () => {
    expect(field(await statusOf(["--security-opt", "no-new-privileges"]), "NoNewPrivs")).toBe("1");
    expect(field(await statusOf(["--security-opt", "no-new-privileges=false"]), "NoNewPrivs")).toBe("0");
  });

  it("--ulimit applies within the host's hard limits; above them a 400 naming the option, no container", async () => {
    const out = await inside([
      "--ulimit",
      "nofile=1024:2048",
      "--ulimit",
      "nproc=512",
      image,
      "sh",
      "-c",
      "ulimit -n; ulimit -Hn; ulimit -u",
    ]);
    expect(out.trim().split("\n")).toEqual(["1024", "2048", "512"]);
    const hostHard = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1];
    if (hostHard && hostHard !== "unlimited") {
      const above = Number(hostHard) + 1;
      await refused(
        { Ulimits: [{ Name: "nofile", Soft: 1024, Hard: above }] },
        new RegExp(`--ulimit nofile=1024:${above}: above the host's hard limit`),
      );
      const cli = await docker(["run", "--rm", "--ulimit", `nofile=1024:${above}`, image, "true"]);
      expect(cli.code).toBe(125);
      expect(cli.stderr).toContain("--ulimit nofile");
    }
    await refused({ Ulimits: [{ Name: "nofiles", Soft: 1, Hard: 1 }] }, /invalid ulimit type: nofiles/);
  });

  it("--init: tini is PID 1 with the command as its child; it reaps orphaned zombies and forwards stop's SIGTERM", async () => {
    const ps = await inside(["--init", image, "sh", "-c", "ps -o pid,ppid,comm; cat /proc/1/cmdline | tr '\\0' ' '"]);
    expect(ps).toMatch(/^\s*1\s+0\s+docker-init$/m);
    expect(ps).toMatch(/^\s*\d+\s+1\s+sh$/m);
    expect(ps).toContain("/sbin/docker-init -- sh -c");

    // An orphan (its parent subshell exits at once) is reparented to PID 1 and exits: with an init it
    // is reaped; with `sleep` as PID 1 it stays a zombie.
    const orphan = ["sh", "-c", "(sleep 0.1 &); exec sleep 1000"];
    const zombies = async (id: string) => (await docker(["exec", id, "ps", "-o", "stat,comm"])).stdout;
    const noInit = (await docker(["run", "-d", image, ...orphan])).stdout.trim();
    const withInit = (await docker(["run", "-d", "--init", image, ...orphan])).stdout.trim();
    await until(async () => /^Z\s+sleep$/m.test(await zombies(noInit)), "the zombie under a PID 1 that does not reap");
    await until(async () => (await zombies(withInit)).match(/sleep/g)?.length === 1, "the orphan sleep to exit under tini");
    expect(await zombies(withInit)).not.toMatch(/^Z/m);

    // tini forwards SIGTERM to `sleep` (which, as PID 1, would ignore it): it exits by that signal, not by the SIGKILL.
    const stopped = await docker(["stop", "-t", "60", withInit]);
    expect(stopped.code, stopped.stderr).toBe(0);
    const code = await docker(["inspect", "--format", "{{.State.ExitCode}}", withInit]);
    expect(code.stdout.trim()).toBe("143");
    await docker(["rm", "-f", noInit, withInit]);
  });

  it("--device, --sysctl, --shm-size, --group-add, --oom-score-adj take effect; a non-namespaced sysctl is a 400", async () => {
    const out = await inside([
      "--device",
      "/dev/null:/dev/mynull:rw",
      "--sysctl",
      "kernel.shmmax=123456789",
      "--sysctl",
      "net.ipv4.ip_forward=1",
      "--shm-size",
      "16m",
      "--group-add",
      "4242",
      "--oom-score-adj",
      "321",
      image,
      "sh",
      "-c",
      "ls -l /dev/mynull; cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward; df -k /dev/shm | tail -1; id -G; cat /proc/self/oom_score_adj",
    ]);
    expect(out).toMatch(/^crw-rw-rw-\s+1 root\s+root\s+1,\s+3 .*\/dev\/mynull$/m);
    expect(out).toContain("123456789\n1\n");
    expect(out).toMatch(/shm\s+16384\s/);
    expect(out).toMatch(/^0 4242$/m);
    expect(out).toMatch(/^321$/m);
    await refused({ Sysctls: { "kernel.hostname": "x" } }, /sysctl 'kernel.hostname' is not whitelisted/);
    await refused({ Sysctls: { "net.ipv4.ip_forward": "1" }, NetworkMode: "host" }, /not allowed in the host network namespace/);
    await refused(
      { Devices: [{ PathOnHost: "/dev/does-not-exist", PathInContainer: "/dev/x", CgroupPermissions: "rwm" }] },
      /custom device "\/dev\/does-not-exist"/,
    );
    await refused({ OomScoreAdj: 5000 }, /range for oom score adj/);
  });

  it("cpu, cpuset, memory and io settings are in the container's cgroup files", async () => {
    const disk = hostBlockDevice();
    const io = disk ? ["--device-read-bps", `${disk.path}:1mb`, "--device-write-iops", `${disk.path}:100`] : [];
    const v1 = CGROUP_MODE !== "unified";
    const files = v1
      ? [
          "/sys/fs/cgroup/cpuset/cpuset.cpus",
          "/sys/fs/cgroup/cpu/cpu.shares",
          "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
          "/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device",
          "/sys/fs/cgroup/blkio/blkio.throttle.write_iops_device",
        ]
      : ["/sys/fs/cgroup/cpuset.cpus", "/sys/fs/cgroup/cpu.weight", "/sys/fs/cgroup/memory.low", "/sys/fs/cgroup/io.max"];
    const out = await inside([
      "--cpuset-cpus",
      "0",
      "--cpu-shares",
      "512",
      "--memory",
      "64m",
      "--memory-reservation",
      "32m",
      ...io,
      image,
      "sh",
      "-c",
      `for f in ${files.join(" ")}; do echo "$f=$(cat $f | tr '\\n' ' ')"; done`,
    ]);
    const value = (suffix: string) => new RegExp(`${suffix.replace(/\./g, "\\.")}=(.*)$`, "m").exec(out)?.[1]?.trim();
    expect(value("cpuset.cpus")).toBe("0");
    if (v1) {
      expect(value("cpu.shares")).toBe("512");
      expect(value("memory.soft_limit_in_bytes")).toBe(String(32 * 1024 * 1024));
      if (disk) {
        expect(value("blkio.throttle.read_bps_device")).toBe(`${disk.majorMinor} 1048576`);
        expect(value("blkio.throttle.write_iops_device")).toBe(`${disk.majorMinor} 100`);
      }
    } else {
      expect(value("memory.low")).toBe(String(32 * 1024 * 1024));
      if (disk) expect(value("io.max")).toContain(`${disk.majorMinor} rbps=1048576`);
    }
    if (v1 && readdirSync("/sys/fs/cgroup/memory").includes("memory.memsw.limit_in_bytes")) {
      const swap = await inside([
        "--memory",
        "64m",
        "--memory-swap",
        "96m",
        image,
        "cat",
        "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
      ]);
      expect(swap.trim()).toBe(String(96 * 1024 * 1024));
    }
  });

  it("the minato CLI: the same flags with Docker's names take effect; exec --privileged; a refusal exits 125 with the daemon's message", async () => {
    const minato = (args: string[]) => run(process.execPath, [MINATO, ...args], { ...env, MINATO_HOST: `unix://${engine.socket}` });
    const profile = join(work, "no-mkdir-cli.json");
    await writeFile(
      profile,
      JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }] }),
    );
    const out = await minato([
      "run",
      "--rm",
      "--cap-drop",
      "ALL",
      "--cap-add",
      "NET_ADMIN",
      "--security-opt",
      "no-new-privileges",
      "--security-opt",
      `seccomp=${profile}`,
      "--ulimit",
      "nofile=512:1024",
      "--init",
      "--device",
      "/dev/zero:/dev/myzero:r",
      "--sysctl",
      "kernel.shmmni=2048",
      "--shm-size",
      "8m",
      "--group-add",
      "77",
      "--oom-score-adj",
      "99",
      "--cpu-shares",
      "256",
      image,
      "sh",
      "-c",
      "grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status; ulimit -n; ulimit -Hn; cat /proc/1/comm; ls -l /dev/myzero; cat /proc/sys/kernel/shmmni; df -k /dev/shm | tail -1; id -G; cat /proc/self/oom_score_adj; mkdir /tmp/d || echo mkdir-refused",
    ]);
    expect(out.code, out.stderr).toBe(0);
    expect(field(out.stdout, "CapEff")).toBe("0000000000001000");
    expect(field(out.stdout, "NoNewPrivs")).toBe("1");
    expect(field(out.stdout, "Seccomp")).toBe("2");
    expect(out.stdout).toMatch(/^512\n1024\ndocker-init\n/m);
    expect(out.stdout).toMatch(/1,\s+5 .*\/dev\/myzero/);
    expect(out.stdout).toMatch(/^2048$/m);
    expect(out.stdout).toMatch(/shm\s+8192\s/);
    expect(out.stdout).toMatch(/^0 77$/m);
    expect(out.stdout).toMatch(/^99$/m);
    expect(out.stdout).toContain("mkdir-refused");

    const started = await minato(["run", "-d", "--privileged", image, "sleep", "1000"]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    const exec = await minato(["exec", "--privileged", id, "grep", "CapEff", "/proc/self/status"]);
    expect(exec.code, exec.stderr).toBe(0);
    expect(field(exec.stdout, "CapEff")).toBe(HOST_CAP_BND);
    await minato(["rm", "-f", id]);

    const before = await containerCount();
    const bad = await minato(["run", "--rm", "--sysctl", "kernel.hostname=x", image, "true"]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain("sysctl 'kernel.hostname' is not whitelisted");
    expect(await containerCount()).toBe(before);
  });

  it("what this host cannot apply is a 400 naming the option, and no container is made", async () => {
    const blkio = CGROUP_MODE === "unified" ? "/sys/fs/cgroup" : "/sys/fs/cgroup/blkio";
    const files = readdirSync(blkio);
    if (!files.some((f) => /^(blkio\.|io\.)(bfq\.)?weight$/.test(f)) && CGROUP_MODE !== "unified") {
      await refused({ BlkioWeight: 300 }, /--blkio-weight: this host's block I\/O controller has no weight support/);
      const cli = await docker(["create", "--blkio-weight", "300", image]);
      expect(cli.code).not.toBe(0);
      expect(cli.stderr).toContain("--blkio-weight");
    }
    await refused({ BlkioWeight: 5 }, /Range of blkio weight is from 10 to 1000/);
    await refused({ CpusetCpus: "0-4095" }, /--cpuset-cpus: requested 0-4095 is not available/);
    await refused({ CpuRealtimeRuntime: 1000 }, /--cpu-rt-runtime is not supported/);
    await refused({ PidMode: "host" }, /--pid is not supported/);
    await refused({ UsernsMode: "private" }, /--userns private is not supported/);
    await refused({ MemorySwap: 100 * 1024 * 1024 }, /always set the Memory limit/);
    await refused({ DeviceCgroupRules: ["c 1:3 rwx"] }, /invalid device cgroup rule format/);
    await refused({ CapAdd: "NET_ADMIN" }, /invalid HostConfig.CapAdd: expected a list of strings/);
    await refused({ BlkioDeviceReadBps: [{ Path: "/dev/null", Rate: 1 }] }, /--device-read-bps: \/dev\/null is not a block device/);
  });
});
