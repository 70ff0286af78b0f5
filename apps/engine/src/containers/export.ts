// `docker export` (swagger "ContainerExport"): the container's whole filesystem as it sees it — the
// merged overlay view, so no whiteouts — as one tar (@minato/layers packDirectory).
import type { Readable } from "node:stream";
import { packDirectory } from "@minato/layers";
import type { Engine } from "../engine.js";
import type { ContainerRecord } from "./manager.js";
import { mountedRootfs } from "./rootfs-path.js";

export async function exportContainer(engine: Engine, c: ContainerRecord): Promise<Readable> {
  // Under a user namespace, owners are written as the container sees them.
  const map = engine.containers.idMapOf(c);
  return packDirectory(await mountedRootfs(engine, c), map ? { mapOwner: (uid, gid) => map.containerOwner(uid, gid) } : {});
}
