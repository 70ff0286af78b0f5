// End to end on S3 storage: the registry binary, in its own process, stores blobs in an
// S3-compatible server (s3rver) that runs in another process on loopback.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3_CREDENTIALS, S3TestServer } from "../libs/storage/test/s3-server.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const REGISTRY_BIN = join(ROOT, "apps/registry/bin/minato-registry.js");
const SKOPEO = "/usr/bin/skopeo";
const BUCKET = "registry";
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request on its own connection; `body` may be a buffer or written by `write`. */
function send(
  method: string,
  url: string,
  options: { headers?: Record<string, string>; body?: Buffer; write?: (req: ReturnType<typeof httpRequest>) => Promise<void> } = {},
): Promise<Response> {
  return new Promise((resolvePromise, reject) => {
    const headers = { ...options.headers };
    if (options.body) headers["Content-Length"] = String(options.body.byteLength);
    const req = httpRequest(url, { method, headers, agent: false });
    req.once("error", reject);
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.once("end", () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.once("error", reject);
    });
    if (options.write) options.write(req).then(() => req.end(), reject);
    else req.end(options.body);
  });
}

function write(req: ReturnType<typeof httpRequest>, chunk: Buffer): Promise<void> {
  return new Promise((resolveWrite, reject) => req.write(chunk, (error) => (error ? reject(error) : resolveWrite())));
}

function sha256(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** Polls `check` until it returns true; fails after `limitMs` (a bound on waiting, not a timing assertion). */
async function eventually(what: string, check: () => Promise<boolean>, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `minato-registry serve --storage s3 …` in a child process on a loopback port. */
class RegistryProcess {
  #child: ChildProcess | undefined;
  output = "";

  constructor(
    readonly port: number,
    readonly dataDir: string,
    readonly args: string[],
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.#child?.pid as number;
  }

  /** Runs the binary; resolves once GET /v2/ answers, or rejects with its output when it exits first. */
  async start(): Promise<void> {
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("MINATO_") && !key.startsWith("AWS_")));
    const child = spawn(
      process.execPath,
      [REGISTRY_BIN, "serve", "--listen", `127.0.0.1:${this.port}`, "--data", this.dataDir, "--log-level", "warn", ...this.args],
      { cwd: this.dataDir, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    this.output = "";
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-64 * 1024);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const exited = new Promise<never>((_, reject) =>
      child.once("exit", (code) => reject(new Error(`registry exited with ${code}:\n${this.output}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([
      exited,
      eventually(
        "registry answers GET /v2/",
        () =>
          send("GET", `${this.url}/v2/`).then(
            (response) => response.status === 200,
            () => false,
          ),
        20_000,
      ),
    ]);
  }

  /** Exit code of a run that is expected to fail at startup. */
  async run(): Promise<number | null> {
    const child = spawn(
      process.execPath,
      [REGISTRY_BIN, "serve", "--listen", `127.0.0.1:${this.port}`, "--data", this.dataDir, "--log-level", "warn", ...this.args],
      { cwd: this.dataDir, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.output = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      this.output += chunk.toString("utf8");
    });
    return new Promise((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(signal);
    await exited;
  }
}

/** Resident and peak resident memory of a process, from /proc/<pid>/status (bytes). */
async function memory(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

// ── a one-layer OCI image layout, written by hand ───────────────────────────────────────────────

function tar(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, "utf8");
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${content.byteLength.toString(8).padStart(11, "0")}\0`, 124);
  header.write(
    `${Math.floor(Date.UTC(2024, 0, 1) / 1000)
      .toString(8)
      .padStart(11, "0")}\0`,
    136,
  );
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const padding = Buffer.alloc((512 - (content.byteLength % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

interface Layout {
  dir: string;
  manifestDigest: string;
  layer: Buffer;
  layerDigest: string;
  configDigest: string;
}

async function writeLayout(dir: string, fileSize: number): Promise<Layout> {
  const blobs = join(dir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const put = async (bytes: Buffer) => {
    const digest = sha256(bytes);
    await writeFile(join(blobs, digest.slice(7)), bytes);
    return digest;
  };
  const archive = tar("hello.bin", randomBytes(fileSize));
  const layer = gzipSync(archive, { level: 1 });
  const layerDigest = await put(layer);
  const config = Buffer.from(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(archive)] }, config: {} }),
  );
  const configDigest = await put(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layerDigest, size: layer.byteLength }],
    }),
  );
  const manifestDigest = await put(manifest);
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: manifestDigest,
          size: manifest.byteLength,
          annotations: { "org.opencontainers.image.ref.name": "v1" },
        },
      ],
    }),
  );
  return { dir, manifestDigest, layer, layerDigest, configDigest };
}

