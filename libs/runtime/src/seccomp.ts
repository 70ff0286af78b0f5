// Seccomp profiles in Docker's format (the one `docker run --security-opt seccomp=profile.json` reads
// and dockerd embeds) turned into the OCI spec's `linux.seccomp` for one container: only the rules
// that apply to this architecture, kernel and capability set are kept (config-linux.md "Seccomp").
import { release } from "node:os";
import { RuntimeError } from "./errors.js";
import type { OciSeccomp, OciSeccompArg, OciSeccompSyscall } from "./spec-types.js";

/** A conditional rule's filter: all of `caps` held / this architecture / this kernel or newer. */
export interface DockerSeccompFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface DockerSeccompSyscall {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[] | null;
  comment?: string;
  includes?: DockerSeccompFilter;
  excludes?: DockerSeccompFilter;
}

export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] | null }[];
  flags?: string[];
  listenerPath?: string;
  syscalls?: DockerSeccompSyscall[] | null;
}

/** Node's process.arch → the Go GOARCH names profiles' `arches` use, and the native libseccomp arch. */
const ARCHES: Record<string, { go: string; scmp: string }> = {
  x64: { go: "amd64", scmp: "SCMP_ARCH_X86_64" },
  ia32: { go: "386", scmp: "SCMP_ARCH_X86" },
  arm64: { go: "arm64", scmp: "SCMP_ARCH_AARCH64" },
  arm: { go: "arm", scmp: "SCMP_ARCH_ARM" },
  ppc64: { go: "ppc64le", scmp: "SCMP_ARCH_PPC64LE" },
  s390x: { go: "s390x", scmp: "SCMP_ARCH_S390X" },
  riscv64: { go: "riscv64", scmp: "SCMP_ARCH_RISCV64" },
};

export interface SeccompContext {
  /** The container's capabilities (bounding set), CAP_ names. */
  capabilities: readonly string[];
  /** Node's process.arch; this host's when omitted. */
  arch?: string;
  /** `uname -r`; this host's when omitted. */
  kernel?: string;
}

function kernelAtLeast(kernel: string, min: string): boolean {
  const k = /^(\d+)\.(\d+)/.exec(kernel);
  const m = /^(\d+)\.(\d+)/.exec(min);
  if (!m) throw new RuntimeError("INVALID_OPTION", `invalid seccomp profile: bad minKernel "${min}"`);
  if (!k) return false;
  const [kMajor, kMinor, mMajor, mMinor] = [k[1], k[2], m[1], m[2]].map(Number) as [number, number, number, number];
  return kMajor > mMajor || (kMajor === mMajor && kMinor >= mMinor);
}

/** Parses and checks a profile as the docker CLI sends it (the file's content). */
export function parseSeccompProfile(text: string): DockerSeccompProfile {
  let profile: unknown;
  try {
    profile = JSON.parse(text);
  } catch (error) {
    throw new RuntimeError("INVALID_OPTION", `decoding seccomp profile failed: ${(error as Error).message}`);
  }
  if (!profile || typeof profile !== "object" || Array.isArray(profile))
    throw new RuntimeError("INVALID_OPTION", "decoding seccomp profile failed: not a JSON object");
  const p = profile as DockerSeccompProfile;
  if (typeof p.defaultAction !== "string" || p.defaultAction === "")
    throw new RuntimeError("INVALID_OPTION", "invalid seccomp profile: defaultAction is required");
  // A notify listener would hand the container's syscalls to a process on the host: not offered.
  if (p.listenerPath) throw new RuntimeError("INVALID_OPTION", "invalid seccomp profile: listenerPath is not supported");
  if (p.syscalls != null && !Array.isArray(p.syscalls))
    throw new RuntimeError("INVALID_OPTION", "invalid seccomp profile: syscalls must be a list");
  return p;
}

/** The OCI `linux.seccomp` of a Docker-format profile for one container. */
export function seccompFromProfile(profile: DockerSeccompProfile, context: SeccompContext): OciSeccomp {
  const arch = ARCHES[context.arch ?? process.arch];
  if (!arch) throw new RuntimeError("UNSUPPORTED_HOST", `seccomp: unsupported architecture ${context.arch ?? process.arch}`);
  const kernel = context.kernel ?? release();
  if (profile.architectures && profile.archMap)
    throw new RuntimeError("INVALID_OPTION", "invalid seccomp profile: 'architectures' and 'archMap' cannot both be set");

  const architectures = profile.archMap
    ? profile.archMap.filter((a) => a.architecture === arch.scmp).flatMap((a) => [a.architecture, ...(a.subArchitectures ?? [])])
    : [...(profile.architectures ?? [])];

  const caps = new Set(context.capabilities);
  const syscalls: OciSeccompSyscall[] = [];
  for (const call of profile.syscalls ?? []) {
    if (call.name && call.names?.length)
      throw new RuntimeError("INVALID_OPTION", "invalid seccomp profile: use either 'name' or 'names', not both");
    const inc = call.includes ?? {};
    const exc = call.excludes ?? {};
    // A rule applies when everything it includes holds and nothing it excludes does.
    if (inc.arches?.length && !inc.arches.includes(arch.go)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) continue;
    if (inc.minKernel && !kernelAtLeast(kernel, inc.minKernel)) continue;
    if (exc.arches?.includes(arch.go)) continue;
    if (exc.caps?.some((c) => caps.has(c))) continue;
    if (exc.minKernel && kernelAtLeast(kernel, exc.minKernel)) continue;
    const names = call.names?.length ? call.names : call.name ? [call.name] : [];
    if (names.length === 0) continue;
    syscalls.push({
      names: [...names],
      action: call.action,
      ...(call.errnoRet !== undefined ? { errnoRet: call.errnoRet } : {}),
      ...(call.args?.length ? { args: call.args.map((a) => ({ ...a })) } : {}),
    });
  }
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    ...(architectures.length > 0 ? { architectures } : {}),
    ...(profile.flags?.length ? { flags: [...profile.flags] } : {}),
    syscalls,
  };
}
