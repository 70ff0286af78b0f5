import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { type Digest, type DigestAlgorithm, digestOf, MediaType } from "@minato/oci";
import { type Dispatcher, getGlobalDispatcher, request } from "undici";
import { expect, inject } from "vitest";
import { createBucket, deleteBucket, listKeys, S3_CREDENTIALS, s3TestClient } from "../../../libs/storage/test/s3-server.js";
import {
  type AuthConfig,
  createLogger,
  defaultAuthConfig,
  type RegistryConfig,
  type RunningRegistry,
  startRegistry,
} from "../src/index.js";
import type { StorageConfig } from "../src/storage.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Endpoint of the run's S3 server, provided by s3-setup.ts when MINATO_TEST_STORAGE=s3. */
    minatoS3Endpoint: string;
  }
}

// ---------------------------------------------------------------------------------------------
// Blob storage under test

/** Where test registries keep blobs: `MINATO_TEST_STORAGE=s3` puts each in a fresh bucket of the run's s3rver. */
export const TEST_STORAGE: "filesystem" | "s3" = (() => {
  const value = process.env.MINATO_TEST_STORAGE || "filesystem";
  if (value !== "filesystem" && value !== "s3") throw new Error(`MINATO_TEST_STORAGE must be filesystem or s3, not ${value}`);
  return value;
})();

/** The blob storage of one test registry, and what it takes to look into it and remove it. */
export interface TestStorage {
  /** The registry's `storage` setting; undefined for the filesystem under its data directory. */
  config: StorageConfig | undefined;
  /** The same as `minato-registry serve` flags. */
  args: string[];
  /** Every object the storage holds, as `blobs/…` and `uploads/…` paths (S3 keys under the prefix, or files under `dataDir`). */
  list(dataDir: string): Promise<string[]>;
  /** Deletes the bucket and everything in it (nothing for the filesystem: it goes with the data directory). */
  remove(): Promise<void>;
}

async function filesUnder(root: string, dir: string): Promise<string[]> {
  const entries = await readdir(join(root, dir), { withFileTypes: true }).catch(() => []);
  const files: string[] = [];
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) files.push(...(await filesUnder(root, path)));
    else files.push(path);
  }
  return files;
}

const S3_PREFIX = "registry";

/**
 * Storage for a new test registry: on S3, a bucket of its own on the run's S3 server (with a key
 * prefix, and the smallest part size so that MiB-sized test blobs take the multipart path).
 */
export async function testStorage(): Promise<TestStorage> {
  if (TEST_STORAGE === "filesystem") {
    return {
      config: undefined,
      args: [],
      list: async (dataDir) => [...(await filesUnder(dataDir, "blobs")), ...(await filesUnder(dataDir, "uploads"))],
      remove: async () => undefined,
    };
  }
  const endpoint = inject("minatoS3Endpoint");
  if (!endpoint) throw new Error("MINATO_TEST_STORAGE=s3, but no S3 server was started: run vitest with the root vitest.config.ts");
  const bucket = `test-${randomBytes(8).toString("hex")}`;
  const client = s3TestClient(endpoint);
  await createBucket(client, bucket);
  return {
    config: {
      driver: "s3",
      s3: {
        bucket,
        prefix: S3_PREFIX,
        region: "us-east-1",
        endpoint,
        forcePathStyle: true,
        credentials: S3_CREDENTIALS,
        redirect: false,
        partSize: 5 * 1024 * 1024,
      },
    },
    args: [
      ...["--storage", "s3", "--s3-bucket", bucket, "--s3-prefix", S3_PREFIX, "--s3-region", "us-east-1"],
      ...["--s3-endpoint", endpoint, "--s3-force-path-style", "true", "--s3-part-size", "5"],
      ...["--s3-access-key-id", S3_CREDENTIALS.accessKeyId, "--s3-secret-access-key", S3_CREDENTIALS.secretAccessKey],
    ],
    list: async () => (await listKeys(client, bucket, `${S3_PREFIX}/`)).map((key) => key.slice(S3_PREFIX.length + 1)),
    remove: async () => {
      try {
        await deleteBucket(client, bucket);
      } finally {
        client.destroy();
      }
    },
  };
}

