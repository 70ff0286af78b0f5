import { readFile } from "node:fs/promises";
import { mount, unmount as unmountNow } from "@minato/layers";

/** mount(2)'s MS_RDONLY. */
const MS_RDONLY = 1;

/**
 * Mounts an overlay root filesystem: `lowers` top-down (snapshot dirs), a private upper and work dir.
 * redirect_dir and metacopy stay off so the upper dir holds whole files and plain whiteouts, which
 * is what a layer diff of it needs. Throws with the errno and the target.
 */
export async function mountOverlay(lowers: string[], upper: string, work: string, target: string): Promise<void> {
  await mount("overlay", target, "overlay", `lowerdir=${lowers.join(":")},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off`);
}

/**
 * Unmounts `target` if something is mounted there, lazily when something still holds the mount (it
 * goes once they let go).
 */
export async function unmount(target: string): Promise<void> {
  try {
    await unmountNow(target);
  } catch (error) {
    // EINVAL: not a mount point; ENOENT: no such path. Nothing to undo either way.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EINVAL" || code === "ENOENT") return;
    await unmountNow(target, { detach: true }).catch(() => undefined);
  }
}

export async function isMountPoint(path: string): Promise<boolean> {
  const mounts = await readFile("/proc/self/mountinfo", "utf8");
  return mounts.split("\n").some((line) => line.split(" ")[4] === path);
}

/** A read-only overlay of two or more `lowers` (top-down): a merged view without an upper dir. */
export async function mountReadOnlyOverlay(lowers: string[], target: string): Promise<void> {
  await mount("overlay", target, "overlay", `lowerdir=${lowers.join(":")}`, MS_RDONLY);
}
