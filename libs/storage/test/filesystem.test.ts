import { execFile } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { type Digest, digestOf } from "@minato/oci";
import {
  BlobNotFoundError,
  DigestMismatchError,
  FilesystemBlobStore,
  UploadNotFoundError,
  UploadOffsetError,
  UploadTooLargeError,
} from "@minato/storage";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const run = promisify(execFile);

function body(...chunks: Buffer[]): Readable {
  return Readable.from(chunks, { objectMode: false });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A body that delivers `data`, then fails as an aborted request does. */
function failingBody(data: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(data);
      } else {
        this.destroy(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
      }
    },
  });
}

describe("FilesystemBlobStore", () => {
  let root: string;
  let store: FilesystemBlobStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "minato-fs-store-"));
    store = await FilesystemBlobStore.open(root);
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  function blobPath(digest: Digest): string {
    const [algorithm, encoded] = digest.split(":") as [string, string];
    return join(root, "blobs", algorithm, encoded.slice(0, 2), encoded);
  }

  async function upload(data: Buffer, digest: Digest = digestOf(data)): Promise<Digest> {
    const id = randomUUID();
    await store.createUpload(id);
    expect(await store.append(id, 0, body(data))).toBe(data.byteLength);
    expect(await store.commit(id, digest)).toEqual({ digest, size: data.byteLength });
    return digest;
  }

  it("creates its layout on open and reports itself healthy", async () => {
    expect((await stat(join(root, "blobs"))).isDirectory()).toBe(true);
    expect((await stat(join(root, "uploads"))).isDirectory()).toBe(true);
    expect(await store.healthy()).toBe(true);
    await rm(join(root, "blobs"), { recursive: true });
    expect(await store.healthy()).toBe(false);
  });

  describe("append, commit, abort", () => {
    it("appends in several requests, commits to the content address, and forgets the session", async () => {
      const data = randomBytes(10_000);
      const id = randomUUID();
      await store.createUpload(id);
      expect(await store.uploadSize(id)).toBe(0);
      expect(existsSync(join(root, "uploads", id))).toBe(true);
      expect(await store.append(id, 0, body(data.subarray(0, 1)))).toBe(1);
      expect(await store.append(id, 1, body(data.subarray(1, 4000), data.subarray(4000, 7777)))).toBe(7777);
      expect(await store.append(id, 7777, body(data.subarray(7777)))).toBe(10_000);
      expect(await store.uploadSize(id)).toBe(10_000);

      const digest = digestOf(data);
      expect(await store.commit(id, digest)).toEqual({ digest, size: 10_000 });
      expect((await readFile(blobPath(digest))).equals(data)).toBe(true);
      expect(await store.stat(digest)).toEqual({ size: 10_000 });
      expect((await readAll(await store.read(digest))).equals(data)).toBe(true);
      expect(await store.uploadSize(id)).toBeUndefined();
      expect(await readdir(join(root, "uploads"))).toEqual([]);
      await expect(store.append(id, 10_000, body(Buffer.from("x")))).rejects.toBeInstanceOf(UploadNotFoundError);
      await expect(store.commit(id, digest)).rejects.toBeInstanceOf(UploadNotFoundError);
    });

    it("commits an empty upload", async () => {
      const digest = await upload(Buffer.alloc(0));
      expect(await store.stat(digest)).toEqual({ size: 0 });
      expect((await readAll(await store.read(digest))).byteLength).toBe(0);
    });

    it("commits under a sha512 digest", async () => {
      const data = randomBytes(3000);
      const digest = await upload(data, digestOf(data, "sha512"));
      expect(existsSync(blobPath(digest))).toBe(true);
      expect((await readAll(await store.read(digest))).equals(data)).toBe(true);
      expect(await store.stat(digestOf(data))).toBeUndefined();
    });

    it("commits the same content from two sessions", async () => {
      const data = randomBytes(500);
      await upload(data);
      await upload(data);
      expect((await readAll(await store.read(digestOf(data)))).equals(data)).toBe(true);
    });

    it("abort discards the session and its bytes", async () => {
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(randomBytes(100)));
      await store.abort(id);
      expect(await store.uploadSize(id)).toBeUndefined();
      expect(await readdir(join(root, "uploads"))).toEqual([]);
      await expect(store.append(id, 0, body(Buffer.from("x")))).rejects.toBeInstanceOf(UploadNotFoundError);
      await store.abort(id); // idempotent
    });

    it("refuses to create a session twice", async () => {
      const id = randomUUID();
      await store.createUpload(id);
      await expect(store.createUpload(id)).rejects.toThrow();
    });

    it("rejects an append at any offset but the current size, with the expected offset", async () => {
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(Buffer.from("0123456789")));
      for (const offset of [0, 5, 9, 11, 1000]) {
        const error = await store.append(id, offset, body(Buffer.from("x"))).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UploadOffsetError);
        expect((error as UploadOffsetError).expected).toBe(10);
      }
      expect(await store.uploadSize(id)).toBe(10);
      await store.append(id, 10, body(Buffer.from("abc")));
      expect(await store.commit(id, digestOf("0123456789abc"))).toEqual({ digest: digestOf("0123456789abc"), size: 13 });
    });

    it("bounds an append by maxBytes and keeps the session resumable", async () => {
      const data = randomBytes(100);
      const id = randomUUID();
      await store.createUpload(id);
      await expect(store.append(id, 0, body(data.subarray(0, 60), data.subarray(60)), 80)).rejects.toBeInstanceOf(UploadTooLargeError);
      const size = (await store.uploadSize(id)) as number;
      expect(size).toBeLessThanOrEqual(80);
      expect((await readFile(join(root, "uploads", id))).equals(data.subarray(0, size))).toBe(true);
      await store.append(id, size, body(data.subarray(size)));
      expect(await store.commit(id, digestOf(data))).toEqual({ digest: digestOf(data), size: 100 });
    });

    it("keeps the bytes of a failed request body and hashes correctly after the resume", async () => {
      const data = randomBytes(5000);
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(data.subarray(0, 1000)));
      await expect(store.append(id, 1000, failingBody(data.subarray(1000, 3000)))).rejects.toThrow();
      const size = (await store.uploadSize(id)) as number;
      expect(size).toBeGreaterThanOrEqual(1000);
      expect(size).toBeLessThanOrEqual(3000);
      await store.append(id, size, body(data.subarray(size)));
      expect(await store.commit(id, digestOf(data))).toEqual({ digest: digestOf(data), size: 5000 });
      expect((await readFile(blobPath(digestOf(data)))).equals(data)).toBe(true);
    });
  });

  describe("digest mismatch", () => {
    it("leaves nothing at either content address and the session as it was", async () => {
      const data = randomBytes(2048);
      const wrong = digestOf(randomBytes(2048));
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(data));

      const error = await store.commit(id, wrong).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DigestMismatchError);
      expect((error as DigestMismatchError).expected).toBe(wrong);
      expect((error as DigestMismatchError).actual).toBe(digestOf(data));
      expect(existsSync(blobPath(wrong))).toBe(false);
      expect(existsSync(blobPath(digestOf(data)))).toBe(false);
      expect(await store.stat(wrong)).toBeUndefined();
      await expect(store.read(wrong)).rejects.toBeInstanceOf(BlobNotFoundError);

      expect(await store.uploadSize(id)).toBe(2048);
      expect(await store.commit(id, digestOf(data))).toEqual({ digest: digestOf(data), size: 2048 });
    });

    it("a sha512 mismatch likewise stores nothing", async () => {
      const data = randomBytes(100);
      const wrong = digestOf(randomBytes(100), "sha512");
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(data));
      await expect(store.commit(id, wrong)).rejects.toBeInstanceOf(DigestMismatchError);
      expect(existsSync(blobPath(wrong))).toBe(false);
      expect(existsSync(blobPath(digestOf(data, "sha512")))).toBe(false);
    });
  });

  describe("range reads", () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    let digest: Digest;
    beforeEach(async () => {
      digest = await upload(data);
    });

    it("reads inclusive ranges: first byte, last byte, middle, whole", async () => {
      for (const [start, end] of [
        [0, 0],
        [999, 999],
        [10, 19],
        [0, 999],
        [500, 999],
      ] as const) {
        const part = await readAll(await store.read(digest, { start, end }));
        expect(part.equals(data.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
      }
    });

    it("reads a range of a large blob across read-buffer boundaries", async () => {
      const big = randomBytes(1024 * 1024 + 17);
      const bigDigest = await upload(big);
      const start = 256 * 1024 - 3;
      const end = 768 * 1024 + 5;
      expect((await readAll(await store.read(bigDigest, { start, end }))).equals(big.subarray(start, end + 1))).toBe(true);
    });

    it("throws BlobNotFoundError for a missing blob, and after delete", async () => {
      await expect(store.read(digestOf("missing"))).rejects.toBeInstanceOf(BlobNotFoundError);
      expect(await store.delete(digest)).toBe(true);
      expect(await store.delete(digest)).toBe(false);
      await expect(store.read(digest, { start: 0, end: 1 })).rejects.toBeInstanceOf(BlobNotFoundError);
      expect(await store.stat(digest)).toBeUndefined();
    });

    it("releases every file handle it opens (checked under a forced garbage collection)", async () => {
      // A FileHandle left for the collector closes its descriptor again when collected: EBADF kills the
      // process, or a descriptor reused by another file is closed under it. The child process reads the
      // blob in every way the registry does, forces collections, and must exit cleanly and silently.
      const script = `
        import { FilesystemBlobStore } from "@minato/storage";
        const store = await FilesystemBlobStore.open(${JSON.stringify(root)});
        const digest = ${JSON.stringify(digest)};
        for (let i = 0; i < 20; i++) {
          for await (const _ of await store.read(digest)) {}
          for await (const _ of await store.read(digest, { start: 1, end: 10 })) {}
          const abandoned = await store.read(digest);
          abandoned.destroy();
          await new Promise((resolve) => abandoned.once("close", resolve));
        }
        for (let i = 0; i < 5; i++) {
          globalThis.gc();
          await new Promise((resolve) => setImmediate(resolve));
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
        console.log("done");
      `;
      const result = await run(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], {
        cwd: join(import.meta.dirname, ".."),
      }).catch((error: { code?: number; stdout?: string; stderr?: string }) => error);
      expect(result.stderr).not.toMatch(/file descriptor|EBADF/i);
      expect((result as { code?: number }).code ?? 0).toBe(0);
      expect(result.stdout?.trim()).toBe("done");
    });
  });

  describe("restart (a new instance on the same root)", () => {
    it("continues an upload started before the restart and recomputes its hash", async () => {
      const data = randomBytes(300_000);
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(data.subarray(0, 100_000)));

      const restarted = await FilesystemBlobStore.open(root);
      expect(await restarted.uploadSize(id)).toBe(100_000);
      await restarted.append(id, 100_000, body(data.subarray(100_000, 250_000)));
      await restarted.append(id, 250_000, body(data.subarray(250_000)));
      expect(await restarted.commit(id, digestOf(data))).toEqual({ digest: digestOf(data), size: 300_000 });
      expect((await readFile(blobPath(digestOf(data)))).equals(data)).toBe(true);
    });

    it("commits correctly from the old instance after the new one appended (its running hash is stale)", async () => {
      const data = randomBytes(9000);
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(data.subarray(0, 3000)));
      const other = await FilesystemBlobStore.open(root);
      await other.append(id, 3000, body(data.subarray(3000, 6000)));
      await store.append(id, 6000, body(data.subarray(6000)));
      expect(await store.commit(id, digestOf(data))).toEqual({ digest: digestOf(data), size: 9000 });
    });

    it("commits from the old instance when only the new one appended since", async () => {
      const data = randomBytes(4000);
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(data.subarray(0, 1000)));
      const other = await FilesystemBlobStore.open(root);
      await other.append(id, 1000, body(data.subarray(1000)));
      const wrong = digestOf(data.subarray(0, 1000));
      await expect(store.commit(id, wrong)).rejects.toBeInstanceOf(DigestMismatchError);
      expect(await store.commit(id, digestOf(data))).toEqual({ digest: digestOf(data), size: 4000 });
    });

    it("sees blobs committed before the restart", async () => {
      const data = randomBytes(100);
      const digest = await upload(data);
      const restarted = await FilesystemBlobStore.open(root);
      expect(await restarted.stat(digest)).toEqual({ size: 100 });
      expect((await readAll(await restarted.read(digest, { start: 90, end: 99 }))).equals(data.subarray(90))).toBe(true);
    });

    it("computes a sha256 and a sha512 digest of the same session correctly after a restart", async () => {
      const data = randomBytes(7777);
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(data));
      const restarted = await FilesystemBlobStore.open(root);
      const sha512 = `sha512:${createHash("sha512").update(data).digest("hex")}` as Digest;
      await expect(restarted.commit(id, digestOf(randomBytes(1), "sha512"))).rejects.toBeInstanceOf(DigestMismatchError);
      expect(await restarted.commit(id, sha512)).toEqual({ digest: sha512, size: 7777 });
    });
  });

  describe("upload ids", () => {
    const bad = [
      "../../escape",
      "../escape",
      "..",
      "escape/../../x",
      "not-a-uuid",
      "",
      "3F2A9C4E-0B1D-4C8E-9F7A-1234567890AB",
      "3f2a9c4e0b1d4c8e9f7a1234567890ab",
      "3f2a9c4e-0b1d-4c8e-9f7a-1234567890ab/../../escape",
      "3f2a9c4e-0b1d-4c8e-9f7a-1234567890ab\n",
      " 3f2a9c4e-0b1d-4c8e-9f7a-1234567890ab",
    ];

    it("refuses ids that are not canonical lower-case UUIDs, in every operation, touching no file", async () => {
      for (const id of bad) {
        await expect(store.createUpload(id), JSON.stringify(id)).rejects.toBeInstanceOf(UploadNotFoundError);
        expect(await store.uploadSize(id)).toBeUndefined();
        await expect(store.append(id, 0, body(Buffer.from("x")))).rejects.toBeInstanceOf(UploadNotFoundError);
        await expect(store.commit(id, digestOf("x"))).rejects.toBeInstanceOf(UploadNotFoundError);
        await expect(store.abort(id)).rejects.toBeInstanceOf(UploadNotFoundError);
      }
      expect(existsSync(join(root, "escape"))).toBe(false);
      expect(existsSync(join(root, "..", "escape"))).toBe(false);
      expect(await readdir(join(root, "uploads"))).toEqual([]);
      expect(await readdir(join(root, "blobs"))).toEqual([]);
    });

    it("refuses a malformed digest on commit without touching the session", async () => {
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(Buffer.from("x")));
      await expect(store.commit(id, "sha256:../../escape" as Digest)).rejects.toThrow();
      expect(await store.uploadSize(id)).toBe(1);
    });
  });

  it("lists sessions untouched since a cutoff as stale", async () => {
    const old = randomUUID();
    const fresh = randomUUID();
    await store.createUpload(old);
    await store.createUpload(fresh);
    const longAgo = new Date(Date.now() - 48 * 3600 * 1000);
    await utimes(join(root, "uploads", old), longAgo, longAgo);
    expect(await store.staleUploads(Date.now() - 24 * 3600 * 1000)).toEqual([old]);
  });
});
