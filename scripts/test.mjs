#!/usr/bin/env node
// `npm test`: set up (npm and Debian packages, build), lint, then every test suite in one vitest run,
// closing with a plain "N passed, N failed" line.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const step = (command, args) => spawnSync(command, args, { cwd: root, stdio: "inherit" }).status ?? 1;

if (step("node", ["scripts/setup.mjs", "--quiet", "--system"]) !== 0) process.exit(1);
if (step("npx", ["biome", "check", "."]) !== 0) {
  process.stderr.write("lint failed: run `npm run format` to fix formatting\n");
  process.exit(1);
}

const out = mkdtempSync(join(tmpdir(), "minato-vitest-"));
const report = join(out, "report.json");
const status = step("npx", [
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
]);
try {
  const { numPassedTests, numFailedTests, numPendingTests, numTodoTests } = JSON.parse(readFileSync(report, "utf8"));
  console.log(`\n${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests + numTodoTests} skipped`);
} catch {
  console.log("\nno test report was written");
}
rmSync(out, { recursive: true, force: true });
process.exit(status);
