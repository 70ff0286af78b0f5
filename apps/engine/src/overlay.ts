import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * Mounts an overlay root filesystem: `lowers` top-down (snapshot dirs), a private upper and work dir.
 * redirect_dir and metacopy stay off so the upper dir holds whole files and plain whiteouts, which
 * is what a layer diff of it needs. Throws with mount's own message.
 */
export async function mountOverlay(lowers: string[], upper: string, work: string, target: string): Promise<void> {
  const options = `lowerdir=${lowers.join(":")},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off`;
  try {
    await run("mount", ["-t", "overlay", "overlay", "-o", options, target]);
  } catch (error) {
    throw new Error((error as { stderr?: string }).stderr?.trim() || (error as Error).message);
  }
}

/** Unmounts, lazily when something still holds the mount (it goes once they let go). */
export async function unmount(target: string): Promise<void> {
  try {
    await run("umount", [target]);
  } catch {
    await run("umount", ["-l", target]).catch(() => undefined);
  }
}

export async function isMountPoint(path: string): Promise<boolean> {
  const mounts = await readFile("/proc/self/mountinfo", "utf8");
  return mounts.split("\n").some((line) => line.split(" ")[4] === path);
}

/** A read-only overlay of two or more `lowers` (top-down): a merged view without an upper dir. */
export async function mountReadOnlyOverlay(lowers: string[], target: string): Promise<void> {
  try {
    await run("mount", ["-t", "overlay", "overlay", "-o", `ro,lowerdir=${lowers.join(":")}`, target]);
  } catch (error) {
    throw new Error((error as { stderr?: string }).stderr?.trim() || (error as Error).message);
  }
}
