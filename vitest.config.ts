import { defineConfig } from "vitest/config";

// MINATO_TEST_STORAGE=s3 runs the registry's HTTP suite again with its blobs in S3: one s3rver for the
// run (apps/registry/test/s3-setup.ts), a fresh bucket per test registry (harness.ts).
const s3 = process.env.MINATO_TEST_STORAGE === "s3";

export default defineConfig({
  test: {
    include: s3 ? ["apps/registry/test/**/*.test.ts"] : ["libs/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: s3 ? ["apps/registry/test/s3-setup.ts"] : [],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run files two at a time so real servers, skopeo and fsyncs do not starve each other.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
