import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { Agent } from "node:http";
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, test } from "vitest";
import { blobPath, exists, listUploads, uploadPath, verifyBlobStore } from "./support/data-dir.js";
import { expectStatus, header, openRequest, RegistryClient, sha256, write } from "./support/http.js";
import { RegistryProcess } from "./support/registry-process.js";

/**
 * Faults around resumable uploads, against the real binary: the process killed mid-request, a
 * client vanishing mid-request, and a graceful SIGTERM while a request is still streaming.
 */

const MiB = 1024 * 1024;
const PIECE = 64 * 1024;

let registry: RegistryProcess | undefined;

afterEach(async () => {
  await registry?.dispose();
  registry = undefined;
});

/** Polls the session's persisted size until `done(size)` holds (the server is consuming the body). */
async function waitForOffset(client: RegistryClient, location: string, done: (size: number) => boolean): Promise<number> {
  for (let attempt = 0; attempt < 2000; attempt++) {
    const size = await client.uploadOffset(location);
    if (done(size)) return size;
    await sleep(10);
  }
  throw new Error(`upload ${location} never reached the expected size`);
}

/** Opens a TCP connection to the registry's port; resolves false when it is refused (the server stopped listening). */
function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => (error.code === "ECONNREFUSED" ? resolve(false) : reject(error)));
  });
}

/**
 * Resumes an upload the way a client does after an interruption: ask the registry where the session
 * stands and send the rest from there. A 416 means the registry's view moved on (the interrupted
 * request was still being wound down), so ask again. The first resumed chunk is small, so a refusal
 * never races a large body; once it is accepted the rest follows.
 */
async function resume(client: RegistryClient, location: string, data: Buffer): Promise<{ offset: number; location: string }> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const offset = await client.uploadOffset(location);
    const first = data.subarray(offset, offset + PIECE);
    const response = await client.request("PATCH", location, {
      headers: { "Content-Type": "application/octet-stream", "Content-Range": `${offset}-${offset + first.byteLength - 1}` },
      body: first,
    });
    if (response.status === 416) {
      await sleep(20);
      continue;
    }
    expectStatus(response, 202, `resume PATCH from ${offset}`);
    expect(header(response.headers, "range")).toBe(`0-${offset + first.byteLength - 1}`);
    const next = header(response.headers, "location") ?? location;
    return { offset, location: await client.patchChunk(next, offset + first.byteLength, data.subarray(offset + first.byteLength)) };
  }
  throw new Error("upload could not be resumed");
}

async function expectBlob(client: RegistryClient, repo: string, data: Buffer): Promise<void> {
  const digest = sha256(data);
  const head = await client.request("HEAD", `/v2/${repo}/blobs/${digest}`);
  expect(head.status).toBe(200);
  expect(header(head.headers, "content-length")).toBe(String(data.byteLength));
  const got = await client.getBlob(repo, digest);
  expect(got.status).toBe(200);
  expect(header(got.headers, "docker-content-digest")).toBe(digest);
  expect(got.body.byteLength).toBe(data.byteLength);
  expect(got.body.equals(data)).toBe(true);
}

