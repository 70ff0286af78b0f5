// `compression=gzip|zstd`, a Minato extension on push, commit and build (Docker's API has none; it is
// podman's `--compression-format` and BuildKit's `compression=` output option): how the layers pushed,
// or the new layers of the image made, are compressed.
import type { LayerCompression } from "@minato/layers";
import { badRequest } from "./errors.js";

/** The `compression` query parameter: undefined when absent or empty, 400 for anything but gzip or zstd. */
export function compressionQuery(value: string | undefined): LayerCompression | undefined {
  if (value === undefined || value === "") return undefined;
  if (value === "gzip" || value === "zstd") return value;
  throw badRequest(`unsupported compression ${JSON.stringify(value)}: use gzip or zstd`);
}
