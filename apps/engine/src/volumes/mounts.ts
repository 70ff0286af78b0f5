// A container's mounts from its create request, resolved as dockerd does: HostConfig.Binds
// (`-v src:dst[:mode]`), HostConfig.Mounts (`--mount`), VolumesFrom, and anonymous volumes for the
// image's VOLUMEs and Config.Volumes (`-v /path`) not otherwise mounted. Later sources never
// replace earlier ones at the same destination; a duplicate destination among binds/mounts is a 400.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { isAbsolute, posix } from "node:path";
import type { MountOption } from "@minato/runtime";
import { badRequest, notFound } from "../api/errors.js";
import { type ContainerMount, VALID_VOLUME_NAME, type VolumeManager } from "./manager.js";

/** swagger `Mount` (the request's HostConfig.Mounts items). */
export interface MountRequest {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  BindOptions?: { Propagation?: string; CreateMountpoint?: boolean } | null;
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string> | null; DriverConfig?: { Name?: string } | null } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
}

export interface MountInput {
  binds?: string[] | null;
  mounts?: MountRequest[] | null;
  volumesFrom?: string[] | null;
  /** Config.Volumes and the image's Volumes: destinations for anonymous volumes. */
  anonymous: string[];
  /** Another container's recorded mounts (`--volumes-from`). */
  mountsOf: (container: string) => ContainerMount[] | undefined;
}

export interface ResolvedMounts {
  mounts: ContainerMount[];
  /** Volumes to fill from the image before the first start (new and empty, copy-up not disabled). */
  seed: { name: string; destination: string }[];
  /** Volumes this resolution created, for a rollback when the create fails. */
  created: string[];
}

const PROPAGATIONS = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

function cleanDestination(destination: string, what: string): string {
  if (!destination || !isAbsolute(destination))
    throw badRequest(`invalid mount config for type "${what}": invalid mount path: '${destination}' mount path must be absolute`);
  const clean = posix.normalize(destination);
  if (clean === "/") throw badRequest(`invalid specification: destination can't be '/'`);
  return clean.length > 1 && clean.endsWith("/") ? clean.slice(0, -1) : clean;
}

