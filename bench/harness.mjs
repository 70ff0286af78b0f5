// The moving parts of a benchmark: child processes, temp dirs, registries and daemons (minatod,
// dockerd), each registered as it starts and torn down exactly once — on exit, on error or on SIGINT
// (with dockerd's mounts undone and the files it leaves outside its roots removed). Daemons are driven
// through the Docker Engine API on their unix socket.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, rmdir, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { freePort, HOST, saveReport, stopProcess } from "./common.mjs";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const RESULTS = join(ROOT, "bench", "results");
const REGISTRY_BIN = join(ROOT, "apps", "registry", "bin", "minato-registry.js");
const MINATOD_BIN = join(ROOT, "apps", "engine", "bin", "minatod.js");
/** The newest Engine API version dockerd 20.10 serves; minatod accepts 1.24 and up. */
export const API = "/v1.41";
/** A request with nothing arriving for this long means a stuck daemon. */
const IDLE_TIMEOUT_MS = 120_000;
/** Upper bound for one command. */
const COMMAND_TIMEOUT_MS = 600_000;
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

/** True once a signal asked the run to stop. */
export const isInterrupted = () => interrupted;

// ---------------------------------------------------------------------------------------------
// Cleanup: every child process, daemon and temp dir is registered here and torn down exactly once.

const children = new Set();
/** Running daemons and registries: stopped (and their mounts undone) before temp dirs go. */
export const services = new Set();
const tempDirs = new Set();
/** Undoes what dockerd created outside its roots; set before the first dockerd starts. */
let restoreHost;
let cleaningUp;
let interrupted = false;

export const log = (message) => process.stderr.write(`${message}\n`);

export function cleanup() {
  cleaningUp ??= (async () => {
    // A few passes: work that was under way when a signal came may still register something.
    for (let pass = 0; pass < 3 && services.size + children.size + tempDirs.size > 0; pass++) {
      for (const service of [...services]) await service.stop().catch((error) => log(`stopping ${service.name}: ${error.message}`));
      await Promise.all([...children].map((child) => stopChild(child)));
      for (const dir of [...tempDirs]) await removeTempDir(dir).catch((error) => log(error.message));
    }
    await restoreHost?.();
  })();
  return cleaningUp;
}

/** After a signal nothing new is started: the run unwinds while cleanup() tears down. */
export function checkInterrupted() {
  if (interrupted) throw new Error("interrupted");
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    interrupted = true;
    log(`\n${signal}: stopping daemons and registries, removing temp dirs`);
    cleanup().finally(() => process.exit(130));
  });
}

export async function tempDir(prefix) {
  checkInterrupted();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(dir);
  checkInterrupted();
  return dir;
}

/** Mount points at or below `dir`, deepest first. */
function mountsUnder(dir) {
  const decodePath = (path) => path.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(Number.parseInt(octal, 8)));
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => decodePath(line.split(" ")[4]))
    .filter((mount) => mount === dir || mount.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts everything below `dir` (lazily when busy); refuses to go on while anything is left. */
function unmountUnder(dir) {
  for (let pass = 0; pass < 5; pass++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) return;
    for (const mount of mounts) {
      if (spawnSync("umount", [mount], { stdio: "ignore" }).status !== 0) spawnSync("umount", ["-l", mount], { stdio: "ignore" });
    }
  }
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`could not unmount ${left.join(", ")}; left ${dir} in place`);
}

