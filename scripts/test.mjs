#!/usr/bin/env node
// `npm test`: set up (npm and Debian packages, build), lint, then every test suite in one vitest run,
// then the registry's HTTP suite again with its blobs in S3 (MINATO_TEST_STORAGE=s3: a loopback
// s3rver, a fresh bucket per test registry), closing with a plain "N passed, N failed" line over both.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const step = (command, args, env = process.env) => spawnSync(command, args, { cwd: root, stdio: "inherit", env }).status ?? 1;

if (step("node", ["scripts/setup.mjs", "--quiet", "--system"]) !== 0) process.exit(1);
if (step("npx", ["biome", "check", "."]) !== 0) {
  process.stderr.write("lint failed: run `npm run format` to fix formatting\n");
  process.exit(1);
}

const out = mkdtempSync(join(tmpdir(), "minato-vitest-"));
const runs = [
  { name: "all suites", storage: "filesystem", extra: [] },
  // Any arguments filter both runs; one that leaves no registry test for the S3 run is not a failure.
  { name: "registry HTTP suite on S3", storage: "s3", extra: ["--passWithNoTests"] },
];
let status = 0;
const totals = { passed: 0, failed: 0, skipped: 0 };
let reported = 0;
for (const [i, run] of runs.entries()) {
  const report = join(out, `report-${i}.json`);
  const started = Date.now();
  const code = step(
    "npx",
    ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...run.extra, ...process.argv.slice(2)],
    { ...process.env, MINATO_TEST_STORAGE: run.storage },
  );
  if (code !== 0) status = code;
  try {
    const { numTotalTests, numPassedTests, numFailedTests } = JSON.parse(readFileSync(report, "utf8"));
    // Whatever neither passed nor failed was skipped.
    const skipped = numTotalTests - numPassedTests - numFailedTests;
    totals.passed += numPassedTests;
    totals.failed += numFailedTests;
    totals.skipped += skipped;
    reported++;
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    console.log(`${run.name}: ${numPassedTests} passed, ${numFailedTests} failed, ${skipped} skipped (${seconds}s)`);
  } catch {
    console.log(`${run.name}: no test report was written`);
    if (status === 0) status = 1;
  }
}
if (reported > 0) console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
else console.log("\nno test report was written");
rmSync(out, { recursive: true, force: true });
process.exit(status);
