// Spec generation: Docker's defaults, USER resolution, ENTRYPOINT/CMD combination, limits, /etc files.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  CPU_PERIOD,
  capabilities,
  combineCommand,
  createSpec,
  createSpecDetailed,
  DEFAULT_CAPABILITIES,
  DEFAULT_NOFILE,
  type HostLimit,
  hostsFile,
  mergeEnv,
  mergeTmpfsOptions,
  parseBind,
  parseK8sLog,
  parseLimits,
  RuntimeError,
  resolvConfFile,
  resolveUser,
  rlimits,
} from "../src/index.js";

const rootfs = mkdtempSync(join(tmpdir(), "minato-runtime-spec-"));
afterAll(() => rmSync(rootfs, { recursive: true, force: true }));
mkdirSync(join(rootfs, "etc"));
const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
  "app:x:1000:1000:App:/home/app:/bin/sh",
  "# a comment",
  "broken-line",
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
].join("\n");
const GROUP = ["root:x:0:", "daemon:x:1:", "wheel:x:10:root,app", "app:x:1000:", "audio:x:29:app", "nogroup:x:65534:"].join("\n");
writeFileSync(join(rootfs, "etc/passwd"), PASSWD);
writeFileSync(join(rootfs, "etc/group"), GROUP);

const noLimits = new Map<string, HostLimit>();
const base = { rootfs, cgroupMode: "hybrid" as const, hostLimits: noLimits, image: { Cmd: ["sh"] } };

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RuntimeError) return `${error.code}: ${error.message}`;
    throw error;
  }
  throw new Error("expected a RuntimeError");
}