export async function removeTempDir(dir) {
  unmountUnder(dir);
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
/** Stops a child and forgets it. */
export async function stopChild(child, graceMs) {
  await stopProcess(child, graceMs);
  children.delete(child);
}

/**
 * dockerd writes a few paths whatever its roots: its trust key /etc/docker/key.json and the plugin
 * socket dir /run/docker/plugins. Those that did not exist before are removed afterwards (dirs only
 * when empty).
 */
function snapshotHostPaths() {
  const paths = ["/etc/docker", "/etc/docker/key.json", "/run/docker", "/run/docker/plugins"];
  const existed = new Map(paths.map((path) => [path, existsSync(path)]));
  return async () => {
    for (const path of [...paths].reverse()) {
      if (existed.get(path) || !existsSync(path)) continue;
      if (path.endsWith(".json")) await rm(path, { force: true });
      else await rmdir(path).catch(() => log(`left ${path} in place: not empty`));
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The environment for children: ours without MINATO_* and DOCKER_* settings that would redirect them. */
export function childEnv(extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(MINATO|DOCKER)_/.test(key)));
  return { ...env, ...extra };
}

/**
 * Flushes dirty pages before a timed step, so no step pays for the writeback of the one before it
 * (the seeding push, the previous tool's 512 MiB of blobs and unpacked files).
 */
export function settle() {
  spawnSync("sync", { stdio: "ignore", timeout: 120_000 });
}

/** CPU seconds of a process (all threads) and of the children it has reaped, from /proc/<pid>/stat. */
export function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after "(comm) ": state is field 3, so field n is at index n - 3 (utime 14 … cstime 17).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const [utime, stime, cutime, cstime] = fields.slice(11, 15).map(Number);
  return { own: (utime + stime) / CLK_TCK, children: (cutime + cstime) / CLK_TCK };
}

/** CLOCK_MONOTONIC in microseconds: the clock of V8's CPU profiles, to find a step in a --cpu-prof profile. */
export const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);

/** Peak resident set size of a process (VmHWM), in bytes. */
export function peakRss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN) * 1024;
}

/** Runs a command to completion (tracked for cleanup, killed after `timeoutMs`); resolves with its exit code and output. */
export async function capture(command, argv, { env, timeoutMs = COMMAND_TIMEOUT_MS } = {}) {
  checkInterrupted();
  const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"], env });
  children.add(child);
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (text) => {
      output = (output + text).slice(-16_384);
    });
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [[code, signal]] = await Promise.all([
    new Promise((r) => child.once("exit", (...result) => r(result))),
    new Promise((r) => child.stdout.once("close", r)),
    new Promise((r) => child.stderr.once("close", r)),
  ]);
  clearTimeout(timer);
  children.delete(child);
  return { code, signal, output };
}

// ---------------------------------------------------------------------------------------------
// Registry

/** GET a URL on 127.0.0.1; resolves with status and body. */
export function httpGet(url, headers = {}) {
  const target = new URL(url);
  if (target.hostname !== HOST) throw new Error(`refusing non-loopback URL ${url}`);
  return new Promise((resolveResponse, reject) => {
    const req = httpRequest({ method: "GET", hostname: HOST, port: target.port, path: target.pathname, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.once("error", reject);
      res.once("end", () => resolveResponse({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.once("error", reject);
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`GET ${url}: no answer`)));
    req.end();
  });
}

/** A fresh Minato registry (empty data dir, no auth: it listens on loopback) on a free port. */
export async function startRegistry() {
  const port = await freePort();
  const dir = await tempDir("minato-bench-registry-");
  checkInterrupted();
  const child = spawn(
    process.execPath,
    [REGISTRY_BIN, "serve", "--listen", `${HOST}:${port}`, "--data", join(dir, "data"), "--log-level", "warn"],
    { stdio: ["ignore", "ignore", "pipe"], cwd: dir, env: childEnv() },
  );
  children.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text) => {
    stderr = (stderr + text).slice(-4096);
  });
  const registry = {
    name: `registry :${port}`,
    port,
    host: `${HOST}:${port}`,
    url: `http://${HOST}:${port}`,
    async stop() {
      services.delete(this);
      await stopChild(child);
      await removeTempDir(dir);
    },
  };
  services.add(registry);
  for (let attempt = 0; attempt < 150; attempt++) {
    if (child.exitCode !== null) throw new Error(`registry exited with ${child.exitCode}: ${stderr.trim()}`);
    const ok = await httpGet(`${registry.url}/v2/`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return registry;
    await sleep(100);
  }
  throw new Error(`registry did not answer GET /v2/ within 15 s: ${stderr.trim()}`);
}

// ---------------------------------------------------------------------------------------------
// Daemons

/**
 * One Engine API call. With `onMessage`, a 200 response is read as Docker's JSON message stream and
 * each message is passed on as it arrives; otherwise the body is returned.
 */
export function engineCall(daemon, method, path, { headers = {}, onMessage, body: requestBody } = {}) {
  return new Promise((resolveResponse, reject) => {
    const req = httpRequest(
      {
        socketPath: daemon.socket,
        method,
        path: `${API}${path}`,
        headers: { Host: "localhost", ...(requestBody !== undefined ? { "Content-Type": "application/json" } : {}), ...headers },
        agent: false,
      },
      (res) => {
        let pending = "";
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (text) => {
          if (!onMessage || res.statusCode !== 200) {
            body += text;
            return;
          }
          pending += text;
          for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
            const line = pending.slice(0, newline).trim();
            pending = pending.slice(newline + 1);
            if (line) onMessage(JSON.parse(line), performance.now());
          }
        });
        res.once("error", reject);
        res.once("end", () => {
          if (onMessage && pending.trim()) onMessage(JSON.parse(pending), performance.now());
          resolveResponse({ status: res.statusCode, body });
        });
      },
    );
    req.once("error", (error) => reject(new Error(`${daemon.name} ${method} ${path}: ${error.message}`, { cause: error })));
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`no progress for ${IDLE_TIMEOUT_MS / 1000} s`)));
    req.end(requestBody);
  });
}

