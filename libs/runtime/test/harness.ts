// Real containers for the tests: a busybox rootfs (scripts/busybox-rootfs.sh), an overlay per container
// with a private upper dir, a Runtime rooted in a temp dir, and cleanup of containers, mounts and
// cgroups after every test — also when it failed.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach } from "vitest";
import {
  type CreateSpecOptions,
  cgroupControllers,
  cgroupMountPoint,
  createSpec,
  detectCgroupMode,
  Runtime,
  writeEtcFiles,
} from "../src/index.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Fails (never skips) with the exact reason when this host cannot run the real-container tests. */
export function requireHost(): void {
  if (process.getuid?.() !== 0)
    throw new Error("libs/runtime container tests must run as root (namespaces, mounts, cgroups); CI runs them as root");
  for (const tool of ["runc", "conmon"]) {
    if (spawnSync(tool, ["--version"]).status !== 0) {
      throw new Error(`${tool} is not installed: apt-get install -y ${tool} (npm run setup -- --system installs it)`);
    }
  }
  const mode = detectCgroupMode();
  const controllers = cgroupControllers(mode);
  const missing = ["memory", "pids", "cpu", "freezer", "devices"].filter((c) => !controllers.has(c));
  if (missing.length > 0) throw new Error(`cgroup controllers unavailable on this host (${mode} cgroups): ${missing.join(", ")}`);
}

let baseRootfs: string | undefined;

/** The extracted busybox rootfs shared (read-only, as overlay lower dir) by the file's containers. */
function busybox(work: string): string {
  if (baseRootfs) return baseRootfs;
  const tar = join(work, "busybox.tar");
  // Serialized: the script may fall back to apt-get, and two concurrent apt-gets fail on dpkg's lock.
  execFileSync("flock", [join(tmpdir(), "minato-busybox-rootfs.lock"), "bash", join(repo, "scripts/busybox-rootfs.sh"), tar], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const dir = join(work, "busybox");
  mkdirSync(dir);
  execFileSync("tar", ["-xf", tar, "-C", dir]);
  baseRootfs = dir;
  return dir;
}

export interface Harness {
  runtime: Runtime;
  /** Per-file cgroup parent: containers live at /<parent>/<id>. */
  cgroupParent: string;
  /** A fresh container id, cleaned up after the test. */
  id(label: string): string;
  /** An overlay rootfs (busybox lower, private upper) mounted for container `id`. */
  rootfs(id: string): string;
  /** createSpec with test defaults (busybox rootfs overlay, cgroup path, hostname = id, generated /etc files). */
  spec(id: string, options: Partial<CreateSpecOptions>): ReturnType<typeof createSpec>;
  /** Upper dir of a container's overlay. */
  upper(id: string): string;
}

export function harness(): Harness {
  requireHost();
  const work = mkdtempSync(join(tmpdir(), "mrt-"));
  const runtime = new Runtime({ root: join(work, "b") });
  const cgroupParent = `minato-test-${process.pid}`;
  const ids: string[] = [];
  const mounts: string[] = [];
  let counter = 0;

  const h: Harness = {
    runtime,
    cgroupParent,
    id(label) {
      const id = `${label}-${process.pid}-${++counter}`;
      ids.push(id);
      return id;
    },
    upper(id) {
      return join(work, "ov", id, "upper");
    },
    rootfs(id) {
      const dir = join(work, "ov", id);
      for (const sub of ["upper", "work", "merged"]) mkdirSync(join(dir, sub), { recursive: true });
      const lower = busybox(work);
      execFileSync("mount", [
        "-t",
        "overlay",
        "overlay",
        "-o",
        `lowerdir=${lower},upperdir=${join(dir, "upper")},workdir=${join(dir, "work")},redirect_dir=off,metacopy=off`,
        join(dir, "merged"),
      ]);
      mounts.push(join(dir, "merged"));
      return join(dir, "merged");
    },
    async spec(id, options) {
      const rootfs = options.rootfs ?? h.rootfs(id);
      const etcDir = join(work, "etc", id);
      mkdirSync(etcDir, { recursive: true });
      const hostname = options.hostname ?? id.slice(0, 12);
      const etcFiles = await writeEtcFiles(etcDir, {
        hostname,
        privateNetwork: true,
        hostResolvConf: "nameserver 127.0.0.53\nnameserver 10.9.8.7\nsearch example.test\n",
      });
      return createSpec({ hostname, cgroupsPath: `/${cgroupParent}/${id}`, etcFiles, ...options, rootfs });
    },
  };

  afterEach(async () => {
    const errors: unknown[] = [];
    for (const id of ids.splice(0)) {
      try {
        if (existsSync(runtime.paths(id).bundle)) await runtime.delete(id, { force: true });
      } catch (error) {
        errors.push(error);
      }
    }
    for (const mount of mounts.splice(0).reverse()) {
      const r = spawnSync("umount", [mount]);
      if (r.status !== 0) spawnSync("umount", ["-l", mount]);
    }
    rmSync(join(work, "ov"), { recursive: true, force: true });
    if (errors.length > 0) throw errors[0];
  });

  afterAll(() => {
    // runc removes each container's cgroup on delete; the per-file parent is ours to remove.
    const mode = detectCgroupMode();
    for (const controller of [
      "memory",
      "pids",
      "cpu",
      "cpuacct",
      "cpuset",
      "freezer",
      "devices",
      "blkio",
      "name=systemd",
      "net_cls",
      "perf_event",
      "hugetlb",
    ]) {
      const mountPoint = controller === "name=systemd" ? "/sys/fs/cgroup/systemd" : cgroupMountPoint(controller, mode);
      if (!mountPoint) continue;
      const dir = join(mountPoint, cgroupParent);
      if (!existsSync(dir)) continue;
      for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) rmdirSync(join(dir, child.name));
      rmdirSync(dir);
    }
    if (mode === "hybrid" && existsSync(join("/sys/fs/cgroup/unified", cgroupParent)))
      rmdirSync(join("/sys/fs/cgroup/unified", cgroupParent));
    rmSync(work, { recursive: true, force: true });
  });
  return h;
}

/** Bounded polling for a condition in tests (no timing assertions: only an upper bound to fail on). */
export async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A file of a container's cgroup seen from the host: `v1` under the controller's hierarchy, `v2` in the unified one. */
export function cgroupFile(h: Harness, id: string, controller: string, v1: string, v2: string): string {
  const mode = detectCgroupMode();
  const mountPoint = cgroupMountPoint(controller, mode);
  if (!mountPoint) throw new Error(`cgroup controller ${controller} is not mounted on this host (${mode} cgroups)`);
  return join(mountPoint, h.cgroupParent, id, mode === "unified" ? v2 : v1);
}

/** Text of the container's stdout (lines joined with \n). */
export async function stdout(runtime: Runtime, id: string): Promise<string> {
  return (await runtime.logs(id))
    .filter((r) => r.stream === "stdout")
    .map((r) => r.text)
    .join("\n");
}
