#!/usr/bin/env node
// Running containers with the engine (`minatod` + the `minato` CLI), side by side with Docker (Debian
// `docker.io`: a dockerd started here with its own roots) and Podman when installed, on the same
// busybox image made from Debian's busybox-static:
//
//   run --rm     wall time of `<cli> run --rm --network none busybox true` (median of --runs, default 20)
//   concurrent   50 containers created and started at once through the Engine API, until all run
//   exec         wall time of `<cli> exec <container> true` in a running container (median)
//   API run/exec the same two through the Engine API from this process: the daemons' own share,
//                without the CLI process's start (node ~0.07 s here, the docker CLI ~0.01 s)
//   idle memory  per idle running container: the daemons' RSS growth (dockerd + containerd) plus
//                the per-container monitor (conmon for minatod, containerd-shim for Docker)
//
//   node bench/containers.mjs [--runs N] [--no-docker] [--no-podman]
//
// Everything is local: no network for the containers, the daemons on unix sockets in temp dirs.
// The table is printed and written to bench/results/containers.md.

import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { commandOutput, median } from "./common.mjs";
import {
  busyboxRootfs,
  capture,
  childEnv,
  engineCall,
  isInterrupted,
  log,
  peerBenchmarkArgs,
  ROOT,
  runBenchmark,
  startDockerd,
  startMinatod,
  tempDir,
  writeReport,
} from "./harness.mjs";

const args = peerBenchmarkArgs("containers.mjs", { defaultRuns: 20, quickRuns: 3 });
const RUNS = args.runs;

const CONCURRENT = 50;
const IDLE = 10;
const MINATO_CLI = join(ROOT, "apps", "cli", "bin", "minato.js");
const MiB = 1024 * 1024;

/** Resident memory of a process in bytes (VmRSS), 0 once it is gone. */
function rss(pid) {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** PIDs whose command line contains every one of `needles`. */
function pidsWith(...needles) {
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {
      continue;
    }
    if (needles.every((needle) => cmdline.includes(needle))) found.push(Number(entry));
  }
  return found;
}

/** Times a CLI command; throws with its output when it fails. */
async function timed(command, argv, env) {
  const started = performance.now();
  const result = await capture(command, argv, { env, timeoutMs: 120_000 });
  const seconds = (performance.now() - started) / 1000;
  if (result.code !== 0)
    throw new Error(`${command} ${argv.join(" ")}: exit ${result.code ?? result.signal}: ${result.output.trim().slice(-400)}`);
  return { seconds, output: result.output };
}

async function api(daemon, method, path, body) {
  const response = await engineCall(daemon, method, path, body === undefined ? {} : { body: JSON.stringify(body) });
  if (response.status >= 300 && response.status !== 304)
    throw new Error(`${daemon.name} ${method} ${path}: HTTP ${response.status} ${response.body}`);
  return response.body ? JSON.parse(response.body) : undefined;
}

/**
 * `exec <c> true` as a client library would do it, without a CLI process: create the exec, start it
 * (the response streams its output until it ends), read its exit code. Seconds.
 */
async function apiExec(daemon, container) {
  const started = performance.now();
  const created = await api(daemon, "POST", `/containers/${container}/exec`, { Cmd: ["true"], AttachStdout: true, AttachStderr: true });
  const output = await engineCall(daemon, "POST", `/exec/${created.Id}/start`, { body: JSON.stringify({ Detach: false, Tty: false }) });
  if (output.status !== 200 && output.status !== 101) throw new Error(`${daemon.name} exec start: HTTP ${output.status} ${output.body}`);
  const inspected = await api(daemon, "GET", `/exec/${created.Id}/json`);
  if (inspected.ExitCode !== 0) throw new Error(`${daemon.name} exec: exit ${inspected.ExitCode}`);
  return (performance.now() - started) / 1000;
}

/** `run --rm busybox true` without a CLI process: create, wait for removal, start, removed. Seconds. */
async function apiRun(daemon) {
  const started = performance.now();
  const created = await api(daemon, "POST", "/containers/create", {
    Image: "busybox",
    Cmd: ["true"],
    HostConfig: { NetworkMode: "none", AutoRemove: true },
  });
  const removed = api(daemon, "POST", `/containers/${created.Id}/wait?condition=removed`);
  await api(daemon, "POST", `/containers/${created.Id}/start`);
  const { StatusCode } = await removed;
  if (StatusCode !== 0) throw new Error(`${daemon.name} run: exit ${StatusCode}`);
  return (performance.now() - started) / 1000;
}

/**
 * One engine under test: how to run its CLI, and how to find its daemons' and monitors' processes.
 * `daemonPids()` are the long-lived processes that grow with containers; `monitorPids(ids)` the
 * per-container ones.
 */
