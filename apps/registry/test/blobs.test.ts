import { createHash } from "node:crypto";
import { digestOf } from "@minato/oci";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bytes,
  call,
  expectError,
  header,
  headStatus,
  pushBlob,
  randomBlob,
  startTestRegistry,
  stored,
  type TestRegistry,
} from "./harness.js";

describe("blobs (end-2, end-10)", () => {
  let registry: TestRegistry;
  const name = "library/blobs";
  const data = randomBlob(1000);
  let digest: `${string}:${string}`;

  beforeAll(async () => {
    registry = await startTestRegistry();
    digest = await pushBlob(registry, name, data);
  });
  afterAll(() => registry.destroy());

  describe("GET", () => {
    it("answers 200 with the exact bytes and Docker-Content-Digest", async () => {
      const res = await call(registry, "GET", `/v2/${name}/blobs/${digest}`);
      expect(res.statusCode).toBe(200);
      expect(header(res, "docker-content-digest")).toBe(digest);
      expect(header(res, "content-length")).toBe("1000");
      expect(header(res, "docker-distribution-api-version")).toBe("registry/2.0");
      const body = await bytes(res);
      expect(body.equals(data)).toBe(true);
      expect(digestOf(body)).toBe(digest);
    });

    it("answers 404 BLOB_UNKNOWN for a blob the repository does not have", async () => {
      const res = await call(registry, "GET", `/v2/${name}/blobs/${digestOf("not pushed")}`);
      await expectError(res, 404, "BLOB_UNKNOWN");
    });

    it("answers 404 BLOB_UNKNOWN in a repository that does not exist", async () => {
      const res = await call(registry, "GET", `/v2/no/such/repo/blobs/${digest}`);
      await expectError(res, 404, "BLOB_UNKNOWN");
    });

    it("answers 400 DIGEST_INVALID for a malformed digest", async () => {
      for (const bad of ["sha256:1234", "sha256:" + "A".repeat(64), "nodigest", "md5:d41d8cd98f00b204e9800998ecf8427e"]) {
        const res = await call(registry, "GET", `/v2/${name}/blobs/${bad}`);
        await expectError(res, 400, "DIGEST_INVALID");
      }
    });
  });

  describe("Range (RFC 9110 §14)", () => {
    async function ranged(range: string) {
      return call(registry, "GET", `/v2/${name}/blobs/${digest}`, { headers: { range } });
    }

    it("answers a bounded range with 206, Content-Range and exactly those bytes", async () => {
      const res = await ranged("bytes=10-19");
      expect(res.statusCode).toBe(206);
      expect(header(res, "content-range")).toBe("bytes 10-19/1000");
      expect(header(res, "content-length")).toBe("10");
      expect((await bytes(res)).equals(data.subarray(10, 20))).toBe(true);
    });

    it("answers an open-ended range with the rest of the blob", async () => {
      const res = await ranged("bytes=990-");
      expect(res.statusCode).toBe(206);
      expect(header(res, "content-range")).toBe("bytes 990-999/1000");
      expect((await bytes(res)).equals(data.subarray(990))).toBe(true);
    });

    it("answers a suffix range with the last N bytes", async () => {
      const res = await ranged("bytes=-7");
      expect(res.statusCode).toBe(206);
      expect(header(res, "content-range")).toBe("bytes 993-999/1000");
      expect((await bytes(res)).equals(data.subarray(993))).toBe(true);
    });

    it("answers a suffix longer than the blob with the whole blob", async () => {
      const res = await ranged("bytes=-5000");
      expect(res.statusCode).toBe(206);
      expect(header(res, "content-range")).toBe("bytes 0-999/1000");
      expect((await bytes(res)).equals(data)).toBe(true);
    });

    it("clamps a last byte past the end", async () => {
      const res = await ranged("bytes=995-5000");
      expect(res.statusCode).toBe(206);
      expect(header(res, "content-range")).toBe("bytes 995-999/1000");
      expect((await bytes(res)).equals(data.subarray(995))).toBe(true);
    });

    it("serves single bytes at both ends", async () => {
      const first = await ranged("bytes=0-0");
      expect(first.statusCode).toBe(206);
      expect((await bytes(first)).equals(data.subarray(0, 1))).toBe(true);
      const last = await ranged("bytes=999-999");
      expect(last.statusCode).toBe(206);
      expect((await bytes(last)).equals(data.subarray(999))).toBe(true);
    });

    it("answers an unsatisfiable range with 416 and Content-Range: bytes */size", async () => {
      for (const range of ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=20-10"]) {
        const res = await ranged(range);
        expect(res.statusCode, range).toBe(416);
        expect(header(res, "content-range")).toBe("bytes */1000");
        await expectError(res, 416, "BLOB_UNKNOWN");
      }
    });

    it("ignores a multi-range request and serves the whole blob", async () => {
      const res = await ranged("bytes=0-1,5-6");
      expect(res.statusCode).toBe(200);
      expect((await bytes(res)).equals(data)).toBe(true);
    });

    it("answers HEAD with a range with 206 and the range's length", async () => {
      const res = await call(registry, "HEAD", `/v2/${name}/blobs/${digest}`, { headers: { range: "bytes=100-199" } });
      await res.body.dump();
      expect(res.statusCode).toBe(206);
      expect(header(res, "content-length")).toBe("100");
      expect(header(res, "content-range")).toBe("bytes 100-199/1000");
    });
  });

  describe("HEAD", () => {
    it("answers 200 with Content-Length and Docker-Content-Digest and no body", async () => {
      const res = await call(registry, "HEAD", `/v2/${name}/blobs/${digest}`);
      expect(res.statusCode).toBe(200);
      expect(header(res, "content-length")).toBe("1000");
      expect(header(res, "docker-content-digest")).toBe(digest);
      expect((await bytes(res)).byteLength).toBe(0);
    });

    it("answers 404 without a body for an unknown blob", async () => {
      const res = await call(registry, "HEAD", `/v2/${name}/blobs/${digestOf("unknown")}`);
      expect(res.statusCode).toBe(404);
      expect((await bytes(res)).byteLength).toBe(0);
    });
  });

  describe("DELETE", () => {
    it("answers 202, after which GET and HEAD answer 404", async () => {
      const blob = randomBlob(50);
      const doomed = await pushBlob(registry, name, blob);
      expect(await headStatus(registry, `/v2/${name}/blobs/${doomed}`)).toBe(200);

      const res = await call(registry, "DELETE", `/v2/${name}/blobs/${doomed}`);
      await res.body.dump();
      expect(res.statusCode).toBe(202);

      await expectError(await call(registry, "GET", `/v2/${name}/blobs/${doomed}`), 404, "BLOB_UNKNOWN");
      expect(await headStatus(registry, `/v2/${name}/blobs/${doomed}`)).toBe(404);
      await expectError(await call(registry, "DELETE", `/v2/${name}/blobs/${doomed}`), 404, "BLOB_UNKNOWN");
    });

    it("removes the blob from one repository only", async () => {
      const blob = randomBlob(60);
      const shared = await pushBlob(registry, "delete/one", blob);
      await pushBlob(registry, "delete/two", blob);
      const res = await call(registry, "DELETE", `/v2/delete/one/blobs/${shared}`);
      await res.body.dump();
      expect(res.statusCode).toBe(202);
      expect(await headStatus(registry, `/v2/delete/one/blobs/${shared}`)).toBe(404);
      const other = await call(registry, "GET", `/v2/delete/two/blobs/${shared}`);
      expect(other.statusCode).toBe(200);
      expect((await bytes(other)).equals(blob)).toBe(true);
    });

    it("answers 404 BLOB_UNKNOWN for a blob that was never pushed", async () => {
      await expectError(await call(registry, "DELETE", `/v2/${name}/blobs/${digestOf("never")}`), 404, "BLOB_UNKNOWN");
    });

    it("answers 400 DIGEST_INVALID for a malformed digest", async () => {
      await expectError(await call(registry, "DELETE", `/v2/${name}/blobs/sha256:nothex`), 400, "DIGEST_INVALID");
    });
  });

  describe("sha512", () => {
    it("stores and serves a blob addressed by a sha512 digest", async () => {
      const blob = randomBlob(4096);
      const digest512 = await pushBlob(registry, name, blob, "sha512");
      expect(digest512).toBe(`sha512:${createHash("sha512").update(blob).digest("hex")}`);
      expect(await stored(registry, digest512)).toBe(true);

      const res = await call(registry, "GET", `/v2/${name}/blobs/${digest512}`);
      expect(res.statusCode).toBe(200);
      expect(header(res, "docker-content-digest")).toBe(digest512);
      expect((await bytes(res)).equals(blob)).toBe(true);

      const ranged = await call(registry, "GET", `/v2/${name}/blobs/${digest512}`, { headers: { range: "bytes=-16" } });
      expect(ranged.statusCode).toBe(206);
      expect((await bytes(ranged)).equals(blob.subarray(-16))).toBe(true);

      const head = await call(registry, "HEAD", `/v2/${name}/blobs/${digest512}`);
      await head.body.dump();
      expect(header(head, "content-length")).toBe("4096");
      expect(header(head, "docker-content-digest")).toBe(digest512);
    });

    it("does not serve a sha512 blob under its sha256 digest", async () => {
      const blob = randomBlob(100);
      await pushBlob(registry, name, blob, "sha512");
      expect(await headStatus(registry, `/v2/${name}/blobs/${digestOf(blob)}`)).toBe(404);
    });
  });
});
