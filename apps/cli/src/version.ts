import { readFileSync } from "node:fs";

/** The CLI's version, from its package.json. */
export const CLI_VERSION: string = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version;

const GO_ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  s390x: "s390x",
  ppc64: "ppc64le",
  riscv64: "riscv64",
};

/** Node's `process.arch` in Go's (and OCI's) words: x64 is amd64. */
export const CLIENT_ARCH = GO_ARCH[process.arch] ?? process.arch;
