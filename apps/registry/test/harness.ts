import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, type RegistryConfig, type RunningRegistry, startRegistry } from "../src/index.js";

export interface TestRegistry extends RunningRegistry {
  dataDir: string;
  /** Closes the server and removes its data directory. */
  destroy(): Promise<void>;
}

/** A real registry on a loopback port chosen by the kernel, with its own data directory. */
export async function startTestRegistry(overrides: Partial<RegistryConfig> = {}): Promise<TestRegistry> {
  const dataDir = await mkdtemp(join(tmpdir(), "minato-registry-test-"));
  const config: RegistryConfig = {
    host: "127.0.0.1",
    port: 0,
    dataDir,
    deletesEnabled: true,
    logLevel: "silent",
    uploadTtlMs: 86_400_000,
    maxManifestBytes: 4 * 1024 * 1024,
    ...overrides,
  };
  const registry = await startRegistry(config, createLogger(config.logLevel));
  return {
    ...registry,
    dataDir,
    async destroy() {
      await registry.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
