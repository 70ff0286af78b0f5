import { MediaType } from "@minato/oci";
import { RegistryError } from "../errors.js";
import { type Ctx, nextLink, pageSize, type RegistryDeps, requireDigest } from "../http.js";
import type { Page } from "../metadata/store.js";

/** GET /v2/<name>/tags/list — ASCII order, `n`/`last` pagination, `Link` to the next page. */
export async function listTags(c: Ctx, deps: RegistryDeps, name: string): Promise<Response> {
  const n = pageSize(c, deps.options.maxPageSize);
  const last = c.req.query("last") ?? "";
  const page = await deps.metadata.listTags(name, n, last);
  if (!page) throw new RegistryError(404, "NAME_UNKNOWN", { name });
  // n=0 MUST answer an empty list without Link (distribution-spec "Listing Tags").
  if (page.more && n > 0) c.header("Link", nextLink(`/v2/${name}/tags/list`, n, page.items.at(-1) as string));
  return c.json({ name, tags: page.items });
}

/** GET /v2/_catalog — every repository (with authentication, those the caller may pull), paginated like tags. */
export async function listRepositories(c: Ctx, deps: RegistryDeps, visible?: (name: string) => boolean): Promise<Response> {
  const n = pageSize(c, deps.options.maxPageSize);
  const last = c.req.query("last") ?? "";
  const page = visible ? await visiblePage(deps, n, last, visible) : await deps.metadata.listRepositories(n, last);
  if (page.more && n > 0) c.header("Link", nextLink("/v2/_catalog", n, page.items.at(-1) as string));
  return c.json({ repositories: page.items });
}

/** Reads the catalog in batches until `n` visible names are found, so pages stay full and `Link` stays right. */
async function visiblePage(deps: RegistryDeps, n: number, last: string, visible: (name: string) => boolean): Promise<Page<string>> {
  const items: string[] = [];
  let after = last;
  for (;;) {
    const batch = await deps.metadata.listRepositories(Math.max(n, 100), after);
    for (const name of batch.items) {
      if (!visible(name)) continue;
      if (items.length === n) return { items, more: true };
      items.push(name);
    }
    if (!batch.more || batch.items.length === 0) return { items, more: false };
    after = batch.items.at(-1) as string;
  }
}

/**
 * GET /v2/<name>/referrers/<digest> — an image index of the manifests whose subject is <digest>.
 * Never 404 for a valid digest (distribution-spec "Listing Referrers"); an unknown repository simply
 * has no referrers.
 */
export async function listReferrers(c: Ctx, deps: RegistryDeps, name: string, reference: string): Promise<Response> {
  const subject = requireDigest(reference);
  const artifactType = c.req.query("artifactType") || undefined;
  const n = pageSize(c, deps.options.maxPageSize);
  const last = c.req.query("last") ?? "";
  const all = await deps.metadata.listReferrers(name, subject, artifactType);
  const after = last ? all.filter((d) => d.digest > last) : all;
  const manifests = after.slice(0, n);
  if (artifactType) c.header("OCI-Filters-Applied", "artifactType");
  if (after.length > n && n > 0) {
    c.header(
      "Link",
      nextLink(`/v2/${name}/referrers/${subject}`, n, manifests.at(-1)?.digest as string, artifactType ? { artifactType } : {}),
    );
  }
  const body = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests });
  return c.body(body, 200, { "Content-Type": MediaType.ociIndex });
}
