import { createRoute, OpenAPIHono, type z } from "@hono/zod-openapi";
import { type Digest, isValidRepositoryName, isValidTag, parseDigest } from "@minato/oci";
import { deleteCookie, setCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import { RegistryError } from "../errors.js";
import type { Ctx, Env } from "../http.js";
import type { TagOverview } from "../metadata/store.js";
import { deleteReference } from "../routes/manifests.js";
import type { ManifestDescriber } from "./images.js";
import * as S from "./schemas.js";
import { passwordStamp } from "./sessions.js";
import { checkCsrf, checkOrigin, login, SESSION_COOKIE, unauthorized, type Viewer, type ViewerDeps, viewerOf } from "./viewer.js";

export interface ApiDeps extends ViewerDeps {
  describer: ManifestDescriber;
  /** Browser sessions last this long from login. */
  sessionTtlMs: number;
  /** Whether the session cookie is marked Secure (the registry is reached over HTTPS). */
  secureCookie: boolean;
}

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, json(S.ErrorBody, ERROR_DESCRIPTIONS[status] ?? "error")]));
const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "invalid parameter",
  401: "authentication failed, or the session expired",
  403: "not allowed, or a missing or wrong CSRF token",
  404: "no such repository or manifest, or not visible to the caller",
  405: "deletes are disabled on this registry",
  429: "too many failed logins",
};
const security: Record<string, string[]>[] = [{ session: [] }, { basic: [] }, { bearer: [] }];

/** The repository a path names, or 404 when it is invalid, absent or not visible to the caller (a private one looks absent). */
function visibleRepository(viewer: Viewer, raw: string): string {
  if (!isValidRepositoryName(raw) || !viewer.may(raw, "pull")) throw new RegistryError(404, "NAME_UNKNOWN", { name: raw.slice(0, 300) });
  return raw;
}

function digestParam(value: string): Digest {
  try {
    return parseDigest(value).digest;
  } catch {
    throw new RegistryError(400, "DIGEST_INVALID", { digest: value.slice(0, 200) });
  }
}

function page<T>(items: readonly T[], pageNumber: number, pageSize: number): T[] {
  return items.slice((pageNumber - 1) * pageSize, pageNumber * pageSize);
}

