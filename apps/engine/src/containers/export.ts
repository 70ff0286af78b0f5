// `docker export` (swagger "ContainerExport"): the container's whole filesystem as it sees it — the
// merged overlay view, so no whiteouts — as one tar (@minato/layers packDirectory).
import type { Readable } from "node:stream";
import { packDirectory } from "@minato/layers";
import type { Engine } from "../engine.js";
import type { ContainerRecord } from "./manager.js";
import { mountedRootfs } from "./rootfs-path.js";

export async function exportContainer(engine: Engine, c: ContainerRecord): Promise<Readable> {
  return packDirectory(await mountedRootfs(engine, c));
}
