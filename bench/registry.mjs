#!/usr/bin/env node
// Side-by-side benchmark of the Minato registry against CNCF Distribution (Debian `docker-registry`).
//
//   npm run bench:registry                  full run (builds first)
//   node bench/registry.mjs --quick         small sizes, no 4 GiB step, short wrk runs
//   node bench/registry.mjs --runs 5        repetitions per throughput metric (median is reported)
//   node bench/registry.mjs --minato-only   skip Distribution even when it is installed
//   node bench/registry.mjs --cpu-prof      run Minato under `node --cpu-prof` (profiles in bench/results/prof/)
//   node bench/registry.mjs --calibrate     also drive manifest GET with bench/http-load.mjs, to compare it with wrk
//   node bench/registry.mjs --gc-only       only the garbage-collection rows (bench/registry-gc.mjs; with --quick, 200 images)
//
// Both servers listen on 127.0.0.1 only, store blobs on the filesystem in fresh temp dirs, and are
// killed (temp dirs removed) on exit, error or SIGINT. The S3 rows run both again with S3 storage:
// an S3-compatible server (@20minutes/s3rver, libs/storage/test/s3-server.mjs) on 127.0.0.1, a fresh
// bucket for each registry. The table is printed and written to bench/results/latest.md.

import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request as httpRequest } from "node:http";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { measureBrowsing, REPOSITORIES, TAGS } from "./browse.mjs";
import { commandOutput, freePort, HOST, median, saveReport, stopProcess } from "./common.mjs";
import { benchGarbageCollection } from "./registry-gc.mjs";

const MiB = 1024 * 1024;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULTS = join(ROOT, "bench", "results");
const LOADER = join(ROOT, "bench", "http-load.mjs");
const MINATO_BIN = join(ROOT, "apps", "registry", "bin", "minato-registry.js");
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";
const S3_LAUNCHER = join(ROOT, "libs", "storage", "test", "s3-server.mjs");
/** s3rver's one account (as in libs/storage/test/s3-server.ts). */
const S3_ACCESS_KEY = "S3RVER";
const S3_SECRET_KEY = "S3RVER";
/** Blob size of the S3 rows: s3rver stores every part and copy as a file, so these stay small. */
const S3_BLOB = 64 * 1024 * 1024;
/** Bytes at the end of each pushed blob that change per push, so every push stores new content. */
const TAIL = 32;
const IDLE_TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string", default: "3" },
    "minato-only": { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    calibrate: { type: "boolean", default: false },
    "gc-only": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (args.help) {
  process.stdout.write("usage: node bench/registry.mjs [--quick] [--runs N] [--minato-only] [--cpu-prof] [--calibrate] [--gc-only]\n");
  process.exit(0);
}
const QUICK = args.quick;
const RUNS = Number(args.runs);
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 20) throw new Error("--runs must be an integer from 1 to 20");

const SIZES = QUICK
  ? { single: 32 * MiB, concurrent: 4 * MiB, streams: 8, big: 0, wrkSeconds: 3 }
  : { single: 256 * MiB, concurrent: 32 * MiB, streams: 8, big: 4096 * MiB, wrkSeconds: 10 };

// ---------------------------------------------------------------------------------------------
// Cleanup: every child process and temp dir is registered here and torn down exactly once.

const children = new Set();
/** Running registries, so a failure can show what they logged. */
const running = new Set();
const tempDirs = new Set();
let cleaningUp;
let interrupted = false;

/** The environment of the servers: ambient AWS settings (profiles, CA bundles, regions) stay out. */
function serverEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("AWS_")));
}

