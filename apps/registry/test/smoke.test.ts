import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRegistry, type TestRegistry } from "./harness.js";

describe("registry smoke", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(() => registry.destroy());

  it("answers GET /v2/ with the API version header", async () => {
    const res = await request(`${registry.url}/v2/`);
    expect(res.statusCode).toBe(200);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect(await res.body.json()).toEqual({});
  });
});
