// Whiteouts in their two forms. In a layer tar (image-spec layer.md "Whiteouts"): an empty file
// `.wh.<name>` deletes <name> from lower layers, `.wh..wh..opq` hides every lower child of its
// directory. On an overlayfs upper or lower dir (kernel Documentation/filesystems/overlayfs.rst
// "whiteouts and opaque directories"): a 0/0 character device, and the xattr
// `trusted.overlay.opaque=y` on the directory.

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_WHITEOUT = ".wh..wh..opq";
/** `.wh..wh.` names other than the opaque marker are AUFS bookkeeping (`.wh..wh.plnk`, ...), skipped. */
export const WHITEOUT_META_PREFIX = ".wh..wh.";

export const OVERLAY_XATTR_PREFIX = "trusted.overlay.";
export const OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque";
/** Set by overlayfs on renamed directories (redirect_dir) and metadata-only copy-ups (metacopy). */
export const OVERLAY_REDIRECT_XATTR = "trusted.overlay.redirect";
export const OVERLAY_METACOPY_XATTR = "trusted.overlay.metacopy";
/** A whiteout may also be an empty regular file with this xattr (overlayfs "xwhiteouts", Linux 6.7+). */
export const OVERLAY_WHITEOUT_XATTR = "trusted.overlay.whiteout";