function cleanup() {
  cleaningUp ??= (async () => {
    await Promise.all([...children].map((child) => stopChild(child)));
    await Promise.all([...tempDirs].map((dir) => rm(dir, { recursive: true, force: true })));
    tempDirs.clear();
  })();
  return cleaningUp;
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping servers and removing temp dirs\n`);
    cleanup().finally(() => process.exit(130));
  });
}

async function tempDir(prefix) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

async function removeTempDir(dir) {
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** SIGTERM, then SIGKILL if the process has not exited within 5 s. */
/** Stops a child and forgets it. */
async function stopChild(child, graceMs) {
  await stopProcess(child, graceMs);
  children.delete(child);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const sha256 = (data) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** Resident set size of a process in bytes (VmRSS), and its lifetime peak (VmHWM). */
async function memoryOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: field("VmRSS"), hwm: field("VmHWM") };
}

// ---------------------------------------------------------------------------------------------
// HTTP client (node:http, keep-alive, bodies streamed)

/**
 * One request. `body` is a Buffer, a Readable or undefined. Resolves with status, headers and
 * byte count; the response body is kept only when `keep` is set, otherwise counted and dropped.
 */
function send(agent, method, url, { headers = {}, body, keep = false } = {}) {
  return new Promise((resolveResponse, reject) => {
    const target = new URL(url);
    if (target.hostname !== HOST) throw new Error(`refusing non-loopback URL ${url}`);
    const req = httpRequest(
      { agent, method, hostname: HOST, port: target.port, path: `${target.pathname}${target.search}`, headers },
      (res) => {
        const chunks = [];
        let bytes = 0;
        res.on("data", (chunk) => {
          bytes += chunk.length;
          if (keep) chunks.push(chunk);
        });
        res.once("error", (error) => reject(new Error(`${method} ${target.pathname} response: ${error.message}`, { cause: error })));
        res.once("end", () => resolveResponse({ status: res.statusCode, headers: res.headers, bytes, body: Buffer.concat(chunks) }));
      },
    );
    req.once("error", (error) => reject(new Error(`${method} ${target.pathname}: ${error.message}`, { cause: error })));
    // Nothing moving for two minutes means a stuck server: give up rather than wait forever.
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`no progress for ${IDLE_TIMEOUT_MS / 1000} s`)));
    if (body instanceof Readable) {
      body.once("error", (error) => req.destroy(error));
      body.pipe(req);
    } else {
      req.end(body);
    }
  });
}

function expectStatus(response, wanted, what) {
  if (response.status !== wanted) {
    throw new Error(`${what}: expected HTTP ${wanted}, got ${response.status} ${response.body.toString("utf8").slice(0, 300)}`);
  }
}

/**
 * The blob upload flow: POST a session, PATCH the whole body as one stream, PUT ?digest=.
 * `digest` may be a function, called once the PATCH has consumed the body (for bodies hashed as sent).
 */
async function pushStreamed(server, repo, digest, size, body) {
  const agent = server.agent;
  const start = await send(agent, "POST", `${server.url}/v2/${repo}/blobs/uploads/`, { headers: { "Content-Length": "0" }, keep: true });
  expectStatus(start, 202, "POST upload");
  const patch = await send(agent, "PATCH", new URL(start.headers.location, server.url).href, {
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(size) },
    body,
    keep: true,
  });
  expectStatus(patch, 202, "PATCH upload");
  const finish = new URL(patch.headers.location, server.url);
  finish.searchParams.set("digest", typeof digest === "function" ? digest() : digest);
  const put = await send(agent, "PUT", finish.href, { headers: { "Content-Length": "0" }, keep: true });
  expectStatus(put, 201, "PUT upload");
}

/** Monolithic upload: POST a session, then one PUT ?digest= carrying the whole body. */
async function pushMonolithic(server, repo, digest, size, body) {
  const agent = server.agent;
  const start = await send(agent, "POST", `${server.url}/v2/${repo}/blobs/uploads/`, { headers: { "Content-Length": "0" }, keep: true });
  expectStatus(start, 202, "POST upload");
  const finish = new URL(start.headers.location, server.url);
  finish.searchParams.set("digest", digest);
  const put = await send(agent, "PUT", finish.href, {
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(size) },
    body,
    keep: true,
  });
  expectStatus(put, 201, "PUT upload");
}

// ---------------------------------------------------------------------------------------------
// Payloads. One random file on disk; each pushed blob is a byte range of it whose last TAIL
// bytes are replaced with fresh random bytes, so the digest costs one hash of the tail only
// (the range's prefix hash is computed once and copied).

class FileSlice {
  constructor(path, offset, size) {
    this.path = path;
    this.offset = offset;
    this.size = size;
    this.prefixHash = undefined;
  }

  async prepare() {
    const hash = createHash("sha256");
    const stream = createReadStream(this.path, { start: this.offset, end: this.offset + this.size - TAIL - 1, highWaterMark: MiB });
    for await (const chunk of stream) hash.update(chunk);
    this.prefixHash = hash;
    return this;
  }

  /** A fresh variant of this slice: its digest and a factory for its body stream. */
  variant() {
    const tail = randomBytes(TAIL);
    const digest = `sha256:${this.prefixHash.copy().update(tail).digest("hex")}`;
    const body = () => {
      const prefix = createReadStream(this.path, { start: this.offset, end: this.offset + this.size - TAIL - 1, highWaterMark: MiB });
      return Readable.from(
        (async function* () {
          yield* prefix;
          yield tail;
        })(),
        { objectMode: false, highWaterMark: MiB },
      );
    };
    return { digest, size: this.size, body };
  }
}

async function writeRandomFile(path, size) {
  const handle = await open(path, "w");
  try {
    for (let written = 0; written < size; written += MiB) await handle.write(randomBytes(Math.min(MiB, size - written)));
  } finally {
    await handle.close();
  }
}

/**
 * `size` bytes cycling through 16 random 1 MiB blocks, generated on demand and hashed as it is
 * read. `digest()` is valid once the stream has ended.
 */
function patternStream(size) {
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB));
  const hash = createHash("sha256");
  let sent = 0;
  let index = 0;
  let digest;
  const stream = new Readable({
    highWaterMark: MiB,
    read() {
      if (sent >= size) {
        digest = `sha256:${hash.digest("hex")}`;
        this.push(null);
        return;
      }
      const block = blocks[(index * 7 + (index >> 4)) % blocks.length];
      const chunk = size - sent >= MiB ? block : block.subarray(0, size - sent);
      index += 1;
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return {
    stream,
    digest: () => {
      if (!digest) throw new Error("pattern stream not finished");
      return digest;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Servers

async function waitReady(server, child, stderrTail) {
  for (let attempt = 0; attempt < 150; attempt++) {
    if (child.exitCode !== null) throw new Error(`${server.name} exited with ${child.exitCode}: ${stderrTail()}`);
    const ok = await send(server.agent, "GET", `${server.url}/v2/`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${server.name} did not answer GET /v2/ within 15 s: ${stderrTail()}`);
}

/**
 * Starts Minato or Distribution on a free loopback port, with blobs on the filesystem in a fresh
 * temp dir, or in `s3.bucket` of the S3 server at `s3.endpoint`.
 */
