#!/usr/bin/env node
// Runs a chain of benchmark scripts with the same flags: `node bench/run.mjs engine containers
// networks --quick` gives --quick to each of them (npm run bench:engine -- --quick). A flag goes to
// every script of the chain that takes it; one that no script takes is refused. Stops at the first
// script that fails, with its status.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** Each script's flags (as its --help lists them); `=` marks a flag that takes a value. */
const FLAGS = {
  registry: ["help", "quick", "runs=", "minato-only", "cpu-prof", "calibrate", "gc-only"],
  engine: ["help", "quick", "runs=", "no-docker", "cpu-prof"],
  containers: ["help", "quick", "runs=", "no-docker", "no-podman"],
  networks: ["help", "quick", "runs=", "duration=", "no-docker"],
  build: ["help", "quick", "runs=", "no-docker", "no-podman"],
};

function fail(message) {
  process.stderr.write(`bench/run.mjs: ${message}\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
const scripts = [];
while (argv.length > 0 && !argv[0].startsWith("-")) scripts.push(argv.shift());
if (scripts.length === 0) fail(`usage: node bench/run.mjs SCRIPT… [flags]; scripts: ${Object.keys(FLAGS).join(", ")}`);
for (const script of scripts) if (!FLAGS[script]) fail(`no benchmark ${script}; scripts: ${Object.keys(FLAGS).join(", ")}`);

/** The flags as [name, tokens], e.g. ["runs", ["--runs", "5"]]. */
const flags = [];
for (let i = 0; i < argv.length; i++) {
  const token = argv[i];
  const match = /^--([a-z-]+)(=.*)?$/.exec(token);
  if (!match) fail(`unexpected argument ${JSON.stringify(token)}`);
  const name = match[1];
  const takesValue = scripts.some((script) => FLAGS[script].includes(`${name}=`));
  const known = takesValue || scripts.some((script) => FLAGS[script].includes(name));
  if (!known) fail(`no script of ${scripts.join(", ")} takes --${name}`);
  if (takesValue && match[2] === undefined) {
    if (i + 1 >= argv.length) fail(`--${name} needs a value`);
    flags.push([name, [token, argv[++i]]]);
  } else {
    flags.push([name, [token]]);
  }
}

for (const script of scripts) {
  const own = flags.filter(([name]) => FLAGS[script].includes(name) || FLAGS[script].includes(`${name}=`)).flatMap(([, tokens]) => tokens);
  const skipped = flags
    .filter(([name]) => !(FLAGS[script].includes(name) || FLAGS[script].includes(`${name}=`)))
    .map(([name]) => `--${name}`);
  process.stderr.write(
    `bench: ${script}.mjs ${own.join(" ")}${skipped.length ? ` (${skipped.join(" ")}: not a flag of ${script}.mjs)` : ""}\n`,
  );
  const result = spawnSync(process.execPath, [join(here, `${script}.mjs`), ...own], { stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