/** The browsing API, mounted at /api/v1. Every route is described by its schemas; the OpenAPI document is generated from them. */
export function createApi(a: ApiDeps): OpenAPIHono<Env> {
  const { deps } = a;
  const api = new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const where = issue?.path.join(".") || "request";
        throw new RegistryError(400, "UNSUPPORTED", { field: where }, `invalid ${where}: ${issue?.message ?? "bad value"}`);
      }
    },
  });
  api.openAPIRegistry.registerComponent("securitySchemes", "session", {
    type: "apiKey",
    in: "cookie",
    name: SESSION_COOKIE,
    description: "Web UI session from POST /session; requests that change something also need the X-CSRF-Token header",
  });
  api.openAPIRegistry.registerComponent("securitySchemes", "basic", {
    type: "http",
    scheme: "basic",
    description: "A registry user's password or personal access token",
  });
  api.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "A token from the registry's token service",
  });
  // Hono's own 4xx (a malformed JSON body, a wrong Content-Type) in the API's error shape; the rest
  // goes on to the registry's error handler.
  api.onError((error) => {
    if (error instanceof HTTPException && error.status < 500) {
      throw new RegistryError(error.status, "UNSUPPORTED", undefined, error.message || "bad request");
    }
    throw error;
  });
  api.use(async (c, next) => {
    await next();
    if (!c.res.headers.has("cache-control")) c.header("Cache-Control", "no-store");
  });

  api.openapi(
    createRoute({
      method: "get",
      path: "/repositories",
      summary: "Repositories the caller may pull, paged, sorted and filtered",
      security,
      request: { query: S.RepositoryQuery },
      responses: { 200: json(S.RepositoryPage, "one page of repositories"), ...errors(400, 401) },
    }),
    async (c) => {
      const viewer = await viewerOf(c, a);
      const query = c.req.valid("query");
      const descending = (query.order ?? (query.sort === "name" ? "asc" : "desc")) === "desc";
      const names = await deps.metadata.repositoryNames({ search: query.q ?? "", sort: query.sort, descending });
      const visible = names.filter((name) => viewer.may(name, "pull"));
      const items = await deps.metadata.repositoryOverviews(page(visible, query.page, query.pageSize));
      return c.json(
        {
          items: items.map((r) => ({ ...r, lastPushedAt: iso(r.lastPushedAt), lastPulledAt: iso(r.lastPulledAt) })),
          page: query.page,
          pageSize: query.pageSize,
          total: visible.length,
        },
        200,
      );
    },
  );

  api.openapi(
    createRoute({
      method: "get",
      path: "/repositories/{name}/tags",
      summary: "Tags of a repository with sizes, dates, platforms and referrer counts",
      security,
      request: { params: S.RepositoryParam, query: S.TagQuery },
      responses: { 200: json(S.TagPage, "one page of tags"), ...errors(400, 401, 404) },
    }),
    async (c) => {
      const viewer = await viewerOf(c, a);
      const name = visibleRepository(viewer, c.req.valid("param").name);
      const query = c.req.valid("query");
      const descending = (query.order ?? (query.sort === "name" ? "asc" : "desc")) === "desc";
      const found = await deps.metadata.tagOverviews(name, {
        sort: query.sort,
        descending,
        offset: (query.page - 1) * query.pageSize,
        limit: query.pageSize,
      });
      if (!found) throw new RegistryError(404, "NAME_UNKNOWN", { name });
      const referrers = await deps.metadata.referrerCounts(
        name,
        found.items.map((t) => t.digest),
      );
      const items = await Promise.all(found.items.map((tag) => tagView(a, name, tag, referrers.get(tag.digest) ?? {})));
      return c.json(
        { repository: name, canDelete: canDelete(a, viewer, name), items, page: query.page, pageSize: query.pageSize, total: found.total },
        200,
      );
    },
  );

  api.openapi(
    createRoute({
      method: "get",
      path: "/repositories/{name}/images/{reference}",
      summary: "One image: manifest, configuration, layers with their history, platforms and referrers",
      security,
      request: { params: S.ReferenceParam },
      responses: { 200: json(S.Image, "the image"), ...errors(400, 401, 404) },
    }),
    async (c) => {
      const viewer = await viewerOf(c, a);
      const params = c.req.valid("param");
      const name = visibleRepository(viewer, params.name);
      const reference = params.reference;
      const digest = reference.includes(":")
        ? digestParam(reference)
        : isValidTag(reference)
          ? (await deps.metadata.getManifest(name, reference))?.digest
          : undefined;
      const stored = digest && (await deps.metadata.manifestOverview(name, digest));
      if (!stored) throw new RegistryError(404, "MANIFEST_UNKNOWN", { name, reference: reference.slice(0, 200) });
      const facts = await a.describer.describe(name, stored);
      const referrers = await deps.metadata.listReferrers(name, stored.digest);
      return c.json(
        {
          repository: name,
          reference,
          digest: stored.digest,
          mediaType: stored.mediaType,
          kind: facts.kind,
          artifactType: facts.artifactType,
          size: facts.size,
          created: facts.created,
          pushedAt: iso(stored.pushedAt),
          pulledAt: iso(stored.pulledAt),
          platforms: facts.platforms,
          config: facts.config,
          layers: facts.layers,
          referrers: referrers.map((r) => ({
            digest: r.digest,
            mediaType: r.mediaType,
            artifactType: r.artifactType ?? null,
            size: r.size,
            annotations: r.annotations ?? {},
          })),
          manifest: facts.document,
          canDelete: canDelete(a, viewer, name),
        },
        200,
      );
    },
  );

  api.openapi(
    createRoute({
      method: "delete",
      path: "/repositories/{name}/tags/{tag}",
      summary: "Delete a tag (the manifest stays)",
      description: "Needs the delete right, as the distribution API's DELETE does.",
      security,
      request: { params: S.TagParam },
      responses: { 204: { description: "deleted" }, ...errors(400, 401, 403, 404, 405) },
    }),
    async (c) => {
      const { viewer, name } = await deleting(c, a);
      const { tag } = c.req.valid("param");
      if (!isValidTag(tag) || !(await deleteReference(deps, name, { kind: "tag", tag }, c as unknown as Ctx, viewer.user))) {
        throw new RegistryError(404, "MANIFEST_UNKNOWN", { name, reference: tag.slice(0, 200) });
      }
      deps.logger.info({ repository: name, tag, user: viewer.user }, "tag deleted through the browsing API");
      return c.body(null, 204);
    },
  );

  api.openapi(
    createRoute({
      method: "delete",
      path: "/repositories/{name}/manifests/{digest}",
      summary: "Delete a manifest and every tag pointing at it",
      description: "Needs the delete right, as the distribution API's DELETE does.",
      security,
      request: { params: S.DigestParam },
      responses: { 204: { description: "deleted" }, ...errors(400, 401, 403, 404, 405) },
    }),
    async (c) => {
      const { viewer, name } = await deleting(c, a);
      const digest = digestParam(c.req.valid("param").digest);
      if (!(await deleteReference(deps, name, { kind: "digest", digest }, c as unknown as Ctx, viewer.user)))
        throw new RegistryError(404, "MANIFEST_UNKNOWN", { name, reference: digest });
      deps.logger.info({ repository: name, digest, user: viewer.user }, "manifest deleted through the browsing API");
      return c.body(null, 204);
    },
  );

  api.openapi(
    createRoute({
      method: "get",
      path: "/session",
      summary: "Who is logged in, and the CSRF token of the session",
      responses: { 200: json(S.Session, "the caller's session") },
    }),
    async (c) => {
      let viewer: Viewer | undefined;
      try {
        viewer = await viewerOf(c, a);
      } catch (error) {
        // An expired session is not an error here: the answer is "nobody".
        if (!(error instanceof RegistryError && error.status === 401)) throw error;
        deleteCookie(c, SESSION_COOKIE, { path: "/" });
      }
      return c.json(sessionView(a, viewer), 200);
    },
  );

  api.openapi(
    createRoute({
      method: "post",
      path: "/session",
      summary: "Log in with a registry user's password or personal access token; sets the session cookie",
      request: { body: { content: { "application/json": { schema: S.Login } }, required: true } },
      responses: { 200: json(S.Session, "logged in"), ...errors(400, 401, 403, 429) },
    }),
    async (c) => {
      checkOrigin(c);
      if (!a.sessions || !a.auth?.runtime.users) {
        throw new RegistryError(
          400,
          "UNSUPPORTED",
          undefined,
          a.auth ? "users are managed by an external token issuer: use a Bearer token" : "this registry runs without authentication",
        );
      }
      const body = c.req.valid("json");
      const subject = await login(c, a, body.username, body.password);
      if (!subject) throw unauthorized("invalid username or password");
      const accessTokenId = subject.accessTokenId ?? null;
      const stamp = accessTokenId === null ? passwordStamp(a.auth.runtime.users.getUser(subject.name)?.passwordHash ?? null) : null;
      const { cookie, session } = a.sessions.create(subject.userId, { accessTokenId, passwordStamp: stamp }, a.sessionTtlMs);
      setCookie(c, SESSION_COOKIE, cookie, {
        path: "/",
        httpOnly: true,
        sameSite: "Strict",
        secure: a.secureCookie,
        maxAge: Math.floor(a.sessionTtlMs / 1000),
      });
      deps.logger.info({ user: session.user }, "web login");
      return c.json(sessionView(a, { user: session.user, session, may: () => false }), 200);
    },
  );

  api.openapi(
    createRoute({
      method: "delete",
      path: "/session",
      summary: "Log out: ends the session",
      security: [{ session: [] }],
      responses: { 204: { description: "logged out" }, ...errors(401, 403) },
    }),
    async (c) => {
      const viewer = await viewerOf(c, a);
      checkCsrf(c, viewer);
      if (viewer.session) a.sessions?.delete(viewer.session.id);
      deleteCookie(c, SESSION_COOKIE, { path: "/" });
      return c.body(null, 204);
    },
  );

  api.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "minato-registry browsing API",
      version: "1",
      description: "Repositories, tags and images as the web UI shows them. Errors use the distribution API's shape.",
    },
    servers: [{ url: "/api/v1" }],
  });
  return api;
}