/** `extraArgs`: more flags for Minato's `serve`. */
async function startServer(kind, s3, extraArgs = []) {
  const port = await freePort();
  const dataDir = await tempDir(`minato-bench-${kind}-`);
  let command;
  let argv;
  if (kind === "minato") {
    const profile = args["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${join(RESULTS, "prof")}`] : [];
    if (profile.length) await mkdir(join(RESULTS, "prof"), { recursive: true });
    command = process.execPath;
    argv = [
      ...profile,
      MINATO_BIN,
      "serve",
      ...["--listen", `${HOST}:${port}`, "--data", join(dataDir, "data"), "--log-level", "warn"],
      ...extraArgs,
    ];
    if (s3) {
      argv.push(
        ...["--storage", "s3", "--s3-bucket", s3.bucket, "--s3-endpoint", s3.endpoint, "--s3-force-path-style", "true"],
        ...["--s3-region", "us-east-1", "--s3-access-key-id", S3_ACCESS_KEY, "--s3-secret-access-key", S3_SECRET_KEY],
      );
    }
  } else {
    const storage = s3
      ? [
          "  s3:",
          `    accesskey: ${S3_ACCESS_KEY}`,
          `    secretkey: ${S3_SECRET_KEY}`,
          "    region: us-east-1",
          `    regionendpoint: ${s3.endpoint}`,
          // Distribution 2.8 goes path-style whenever regionendpoint is set; later versions read this.
          "    forcepathstyle: true",
          `    bucket: ${s3.bucket}`,
          "    secure: false",
          "    v4auth: true",
          // Blob GETs served by the registry itself, as Minato does by default (no presigned redirects).
          "  redirect:",
          "    disable: true",
        ]
      : ["  filesystem:", `    rootdirectory: ${join(dataDir, "data")}`];
    const config = join(dataDir, "config.yml");
    await writeFile(
      config,
      [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        // As in upstream's example config and Debian's /etc/docker/registry/config.yml.
        "  cache:",
        "    blobdescriptor: inmemory",
        ...storage,
        "  delete:",
        "    enabled: true",
        "http:",
        `  addr: ${HOST}:${port}`,
        `  secret: ${randomBytes(16).toString("hex")}`,
        "",
      ].join("\n"),
    );
    command = "docker-registry";
    argv = ["serve", config];
  }
  const child = spawn(command, argv, { stdio: ["ignore", "ignore", "pipe"], cwd: dataDir, env: serverEnv() });
  children.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text) => {
    stderr = (stderr + text).slice(-8192);
  });
  const server = {
    kind,
    name: `${kind === "minato" ? "Minato" : "Distribution"}${s3 ? " (S3)" : ""}`,
    url: `http://${HOST}:${port}`,
    port,
    pid: child.pid,
    dataDir,
    agent: new Agent({ keepAlive: true, maxSockets: 64 }),
    stderrTail: () => stderr.trim().slice(-2000),
    /** Stops the server and keeps its data directory. */
    async halt() {
      running.delete(this);
      this.agent.destroy();
      await stopChild(child);
    },
    async stop() {
      await this.halt();
      await removeTempDir(dataDir);
    },
  };
  running.add(server);
  await waitReady(server, child, server.stderrTail);
  return server;
}

/**
 * s3rver in its own process on a loopback port, storing objects under a fresh temp dir, with one
 * fresh bucket per name in `buckets`. It exits with this process (its stdin is a pipe from here).
 */
async function startS3Server(buckets) {
  const dir = await tempDir("minato-bench-s3-");
  const argv = [S3_LAUNCHER, "--exit-with-stdin", "--directory", join(dir, "objects"), ...buckets.flatMap((b) => ["--bucket", b])];
  const child = spawn(process.execPath, argv, { stdio: ["pipe", "pipe", "pipe"], cwd: dir, env: serverEnv() });
  children.add(child);
  let output = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text) => {
    output = (output + text).slice(-8192);
  });
  child.stdout.setEncoding("utf8");
  const port = await new Promise((resolvePort, reject) => {
    let line = "";
    child.stdout.on("data", (text) => {
      line += text;
      if (line.includes("\n")) resolvePort(JSON.parse(line.split("\n")[0]).port);
    });
    child.once("exit", (code) => reject(new Error(`S3 server exited with ${code}: ${output}`)));
  });
  return {
    endpoint: `http://${HOST}:${port}`,
    async stop() {
      await stopChild(child);
      await removeTempDir(dir);
    },
  };
}

/**
 * Puts a blob straight into Distribution's bucket in its storage layout (the content, and the link
 * that makes it part of `repo`), through the S3 API: a blob for its pull when its push cannot work.
 */
