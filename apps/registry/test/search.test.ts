// GET /v1/search without authentication (loopback, open mode): every repository whose name contains
// `q`, in catalog order, paged; bad paging refused with a spec-shaped error.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, pushImage, startTestRegistry, type TestRegistry } from "./harness.js";

interface SearchBody {
  num_results: number;
  num_pages: number;
  page: number;
  page_size: number;
  query: string;
  results: { name: string; description: string; star_count: number; is_official: boolean; is_automated: boolean }[];
}

describe("GET /v1/search", () => {
  let registry: TestRegistry;
  const names = ["web/frontend", "web/backend", "db/postgres", "tools/webhook", "zeta"];

  beforeAll(async () => {
    registry = await startTestRegistry();
    for (const name of names) await pushImage(registry, name);
  });
  afterAll(() => registry.destroy());

  const search = async (query: string) => {
    const res = await call(registry, "GET", `/v1/search?${query}`);
    return { status: res.statusCode, body: (await res.body.json()) as SearchBody };
  };

  it("finds names containing q, in catalog order, with docker's v1 fields", async () => {
    const { status, body } = await search("q=web");
    expect(status).toBe(200);
    expect(body).toEqual({
      num_results: 3,
      num_pages: 1,
      page: 1,
      page_size: 25,
      query: "web",
      results: ["tools/webhook", "web/backend", "web/frontend"].map((name) => ({
        name,
        description: "",
        star_count: 0,
        is_official: false,
        is_automated: false,
      })),
    });
    // No q: everything; a q matching nothing: an empty list, not an error.
    expect((await search("")).body.num_results).toBe(names.length);
    expect((await search("q=nothing-like-this")).body).toMatchObject({ num_results: 0, num_pages: 0, results: [] });
  });

  it("pages with n and page; refuses sizes and pages out of range", async () => {
    const pages = [1, 2].map((page) => search(`q=web&n=2&page=${page}`));
    const [first, second] = await Promise.all(pages);
    expect(first?.body.results.map((r) => r.name)).toEqual(["tools/webhook", "web/backend"]);
    expect(second?.body.results.map((r) => r.name)).toEqual(["web/frontend"]);
    expect(second?.body).toMatchObject({ num_results: 3, num_pages: 2, page: 2, page_size: 2 });
    expect((await search("q=web&page=9")).body.results).toEqual([]);
    for (const bad of ["n=0", "n=101", "n=-1", "page=0", "page=x", `q=${"w".repeat(256)}`]) {
      const { status, body } = await search(bad);
      expect(status, bad).toBe(400);
      expect((body as unknown as { errors: { code: string }[] }).errors[0]?.code).toBe("UNSUPPORTED");
    }
  });
});
