/** Why a layer could not be read, applied or produced. */
export type LayerErrorCode =
  /** The stream is not a tar archive, or a header is corrupt or truncated. */
  | "INVALID_TAR"
  /** The layer is compressed with something this build cannot decompress (bzip2, xz, zstd without the zstd program). */
  | "UNSUPPORTED_COMPRESSION"
  /** An entry type this library does not apply (sparse files, tape volumes, ...). */
  | "UNSUPPORTED_ENTRY"
  /** An entry's path, parent or link target would leave the target directory. */
  | "BREAKOUT"
  /** A malformed whiteout (`.wh.` with no name) or an entry that is invalid where it stands. */
  | "INVALID_ENTRY"
  /** A hard link names something that is not an earlier non-directory entry of the same layer. */
  | "HARDLINK_TARGET"
  /** An overlay upper dir uses features that cannot be diffed without its lower layers (metacopy, redirect_dir). */
  | "UNSUPPORTED_UPPER";

/** An error about the layer's content (not an I/O failure of the machine): safe to show to a user. */
export class LayerError extends Error {
  constructor(
    readonly code: LayerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "LayerError";
  }
}

/** Quotes an archive path for an error message, shortened so hostile input cannot flood logs. */
export function quote(path: string): string {
  return JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}…` : path);
}
