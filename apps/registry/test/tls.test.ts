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