describe("upload faults", () => {
  test("SIGKILL during a chunked upload: no partial blob, the session resumes from its persisted offset after restart", async () => {
    registry = await RegistryProcess.start();
    const client = new RegistryClient(registry.url);
    const repo = "e2e/crash";
    const data = randomBytes(12 * MiB);
    const digest = sha256(data);

    let location = await client.startUpload(repo);
    location = await client.patchChunk(location, 0, data.subarray(0, 2 * MiB));
    location = await client.patchChunk(location, 2 * MiB, data.subarray(2 * MiB, 4 * MiB));

    // The third chunk declares 8 MiB and streams slowly; its last piece is held back, so the request
    // is always unfinished when the process dies.
    const chunk = data.subarray(4 * MiB);
    const inFlight = openRequest("PATCH", client.url(location), {
      "Content-Type": "application/octet-stream",
      "Content-Range": `${4 * MiB}-${data.byteLength - 1}`,
      "Content-Length": String(chunk.byteLength),
    });
    const outcome = inFlight.response.then(
      (response) => ({ response }),
      (error: Error) => ({ error }),
    );
    let killed = false;
    let attempted = 0;
    const writer = (async () => {
      for (let offset = 0; offset < chunk.byteLength - PIECE && !killed; offset += PIECE) {
        attempted = offset + PIECE;
        await write(inFlight.req, chunk.subarray(offset, offset + PIECE));
        await sleep(2);
      }
    })().catch(() => undefined); // the socket dies with the server

    // Kill once part of this chunk is on disk, while the client is still sending.
    const before = await waitForOffset(client, location, (size) => size > 4 * MiB);
    const status = await registry.stop("SIGKILL");
    killed = true;
    expect(status.signal).toBe("SIGKILL");
    const result = await outcome;
    expect("error" in result, "the interrupted PATCH gets no response").toBe(true);
    await writer;

    await registry.restart();

    // Nothing was published: the digest is unknown and no file exists at its address.
    expect((await client.request("HEAD", `/v2/${repo}/blobs/${digest}`)).status).toBe(404);
    expect((await client.getBlob(repo, digest)).status).toBe(404);
    expect(await exists(blobPath(registry.dataDir, digest))).toBe(false);

    // The session survived with what reached the disk, and that is a correct prefix of the data.
    const offset = await client.uploadOffset(location);
    expect(offset).toBeGreaterThanOrEqual(before);
    expect(offset).toBeLessThanOrEqual(4 * MiB + attempted);
    const partial = await readFile(uploadPath(registry.dataDir, location));
    expect(partial.byteLength).toBe(offset);
    expect(partial.equals(data.subarray(0, offset))).toBe(true);

    // A chunk that does not start at the persisted offset is refused with where to resume. Over a
    // keep-alive connection, the next answer on the same connection must still parse (the error
    // body is framed by its own length).
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const wrong = await client.request("PATCH", location, {
        headers: { "Content-Range": `${4 * MiB}-${4 * MiB + 1023}` },
        body: chunk.subarray(0, 1024),
        agent: keepAlive,
      });
      expect(wrong.status).toBe(416);
      expect(header(wrong.headers, "range")).toBe(`0-${offset - 1}`);
      expect(JSON.parse(wrong.body.toString("utf8")).errors[0].code).toBe("BLOB_UPLOAD_INVALID");
      const again = await client.request("GET", location, { agent: keepAlive });
      expect(again.status).toBe(204);
      expect(header(again.headers, "range")).toBe(`0-${offset - 1}`);
    } finally {
      keepAlive.destroy();
    }

    const resumed = await client.patchChunk(location, offset, data.subarray(offset));
    const put = await client.finishUpload(resumed, digest);
    expect(put.status).toBe(201);
    expect(header(put.headers, "docker-content-digest")).toBe(digest);
    expect(header(put.headers, "location")).toBe(`/v2/${repo}/blobs/${digest}`);

    await expectBlob(client, repo, data);
    expect((await readFile(blobPath(registry.dataDir, digest))).equals(data)).toBe(true);
    expect(await listUploads(registry.dataDir)).toEqual([]);
    expect(await verifyBlobStore(registry.dataDir)).toEqual([digest]);
    expect((await client.request("GET", location)).status).toBe(404);
    expect(registry.errorLogs()).toEqual([]);
  });

  test("a client that disconnects mid-PATCH leaves a session that resumes from the bytes received", async () => {
    registry = await RegistryProcess.start();
    const client = new RegistryClient(registry.url);
    const repo = "e2e/disconnect";
    const data = randomBytes(6 * MiB);
    const digest = sha256(data);

    let location = await client.startUpload(repo);
    location = await client.patchChunk(location, 0, data.subarray(0, MiB));

    // A raw socket: headers announcing the remaining 5 MiB, then only part of the body.
    const socket: Socket = connect({ host: "127.0.0.1", port: registry.port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const rest = data.subarray(MiB);
    const head =
      `PATCH ${location} HTTP/1.1\r\n` +
      `Host: ${registry.authority}\r\n` +
      "Content-Type: application/octet-stream\r\n" +
      `Content-Range: ${MiB}-${data.byteLength - 1}\r\n` +
      `Content-Length: ${rest.byteLength}\r\n` +
      "\r\n";
    const partSize = 2 * MiB + 12_345;
    await new Promise<void>((resolve, reject) =>
      socket.write(Buffer.concat([Buffer.from(head, "latin1"), rest.subarray(0, partSize)]), (error) =>
        error ? reject(error) : resolve(),
      ),
    );
    // The registry is writing this request's bytes: it has more than the first chunk.
    const seen = await waitForOffset(client, location, (size) => size > MiB);
    socket.destroy();

    const offset = await client.uploadOffset(location);
    expect(offset).toBeGreaterThanOrEqual(seen);
    expect(offset).toBeLessThanOrEqual(MiB + partSize);

    const resumed = await resume(client, location, data);
    expect(resumed.offset).toBeGreaterThanOrEqual(offset);
    expect(resumed.offset).toBeLessThanOrEqual(MiB + partSize);
    const put = await client.finishUpload(resumed.location, digest);
    expect(put.status).toBe(201);
    expect(header(put.headers, "docker-content-digest")).toBe(digest);

    await expectBlob(client, repo, data);
    expect(await listUploads(registry.dataDir)).toEqual([]);
    // The registry is still healthy after the aborted request.
    expect((await client.request("GET", "/v2/")).status).toBe(200);
    expect(registry.running).toBe(true);
    // A vanished client is not a server error: nothing at error level (pino's 50) was logged.
    expect(registry.output).not.toMatch(/"level":50/);
  });

  test("SIGTERM while a large upload streams: the request completes, then the process exits cleanly", async () => {
    registry = await RegistryProcess.start();
    const client = new RegistryClient(registry.url);
    const repo = "e2e/shutdown";
    const data = randomBytes(16 * MiB);
    const digest = sha256(data);
    const location = await client.startUpload(repo);

    // One PUT carries the whole blob (monolithic upload to the session) over a keep-alive connection,
    // as registry clients use them.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const inFlight = openRequest(
        "PUT",
        client.url(`${location}?digest=${digest}`),
        { "Content-Type": "application/octet-stream", "Content-Length": String(data.byteLength) },
        agent,
      );
      for (let offset = 0; offset < 4 * MiB; offset += PIECE) await write(inFlight.req, data.subarray(offset, offset + PIECE));
      // The handler is streaming this body to disk when the signal arrives.
      await waitForOffset(client, location, (size) => size > 0);
      registry.signal("SIGTERM");

      // Shutdown has begun once the listening socket is gone; the in-flight request is still open.
      for (let attempt = 0; (await canConnect(registry.port)) && attempt < 1000; attempt++) await sleep(10);
      expect(await canConnect(registry.port)).toBe(false);
      expect(registry.running).toBe(true);

      for (let offset = 4 * MiB; offset < data.byteLength; offset += PIECE)
        await write(inFlight.req, data.subarray(offset, offset + PIECE));
      inFlight.req.end();
      const response = await inFlight.response;
      expect(response.status).toBe(201);
      expect(header(response.headers, "docker-content-digest")).toBe(digest);
      // A shutting-down server tells keep-alive clients not to reuse the connection.
      expect(header(response.headers, "connection")).toBe("close");

      const exit = await registry.waitForExit();
      expect(exit).toEqual({ code: 0, signal: null });
      expect(registry.errorLogs()).toEqual([]);
    } finally {
      agent.destroy();
    }

    // Everything the completed request stored is there after a restart.
    await registry.restart();
    await expectBlob(client, repo, data);
    expect((await stat(blobPath(registry.dataDir, digest))).size).toBe(data.byteLength);
    expect(await listUploads(registry.dataDir)).toEqual([]);
    expect(registry.errorLogs()).toEqual([]);
  });
});
