// GET /v1/search?q=&n=&page= — repository search in the shape the docker CLI and dockerd read (the
// Docker Hub v1 search API: `num_results`, `query`, `results[{name, description, star_count,
// is_official, is_automated}]`, with `page`, `page_size` and `num_pages`). With authentication on, it
// needs the catalog scope, as `_catalog` does, and finds only repositories the caller may pull.
import { RegistryError } from "../errors.js";
import type { Ctx, RegistryDeps } from "../http.js";

const DEFAULT_PAGE_SIZE = 25;
/** dockerd's `--limit` range is 1–100. */
const MAX_PAGE_SIZE = 100;
const BATCH = 500;

function integer(c: Ctx, name: string, fallback: number, min: number, max: number): number {
  const value = c.req.query(name);
  if (value === undefined || value === "") return fallback;
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max)
    throw new RegistryError(400, "UNSUPPORTED", { [name]: value.slice(0, 50) }, `${name} must be an integer from ${min} to ${max}`);
  return Number(value);
}

export async function searchRepositories(c: Ctx, deps: RegistryDeps, visible?: (name: string) => boolean): Promise<Response> {
  const query = c.req.query("q") ?? "";
  if (query.length > 255) throw new RegistryError(400, "UNSUPPORTED", undefined, "q is longer than 255 characters");
  const pageSize = integer(c, "n", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE);
  const page = integer(c, "page", 1, 1, 1_000_000);
  // Substring match on the repository name, case-insensitive, in the catalog's (ASCII) order.
  const needle = query.toLowerCase();
  const matches: string[] = [];
  for (let after = ""; ; ) {
    const batch = await deps.metadata.listRepositories(BATCH, after);
    for (const name of batch.items) if (name.includes(needle) && (!visible || visible(name))) matches.push(name);
    if (!batch.more || batch.items.length === 0) break;
    after = batch.items.at(-1) as string;
  }
  const results = matches.slice((page - 1) * pageSize, page * pageSize).map((name) => ({
    name,
    description: "",
    star_count: 0,
    is_official: false,
    is_automated: false,
  }));
  return c.json({
    num_results: matches.length,
    num_pages: Math.ceil(matches.length / pageSize),
    page,
    page_size: pageSize,
    query,
    results,
  });
}
