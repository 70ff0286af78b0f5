#!/usr/bin/env node
// Building an image with the engine (`minatod` + `minato build`), side by side with Docker's classic
// builder (Debian `docker.io`: a dockerd started here with its own roots, `DOCKER_BUILDKIT=0 docker
// build`) and Podman/Buildah when installed, on the same busybox-based multi-stage Dockerfile of 15
// steps (COPY, RUN, ENV, LABEL, WORKDIR, USER, ...) over a context of 64 small files:
//
//   cold       `build --no-cache`: every step runs
//   cached     the same build again: every step a cache hit
//   changed    after changing the last copied file: that COPY and the steps after it rebuild
//
//   node bench/build.mjs [--runs N] [--no-docker] [--no-podman]
//
// The median of --runs (default 3) is reported. Everything is local: no network for the build
// containers, the daemons on unix sockets in temp dirs. The table is printed and written to
// bench/results/build.md, the numbers to bench/results/build.json.

import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { commandOutput, median, saveReport } from "./common.mjs";
import {
  capture,
  childEnv,
  cleanup,
  isInterrupted,
  log,
  peerBenchmarkArgs,
  RESULTS,
  ROOT,
  services,
  settle,
  startDockerd,
  startMinatod,
  tempDir,
} from "./harness.mjs";

const MINATO_CLI = join(ROOT, "apps", "cli", "bin", "minato.js");

const args = peerBenchmarkArgs("build.mjs", { defaultRuns: 3, maxRuns: 20 });
const RUNS = args.runs;

const DOCKERFILE = `# bench: a busybox-based multi-stage build
FROM busybox AS build
WORKDIR /src
COPY src/ ./
RUN for f in *.txt; do tr a-z A-Z < "$f" > "$f.up"; done && ls > /listing
RUN mkdir -p /out && cat *.up > /out/all.txt && md5sum /out/all.txt > /out/sum

FROM busybox
LABEL org.example.bench="build"
ENV APP_HOME=/app
WORKDIR /app
COPY --from=build /out/ ./out/
COPY config/ ./config/
RUN chown -R nobody /app && echo done > /app/ready
USER nobody
COPY last.txt ./
CMD ["cat", "/app/last.txt"]
`;

/** The context: the Dockerfile, 48 source files (~8 KiB each), 15 config files and the last copied file. */
async function writeContext(dir) {
  await mkdir(join(dir, "src"), { recursive: true });
  await mkdir(join(dir, "config"), { recursive: true });
  await writeFile(join(dir, "Dockerfile"), DOCKERFILE);
  for (let i = 0; i < 48; i++) {
    const line = `source file ${i}: the quick brown fox jumps over the lazy dog\n`;
    await writeFile(join(dir, "src", `file-${String(i).padStart(2, "0")}.txt`), line.repeat(128));
  }
  for (let i = 0; i < 15; i++) await writeFile(join(dir, "config", `app-${i}.conf`), `key${i}=value${i}\n`);
  await writeFile(join(dir, "last.txt"), "version 0\n");
}

/** Times a CLI command; throws with its output when it fails. */
async function timed(command, argv, env) {
  const started = performance.now();
  const result = await capture(command, argv, { env, timeoutMs: 300_000 });
  const seconds = (performance.now() - started) / 1000;
  if (result.code !== 0)
    throw new Error(`${command} ${argv.join(" ")}: exit ${result.code ?? result.signal}: ${result.output.trim().slice(-600)}`);
  return { seconds, output: result.output };
}

/** The tools under test: how to run each one's CLI, and how it builds. */
function minatoTool(daemon) {
  const env = childEnv({ MINATO_HOST: `unix://${daemon.socket}` });
  return {
    name: "Minato",
    cli: (argv) => timed(process.execPath, [MINATO_CLI, ...argv], env),
    build: (context, tag, noCache) => ["build", ...(noCache ? ["--no-cache"] : []), "-t", tag, context],
  };
}

