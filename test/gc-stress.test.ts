// The collector racing pushes: the registry binary collects garbage continuously with a zero grace
// period while 8 clients push images that share layers (uploading or mounting them, or skipping them
// when HEAD says they exist), delete tags and manifests and push them again, and an operator's `gc`
// runs beside it in another process. Afterwards every tag pulls completely with skopeo (copied to an
// OCI layout, every digest checked). Then the same with the registry SIGKILLed and restarted
// repeatedly, mid-sweep whenever the kill lands in one.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listBlobFiles, verifyBlobStore } from "./support/data-dir.js";
import { type HttpResponse, request, sha256 } from "./support/http.js";
import { layoutBlobs, layoutRef, OCI } from "./support/oci-layout.js";
import { REGISTRY_BIN, RegistryProcess } from "./support/registry-process.js";
import { Skopeo } from "./support/skopeo.js";

const WORKERS = 8;
const PHASE_MS = 20_000;
const REPOSITORIES = ["stress/one", "stress/two"];
const TAGS_PER_WORKER = 3;
/** Layers every worker draws from, so images share and re-use them across repositories. */
const POOL = Array.from({ length: 10 }, (_, i) => randomBytes(2048 + i * 1500));
// The 8 clients stand for 8 machines but share one address; a SIGKILL abandons the sessions in flight.
const COLLECTOR_ARGS = ["--gc-interval", "250ms", "--gc-grace", "0", "--max-uploads-per-client", "100000"];

interface Manifest {
  body: Buffer;
  digest: string;
  blobs: Buffer[];
}

/** What each tag must point at: tags belong to one worker each, so the final state is known exactly. */
type Expected = Map<string, Map<string, Manifest>>;

const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)] as T;

function buildManifest(worker: number, serial: number): Manifest {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", worker, serial, nonce: randomBytes(4).toString("hex") }));
  const layers = [...new Set([pick(POOL), pick(POOL), pick(POOL)])];
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI.manifest,
      config: { mediaType: OCI.config, digest: sha256(config), size: config.byteLength },
      layers: layers.map((l) => ({ mediaType: OCI.layerGzip, digest: sha256(l), size: l.byteLength })),
    }),
  );
  return { body, digest: sha256(body), blobs: [config, ...layers] };
}

