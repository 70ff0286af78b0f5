import { LayerError, quote } from "./errors.js";

/**
 * Splits an archive path into the components it names inside the layer root. Leading `/` and `./`
 * are dropped, as Docker does: an absolute name is taken relative to the root, never to the host.
 * Any `..` component is refused outright (Docker cleans `a/../b` to `b`; a layer built from a real
 * filesystem never contains one, so it can only be an attempt to escape). The root is `[]`.
 */
export function archivePathComponents(name: string, what = "entry"): string[] {
  const parts = name.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) throw new LayerError("BREAKOUT", `${what} ${quote(name)} has a ".." component; refusing to apply it`);
  return parts;
}