export async function resolveMounts(volumes: VolumeManager, input: MountInput): Promise<ResolvedMounts> {
  const result: ResolvedMounts = { mounts: [], seed: [], created: [] };
  const at = new Map<string, ContainerMount>();
  const add = (m: ContainerMount, strict: boolean) => {
    if (at.has(m.destination)) {
      if (strict) throw badRequest(`Duplicate mount point: ${m.destination}`);
      return;
    }
    at.set(m.destination, m);
    result.mounts.push(m);
  };
  const volume = async (name: string | undefined, destination: string, nocopy: boolean, labels?: Record<string, string>) => {
    const { volume: v, created } = await volumes.create({ ...(name ? { name } : {}), ...(labels ? { labels } : {}), anonymous: !name });
    if (created) result.created.push(v.name);
    if (!nocopy) result.seed.push({ name: v.name, destination });
    return v.name;
  };

  try {
    for (const spec of input.binds ?? []) {
      // src:dst[:mode]; a source without a leading "/" names a volume.
      const parts = spec.split(":");
      if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw badRequest(`invalid volume specification: '${spec}'`);
      const [source, target, modeText = ""] = parts as [string, string, string?];
      const modes = modeText.split(",").filter((m) => m !== "");
      for (const m of modes) if (!["ro", "rw", "z", "Z", "nocopy", ...PROPAGATIONS].includes(m)) throw badRequest(`invalid mode: ${m}`);
      const destination = cleanDestination(target, "bind");
      const rw = !modes.includes("ro");
      const propagation = modes.find((m) => PROPAGATIONS.includes(m)) ?? "";
      if (source.startsWith("/")) {
        // As `docker run -v`: a missing host directory is created.
        if (!existsSync(source)) await mkdir(source, { recursive: true, mode: 0o755 });
        add(
          { type: "bind", source: posix.normalize(source), destination, rw, mode: modeText, propagation: propagation || "rprivate" },
          true,
        );
      } else {
        if (!VALID_VOLUME_NAME.test(source))
          throw badRequest(
            `create ${source}: "${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
          );
        const name = await volume(source, destination, modes.includes("nocopy"));
        add({ type: "volume", name, source: volumes.dataDir(name), destination, rw, mode: modeText || "z", propagation: "" }, true);
      }
    }

    for (const m of input.mounts ?? []) {
      const type = m.Type ?? "";
      if (!m.Target) throw badRequest(`invalid mount config for type "${type}": field Target must not be empty`);
      const destination = cleanDestination(m.Target, type);
      const rw = m.ReadOnly !== true;
      if (type === "bind") {
        if (!m.Source) throw badRequest(`invalid mount config for type "bind": field Source must not be empty`);
        if (!isAbsolute(m.Source))
          throw badRequest(`invalid mount config for type "bind": invalid mount path: '${m.Source}' mount path must be absolute`);
        // Unlike -v, --mount does not create the host path (moby's validateMountConfig).
        if (!existsSync(m.Source)) throw badRequest(`invalid mount config for type "bind": bind source path does not exist: ${m.Source}`);
        const propagation = m.BindOptions?.Propagation || "rprivate";
        if (!PROPAGATIONS.includes(propagation)) throw badRequest(`invalid propagation mode: ${propagation}`);
        add({ type: "bind", source: posix.normalize(m.Source), destination, rw, mode: "", propagation }, true);
      } else if (type === "volume") {
        if (m.Source && !VALID_VOLUME_NAME.test(m.Source))
          throw badRequest(`invalid mount config for type "volume": invalid volume name: ${m.Source}`);
        const driver = m.VolumeOptions?.DriverConfig?.Name;
        if (driver && driver !== "local") throw notFound(`plugin "${driver}" not found`);
        const name = await volume(
          m.Source || undefined,
          destination,
          m.VolumeOptions?.NoCopy === true,
          m.VolumeOptions?.Labels ?? undefined,
        );
        add({ type: "volume", name, source: volumes.dataDir(name), destination, rw, mode: "z", propagation: "" }, true);
      } else if (type === "tmpfs") {
        if (m.Source) throw badRequest(`invalid mount config for type "tmpfs": field Source must not be specified`);
        const options = ["nosuid", "nodev", "noexec"];
        if (m.TmpfsOptions?.SizeBytes) options.push(`size=${m.TmpfsOptions.SizeBytes}`);
        if (m.TmpfsOptions?.Mode) options.push(`mode=${m.TmpfsOptions.Mode.toString(8)}`);
        add({ type: "tmpfs", source: "", destination, rw, mode: "", propagation: "", options }, true);
      } else {
        throw badRequest(`invalid mount config: mount type unknown: ${JSON.stringify(type)}`);
      }
    }

    for (const entry of input.volumesFrom ?? []) {
      const [container, mode = ""] = entry.split(":");
      if (!container || (mode && mode !== "ro" && mode !== "rw")) throw badRequest(`invalid volumes-from specification: ${entry}`);
      const theirs = input.mountsOf(container);
      if (!theirs) throw notFound(`No such container: ${container}`);
      for (const m of theirs) add({ ...m, rw: mode === "" ? m.rw : mode === "rw" }, false);
    }

    for (const path of input.anonymous) {
      const destination = cleanDestination(path, "volume");
      if (at.has(destination)) continue;
      const name = await volume(undefined, destination, false);
      add({ type: "volume", name, source: volumes.dataDir(name), destination, rw: true, mode: "", propagation: "" }, false);
    }
  } catch (error) {
    for (const name of result.created) await volumes.remove(name, { force: true }).catch(() => undefined);
    throw error;
  }
  return result;
}

/** The runtime's mount options for the spec. */
export function specMounts(mounts: ContainerMount[]): MountOption[] {
  return mounts.map((m) =>
    m.type === "tmpfs"
      ? { type: "tmpfs", source: "tmpfs", destination: m.destination, readonly: !m.rw, options: m.options ?? [] }
      : {
          type: "bind",
          source: m.source,
          destination: m.destination,
          readonly: !m.rw,
          ...(m.propagation ? { options: [m.propagation] } : {}),
        },
  );
}
