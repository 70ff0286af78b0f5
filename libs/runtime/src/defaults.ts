// Docker's defaults for a container's OCI spec, as moby's oci.DefaultLinuxSpec and its daemon set them
// (Docker 20.10+: no inheritable capabilities — CVE-2022-24769; /sys/devices/virtual/powercap masked).
import type { OciDevice, OciDeviceCgroup, OciMount } from "./spec-types.js";

/** The OCI runtime spec version the generated config.json claims. runc 1.1 implements 1.0.2. */
export const OCI_VERSION = "1.0.2";

/** Docker's default capability set: bounding, effective and permitted — not inheritable, not ambient. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** PATH when neither the image nor the run options set one (moby's system.DefaultPathEnv on Linux). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Paths covered so the container cannot read them (a /dev/null bind for files, an empty ro tmpfs for dirs). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** Paths remounted read-only inside the container. */
export const DEFAULT_READONLY_PATHS: readonly string[] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** Docker's default /dev/shm size (HostConfig.ShmSize default, 64 MiB). */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** The mounts every container gets, in mount order (parents first). */
export function defaultMounts(shmSize: number = DEFAULT_SHM_SIZE): OciMount[] {
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["ro", "nosuid", "noexec", "nodev"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${shmSize}`] },
  ];
}

/**
 * The device nodes created in the container's /dev (config-linux.md "Default Devices"; runc would create
 * them anyway — listing them keeps config.json self-describing). /dev/ptmx is a symlink to pts/ptmx,
 * which runc makes for a `newinstance` devpts.
 */
export function defaultDevices(): OciDevice[] {
  const node = (path: string, major: number, minor: number): OciDevice => ({
    type: "c",
    path,
    major,
    minor,
    fileMode: 0o666,
    uid: 0,
    gid: 0,
  });
  return [
    node("/dev/null", 1, 3),
    node("/dev/zero", 1, 5),
    node("/dev/full", 1, 7),
    node("/dev/random", 1, 8),
    node("/dev/urandom", 1, 9),
    node("/dev/tty", 5, 0),
  ];
}

/**
 * The device cgroup: deny everything, then allow what Docker allows — the default nodes and /dev/console,
 * /dev/fuse denied explicitly as moby does, then mknod of any device, the devpts slaves and ptmx.
 */
export function defaultDeviceRules(): OciDeviceCgroup[] {
  const allow = (type: "c" | "b", major: number | undefined, minor: number | undefined, access: string): OciDeviceCgroup => {
    const rule: OciDeviceCgroup = { allow: true, type, access };
    if (major !== undefined) rule.major = major;
    if (minor !== undefined) rule.minor = minor;
    return rule;
  };
  // moby's own list first (its fuse deny must precede the wildcard mknod rules: cgroup v1 cannot punch a
  // hole in a wildcard), then what runc appends for every container: mknod anything, console, pts, ptmx.
  return [
    { allow: false, access: "rwm" },
    allow("c", 1, 5, "rwm"),
    allow("c", 1, 3, "rwm"),
    allow("c", 1, 9, "rwm"),
    allow("c", 1, 8, "rwm"),
    allow("c", 1, 7, "rwm"),
    allow("c", 5, 0, "rwm"),
    allow("c", 5, 1, "rwm"),
    { allow: false, type: "c", major: 10, minor: 229, access: "rwm" },
    allow("c", undefined, undefined, "m"),
    allow("b", undefined, undefined, "m"),
    allow("c", 136, undefined, "rwm"),
    allow("c", 5, 2, "rwm"),
  ];
}
