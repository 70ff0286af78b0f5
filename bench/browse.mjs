#!/usr/bin/env node
// Browsing API at scale: 5,000 repositories and one repository of 2,000 tags, seeded straight into the
// metadata database (the registry's own SqliteMetadataStore) and the blob store, then the time to serve
// the first page of each list by a `minato-registry serve` process on 127.0.0.1.
//
//   node bench/browse.mjs        standalone (needs the build: node scripts/setup.mjs)
//   bench/registry.mjs imports measureBrowsing() for its table row.

import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseManifest } from "@minato/oci";
import { FilesystemBlobStore } from "@minato/storage";
import { freePort, HOST, median, stopProcess } from "./common.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MINATO_BIN = join(ROOT, "apps", "registry", "bin", "minato-registry.js");
export const REPOSITORIES = 5_000;
export const TAGS = 2_000;
const CONFIGS = 50;
const WARM_RUNS = 50;
/** Linux clock ticks per second for /proc/<pid>/stat (USER_HZ is 100 on every Linux architecture). */
const TICKS_PER_SECOND = 100;

const sha256 = (data) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

export async function seed(dataDir) {
  const { SqliteMetadataStore } = await import(pathToFileURL(join(ROOT, "apps/registry/dist/metadata/sqlite.js")).href);
  const metadata = new SqliteMetadataStore(join(dataDir, "registry.db"));
  const blobs = await FilesystemBlobStore.open(dataDir);
  // A few real configurations in the blob store: the tag list reads them for creation dates and platforms.
  const configs = [];
  for (let i = 0; i < CONFIGS; i++) {
    const body = Buffer.from(
      JSON.stringify({
        created: new Date(Date.UTC(2024, 0, 1 + i)).toISOString(),
        architecture: "amd64",
        os: "linux",
        config: { Cmd: ["/bin/sh"] },
        rootfs: { type: "layers", diff_ids: [] },
        history: [{ created_by: `RUN step ${i}` }],
      }),
    );
    const digest = sha256(body);
    const id = randomUUID();
    await blobs.createUpload(id);
    await blobs.append(id, 0, Readable.from([body]));
    await blobs.commit(id, digest);
    configs.push({ digest, size: body.length });
  }
  const push = async (repository, n, tags) => {
    const config = configs[n % CONFIGS];
    const layer = { digest: sha256(`${repository}:${n}`), size: 1_000_000 + n };
    await metadata.linkBlob(repository, config.digest, config.size);
    await metadata.linkBlob(repository, layer.digest, layer.size);
    const content = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
      }),
    );
    const summary = parseManifest(content);
    const missing = await metadata.putManifest(
      repository,
      { digest: sha256(content), mediaType: summary.mediaType, content, summary },
      tags,
    );
    if (missing.length > 0) throw new Error(`seeding ${repository}: missing ${JSON.stringify(missing)}`);
  };
  for (let r = 0; r < REPOSITORIES; r++) await push(`org${r % 50}/service-${String(r).padStart(5, "0")}`, r, ["latest"]);
  for (let t = 0; t < TAGS; t++) await push("big/app", t, [`v1.${String(t).padStart(4, "0")}`]);
  await metadata.close();
}

function get(port, path) {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    const req = request({ host: HOST, port, path, headers: { accept: "application/json" } }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        if (res.statusCode !== 200) fail(new Error(`GET ${path}: ${res.statusCode} ${Buffer.concat(chunks)}`));
        else done({ ms, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      });
    });
    req.on("error", fail);
    req.end();
  });
}

/** CPU time (user + system) the process has used, in ms: unlike wall time, other load on the machine does not inflate it. */
async function cpuMs(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

async function waitReady(port, child) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`minato-registry exited with ${child.exitCode}`);
    try {
      await get(port, "/health");
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error("minato-registry did not become ready");
}

/** Seeds, serves, and times the first page of each list: the first (cold) request and the median of warm ones. */
export async function measureBrowsing(log = (line) => process.stderr.write(`${line}\n`)) {
  const dataDir = await mkdtemp(join(tmpdir(), "minato-bench-browse-"));
  let child;
  try {
    const seedStart = Date.now();
    await seed(dataDir);
    log(`browse: seeded ${REPOSITORIES} repositories and ${TAGS} tags in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);
    const port = await freePort();
    child = spawn(process.execPath, [MINATO_BIN, "serve", "--listen", `${HOST}:${port}`, "--data", dataDir, "--log-level", "warn"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    await waitReady(port, child);
    const lists = {
      repositories: { path: "/api/v1/repositories", expect: (b) => b.total === REPOSITORIES + 1 && b.items.length === 25 },
      "repositories by last push": { path: "/api/v1/repositories?sort=pushed", expect: (b) => b.items.length === 25 },
      tags: { path: "/api/v1/repositories/big%2Fapp/tags?pageSize=50", expect: (b) => b.total === TAGS && b.items.length === 50 },
      "tags by push date": {
        path: "/api/v1/repositories/big%2Fapp/tags?sort=pushed&pageSize=50",
        expect: (b) => b.items[0].created !== null,
      },
    };
    const results = {};
    for (const [name, list] of Object.entries(lists)) {
      const cold = await get(port, list.path);
      if (!list.expect(cold.body)) throw new Error(`${name}: unexpected answer ${JSON.stringify(cold.body).slice(0, 300)}`);
      const warm = [];
      const cpuBefore = await cpuMs(child.pid);
      for (let i = 0; i < WARM_RUNS; i++) warm.push((await get(port, list.path)).ms);
      const cpu = ((await cpuMs(child.pid)) - cpuBefore) / WARM_RUNS;
      results[name] = { cold: cold.ms, warm: median(warm), cpu };
      log(
        `browse: ${name}: first ${cold.ms.toFixed(1)} ms, then median ${median(warm).toFixed(1)} ms, server CPU ${cpu.toFixed(1)} ms/request`,
      );
    }
    return results;
  } finally {
    if (child) await stopProcess(child);
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const results = await measureBrowsing();
  process.stdout.write(
    `load average: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(", ")}\n`,
  );
  process.stdout.write(
    "| first page (API) | first request (ms) | warm median (ms) | server CPU per request (ms) | target |\n|---|---:|---:|---:|---|\n",
  );
  for (const [name, r] of Object.entries(results)) {
    const met = r.warm < 100 ? "✅ met" : "❌ missed";
    process.stdout.write(`| ${name} | ${r.cold.toFixed(1)} | ${r.warm.toFixed(1)} | ${r.cpu.toFixed(1)} | < 100 ms ${met} |\n`);
  }
}