export interface TestRegistry extends RunningRegistry {
  dataDir: string;
  storage: TestStorage;
  /** Closes the server and removes its data directory (and its bucket, on S3). */
  destroy(): Promise<void>;
}

export type TestOverrides = Partial<Omit<RegistryConfig, "auth">> & {
  /** Token authentication, on defaultAuthConfig(); absent, the registry is open (as on loopback by default). */
  auth?: Partial<AuthConfig>;
};

/**
 * A real registry on a loopback port chosen by the kernel, with its own data directory, and its blobs
 * there or (MINATO_TEST_STORAGE=s3) in a fresh bucket, unless `storage` is overridden.
 */
export async function startTestRegistry(testOverrides: TestOverrides = {}): Promise<TestRegistry> {
  const { auth, ...overrides } = testOverrides;
  const dataDir = await mkdtemp(join(tmpdir(), "minato-registry-test-"));
  const removeDataDir = () => rm(dataDir, { recursive: true, force: true });
  const storage = await testStorage().catch(async (error: unknown) => {
    await removeDataDir();
    throw error;
  });
  const config: RegistryConfig = {
    host: "127.0.0.1",
    port: 0,
    dataDir,
    deletesEnabled: true,
    logLevel: "silent",
    uploadTtlMs: 86_400_000,
    maxManifestBytes: 4 * 1024 * 1024,
    ...(storage.config ? { storage: storage.config } : {}),
    ...overrides,
    ...(auth ? { auth: defaultAuthConfig(auth) } : {}),
  };
  const registry = await startRegistry(config, createLogger(config.logLevel)).catch(async (error: unknown) => {
    await storage.remove();
    await removeDataDir();
    throw error;
  });
  return {
    ...registry,
    dataDir,
    storage,
    async destroy() {
      await registry.close();
      await storage.remove();
      await removeDataDir();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

export type Response = Dispatcher.ResponseData;
type Body = string | Buffer | Uint8Array | Readable | null;

export interface CallOptions {
  headers?: Record<string, string>;
  body?: Body;
}

/** A request through undici's `request`; `path` may be relative to the registry or absolute (a Location). */
export function call(registry: TestRegistry, method: string, path: string, options: CallOptions = {}): Promise<Response> {
  const url = new URL(path, registry.url);
  return request(url, { method: method as Dispatcher.HttpMethod, headers: options.headers, body: options.body ?? null });
}

/**
 * A request whose path is sent byte for byte: `request(url)` resolves `..` and `%2e%2e` segments on the
 * client, which would hide exactly what a traversal test means to send.
 */
export function callRaw(registry: TestRegistry, method: string, path: string, options: CallOptions = {}): Promise<Response> {
  return getGlobalDispatcher().request({
    origin: registry.url,
    path,
    method: method as Dispatcher.HttpMethod,
    headers: options.headers,
    body: options.body ?? null,
  });
}

export async function bytes(res: Response): Promise<Buffer> {
  return Buffer.from(await res.body.arrayBuffer());
}

export function header(res: Response, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(", ") : value;
}

export interface ErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/**
 * Asserts a spec error response (distribution-spec "Error Codes"): the status, a JSON body of the form
 * `{"errors":[{"code","message",...}]}`, and that every entry carries `code`. Returns the entries.
 */
export async function expectError(res: Response, status: number, code: string): Promise<ErrorEntry[]> {
  const text = await res.body.text();
  expect(res.statusCode, text).toBe(status);
  expect(header(res, "content-type")).toMatch(/^application\/json/);
  const body = JSON.parse(text) as { errors: ErrorEntry[] };
  expect(Object.keys(body)).toEqual(["errors"]);
  expect(Array.isArray(body.errors)).toBe(true);
  expect(body.errors.length).toBeGreaterThan(0);
  for (const entry of body.errors) {
    expect(entry.code).toMatch(/^[A-Z_]+$/);
    expect(typeof entry.message).toBe("string");
    expect(entry.code).toBe(code);
  }
  return body.errors;
}

/** HEAD answers carry no body; the status alone is the answer. */
export async function headStatus(registry: TestRegistry, path: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await call(registry, "HEAD", path, { headers });
  await res.body.dump();
  return res.statusCode;
}

// ---------------------------------------------------------------------------------------------
// Content helpers

export const EMPTY_JSON = Buffer.from("{}");
/** image-spec manifest.md "Guidance for an Empty Descriptor". */
export const EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

export function descriptorOf(mediaType: string, data: Uint8Array, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: digestOf(data), size: data.byteLength, ...extra };
}

export function randomBlob(size: number): Buffer {
  return randomBytes(size);
}

/** Pushes a blob with a single POST (end-4b) and returns its digest. */
export async function pushBlob(
  registry: TestRegistry,
  name: string,
  data: Uint8Array,
  algorithm: DigestAlgorithm = "sha256",
): Promise<Digest> {
  const digest = digestOf(data, algorithm);
  const res = await call(registry, "POST", `/v2/${name}/blobs/uploads/?digest=${digest}`, {
    headers: { "content-type": "application/octet-stream" },
    body: Buffer.from(data),
  });
  const text = await res.body.text();
  expect(res.statusCode, text).toBe(201);
  return digest;
}

export interface PushedManifest {
  res: Response;
  digest: Digest;
  bytes: Buffer;
}

/** PUTs a manifest (object, JSON text or bytes); the Content-Type defaults to the manifest's mediaType. */
export async function putManifest(
  registry: TestRegistry,
  name: string,
  reference: string,
  manifest: object | string | Buffer,
  contentType?: string,
): Promise<PushedManifest> {
  const body = Buffer.isBuffer(manifest) ? manifest : Buffer.from(typeof manifest === "string" ? manifest : JSON.stringify(manifest));
  const type =
    contentType ??
    (typeof manifest === "object" && !Buffer.isBuffer(manifest) ? (manifest as { mediaType?: string }).mediaType : undefined);
  const res = await call(registry, "PUT", `/v2/${name}/manifests/${reference}`, {
    headers: type ? { "content-type": type } : {},
    body,
  });
  return { res, digest: digestOf(body), bytes: body };
}

/** PUTs a manifest and asserts 201. */
export async function pushManifest(
  registry: TestRegistry,
  name: string,
  reference: string,
  manifest: object | string | Buffer,
  contentType?: string,
): Promise<PushedManifest> {
  const pushed = await putManifest(registry, name, reference, manifest, contentType);
  const text = await pushed.res.body.text();
  expect(pushed.res.statusCode, text).toBe(201);
  return pushed;
}

export interface ImageOptions {
  tag?: string;
  layers?: number;
  artifactType?: string;
  configMediaType?: string;
  annotations?: Record<string, string>;
  subject?: Descriptor;
}

export interface PushedImage extends PushedManifest {
  manifest: Record<string, unknown>;
  config: Descriptor;
  layers: Descriptor[];
  layerData: Buffer[];
}

/** Pushes a small, unique OCI image (config + layers) and its manifest, by tag or else by digest. */
export async function pushImage(registry: TestRegistry, name: string, options: ImageOptions = {}): Promise<PushedImage> {
  const configData = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", nonce: randomBytes(8).toString("hex") }));
  const configType = options.configMediaType ?? MediaType.ociConfig;
  await pushBlob(registry, name, configData);
  const layerData: Buffer[] = [];
  const layers: Descriptor[] = [];
  for (let i = 0; i < (options.layers ?? 1); i++) {
    const data = randomBlob(64 + i);
    await pushBlob(registry, name, data);
    layerData.push(data);
    layers.push(descriptorOf(MediaType.ociLayerGzip, data));
  }
  const config = descriptorOf(configType, configData);
  const manifest: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers };
  if (options.artifactType) manifest.artifactType = options.artifactType;
  if (options.subject) manifest.subject = options.subject;
  if (options.annotations) manifest.annotations = options.annotations;
  const body = Buffer.from(JSON.stringify(manifest));
  const pushed = await pushManifest(registry, name, options.tag ?? digestOf(body), body, MediaType.ociManifest);
  return { ...pushed, manifest, config, layers, layerData };
}

/** Location headers may be relative; resolves one against the registry. */
export function location(res: Response): string {
  const value = header(res, "location");
  expect(value).toBeDefined();
  return value as string;
}

/** Starts an upload session (end-4a) and returns its Location. */
export async function startUpload(registry: TestRegistry, name: string, query = ""): Promise<string> {
  const res = await call(registry, "POST", `/v2/${name}/blobs/uploads/${query}`, { headers: { "content-length": "0" } });
  await res.body.dump();
  expect(res.statusCode).toBe(202);
  return location(res);
}

/** Appends `?digest=` (or `&digest=`) to an upload Location that may already carry a query. */
export function withDigest(uploadLocation: string, digest: string): string {
  return `${uploadLocation}${uploadLocation.includes("?") ? "&" : "?"}digest=${digest}`;
}

/** The session id at the end of an upload Location. */
export function uploadId(uploadLocation: string): string {
  return new URL(uploadLocation, "http://x").pathname.split("/").at(-1) as string;
}

/** Whether the blob store holds `digest` at its content address (independently of any repository link). */
export async function stored(registry: TestRegistry, digest: Digest): Promise<boolean> {
  return (await registry.deps.storage.stat(digest)) !== undefined;
}

/** Every object in the registry's blob storage (`blobs/…`, `uploads/…`), on either driver. */
export function storedObjects(registry: TestRegistry): Promise<string[]> {
  return registry.storage.list(registry.dataDir);
}

/** Upload sessions the registry holds for `name`. */
export async function sessionsOf(registry: TestRegistry, name: string): Promise<string[]> {
  const all = await registry.deps.metadata.staleUploads(Number.MAX_SAFE_INTEGER);
  return all.filter((s) => s.repository === name).map((s) => s.id);
}

// ---------------------------------------------------------------------------------------------
// Raw sockets, for requests undici refuses to send (bodies that disagree with Content-Length)

export interface RawConnection {
  /** Writes bytes to the socket. */
  write(data: string | Buffer): Promise<void>;
  /** Half-closes the socket: the server sees end of stream. */
  end(): void;
  /** Everything the server sent, once it closed the connection (or an error ended it). */
  closed: Promise<Buffer>;
  /** Resolves once the received bytes satisfy `predicate`. */
  until(predicate: (received: Buffer) => boolean): Promise<Buffer>;
}

/** A raw connection to the registry, optionally from another loopback address (`localAddress`). */
export function rawConnection(registry: TestRegistry, localAddress?: string): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: registry.port, host: "127.0.0.1", ...(localAddress ? { localAddress } : {}) });
    const received: Buffer[] = [];
    const waiters: { predicate: (b: Buffer) => boolean; resolve: (b: Buffer) => void }[] = [];
    const check = () => {
      const all = Buffer.concat(received);
      for (const w of [...waiters]) {
        if (w.predicate(all)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(all);
        }
      }
    };
    const closed = new Promise<Buffer>((done) => {
      socket.on("close", () => {
        done(Buffer.concat(received));
        for (const w of waiters) w.resolve(Buffer.concat(received));
      });
    });
    socket.on("data", (chunk: Buffer) => {
      received.push(chunk);
      check();
    });
    socket.on("error", () => {
      /* a reset after the server gave up on us is expected; `closed` still resolves */
    });
    socket.once("connect", () =>
      resolve({
        write: (data) => new Promise<void>((ok, fail) => socket.write(data, (error) => (error ? fail(error) : ok()))),
        end: () => socket.end(),
        closed,
        until: (predicate) =>
          new Promise<Buffer>((done) => {
            waiters.push({ predicate, resolve: done });
            check();
          }),
      }),
    );
    socket.once("error", reject);
  });
}

/** Status codes of every HTTP response in a raw byte stream, in order. */
export function statusCodes(raw: Buffer): number[] {
  return [...raw.toString("latin1").matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}
