// Helpers both benchmarks share. Loopback only: every server here listens on 127.0.0.1.
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { availableParallelism, cpus, release, totalmem } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** Reports of full runs, committed: the README's tables link them. */
export const REPORTS = join(ROOT, "bench", "reports");
/** Quick runs and raw data (JSON, CPU profiles): git-ignored. */
export const SCRATCH = join(ROOT, "bench", "results");

export const HOST = "127.0.0.1";

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A free TCP port on the loopback interface, as the kernel hands out for port 0. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** A command's combined output, or undefined when it is missing or fails (for version lines). */
export function commandOutput(command, argv) {
  const result = spawnSync(command, argv, { encoding: "utf8" });
  if (result.error || result.status !== 0) return undefined;
  return `${result.stdout}${result.stderr}`.trim();
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProcess(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolveExit) => child.once("exit", resolveExit));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** One report line naming the machine: CPU model, cores, memory, kernel. */
export function machineLine() {
  const model = cpus()[0]?.model?.replace(/\s+/g, " ").trim() ?? "unknown CPU";
  const gib = (totalmem() / 1024 ** 3).toFixed(1);
  return `- machine: ${model}, ${availableParallelism()} cores, ${gib} GiB RAM, Linux ${release()}, node ${process.version}`;
}

/**
 * Saves a report as bench/reports/<date>-<name>.md (a full run, to commit and link from the README)
 * or, for a --quick run, as bench/results/<name>.md (git-ignored). The machine line is added after
 * the title unless the report has one. Returns the path, relative to the repository.
 */
export async function saveReport(name, report, { quick = false, date = new Date() } = {}) {
  const withMachine = report.includes("- machine: ")
    ? report
    : report.startsWith("# ")
      ? report.replace(/^(# .*\n)\n?/, `$1\n${machineLine()}\n`)
      : `${machineLine()}\n${report}`;
  const dir = quick ? SCRATCH : REPORTS;
  const file = join(dir, quick ? `${name}.md` : `${date.toISOString().slice(0, 10)}-${name}.md`);
  await mkdir(dir, { recursive: true });
  await writeFile(file, withMachine);
  return relative(ROOT, file);
}
