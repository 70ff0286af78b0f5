import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["libs/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "test/**/*.test.ts"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run files two at a time so real servers, skopeo and fsyncs do not starve each other.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
