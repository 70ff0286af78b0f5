// Garbage collection rows of bench/registry.mjs: a registry holding many small images, half of them
// deleted, then one full collection. Minato collects online (`minato-registry gc` beside the running
// registry, while manifest PUTs go on, whose latency is compared with the same PUTs on an idle
// registry); Distribution collects offline (`docker-registry garbage-collect`), which needs the
// registry stopped or read-only: a push racing its sweep can lose a blob.

import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const sha256 = (data) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const REPOSITORIES = 20;
const LAYERS = 4;
const CONCURRENCY = 8;

/** Bytes of every file under `dir`. */
async function bytesUnder(dir) {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** The images: a unique config and LAYERS unique small layers each (images × 5 blobs). */
export function makeImages(count) {
  return Array.from({ length: count }, (_, i) => {
    const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", image: i, nonce: randomBytes(8).toString("hex") }));
    const layers = Array.from({ length: LAYERS }, () => randomBytes(1024 + Math.floor(Math.random() * 3072)));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
        layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(l), size: l.length })),
      }),
    );
    return { repository: `gc/r${i % REPOSITORIES}`, tag: `t${i}`, config, layers, manifest, digest: sha256(manifest) };
  });
}

async function pool(items, work) {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

async function pushImage(server, send, image, tag = image.tag) {
  // POST a session, then PUT the bytes (Distribution 2.8 has no single-POST upload).
  for (const blob of [image.config, ...image.layers]) {
    const start = await send(server.agent, "POST", `${server.url}/v2/${image.repository}/blobs/uploads/`, {
      headers: { "Content-Length": "0" },
      keep: true,
    });
    if (start.status !== 202) throw new Error(`upload POST to ${server.name}: HTTP ${start.status} ${start.body}`);
    const finish = new URL(start.headers.location, server.url);
    finish.searchParams.set("digest", sha256(blob));
    const res = await send(server.agent, "PUT", finish.href, {
      headers: { "Content-Type": "application/octet-stream", "Content-Length": String(blob.length) },
      body: blob,
      keep: true,
    });
    if (res.status !== 201) throw new Error(`upload PUT to ${server.name}: HTTP ${res.status} ${res.body}`);
  }
  return putManifest(server, send, image, tag);
}

async function putManifest(server, send, image, tag) {
  const started = process.hrtime.bigint();
  const res = await send(server.agent, "PUT", `${server.url}/v2/${image.repository}/manifests/${tag}`, {
    headers: { "Content-Type": OCI_MANIFEST, "Content-Length": String(image.manifest.length) },
    body: image.manifest,
    keep: true,
  });
  if (res.status !== 201) throw new Error(`manifest PUT to ${server.name}: HTTP ${res.status} ${res.body}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/** Fills a registry: every image pushed and tagged, then the first half deleted by manifest digest. */
async function fill(server, send, images) {
  await pool(images, (image) => pushImage(server, send, image));
  const doomed = images.slice(0, images.length / 2);
  await pool(doomed, async (image) => {
    const res = await send(server.agent, "DELETE", `${server.url}/v2/${image.repository}/manifests/${image.digest}`, { keep: true });
    if (res.status !== 202) throw new Error(`manifest DELETE on ${server.name}: HTTP ${res.status} ${res.body}`);
  });
}

const p99 = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)];
};

/** Manifest PUTs re-tagging kept images (their blobs stay linked), one at a time, until `until()` says stop. */
async function putLoop(server, send, kept, until, minimum) {
  const latencies = [];
  for (let i = 0; latencies.length < minimum || !until(); i++) {
    const image = kept[i % kept.length];
    latencies.push(await putManifest(server, send, image, `retag-${i % 50}`));
  }
  return latencies;
}

function run(command, argv) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    execFile(command, argv, { maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${argv.join(" ")}: ${stderr || error.message}`));
      else resolve({ stdout, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    });
  });
}

/**
 * Runs the GC rows. `startServer(kind, s3, extraArgs)` and `send` are bench/registry.mjs's; Minato's
 * binary is `minatoBin`. Returns { minato, distribution } results (distribution undefined when absent).
 */
export async function benchGarbageCollection({ kinds, startServer, send, minatoBin, imageCount, log }) {
  const images = makeImages(imageCount);
  const kept = images.slice(images.length / 2);
  const results = {};

  // Minato: online, beside the running registry, while manifest PUTs go on.
  {
    const server = await startServer("minato", undefined, ["--gc", "false"]);
    log(`GC: pushing ${images.length} images (${images.length * (LAYERS + 1)} blobs) to Minato, deleting half`);
    await fill(server, send, images);
    const dataDir = join(server.dataDir, "data");
    const before = await bytesUnder(join(dataDir, "blobs"));
    const idle = await putLoop(server, send, kept, () => true, 400);
    let done = false;
    const collection = run(process.execPath, [minatoBin, "gc", "--data", dataDir, "--grace", "0"]).finally(() => {
      done = true;
    });
    const during = await putLoop(server, send, kept, () => done, 20);
    const { stdout, seconds } = await collection;
    const summary = /^gc: (\d+) blobs, (\d+) bytes freed/m.exec(stdout);
    const after = await bytesUnder(join(dataDir, "blobs"));
    results.minato = {
      seconds,
      blobs: Number(summary?.[1]),
      reportedBytes: Number(summary?.[2]),
      diskFreed: before - after,
      idleP99: p99(idle),
      duringP99: p99(during),
      putsDuring: during.length,
    };
    log(`GC: Minato ${JSON.stringify(results.minato)}`);
    await server.stop();
  }

  // Distribution: offline — the registry stopped, then garbage-collect on its configuration.
  if (kinds.includes("distribution")) {
    const server = await startServer("distribution");
    log(`GC: pushing ${images.length} images to Distribution, deleting half`);
    await fill(server, send, images);
    await server.halt();
    const dataDir = join(server.dataDir, "data");
    const before = await bytesUnder(join(dataDir, "docker/registry/v2/blobs"));
    const { stdout, seconds } = await run("docker-registry", ["garbage-collect", join(server.dataDir, "config.yml")]);
    const after = await bytesUnder(join(dataDir, "docker/registry/v2/blobs"));
    const deleted = /(\d+) blobs and \d+ manifests eligible for deletion/.exec(stdout)?.[1];
    results.distribution = { seconds, blobs: deleted === undefined ? undefined : Number(deleted), diskFreed: before - after };
    log(`GC: Distribution ${JSON.stringify(results.distribution)}`);
    await server.stop();
  }
  return results;
}