/** Starts a daemon process and waits for `GET /_ping`; `extraStop` runs after the process exited. */
export async function startDaemon({ name, command, argv, dir, graceMs, extraStop }) {
  checkInterrupted();
  const child = spawn(command, argv, { stdio: ["ignore", "ignore", "pipe"], cwd: dir, env: childEnv() });
  children.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text) => {
    stderr = (stderr + text).slice(-16_384);
  });
  const daemon = {
    name,
    pid: child.pid,
    dir,
    socket: join(dir, `${name}.sock`),
    stderrTail: () => stderr.trim().slice(-2000),
    async stop() {
      services.delete(this);
      await stopChild(child, graceMs);
      await extraStop?.();
      await removeTempDir(dir);
    },
  };
  services.add(daemon);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  // dockerd takes a few seconds on a busy machine; a minute is a generous bound.
  for (let attempt = 0; attempt < 600; attempt++) {
    if (exited()) {
      await daemon.stop();
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}): ${lastLines(stderr)}`);
    }
    const up =
      existsSync(daemon.socket) &&
      (await engineCall(daemon, "GET", "/_ping").then(
        (r) => r.status === 200,
        () => false,
      ));
    if (up) return daemon;
    await sleep(100);
  }
  await daemon.stop();
  throw new Error(`${name} did not answer /_ping within 60 s: ${lastLines(stderr)}`);
}

export const lastLines = (text, count = 3) => text.trim().split("\n").slice(-count).join(" | ") || "(no output)";

/** A minatod with an empty data root; `cpuProfileDir`: run it under `node --cpu-prof`, profiles there. */
export async function startMinatod({ cpuProfileDir } = {}) {
  const dir = await tempDir("minato-bench-minatod-");
  const profile = cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfileDir}`] : [];
  if (cpuProfileDir) await mkdir(cpuProfileDir, { recursive: true });
  return startDaemon({
    name: "minatod",
    command: process.execPath,
    argv: [
      ...profile,
      MINATOD_BIN,
      ...["--data-root", join(dir, "data"), "--exec-root", join(dir, "exec"), "-H", `unix://${join(dir, "minatod.sock")}`],
      ...["--log-level", "warn"],
    ],
    dir,
    graceMs: 10_000,
  });
}

/**
 * A dockerd with its own data root, exec root, socket, pid file and (empty) config file; no bridge
 * and no iptables unless `bridge`, and the registries it talks to declared insecure (plain HTTP on
 * loopback).
 */
export async function startDockerd(registries = [], { bridge = false } = {}) {
  restoreHost ??= snapshotHostPaths();
  const dir = await tempDir("minato-bench-dockerd-");
  await writeFile(join(dir, "daemon.json"), "{}\n");
  const exec = join(dir, "exec");
  /** dockerd stops the containerd it started; should it be SIGKILLed, that containerd is stopped here. */
  const stopContainerd = async () => {
    const pid = Number(readFileSafe(join(exec, "containerd", "containerd.pid")));
    if (!pid) return;
    const cmdline = readFileSafe(`/proc/${pid}/cmdline`);
    if (!cmdline.includes(dir)) return;
    const signal = (name) => {
      try {
        process.kill(pid, name);
      } catch {
        // already gone
      }
    };
    signal("SIGTERM");
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await sleep(100);
    if (existsSync(`/proc/${pid}`)) signal("SIGKILL");
  };
  return startDaemon({
    name: "dockerd",
    command: "dockerd",
    argv: [
      ...["--config-file", join(dir, "daemon.json"), "--data-root", join(dir, "data"), "--exec-root", exec],
      ...["-H", `unix://${join(dir, "dockerd.sock")}`, "--pidfile", join(dir, "dockerd.pid")],
      // Without a bridge unless asked: then dockerd sets up docker0 and its iptables rules as usual.
      ...(bridge ? [] : ["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"]),
      ...["--log-level", "warn"],
      ...registries.flatMap((registry) => ["--insecure-registry", registry.host]),
    ],
    dir,
    graceMs: 30_000,
    extraStop: stopContainerd,
  });
}