function minatoTool(daemon) {
  const env = childEnv({ MINATO_HOST: `unix://${daemon.socket}` });
  return {
    name: "Minato",
    daemon,
    cli: (argv) => timed(process.execPath, [MINATO_CLI, ...argv], env),
    daemonPids: () => [daemon.pid],
    monitorPids: (ids) => ids.flatMap((id) => pidsWith("conmon", id)),
  };
}

function dockerTool(daemon) {
  const env = childEnv({ DOCKER_HOST: `unix://${daemon.socket}` });
  const containerd = () => Number(readFileSync(join(daemon.dir, "exec", "containerd", "containerd.pid"), "utf8"));
  return {
    name: "Docker",
    daemon,
    cli: (argv) => timed("docker", argv, env),
    daemonPids: () => [daemon.pid, containerd()],
    monitorPids: (ids) => ids.flatMap((id) => pidsWith("containerd-shim", id)),
  };
}

/** Podman: no daemon; its own storage root and run root in a temp dir, conmon as monitor. */
async function podmanTool() {
  const dir = await tempDir("minato-bench-podman-");
  const base = ["--root", join(dir, "root"), "--runroot", join(dir, "run"), "--cgroup-manager", "cgroupfs", "--events-backend", "none"];
  return {
    name: "Podman",
    // Podman's default nofile limit is above this host's hard limit, which runc refuses: keep the host's.
    cli: (argv) => timed("podman", [...base, ...(argv[0] === "run" ? ["run", "--ulimit", "host", ...argv.slice(1)] : argv)], childEnv()),
    daemonPids: () => [],
    monitorPids: (ids) => ids.flatMap((id) => pidsWith("conmon", id)),
  };
}

async function measureTool(tool, rootfs, results) {
  const record = (metric, value) => {
    results[metric] ??= {};
    results[metric][tool.name] = value;
  };
  log(`${tool.name}: importing busybox`);
  await tool.cli(["import", "--change", 'CMD ["/bin/sh"]', rootfs, "busybox:latest"]);
  // One unmeasured run warms caches (the image's snapshot, the CLI's code).
  await tool.cli(["run", "--rm", "--network", "none", "busybox", "true"]);

  log(`${tool.name}: run --rm ×${RUNS}`);
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push((await tool.cli(["run", "--rm", "--network", "none", "busybox", "true"])).seconds);
  record("run", median(runs));

  log(`${tool.name}: exec ×${RUNS}`);
  const target = (await tool.cli(["run", "-d", "--network", "none", "busybox", "sleep", "3600"])).output.trim().split("\n").at(-1);
  const execs = [];
  for (let i = 0; i < RUNS; i++) execs.push((await tool.cli(["exec", target, "true"])).seconds);
  record("exec", median(execs));
  if (tool.daemon) {
    log(`${tool.name}: exec through the API ×${RUNS}`);
    const apiExecs = [];
    for (let i = 0; i < RUNS; i++) apiExecs.push(await apiExec(tool.daemon, target));
    record("apiExec", median(apiExecs));
    log(`${tool.name}: run --rm through the API ×${RUNS}`);
    const apiRuns = [];
    for (let i = 0; i < RUNS; i++) apiRuns.push(await apiRun(tool.daemon));
    record("apiRun", median(apiRuns));
  }
  await tool.cli(["rm", "-f", target]);

  if (tool.daemon) {
    log(`${tool.name}: ${CONCURRENT} containers at once`);
    const started = performance.now();
    const ids = await Promise.all(
      Array.from({ length: CONCURRENT }, async () => {
        const created = await api(tool.daemon, "POST", "/containers/create", {
          Image: "busybox",
          Cmd: ["sleep", "3600"],
          HostConfig: { NetworkMode: "none" },
        });
        await api(tool.daemon, "POST", `/containers/${created.Id}/start`);
        return created.Id;
      }),
    );
    record("concurrent", (performance.now() - started) / 1000);
    for (const id of ids) await api(tool.daemon, "DELETE", `/containers/${id}?force=1`);
  }

  log(`${tool.name}: memory of ${IDLE} idle containers`);
  const daemonBefore = tool.daemonPids().reduce((sum, pid) => sum + rss(pid), 0);
  const idle = [];
  for (let i = 0; i < IDLE; i++)
    idle.push((await tool.cli(["run", "-d", "--network", "none", "busybox", "sleep", "3600"])).output.trim().split("\n").at(-1));
  const fullIds = idle.map((id) => id.trim());
  const daemonAfter = tool.daemonPids().reduce((sum, pid) => sum + rss(pid), 0);
  const monitors = tool.monitorPids(fullIds);
  const monitorBytes = monitors.reduce((sum, pid) => sum + rss(pid), 0);
  record("memory", (Math.max(0, daemonAfter - daemonBefore) + monitorBytes) / IDLE / MiB);
  record("monitor", monitorBytes / Math.max(1, monitors.length) / MiB);
  await tool.cli(["rm", "-f", ...idle]);
}

