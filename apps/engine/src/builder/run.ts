// RUN: the command runs in a build container (runc under conmon, @minato/runtime) whose rootfs is an
// overlay of the build state's snapshots with a fresh upper dir; the upper dir is then the step's
// changes. Like Docker's init layer, a private lower dir under the upper one holds the mount points
// the runtime needs (/proc, /sys, /dev, the generated /etc files) when the image lacks them, so they
// never show up in the diff; so do the mount points of `RUN --mount`. No network (a private namespace
// with only lo) unless `--network=host`, a generated /etc/hosts.
import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { chmod, lchown, lstat, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  createSpecDetailed,
  type MountOption,
  type OciSpec,
  parseK8sLog,
  type Runtime,
  RuntimeError,
  writeEtcFiles,
} from "@minato/runtime";
import { mountOverlay, unmount } from "../overlay.js";

/** Paths the runtime mounts over; created in the init lower dir when the image lacks them. */
const MOUNT_POINTS: [string, "dir" | "file"][] = [
  ["proc", "dir"],
  ["sys", "dir"],
  ["dev", "dir"],
  ["etc/hosts", "file"],
  ["etc/hostname", "file"],
  ["etc/resolv.conf", "file"],
];

export interface RunOptions {
  runtime: Runtime;
  /** The state's snapshot dirs, top-down. */
  lowers: string[];
  /** A scratch directory under the engine's data root (removed afterwards). */
  workDir: string;
  /** The process's argv. */
  args: string[];
  /** The image's ENV, and the ARGs in scope as `KEY=value` (ENV wins). */
  imageEnv: string[];
  env: string[];
  user?: string | undefined;
  workdir?: string | undefined;
  output: (text: string) => void;
  /** `RUN --mount`s, and their mount points (absolute paths) to make in the init lower dir. */
  mounts?: MountOption[];
  mountPoints?: { path: string; type: "dir" | "file" }[];
  /** `RUN --network`: a private namespace with only lo (default), or the host's. */
  network?: "none" | "host";
}

async function copyAttributes(target: string, from: Stats): Promise<void> {
  await lchown(target, from.uid, from.gid);
  await chmod(target, from.mode & 0o7777);
  await utimes(target, from.atime, from.mtime);
}

function mountBuildRoot(lowers: string[], upper: string, work: string, target: string): Promise<void> {
  return mountOverlay(lowers, upper, work, target).catch((error: Error) => {
    throw new Error(`mounting the build container's rootfs: ${error.message}`);
  });
}

/**
 * Runs `args` on an overlay of `lowers`; `onSuccess` gets the upper dir (unmounted) when the command
 * exited 0. The mount, the container and the scratch files are gone when this returns or throws.
 */
export async function runStep<T>(
  options: RunOptions,
  onSuccess: (upper: string) => Promise<T>,
): Promise<{ exitCode: number; error?: string; result?: T }> {
  const dir = await mkdtemp(join(options.workDir, "run-"));
  const upper = join(dir, "upper");
  const work = join(dir, "work");
  const rootfs = join(dir, "rootfs");
  const init = join(dir, "init");
  const id = `build-${randomBytes(12).toString("hex")}`;
  let mounted = false;
  let created = false;
  try {
    for (const d of [upper, work, rootfs, init, join(dir, "etc"), join(dir, "empty")]) await mkdir(d);
    // Which mount points the image has: look through a first mount of the image alone.
    const lowers = options.lowers.length > 0 ? options.lowers : [join(dir, "empty")];
    await mountBuildRoot(lowers, upper, work, rootfs);
    mounted = true;
    const points: [string, "dir" | "file"][] = [
      ...MOUNT_POINTS,
      ...(options.mountPoints ?? []).map((p): [string, "dir" | "file"] => [p.path.replace(/^\/+/, ""), p.type]),
    ];
    for (const [path, type] of points) {
      if (await lstat(join(rootfs, path)).catch(() => undefined)) continue;
      const parts = path.split("/");
      for (let i = 1; i < parts.length; i++) {
        const rel = parts.slice(0, i).join("/");
        if (await lstat(join(init, rel)).catch(() => undefined)) continue;
        await mkdir(join(init, rel));
        const existing = await lstat(join(rootfs, rel)).catch(() => undefined);
        if (existing?.isDirectory()) await copyAttributes(join(init, rel), existing);
      }
      if (type === "dir") await mkdir(join(init, path), { mode: 0o755 });
      else await writeFile(join(init, path), "", { mode: 0o644 });
    }
    await unmount(rootfs);
    mounted = false;
    await rm(upper, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
    await mkdir(upper);
    await mkdir(work);

    await mountBuildRoot([init, ...options.lowers], upper, work, rootfs);
    mounted = true;
    const hostname = id.slice(6, 18);
    const host = options.network === "host";
    const etcFiles = await writeEtcFiles(join(dir, "etc"), {
      hostname,
      privateNetwork: !host,
      ...(host ? { hostHosts: await readFile("/etc/hosts", "utf8").catch(() => "127.0.0.1\tlocalhost\n") } : {}),
    });
    let spec: OciSpec;
    try {
      ({ spec } = await createSpecDetailed({
        rootfs,
        image: {
          Env: options.imageEnv,
          ...(options.user ? { User: options.user } : {}),
          ...(options.workdir ? { WorkingDir: options.workdir } : {}),
        },
        cmd: options.args,
        env: options.env,
        hostname,
        network: { mode: host ? "host" : "none" },
        mounts: options.mounts ?? [],
        cgroupsPath: `/minato/${id}`,
        etcFiles,
      }));
    } catch (error) {
      if (error instanceof RuntimeError) return { exitCode: error.exitCode ?? 1, error: error.message };
      throw error;
    }
    let exitCode: number | undefined;
    try {
      await options.runtime.create(id, spec);
      created = true;
      await options.runtime.start(id);
    } catch (error) {
      if (error instanceof RuntimeError && error.exitCode !== undefined) {
        options.output(`${error.message}\n`);
        exitCode = error.exitCode;
      } else throw error;
    }
    if (exitCode === undefined) {
      const log = options.runtime.paths(id).log;
      let shown = 0;
      const show = async (final: boolean) => {
        const text = await readFile(log, "utf8").catch(() => "");
        const records = parseK8sLog(text);
        const complete = records.filter((r) => r.complete);
        for (const record of complete.slice(shown)) options.output(`${record.text}\n`);
        shown = complete.length;
        if (final) for (const record of records.filter((r) => !r.complete)) options.output(record.text);
      };
      for (;;) {
        exitCode = await options.runtime.exitCode(id);
        if (exitCode !== undefined) break;
        await show(false);
        await sleep(50);
      }
      await show(true);
    }
    await options.runtime.delete(id, { force: true });
    created = false;
    await unmount(rootfs);
    mounted = false;
    if (exitCode !== 0) return { exitCode };
    return { exitCode, result: await onSuccess(upper) };
  } finally {
    if (created) await options.runtime.delete(id, { force: true }).catch(() => undefined);
    if (mounted) await unmount(rootfs);
    await rm(dir, { recursive: true, force: true });
  }
}
