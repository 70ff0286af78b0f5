import { isValidRepositoryName } from "@minato/oci";
import { Hono } from "hono";
import { type Action, CATALOG, DELETE, PULL, PUSH } from "./auth/scope.js";
import { RegistryError } from "./errors.js";
import { API_VERSION, API_VERSION_HEADER, type Ctx, type Env, type RegistryDeps } from "./http.js";
import { deleteBlob, getBlob } from "./routes/blobs.js";
import { listReferrers, listRepositories, listTags } from "./routes/listing.js";
import { deleteManifest, getManifest, putManifest } from "./routes/manifests.js";
import { searchRepositories } from "./routes/search.js";
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from "./routes/uploads.js";

type Handler = (c: Ctx, deps: RegistryDeps, name: string, reference: string) => Promise<Response>;
/** `access`: the actions each method needs on the repository when token authentication is on. */
type Route = { pattern: RegExp; methods: Record<string, Handler>; access: Record<string, readonly Action[]> };

/**
 * Repository names contain slashes, so distribution paths are matched here, longest suffix first:
 * `/v2/<name>/<kind>/<reference>`, the name being everything before the last matching suffix.
 */
const ROUTES: Route[] = [
  {
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/,
    methods: { POST: (c, deps, name) => startUpload(c, deps, name) },
    access: { POST: PUSH },
  },
  {
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
    methods: { GET: uploadStatus, PATCH: patchUpload, PUT: finishUpload, DELETE: cancelUpload },
    access: { GET: PUSH, PATCH: PUSH, PUT: PUSH, DELETE: PUSH },
  },
  {
    pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/,
    methods: {
      GET: (c, deps, name, ref) => getBlob(c, deps, name, ref, false),
      HEAD: (c, deps, name, ref) => getBlob(c, deps, name, ref, true),
      DELETE: deleteBlob,
    },
    access: { GET: PULL, HEAD: PULL, DELETE },
  },
  {
    pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
    methods: {
      GET: (c, deps, name, ref) => getManifest(c, deps, name, ref, false),
      HEAD: (c, deps, name, ref) => getManifest(c, deps, name, ref, true),
      PUT: putManifest,
      DELETE: deleteManifest,
    },
    access: { GET: PULL, HEAD: PULL, PUT: PUSH, DELETE },
  },
  { pattern: /^\/v2\/(.+)\/tags\/list$/, methods: { GET: (c, deps, name) => listTags(c, deps, name) }, access: { GET: PULL } },
  { pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, methods: { GET: listReferrers }, access: { GET: PULL } },
];

async function dispatch(c: Ctx, deps: RegistryDeps, path: string): Promise<Response> {
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    const name = match[1] as string;
    if (!isValidRepositoryName(name)) throw new RegistryError(400, "NAME_INVALID", { name: name.slice(0, 300) });
    const handler = route.methods[c.req.method];
    if (!handler) {
      throw new RegistryError(405, "UNSUPPORTED", { method: c.req.method }, "method not allowed", {
        Allow: Object.keys(route.methods).join(", "),
      });
    }
    await deps.auth?.require(c, { type: "repository", name, actions: [...(route.access[c.req.method] ?? PUSH)] });
    if (c.req.method !== "GET" && c.req.method !== "HEAD") deps.proxy?.refuseWrite(name, c.req.method);
    return handler(c, deps, name, match[2] ?? "");
  }
  throw new RegistryError(404, "NAME_UNKNOWN", undefined, "no such endpoint");
}

/**
 * The request target exactly as sent. The URL Hono sees is WHATWG-normalised, which would turn
 * `/v2/a/../b/...` or `%2e%2e` into another repository's path instead of an invalid name.
 */
function rawPath(target: string): string {
  const query = target.indexOf("?");
  return query === -1 ? target : target.slice(0, query);
}

export function createApp(deps: RegistryDeps): Hono<Env> {
  const app = new Hono<Env>();

  app.use(async (c, next) => {
    c.header(API_VERSION_HEADER, API_VERSION);
    await next();
  });
  if (deps.pulls) app.use("/v2/*", deps.pulls.middleware());

  app.get("/v2/", async (c) => {
    await deps.auth?.require(c);
    return c.json({});
  });
  app.get("/v2/_catalog", async (c) => {
    await deps.auth?.require(c, CATALOG);
    return listRepositories(c, deps, deps.auth?.visibleRepositories(c));
  });
  app.get("/v1/search", async (c) => {
    await deps.auth?.require(c, CATALOG);
    return searchRepositories(c, deps, deps.auth?.visibleRepositories(c));
  });
  app.all("/v2/*", (c) => dispatch(c, deps, rawPath(c.env.incoming.url ?? c.req.path)));

  app.notFound((c) => {
    // `/v2/../x` was resolved out of /v2/ before routing; as sent it names the repository `..`: NAME_INVALID.
    const path = rawPath(c.env.incoming.url ?? c.req.path);
    if (path.startsWith("/v2/")) return dispatch(c, deps, path);
    return c.json({ errors: [{ code: "UNSUPPORTED", message: "not found" }] }, 404);
  });
  app.onError((error, c) => {
    if (error instanceof RegistryError) {
      deps.logger.debug({ code: error.code, status: error.status, path: c.req.path }, error.message);
      // The error body sets its own length: a Content-Length among the error's headers (an upload
      // session's "0") would frame the response wrongly and desynchronise a keep-alive connection.
      const headers = Object.fromEntries(Object.entries(error.headers).filter(([key]) => key.toLowerCase() !== "content-length"));
      headers["Content-Type"] = "application/json";
      const status = error.status as 400;
      return c.req.method === "HEAD" ? c.body(null, status, headers) : c.body(error.body(), status, headers);
    }
    if (c.env.incoming.destroyed && !c.env.incoming.complete) {
      // The client went away mid-request (what it sent is kept for a resume); nobody is left to answer.
      deps.logger.debug({ method: c.req.method, path: c.req.path }, "client disconnected mid-request");
      return c.body(null, 499 as 400);
    }
    deps.logger.error({ err: error, method: c.req.method, path: c.req.path }, "request failed");
    return c.json({ errors: [{ code: "UNKNOWN", message: "internal server error" }] }, 500);
  });
  return app;
}
