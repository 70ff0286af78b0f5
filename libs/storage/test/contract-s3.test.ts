import { randomBytes, randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { S3BlobStore, type S3BlobStoreOptions, S3StorageError } from "@minato/storage/s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobStoreContract, CONTRACT_PART_SIZE, sha256 } from "./contract.js";
import { listKeys, S3_CREDENTIALS, S3TestServer, s3TestClient } from "./s3-server.js";

const BUCKET = "minato";
const MiB = 1024 * 1024;

let server: S3TestServer;
beforeAll(async () => {
  server = await S3TestServer.start([BUCKET, "spare"]);
});
afterAll(async () => {
  await server?.dispose();
});

function options(prefix: string, extra: Partial<S3BlobStoreOptions> = {}): S3BlobStoreOptions {
  return {
    bucket: BUCKET,
    prefix,
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
    partSize: CONTRACT_PART_SIZE,
    maxAttempts: 1,
    ...extra,
  };
}

/** Keys under `prefix`, listed through the S3 API. */
async function keysUnder(prefix: string): Promise<string[]> {
  const s3 = s3TestClient(server.endpoint);
  try {
    return await listKeys(s3, BUCKET, prefix);
  } finally {
    s3.destroy();
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

blobStoreContract("s3 (s3rver on loopback)", async () => {
  const prefix = `contract/${randomUUID()}`;
  const opened: S3BlobStore[] = [];
  const open = async () => {
    const store = await S3BlobStore.open(options(prefix));
    opened.push(store);
    return store;
  };
  return {
    store: await open(),
    reopen: open,
    // Objects through the S3 API; open multipart uploads from s3rver's directory (it cannot list them).
    uploadLeftovers: async () => [...(await keysUnder(`${prefix}/uploads/`)), ...(await server.openMultipartUploads(BUCKET, `${prefix}/`))],
    dispose: async () => {
      for (const store of opened) store.destroy();
    },
  };
});

describe("S3 driver", () => {
  it("keeps upload state and committed blobs under its prefix, and nothing else", async () => {
    const prefix = `layout/${randomUUID()}`;
    const store = await S3BlobStore.open(options(prefix));
    const id = randomUUID();
    await store.createUpload(id);
    await store.append(id, 0, Readable.from([randomBytes(CONTRACT_PART_SIZE + 10)]));
    const keys = await keysUnder(`${prefix}/`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).toMatch(new RegExp(`^${prefix}/uploads/${id}/(state\\.[01]|tail\\.\\d+)$`));
    // One state slot names the tail: at most one tail object exists besides it.
    expect(keys.filter((key) => key.includes("/tail.")).length).toBe(1);
    expect(await server.openMultipartUploads(BUCKET, `${prefix}/uploads/${id}/data`)).toHaveLength(1);
    await store.abort(id);
    expect(await keysUnder(`${prefix}/`)).toEqual([]);
    store.destroy();
  });

  it("copies a blob larger than one CopyObject part by part (UploadPartCopy)", async () => {
    const prefix = `copy/${randomUUID()}`;
    const store = await S3BlobStore.open(options(prefix, { maxCopyObjectSize: 6 * MiB, copyPartSize: 6 * MiB }));
    const data = randomBytes(11 * MiB + 7);
    const id = randomUUID();
    await store.createUpload(id);
    await store.append(id, 0, Readable.from([data.subarray(0, 4 * MiB), data.subarray(4 * MiB)]));
    expect(await store.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: data.byteLength });
    expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
    expect(await keysUnder(`${prefix}/uploads/`)).toEqual([]);
    expect(await server.openMultipartUploads(BUCKET, `${prefix}/`)).toEqual([]);
    store.destroy();
  });

  it("hands out presigned GET URLs only when redirects are enabled", async () => {
    const prefix = `redirect/${randomUUID()}`;
    const plain = await S3BlobStore.open(options(prefix));
    const redirecting = await S3BlobStore.open(options(prefix, { redirect: true }));
    const data = randomBytes(3000);
    const id = randomUUID();
    await plain.createUpload(id);
    await plain.append(id, 0, Readable.from([data]));
    await plain.commit(id, sha256(data));
    expect(await plain.redirectUrl(sha256(data))).toBeUndefined();
    const url = (await redirecting.redirectUrl(sha256(data))) as string;
    expect(url.startsWith(`${server.endpoint}/${BUCKET}/${prefix}/blobs/sha256/`)).toBe(true);
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    const part = await fetch(url, { headers: { Range: "bytes=10-19" } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(10, 20))).toBe(true);
    plain.destroy();
    redirecting.destroy();
  });

  it("refuses to open a bucket that does not exist, or with wrong credentials", async () => {
    await expect(S3BlobStore.open(options("x", { bucket: "no-such-bucket" }))).rejects.toThrow(/bucket no-such-bucket does not exist/);
    for (const credentials of [
      { accessKeyId: "S3RVER", secretAccessKey: "wrong" },
      { accessKeyId: "NOBODY", secretAccessKey: "S3RVER" },
    ]) {
      const error = await S3BlobStore.open(options("x", { credentials })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(S3StorageError);
      expect((error as S3StorageError).message).toMatch(/access denied/);
      expect((error as S3StorageError).status).toBe(403);
    }
  });

  it("throws clear errors, and is unhealthy, when the bucket disappears", async () => {
    const store = await S3BlobStore.open(options("gone", { bucket: "spare" }));
    expect(await store.healthy()).toBe(true);
    await rm(join(server.directory, "spare"), { recursive: true, force: true });
    expect(await store.healthy()).toBe(false);
    const error = await store.createUpload(randomUUID()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(S3StorageError);
    expect((error as S3StorageError).code).toBe("NoSuchBucket");
    expect((error as Error).message).toMatch(/bucket spare does not exist/);
    await expect(store.read(sha256(Buffer.from("x")))).rejects.toThrow(/NoSuchBucket/);
    store.destroy();
  });

  it("keeps the last durable state when S3 goes away in the middle of an append", async () => {
    const prefix = `midway/${randomUUID()}`;
    const store = await S3BlobStore.open(options(prefix));
    const data = randomBytes(3 * CONTRACT_PART_SIZE + 5);
    const id = randomUUID();
    await store.createUpload(id);
    const body = Readable.from(
      (async function* () {
        yield data.subarray(0, 6 * MiB);
        await server.stop();
        yield data.subarray(6 * MiB, 12 * MiB);
      })(),
      { objectMode: false },
    );
    try {
      const error = await store.append(id, 0, body).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(S3StorageError);
      expect((error as S3StorageError).code).toBe("Unreachable");
    } finally {
      await server.start();
    }
    // Either the first part made it before the server went away, or nothing did.
    const size = (await store.uploadSize(id)) as number;
    expect([0, CONTRACT_PART_SIZE]).toContain(size);
    await store.append(id, size, Readable.from([data.subarray(size)]));
    expect(await store.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: data.byteLength });
    expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
    store.destroy();
  });

  it("throws clear errors, and is unhealthy, while the endpoint is down; recovers when it is back", async () => {
    const prefix = `down/${randomUUID()}`;
    const store = await S3BlobStore.open(options(prefix));
    const data = randomBytes(CONTRACT_PART_SIZE + 1000);
    const id = randomUUID();
    await store.createUpload(id);
    await store.append(id, 0, Readable.from([data.subarray(0, 1000)]));
    await server.stop();
    try {
      expect(await store.healthy()).toBe(false);
      for (const attempt of [
        () => store.stat(sha256(data)),
        () => store.read(sha256(data)),
        () => store.createUpload(randomUUID()),
        () => store.append(id, 1000, Readable.from([data.subarray(1000)])),
        () => store.commit(id, sha256(data.subarray(0, 1000))),
        () => store.staleUploads(Date.now()),
      ]) {
        const error = await attempt().then(
          () => new Error("succeeded while S3 was down"),
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(S3StorageError);
        expect((error as S3StorageError).code).toBe("Unreachable");
        expect((error as Error).message).toMatch(/storage unreachable \(ECONNREFUSED\)/);
      }
    } finally {
      await server.start();
    }
    expect(await store.healthy()).toBe(true);
    // The failed append changed nothing durable: the session resumes where S3 last recorded it.
    expect(await store.uploadSize(id)).toBe(1000);
    await store.append(id, 1000, Readable.from([data.subarray(1000)]));
    expect(await store.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: data.byteLength });
    expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
    store.destroy();
  });
});
