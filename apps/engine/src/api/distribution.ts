// What the daemon asks a registry on a client's behalf without pulling: `GET /distribution/{name}/json`
// (swagger DistributionInspect: the descriptor a reference resolves to and the platforms it offers)
// and `GET /images/search` (swagger ImageSearch, through the registry's v1 search API). Both use the
// caller's `X-Registry-Auth` credentials.
import { type Descriptor, type ImageReference, isIndexMediaType, parseImageReference, parseManifest } from "@minato/oci";
import { AuthenticationError, ContentDigestError, RegistryResponseError } from "@minato/registry-client";
import type { Hono } from "hono";
import type { Engine } from "../engine.js";
import { parseReferenceOrThrow } from "../images.js";
import { registryAuthHeader } from "./auth.js";
import { ApiError, badRequest } from "./errors.js";
import { parseFilters } from "./images.js";
import type { EngineEnv } from "./types.js";

/**
 * A registry's failure as the API reports it: 401 for missing or wrong credentials, 403 when the
 * caller's are refused access, 404 for what it does not have.
 */
function registryFailure(error: unknown, what: string, authenticated: boolean): unknown {
  if (error instanceof ApiError) return error;
  if (error instanceof AuthenticationError) return new ApiError(401, error.message);
  if (error instanceof RegistryResponseError) {
    if (error.status === 404) return new ApiError(404, `${what}: not found (${error.message})`);
    if (error.status === 401 || (error.status === 403 && !authenticated))
      return new ApiError(401, `${what}: unauthorized: authentication required`);
    if (error.status === 403) return new ApiError(403, `${what}: denied: requested access to the resource is denied`);
    return new ApiError(500, error.message);
  }
  if (error instanceof ContentDigestError) return new ApiError(500, `${what}: ${error.message}`);
  return new ApiError(500, `${what}: ${(error as Error).message}`);
}

/** swagger `OCIPlatform` from an index entry's or an image config's fields. */
function platformOf(p: { architecture?: string; os?: string; variant?: string; "os.version"?: string; "os.features"?: string[] }) {
  return {
    architecture: p.architecture ?? "",
    os: p.os ?? "",
    ...(p["os.version"] ? { "os.version": p["os.version"] } : {}),
    ...(p["os.features"]?.length ? { "os.features": p["os.features"] } : {}),
    ...(p.variant ? { variant: p.variant } : {}),
  };
}

async function inspectDistribution(engine: Engine, reference: ImageReference, header: string | undefined) {
  const client = engine.registryClient(reference.registry, registryAuthHeader(header));
  const top = await client.getManifest(reference.repository, reference.digest ?? reference.tag ?? "latest");
  const summary = parseManifest(top.bytes, top.mediaType);
  const descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.byteLength };
  if (isIndexMediaType(top.mediaType)) {
    const platforms = summary.manifests.filter((m) => m.platform).map((m) => platformOf(m.platform as Descriptor["platform"] & object));
    return { Descriptor: descriptor, Platforms: platforms };
  }
  if (summary.kind !== "image") throw badRequest(`${reference.repository}: not an image manifest`);
  const config = JSON.parse((await client.readBlob(reference.repository, summary.blobs[0] as Descriptor)).toString("utf8"));
  return { Descriptor: descriptor, Platforms: [platformOf(config)] };
}

const SEARCH_FILTERS = ["is-automated", "is-official", "stars"];

/** dockerd's split of a search term: `host[:port]/name` searches that registry, anything else Docker Hub. */
function searchTarget(term: string): { registry: string; query: string } {
  const slash = term.indexOf("/");
  const first = slash === -1 ? "" : term.slice(0, slash);
  if (first.includes(".") || first.includes(":") || first === "localhost") {
    return { registry: parseImageReference(`${first}/x`).registry, query: term.slice(slash + 1) };
  }
  return { registry: "docker.io", query: term };
}

function booleanFilter(values: string[] | undefined, name: string): boolean | undefined {
  if (!values || values.length === 0) return undefined;
  const value = values[0] as string;
  if (!/^(1|0|true|false|t|f|TRUE|FALSE|True|False)$/.test(value)) throw badRequest(`invalid filter '${name}=${value}'`);
  return /^(1|true|t|TRUE|True)$/.test(value);
}

export function distributionRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  app.get("/distribution/:name{.+}/json", async (c) => {
    const name = c.req.param("name");
    const reference = parseReferenceOrThrow(name);
    try {
      return c.json(await inspectDistribution(engine, reference, c.req.header("x-registry-auth")));
    } catch (error) {
      throw registryFailure(error, name, registryAuthHeader(c.req.header("x-registry-auth")) !== undefined);
    }
  });

  app.get("/images/search", async (c) => {
    const term = c.req.query("term") ?? "";
    if (term === "") throw badRequest("term is required");
    const limitText = c.req.query("limit");
    const limit = limitText === undefined || limitText === "" ? 25 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw badRequest(`limit ${limitText} is outside the range of [1, 100]`);
    const filters = parseFilters(c.req.query("filters"), SEARCH_FILTERS);
    const official = booleanFilter(filters["is-official"], "is-official");
    const automated = booleanFilter(filters["is-automated"], "is-automated");
    let stars = 0;
    for (const value of filters.stars ?? []) {
      if (!/^\d+$/.test(value)) throw badRequest(`invalid filter 'stars=${value}'`);
      stars = Math.max(stars, Number(value));
    }
    const { registry, query } = searchTarget(term);
    if (query === "") throw badRequest(`invalid search term ${JSON.stringify(term)}: nothing to search for after the registry`);
    let found: Awaited<ReturnType<ReturnType<Engine["registryClient"]>["search"]>>;
    try {
      found = await engine.registryClient(registry, registryAuthHeader(c.req.header("x-registry-auth"))).search(query, limit);
    } catch (error) {
      throw registryFailure(error, `search of ${registry}`, registryAuthHeader(c.req.header("x-registry-auth")) !== undefined);
    }
    const results = found.results.filter(
      (r) =>
        (official === undefined || r.is_official === official) &&
        (automated === undefined || r.is_automated === automated) &&
        r.star_count >= stars,
    );
    return c.json(
      results.slice(0, limit).map((r) => ({
        description: r.description ?? "",
        is_official: r.is_official === true,
        is_automated: r.is_automated === true,
        name: r.name,
        star_count: r.star_count ?? 0,
      })),
    );
  });
}
