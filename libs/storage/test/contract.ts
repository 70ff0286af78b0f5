import { createHash, randomBytes, randomUUID } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import type { Digest } from "@minato/oci";
import {
  BlobNotFoundError,
  type BlobStore,
  DigestMismatchError,
  type StoredBlob,
  UploadNotFoundError,
  UploadOffsetError,
  UploadTooLargeError,
} from "@minato/storage";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const MiB = 1024 * 1024;
/** The part size the S3 contract runs with (S3's minimum): sizes below are chosen around it. */
export const CONTRACT_PART_SIZE = 5 * MiB;

/** One driver on fresh, empty storage. */
export interface ContractTarget {
  store: BlobStore;
  /** Another driver instance on the same storage: what a restarted registry opens. */
  reopen(): Promise<BlobStore>;
  /** Anything an upload session left in storage (files, objects, open multipart uploads), by name. */
  uploadLeftovers(): Promise<string[]>;
  dispose(): Promise<void>;
}

export function sha256(data: Buffer): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function sha512(data: Buffer): Digest {
  return `sha512:${createHash("sha512").update(data).digest("hex")}`;
}

/** A body of the given chunks, as a request stream delivers them. */
function body(...chunks: Buffer[]): Readable {
  return Readable.from(chunks, { objectMode: false });
}

/** `data` cut into chunks of `size` bytes (the last one shorter). */
function chunksOf(data: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.byteLength; at += size) chunks.push(data.subarray(at, at + size));
  return chunks;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Appends each of `pieces` as its own request, checking the returned size each time. */
async function appendPieces(store: BlobStore, id: string, pieces: Buffer[], start = 0): Promise<number> {
  let offset = start;
  for (const piece of pieces) {
    const size = await store.append(id, offset, body(...chunksOf(piece, 256 * 1024)));
    expect(size).toBe(offset + piece.byteLength);
    offset = size;
  }
  return offset;
}

