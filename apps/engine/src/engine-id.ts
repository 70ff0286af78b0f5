// The daemon's stable identity (/info ID): a UUID generated once and kept in the data root, so it
// survives restarts and upgrades and says nothing about the host's paths (dockerd keeps engine-id).
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const known = new Map<string, string>();

export function engineId(dataRoot: string): string {
  const cached = known.get(dataRoot);
  if (cached) return cached;
  const file = join(dataRoot, "engine-id");
  let id: string;
  try {
    id = readFileSync(file, "utf8").trim();
  } catch {
    id = randomUUID();
    try {
      writeFileSync(file, `${id}\n`, { flag: "wx", mode: 0o644 });
    } catch {
      // Written by someone else meanwhile: theirs is the identity.
      id = readFileSync(file, "utf8").trim();
    }
  }
  known.set(dataRoot, id);
  return id;
}
