#!/usr/bin/env node
// Pull and push of one image with the engine (`minatod`), side by side with skopeo and with Docker
// (Debian `docker.io`, a dockerd started here), all against the Minato registry on loopback.
//
//   npm run bench:engine                  full run: 8 layers totalling 256 MiB, 3 runs (builds first)
//   node bench/engine.mjs --quick         8 layers totalling 32 MiB, 1 run, for iteration
//   node bench/engine.mjs --runs 5        repetitions (the median is reported)
//   node bench/engine.mjs --no-docker     skip Docker even when dockerd is installed and can run
//   node bench/engine.mjs --cpu-prof      run minatod under `node --cpu-prof` (profiles in bench/results/prof/)
//
// The image (random file contents, so gzip cannot shrink it) is generated once as an OCI layout and
// copied into a source registry with skopeo. Every pull goes into an empty store: a fresh minatod
// (empty --data-root), a fresh dockerd (empty --data-root), a fresh skopeo destination. Every push
// goes to a fresh registry, so no blob is skipped as already there. minatod and dockerd are driven
// through the same Docker Engine API client (POST /images/create, POST /images/{name}/push); skopeo
// is timed as a command. Tools take turns within each run, the order rotating from run to run.
//
// Everything listens on 127.0.0.1 only. Child processes, temp dirs and dockerd's mounts are removed
// on exit, error or SIGINT, as are the files dockerd creates outside its roots (/etc/docker/key.json,
// /run/docker) when they were not there before. The table is printed and written to
// bench/results/engine.md.

import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { createGzip } from "node:zlib";
import { commandOutput, HOST, median } from "./common.mjs";
import {
  API,
  capture,
  cpuOf,
  daemonCpu,
  engineCall,
  httpGet,
  isInterrupted,
  jsonStream,
  log,
  monotonicMicros,
  peakRss,
  RESULTS,
  removeTempDir,
  runBenchmark,
  settle,
  startDockerd,
  startMinatod,
  startRegistry,
  tempDir,
  writeReport,
} from "./harness.mjs";

const MiB = 1024 * 1024;
const MB = 1e6;
const TAG = "bench";
/** The same image with its layers recompressed as zstd (same diff IDs, config and image ID). */
const ZSTD_TAG = "bench-zstd";
/** `X-Registry-Auth` for an anonymous registry: base64url of `{}`. */
const NO_AUTH = Buffer.from("{}").toString("base64url");
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

// ---------------------------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string" },
    "no-docker": { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (args.help) {
  process.stdout.write("usage: node bench/engine.mjs [--quick] [--runs N] [--no-docker] [--cpu-prof]\n");
  process.exit(0);
}
const QUICK = args.quick;
const RUNS = Number(args.runs ?? (QUICK ? 1 : 3));
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 20) throw new Error("--runs must be an integer from 1 to 20");
if (process.getuid?.() !== 0) throw new Error("bench:engine needs root: minatod (and dockerd) refuse to run otherwise");

/** Relative layer sizes (8 layers, 32 parts), scaled to the image's total file content. */
const LAYER_PARTS = [1, 2, 3, 4, 5, 6, 7, 4];
const IMAGE_BYTES = (QUICK ? 32 : 256) * MiB;
const LAYER_BYTES = LAYER_PARTS.map((part) => (IMAGE_BYTES / 32) * part);

// ---------------------------------------------------------------------------------------------
// The image: 8 gzip layers of random file contents, written once as an OCI layout.

