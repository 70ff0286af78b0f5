#!/usr/bin/env node
// Brings a fresh clone to a runnable state: npm dependencies, then (with --system) the Debian
// packages the tests and benchmarks drive. Uses only Node built-ins: it runs before node_modules exists.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));
const quiet = args.has("--quiet");

/** Debian packages by purpose; each entry is [package, command it provides]. */
const SYSTEM_PACKAGES = {
  // Real peers the tests drive: skopeo as a client, CNCF Distribution as a registry, busybox-static
  // for a base image without internet, openssl for test certificates.
  test: [
    ["skopeo", "skopeo"],
    ["docker-registry", "docker-registry"],
    ["busybox-static", "busybox"],
    ["openssl", "openssl"],
    // The stock docker CLI, driven against minatod (docker.io also ships dockerd, which is not started).
    ["docker.io", "docker"],
    // libs/runtime runs real containers: runc as the OCI runtime, conmon as their monitor.
    ["runc", "runc"],
    ["conmon", "conmon"],
    // Interactive sessions (`run -it`, `exec -it`) are driven in a real terminal.
    ["tmux", "tmux"],
    // Bridge networks and published ports: the CNI plugins (checked by path: they are not on PATH),
    // iptables for their NAT rules, iproute2 for network namespaces and links.
    ["containernetworking-plugins", "/usr/lib/cni/bridge"],
    ["iptables", "iptables"],
    ["iproute2", "ip"],
    // `--init`: tini (its static build) is bind-mounted into containers as PID 1, as Docker's docker-init.
    ["tini", "tini-static"],
    // test/security.test.ts builds a static syscall probe (gcc and libc6-dev; node-gyp needs them too).
    ["build-essential", "cc"],
  ],
  // CNCF Distribution and a load generator, for side-by-side benchmarks; dockerd (from docker.io)
  // is the peer bench/engine.mjs starts for its pull and push comparison and bench/containers.mjs
  // for running containers.
  bench: [
    ["docker-registry", "docker-registry"],
    ["wrk", "wrk"],
    ["skopeo", "skopeo"],
    ["docker.io", "dockerd"],
    // The second peer bench/containers.mjs runs containers with (its own storage root in a temp dir).
    ["podman", "podman"],
  ],
};

function log(message) {
  if (!quiet) process.stderr.write(`setup: ${message}\n`);
}

function run(command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, { cwd: root, stdio: quiet ? ["ignore", "ignore", "inherit"] : "inherit", ...options });
  if (result.status !== 0) {
    process.stderr.write(`setup: ${command} ${commandArgs.join(" ")} failed (exit ${result.status ?? result.signal})\n`);
    process.exit(1);
  }
}

function npmDependencies() {
  const marker = join(root, "node_modules", ".package-lock.json");
  const lock = join(root, "package-lock.json");
  if (existsSync(marker) && existsSync(lock) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  log("installing npm dependencies");
  // `npm install`, not `npm ci`: it installs the locked versions all the same, but tolerates a lock
  // that lacks other platforms' optional binaries (rollup, biome), which registry mirrors may not carry.
  run("npm", ["install", "--no-audit", "--no-fund"]);
}

function hasCommand(command) {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function systemPackages(purposes) {
  const wanted = [...new Map(purposes.flatMap((p) => SYSTEM_PACKAGES[p]).map(([pkg, cmd]) => [pkg, cmd])).entries()];
  const missing = wanted.filter(([, command]) => !hasCommand(command)).map(([pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      `setup: missing Debian packages: ${missing.join(" ")} — install them with: sudo apt-get install -y ${missing.join(" ")}\n`,
    );
    return;
  }
  log(`installing Debian packages: ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  run("apt-get", ["update", "-qq"], { env });
  run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { env });
}

npmDependencies();
const purposes = [];
if (args.has("--system")) purposes.push("test");
if (args.has("--bench")) purposes.push("bench");
if (purposes.length > 0) systemPackages(purposes);
if (!args.has("--no-build")) {
  log("building");
  execFileSync("npx", ["turbo", "run", "build", "--output-logs=errors-only"], {
    cwd: root,
    stdio: quiet ? ["ignore", "ignore", "inherit"] : "inherit",
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" },
  });
}
