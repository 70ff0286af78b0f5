// Host devices given to a container: `--device` (one node or a directory of them), `--device-cgroup-rule`,
// every device of the host under `--privileged` (moby's devices.HostDevices), and the major:minor of a
// block device for the io controller's per-device settings.
import { lstatSync, readdirSync, statSync } from "node:fs";
import { join, posix } from "node:path";
import { RuntimeError } from "./errors.js";
import type { OciDevice, OciDeviceCgroup } from "./spec-types.js";

export interface DeviceMapping {
  pathOnHost: string;
  pathInContainer: string;
  /** Some of r, w, m. */
  permissions: string;
}

export interface HostDevice {
  type: "c" | "b";
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** Linux's dev_t encoding (glibc major()/minor()). */
function splitDev(rdev: bigint): { major: number; minor: number } {
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

/** The device node at `path` (symlinks followed), or undefined when it is not a device. */
export function deviceAt(path: string): HostDevice | undefined {
  const s = statSync(path, { bigint: true });
  const type = s.isCharacterDevice() ? "c" : s.isBlockDevice() ? "b" : undefined;
  if (!type) return undefined;
  return { type, ...splitDev(s.rdev), fileMode: Number(s.mode & 0o777n), uid: Number(s.uid), gid: Number(s.gid) };
}

/** A block device's major:minor, for `--device-read-bps` and the like. */
export function blockDevice(path: string, option: string): { major: number; minor: number } {
  let device: HostDevice | undefined;
  try {
    device = deviceAt(path);
  } catch (error) {
    throw new RuntimeError("INVALID_OPTION", `${option}: ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (device?.type !== "b") throw new RuntimeError("INVALID_OPTION", `${option}: ${path} is not a block device`);
  return { major: device.major, minor: device.minor };
}

const SKIPPED = new Set(["/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/.lxc", "/dev/.udev"]);

function walk(dir: string, found: { path: string; device: HostDevice }[]): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (SKIPPED.has(path)) continue;
    const l = lstatSync(path, { throwIfNoEntry: false });
    if (!l || l.isSymbolicLink()) continue;
    if (l.isDirectory()) walk(path, found);
    else if (l.isCharacterDevice() || l.isBlockDevice()) {
      const device = deviceAt(path);
      // /dev/console belongs to the container's terminal, as runc sets it up.
      if (device && path !== "/dev/console") found.push({ path, device });
    }
  }
}

/** Every device node under the host's /dev (what `--privileged` gives). */
export function hostDevices(root = "/dev"): { path: string; device: HostDevice }[] {
  const found: { path: string; device: HostDevice }[] = [];
  walk(root, found);
  return found;
}

function ociDevice(path: string, d: HostDevice): OciDevice {
  return { type: d.type, path, major: d.major, minor: d.minor, fileMode: d.fileMode, uid: d.uid, gid: d.gid };
}

/** `--device`: the nodes to create and the cgroup rules allowing them; a directory maps its tree. */
export function mappedDevices(mapping: DeviceMapping): { devices: OciDevice[]; rules: OciDeviceCgroup[] } {
  const permissions = mapping.permissions || "rwm";
  if (!/^[rwm]{1,3}$/.test(permissions) || new Set(permissions).size !== permissions.length)
    throw new RuntimeError("INVALID_OPTION", `invalid device mode: ${permissions}`);
  const target = mapping.pathInContainer || mapping.pathOnHost;
  if (!posix.isAbsolute(mapping.pathOnHost) || !posix.isAbsolute(target))
    throw new RuntimeError("INVALID_OPTION", `invalid device mapping: ${mapping.pathOnHost}:${target}: paths must be absolute`);
  let nodes: { path: string; device: HostDevice }[];
  try {
    const s = statSync(mapping.pathOnHost);
    if (s.isDirectory()) {
      nodes = hostDevices(mapping.pathOnHost).map((n) => ({
        path: posix.join(target, posix.relative(mapping.pathOnHost, n.path)),
        device: n.device,
      }));
    } else {
      const device = deviceAt(mapping.pathOnHost);
      if (!device)
        throw new RuntimeError(
          "INVALID_OPTION",
          `error gathering device information while adding custom device "${mapping.pathOnHost}": not a device node`,
        );
      nodes = [{ path: target, device }];
    }
  } catch (error) {
    if (error instanceof RuntimeError) throw error;
    throw new RuntimeError(
      "INVALID_OPTION",
      `error gathering device information while adding custom device "${mapping.pathOnHost}": ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (error as Error).message}`,
    );
  }
  return {
    devices: nodes.map((n) => ociDevice(n.path, n.device)),
    rules: nodes.map((n) => ({ allow: true, type: n.device.type, major: n.device.major, minor: n.device.minor, access: permissions })),
  };
}

/** All host devices as nodes to create (privileged containers; their cgroup allows everything). */
export function privilegedDevices(): OciDevice[] {
  return hostDevices().map((n) => ociDevice(n.path, n.device));
}

/** `--device-cgroup-rule 'c 1:3 rwm'` (`a`, `*` wildcards), as moby parses it. */
export function deviceCgroupRule(rule: string): OciDeviceCgroup {
  const match = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.exec(rule.trim());
  if (!match) throw new RuntimeError("INVALID_OPTION", `invalid device cgroup rule format: '${rule}'`);
  const [, type, major, minor, access] = match as unknown as [string, "a" | "c" | "b", string, string, string];
  return {
    allow: true,
    type,
    ...(major !== "*" ? { major: Number(major) } : {}),
    ...(minor !== "*" ? { minor: Number(minor) } : {}),
    access,
  };
}