async function main() {
  const startedAt = new Date();
  const loadBefore = loadavg();
  const dockerdVersion = commandOutput("dockerd", ["--version"]);
  const podmanVersion = commandOutput("podman", ["--version"]);
  let dockerUnavailable = args["no-docker"]
    ? "skipped (--no-docker)"
    : dockerdVersion
      ? undefined
      : "dockerd not installed (Debian package docker.io)";
  let podmanUnavailable = args["no-podman"] ? "skipped (--no-podman)" : podmanVersion ? undefined : "not installed (Debian package podman)";

  const work = await tempDir("minato-bench-containers-");
  const rootfs = await busyboxRootfs(work);

  /** results[metric][tool] = median */
  const results = {};
  const minatod = await startMinatod();
  try {
    await measureTool(minatoTool(minatod), rootfs, results);
  } finally {
    await minatod.stop();
  }
  if (!dockerUnavailable) {
    let dockerd;
    try {
      dockerd = await startDockerd();
      await measureTool(dockerTool(dockerd), rootfs, results);
    } catch (error) {
      if (isInterrupted()) throw error;
      dockerUnavailable = error.message.split("\n")[0].slice(0, 400);
      log(`  Docker: ${dockerUnavailable}`);
    } finally {
      await dockerd?.stop();
    }
  }
  if (!podmanUnavailable) {
    try {
      await measureTool(await podmanTool(), rootfs, results);
    } catch (error) {
      if (isInterrupted()) throw error;
      // A peer, not the subject: its failure is reported in the table.
      podmanUnavailable = error.message.split("\n")[0].slice(0, 300);
      log(`  Podman: ${podmanUnavailable}`);
    }
  }

  const fmt = (value, digits = 3) => (value === undefined ? "—" : value.toFixed(digits));
  const cell = (metric, tool, unavailable, digits) => (unavailable ? "n/a" : fmt(results[metric]?.[tool], digits));
  const ratio = (metric) => {
    const ours = results[metric]?.Minato;
    const docker = results[metric]?.Docker;
    return ours !== undefined && docker ? ours / docker : undefined;
  };
  const verdict = (metric, target) => {
    const r = ratio(metric);
    if (r === undefined) return "— (no Docker numbers)";
    return `${r.toFixed(2)}× ${target === undefined ? "" : r <= target ? `(target ≤ ${target}× ✅)` : `(target ≤ ${target}× ❌)`}`.trim();
  };
  const rows = [
    ["`run --rm busybox true`, median (s)", "run", 3, 0.5],
    [`${CONCURRENT} containers created + started at once (s)`, "concurrent", 2, undefined],
    ["`exec <c> true`, median (s)", "exec", 3, 0.5],
    ["the same `run --rm` through the Engine API, no CLI process (s)", "apiRun", 3, undefined],
    ["the same `exec` through the Engine API, no CLI process (s)", "apiExec", 3, undefined],
    [`memory per idle container (MiB): daemon growth + monitor`, "memory", 2, undefined],
    ["monitor process RSS per container (MiB)", "monitor", 2, undefined],
  ];
  const lines = [
    "# Minato engine benchmark: running containers",
    "",
    `- date: ${startedAt.toISOString()}; nproc ${commandOutput("nproc", []) ?? availableParallelism()}; node ${process.version}`,
    `- docker: ${dockerUnavailable ? `not measured (${dockerUnavailable})` : dockerdVersion}`,
    `- podman: ${podmanUnavailable ? `not measured (${podmanUnavailable})` : podmanVersion}`,
    `- load average (1/5/15 min): ${loadBefore.map((x) => x.toFixed(2)).join(" ")} before, ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")} after`,
    `- ${RUNS} runs for the medians; busybox (Debian busybox-static) imported into each engine; containers with --network none; CLI wall time includes the CLI's own start`,
    "",
    "| metric | Minato | Docker | Podman | Minato / Docker |",
    "|---|---:|---:|---:|---|",
    ...rows.map(
      ([label, metric, digits, target]) =>
        `| ${label} | ${cell(metric, "Minato", undefined, digits)} | ${cell(metric, "Docker", dockerUnavailable, digits)} | ${
          ["concurrent", "apiRun", "apiExec"].includes(metric) ? "— (no daemon API)" : cell(metric, "Podman", podmanUnavailable, digits)
        } | ${verdict(metric, target)} |`,
    ),
  ];
  await writeReport("containers", lines, { quick: args.quick });
}

await runBenchmark(main);
