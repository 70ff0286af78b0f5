import { createHash } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { type Digest, digestOf } from "@minato/oci";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  bytes,
  call,
  expectError,
  header,
  headStatus,
  location,
  pushBlob,
  randomBlob,
  startTestRegistry,
  startUpload,
  stored,
  type TestRegistry,
  uploadId,
  withDigest,
} from "./harness.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OCTETS = { "content-type": "application/octet-stream" };

describe("blob uploads (end-4 … end-6, end-11, end-13, end-14)", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(() => registry.destroy());

  /** Pulls the blob and checks it is byte-identical, under the digest we computed independently. */
  async function expectPulled(name: string, digest: Digest, data: Buffer): Promise<void> {
    const res = await call(registry, "GET", `/v2/${name}/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    expect(header(res, "docker-content-digest")).toBe(digest);
    const body = await bytes(res);
    expect(body.byteLength).toBe(data.byteLength);
    expect(body.equals(data)).toBe(true);
    const [algorithm] = digest.split(":") as [string];
    expect(`${algorithm}:${createHash(algorithm).update(body).digest("hex")}`).toBe(digest);
  }

  /** PATCHes `data` in `chunkSize` pieces with Content-Range, following each Location; returns the last one. */
  async function patchInChunks(start: string, data: Buffer, chunkSize: number, from = 0): Promise<string> {
    let loc = start;
    for (let offset = from; offset < data.byteLength; offset += chunkSize) {
      const chunk = data.subarray(offset, offset + chunkSize);
      const end = offset + chunk.byteLength - 1;
      const res = await call(registry, "PATCH", loc, { headers: { ...OCTETS, "content-range": `${offset}-${end}` }, body: chunk });
      const text = await res.body.text();
      expect(res.statusCode, text).toBe(202);
      expect(header(res, "range")).toBe(`0-${end}`);
      loc = location(res);
      expect(uploadId(loc)).toBe(uploadId(start));
    }
    return loc;
  }

  async function finish(loc: string, digest: string, body?: Buffer, headers: Record<string, string> = {}) {
    return call(registry, "PUT", withDigest(loc, digest), { headers: body ? { ...OCTETS, ...headers } : headers, body: body ?? null });
  }

  describe("POST", () => {
    it("opens a session: 202 with Location, Range and Docker-Upload-UUID", async () => {
      const res = await call(registry, "POST", "/v2/up/post/blobs/uploads/", { headers: { "content-length": "0" } });
      await res.body.dump();
      expect(res.statusCode).toBe(202);
      const loc = location(res);
      expect(loc).toMatch(/^\/v2\/up\/post\/blobs\/uploads\/[0-9a-f-]+$/);
      const id = header(res, "docker-upload-uuid");
      expect(id).toMatch(UUID);
      expect(uploadId(loc)).toBe(id);
      expect(header(res, "range")).toBe("0-0");
    });

    it("gives every session its own id", async () => {
      const a = await startUpload(registry, "up/post");
      const b = await startUpload(registry, "up/post");
      expect(uploadId(a)).not.toBe(uploadId(b));
    });

    it("accepts a single-request monolithic upload with ?digest=: 201, Location, Docker-Content-Digest", async () => {
      const data = randomBlob(3000);
      const digest = digestOf(data);
      const res = await call(registry, "POST", `/v2/up/mono/blobs/uploads/?digest=${digest}`, { headers: OCTETS, body: data });
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(location(res)).toBe(`/v2/up/mono/blobs/${digest}`);
      expect(header(res, "docker-content-digest")).toBe(digest);
      await expectPulled("up/mono", digest, data);
      // The Location is pullable as given.
      expect(await headStatus(registry, location(res))).toBe(200);
    });

    it("accepts an empty blob", async () => {
      const digest = digestOf("");
      const res = await call(registry, "POST", `/v2/up/mono/blobs/uploads/?digest=${digest}`, { headers: { "content-length": "0" } });
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      const get = await call(registry, "GET", `/v2/up/mono/blobs/${digest}`);
      expect(get.statusCode).toBe(200);
      expect(header(get, "content-length")).toBe("0");
      expect((await bytes(get)).byteLength).toBe(0);
    });

    it("accepts pushing the same content twice", async () => {
      const data = randomBlob(200);
      const first = await pushBlob(registry, "up/twice", data);
      const second = await pushBlob(registry, "up/twice", data);
      expect(second).toBe(first);
      await expectPulled("up/twice", first, data);
    });

    it("refuses an unsupported digest-algorithm with 400 DIGEST_INVALID", async () => {
      const res = await call(registry, "POST", "/v2/up/post/blobs/uploads/?digest-algorithm=md5", { headers: { "content-length": "0" } });
      await expectError(res, 400, "DIGEST_INVALID");
    });

    it("refuses a malformed ?digest= with 400 DIGEST_INVALID and stores nothing", async () => {
      const res = await call(registry, "POST", "/v2/up/baddigest/blobs/uploads/?digest=sha256:abc", { headers: OCTETS, body: "x" });
      await expectError(res, 400, "DIGEST_INVALID");
      const catalog = (await (await call(registry, "GET", "/v2/_catalog")).body.json()) as { repositories: string[] };
      expect(catalog.repositories).not.toContain("up/baddigest");
    });
  });

  describe("cross-repository mount (end-11)", () => {
    it("mounts a blob from another repository: 201 with Location and Docker-Content-Digest", async () => {
      const data = randomBlob(777);
      const digest = await pushBlob(registry, "mount/source", data);
      expect(await headStatus(registry, `/v2/mount/target/blobs/${digest}`)).toBe(404);

      const res = await call(registry, "POST", `/v2/mount/target/blobs/uploads/?mount=${digest}&from=mount/source`, {
        headers: { "content-length": "0" },
      });
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(location(res)).toBe(`/v2/mount/target/blobs/${digest}`);
      expect(header(res, "docker-content-digest")).toBe(digest);
      await expectPulled("mount/target", digest, data);
    });

    it("answers 202 with a fresh session when the blob is not in the source repository", async () => {
      const data = randomBlob(500);
      const digest = digestOf(data);
      await pushBlob(registry, "mount/elsewhere", data);
      for (const query of [`mount=${digest}&from=mount/empty-source`, `mount=${digestOf("nowhere")}&from=mount/elsewhere`]) {
        const res = await call(registry, "POST", `/v2/mount/fallback/blobs/uploads/?${query}`, { headers: { "content-length": "0" } });
        await res.body.dump();
        expect(res.statusCode, query).toBe(202);
        expect(header(res, "docker-upload-uuid")).toMatch(UUID);
        expect(header(res, "range")).toBe("0-0");
        expect(uploadId(location(res))).toBe(header(res, "docker-upload-uuid"));
      }
      expect(await headStatus(registry, `/v2/mount/fallback/blobs/${digest}`)).toBe(404);
    });

    it("lets the client finish the upload in the session a failed mount opened", async () => {
      const data = randomBlob(321);
      const digest = digestOf(data);
      const res = await call(registry, "POST", `/v2/mount/fallback2/blobs/uploads/?mount=${digest}&from=mount/nothing`, {
        headers: { "content-length": "0" },
      });
      await res.body.dump();
      expect(res.statusCode).toBe(202);
      const done = await finish(location(res), digest, data);
      await done.body.dump();
      expect(done.statusCode).toBe(201);
      await expectPulled("mount/fallback2", digest, data);
    });

    it("mounts automatically without `from` when any repository holds the blob (conformance, OCI_AUTOMATIC_CROSSMOUNT)", async () => {
      const data = randomBlob(612);
      const digest = await pushBlob(registry, "mount/auto-source", data);
      const res = await call(registry, "POST", `/v2/mount/auto-target/blobs/uploads/?mount=${digest}`, {
        headers: { "content-length": "0" },
      });
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(location(res)).toBe(`/v2/mount/auto-target/blobs/${digest}`);
      expect(header(res, "docker-content-digest")).toBe(digest);
      await expectPulled("mount/auto-target", digest, data);

      // A blob nobody holds: a session, as before.
      const unknown = await call(registry, "POST", `/v2/mount/auto-target/blobs/uploads/?mount=${digestOf(randomBlob(9))}`, {
        headers: { "content-length": "0" },
      });
      await unknown.body.dump();
      expect(unknown.statusCode).toBe(202);
      expect(header(unknown, "docker-upload-uuid")).toMatch(UUID);
    });

    it("refuses a malformed mount digest with 400 DIGEST_INVALID", async () => {
      const res = await call(registry, "POST", "/v2/mount/target/blobs/uploads/?mount=sha256:zz&from=mount/source", {
        headers: { "content-length": "0" },
      });
      await expectError(res, 400, "DIGEST_INVALID");
    });
  });

  describe("POST then PUT (monolithic)", () => {
    it("PUT ?digest= with the whole blob: 201, Location, Docker-Content-Digest", async () => {
      const data = randomBlob(10_000);
      const digest = digestOf(data);
      const loc = await startUpload(registry, "up/put");
      const res = await finish(loc, digest, data);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(location(res)).toBe(`/v2/up/put/blobs/${digest}`);
      expect(header(res, "docker-content-digest")).toBe(digest);
      await expectPulled("up/put", digest, data);
      // The session is closed.
      await expectError(await call(registry, "GET", loc), 404, "BLOB_UPLOAD_UNKNOWN");
    });

    it("PUT without ?digest= is refused with 400 DIGEST_INVALID and the session survives", async () => {
      const loc = await startUpload(registry, "up/put");
      await expectError(await call(registry, "PUT", loc, { headers: OCTETS, body: "abc" }), 400, "DIGEST_INVALID");
      const status = await call(registry, "GET", loc);
      await status.body.dump();
      expect(status.statusCode).toBe(204);
    });
  });

  describe("chunked (PATCH)", () => {
    it("accepts chunks with Content-Range: 202, Location, Range: 0-<end>; PUT without a body closes", async () => {
      const data = randomBlob(25);
      const digest = digestOf(data);
      const loc = await patchInChunks(await startUpload(registry, "up/chunked"), data, 10);
      const res = await finish(loc, digest);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(location(res)).toBe(`/v2/up/chunked/blobs/${digest}`);
      expect(header(res, "docker-content-digest")).toBe(digest);
      await expectPulled("up/chunked", digest, data);
    });

    it("accepts the final chunk in the closing PUT, with Content-Range", async () => {
      const data = randomBlob(100);
      const digest = digestOf(data);
      const loc = await patchInChunks(await startUpload(registry, "up/chunked"), data.subarray(0, 60), 30);
      const res = await finish(loc, digest, data.subarray(60), { "content-range": "60-99" });
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expect(header(res, "docker-content-digest")).toBe(digest);
      await expectPulled("up/chunked", digest, data);
    });

    it("accepts the final chunk in the closing PUT without Content-Range", async () => {
      const data = randomBlob(100);
      const digest = digestOf(data);
      const loc = await patchInChunks(await startUpload(registry, "up/chunked"), data.subarray(0, 50), 50);
      const res = await finish(loc, digest, data.subarray(50));
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      await expectPulled("up/chunked", digest, data);
    });

    it("streams a PATCH without Content-Range (chunked transfer encoding) onto the end of the session", async () => {
      const data = randomBlob(200_000);
      const digest = digestOf(data);
      let loc = await startUpload(registry, "up/stream");
      const pieces = [data.subarray(0, 1), data.subarray(1, 65_537), data.subarray(65_537, 120_000)];
      const first = await call(registry, "PATCH", loc, { headers: OCTETS, body: Readable.from(pieces) });
      await first.body.dump();
      expect(first.statusCode).toBe(202);
      expect(header(first, "range")).toBe("0-119999");
      loc = location(first);
      // A second stream, this time with a Content-Length, lands after the first.
      const second = await call(registry, "PATCH", loc, { headers: OCTETS, body: data.subarray(120_000) });
      await second.body.dump();
      expect(second.statusCode).toBe(202);
      expect(header(second, "range")).toBe("0-199999");
      const res = await finish(location(second), digest);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      await expectPulled("up/stream", digest, data);
    });

    it("uploads a 300-byte blob in 1-byte chunks", async () => {
      const data = randomBlob(300);
      const digest = digestOf(data);
      const loc = await patchInChunks(await startUpload(registry, "up/tiny"), data, 1);
      const res = await finish(loc, digest);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      await expectPulled("up/tiny", digest, data);
    });

    it("uploads a ~100 KB blob in odd 7777-byte chunks, the last one in the PUT", async () => {
      const data = randomBlob(100_003);
      const digest = digestOf(data);
      const lastStart = Math.floor(data.byteLength / 7777) * 7777;
      const loc = await patchInChunks(await startUpload(registry, "up/odd"), data.subarray(0, lastStart), 7777);
      const res = await finish(loc, digest, data.subarray(lastStart), { "content-range": `${lastStart}-${data.byteLength - 1}` });
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      await expectPulled("up/odd", digest, data);
    });

    it("uploads 3 × 5 MiB chunks plus a remainder", async () => {
      const mib5 = 5 * 1024 * 1024;
      const data = randomBlob(3 * mib5 + 123_457);
      const digest = digestOf(data);
      const loc = await patchInChunks(await startUpload(registry, "up/large"), data, mib5);
      const status = await call(registry, "GET", loc);
      await status.body.dump();
      expect(header(status, "range")).toBe(`0-${data.byteLength - 1}`);
      const res = await finish(loc, digest);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      await expectPulled("up/large", digest, data);
    });

    it("answers an out-of-order chunk with 416, and the session is resumable from the offset it reports", async () => {
      const data = randomBlob(40);
      const digest = digestOf(data);
      const loc = await patchInChunks(await startUpload(registry, "up/order"), data.subarray(0, 10), 10);

      const cases = [
        { range: "20-29", body: data.subarray(20, 30) }, // a gap
        { range: "5-14", body: data.subarray(5, 15) }, // overlapping
        { range: "0-9", body: data.subarray(0, 10) }, // the same chunk again
      ];
      for (const { range, body } of cases) {
        const res = await call(registry, "PATCH", loc, { headers: { ...OCTETS, "content-range": range }, body });
        expect(header(res, "range"), range).toBe("0-9");
        expect(uploadId(location(res))).toBe(uploadId(loc));
        await expectError(res, 416, "BLOB_UPLOAD_INVALID");
      }

      const status = await call(registry, "GET", loc);
      await status.body.dump();
      expect(status.statusCode).toBe(204);
      expect(header(status, "range")).toBe("0-9");

      const resumed = await patchInChunks(location(status), data, 10, 10);
      const res = await finish(resumed, digest);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      await expectPulled("up/order", digest, data);
    });

    it("answers a first chunk that does not start at 0 with 416", async () => {
      const loc = await startUpload(registry, "up/order");
      const res = await call(registry, "PATCH", loc, { headers: { ...OCTETS, "content-range": "1-4" }, body: "abcd" });
      await expectError(res, 416, "BLOB_UPLOAD_INVALID");
    });

    it("answers an out-of-order final chunk in the PUT with 416 and stores nothing", async () => {
      const data = randomBlob(30);
      const digest = digestOf(data);
      const loc = await patchInChunks(await startUpload(registry, "up/order"), data.subarray(0, 10), 10);
      const res = await finish(loc, digest, data.subarray(20), { "content-range": "20-29" });
      await expectError(res, 416, "BLOB_UPLOAD_INVALID");
      expect(await headStatus(registry, `/v2/up/order/blobs/${digest}`)).toBe(404);
      expect(await stored(registry, digest)).toBe(false);
    });

    it("refuses a malformed Content-Range with 400 BLOB_UPLOAD_INVALID", async () => {
      const loc = await startUpload(registry, "up/order");
      const res = await call(registry, "PATCH", loc, { headers: { ...OCTETS, "content-range": "zero-to-three" }, body: "abcd" });
      await expectError(res, 400, "BLOB_UPLOAD_INVALID");
    });

    it("refuses a streamed chunk longer than its Content-Range with 400 SIZE_INVALID", async () => {
      const loc = await startUpload(registry, "up/order");
      const res = await call(registry, "PATCH", loc, {
        headers: { ...OCTETS, "content-range": "0-4" },
        body: Readable.from([Buffer.from("abc"), Buffer.from("defghij")]),
      });
      await expectError(res, 400, "SIZE_INVALID");
      const status = await call(registry, "GET", loc);
      await status.body.dump();
      const [, end] = /^0-(\d+)$/.exec(header(status, "range") ?? "") ?? [];
      expect(Number(end)).toBeLessThanOrEqual(4);
    });

    it("refuses a second writer while a PATCH is streaming into the session", async () => {
      const data = randomBlob(2000);
      const digest = digestOf(data);
      const loc = await startUpload(registry, "up/busy");
      const id = uploadId(loc);
      const stream = new PassThrough();
      const pending = call(registry, "PATCH", loc, { headers: OCTETS, body: stream });
      stream.write(data.subarray(0, 1000));
      await vi.waitFor(async () => expect(await registry.deps.storage.uploadSize(id)).toBe(1000), { timeout: 30_000 });

      const second = await call(registry, "PATCH", loc, {
        headers: { ...OCTETS, "content-range": "1000-1999" },
        body: data.subarray(1000),
      });
      await expectError(second, 416, "BLOB_UPLOAD_INVALID");

      stream.end(data.subarray(1000));
      const first = await pending;
      await first.body.dump();
      expect(first.statusCode).toBe(202);
      expect(header(first, "range")).toBe("0-1999");
      const res = await finish(loc, digest);
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      await expectPulled("up/busy", digest, data);
    });

    it("keeps concurrent sessions of one repository apart", async () => {
      const a = randomBlob(1000);
      const b = randomBlob(1000);
      const [locA, locB] = await Promise.all([startUpload(registry, "up/parallel"), startUpload(registry, "up/parallel")]);
      await Promise.all([patchInChunks(locA, a, 100), patchInChunks(locB, b, 100)]);
      const [resA, resB] = await Promise.all([finish(locA, digestOf(a)), finish(locB, digestOf(b))]);
      await resA.body.dump();
      await resB.body.dump();
      expect([resA.statusCode, resB.statusCode]).toEqual([201, 201]);
      await expectPulled("up/parallel", digestOf(a), a);
      await expectPulled("up/parallel", digestOf(b), b);
    });
  });

  describe("status (end-13) and cancel (end-14)", () => {
    it("GET answers 204 with Range, Location and Docker-Upload-UUID", async () => {
      const loc = await startUpload(registry, "up/status");
      const empty = await call(registry, "GET", loc);
      await empty.body.dump();
      expect(empty.statusCode).toBe(204);
      expect(header(empty, "range")).toBe("0-0");
      expect(location(empty)).toBe(loc);
      expect(header(empty, "docker-upload-uuid")).toBe(uploadId(loc));

      await patchInChunks(loc, randomBlob(1234), 1000);
      const res = await call(registry, "GET", loc);
      await res.body.dump();
      expect(res.statusCode).toBe(204);
      expect(header(res, "range")).toBe("0-1233");
      expect(location(res)).toBe(loc);
    });

    it("DELETE cancels: 204, then every session endpoint answers 404 BLOB_UPLOAD_UNKNOWN", async () => {
      const data = randomBlob(64);
      const loc = await patchInChunks(await startUpload(registry, "up/cancel"), data, 64);
      const res = await call(registry, "DELETE", loc, { headers: { "content-length": "0" } });
      await res.body.dump();
      expect(res.statusCode).toBe(204);

      await expectError(await call(registry, "GET", loc), 404, "BLOB_UPLOAD_UNKNOWN");
      await expectError(
        await call(registry, "PATCH", loc, { headers: { ...OCTETS, "content-range": "64-64" }, body: "x" }),
        404,
        "BLOB_UPLOAD_UNKNOWN",
      );
      await expectError(await finish(loc, digestOf(data)), 404, "BLOB_UPLOAD_UNKNOWN");
      await expectError(await call(registry, "DELETE", loc), 404, "BLOB_UPLOAD_UNKNOWN");
      expect(await stored(registry, digestOf(data))).toBe(false);
      expect(await registry.deps.storage.uploadSize(uploadId(loc))).toBeUndefined();
    });
  });

  describe("sha512", () => {
    it("completes a chunked upload opened with digest-algorithm=sha512", async () => {
      const data = randomBlob(50_000);
      const digest = digestOf(data, "sha512");
      const res = await call(registry, "POST", "/v2/up/sha512/blobs/uploads/?digest-algorithm=sha512", {
        headers: { "content-length": "0" },
      });
      await res.body.dump();
      expect(res.statusCode).toBe(202);
      const loc = await patchInChunks(location(res), data, 9999);
      const done = await finish(loc, digest);
      await done.body.dump();
      expect(done.statusCode).toBe(201);
      expect(header(done, "docker-content-digest")).toBe(digest);
      expect(location(done)).toBe(`/v2/up/sha512/blobs/${digest}`);
      await expectPulled("up/sha512", digest, data);
    });

    it("refuses a sha512 digest that does not match with 400 DIGEST_INVALID", async () => {
      const data = randomBlob(100);
      const wrong = digestOf(randomBlob(100), "sha512");
      const loc = await startUpload(registry, "up/sha512");
      await expectError(await finish(loc, wrong, data), 400, "DIGEST_INVALID");
      expect(await stored(registry, wrong)).toBe(false);
      expect(await stored(registry, digestOf(data, "sha512"))).toBe(false);
    });
  });
});
