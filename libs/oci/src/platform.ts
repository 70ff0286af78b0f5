import type { Descriptor, Platform } from "./manifest.js";

/** `os/arch[/variant]`, as in `--platform linux/arm64/v8`. */
export function parsePlatform(value: string): Platform {
  const [os, architecture, variant, ...extra] = value.split("/");
  if (!os || !architecture || extra.length > 0) throw new Error(`invalid platform ${JSON.stringify(value)}: expected os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

const NODE_ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
};

/** The platform this process runs on, in OCI terms (image-spec config.md architecture values). */
export function hostPlatform(): Platform {
  return { os: "linux", architecture: NODE_ARCH[process.arch] ?? process.arch };
}

// arm64 images are often published without a variant; v8 is what they mean (as containerd normalises).
function normalizedVariant(platform: Platform): string | undefined {
  if (platform.architecture === "arm64" && (platform.variant === undefined || platform.variant === "v8")) return undefined;
  return platform.variant;
}

/** Picks the manifest for `wanted` from an index's descriptors; a wanted variant must match exactly. */
export function selectPlatform(manifests: Descriptor[], wanted: Platform): Descriptor | undefined {
  return manifests.find((descriptor) => {
    const platform = descriptor.platform;
    if (!platform || platform.os !== wanted.os || platform.architecture !== wanted.architecture) return false;
    const variant = normalizedVariant(wanted);
    return variant === undefined || normalizedVariant(platform) === variant;
  });
}