function canDelete(a: ApiDeps, viewer: Viewer, name: string): boolean {
  return a.deps.options.deletesEnabled && viewer.may(name, "delete");
}

/** A deleting request: authenticated, CSRF-checked for a session, deletes enabled, the delete right on the repository. */
async function deleting(c: Ctx, a: ApiDeps): Promise<{ viewer: Viewer; name: string }> {
  const viewer = await viewerOf(c, a);
  checkCsrf(c, viewer);
  const name = c.req.param("name") ?? "";
  // The delete right alone suffices (as on DELETE /v2/…); without any right the repository looks absent.
  if (!viewer.may(name, "delete")) {
    visibleRepository(viewer, name);
    throw new RegistryError(403, "DENIED", { name }, `you may not delete in ${name}`);
  }
  if (!isValidRepositoryName(name)) throw new RegistryError(404, "NAME_UNKNOWN", { name: name.slice(0, 300) });
  if (!a.deps.options.deletesEnabled) throw new RegistryError(405, "UNSUPPORTED", undefined, "deletes are disabled");
  return { viewer, name };
}

function sessionView(a: ApiDeps, viewer: Viewer | undefined) {
  return {
    authRequired: a.auth !== undefined,
    loginAvailable: a.sessions !== undefined && a.auth?.runtime.users !== undefined,
    user: viewer?.user ?? null,
    csrfToken: viewer?.session?.csrfToken ?? null,
    expiresAt: iso(viewer?.session?.expiresAt),
  };
}

async function tagView(a: ApiDeps, repository: string, tag: TagOverview, referrers: Record<string, number>) {
  const facts = await a.describer.describe(repository, tag);
  return {
    name: tag.name,
    digest: tag.digest,
    mediaType: tag.mediaType,
    kind: facts.kind,
    artifactType: facts.artifactType,
    size: facts.size,
    created: facts.created,
    pushedAt: iso(tag.pushedAt),
    pulledAt: iso(tag.pulledAt),
    platforms: facts.platforms,
    referrers,
  };
}