function skopeo(home: string, args: string[]): Promise<string> {
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, XDG_RUNTIME_DIR: home, TMPDIR: home };
  return new Promise((resolveRun, reject) => {
    execFile(SKOPEO, ["--insecure-policy", ...args], { env, timeout: 300_000, maxBuffer: 16 * MiB }, (error, stdout, stderr) =>
      error ? reject(new Error(`skopeo ${args.join(" ")}: ${stderr || error.message}`)) : resolveRun(stdout),
    );
  });
}

// ── the suite ───────────────────────────────────────────────────────────────────────────────────

describe("registry on S3 storage (s3rver on loopback)", () => {
  let s3: S3TestServer;
  let work: string;
  let registry: RegistryProcess;

  const s3Args = (prefix: string) => [
    "--storage",
    "s3",
    "--s3-bucket",
    BUCKET,
    "--s3-prefix",
    prefix,
    "--s3-endpoint",
    s3.endpoint,
    "--s3-region",
    "us-east-1",
    // Switches work bare (issue 23 #2): `--s3-force-path-style` alone is true.
    "--s3-force-path-style",
    "--s3-access-key-id",
    S3_CREDENTIALS.accessKeyId,
    "--s3-secret-access-key",
    S3_CREDENTIALS.secretAccessKey,
  ];

  /** Objects under a prefix of the bucket, straight from s3rver's directory (keys, without its suffixes). */
  async function objectsUnder(prefix: string): Promise<string[]> {
    const base = join(s3.directory, BUCKET);
    const found: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.name.endsWith("._S3rver_object")) found.push(path.slice(base.length + 1, -"._S3rver_object".length));
      }
    };
    await walk(join(base, prefix));
    return found.sort();
  }

  beforeAll(async () => {
    s3 = await S3TestServer.start([BUCKET]);
    work = await mkdtemp(join(tmpdir(), "minato-s3-e2e-"));
    await mkdir(join(work, "data"));
    registry = new RegistryProcess(await freePort(), join(work, "data"), [...s3Args("main"), "--no-s3-redirect"]);
    await registry.start();
  });

  afterAll(async () => {
    await registry?.kill();
    await s3?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("round-trips an image with skopeo: push, then pull byte-identical blobs", { timeout: 300_000 }, async () => {
    const home = join(work, "skopeo");
    await mkdir(home, { recursive: true });
    // A 12 MiB layer of incompressible bytes: more than one 8 MiB part.
    const image = await writeLayout(join(work, "image"), 12 * MiB);
    const ref = `docker://127.0.0.1:${registry.port}/e2e/app:v1`;
    await skopeo(home, ["copy", "--dest-tls-verify=false", `oci:${image.dir}:v1`, ref]);

    // The blobs are in the bucket, not under the data directory.
    const stored = await objectsUnder("main/blobs");
    for (const digest of [image.layerDigest, image.configDigest])
      expect(stored).toContain(`main/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`);
    expect(existsSync(join(registry.dataDir, "blobs"))).toBe(false);
    expect(await objectsUnder("main/uploads")).toEqual([]);
    expect(await s3.openMultipartUploads(BUCKET, "main/")).toEqual([]);

    const pulled = join(work, "pulled");
    await skopeo(home, ["copy", "--src-tls-verify=false", ref, `oci:${pulled}:v1`]);
    const index = JSON.parse(await readFile(join(pulled, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(image.manifestDigest);
    for (const digest of [image.manifestDigest, image.layerDigest, image.configDigest]) {
      const original = await readFile(join(image.dir, "blobs/sha256", digest.slice(7)));
      const copy = await readFile(join(pulled, "blobs/sha256", digest.slice(7)));
      expect(copy.equals(original), digest).toBe(true);
    }

    // Range reads go through the driver's ranged GET.
    const range = await send("GET", `${registry.url}/v2/e2e/app/blobs/${image.layerDigest}`, {
      headers: { Range: "bytes=8388600-8388700" },
    });
    expect(range.status).toBe(206);
    expect(range.body.equals(image.layer.subarray(8388600, 8388701))).toBe(true);
  });

  it("completes an upload after the registry was killed in the middle of it", { timeout: 300_000 }, async () => {
    const data = randomBytes(23 * MiB + 12_345);
    const digest = sha256(data);
    const start = await send("POST", `${registry.url}/v2/e2e/restart/blobs/uploads/`, { headers: { "Content-Length": "0" } });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.location as string, registry.url).toString();
    const first = 7 * MiB;
    const patched = await send("PATCH", location, {
      headers: { "Content-Type": "application/octet-stream", "Content-Range": `0-${first - 1}` },
      body: data.subarray(0, first),
    });
    expect(patched.status).toBe(202);

    // A streamed PATCH that never finishes: the registry dies while receiving it.
    const streaming = send("PATCH", location, {
      headers: { "Content-Type": "application/octet-stream" },
      write: async (req) => {
        for (let at = first; at < first + 10 * MiB; at += MiB) await write(req, data.subarray(at, at + MiB));
        await registry.kill("SIGKILL");
        req.destroy();
      },
    });
    await expect(streaming).rejects.toThrow();
    await registry.start();

    const status = await send("GET", location);
    expect(status.status).toBe(204);
    const offset = Number(/^0-(\d+)$/.exec(status.headers.range as string)?.[1]) + 1;
    // What was durable: the first PATCH, plus whole 8 MiB parts of the killed one.
    expect(offset).toBeGreaterThanOrEqual(first);
    expect(offset).toBeLessThanOrEqual(first + 10 * MiB);
    expect(offset === first || offset % (8 * MiB) === 0).toBe(true);

    const rest = await send("PATCH", location, {
      headers: { "Content-Type": "application/octet-stream", "Content-Range": `${offset}-${data.byteLength - 1}` },
      body: data.subarray(offset),
    });
    expect(rest.status, `${rest.body.toString()}\n${registry.output}`).toBe(202);
    const put = await send("PUT", `${location}${location.includes("?") ? "&" : "?"}digest=${digest}`, {
      headers: { "Content-Length": "0" },
    });
    expect(put.status).toBe(201);
    const blob = await send("GET", `${registry.url}/v2/e2e/restart/blobs/${digest}`);
    expect(blob.status).toBe(200);
    expect(blob.body.equals(data)).toBe(true);
    // The session's state, tails and data object are gone. (A kill between CreateMultipartUpload and
    // the state write that records it would orphan that multipart upload: S3 lifecycle rules reap those.)
    expect(await objectsUnder("main/uploads")).toEqual([]);
  });

  it("pushes a 1 GiB blob streamed from a generator with the registry's RSS under 250 MiB", { timeout: 900_000 }, async () => {
    const size = GiB;
    const block = randomBytes(MiB);
    const hasher = createHash("sha256");
    let peakRss = 0;
    const sampler = setInterval(() => {
      memory(registry.pid).then(
        ({ rss }) => {
          peakRss = Math.max(peakRss, rss);
        },
        () => undefined,
      );
    }, 100);
    const started = Date.now();
    try {
      const start = await send("POST", `${registry.url}/v2/e2e/big/blobs/uploads/`, { headers: { "Content-Length": "0" } });
      expect(start.status).toBe(202);
      const location = new URL(start.headers.location as string, registry.url).toString();
      const patched = await send("PATCH", location, {
        headers: { "Content-Type": "application/octet-stream", "Content-Length": String(size) },
        write: async (req) => {
          for (let i = 0; i < size / MiB; i++) {
            block.writeUInt32BE(i, 0); // every MiB differs
            hasher.update(block);
            await write(req, block);
          }
        },
      });
      expect(patched.status).toBe(202);
      const digest = `sha256:${hasher.digest("hex")}`;
      const uploaded = Date.now();
      const put = await send("PUT", `${location}${location.includes("?") ? "&" : "?"}digest=${digest}`, {
        headers: { "Content-Length": "0" },
      });
      expect(put.status).toBe(201);
      const committed = Date.now();

      // Pull it back, hashing the stream.
      const pullHash = createHash("sha256");
      let pulledBytes = 0;
      const pullStatus = await new Promise<number>((resolvePull, reject) => {
        const req = httpRequest(`${registry.url}/v2/e2e/big/blobs/${digest}`, { agent: false }, (res) => {
          res.on("data", (chunk: Buffer) => {
            pullHash.update(chunk);
            pulledBytes += chunk.byteLength;
          });
          res.once("end", () => resolvePull(res.statusCode ?? 0));
          res.once("error", reject);
        });
        req.once("error", reject);
        req.end();
      });
      const pulled = Date.now();
      const { hwm } = await memory(registry.pid);
      peakRss = Math.max(peakRss, hwm);
      console.log(
        `1 GiB on S3 (s3rver): PATCH ${((uploaded - started) / 1000).toFixed(1)} s, commit ${((committed - uploaded) / 1000).toFixed(1)} s, ` +
          `pull ${((pulled - committed) / 1000).toFixed(1)} s; registry peak RSS ${(peakRss / MiB).toFixed(0)} MiB`,
      );
      expect(pullStatus).toBe(200);
      expect(pulledBytes).toBe(size);
      expect(`sha256:${pullHash.digest("hex")}`).toBe(digest);
      expect(peakRss).toBeGreaterThan(0);
      expect(peakRss).toBeLessThan(250 * MiB);
    } finally {
      clearInterval(sampler);
    }
  });

  it("reports 503 on /health and fails requests with 5xx and a clear log line while S3 is down", { timeout: 120_000 }, async () => {
    expect((await send("GET", `${registry.url}/health`)).status).toBe(200);
    await s3.stop();
    try {
      expect((await send("GET", `${registry.url}/health`)).status).toBe(503);
      const start = await send("POST", `${registry.url}/v2/e2e/down/blobs/uploads/`, { headers: { "Content-Length": "0" } });
      expect(start.status).toBeGreaterThanOrEqual(500);
      const blob = await send("GET", `${registry.url}/v2/e2e/restart/blobs/${sha256(Buffer.from("x"))}`);
      expect(blob.status).toBe(404); // unknown in metadata: no storage call needed
      await eventually("the log line", async () => /storage unreachable \(ECONNREFUSED\)/.test(registry.output), 10_000);
    } finally {
      await s3.start();
    }
    await eventually("/health recovers", async () => (await send("GET", `${registry.url}/health`)).status === 200, 30_000);
  });

  it("cleans up cancelled and abandoned sessions, multipart uploads included", { timeout: 180_000 }, async () => {
    const janitor = new RegistryProcess(await freePort(), join(work, "data-ttl"), [...s3Args("ttl"), "--upload-ttl", "2s"]);
    await mkdir(janitor.dataDir, { recursive: true });
    await janitor.start();
    try {
      const open = async () => {
        const start = await send("POST", `${janitor.url}/v2/e2e/ttl/blobs/uploads/`, { headers: { "Content-Length": "0" } });
        const location = new URL(start.headers.location as string, janitor.url).toString();
        const patched = await send("PATCH", location, {
          headers: { "Content-Type": "application/octet-stream" },
          body: randomBytes(9 * MiB),
        });
        expect(patched.status).toBe(202);
        return location;
      };
      const cancelled = await open();
      const abandoned = await open();
      expect(await s3.openMultipartUploads(BUCKET, "ttl/")).toHaveLength(2);

      expect((await send("DELETE", cancelled)).status).toBe(204);
      expect((await send("GET", cancelled)).status).toBe(404);
      await eventually("the janitor expires the abandoned session", async () => (await send("GET", abandoned)).status === 404);
      await eventually(
        "nothing is left in the bucket",
        async () => (await objectsUnder("ttl")).length === 0 && (await s3.openMultipartUploads(BUCKET, "ttl/")).length === 0,
      );
    } finally {
      await janitor.kill();
    }
  });

  it("redirects blob GETs to presigned S3 URLs when --s3-redirect is on", { timeout: 120_000 }, async () => {
    const redirecting = new RegistryProcess(await freePort(), join(work, "data-redirect"), ["--s3-redirect", ...s3Args("redirect")]);
    await mkdir(redirecting.dataDir, { recursive: true });
    await redirecting.start();
    try {
      const data = randomBytes(100_000);
      const digest = sha256(data);
      const pushed = await send("POST", `${redirecting.url}/v2/e2e/redirect/blobs/uploads/?digest=${digest}`, {
        headers: { "Content-Type": "application/octet-stream" },
        body: data,
      });
      expect(pushed.status).toBe(201);
      const head = await send("HEAD", `${redirecting.url}/v2/e2e/redirect/blobs/${digest}`);
      expect(head.status).toBe(200);
      expect(head.headers["content-length"]).toBe(String(data.byteLength));
      const get = await send("GET", `${redirecting.url}/v2/e2e/redirect/blobs/${digest}`);
      expect(get.status).toBe(307);
      const location = get.headers.location as string;
      expect(location.startsWith(`${s3.endpoint}/${BUCKET}/redirect/blobs/sha256/`)).toBe(true);
      const direct = await send("GET", location, { headers: { Range: "bytes=1000-1999" } });
      expect(direct.status).toBe(206);
      expect(direct.body.equals(data.subarray(1000, 2000))).toBe(true);
      expect((await send("GET", location)).body.equals(data)).toBe(true);
    } finally {
      await redirecting.kill();
    }
  });

  it("refuses to start on a missing bucket or with wrong credentials, saying why", async () => {
    const dataDir = join(work, "data-bad");
    await mkdir(dataDir, { recursive: true });
    const missing = new RegistryProcess(await freePort(), dataDir, [...s3Args("x"), "--s3-bucket", "no-such-bucket"]);
    expect(await missing.run()).not.toBe(0);
    expect(missing.output).toMatch(/bucket no-such-bucket does not exist/);
    const denied = new RegistryProcess(await freePort(), dataDir, [...s3Args("x"), "--s3-secret-access-key", "wrong"]);
    expect(await denied.run()).not.toBe(0);
    expect(denied.output).toMatch(/access denied/);
  });
});
