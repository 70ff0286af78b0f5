import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, expectError, header, startTestRegistry, type TestRegistry } from "./harness.js";

describe("base endpoint (end-1)", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(() => registry.destroy());

  it("GET /v2/ answers 200 with the Docker-Distribution-API-Version header", async () => {
    const res = await call(registry, "GET", "/v2/");
    expect(res.statusCode).toBe(200);
    expect(header(res, "docker-distribution-api-version")).toBe("registry/2.0");
    expect(await res.body.json()).toEqual({});
  });

  it("HEAD /v2/ answers 200", async () => {
    const res = await call(registry, "HEAD", "/v2/");
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    expect(header(res, "docker-distribution-api-version")).toBe("registry/2.0");
  });

  it("sends the API version header on error responses too", async () => {
    const res = await call(registry, "GET", "/v2/nothing-here/manifests/latest");
    expect(header(res, "docker-distribution-api-version")).toBe("registry/2.0");
    await expectError(res, 404, "MANIFEST_UNKNOWN");
  });

  it("answers an unknown endpoint under /v2/ with 404 and a spec error body", async () => {
    const res = await call(registry, "GET", "/v2/some/repo/unknown-kind/x");
    await expectError(res, 404, "NAME_UNKNOWN");
  });

  it("answers a method an endpoint does not have with 405 and Allow", async () => {
    const res = await call(registry, "POST", "/v2/some/repo/tags/list");
    expect(header(res, "allow")).toBe("GET");
    await expectError(res, 405, "UNSUPPORTED");
  });

  it("answers paths outside /v2/ with 404", async () => {
    const res = await call(registry, "GET", "/v1/_ping");
    await expectError(res, 404, "UNSUPPORTED");
  });

  it("serves /health", async () => {
    const res = await call(registry, "GET", "/health");
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({ status: "ok" });
  });
});
