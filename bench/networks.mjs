#!/usr/bin/env node
// Container networking with the engine (`minatod`, driven by the docker CLI), side by side with
// Docker (Debian `docker.io`: a dockerd started here with its default bridge and iptables rules):
//
//   run --rm        wall time of `docker run --rm busybox true` on the default bridge network, against
//                   the same with --network none: the difference is what network setup adds
//   published port  HTTP requests per second with wrk from the host to a busybox httpd in a container
//                   through `-p 127.0.0.1:PORT:80` (iptables DNAT on both engines)
//
//   node bench/networks.mjs [--runs N] [--duration S] [--no-docker]
//
// All traffic stays on 127.0.0.1 and the engines' bridges. The table is printed and written to
// bench/results/networks.md.

import { createServer } from "node:net";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { commandOutput, median } from "./common.mjs";
import { busyboxRootfs, capture, childEnv, log, runBenchmark, startDockerd, startMinatod, tempDir, writeReport } from "./harness.mjs";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string" },
    duration: { type: "string" },
    "no-docker": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (args.help) {
  process.stdout.write("usage: node bench/networks.mjs [--quick] [--runs N] [--duration S] [--no-docker]\n");
  process.exit(0);
}
// --quick: 3 runs and 3 s of wrk, for iteration; its report is not kept in bench/reports/.
const RUNS = Number(args.runs ?? (args.quick ? 3 : 15));
const DURATION = Number(args.duration ?? (args.quick ? 3 : 10));
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 200) throw new Error("--runs must be an integer from 1 to 200");
if (process.getuid?.() !== 0) throw new Error("the networks benchmark needs root: minatod (and dockerd) refuse to run otherwise");

const HTTPD = ["sh", "-c", "head -c 1024 /dev/zero > /tmp/index.html && exec httpd -f -p 80 -h /tmp"];

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function measure(name, daemon, rootfs) {
  const env = childEnv({ DOCKER_HOST: `unix://${daemon.socket}` });
  const docker = async (argv) => {
    const started = performance.now();
    const result = await capture("docker", argv, { env, timeoutMs: 120_000 });
    if (result.code !== 0) throw new Error(`${name}: docker ${argv.join(" ")}: ${result.output}`);
    return { seconds: (performance.now() - started) / 1000, output: result.output };
  };
  log(`${name}: importing busybox`);
  await docker(["import", "--change", 'CMD ["/bin/sh"]', rootfs, "busybox:latest"]);
  await docker(["run", "--rm", "busybox", "true"]);
  const bridge = [];
  const none = [];
  for (let i = 0; i < RUNS; i++) {
    bridge.push((await docker(["run", "--rm", "busybox", "true"])).seconds);
    none.push((await docker(["run", "--rm", "--network", "none", "busybox", "true"])).seconds);
  }
  const port = await freePort();
  const id = (await docker(["run", "-d", "-p", `127.0.0.1:${port}:80`, "busybox", ...HTTPD])).output.trim().split("\n").at(-1);
  for (let i = 0; i < 100; i++) {
    const probe = await capture("wrk", ["-t1", "-c1", "-d1s", `http://127.0.0.1:${port}/index.html`]);
    if (/Requests\/sec:\s+[1-9]/.test(probe.output) && !/Non-2xx|Socket errors/.test(probe.output)) break;
  }
  log(`${name}: wrk for ${DURATION}s through 127.0.0.1:${port}`);
  const wrk = await capture("wrk", ["-t2", "-c32", `-d${DURATION}s`, `http://127.0.0.1:${port}/index.html`]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(wrk.output)?.[1] ?? 0);
  const errors = /Socket errors: .*|Non-2xx.*/.exec(wrk.output)?.[0];
  await docker(["rm", "-f", id]);
  return { bridge: median(bridge), none: median(none), rps, errors };
}

async function main() {
  const loadBefore = loadavg();
  const work = await tempDir("minato-bench-networks-");
  const rootfs = await busyboxRootfs(work);
  const results = {};
  const minatod = await startMinatod();
  try {
    results.minato = await measure("minatod", minatod, rootfs);
  } finally {
    await minatod.stop();
  }
  let dockerNote = args["no-docker"]
    ? "left out (--no-docker)"
    : commandOutput("dockerd", ["--version"])
      ? undefined
      : "dockerd not installed";
  if (!dockerNote) {
    let dockerd;
    try {
      dockerd = await startDockerd([], { bridge: true });
      results.docker = await measure("dockerd", dockerd, rootfs);
    } catch (error) {
      dockerNote = error.message.split("\n")[0].slice(0, 300);
    } finally {
      await dockerd?.stop();
    }
  }
  const fmt = (v, digits = 3) => (v === undefined ? "—" : v.toFixed(digits));
  const m = results.minato;
  const d = results.docker;
  const setup = (r) => (r ? r.bridge - r.none : undefined);
  const lines = [
    "# Minato engine benchmark: networks",
    "",
    `- date: ${new Date().toISOString()}; load average before: ${loadBefore.map((x) => x.toFixed(2)).join(" ")}`,
    `- ${RUNS} runs of each \`run --rm\` (median, docker CLI wall time); wrk -t2 -c32 for ${DURATION}s against a 1 KiB file`,
    `- docker: ${d ? commandOutput("dockerd", ["--version"]) : `not available (${dockerNote})`}`,
    "",
    "| metric | Minato | Docker | ratio | target |",
    "|---|---:|---:|---:|---|",
    `| \`run --rm busybox true\`, default bridge (s) | ${fmt(m?.bridge)} | ${fmt(d?.bridge)} | ${d ? (m.bridge / d.bridge).toFixed(2) : "—"}× | — |`,
    `| same with \`--network none\` (s) | ${fmt(m?.none)} | ${fmt(d?.none)} | — | — |`,
    `| network setup added to \`run\` (ms) | ${fmt(setup(m) * 1000, 0)} | ${d ? fmt(setup(d) * 1000, 0) : "—"} | — | < 30 ms ${setup(m) * 1000 < 30 ? "✅ met" : "❌ missed"} |`,
    `| HTTP through a published port (req/s) | ${fmt(m?.rps, 0)} | ${fmt(d?.rps, 0)} | ${d ? (m.rps / d.rps).toFixed(2) : "—"}× | ≥ 1.0× Docker ${d ? (m.rps >= d.rps ? "✅ met" : "❌ missed") : "(no Docker numbers)"} |`,
  ];
  if (m?.errors) lines.push("", `- minato wrk: ${m.errors}`);
  if (d?.errors) lines.push("", `- docker wrk: ${d.errors}`);
  await writeReport("networks", lines, { quick: args.quick });
}

await runBenchmark(main);