/** A ustar header for a file or directory owned by root. */
function tarHeader(name, { type, size = 0, mode }) {
  const header = Buffer.alloc(512);
  const octal = (value, length) => `${value.toString(8).padStart(length - 1, "0")}\0`;
  header.write(name, 0, 100, "utf8");
  header.write(octal(mode, 8), 100);
  header.write(octal(0, 8), 108);
  header.write(octal(0, 8), 116);
  header.write(octal(size, 12), 124);
  header.write(octal(1_700_000_000, 12), 136);
  header.write("        ", 148);
  header.write(type === "directory" ? "5" : "0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  header.write("root", 265);
  header.write("root", 297);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return header;
}

/**
 * One layer: a directory with four files (1/2, 1/4, 1/8, 1/8 of `bytes`) of random content, as a
 * tar, gzip level 1 (random data does not compress; a higher level would only cost time). The tar
 * and the gzip are hashed as they stream to disk.
 */
async function writeLayer(blobs, index, bytes) {
  const diffHash = createHash("sha256");
  const blobHash = createHash("sha256");
  let blobSize = 0;
  const files = [bytes / 2, bytes / 4, bytes / 8, bytes / 8];
  async function* tar() {
    const emit = (chunk) => {
      diffHash.update(chunk);
      return chunk;
    };
    yield emit(tarHeader(`layer-${index}/`, { type: "directory", mode: 0o755 }));
    for (const [i, size] of files.entries()) {
      yield emit(tarHeader(`layer-${index}/file-${i}.bin`, { type: "file", size, mode: 0o644 }));
      for (let sent = 0; sent < size; sent += MiB) yield emit(randomBytes(Math.min(MiB, size - sent)));
      if (size % 512) yield emit(Buffer.alloc(512 - (size % 512)));
    }
    yield emit(Buffer.alloc(1024));
  }
  const temporary = join(blobs, `tmp-layer-${index}`);
  await pipeline(
    tar(),
    createGzip({ level: 1 }),
    async function* (source) {
      for await (const chunk of source) {
        blobHash.update(chunk);
        blobSize += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(temporary),
  );
  const hex = blobHash.digest("hex");
  await rename(temporary, join(blobs, hex));
  return { mediaType: OCI_LAYER_GZIP, digest: `sha256:${hex}`, size: blobSize, diffId: `sha256:${diffHash.digest("hex")}` };
}

async function writeBlob(blobs, bytes) {
  const hex = createHash("sha256").update(bytes).digest("hex");
  await writeFile(join(blobs, hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/** Writes the image as an OCI layout at `dir`, tagged TAG; returns its digests and sizes. */
async function generateImage(dir) {
  const blobs = join(dir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const layers = [];
  for (const [index, bytes] of LAYER_BYTES.entries()) layers.push(await writeLayer(blobs, index, bytes));
  const arch = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x" }[process.arch] ?? process.arch;
  const config = Buffer.from(
    JSON.stringify({
      created: "2023-11-14T22:13:20Z",
      architecture: arch,
      os: "linux",
      config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
      rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
      history: layers.map((_, i) => ({ created: "2023-11-14T22:13:20Z", created_by: `bench layer ${i}` })),
    }),
  );
  const configBlob = await writeBlob(blobs, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, ...configBlob },
      layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
    }),
  );
  const manifestBlob = await writeBlob(blobs, manifest);
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, ...manifestBlob, annotations: { "org.opencontainers.image.ref.name": TAG } }],
    }),
  );
  const blobBytes = layers.reduce((sum, layer) => sum + layer.size, 0);
  return { dir, layers, config: configBlob.digest, manifest: manifestBlob.digest, blobBytes };
}

// ---------------------------------------------------------------------------------------------
// Registry

