#!/usr/bin/env node
// Brings a fresh clone to a runnable state: npm dependencies, then (with --system) the Debian
// packages the tests and benchmarks drive. Uses only Node built-ins: it runs before node_modules exists.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SYSTEM_PACKAGES } from "./system-packages.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));
const quiet = args.has("--quiet");

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
  if (command.startsWith("/")) return existsSync(command);
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function systemPackages(purposes) {
  const wanted = [...new Map(purposes.flatMap((p) => SYSTEM_PACKAGES[p]).map(([pkg, cmd]) => [pkg, cmd])).entries()];
  const missing = wanted.filter(([, command]) => !hasCommand(command)).map(([pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    // `npm start` as a user starts the registry alone: the engine's packages are not needed.
    if (purposes.length === 1 && purposes[0] === "engine") return;
    process.stderr.write(
      `setup: missing Debian packages: ${missing.join(" ")} — install them with: sudo apt-get install -y ${missing.join(" ")}\n`,
    );
    return;
  }
  log(`installing Debian packages: ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (purposes.length === 1 && purposes[0] === "engine") {
    // For `npm start`: a failed install must not keep the registry from starting; start.mjs then
    // says which packages minatod still lacks.
    const ok = [
      ["update", "-qq"],
      ["install", "-y", "-qq", "--no-install-recommends", ...missing],
    ].every(
      (argv) => spawnSync("apt-get", argv, { cwd: root, stdio: quiet ? ["ignore", "ignore", "inherit"] : "inherit", env }).status === 0,
    );
    if (!ok) process.stderr.write(`setup: could not install ${missing.join(" ")}; starting without them\n`);
    return;
  }
  run("apt-get", ["update", "-qq"], { env });
  run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { env });
}

npmDependencies();
const purposes = [];
if (args.has("--system")) purposes.push("test");
// `npm start` as root starts minatod too: what it needs to run a container on a bridge network.
if (args.has("--engine")) purposes.push("engine");
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