/** A request that a registry restart may interrupt: retried until the registry answers. */
async function send(
  url: () => string,
  method: string,
  path: string,
  options: Parameters<typeof request>[2] = {},
): Promise<HttpResponse & { retried: boolean }> {
  const deadline = Date.now() + 60_000;
  for (let retried = false; ; retried = true) {
    try {
      return { ...(await request(method, `${url()}${path}`, options)), retried };
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** HEAD, then a cross-repository mount or an upload (a session, or a single POST), until the blob is there. */
async function pushBlob(url: () => string, repository: string, blob: Buffer): Promise<void> {
  const digest = sha256(blob);
  for (;;) {
    if ((await send(url, "HEAD", `/v2/${repository}/blobs/${digest}`)).status === 200) return;
    if (Math.random() < 0.4) {
      const other = REPOSITORIES.find((r) => r !== repository) as string;
      const mounted = await send(url, "POST", `/v2/${repository}/blobs/uploads/?mount=${digest}&from=${other}`);
      if (mounted.status === 201) return;
      const location = mounted.headers.location as string;
      const done = await send(url, "PUT", `${location}${location.includes("?") ? "&" : "?"}digest=${digest}`, { body: blob });
      if (done.status === 201) return;
      // Only a PUT a restart interrupted (its bytes partly appended, or already committed) may fail: HEAD again.
      if (!done.retried) throw new Error(`upload PUT ${done.status}: ${done.body}`);
      continue;
    }
    const uploaded = await send(url, "POST", `/v2/${repository}/blobs/uploads/?digest=${digest}`, {
      body: blob,
      headers: { "Content-Type": "application/octet-stream" },
    });
    if (uploaded.status === 201) return;
    throw new Error(`monolithic upload ${uploaded.status}: ${uploaded.body}`);
  }
}

/** Pushes like a real client: HEAD each blob, mount it from the other repository or upload it, then PUT. */
async function push(url: () => string, repository: string, tag: string, manifest: Manifest): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    for (const blob of manifest.blobs) await pushBlob(url, repository, blob);
    const put = await send(url, "PUT", `/v2/${repository}/manifests/${tag}`, {
      body: manifest.body,
      headers: { "Content-Type": OCI.manifest },
    });
    if (put.status === 201) return attempt;
    // The collector took a blob between the HEAD and the PUT (grace 0): the client uploads again.
    if (put.status !== 400 || !put.body.toString().includes("MANIFEST_BLOB_UNKNOWN"))
      throw new Error(`manifest PUT ${put.status}: ${put.body}`);
  }
}

type Stats = { pushes: number; retries: number; deletes: number };

async function pushTag(url: () => string, id: number, repository: string, tag: string, expected: Expected, stats: Stats) {
  const manifest = buildManifest(id, stats.pushes);
  const attempts = await push(url, repository, tag, manifest);
  (expected.get(repository) as Map<string, Manifest>).set(tag, manifest);
  stats.pushes++;
  stats.retries += attempts - 1;
}

/** Deletes the tag, or its manifest by digest (a worker's tags never share a manifest). */
async function deleteTag(url: () => string, repository: string, tag: string, expected: Expected, stats: Stats) {
  const tags = expected.get(repository) as Map<string, Manifest>;
  const current = tags.get(tag) as Manifest;
  const path = Math.random() < 0.5 ? `/v2/${repository}/manifests/${tag}` : `/v2/${repository}/manifests/${current.digest}`;
  const res = await send(url, "DELETE", path);
  // 404 after a retry: the DELETE a restart interrupted had been applied.
  if (res.status !== 202 && !(res.status === 404 && res.retried)) throw new Error(`DELETE ${path}: ${res.status} ${res.body}`);
  tags.delete(tag);
  stats.deletes++;
}

/**
 * One client: first push, delete and push again a tag (so every worker does each at least once,
 * however loaded the machine), then random pushes and deletes of its own tags until `until`.
 */
async function worker(url: () => string, id: number, until: number, expected: Expected, stats: Stats) {
  const first = pick(REPOSITORIES);
  await pushTag(url, id, first, `w${id}-t0`, expected, stats);
  await deleteTag(url, first, `w${id}-t0`, expected, stats);
  await pushTag(url, id, first, `w${id}-t0`, expected, stats);
  while (Date.now() < until) {
    const repository = pick(REPOSITORIES);
    const tag = `w${id}-t${Math.floor(Math.random() * TAGS_PER_WORKER)}`;
    if (expected.get(repository)?.has(tag) && Math.random() < 0.35) await deleteTag(url, repository, tag, expected, stats);
    else await pushTag(url, id, repository, tag, expected, stats);
  }
}

function runGc(dataDir: string): Promise<string> {
  const args = [REGISTRY_BIN, "gc", "--data", dataDir, "--grace", "0", "--delete-untagged"];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { timeout: 60_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`gc failed: ${stderr}`)) : resolve(stdout),
    );
  });
}

/** Every tag is exactly what its worker last pushed, and pulls completely through skopeo. */
async function verifyEverything(registry: RegistryProcess, skopeo: Skopeo, expected: Expected, layout: string): Promise<number> {
  let verified = 0;
  for (const repository of REPOSITORIES) {
    const tags = expected.get(repository) as Map<string, Manifest>;
    const list = await request("GET", `${registry.url}/v2/${repository}/tags/list`);
    const listed = list.status === 200 ? (JSON.parse(list.body.toString()) as { tags: string[] }).tags : [];
    expect(listed.sort()).toEqual([...tags.keys()].sort());
    for (const [tag, { digest }] of tags) {
      const ref = `${repository.replace("/", "-")}-${tag}`;
      await skopeo.run([
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        `docker://${registry.authority}/${repository}:${tag}`,
        `oci:${layout}:${ref}`,
      ]);
      const descriptor = await layoutRef(layout, ref);
      expect(descriptor.digest, `${repository}:${tag}`).toBe(digest);
      verified++;
    }
  }
  // Every blob skopeo wrote hashes to its name, and every manifest's blobs are there.
  const blobs = await layoutBlobs(layout);
  for (const [digest, data] of blobs) expect(sha256(data)).toBe(digest);
  for (const repository of REPOSITORIES) {
    for (const { digest } of (expected.get(repository) as Map<string, Manifest>).values()) {
      const manifest = JSON.parse((blobs.get(digest) as Buffer).toString()) as { config: { digest: string }; layers: { digest: string }[] };
      for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) expect(blobs.has(d), d).toBe(true);
    }
  }
  return verified;
}

function freshExpected(): Expected {
  return new Map(REPOSITORIES.map((r) => [r, new Map<string, Manifest>()]));
}