/** Checks that `repository:TAG` on the registry is the image's manifest and that every layer is there. */
async function verifyPushed(registry, repository, image, { sameDigest }) {
  const accept = [OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"].join(", ");
  const response = await httpGet(`${registry.url}/v2/${repository}/manifests/${TAG}`, { Accept: accept });
  if (response.status !== 200) throw new Error(`pushed manifest: HTTP ${response.status} ${response.body.toString("utf8").slice(0, 200)}`);
  const digest = `sha256:${createHash("sha256").update(response.body).digest("hex")}`;
  if (sameDigest && digest !== image.manifest) throw new Error(`pushed manifest ${digest}, expected ${image.manifest}`);
  const manifest = JSON.parse(response.body.toString("utf8"));
  if (manifest.layers?.length !== image.layers.length) throw new Error(`pushed manifest has ${manifest.layers?.length} layers`);
  for (const layer of manifest.layers) {
    const blob = await httpGet(`${registry.url}/v2/${repository}/blobs/${layer.digest}`);
    if (blob.status !== 200 || blob.body.length !== layer.size) throw new Error(`pushed layer ${layer.digest}: HTTP ${blob.status}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Daemons (minatod, dockerd), both driven through the Docker Engine API on their unix socket

async function daemonPull(daemon, image, source, tag = TAG) {
  settle();
  const cpu0 = daemonCpu(daemon);
  const m0 = monotonicMicros();
  const t0 = performance.now();
  const messages = await jsonStream(
    daemon,
    "POST",
    `/images/create?fromImage=${encodeURIComponent(`${source.host}/bench/image`)}&tag=${tag}`,
  );
  const t1 = performance.now();
  const cpu = daemonCpu(daemon) - cpu0;
  const downloaded = messages.filter((m) => m.status === "Download complete");
  if (downloaded.length !== image.layers.length) {
    throw new Error(`${daemon.name}: ${downloaded.length} "Download complete" messages for ${image.layers.length} layers`);
  }
  const inspect = await engineCall(daemon, "GET", `/images/${source.host}/bench/image:${tag}/json`);
  if (inspect.status !== 200) throw new Error(`${daemon.name} image inspect: HTTP ${inspect.status} ${inspect.body.slice(0, 200)}`);
  const info = JSON.parse(inspect.body);
  if (info.Id !== image.config || info.RootFS?.Layers?.length !== image.layers.length) {
    throw new Error(`${daemon.name} pulled ${info.Id} with ${info.RootFS?.Layers?.length} layers, expected ${image.config}`);
  }
  return {
    window: [m0, monotonicMicros()],
    seconds: (t1 - t0) / 1000,
    downloadSeconds: (Math.max(...downloaded.map((m) => m.at)) - t0) / 1000,
    cpu,
    rss: peakRss(daemon.pid),
  };
}

/** Tags the pulled image into `target`'s `bench/push` and times `POST /images/{name}/push`. */
async function daemonPush(daemon, image, source, target) {
  const tagged = await engineCall(
    daemon,
    "POST",
    `/images/${source.host}/bench/image:${TAG}/tag?repo=${encodeURIComponent(`${target.host}/bench/push`)}&tag=${TAG}`,
  );
  if (tagged.status !== 201 && tagged.status !== 200) throw new Error(`${daemon.name} tag: HTTP ${tagged.status} ${tagged.body}`);
  settle();
  const cpu0 = daemonCpu(daemon);
  const m0 = monotonicMicros();
  const t0 = performance.now();
  await jsonStream(daemon, "POST", `/images/${target.host}/bench/push/push?tag=${TAG}`, { "X-Registry-Auth": NO_AUTH });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = daemonCpu(daemon) - cpu0;
  // minatod pushes the stored manifest as is; dockerd rewrites it (Docker schema2, recompressed layers).
  const window = [m0, monotonicMicros()];
  await verifyPushed(target, "bench/push", image, { sameDigest: daemon.name === "minatod" });
  return { seconds, cpu, window };
}

// ---------------------------------------------------------------------------------------------
// skopeo, with its configuration isolated in a fresh temp dir per command (see test/support/skopeo.ts)

async function skopeo(argv) {
  const dir = await tempDir("minato-bench-skopeo-");
  const home = join(dir, "home");
  await mkdir(join(dir, "run"), { recursive: true, mode: 0o700 });
  await mkdir(home, { recursive: true });
  await writeFile(join(dir, "auth.json"), JSON.stringify({ auths: {} }));
  await writeFile(join(dir, "registries.conf"), "# isolated for bench/engine.mjs\n");
  await writeFile(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_DATA_HOME: join(home, ".local", "share"),
    XDG_CACHE_HOME: join(home, ".cache"),
    XDG_RUNTIME_DIR: join(dir, "run"),
    REGISTRY_AUTH_FILE: join(dir, "auth.json"),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
    // As root, containers/image keeps its blob-info cache in /var/lib/containers; a non-root uid
    // keeps it under $XDG_DATA_HOME, here. A fresh cache also means no reuse hints between runs.
    _CONTAINERS_ROOTLESS_UID: "1000",
    TMPDIR: dir,
  };
  try {
    settle();
    const cpu0 = cpuOf(process.pid).children;
    const t0 = performance.now();
    const result = await capture("skopeo", ["--policy", join(dir, "policy.json"), ...argv], { env });
    const seconds = (performance.now() - t0) / 1000;
    if (result.code !== 0)
      throw new Error(`skopeo ${argv.join(" ")} failed (${result.code ?? result.signal}): ${lastLines(result.output)}`);
    return { seconds, cpu: cpuOf(process.pid).children - cpu0 };
  } finally {
    await removeTempDir(dir);
  }
}

/** skopeo copy from the source registry into a fresh `oci:` layout or `dir:`; checks every layer landed. */
async function skopeoPull(image, source, transport) {
  const dest = await tempDir(`minato-bench-skopeo-${transport}-`);
  try {
    const target = transport === "oci" ? `oci:${dest}:${TAG}` : `dir:${dest}`;
    const result = await skopeo(["copy", "--src-tls-verify=false", `docker://${source.host}/bench/image:${TAG}`, target]);
    const names = new Set(await readdir(transport === "oci" ? join(dest, "blobs", "sha256") : dest));
    for (const layer of image.layers) {
      const hex = layer.digest.slice("sha256:".length);
      if (!names.has(hex)) throw new Error(`skopeo ${transport}: layer ${layer.digest} missing`);
      const { size } = await stat(join(dest, ...(transport === "oci" ? ["blobs", "sha256"] : []), hex));
      if (size !== layer.size) throw new Error(`skopeo ${transport}: layer ${layer.digest} has ${size} bytes`);
    }
    return result;
  } finally {
    await removeTempDir(dest);
  }
}

async function skopeoPush(image, target) {
  const result = await skopeo(["copy", "--dest-tls-verify=false", `oci:${image.dir}:${TAG}`, `docker://${target.host}/bench/push:${TAG}`]);
  await verifyPushed(target, "bench/push", image, { sameDigest: true });
  return result;
}

// ---------------------------------------------------------------------------------------------
// Report

const fmt = (value, digits = 2) =>
  value === undefined || Number.isNaN(value)
    ? "—"
    : value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const startedAt = new Date();
  const loadBefore = loadavg();
  const nproc = commandOutput("nproc", []) ?? String(availableParallelism());
  const skopeoVersion = commandOutput("skopeo", ["--version"]);
  if (!skopeoVersion) throw new Error("skopeo not found: install it (`apt-get install skopeo`, or `npm run bench:engine` does)");
  const dockerdVersion = commandOutput("dockerd", ["--version"]);
  /** Why Docker has no numbers, once known; undefined while it runs. */
  let dockerUnavailable;
  if (args["no-docker"]) dockerUnavailable = "skipped (--no-docker)";
  else if (!dockerdVersion) dockerUnavailable = "dockerd not installed (Debian package docker.io)";
  let dockerDriver;
  const pigz = commandOutput("sh", ["-c", "command -v unpigz"]);

  log(`mode: ${QUICK ? "quick" : "full"}, ${RUNS} run(s); Docker: ${dockerUnavailable ?? dockerdVersion}`);
  const work = await tempDir("minato-bench-engine-");
  log(`generating an image of ${LAYER_BYTES.length} layers, ${IMAGE_BYTES / MiB} MiB of random file contents`);
  const image = await generateImage(join(work, "layout"));
  const source = await startRegistry();
  log(`skopeo: copying the image into the source registry ${source.host}`);
  const seed = await skopeo(["copy", "--dest-tls-verify=false", `oci:${image.dir}:${TAG}`, `docker://${source.host}/bench/image:${TAG}`]);
  await verifyPushed(source, "bench/image", image, { sameDigest: true });
  // skopeo compresses plain layers in the format asked (gzip ones it leaves as they are): through a
  // directory of plain tars. Each skopeo() has a fresh blob-info cache, which would reuse the gzip twin.
  log(`skopeo: a zstd twin of the image as bench/image:${ZSTD_TAG}`);
  const plain = join(work, "plain");
  await skopeo(["copy", "--src-tls-verify=false", "--dest-decompress", `docker://${source.host}/bench/image:${TAG}`, `dir:${plain}`]);
  await skopeo([
    "copy",
    "--dest-tls-verify=false",
    "--format",
    "oci",
    "--dest-compress-format",
    "zstd",
    `dir:${plain}`,
    `docker://${source.host}/bench/image:${ZSTD_TAG}`,
  ]);
  await rm(plain, { recursive: true, force: true });

  /** results[metric][tool] = values from each run */
  const results = {};
  const record = (metric, tool, value) => {
    results[metric] ??= {};
    results[metric][tool] ??= [];
    results[metric][tool].push(value);
  };
  const notes = [];

  const runMinato = async (run) => {
    const target = await startRegistry();
    const daemon = await startMinatod(args["cpu-prof"] ? { cpuProfileDir: join(RESULTS, "prof") } : {});
    try {
      const pull = await daemonPull(daemon, image, source);
      record("pull", "minato", pull.seconds);
      record("pullDownload", "minato", pull.downloadSeconds);
      record("pullCpu", "minato", pull.cpu);
      const push = await daemonPush(daemon, image, source, target);
      record("push", "minato", push.seconds);
      record("pushCpu", "minato", push.cpu);
      notes.push(`run ${run + 1} minatod: VmHWM ${fmt(peakRss(daemon.pid) / MiB, 0)} MiB after pull and push`);
      // The zstd twin, into another empty store (the first one has these layers unpacked).
      const zstdDaemon = await startMinatod();
      try {
        const zstd = await daemonPull(zstdDaemon, image, source, ZSTD_TAG);
        record("pullZstd", "minato", zstd.seconds);
        record("pullZstdDownload", "minato", zstd.downloadSeconds);
        record("pullZstdCpu", "minato", zstd.cpu);
      } finally {
        await zstdDaemon.stop();
      }
      if (args["cpu-prof"]) {
        const window = ({ window: [from, to] }) => `${from}–${to}`;
        notes.push(
          `run ${run + 1} minatod pid ${daemon.pid}, CLOCK_MONOTONIC µs: pull ${window(pull)}, push ${window(push)} (profile in bench/results/prof/)`,
        );
      }
    } finally {
      await daemon.stop();
      await target.stop();
    }
  };

  const runDocker = async (run) => {
    if (dockerUnavailable) return;
    const target = await startRegistry();
    let daemon;
    try {
      daemon = await startDockerd([source, target]);
      if (!dockerDriver) {
        const info = await engineCall(daemon, "GET", "/info");
        dockerDriver = JSON.parse(info.body).Driver;
      }
      const pull = await daemonPull(daemon, image, source);
      record("pull", "docker", pull.seconds);
      record("pullDownload", "docker", pull.downloadSeconds);
      record("pullCpu", "docker", pull.cpu);
      const push = await daemonPush(daemon, image, source, target);
      record("push", "docker", push.seconds);
      record("pushCpu", "docker", push.cpu);
      notes.push(`run ${run + 1} dockerd: VmHWM ${fmt(peakRss(daemon.pid) / MiB, 0)} MiB after pull and push`);
    } catch (error) {
      if (isInterrupted()) throw error;
      // Docker is a peer, not the subject: its failure is reported, and it sits out the other runs.
      dockerUnavailable = error.message.split("\n")[0].slice(0, 400);
      log(`  Docker: ${dockerUnavailable}`);
    } finally {
      await daemon?.stop();
      await target.stop();
    }
  };

  const runSkopeo = async () => {
    const oci = await skopeoPull(image, source, "oci");
    record("pullDownload", "skopeo", oci.seconds);
    record("pullCpu", "skopeo", oci.cpu);
    record("pullDir", "skopeo", (await skopeoPull(image, source, "dir")).seconds);
    const target = await startRegistry();
    try {
      const push = await skopeoPush(image, target);
      record("push", "skopeo", push.seconds);
      record("pushCpu", "skopeo", push.cpu);
    } finally {
      await target.stop();
    }
  };

  const tools = [
    ["Minato", runMinato],
    ["Docker", runDocker],
    ["skopeo", runSkopeo],
  ];
  for (let run = 0; run < RUNS; run++) {
    const order = [...tools.slice(run % tools.length), ...tools.slice(0, run % tools.length)];
    for (const [name, measure] of order) {
      if (name === "Docker" && dockerUnavailable) continue;
      log(`run ${run + 1}/${RUNS}: ${name}`);
      await measure(run);
    }
  }
  await source.stop();

  // Table
  const med = (metric, tool) => (results[metric]?.[tool] ? median(results[metric][tool]) : undefined);
  const haveDocker = results.pull?.docker !== undefined;
  const dockerCell = (metric) => {
    const value = med(metric, "docker");
    if (value !== undefined) return fmt(value);
    return dockerUnavailable ? "not available" : "—";
  };
  const ratio = (a, b) => (a === undefined || b === undefined || b <= 0 ? undefined : a / b);
  const verdict = (r, target, peer) => {
    if (r === undefined) return `${target} (not measured: no ${peer} numbers)`;
    return `${target} ${r <= 1 ? "✅ met" : "❌ missed"}`;
  };
  const ratioText = (r, peer) => (r === undefined ? "—" : `${r.toFixed(2)}× ${peer}`);
  const mib = (bytes) => `${fmt(bytes / MiB, 1)} MiB`;

  const pullRatio = ratio(med("pull", "minato"), med("pull", "docker"));
  const pushRatio = ratio(med("push", "minato"), med("push", "skopeo"));
  const downloadRatio = ratio(med("pullDownload", "minato"), med("pullDownload", "skopeo"));
  const lines = [];
  lines.push("# Minato engine benchmark: pull and push");
  lines.push("");
  lines.push(`- date: ${startedAt.toISOString()}`);
  lines.push(`- nproc: ${nproc}`);
  lines.push(`- node: ${process.version}`);
  lines.push(`- skopeo: ${skopeoVersion}`);
  lines.push(
    `- docker: ${haveDocker ? `${dockerdVersion}, storage driver ${dockerDriver}, ${pigz ? "with" : "without"} unpigz` : `not available here (${dockerUnavailable})`}`,
  );
  const load = (l) => l.map((x) => x.toFixed(2)).join(" ");
  lines.push(`- load average (1/5/15 min): ${load(loadBefore)} before, ${load(loadavg())} after (other work on the machine skews results)`);
  lines.push(
    `- image: ${image.layers.length} gzip layers (level 1) of random file contents, ${LAYER_BYTES.map((b) => b / MiB).join(" + ")} = ` +
      `${IMAGE_BYTES / MiB} MiB of files, ${mib(image.blobBytes)} of layer blobs; OCI manifest`,
  );
  lines.push(
    `- mode: ${QUICK ? "quick" : "full"}; median of ${RUNS} run(s), tools taking turns; all traffic on loopback ${HOST} ` +
      "to Minato registries with filesystem storage in fresh temp dirs",
  );
  lines.push(
    "- pull: into an empty store each time (fresh minatod / dockerd data root, fresh skopeo destination). minatod and dockerd " +
      `via \`POST ${API}/images/create\` on their socket (download + verify + unpack, both at their default 3 concurrent downloads); ` +
      "skopeo `copy docker://… oci:…` and `dir:…` (download + verify, no unpacking), timed as a command",
  );
  lines.push(
    "- push: to a fresh registry each time, so no blob exists there. minatod and dockerd push the image they just pulled " +
      `(\`POST ${API}/images/{name}/push\`); skopeo \`copy oci:… docker://…\` from the generated layout. ` +
      "minatod and skopeo upload the stored gzip blobs; dockerd recompresses every layer from its unpacked form",
  );
  lines.push("- before each timed step: `sync`, so no step pays for the writeback of an earlier one");
  lines.push("- CPU: seconds of user + system time of the daemon (with the children it reaped) or of the skopeo process");
  lines.push("");
  lines.push("| metric | Minato | skopeo | Docker | ratio to the target peer | target |");
  lines.push("|---|---:|---:|---:|---:|---|");
  lines.push(
    `| pull, download + verify + unpack (s) | ${fmt(med("pull", "minato"))} | — (does not unpack) | ${dockerCell("pull")} | ` +
      `${ratioText(pullRatio, "Docker")} | ${verdict(pullRatio, "≤ 1.0× Docker", "Docker")} |`,
  );
  lines.push(
    `| pull, download + verify only (s) | ${fmt(med("pullDownload", "minato"))} ¹ | ${fmt(med("pullDownload", "skopeo"))} (oci:) | ` +
      `${dockerCell("pullDownload")} ¹ | ${ratioText(downloadRatio, "skopeo")} | — |`,
  );
  lines.push(`| pull to \`dir:\` (s) | — | ${fmt(med("pullDir", "skopeo"))} | — | — | — |`);
  lines.push(
    `| push to an empty registry (s) | ${fmt(med("push", "minato"))} | ${fmt(med("push", "skopeo"))} | ${dockerCell("push")} ² | ` +
      `${ratioText(pushRatio, "skopeo")} | ${verdict(pushRatio, "≤ 1.0× skopeo", "skopeo")} |`,
  );
  lines.push(
    `| CPU during pull (s) | ${fmt(med("pullCpu", "minato"))} | ${fmt(med("pullCpu", "skopeo"))} (oci:) | ${dockerCell("pullCpu")} | ` +
      `${ratioText(ratio(med("pullCpu", "minato"), med("pullCpu", "docker")), "Docker")} | — |`,
  );
  lines.push(
    `| CPU during push (s) | ${fmt(med("pushCpu", "minato"))} | ${fmt(med("pushCpu", "skopeo"))} | ${dockerCell("pushCpu")} | ` +
      `${ratioText(ratio(med("pushCpu", "minato"), med("pushCpu", "skopeo")), "skopeo")} | — |`,
  );
  lines.push(
    `| pull of the zstd twin, download + verify + unpack (s) | ${fmt(med("pullZstd", "minato"))} ³ | — | — | ` +
      `${ratioText(ratio(med("pullZstd", "minato"), med("pull", "minato")), "Minato's gzip pull")} | — |`,
  );
  lines.push(
    `| pull of the zstd twin, download + verify only (s) | ${fmt(med("pullZstdDownload", "minato"))} ¹ ³ | — | — | ` +
      `${ratioText(ratio(med("pullZstdDownload", "minato"), med("pullDownload", "minato")), "Minato's gzip pull")} | — |`,
  );
  lines.push(
    `| CPU during the zstd pull (s) | ${fmt(med("pullZstdCpu", "minato"))} ³ | — | — | ` +
      `${ratioText(ratio(med("pullZstdCpu", "minato"), med("pullCpu", "minato")), "Minato's gzip pull")} | — |`,
  );
  if (!haveDocker) lines.push(`| Docker: not available here (${dockerUnavailable}) | | | | | |`);
  lines.push("");
  lines.push("¹ from the request to the last layer's `Download complete` message; unpacking overlaps with later downloads.");
  lines.push("² Docker keeps no compressed layers: it tars and gzips each layer again before uploading it.");
  lines.push(
    "³ the same layers recompressed as zstd by skopeo (`--dest-compress-format zstd`), pulled into a fresh minatod; " +
      "decompressed by Debian's `zstd` program (CPU counts it: a child the daemon reaped).",
  );
  lines.push("");
  lines.push(`Per-run values (seconds; MB/s of layer blobs, ${fmt(image.blobBytes / MB, 1)} MB, in brackets):`);
  lines.push("");
  const timed = new Set(["pull", "pullDownload", "pullDir", "push"]);
  for (const [metric, byTool] of Object.entries(results)) {
    for (const [tool, values] of Object.entries(byTool)) {
      const text = values.map((v) => (timed.has(metric) ? `${fmt(v)} (${fmt(image.blobBytes / MB / v, 0)})` : fmt(v))).join(", ");
      lines.push(`- ${metric} ${tool}: ${text}`);
    }
  }
  lines.push(`- seeding the source registry with skopeo: ${fmt(seed.seconds)} s`);
  for (const note of notes) lines.push(`- ${note}`);
  await writeReport("engine", lines, { quick: QUICK });
}

await runBenchmark(main);
