export { type ApplyOptions, type ApplyResult, applyLayer } from "./apply.js";
export { compressLayer, type GzipOptions, gzipLayer, type LayerCompression, type LayerDigests } from "./compress.js";
export { type Compression, type DecompressedLayer, decompressLayer, detectCompression } from "./compression.js";
export { LayerError, type LayerErrorCode } from "./errors.js";
export { mount, unmount } from "./native.js";
export { diffDirectory, type PackOptions, packDirectory } from "./pack.js";
export { archivePathComponents } from "./paths.js";
export { END_OF_ARCHIVE, type EntryType, encodeHeader, padding, readTar, statHeader, type TarEntry, type TarHeader } from "./tar.js";
export {
  OPAQUE_WHITEOUT,
  OVERLAY_OPAQUE_XATTR,
  WHITEOUT_PREFIX,
} from "./whiteouts.js";
export { zstdCompress, zstdDecompress, zstdProgram } from "./zstd.js";
