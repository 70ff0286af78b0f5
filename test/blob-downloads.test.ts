import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { expect, test } from "vitest";
import { header, RegistryClient, sha256 } from "./support/http.js";
import { RegistryProcess } from "./support/registry-process.js";

/**
 * Regression: blob reads once handed a bare descriptor of a FileHandle to a read stream. The stream
 * closed the descriptor, and when the garbage collector later collected the FileHandle it closed the
 * same number again — EBADF from the collector killed the process (or closed a reused descriptor).
 * A tiny young generation makes V8 collect those handles within a few downloads.
 */
test("serving a blob hundreds of times, whole and in ranges, under constant garbage collection", async () => {
  const registry = await RegistryProcess.start({ nodeArgs: ["--max-semi-space-size=1"] });
  try {
    const client = new RegistryClient(registry.url);
    const data = randomBytes(256 * 1024);
    const digest = await client.pushBlob("e2e/downloads", data);
    try {
      for (let i = 0; i < 150; i++) {
        const whole = await client.getBlob("e2e/downloads", digest);
        expect(whole.status).toBe(200);
        expect(whole.body.equals(data)).toBe(true);
        const start = (i * 997) % data.byteLength;
        const ranged = await client.request("GET", `/v2/e2e/downloads/blobs/${digest}`, { headers: { Range: `bytes=${start}-` } });
        expect(ranged.status).toBe(206);
        expect(header(ranged.headers, "content-range")).toBe(`bytes ${start}-${data.byteLength - 1}/${data.byteLength}`);
        expect(ranged.body.equals(data.subarray(start))).toBe(true);
      }
    } catch (error) {
      // A dropped connection usually means the process died: say so, with its last words.
      const exit = await Promise.race([registry.exited, sleep(2000).then(() => undefined)]);
      if (exit) throw new Error(`the registry exited (${JSON.stringify(exit)}) while serving downloads:\n${registry.output}`);
      throw error;
    }
    expect(sha256(data)).toBe(digest);
    expect(registry.running).toBe(true);
    expect(registry.errorLogs()).toEqual([]);
  } finally {
    await registry.dispose();
  }
});