/** Pieces of `data` with the given sizes, cycling through them until the data is used up. */
function cut(data: Buffer, sizes: number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < data.byteLength; i++) {
    const size = sizes[i % sizes.length] as number;
    pieces.push(data.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

async function uploadBlob(store: BlobStore, data: Buffer, pieceSize = 3 * MiB): Promise<Digest> {
  const id = randomUUID();
  await store.createUpload(id);
  await appendPieces(store, id, chunksOf(data, pieceSize));
  const digest = sha256(data);
  expect(await store.commit(id, digest)).toEqual({ digest, size: data.byteLength });
  return digest;
}

/**
 * The BlobStore contract (libs/storage/src/driver.ts), registered as vitest tests against the
 * driver `setup` makes; each test gets fresh storage.
 */
async function listAll(store: BlobStore): Promise<StoredBlob[]> {
  const blobs: StoredBlob[] = [];
  for await (const blob of store.list()) blobs.push(blob);
  return blobs.sort((a, b) => (a.digest < b.digest ? -1 : 1));
}

export function blobStoreContract(name: string, setup: () => Promise<ContractTarget>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let target: ContractTarget;
    let store: BlobStore;
    beforeEach(async () => {
      target = await setup();
      store = target.store;
    });
    afterEach(async () => {
      await target.dispose();
    });

    it("commits appended bytes and reads them back byte-identical", async () => {
      for (const size of [0, 1, 4097, 2 * CONTRACT_PART_SIZE + 3]) {
        const data = randomBytes(size);
        const digest = await uploadBlob(store, data);
        expect(await store.stat(digest)).toEqual({ size });
        expect((await readAll(await store.read(digest))).equals(data)).toBe(true);
      }
    });

    it("forgets a session once it is committed", async () => {
      const id = randomUUID();
      const data = randomBytes(1000);
      await store.createUpload(id);
      await store.append(id, 0, body(data));
      await store.commit(id, sha256(data));
      expect(await store.uploadSize(id)).toBeUndefined();
      expect(await (await target.reopen()).uploadSize(id)).toBeUndefined();
      await expect(store.commit(id, sha256(data))).rejects.toBeInstanceOf(UploadNotFoundError);
      expect(await target.uploadLeftovers()).toEqual([]);
    });

    it("serves inclusive byte ranges, across part boundaries too", async () => {
      const data = randomBytes(2 * CONTRACT_PART_SIZE + 5);
      const digest = await uploadBlob(store, data);
      const last = data.byteLength - 1;
      const ranges = [
        [0, 0],
        [1, 1],
        [0, 9],
        [CONTRACT_PART_SIZE - 3, CONTRACT_PART_SIZE + 2],
        [last, last],
        [100, last],
        [0, last],
      ] as const;
      for (const [start, end] of ranges) {
        const got = await readAll(await store.read(digest, { start, end }));
        expect(got.equals(data.subarray(start, end + 1)), `range ${start}-${end}`).toBe(true);
      }
    });

    it("says a missing blob is missing", async () => {
      const digest = sha256(Buffer.from("never stored"));
      expect(await store.stat(digest)).toBeUndefined();
      await expect(store.read(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
      expect(await store.delete(digest)).toBe(false);
    });

    it("deletes a committed blob", async () => {
      const digest = await uploadBlob(store, randomBytes(2048));
      expect(await store.delete(digest)).toBe(true);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.delete(digest)).toBe(false);
    });

    it("lists committed blobs (not upload sessions) with their sizes and write times", async () => {
      const before = Date.now() - 60_000;
      expect(await listAll(store)).toEqual([]);
      const small = randomBytes(10);
      const large = randomBytes(CONTRACT_PART_SIZE + 1);
      const digests = [await uploadBlob(store, small), await uploadBlob(store, large)];
      const other = randomUUID();
      await store.createUpload(other);
      await store.append(other, 0, body(small));
      const { digest: sha512Digest } = await store.commit(other, sha512(small));
      const session = randomUUID();
      await store.createUpload(session);
      await store.append(session, 0, body(randomBytes(100)));
      const listed = await listAll(store);
      expect(listed.map((b) => [b.digest, b.size])).toEqual(
        [
          [digests[0], 10],
          [digests[1], large.byteLength],
          [sha512Digest, 10],
        ].sort(),
      );
      for (const blob of listed) expect(blob.modifiedAt).toBeGreaterThan(before);
      await store.delete(digests[0] as Digest);
      expect((await listAll(store)).map((b) => b.digest)).toEqual([digests[1], sha512Digest].sort());
    });

    it("refuses an append at any offset but the session's size", async () => {
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(randomBytes(10)));
      for (const offset of [0, 9, 11]) {
        const error = await store.append(id, offset, body(randomBytes(5))).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UploadOffsetError);
        expect((error as UploadOffsetError).expected).toBe(10);
      }
      expect(await store.uploadSize(id)).toBe(10);
    });

    for (const [label, size] of [
      ["a small", 1000],
      ["a multi-part", 2 * CONTRACT_PART_SIZE + 1],
    ] as const) {
      it(`leaves nothing at the content address when ${label} upload's digest does not match`, async () => {
        const data = randomBytes(size);
        const wrong = sha256(Buffer.concat([data, Buffer.from("x")]));
        const id = randomUUID();
        await store.createUpload(id);
        await appendPieces(store, id, chunksOf(data, 3 * MiB));
        const error = await store.commit(id, wrong).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DigestMismatchError);
        expect((error as DigestMismatchError).actual).toBe(sha256(data));
        expect(await store.stat(wrong)).toBeUndefined();
        expect(await store.stat(sha256(data))).toBeUndefined();
        // The session is left as it was: the right digest still commits it.
        expect(await store.uploadSize(id)).toBe(size);
        expect(await store.commit(id, sha256(data))).toEqual({ digest: sha256(data), size });
        expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
        expect(await store.stat(wrong)).toBeUndefined();
      });
    }

    it("continues an upload in a new driver instance (a restart) and commits it correctly", async () => {
      const data = randomBytes(3 * CONTRACT_PART_SIZE + 12_345);
      const [first, second, third] = [data.subarray(0, 7 * MiB + 3), data.subarray(7 * MiB + 3, 11 * MiB), data.subarray(11 * MiB)];
      const id = randomUUID();
      await store.createUpload(id);
      await appendPieces(store, id, [first]);

      const restarted = await target.reopen();
      expect(await restarted.uploadSize(id)).toBe(first.byteLength);
      await expect(restarted.append(id, 0, body(second))).rejects.toBeInstanceOf(UploadOffsetError);
      await appendPieces(restarted, id, [second], first.byteLength);

      const again = await target.reopen();
      await appendPieces(again, id, [third], first.byteLength + second.byteLength);
      expect(await again.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: data.byteLength });
      expect((await readAll(await again.read(sha256(data)))).equals(data)).toBe(true);
      expect((await readAll(await store.read(sha256(data), { start: 5, end: 5 }))).equals(data.subarray(5, 6))).toBe(true);
      expect(await target.uploadLeftovers()).toEqual([]);
    });

    it("after a restart, a mismatched commit keeps the session, which then takes more bytes", async () => {
      const data = randomBytes(2 * CONTRACT_PART_SIZE + 777);
      const head = data.subarray(0, CONTRACT_PART_SIZE + 100);
      const id = randomUUID();
      await store.createUpload(id);
      await appendPieces(store, id, [head]);
      const restarted = await target.reopen();
      await expect(restarted.commit(id, sha256(data))).rejects.toBeInstanceOf(DigestMismatchError);
      expect(await restarted.stat(sha256(data))).toBeUndefined();
      expect(await restarted.stat(sha256(head))).toBeUndefined();
      expect(await restarted.uploadSize(id)).toBe(head.byteLength);
      await appendPieces(restarted, id, [data.subarray(head.byteLength)], head.byteLength);
      expect(await restarted.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: data.byteLength });
      expect((await readAll(await restarted.read(sha256(data)))).equals(data)).toBe(true);
      expect(await target.uploadLeftovers()).toEqual([]);
    });

    it("abort leaves nothing behind, before and after a restart", async () => {
      const small = randomUUID();
      await store.createUpload(small);
      await store.append(small, 0, body(randomBytes(100)));
      const large = randomUUID();
      await store.createUpload(large);
      await appendPieces(store, large, [randomBytes(7 * MiB)]);
      const restarted = randomUUID();
      await store.createUpload(restarted);
      await appendPieces(store, restarted, [randomBytes(12 * MiB)]);
      expect((await target.uploadLeftovers()).length).toBeGreaterThan(0);

      await store.abort(small);
      await store.abort(large);
      await (await target.reopen()).abort(restarted);
      const fresh = await target.reopen();
      for (const id of [small, large, restarted]) {
        expect(await fresh.uploadSize(id)).toBeUndefined();
        await expect(fresh.commit(id, sha256(Buffer.alloc(0)))).rejects.toBeInstanceOf(UploadNotFoundError);
      }
      expect(await store.uploadSize(small)).toBeUndefined();
      expect(await target.uploadLeftovers()).toEqual([]);
      // Aborting what is already gone is not an error.
      await store.abort(large);
    });

    it("takes chunks of 1 byte, also across a part boundary", async () => {
      // Each 1-byte append below a full part rewrites the durable tail on S3: few of those near the boundary.
      const data = randomBytes(CONTRACT_PART_SIZE + 40);
      const pieces = [
        ...cut(data.subarray(0, 40), [1]),
        data.subarray(40, CONTRACT_PART_SIZE - 20),
        ...cut(data.subarray(CONTRACT_PART_SIZE - 20), [1]),
      ];
      const id = randomUUID();
      await store.createUpload(id);
      expect(await appendPieces(store, id, pieces)).toBe(data.byteLength);
      expect(await store.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: data.byteLength });
      expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
    });

    it("takes chunks of odd sizes that are no multiple of a part", async () => {
      const data = randomBytes(3 * CONTRACT_PART_SIZE + 4321);
      const pieces = cut(data, [4099, 65_537, MiB + 3, 3 * MiB + 1, 777, 5 * MiB + 11, 2 * MiB - 1]);
      const id = randomUUID();
      await store.createUpload(id);
      expect(await appendPieces(store, id, pieces)).toBe(data.byteLength);
      expect(await store.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: data.byteLength });
      expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
    });

    it("takes chunks of 7 MiB", async () => {
      const data = randomBytes(3 * 7 * MiB);
      const id = randomUUID();
      await store.createUpload(id);
      expect(await appendPieces(store, id, chunksOf(data, 7 * MiB))).toBe(data.byteLength);
      expect(await store.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: data.byteLength });
      expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
      expect(await target.uploadLeftovers()).toEqual([]);
    });

    it("verifies sha512 digests", async () => {
      const data = randomBytes(CONTRACT_PART_SIZE + 17);
      const id = randomUUID();
      await store.createUpload(id);
      await appendPieces(store, id, [data]);
      await expect(store.commit(id, sha512(Buffer.from("other")))).rejects.toBeInstanceOf(DigestMismatchError);
      expect(await store.commit(id, sha512(data))).toEqual({ digest: sha512(data), size: data.byteLength });
      expect((await readAll(await store.read(sha512(data)))).equals(data)).toBe(true);
    });

    it("keeps what arrived before a request body failed, so the client can resume", async () => {
      const data = randomBytes(2 * CONTRACT_PART_SIZE + 99);
      const id = randomUUID();
      await store.createUpload(id);
      const failing = Readable.from(
        (async function* () {
          yield* chunksOf(data.subarray(0, 6 * MiB), 512 * 1024);
          throw new Error("client went away");
        })(),
        { objectMode: false },
      );
      await expect(store.append(id, 0, failing)).rejects.toThrow("client went away");
      const size = (await store.uploadSize(id)) as number;
      expect(size).toBeGreaterThanOrEqual(0);
      expect(size).toBeLessThanOrEqual(6 * MiB);
      await appendPieces(store, id, [data.subarray(size)], size);
      expect(await store.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: data.byteLength });
      expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
    });

    it("counts the bytes an append has taken in its session's size while it still streams", async () => {
      const data = randomBytes(CONTRACT_PART_SIZE + 3000);
      const id = randomUUID();
      await store.createUpload(id);
      const stream = new PassThrough();
      const pending = store.append(id, 0, stream);
      stream.write(data.subarray(0, 1000));
      await vi.waitFor(async () => expect(await store.uploadSize(id)).toBe(1000), { timeout: 30_000, interval: 10 });
      stream.write(data.subarray(1000, CONTRACT_PART_SIZE + 1000));
      await vi.waitFor(async () => expect(await store.uploadSize(id)).toBe(CONTRACT_PART_SIZE + 1000), { timeout: 30_000, interval: 10 });
      stream.end(data.subarray(CONTRACT_PART_SIZE + 1000));
      expect(await pending).toBe(data.byteLength);
      expect(await store.uploadSize(id)).toBe(data.byteLength);
      expect(await store.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: data.byteLength });
    });

    it("bounds an append by maxBytes", async () => {
      const data = randomBytes(100);
      const id = randomUUID();
      await store.createUpload(id);
      await expect(store.append(id, 0, body(data.subarray(0, 40), data.subarray(40)), 50)).rejects.toBeInstanceOf(UploadTooLargeError);
      const size = (await store.uploadSize(id)) as number;
      expect(size).toBeLessThanOrEqual(40);
      await store.append(id, size, body(data.subarray(size)));
      expect(await store.commit(id, sha256(data))).toEqual({ digest: sha256(data), size: 100 });
    });

    it("lists sessions last touched before a cutoff as stale", async () => {
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, body(randomBytes(10)));
      expect(await store.staleUploads(Date.now() + 60_000)).toContain(id);
      expect(await store.staleUploads(Date.now() - 60_000)).not.toContain(id);
      await store.abort(id);
      expect(await store.staleUploads(Date.now() + 60_000)).not.toContain(id);
    });

    it("refuses upload ids that are not canonical UUIDs", async () => {
      const valid = randomUUID();
      for (const id of ["../../etc/passwd", "x", "", `${valid}/..`, valid.toUpperCase(), `${valid}0`]) {
        await expect(store.createUpload(id), id).rejects.toBeInstanceOf(UploadNotFoundError);
        expect(await store.uploadSize(id)).toBeUndefined();
        await expect(store.append(id, 0, body(Buffer.from("x")))).rejects.toBeInstanceOf(UploadNotFoundError);
        await expect(store.commit(id, sha256(Buffer.from("x")))).rejects.toBeInstanceOf(UploadNotFoundError);
        await expect(store.abort(id)).rejects.toBeInstanceOf(UploadNotFoundError);
      }
      expect(await store.uploadSize(valid)).toBeUndefined();
      await expect(store.append(valid, 0, body(Buffer.from("x")))).rejects.toBeInstanceOf(UploadNotFoundError);
      expect(await target.uploadLeftovers()).toEqual([]);
    });

    it("reports itself healthy", async () => {
      expect(await store.healthy()).toBe(true);
    });
  });
}