async function seedDistributionBlob(s3, repo, blob) {
  const { S3Client, PutObjectCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
    // No trailing checksums (aws-chunked uploads), which s3rver does not take.
    requestChecksumCalculation: "WHEN_REQUIRED",
  });
  const hex = blob.digest.slice("sha256:".length);
  const root = "docker/registry/v2";
  try {
    const put = (key, body, length) =>
      client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${root}/${key}`, Body: body, ContentLength: length }));
    await put(`blobs/sha256/${hex.slice(0, 2)}/${hex}/data`, blob.body(), blob.size);
    await put(`repositories/${repo}/_layers/sha256/${hex}/link`, Buffer.from(blob.digest), blob.digest.length);
  } finally {
    client.destroy();
  }
}

/** Why a server failed a request: the error, and the detail of the last error it logged (Distribution's logfmt). */
function failureReason(server, error) {
  const details = [...server.stderrTail().matchAll(/err\.detail="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
  // Go's AWS SDK appends "\n\tstatus code: 501, request id: , host id: ": keep the status.
  const detail = details
    .at(-1)
    ?.replace(/\\n\\t/g, "; ")
    .replace(/, request id:.*$/, "");
  return `${error.message.replace(/ \{.*$/s, "")}${detail ? `; its log: ${detail}` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// Measurements

const MB = 1e6;
/** Tries per run for a pull whose response breaks off. */
const PULL_ATTEMPTS = 3;

async function measurePush(server, slice, upload) {
  const blob = slice.variant();
  const t0 = performance.now();
  await upload(server, "bench/push", blob.digest, blob.size, blob.body());
  const seconds = (performance.now() - t0) / 1000;
  return { value: blob.size / MB / seconds, digest: blob.digest };
}

async function measurePull(server, repo, digest, size) {
  const t0 = performance.now();
  const response = await send(server.agent, "GET", `${server.url}/v2/${repo}/blobs/${digest}`);
  const seconds = (performance.now() - t0) / 1000;
  if (response.status !== 200 || response.bytes !== size) {
    throw new Error(`${server.name} pull: HTTP ${response.status}, ${response.bytes} of ${size} bytes`);
  }
  return size / MB / seconds;
}

async function measureConcurrentPush(server, slices) {
  const blobs = slices.map((slice) => slice.variant());
  const t0 = performance.now();
  await Promise.all(blobs.map((blob) => pushStreamed(server, "bench/concurrent", blob.digest, blob.size, blob.body())));
  const seconds = (performance.now() - t0) / 1000;
  return blobs.reduce((sum, blob) => sum + blob.size, 0) / MB / seconds;
}

/**
 * The machine's own ceiling for the push path: copying the payload into a new file on the same
 * filesystem with 1 MiB writes, no server involved. Returns MB/s without and with a final fsync.
 */
async function measureFileWrite(source, dir, size) {
  const target = join(dir, `copy-${randomBytes(4).toString("hex")}`);
  const t0 = performance.now();
  await pipeline(createReadStream(source, { end: size - 1, highWaterMark: MiB }), createWriteStream(target, { highWaterMark: MiB }));
  const t1 = performance.now();
  const handle = await open(target, "r+");
  await handle.sync();
  await handle.close();
  const t2 = performance.now();
  await rm(target);
  return { plain: size / MB / ((t1 - t0) / 1000), synced: size / MB / ((t2 - t0) / 1000) };
}

/** A small OCI image (config + one layer + manifest, tagged `latest`); returns the layer digest. */
async function pushSmallImage(server) {
  const repo = "bench/small";
  const layer = randomBytes(4096);
  const layerDigest = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [layerDigest] },
      config: {},
    }),
  );
  for (const blob of [config, layer]) await pushMonolithic(server, repo, sha256(blob), blob.length, blob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
      layers: [{ mediaType: OCI_LAYER, digest: layerDigest, size: layer.length }],
    }),
  );
  const put = await send(server.agent, "PUT", `${server.url}/v2/${repo}/manifests/latest`, {
    headers: { "Content-Type": OCI_MANIFEST, "Content-Length": String(manifest.length) },
    body: manifest,
    keep: true,
  });
  expectStatus(put, 201, "PUT manifest");
  const check = await send(server.agent, "GET", `${server.url}/v2/${repo}/manifests/latest`, {
    headers: { Accept: OCI_MANIFEST },
    keep: true,
  });
  expectStatus(check, 200, "GET manifest");
  if (!check.body.equals(manifest)) throw new Error(`${server.name} returned a different manifest than was pushed`);
  const head = await send(server.agent, "HEAD", `${server.url}/v2/${repo}/blobs/${layerDigest}`);
  expectStatus({ ...head, body: Buffer.alloc(0) }, 200, "HEAD blob");
  return { manifestUrl: `${server.url}/v2/${repo}/manifests/latest`, blobUrl: `${server.url}/v2/${repo}/blobs/${layerDigest}` };
}

/** Runs a command to completion (tracked for cleanup); resolves with its exit code and stdout+stderr. */
async function capture(command, argv) {
  const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (text) => {
      output += text;
    });
  }
  const [code] = await Promise.all([
    new Promise((r) => child.once("exit", r)),
    new Promise((r) => child.stdout.once("close", r)),
    new Promise((r) => child.stderr.once("close", r)),
  ]);
  children.delete(child);
  return { code, output };
}