describe("garbage collection racing pushes", () => {
  let skopeo: Skopeo;
  let work: string;
  beforeAll(async () => {
    skopeo = await Skopeo.create();
    work = await mkdtemp(join(tmpdir(), "minato-gc-stress-"));
  });
  afterAll(async () => {
    await skopeo?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("loses no blob while 8 clients push, delete and re-push with a zero-grace collector running continuously", async () => {
    const registry = await RegistryProcess.start({ args: COLLECTOR_ARGS });
    try {
      const expected = freshExpected();
      const stats: Stats = { pushes: 0, retries: 0, deletes: 0 };
      const until = Date.now() + PHASE_MS;
      const url = () => registry.url;
      const operator = (async () => {
        const runs: string[] = [];
        while (Date.now() < until) runs.push(await runGc(registry.dataDir));
        return runs;
      })();
      await Promise.all(Array.from({ length: WORKERS }, (_, id) => worker(url, id, until, expected, stats)));
      const gcRuns = await operator;
      expect(stats.pushes).toBeGreaterThanOrEqual(2 * WORKERS);
      expect(stats.deletes).toBeGreaterThanOrEqual(WORKERS);
      expect(gcRuns.length).toBeGreaterThan(0);
      expect(registry.errorLogs()).toEqual([]);

      const verified = await verifyEverything(registry, skopeo, expected, join(work, "layout-1"));
      expect(verified).toBeGreaterThan(0);

      // Exact reclamation: once collected, storage holds the blobs of the tagged images and nothing else.
      await runGc(registry.dataDir);
      const referenced = new Set<string>();
      for (const tags of expected.values())
        for (const manifest of tags.values()) for (const blob of manifest.blobs) referenced.add(sha256(blob));
      expect(await verifyBlobStore(registry.dataDir)).toEqual([...referenced].sort());
      console.log(
        `gc stress: ${stats.pushes} pushes (${stats.retries} retried after a collection), ${stats.deletes} deletes, ${gcRuns.length} gc runs beside, ${verified} tags verified`,
      );
    } finally {
      await registry.dispose();
    }
  }, 240_000);

  it("loses no blob when the registry is SIGKILLed mid-collection and restarted, again and again", async () => {
    const registry = await RegistryProcess.start({ args: COLLECTOR_ARGS });
    try {
      const expected = freshExpected();
      const stats: Stats = { pushes: 0, retries: 0, deletes: 0 };
      const until = Date.now() + PHASE_MS;
      const url = () => registry.url;
      let kills = 0;
      let midSweep = 0;
      const db = new Database(join(registry.dataDir, "registry.db"), { readonly: true });
      const marked = db.prepare("SELECT count(*) FROM blobs WHERE deleting_at IS NOT NULL").pluck();
      const killer = (async () => {
        while (Date.now() < until - 3000) {
          await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 500));
          // A heap of garbage (loose blobs) makes sweeps long enough to be caught in the act: the kill
          // comes the moment blobs are marked as being deleted (or after two seconds at most).
          const junk = Promise.all(
            Array.from({ length: 120 }, () => {
              const blob = randomBytes(512);
              return send(url, "POST", `/v2/stress/junk/blobs/uploads/?digest=${sha256(blob)}`, { body: blob });
            }),
          );
          const deadline = Date.now() + 2000;
          while (Date.now() < deadline && (marked.get() as number) === 0) await new Promise((resolve) => setImmediate(resolve));
          await registry.stop("SIGKILL");
          kills++;
          if ((marked.get() as number) > 0) midSweep++;
          await registry.restart();
          await junk;
        }
      })();
      await Promise.all(Array.from({ length: WORKERS }, (_, id) => worker(url, id, until, expected, stats)));
      await killer;
      db.close();
      expect(kills).toBeGreaterThanOrEqual(2);
      expect(midSweep).toBeGreaterThan(0);
      expect(stats.pushes).toBeGreaterThanOrEqual(2 * WORKERS);

      const verified = await verifyEverything(registry, skopeo, expected, join(work, "layout-2"));
      expect(verified).toBeGreaterThan(0);
      // The collector finished what the kills interrupted, and the store holds only verified blobs.
      await runGc(registry.dataDir);
      const after = new Database(join(registry.dataDir, "registry.db"), { readonly: true });
      expect(after.prepare("SELECT count(*) FROM blobs WHERE deleting_at IS NOT NULL").pluck().get()).toBe(0);
      after.close();
      await verifyBlobStore(registry.dataDir);
      expect((await listBlobFiles(registry.dataDir)).length).toBeGreaterThan(0);
      console.log(
        `gc stress with kills: ${kills} SIGKILLs (${midSweep} mid-sweep), ${stats.pushes} pushes, ${stats.deletes} deletes, ${verified} tags verified`,
      );
    } finally {
      await registry.dispose();
    }
  }, 240_000);
});
