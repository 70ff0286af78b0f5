// Loads the native addon (native/layers_native.c, built by node-gyp when the package is installed):
// mknod(2), the l*xattr(2) calls and mount(2)/umount2(2), which Node's fs module does not offer.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

interface NativeOps {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  lremovexattr(path: string, name: string): void;
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  mount(source: string, target: string, fstype: string, flags: number, data: string): Promise<void>;
  umount(target: string, flags: number): Promise<void>;
}

const addonPath = fileURLToPath(new URL("../build/Release/layers_native.node", import.meta.url));
let loaded: NativeOps | undefined;

/** The addon, loaded on first use so that importing the package never fails. */
export function native(): NativeOps {
  if (loaded) return loaded;
  if (!existsSync(addonPath)) {
    throw new Error(
      `@minato/layers: native addon missing at ${addonPath} — build it with \`npm rebuild -w @minato/layers\` (needs python3, make, g++ and Node headers)`,
    );
  }
  loaded = createRequire(import.meta.url)(addonPath) as NativeOps;
  return loaded;
}

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** umount2(2) flag: detach now, unmount once nothing uses the mount any more. */
const MNT_DETACH = 2;

/**
 * mount(2) on the thread pool, without exec'ing mount(8) (a few ms a call). `data` is the file
 * system's option string; rejects with the errno as a Node-style error.
 */
export function mount(source: string, target: string, fstype: string, data: string, flags = 0): Promise<void> {
  return native().mount(source, target, fstype, flags, data);
}

/** umount2(2) on the thread pool; `detach` unmounts lazily (MNT_DETACH). */
export function unmount(target: string, options: { detach?: boolean } = {}): Promise<void> {
  return native().umount(target, options.detach ? MNT_DETACH : 0);
}
