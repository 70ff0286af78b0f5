// Disk usage of a container's writable layer (`SizeRw`, what `container prune` reclaims).
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

/** Bytes of the regular files under `path` (hard links once), like `du --apparent-size`; 0 when it is gone. */
export async function directorySize(path: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        await walk(full);
        continue;
      }
      if (!entry.isFile()) continue;
      const info = await lstat(full).catch(() => undefined);
      if (!info) continue;
      const key = `${info.dev}:${info.ino}`;
      if (info.nlink > 1) {
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += info.size;
    }
  };
  await walk(path);
  return total;
}
