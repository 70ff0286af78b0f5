import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRegistry, type TestRegistry } from "./harness.js";

// A throwaway self-signed certificate for 127.0.0.1, made with the openssl CLI.
async function selfSigned(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
    ],
    { stdio: "ignore" },
  );
  return { cert, key };
}

describe("HTTPS", () => {
  let dir: string;
  let registry: TestRegistry;
  let ca: Buffer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "minato-tls-"));
    const { cert, key } = await selfSigned(dir);
    ca = await readFile(cert);
    registry = await startTestRegistry({ tlsCert: cert, tlsKey: key });
  });
  afterAll(async () => {
    await registry.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves the API over TLS with the configured certificate", async () => {
    expect(registry.url.startsWith("https://127.0.0.1:")).toBe(true);
    const dispatcher = new Agent({ connect: { ca } });
    const res = await request(`${registry.url}/v2/`, { dispatcher });
    expect(res.statusCode).toBe(200);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    await res.body.dump();
    await dispatcher.close();
  });

  it("is not reachable over plain HTTP", async () => {
    await expect(request(registry.url.replace("https:", "http:") + "/v2/", { headersTimeout: 5000 })).rejects.toThrow();
  });

  it("rejects clients that do not trust the certificate", async () => {
    await expect(request(`${registry.url}/v2/`)).rejects.toThrow(/self[- ]signed|certificate/i);
  });
});

describe("HTTPS connection cap", () => {
  it("answers 429 to a TLS connection over its address's cap, and serves it once a slot is free", async () => {
    const dir = await mkdtemp(join(tmpdir(), "minato-tls-cap-"));
    const { cert, key } = await selfSigned(dir);
    const ca = await readFile(cert);
    const registry = await startTestRegistry({
      tlsCert: cert,
      tlsKey: key,
      limits: { connectionsPerClient: 2, keepAliveTimeoutMs: 60_000 },
    });
    // One agent, one kept-alive connection each.
    const agent = () => new Agent({ connect: { ca }, connections: 1 });
    const [first, second, third] = [agent(), agent(), agent()];
    const status = async (dispatcher: Agent) => {
      const res = await request(`${registry.url}/v2/`, { dispatcher });
      const text = await res.body.text();
      return { status: res.statusCode, text };
    };
    try {
      expect((await status(first)).status).toBe(200);
      expect((await status(second)).status).toBe(200);
      const refused = await status(third);
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.text).errors[0].code).toBe("TOOMANYREQUESTS");
      await first.close();
      const deadline = Date.now() + 30_000;
      let last = refused.status;
      while (last !== 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        last = (await status(third)).status;
      }
      expect(last).toBe(200);
    } finally {
      await Promise.all([first, second, third].filter((a) => !a.closed).map((a) => a.close()));
      await registry.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