function dockerTool(daemon) {
  const env = childEnv({ DOCKER_HOST: `unix://${daemon.socket}`, DOCKER_BUILDKIT: "0" });
  return {
    name: "Docker",
    cli: (argv) => timed("docker", argv, env),
    build: (context, tag, noCache) => ["build", ...(noCache ? ["--no-cache"] : []), "-t", tag, context],
  };
}

async function podmanTool() {
  const dir = await tempDir("minato-bench-podman-");
  const base = ["--root", join(dir, "root"), "--runroot", join(dir, "run"), "--cgroup-manager", "cgroupfs", "--events-backend", "none"];
  return {
    name: "Podman",
    cli: (argv) => timed("podman", [...base, ...argv], childEnv()),
    build: (context, tag, noCache) => ["build", "--network", "none", "--layers", ...(noCache ? ["--no-cache"] : []), "-t", tag, context],
  };
}

/** Cached rebuilds must hit every step; a check that each tool did what is measured. */
function countCacheHits(output) {
  return (output.match(/Using cache|--> Using cache/g) ?? []).length;
}

async function measure(tool, rootfs, work, results) {
  const record = (metric, value) => {
    results[metric] ??= {};
    results[metric][tool.name] ??= [];
    results[metric][tool.name].push(value);
  };
  log(`${tool.name}: importing busybox`);
  await tool.cli(["import", rootfs, "busybox:latest"]);
  const context = join(work, `context-${tool.name.toLowerCase()}`);
  await writeContext(context);
  // One unmeasured build warms the page cache and the CLI's code.
  await tool.cli(tool.build(context, "bench:warm", true));
  for (let run = 0; run < RUNS; run++) {
    settle();
    const cold = await tool.cli(tool.build(context, "bench:latest", true));
    record("cold", cold.seconds);
    settle();
    const cached = await tool.cli(tool.build(context, "bench:latest", false));
    record("cached", cached.seconds);
    record("cachedHits", countCacheHits(cached.output));
    await writeFile(join(context, "last.txt"), `version ${run + 1}\n`);
    settle();
    const changed = await tool.cli(tool.build(context, "bench:latest", false));
    record("changed", changed.seconds);
    log(
      `  ${tool.name} run ${run + 1}: cold ${cold.seconds.toFixed(2)} s, cached ${cached.seconds.toFixed(2)} s, changed ${changed.seconds.toFixed(2)} s`,
    );
  }
}

