// A container's cgroup files, read for `top` (which processes) and `stats` (what they use). runc puts
// the container at its `cgroupsPath` (/minato/<id>) under each v1 controller's hierarchy, or under
// the single v2 hierarchy; this reads either layout.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type CgroupMode, cgroupMountPoint, detectCgroupMode } from "@minato/runtime";

export class ContainerCgroup {
  readonly mode: CgroupMode;

  constructor(
    readonly path: string,
    mode?: CgroupMode,
  ) {
    this.mode = mode ?? detectCgroupMode();
  }

  /** The text of a cgroup file (v1: under `controller`'s hierarchy), or undefined when it is absent. */
  async read(controller: string, file: string): Promise<string | undefined> {
    const mount = cgroupMountPoint(controller, this.mode);
    if (!mount) return undefined;
    return readFile(join(mount, this.path, file), "utf8").catch(() => undefined);
  }

  async number(controller: string, file: string): Promise<number | undefined> {
    const text = (await this.read(controller, file))?.trim();
    if (text === undefined || text === "" || text === "max") return undefined;
    const value = Number(text);
    return Number.isFinite(value) ? value : undefined;
  }

  /** `key value` lines (memory.stat, cpu.stat, cpuacct.stat) as a map. */
  async keyed(controller: string, file: string): Promise<Map<string, number>> {
    const map = new Map<string, number>();
    for (const line of ((await this.read(controller, file)) ?? "").split("\n")) {
      const [key, value] = line.trim().split(/\s+/);
      if (key && value !== undefined && /^\d+$/.test(value)) map.set(key, Number(value));
    }
    return map;
  }

  /** The process IDs in the container (exec'd ones too: runc exec joins the same cgroup). */
  async pids(): Promise<number[]> {
    const text =
      this.mode === "unified"
        ? await this.read("", "cgroup.procs")
        : ((await this.read("pids", "cgroup.procs")) ?? (await this.read("memory", "cgroup.procs")));
    return (text ?? "")
      .split("\n")
      .filter((line) => /^\d+$/.test(line))
      .map(Number);
  }
}