/** `wrk -c32 -t1 -d<s>s`; returns requests/s and p50/p99 latency, refusing runs with errors. */
async function runWrk(url, { headers = [] } = {}) {
  const argv = ["-c32", "-t1", `-d${SIZES.wrkSeconds}s`, "--latency"];
  for (const header of headers) argv.push("-H", header);
  argv.push(url);
  const { code, output } = await capture("wrk", argv);
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${output}`);
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(output);
  if (!rate) throw new Error(`could not parse wrk output: ${output}`);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(output) ?? /Socket errors: (.*)/.exec(output);
  if (errors) throw new Error(`wrk saw errors (${errors[0]}): ${output}`);
  const latency = (pct) => [...output.matchAll(/^\s+(\d+)%\s+(\S+)/gm)].find((m) => m[1] === pct)?.[2] ?? "?";
  return { value: Number(rate[1]), p50: latency("50"), p99: latency("99") };
}

/**
 * bench/http-load.mjs (raw keep-alive sockets, 32 connections, closed loop) for requests wrk cannot
 * drive: wrk 4.1 waits for a body after a HEAD response that carries Content-Length.
 */
async function runLoad(url, { method = "GET", headers = [] } = {}) {
  const argv = [LOADER, "--url", url, "--method", method, "--connections", "32", "--duration", String(SIZES.wrkSeconds)];
  for (const header of headers) argv.push("--header", header);
  const { code, output } = await capture(process.execPath, argv);
  if (code !== 0) throw new Error(`http-load exited with ${code}: ${output}`);
  const result = JSON.parse(output.trim().split("\n").at(-1));
  if (result.non2xx || result.errors) throw new Error(`http-load saw ${result.non2xx} non-2xx responses and ${result.errors} errors`);
  return { value: result.rps, p50: `${result.p50Ms.toFixed(2)}ms`, p99: `${result.p99Ms.toFixed(2)}ms` };
}

/** Pushes `size` generated bytes in one streamed PATCH while sampling VmRSS every 100 ms. */
async function measureRssDuringBigPush(server) {
  const baseline = await memoryOf(server.pid);
  let peak = baseline.rss;
  let sampling = true;
  const sampler = (async () => {
    // At most an hour of samples; the push itself is bounded by the client's idle timeout.
    for (let i = 0; sampling && i < 36_000; i++) {
      const { rss } = await memoryOf(server.pid).catch(() => ({ rss: 0 }));
      peak = Math.max(peak, rss);
      await sleep(100);
    }
  })();
  const pattern = patternStream(SIZES.big);
  const t0 = performance.now();
  try {
    await pushStreamed(server, "bench/big", pattern.digest, SIZES.big, pattern.stream);
  } finally {
    sampling = false;
    await sampler;
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = await memoryOf(server.pid);
  return { peak, baseline: baseline.rss, hwm: after.hwm, mbps: SIZES.big / MB / seconds };
}

// ---------------------------------------------------------------------------------------------
// Report

const fmt = (value, digits = 0) =>
  value === undefined || Number.isNaN(value)
    ? "—"
    : value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mib = (bytes) => (bytes === undefined ? undefined : bytes / MiB);

/** A table row; `notes` adds text to a server's cell (e.g. failed attempts); `notes.digits`: decimals shown. */
function row(metric, minato, distribution, target, notes = {}) {
  const ratio = minato !== undefined && distribution !== undefined && distribution > 0 ? minato / distribution : undefined;
  let verdict = "";
  if (target) {
    const met = target.check(minato, ratio);
    verdict = met === undefined ? `${target.text} (not measured)` : `${target.text} ${met ? "✅ met" : "❌ missed"}`;
  }
  const cell = (value, note) => [value === undefined && note ? "" : fmt(value, notes.digits ?? 0), note ?? ""].filter(Boolean).join(" ");
  const ratioText = ratio === undefined ? "—" : `${ratio.toFixed(2)}×`;
  return `| ${metric} | ${cell(minato, notes.minato)} | ${cell(distribution, notes.distribution)} | ${ratioText} | ${verdict} |`;
}

const atLeast = (x) => ({ text: `≥ ${x}×`, check: (_m, ratio) => (ratio === undefined ? undefined : ratio >= x) });

// ---------------------------------------------------------------------------------------------
// Garbage collection rows

const GC_IMAGES = QUICK ? 200 : 2000;

async function gcRows(kinds, log) {
  const gc = await benchGarbageCollection({ kinds, startServer, send, minatoBin: MINATO_BIN, imageCount: GC_IMAGES, log });
  const m = gc.minato;
  const d = gc.distribution;
  const within = (x) => ({ text: `≤ ${x}× idle`, check: (during) => (during === undefined ? undefined : during <= x * m.idleP99) });
  return [
    row(`full GC pass, ${fmt(GC_IMAGES)} images (${fmt(GC_IMAGES * 5)} blobs), half deleted (s)`, m.seconds, d?.seconds, undefined, {
      minato: "online, registry serving",
      distribution: d ? "offline: registry stopped" : undefined,
      digits: 2,
    }),
    row("blobs deleted by the pass", m.blobs, d?.blobs),
    row("bytes reclaimed on disk (KB)", m.diskFreed / 1000, d ? d.diskFreed / 1000 : undefined),
    row("manifest PUT p99, registry idle (ms)", m.idleP99, undefined, undefined, { digits: 2 }),
    row(`manifest PUT p99 during the pass (ms; ${m.putsDuring} PUTs)`, m.duringP99, undefined, within(2), { digits: 2 }),
  ];
}

async function gcOnly() {
  const log = (message) => process.stderr.write(`${message}\n`);
  const distributionVersion = args["minato-only"] ? undefined : commandOutput("docker-registry", ["--version"]);
  const kinds = distributionVersion ? ["minato", "distribution"] : ["minato"];
  const loadBefore = loadavg();
  const startedAt = new Date();
  const rows = await gcRows(kinds, log);
  const load = (l) => l.map((x) => x.toFixed(2)).join(" ");
  const report = [
    "# Minato registry benchmark: garbage collection",
    "",
    `- date: ${startedAt.toISOString()}; nproc: ${commandOutput("nproc", []) ?? availableParallelism()}; node ${process.version}`,
    `- load average: ${load(loadBefore)} before, ${load(loadavg())} after (a shared machine: rough numbers)`,
    `- distribution: ${distributionVersion ?? "not run"}; its garbage-collect runs offline, with the registry stopped`,
    `- content: ${GC_IMAGES} images of a config and 4 layers (1–4 KiB each), in 20 repositories; half deleted by digest`,
    "- Minato: `minato-registry gc --grace 0` run beside the serving registry while one client PUTs manifests in a loop",
    "",
    "| metric | Minato | Distribution | ratio (Minato/Distribution) | target |",
    "|---|---:|---:|---:|---|",
    ...rows,
    "",
  ].join("\n");
  process.stdout.write(`\n${report}`);
  await mkdir(RESULTS, { recursive: true });
  await writeFile(join(RESULTS, "gc.md"), report);
  log(`written to ${join(RESULTS, "gc.md")}`);
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  if (args["gc-only"]) return gcOnly();
  const distributionVersion = args["minato-only"] ? undefined : commandOutput("docker-registry", ["--version"]);
  // wrk --version exits 1, so its output is read directly.
  const wrkProbe = spawnSync("wrk", ["--version"], { encoding: "utf8" });
  const haveWrk = wrkProbe.error === undefined;
  const wrkVersion = `${wrkProbe.stdout ?? ""}${wrkProbe.stderr ?? ""}`.split("\n")[0].trim();
  const loadBefore = loadavg();
  const kinds = distributionVersion ? ["minato", "distribution"] : ["minato"];
  const nproc = commandOutput("nproc", []) ?? String(availableParallelism());
  const startedAt = new Date();

  const log = (message) => process.stderr.write(`${message}\n`);
  log(`mode: ${QUICK ? "quick" : "full"}, ${RUNS} run(s) per metric; servers: ${kinds.join(", ")}`);

  const work = await tempDir("minato-bench-client-");
  const payload = join(work, "payload.bin");
  const payloadSize = Math.max(SIZES.single, SIZES.concurrent * SIZES.streams, S3_BLOB);
  log(`writing ${payloadSize / MiB} MiB of random data to ${payload}`);
  await writeRandomFile(payload, payloadSize);
  const single = await new FileSlice(payload, 0, SIZES.single).prepare();
  const s3Slice = await new FileSlice(payload, 0, S3_BLOB).prepare();
  const concurrent = await Promise.all(
    Array.from({ length: SIZES.streams }, (_, i) => new FileSlice(payload, i * SIZES.concurrent, SIZES.concurrent).prepare()),
  );

  /** results[metric][kind] = values from each run */
  const results = {};
  const record = (metric, kind, value) => {
    results[metric] ??= {};
    results[metric][kind] ??= [];
    results[metric][kind].push(value);
  };
  const extra = [];
  /** failures[metric][kind] = error messages */
  const failures = {};
  const failure = (metric, kind, message) => {
    failures[metric] ??= {};
    failures[metric][kind] ??= [];
    failures[metric][kind].push(message);
    log(`  ${metric} failed on ${kind}: ${message}`);
  };

  // Steps 1–4: both servers up side by side, measurements interleaved run by run (the order
  // alternates) so background noise on the machine hits both alike.
  const servers = {};
  for (const kind of kinds) servers[kind] = await startServer(kind);
  const small = {};
  for (const kind of kinds) small[kind] = await pushSmallImage(servers[kind]);

  for (let run = 0; run < RUNS; run++) {
    const copy = await measureFileWrite(payload, work, SIZES.single);
    record("fileWrite", "machine", copy.plain);
    record("fileWriteSync", "machine", copy.synced);
    const order = run % 2 ? [...kinds].reverse() : kinds;
    for (const kind of order) {
      const server = servers[kind];
      log(`run ${run + 1}/${RUNS}: ${server.name}`);
      const push = await measurePush(server, single, pushStreamed);
      record("push", kind, push.value);
      // A pull that breaks off is a finding, not a reason to abandon the run: retried, and counted.
      for (let attempt = 0; attempt < PULL_ATTEMPTS; attempt++) {
        try {
          record("pull", kind, await measurePull(server, "bench/push", push.digest, SIZES.single));
          break;
        } catch (error) {
          failure("pull", kind, error.message);
        }
      }
      record("monolithic", kind, (await measurePush(server, single, pushMonolithic)).value);
      record("concurrent", kind, await measureConcurrentPush(server, concurrent));
      if (haveWrk) {
        const manifest = await runWrk(small[kind].manifestUrl, { headers: [`Accept: ${OCI_MANIFEST}`] });
        record("manifest", kind, manifest.value);
        extra.push(`${server.name} run ${run + 1} manifest GET: ${fmt(manifest.value)} req/s, p50 ${manifest.p50}, p99 ${manifest.p99}`);
        if (args.calibrate) {
          // The same manifest GET through http-load, to show how it compares with wrk.
          const load = await runLoad(small[kind].manifestUrl, { headers: [`Accept: ${OCI_MANIFEST}`] });
          extra.push(
            `${server.name} run ${run + 1} manifest GET via http-load: ${fmt(load.value)} req/s, p50 ${load.p50}, p99 ${load.p99}`,
          );
        }
      }
      const head = await runLoad(small[kind].blobUrl, { method: "HEAD" });
      record("head", kind, head.value);
      extra.push(`${server.name} run ${run + 1} blob HEAD: ${fmt(head.value)} req/s, p50 ${head.p50}, p99 ${head.p99}`);
    }
  }
  // Metrics cost: manifest GET on the Minato above (metrics on) against a second one started with
  // --no-metrics (no request recording), interleaved run by run.
  if (haveWrk && kinds.includes("minato")) {
    const bare = await startServer("minato", undefined, ["--no-metrics"]);
    const bareImage = await pushSmallImage(bare);
    for (let run = 0; run < RUNS; run++) {
      const pair = [
        ["metricsOn", small.minato.manifestUrl],
        ["metricsOff", bareImage.manifestUrl],
      ];
      for (const [metric, url] of run % 2 ? pair.reverse() : pair) {
        const result = await runWrk(url, { headers: [`Accept: ${OCI_MANIFEST}`] });
        record(metric, "minato", result.value);
        extra.push(`Minato run ${run + 1} manifest GET, ${metric}: ${fmt(result.value)} req/s, p50 ${result.p50}, p99 ${result.p99}`);
      }
    }
    await bare.stop();
  }
  for (const kind of kinds) await servers[kind].stop();

  // Step 5: S3 storage. One s3rver, a fresh bucket per registry, both registries up side by side,
  // single-stream push and pull of a 64 MiB blob, interleaved run by run as above.
  /** s3Failures[metric][kind] = why that registry's S3 push or pull could not be measured */
  const s3Failures = { s3push: {}, s3pull: {} };
  /** Digest of the blob put straight into Distribution's bucket, when its push failed. */
  let seeded;
  {
    const s3 = await startS3Server(kinds);
    const s3Servers = {};
    for (const kind of kinds) s3Servers[kind] = await startServer(kind, { endpoint: s3.endpoint, bucket: kind });
    // Only Distribution's failures are findings to report; Minato's end the benchmark.
    const attempt = async (metric, kind, work) => {
      try {
        return await work();
      } catch (error) {
        if (kind === "minato") throw error;
        s3Failures[metric][kind] = failureReason(s3Servers[kind], error);
        log(`  S3 ${metric.slice(2)} failed on ${s3Servers[kind].name}: ${s3Failures[metric][kind]}`);
        return undefined;
      }
    };
    for (let run = 0; run < RUNS; run++) {
      const order = run % 2 ? [...kinds].reverse() : kinds;
      for (const kind of order) {
        const server = s3Servers[kind];
        log(`run ${run + 1}/${RUNS}: ${server.name}`);
        let repo = "bench/push";
        let digest;
        if (!s3Failures.s3push[kind]) {
          const push = await attempt("s3push", kind, () => measurePush(server, s3Slice, pushStreamed));
          if (push) record("s3push", kind, push.value);
          digest = push?.digest;
        }
        if (!digest) {
          // No blob pushed: its pull is measured on a blob put into its bucket directly.
          if (!seeded) {
            const blob = s3Slice.variant();
            await seedDistributionBlob({ endpoint: s3.endpoint, bucket: kind }, "bench/seeded", blob);
            seeded = blob.digest;
          }
          repo = "bench/seeded";
          digest = seeded;
        }
        if (s3Failures.s3pull[kind]) continue;
        const pull = await attempt("s3pull", kind, () => measurePull(server, repo, digest, S3_BLOB));
        if (pull !== undefined) record("s3pull", kind, pull);
      }
    }
    for (const kind of kinds) await s3Servers[kind].stop();
    await s3.stop();
  }

  // Step 6: each server started fresh on its own, RSS sampled during one 4 GiB streamed PATCH.
  const rss = {};
  if (SIZES.big > 0) {
    for (const kind of kinds) {
      const server = await startServer(kind);
      log(`${server.name}: pushing ${SIZES.big / MiB} MiB in one PATCH, sampling RSS`);
      rss[kind] = await measureRssDuringBigPush(server);
      extra.push(
        `${server.name} 4 GiB push: RSS baseline ${fmt(mib(rss[kind].baseline), 1)} MiB, sampled peak ${fmt(mib(rss[kind].peak), 1)} MiB, ` +
          `VmHWM ${fmt(mib(rss[kind].hwm), 1)} MiB, ${fmt(rss[kind].mbps)} MB/s`,
      );
      await server.stop();
    }
  }

  // Step 7: garbage collection (bench/registry-gc.mjs).
  const gcTable = await gcRows(kinds, log);
  // Step 8: the browsing API (Minato only: Distribution has none) over a seeded metadata database.
  const browse = await measureBrowsing(log).catch((error) => {
    extra.push(`browsing API: failed: ${error.message}`);
    return {};
  });

  // Table
  const med = (metric, kind) => (results[metric]?.[kind] ? median(results[metric][kind]) : undefined);
  const dist = kinds.includes("distribution");
  const d = (metric) => (dist ? med(metric, "distribution") : undefined);
  const s = (n) => `${n / MiB} MiB`;
  const lines = [];
  lines.push(`# Minato registry benchmark`);
  lines.push("");
  lines.push(`- date: ${startedAt.toISOString()}`);
  lines.push(`- nproc: ${nproc}`);
  lines.push(`- node: ${process.version}`);
  const load = (l) => l.map((x) => x.toFixed(2)).join(" ");
  lines.push(`- load average (1/5/15 min): ${load(loadBefore)} before, ${load(loadavg())} after (other work on the machine skews results)`);
  lines.push(
    `- distribution: ${distributionVersion ?? (args["minato-only"] ? "skipped (--minato-only)" : "not installed — Minato ran alone")}`,
  );
  lines.push(`- wrk: ${haveWrk ? wrkVersion : "not installed — manifest GET row skipped"}`);
  lines.push(
    `- mode: ${QUICK ? "quick" : "full"}; median of ${RUNS} run(s), servers interleaved; loopback ${HOST}, filesystem storage in fresh temp dirs`,
  );
  lines.push(
    `- S3 rows: @20minutes/s3rver (Node, objects stored as files) on ${HOST}, a fresh bucket per registry; ` +
      "Minato `--storage s3` (path-style, 8 MiB parts); Distribution's `s3` driver (regionendpoint, path-style, v4auth, " +
      `not secure, redirect disabled so that both serve blobs themselves); one ${s(S3_BLOB)} blob per push`,
  );
  lines.push(
    "- servers: Minato `--log-level warn`; Distribution log level warn, access log off, delete enabled, " +
      "`cache: blobdescriptor: inmemory` (as in its stock config)",
  );
  lines.push(
    `- load: manifest GET with \`wrk -c32 -t1 -d${SIZES.wrkSeconds}s\`; blob HEAD with bench/http-load.mjs ` +
      "(32 keep-alive connections, one process) because wrk 4.1 waits for a body after a HEAD response with Content-Length",
  );
  lines.push("");
  lines.push("| metric | Minato | Distribution | ratio (Minato/Distribution) | target |");
  lines.push("|---|---:|---:|---:|---|");
  lines.push(row(`push ${s(SIZES.single)}, POST+PATCH+PUT (MB/s)`, med("push", "minato"), d("push"), atLeast(4)));
  const failNote = (metric, kind) => {
    const failed = failures[metric]?.[kind]?.length ?? 0;
    if (!failed) return undefined;
    return `(${failed} of ${failed + (results[metric]?.[kind]?.length ?? 0)} attempts failed)`;
  };
  lines.push(
    row(`pull ${s(SIZES.single)}, GET (MB/s)`, med("pull", "minato"), d("pull"), atLeast(1), {
      minato: failNote("pull", "minato"),
      distribution: failNote("pull", "distribution"),
    }),
  );
  const s3Note = (metric, kind) => {
    if (s3Failures[metric][kind]) return `fails: ${s3Failures[metric][kind]}`;
    if (metric === "s3pull" && kind === "distribution" && seeded)
      return "(of a blob put into its bucket through the S3 API: its push fails)";
    return undefined;
  };
  for (const [metric, label] of [
    ["s3push", `push ${s(S3_BLOB)} to S3 (s3rver on loopback), POST+PATCH+PUT (MB/s)`],
    ["s3pull", `pull ${s(S3_BLOB)} from S3 (s3rver on loopback), GET (MB/s)`],
  ]) {
    lines.push(
      row(label, med(metric, "minato"), d(metric), undefined, {
        minato: s3Note(metric, "minato"),
        distribution: dist ? s3Note(metric, "distribution") : undefined,
      }),
    );
  }
  lines.push(row(`manifest GET, 32 conns, wrk (req/s)`, med("manifest", "minato"), d("manifest"), atLeast(3)));
  lines.push(row(`blob HEAD, 32 conns, http-load (req/s)`, med("head", "minato"), d("head"), atLeast(3)));
  lines.push(
    row(
      "manifest GET with metrics (Minato column) vs --no-metrics (Distribution column), wrk (req/s)",
      med("metricsOn", "minato"),
      med("metricsOff", "minato"),
      atLeast(0.9),
    ),
  );
  lines.push(
    row(`${SIZES.streams} concurrent pushes × ${s(SIZES.concurrent)} (aggregate MB/s)`, med("concurrent", "minato"), d("concurrent")),
  );
  lines.push(row(`push ${s(SIZES.single)}, monolithic POST+PUT (MB/s)`, med("monolithic", "minato"), d("monolithic")));
  const copyPlain = med("fileWrite", "machine");
  const copySynced = med("fileWriteSync", "machine");
  lines.push(
    `| reference: plain file copy of ${s(SIZES.single)} on the same filesystem, no server (MB/s) | ` +
      `${fmt(copyPlain)}; ${fmt(copySynced)} with fsync | — | — | the push path's ceiling on this machine |`,
  );
  if (SIZES.big > 0) {
    lines.push(
      row(`peak RSS during ${s(SIZES.big)} streamed push (MiB)`, mib(rss.minato?.peak), dist ? mib(rss.distribution?.peak) : undefined, {
        text: "Minato < 200 MiB",
        check: (m) => (m === undefined ? undefined : m < 200),
      }),
    );
    lines.push(row(`${s(SIZES.big)} streamed push (MB/s)`, rss.minato?.mbps, dist ? rss.distribution?.mbps : undefined));
  } else {
    lines.push(`| peak RSS during 4 GiB streamed push (MiB) | skipped (--quick) | skipped | — | Minato < 200 MiB |`);
  }
  lines.push(...gcTable);
  if (!dist) lines.push(`| (Distribution) | — | ${args["minato-only"] ? "skipped" : "not installed"} | — | ratios not computed |`);
  for (const [list, time] of Object.entries(browse)) {
    lines.push(
      row(
        `browsing API, first page of ${list} (${REPOSITORIES} repositories, ${TAGS} tags; ms, warm median)`,
        time.warm,
        undefined,
        {
          text: "< 100 ms",
          check: (m) => (m === undefined ? undefined : m < 100),
        },
        { minato: `(first request ${fmt(time.cold, 1)} ms; server CPU ${fmt(time.cpu, 1)} ms/request)` },
      ),
    );
  }
  lines.push("");
  if (/NotImplemented/.test(s3Failures.s3push.distribution ?? "")) {
    lines.push(
      "Distribution's S3 push fails on s3rver: in every request after an upload's POST, its s3 driver finds the upload's " +
        "multipart upload again with ListMultipartUploads (`GET /<bucket>?uploads&prefix=…`), which s3rver does not implement " +
        "(501 NotImplemented), so no blob upload can complete. Minato keeps the part list in its own upload state and needs no listing.",
    );
    lines.push("");
  }
  lines.push("Per-run values (MB/s or req/s):");
  lines.push("");
  for (const [metric, byKind] of Object.entries(results)) {
    for (const [kind, values] of Object.entries(byKind)) lines.push(`- ${metric} ${kind}: ${values.map((v) => fmt(v)).join(", ")}`);
  }
  for (const line of extra) lines.push(`- ${line}`);
  for (const [metric, byKind] of Object.entries(failures)) {
    for (const [kind, messages] of Object.entries(byKind)) {
      const distinct = [...new Set(messages.map((m) => m.replace(/sha256:[0-9a-f]{64}/g, "<digest>")))];
      lines.push(`- ${metric} ${kind}: ${messages.length} failed attempt(s): ${distinct.join("; ")}`);
    }
  }
  const report = `${lines.join("\n")}\n`;

  process.stdout.write(`\n${report}`);
  log(`written to ${await saveReport("registry", report, { quick: QUICK })}`);
}

try {
  await main();
} catch (error) {
  if (interrupted) await new Promise(() => {}); // the signal handler exits once cleanup is done
  process.stderr.write(`benchmark failed: ${error.stack ?? error}\n`);
  for (const server of running) process.stderr.write(`${server.name} stderr:\n${server.stderrTail() || "(empty)"}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