export function readFileSafe(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Reads a JSON message stream to its end; throws on an `error` message. Returns the messages with arrival times. */
export async function jsonStream(daemon, method, path, headers = {}) {
  const messages = [];
  const response = await engineCall(daemon, method, path, { headers, onMessage: (message, at) => messages.push({ ...message, at }) });
  if (response.status !== 200) throw new Error(`${daemon.name} ${method} ${path}: HTTP ${response.status} ${response.body.slice(0, 300)}`);
  const failed = messages.find((m) => m.error || m.errorDetail);
  if (failed) throw new Error(`${daemon.name} ${method} ${path}: ${failed.errorDetail?.message ?? failed.error}`);
  return messages;
}

/** Daemon CPU seconds so far, its own threads plus children it reaped (dockerd's docker-untar). */
export const daemonCpu = (daemon) => {
  const cpu = cpuOf(daemon.pid);
  return cpu.own + cpu.children;
};

/** `POST /images/create` into the daemon's empty store; then checks the image is complete. */

// ---------------------------------------------------------------------------------------------
// Running a benchmark

/** The busybox root filesystem tar (Debian busybox-static) every engine benchmark imports. */
export async function busyboxRootfs(dir) {
  const rootfs = join(dir, "busybox.tar");
  const made = await capture("bash", [join(ROOT, "scripts", "busybox-rootfs.sh"), rootfs]);
  if (made.code !== 0) throw new Error(`busybox rootfs: ${made.output}`);
  return rootfs;
}

/** Prints a report and saves it (see {@link saveReport}): bench/reports/ for a full run. */
export async function writeReport(name, lines, { quick = false } = {}) {
  const report = `${lines.join("\n")}\n`;
  process.stdout.write(`\n${report}`);
  log(`written to ${await saveReport(name, report, { quick })}`);
}

/** Runs a benchmark's main: on failure the error and the daemons' last words, exit status 1; cleanup always. */
export async function runBenchmark(main) {
  try {
    await main();
  } catch (error) {
    if (interrupted) await new Promise(() => {}); // the signal handler exits once cleanup is done
    process.stderr.write(`benchmark failed: ${error.stack ?? error}\n`);
    for (const service of services)
      if (service.stderrTail) process.stderr.write(`${service.name} stderr:\n${service.stderrTail() || "(empty)"}\n`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

/**
 * The flags of a benchmark that runs engines side by side: `--quick` (`quickRuns` runs), `--runs N` (default `defaultRuns`),
 * `--no-docker`, `--no-podman`, plus `extra` parseArgs options; `--help` prints the usage and exits.
 * Refuses to go on without root, as the daemons do.
 */
export function peerBenchmarkArgs(script, { defaultRuns, quickRuns = 1, maxRuns = 200, extra = {}, usage = "" }) {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      runs: { type: "string" },
      "no-docker": { type: "boolean", default: false },
      "no-podman": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
      ...extra,
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`usage: node bench/${script} [--quick] [--runs N] [--no-docker] [--no-podman]${usage}\n`);
    process.exit(0);
  }
  // --quick: fewer runs, for iteration; its report is not kept in bench/reports/.
  const runs = Number(values.runs ?? (values.quick ? quickRuns : defaultRuns));
  if (!Number.isInteger(runs) || runs < 1 || runs > maxRuns) throw new Error(`--runs must be an integer from 1 to ${maxRuns}`);
  if (process.getuid?.() !== 0) throw new Error(`bench/${script} needs root: minatod (and dockerd) refuse to run otherwise`);
  return { ...values, runs };
}
