// `RUN --mount` (reference: "RUN --mount"): what each mount type puts in the build container, and
// what it adds to the step's cache key. bind: a context path (or a stage's/image's with `from=`),
// read-only unless `rw`, whose writes are then made on a private copy and dropped; its content is in
// the key. cache: a persistent directory per `id` (see cache-mounts.ts), not in the key. tmpfs: a
// fresh tmpfs, not in the key. secret: a file (and/or an env variable) from the build's secrets,
// never in the key, the layer or the history.
import { chmod, chown, lstat, mkdir, readdir, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import type { Mount } from "@minato/dockerfile";
import type { MountOption } from "@minato/runtime";
import type { CacheMounts } from "./cache-mounts.js";
import { copyEntry, DiskTree, pathDigest, resolveIn, resolvePath, type SourceTree } from "./fs.js";

export interface MountSources {
  /** The build context's files, for the keys of bind mounts from it. */
  context: SourceTree;
  /** The build context on disk (unpacked when first asked for). */
  contextDir(): Promise<string>;
  /** The merged root filesystem of the stage or image `from=` names. */
  fromRoot(from: string): Promise<string>;
  secrets: ReadonlyMap<string, Buffer>;
  cacheMounts: CacheMounts;
}

/** A mount resolved against the build state: enough for the cache key, made real by {@link materializeMounts}. */
export type ResolvedMount =
  | { type: "bind"; target: string; source: () => Promise<string>; readonly: boolean; isDir: boolean; key: string }
  | {
      type: "cache";
      target: string;
      id: string;
      sharing: "shared" | "private" | "locked";
      mode: number;
      uid: number;
      gid: number;
      from?: { root: () => Promise<string>; source: string };
    }
  | { type: "tmpfs"; target: string; size?: number }
  | { type: "secret"; id: string; target?: string; env?: string; value: Buffer; mode: number; uid: number; gid: number };

export class MountError extends Error {}

/** Resolves the RUN's (already expanded) mounts; `workdir` anchors relative targets. */
export async function resolveMounts(mounts: readonly Mount[], workdir: string, sources: MountSources): Promise<ResolvedMount[]> {
  const resolved: ResolvedMount[] = [];
  const targetOf = (mount: Mount): string => {
    if (!mount.target) throw new MountError(`mount type=${mount.type} needs a target`);
    return posix.resolve(workdir, mount.target);
  };
  for (const mount of mounts) {
    switch (mount.type) {
      case "bind": {
        // The key comes from the context's index (or the stage's root); the context is unpacked only to run.
        const fromRoot = mount.from ? await sources.fromRoot(mount.from) : undefined;
        const tree = fromRoot !== undefined ? new DiskTree(fromRoot) : sources.context;
        const rel = await resolvePath(tree, mount.source ?? "/");
        const stats = await tree.lstat(rel);
        if (!stats) throw new MountError(`failed to compute cache key: "${posix.resolve("/", mount.source ?? "/")}" not found`);
        resolved.push({
          type: "bind",
          target: targetOf(mount),
          source: async () => join(fromRoot ?? (await sources.contextDir()), rel),
          readonly: mount.readonly,
          isDir: stats.type === "directory",
          key: await pathDigest(tree, rel),
        });
        break;
      }
      case "cache": {
        const target = targetOf(mount);
        let from: { root: () => Promise<string>; source: string } | undefined;
        const fromName = mount.from;
        if (fromName) from = { root: () => sources.fromRoot(fromName), source: mount.source ?? "/" };
        resolved.push({
          type: "cache",
          target,
          id: mount.id || target,
          sharing: mount.sharing ?? "shared",
          mode: mount.mode ?? 0o755,
          uid: mount.uid ?? 0,
          gid: mount.gid ?? 0,
          ...(from ? { from } : {}),
        });
        break;
      }
      case "tmpfs":
        resolved.push({ type: "tmpfs", target: targetOf(mount), ...(mount.size !== undefined ? { size: mount.size } : {}) });
        break;
      case "secret": {
        const id = mount.id || (mount.target ? posix.basename(mount.target) : "") || mount.source || "";
        const value = sources.secrets.get(id);
        if (value === undefined) {
          if (mount.required) throw new MountError(`secret ${id}: not found (pass it with minato build --secret id=${id},src=<file>)`);
          break;
        }
        // Reference: with env= and no target the secret is only an environment variable.
        const target = mount.target ? posix.resolve(workdir, mount.target) : mount.env ? undefined : `/run/secrets/${id}`;
        resolved.push({
          type: "secret",
          id,
          ...(target ? { target } : {}),
          ...(mount.env ? { env: mount.env } : {}),
          value,
          mode: mount.mode ?? 0o400,
          uid: mount.uid ?? 0,
          gid: mount.gid ?? 0,
        });
        break;
      }
      default:
        throw new MountError(`RUN --mount=type=${mount.type} is not supported`);
    }
  }
  const targets = resolved.flatMap((m) => ("target" in m && m.target ? [m.target] : []));
  const duplicate = targets.find((t, i) => targets.indexOf(t) !== i);
  if (duplicate) throw new MountError(`duplicate mount target ${duplicate}`);
  return resolved;
}

/** What the cache key sees of the mounts: their kinds, targets and bind contents; never a secret's value. */
export function mountsKey(mounts: readonly ResolvedMount[]): unknown[] {
  return mounts.map((m) => {
    switch (m.type) {
      case "bind":
        return { type: m.type, target: m.target, readonly: m.readonly, content: m.key };
      case "cache":
        return { type: m.type, target: m.target, id: m.id, sharing: m.sharing, mode: m.mode, uid: m.uid, gid: m.gid };
      case "tmpfs":
        return { type: m.type, target: m.target, size: m.size };
      case "secret":
        return { type: m.type, id: m.id, target: m.target, env: m.env };
    }
    return undefined;
  });
}

export interface Materialized {
  mounts: MountOption[];
  /** Mount points to create in the container's private init lower dir, so none lands in the layer. */
  points: { path: string; type: "dir" | "file" }[];
  /** Secret environment variables (`env=`), for the process only. */
  env: string[];
  release(): void;
}

/** Makes the mounts real for one run: cache directories leased, secrets and rw binds written under `scratch`. */
export async function materializeMounts(resolved: readonly ResolvedMount[], scratch: string, sources: MountSources): Promise<Materialized> {
  const out: Materialized = { mounts: [], points: [], env: [], release: () => undefined };
  const releases: (() => void)[] = [];
  out.release = () => {
    for (const release of releases.splice(0)) release();
  };
  try {
    for (const [i, m] of resolved.entries()) {
      switch (m.type) {
        case "bind": {
          let source = await m.source();
          if (!m.readonly) {
            // Writes go to a private copy that is dropped with the run (reference: "rw … data is discarded").
            const copy = join(scratch, `bind-${i}`);
            await copyEntry(source, copy, {});
            source = copy;
          }
          out.mounts.push({ source, destination: m.target, readonly: m.readonly });
          out.points.push({ path: m.target, type: m.isDir ? "dir" : "file" });
          break;
        }
        case "cache": {
          const from = m.from;
          const lease = await sources.cacheMounts.acquire({
            id: m.id,
            sharing: m.sharing,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            seed: from
              ? async (dir) => {
                  const source = await resolveIn(await from.root(), from.source);
                  const stats = await lstat(source).catch(() => undefined);
                  if (!stats?.isDirectory()) throw new MountError(`cache mount source ${from.source} is not a directory`);
                  for (const name of await readdir(source)) await copyEntry(join(source, name), join(dir, name), {});
                }
              : undefined,
          });
          releases.push(lease.release);
          out.mounts.push({ source: lease.dir, destination: m.target, readonly: false });
          out.points.push({ path: m.target, type: "dir" });
          break;
        }
        case "tmpfs":
          out.mounts.push({
            type: "tmpfs",
            source: "tmpfs",
            destination: m.target,
            options: ["nosuid", "nodev", ...(m.size !== undefined ? [`size=${m.size}`] : [])],
          });
          out.points.push({ path: m.target, type: "dir" });
          break;
        case "secret": {
          if (m.env) out.env.push(`${m.env}=${m.value.toString("utf8")}`);
          if (!m.target) break;
          const dir = join(scratch, "secrets");
          await mkdir(dir, { recursive: true, mode: 0o700 });
          const file = join(dir, `secret-${i}`);
          await writeFile(file, m.value, { mode: 0o600 });
          await chown(file, m.uid, m.gid);
          await chmod(file, m.mode);
          out.mounts.push({ source: file, destination: m.target, readonly: true });
          out.points.push({ path: m.target, type: "file" });
          break;
        }
      }
    }
  } catch (error) {
    out.release();
    throw error;
  }
  return out;
}