describe("Docker's defaults", () => {
  it("namespaces pid, ipc, uts, mount and a new network namespace; cgroup only on unified cgroup v2", async () => {
    const hybrid = await createSpec(base);
    expect(hybrid.linux.namespaces.map((n) => n.type).sort()).toEqual(["ipc", "mount", "network", "pid", "uts"]);
    const unified = await createSpec({ ...base, cgroupMode: "unified" });
    expect(unified.linux.namespaces.map((n) => n.type).sort()).toEqual(["cgroup", "ipc", "mount", "network", "pid", "uts"]);
  });

  it("Docker's 14 default capabilities in bounding, effective and permitted; none inheritable or ambient", async () => {
    const spec = await createSpec(base);
    const caps = spec.process.capabilities!;
    expect(DEFAULT_CAPABILITIES).toHaveLength(14);
    for (const set of [caps.bounding, caps.effective, caps.permitted]) expect([...set].sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
    expect(caps.inheritable).toBeUndefined();
    expect(caps.ambient).toBeUndefined();
    expect(caps.bounding).toContain("CAP_NET_BIND_SERVICE");
    expect(caps.bounding).not.toContain("CAP_SYS_ADMIN");
  });

  it("masked and read-only paths as Docker sets them", async () => {
    const spec = await createSpec(base);
    expect(spec.linux.maskedPaths).toEqual(
      expect.arrayContaining([
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/proc/acpi",
      ]),
    );
    expect(spec.linux.readonlyPaths).toEqual(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
  });

  it("default mounts: /proc, /dev tmpfs, /dev/pts, /sys ro, /sys/fs/cgroup ro, /dev/mqueue, /dev/shm 64 MiB", async () => {
    const spec = await createSpec(base);
    const byDest = new Map(spec.mounts.map((m) => [m.destination, m]));
    expect([...byDest.keys()]).toEqual(["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]);
    expect(byDest.get("/proc")).toMatchObject({ type: "proc" });
    expect(byDest.get("/dev")).toMatchObject({ type: "tmpfs", options: expect.arrayContaining(["mode=755", "nosuid"]) });
    expect(byDest.get("/dev/pts")).toMatchObject({
      type: "devpts",
      options: expect.arrayContaining(["newinstance", "ptmxmode=0666", "gid=5"]),
    });
    expect(byDest.get("/sys")?.options).toContain("ro");
    expect(byDest.get("/sys/fs/cgroup")).toMatchObject({ type: "cgroup", options: expect.arrayContaining(["ro"]) });
    expect(byDest.get("/dev/mqueue")?.type).toBe("mqueue");
    expect(byDest.get("/dev/shm")?.options).toEqual(expect.arrayContaining(["mode=1777", `size=${64 * 1024 * 1024}`]));
  });

  it("devices null, zero, full, random, urandom, tty; device cgroup denies all then allows those, pts and ptmx, denies fuse", async () => {
    const spec = await createSpec(base);
    expect(spec.linux.devices?.map((d) => `${d.path} ${d.major}:${d.minor}`)).toEqual([
      "/dev/null 1:3",
      "/dev/zero 1:5",
      "/dev/full 1:7",
      "/dev/random 1:8",
      "/dev/urandom 1:9",
      "/dev/tty 5:0",
    ]);
    const rules = spec.linux.resources?.devices ?? [];
    expect(rules[0]).toEqual({ allow: false, access: "rwm" });
    const allowed = rules.filter((r) => r.allow).map((r) => `${r.type} ${r.major ?? "*"}:${r.minor ?? "*"} ${r.access}`);
    expect(allowed).toEqual(
      expect.arrayContaining(["c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"]),
    );
    expect(rules).toContainEqual({ allow: false, type: "c", major: 10, minor: 229, access: "rwm" });
    expect(allowed).toEqual(expect.arrayContaining(["c *:* m", "b *:* m"]));
  });

  it("PATH, HOSTNAME and TERM defaults; image and run env replace by key; a bare KEY removes", async () => {
    const plain = await createSpec({ ...base, hostname: "abc123" });
    expect(plain.process.env).toEqual(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=abc123"]);
    const spec = await createSpec({
      ...base,
      tty: true,
      image: { Cmd: ["sh"], Env: ["PATH=/opt/bin:/bin", "A=1", "B=2"] },
      env: ["A=override", "C=3", "B"],
    });
    expect(spec.process.env).toEqual(["PATH=/opt/bin:/bin", "TERM=xterm", "A=override", "C=3"]);
    expect(spec.process.terminal).toBe(true);
    expect(mergeEnv(["X=1"], ["X=2", "Y=a=b"])).toEqual(["X=2", "Y=a=b"]);
  });

  it("root, cwd, noNewPrivileges (Docker: off unless asked), sysctls for a private network, rlimits under the host's", async () => {
    const spec = await createSpec({ ...base, readonlyRootfs: true });
    expect(spec.root).toEqual({ path: rootfs, readonly: true });
    expect(spec.process.cwd).toBe("/");
    expect(spec.process.user).toEqual({ uid: 0, gid: 0, additionalGids: [10] });
    expect(spec.process.noNewPrivileges).toBe(false);
    expect((await createSpec({ ...base, noNewPrivileges: true })).process.noNewPrivileges).toBe(true);
    expect(spec.linux.sysctl).toEqual({ "net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647" });
    expect(spec.process.rlimits).toEqual([{ type: "RLIMIT_NOFILE", soft: DEFAULT_NOFILE, hard: DEFAULT_NOFILE }]);
    expect(spec.ociVersion).toMatch(/^1\.0\./);
  });
});

describe("USER resolution against /etc/passwd and /etc/group", () => {
  const table: [string, { uid: number; gid: number; additionalGids: number[] }][] = [
    ["", { uid: 0, gid: 0, additionalGids: [10] }],
    ["root", { uid: 0, gid: 0, additionalGids: [10] }],
    ["app", { uid: 1000, gid: 1000, additionalGids: [10, 29] }],
    ["1000", { uid: 1000, gid: 1000, additionalGids: [10, 29] }],
    ["4242", { uid: 4242, gid: 0, additionalGids: [] }],
    ["4242:4343", { uid: 4242, gid: 4343, additionalGids: [] }],
    ["app:audio", { uid: 1000, gid: 29, additionalGids: [] }],
    ["app:5555", { uid: 1000, gid: 5555, additionalGids: [] }],
    ["daemon:wheel", { uid: 1, gid: 10, additionalGids: [] }],
    ["nobody", { uid: 65534, gid: 65534, additionalGids: [] }],
    [":audio", { uid: 0, gid: 29, additionalGids: [] }],
  ];
  for (const [spec, expected] of table) {
    it(`${JSON.stringify(spec)} → ${expected.uid}:${expected.gid} +[${expected.additionalGids}]`, () => {
      expect(resolveUser(spec, PASSWD, GROUP)).toMatchObject(expected);
    });
  }

  it("unknown users and groups get Docker's errors; numeric ids need no entry", async () => {
    expect(await codeOf(createSpec({ ...base, user: "ghost" }))).toBe(
      "UNKNOWN_USER: unable to find user ghost: no matching entries in passwd file",
    );
    expect(await codeOf(createSpec({ ...base, user: "app:ghosts" }))).toBe(
      "UNKNOWN_USER: unable to find group ghosts: no matching entries in group file",
    );
    expect(() => resolveUser("app", undefined, undefined)).toThrow("unable to find user app: no matching entries in passwd file");
    expect(resolveUser("7", undefined, undefined)).toMatchObject({ uid: 7, gid: 0 });
    expect(() => resolveUser("99999999999", PASSWD, GROUP)).toThrow("uids and gids must be in range 0-2147483647");
  });

  it("the image's USER applies unless -u overrides it; --group-add adds groups by name or number", async () => {
    const fromImage = await createSpec({ ...base, image: { Cmd: ["sh"], User: "app" } });
    expect(fromImage.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 29] });
    const overridden = await createSpec({ ...base, image: { Cmd: ["sh"], User: "app" }, user: "1:1", groupAdd: ["audio", "777"] });
    expect(overridden.process.user).toEqual({ uid: 1, gid: 1, additionalGids: [29, 777] });
    expect(await codeOf(createSpec({ ...base, groupAdd: ["ghosts"] }))).toBe(
      "UNKNOWN_USER: unable to find group ghosts: no matching entries in group file",
    );
  });
});

describe("ENTRYPOINT and CMD combined as Docker does", () => {
  const table: {
    name: string;
    image: [string[] | null, string[] | null];
    entrypoint?: string[];
    cmd?: string[];
    args: string[] | "error";
  }[] = [
    { name: "image CMD only", image: [null, ["sh", "-c", "echo hi"]], args: ["sh", "-c", "echo hi"] },
    { name: "image ENTRYPOINT + CMD", image: [["/entry.sh"], ["--flag"]], args: ["/entry.sh", "--flag"] },
    { name: "image ENTRYPOINT only", image: [["/entry.sh"], null], args: ["/entry.sh"] },
    { name: "run args replace CMD, keep ENTRYPOINT", image: [["/entry.sh"], ["--flag"]], cmd: ["x", "y"], args: ["/entry.sh", "x", "y"] },
    { name: "run args replace CMD", image: [null, ["sh"]], cmd: ["echo", "hello"], args: ["echo", "hello"] },
    { name: "--entrypoint drops the image's CMD", image: [["/entry.sh"], ["--flag"]], entrypoint: ["/bin/ls"], args: ["/bin/ls"] },
    {
      name: "--entrypoint with run args",
      image: [["/entry.sh"], ["--flag"]],
      entrypoint: ["/bin/ls"],
      cmd: ["-l"],
      args: ["/bin/ls", "-l"],
    },
    {
      name: '--entrypoint "" with run args',
      image: [["/entry.sh"], ["--flag"]],
      entrypoint: [""],
      cmd: ["echo", "x"],
      args: ["echo", "x"],
    },
    { name: '--entrypoint "" alone', image: [["/entry.sh"], ["--flag"]], entrypoint: [""], args: "error" },
    { name: "API Entrypoint [] keeps the image CMD", image: [["/entry.sh"], ["--flag"]], entrypoint: [], args: ["--flag"] },
    {
      name: "shell form already resolved in the image",
      image: [["/bin/sh", "-c", "exec app"], ["ignored"]],
      args: ["/bin/sh", "-c", "exec app", "ignored"],
    },
    { name: "nothing at all", image: [null, null], args: "error" },
    { name: "empty run args keep the image CMD", image: [null, ["top"]], cmd: [], args: ["top"] },
  ];
  for (const row of table) {
    it(row.name, () => {
      const run = () => combineCommand({ imageEntrypoint: row.image[0], imageCmd: row.image[1], entrypoint: row.entrypoint, cmd: row.cmd });
      if (row.args === "error") expect(run).toThrow("No command specified");
      else expect(run()).toEqual(row.args);
    });
  }
});

describe("run options", () => {
  it("memory limit with swap at twice the memory where swap is accounted, cpus as quota/period, pids limit", async () => {
    const spec = await createSpec({ ...base, memory: 64 * 1024 * 1024, memorySwap: -1, cpus: 0.5, pidsLimit: 20 });
    expect(spec.linux.resources?.memory).toEqual({ limit: 64 * 1024 * 1024, swap: -1 });
    expect(spec.linux.resources?.cpu).toEqual({ quota: 50_000, period: CPU_PERIOD });
    expect(spec.linux.resources?.pids).toEqual({ limit: 20 });
    const unlimited = await createSpec({ ...base, pidsLimit: -1 });
    expect(unlimited.linux.resources?.pids).toBeUndefined();
    expect(await codeOf(createSpec({ ...base, memory: 1024 * 1024 }))).toBe("INVALID_OPTION: Minimum memory limit allowed is 6MB");
    expect(await codeOf(createSpec({ ...base, cpus: 1000 }))).toMatch(/^INVALID_OPTION: range of CPUs is from 0.01 to/);
  });

  it("workdir from -w, then the image, must be absolute", async () => {
    expect((await createSpec({ ...base, image: { Cmd: ["sh"], WorkingDir: "/srv" } })).process.cwd).toBe("/srv");
    expect((await createSpec({ ...base, image: { Cmd: ["sh"], WorkingDir: "/srv" }, workdir: "/tmp" })).process.cwd).toBe("/tmp");
    expect(await codeOf(createSpec({ ...base, workdir: "rel" }))).toBe(
      "INVALID_OPTION: the working directory 'rel' is invalid, it needs to be an absolute path",
    );
  });

  it("network modes: none (new namespace), host (no namespace, host's hostname, no net sysctls), a netns path", async () => {
    const host = await createSpec({ ...base, network: { mode: "host" } });
    expect(host.linux.namespaces.some((n) => n.type === "network")).toBe(false);
    expect(host.linux.sysctl).toBeUndefined();
    expect(host.hostname).toBeTruthy();
    const joined = await createSpec({ ...base, network: { mode: "path", path: "/run/netns/x" } });
    expect(joined.linux.namespaces).toContainEqual({ type: "network", path: "/run/netns/x" });
  });

  it("tmpfs mounts get noexec,nosuid,nodev merged with the user's options; binds rbind + rprivate; mounts sorted parents first", async () => {
    const spec = await createSpec({
      ...base,
      tmpfs: { "/run/x": "exec,size=1m", "/run": "" },
      binds: ["/srv/data:/data/sub:ro", "/srv/top:/data"],
      etcFiles: { hosts: "/h/hosts", hostname: "/h/hostname", resolvConf: "/h/resolv.conf" },
      readonlyRootfs: true,
    });
    const user = spec.mounts.slice(7);
    expect(user.map((m) => m.destination)).toEqual([
      "/run",
      "/data",
      "/etc/resolv.conf",
      "/etc/hostname",
      "/etc/hosts",
      "/run/x",
      "/data/sub",
    ]);
    expect(user.find((m) => m.destination === "/run/x")?.options).toEqual(["nosuid", "nodev", "exec", "size=1m"]);
    expect(user.find((m) => m.destination === "/data/sub")).toEqual({
      destination: "/data/sub",
      type: "bind",
      source: "/srv/data",
      options: ["rbind", "ro", "rprivate"],
    });
    expect(user.find((m) => m.destination === "/etc/hosts")?.options).toEqual(["rbind", "rprivate", "ro"]);
    expect(mergeTmpfsOptions(["noexec", "rw", "size=1", "exec", "ro", "size=2"])).toEqual(["exec", "ro", "size=2"]);
    expect(() => parseBind("relative:/x")).toThrow("bind source path must be absolute");
    const shm = await createSpec({ ...base, tmpfs: { "/dev/shm": "size=1m" } });
    expect(shm.mounts.filter((m) => m.destination === "/dev/shm")).toHaveLength(1);
  });

  it("capabilities: --cap-add, --cap-drop, ALL", () => {
    expect(capabilities(["SYS_ADMIN"], ["NET_RAW"])).toContain("CAP_SYS_ADMIN");
    expect(capabilities(["SYS_ADMIN"], ["NET_RAW"])).not.toContain("CAP_NET_RAW");
    expect(capabilities(["CHOWN"], ["ALL"])).toEqual(["CAP_CHOWN"]);
    expect(capabilities(["ALL"]).length).toBeGreaterThan(30);
    expect(() => capabilities(["BOGUS"])).toThrow('unknown capability: "CAP_BOGUS"');
  });

  it("rlimits never exceed the host's hard limits; unlimited ones are inherited, not written", () => {
    const host = parseLimits(
      "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\nMax processes             unlimited            unlimited            processes\nMax core file size        0                    unlimited            bytes\n",
    );
    expect(host.get("RLIMIT_NOFILE")).toEqual({ soft: 1024, hard: 4096 });
    expect(host.get("RLIMIT_NPROC")).toEqual({ soft: Number.POSITIVE_INFINITY, hard: Number.POSITIVE_INFINITY });
    expect(rlimits([], host)).toEqual([{ type: "RLIMIT_NOFILE", soft: 4096, hard: 4096 }]);
    expect(
      rlimits(
        [
          { name: "nproc", soft: 100, hard: 200 },
          { name: "core", soft: 1, hard: 2 },
        ],
        host,
      ),
    ).toEqual([
      { type: "RLIMIT_NOFILE", soft: 4096, hard: 4096 },
      { type: "RLIMIT_NPROC", soft: 100, hard: 200 },
      { type: "RLIMIT_CORE", soft: 1, hard: 2 },
    ]);
    expect(() => rlimits([{ name: "bogus", soft: 1, hard: 1 }], host)).toThrow("invalid ulimit type: bogus");
  });

  it("the stop signal is the image's STOPSIGNAL, else SIGTERM", async () => {
    expect((await createSpecDetailed(base)).stopSignal).toBe("SIGTERM");
    expect((await createSpecDetailed({ ...base, image: { Cmd: ["sh"], StopSignal: "SIGQUIT" } })).stopSignal).toBe("SIGQUIT");
  });
});

describe("generated /etc files", () => {
  it("/etc/hosts: Docker's defaults, extra hosts, the container's own address", () => {
    const text = hostsFile({ hostname: "c0ffee", addresses: ["10.0.0.2"], extraHosts: [{ host: "db", ip: "10.0.0.9" }] });
    expect(text.split("\n")).toEqual([
      "127.0.0.1\tlocalhost",
      "::1\tlocalhost ip6-localhost ip6-loopback",
      "fe00::0\tip6-localnet",
      "ff00::0\tip6-mcastprefix",
      "ff02::1\tip6-allnodes",
      "ff02::2\tip6-allrouters",
      "10.0.0.9\tdb",
      "10.0.0.2\tc0ffee",
      "",
    ]);
  });

  it("resolv.conf drops loopback (and IPv6) nameservers for a private network, falls back to Google DNS", () => {
    const host =
      "# comment\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nnameserver ::1\nnameserver 2001:db8::1\nsearch corp.example\noptions ndots:2\n";
    expect(resolvConfFile({ host, privateNetwork: true })).toBe("# comment\nsearch corp.example\noptions ndots:2\nnameserver 10.1.1.1\n");
    expect(resolvConfFile({ host: "nameserver 127.0.0.1\n", privateNetwork: true })).toBe("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    expect(resolvConfFile({ host: "nameserver 127.0.0.1\n", privateNetwork: false })).toBe("nameserver 127.0.0.1\n");
    expect(resolvConfFile({ host, privateNetwork: true, nameservers: ["1.1.1.1"], search: ["a.b"], options: ["ndots:5"] })).toBe(
      "# comment\nnameserver 1.1.1.1\nsearch a.b\noptions ndots:5\n",
    );
  });
});

describe("k8s-file logs", () => {
  it("parses records, joins partial lines per stream", () => {
    const text = [
      "2024-01-01T00:00:00.000000001+00:00 stdout P hel",
      "2024-01-01T00:00:00.000000002+00:00 stderr F oops",
      "2024-01-01T00:00:00.000000003+00:00 stdout F lo world",
      "2024-01-01T00:00:00.000000004+00:00 stdout F ",
      "2024-01-01T00:00:00.000000005+00:00 stdout P tail",
    ].join("\n");
    expect(parseK8sLog(text).map((r) => [r.stream, r.text, r.complete])).toEqual([
      ["stdout", "hello world", true],
      ["stderr", "oops", true],
      ["stdout", "", true],
      ["stdout", "tail", false],
    ]);
  });
});