async function main() {
  const startedAt = new Date();
  const loadBefore = loadavg();
  const nproc = commandOutput("nproc", []) ?? String(availableParallelism());
  const dockerdVersion = commandOutput("dockerd", ["--version"]);
  const podmanVersion = commandOutput("podman", ["--version"]);
  let dockerUnavailable = args["no-docker"]
    ? "left out (--no-docker)"
    : dockerdVersion
      ? undefined
      : "dockerd not installed (Debian package docker.io)";
  const podmanUnavailable = args["no-podman"]
    ? "left out (--no-podman)"
    : podmanVersion
      ? undefined
      : "not installed (Debian package podman)";

  const work = await tempDir("minato-bench-build-");
  const rootfs = join(work, "busybox.tar");
  const made = await capture("bash", [join(ROOT, "scripts", "busybox-rootfs.sh"), rootfs]);
  if (made.code !== 0) throw new Error(`busybox rootfs: ${made.output}`);

  const results = {};
  const minatod = await startMinatod();
  try {
    await measure(minatoTool(minatod), rootfs, work, results);
  } finally {
    await minatod.stop();
  }
  if (!dockerUnavailable) {
    let dockerd;
    try {
      dockerd = await startDockerd();
      await measure(dockerTool(dockerd), rootfs, work, results);
    } catch (error) {
      if (isInterrupted()) throw error;
      dockerUnavailable = error.message.split("\n")[0].slice(0, 400);
      log(`  Docker: ${dockerUnavailable}`);
    } finally {
      await dockerd?.stop();
    }
  }
  if (!podmanUnavailable) await measure(await podmanTool(), rootfs, work, results);

  const med = (metric, tool) => (results[metric]?.[tool] ? median(results[metric][tool]) : undefined);
  const fmt = (value, digits = 2) => (value === undefined ? "—" : value.toFixed(digits));
  const ratio = (metric) => {
    const mine = med(metric, "Minato");
    const docker = med(metric, "Docker");
    return mine !== undefined && docker ? mine / docker : undefined;
  };
  const targets = { cold: 1.0, cached: 0.5, changed: undefined };
  const labels = {
    cold: "cold build, `--no-cache` (s)",
    cached: "fully cached rebuild (s)",
    changed: "rebuild after changing the last copied file (s)",
  };
  const lines = [
    "# Minato build benchmark",
    "",
    `- date: ${startedAt.toISOString()}; ${nproc} CPUs, load ${loadBefore.map((l) => l.toFixed(2)).join(" ")} before; median of ${RUNS} run(s)`,
    `- docker: ${dockerUnavailable ? `not measured (${dockerUnavailable})` : dockerdVersion}`,
    `- podman: ${podmanUnavailable ? `not measured (${podmanUnavailable})` : podmanVersion}`,
    "",
    "| step | Minato | Docker classic | Podman | Minato / Docker | target |",
    "|---|---:|---:|---:|---:|---|",
  ];
  for (const metric of ["cold", "cached", "changed"]) {
    const r = ratio(metric);
    const target = targets[metric];
    const verdict =
      target === undefined
        ? "—"
        : r === undefined
          ? `≤ ${target.toFixed(1)}× (no Docker)`
          : `≤ ${target.toFixed(1)}×: ${r <= target ? "met" : "missed"}`;
    lines.push(
      `| ${labels[metric]} | ${fmt(med(metric, "Minato"))} | ${fmt(med(metric, "Docker"))} | ${fmt(med(metric, "Podman"))} | ${r === undefined ? "—" : `${r.toFixed(2)}×`} | ${verdict} |`,
    );
  }
  lines.push("");
  lines.push(
    `- Dockerfile: 2 stages, 15 steps (4 COPY, 3 RUN, WORKDIR, ENV, LABEL, USER, CMD), busybox from Debian's busybox-static imported into each engine`,
  );
  lines.push(
    `- docker: ${dockerUnavailable ? `not available here (${dockerUnavailable})` : `${dockerdVersion}, \`DOCKER_BUILDKIT=0 docker build\``}`,
  );
  lines.push(`- podman: ${podmanUnavailable ?? podmanVersion}`);
  lines.push(
    `- each timing is the CLI's wall time (context tar sent, build, tag); cached rebuild hits per tool: ${JSON.stringify(results.cachedHits ?? {})}`,
  );
  for (const [metric, byTool] of Object.entries(results)) {
    for (const [tool, values] of Object.entries(byTool)) lines.push(`- ${metric} ${tool}: ${values.map((v) => fmt(v)).join(", ")}`);
  }
  const report = `${lines.join("\n")}\n`;
  process.stdout.write(`\n${report}`);
  await mkdir(RESULTS, { recursive: true });
  const saved = await saveReport("build", report, { quick: args.quick });
  await writeFile(
    join(RESULTS, "build.json"),
    `${JSON.stringify({ startedAt, runs: RUNS, nproc: Number(nproc), docker: dockerUnavailable ?? dockerdVersion, results, medians: Object.fromEntries(["cold", "cached", "changed"].map((m) => [m, { Minato: med(m, "Minato"), Docker: med(m, "Docker"), Podman: med(m, "Podman"), ratio: ratio(m) }])) }, null, 2)}\n`,
  );
  log(`written to ${saved} and ${join(RESULTS, "build.json")}`);
}

try {
  await main();
} catch (error) {
  if (isInterrupted()) await new Promise(() => {}); // the signal handler exits once cleanup is done
  process.stderr.write(`benchmark failed: ${error.stack ?? error}\n`);
  for (const service of services)
    if (service.stderrTail) process.stderr.write(`${service.name} stderr:\n${service.stderrTail() || "(empty)"}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
