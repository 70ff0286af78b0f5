// Error messages say what failed in the container's or image's terms: the daemon's own paths (where a
// container's root filesystem or an image's layers sit on the host) are not the client's business.
import type { EngineConfig } from "../config.js";

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const PATH_TAIL = "(/[^\\s:'\"]*)?";

/**
 * `mknod /var/lib/minato/containers/<id>/rootfs/dev/mem: …` → `mknod /dev/mem (in container <id12>): …`,
 * a layer's file → `<path> (in layer <chain id 12>)`; any other path under the data or exec root
 * keeps only its part below `<data-root>` / `<exec-root>`.
 */
export function inContainerTerms(message: string, engine: { config: Pick<EngineConfig, "dataRoot" | "execRoot"> }): string {
  const { dataRoot, execRoot } = engine.config;
  const anyRoot = [dataRoot, execRoot].filter(Boolean).map(literal).join("|");
  if (anyRoot === "") return message;
  return message
    .replace(
      new RegExp(`(?:${anyRoot})/containers/([0-9a-f]{64})/rootfs${PATH_TAIL}`, "g"),
      (_m, id: string, path?: string) => `${path ?? "/"} (in container ${id.slice(0, 12)})`,
    )
    .replace(
      new RegExp(`(?:${anyRoot})/snapshots/([0-9a-f]{64})/fs${PATH_TAIL}`, "g"),
      (_m, id: string, path?: string) => `${path ?? "/"} (in layer ${id.slice(0, 12)})`,
    )
    .replace(new RegExp(literal(dataRoot), "g"), "<data-root>")
    .replace(new RegExp(literal(execRoot), "g"), "<exec-root>");
}
