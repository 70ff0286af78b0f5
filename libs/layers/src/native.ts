// Loads the native addon (native/layers_native.c, built by node-gyp when the package is installed):
// mknod(2) and the l*xattr(2) calls, which Node's fs module does not offer.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

interface NativeOps {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  lremovexattr(path: string, name: string): void;
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
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
