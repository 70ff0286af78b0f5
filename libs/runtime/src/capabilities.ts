// Capabilities as Docker computes them for a container (`--cap-add`, `--cap-drop`, `--privileged`),
// bounded by what this host lets minatod hold: runc cannot give a container a capability that is not
// in its own bounding set, so "all capabilities" means the daemon's (read from /proc/self/status).
import { readFileSync } from "node:fs";
import { DEFAULT_CAPABILITIES } from "./defaults.js";
import { RuntimeError } from "./errors.js";

/** Every capability Linux defines, indexed by its number (capability.h). */
export const LINUX_CAPABILITIES: readonly string[] = [
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
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];

/** The capabilities a hex mask (as /proc/<pid>/status shows CapBnd, CapEff...) holds. */
export function capabilitiesOfMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return LINUX_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

let hostCaps: readonly string[] | undefined;

/** The capabilities this process may hand to a container: its bounding set. */
export function hostCapabilities(): readonly string[] {
  if (!hostCaps) {
    const line = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    hostCaps = line ? capabilitiesOfMask(line[1] as string) : [...LINUX_CAPABILITIES];
  }
  return hostCaps;
}

/** `NET_ADMIN`, `cap_net_admin`, `CAP_NET_ADMIN` → `CAP_NET_ADMIN`; `all` → `ALL`. */
export function normalizeCapability(cap: string): string {
  const upper = cap.trim().toUpperCase();
  return upper === "ALL" || upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
}

/**
 * Docker's capability arithmetic (moby's caps.TweakCapabilities): the default set, or every available
 * capability with `privileged` or `--cap-add ALL`; drops apply after adds, except that with
 * `--cap-drop ALL` only the explicit adds remain. A capability the host cannot give is refused.
 */
export function capabilities(
  capAdd: string[] = [],
  capDrop: string[] = [],
  options: { privileged?: boolean; available?: readonly string[] } = {},
): string[] {
  const available = options.available ?? hostCapabilities();
  const add = capAdd.map(normalizeCapability);
  const drop = capDrop.map(normalizeCapability);
  for (const cap of [...add, ...drop]) {
    if (cap !== "ALL" && !LINUX_CAPABILITIES.includes(cap)) throw new RuntimeError("INVALID_OPTION", `unknown capability: "${cap}"`);
  }
  for (const cap of add) {
    if (cap !== "ALL" && !available.includes(cap))
      throw new RuntimeError("INVALID_OPTION", `--cap-add ${cap}: this host cannot grant it (not in minatod's capability bounding set)`);
  }
  if (options.privileged) return [...available];
  const explicit = add.filter((c) => c !== "ALL");
  let caps: string[];
  if (drop.includes("ALL")) caps = add.includes("ALL") ? [...available] : explicit;
  else {
    const base = add.includes("ALL") ? [...available] : DEFAULT_CAPABILITIES.filter((c) => available.includes(c));
    caps = [...base, ...explicit].filter((c) => !drop.includes(c));
  }
  return [...new Set(caps)];
}
