import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Validator } from "@seriousme/openapi-schema-validator";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashPassword } from "../src/auth/passwords.js";
import { ADMIN, addUser, basic, bearer, type Credentials, startAuthRegistry, tokenFor, usersOf } from "./auth-helpers.js";
import { type Fixtures, imageSize, pushFixtures } from "./browse-fixtures.js";
import { call, pushImage, type Response, startTestRegistry, type TestRegistry } from "./harness.js";

/**
 * The browsing API (/api/v1) over images pushed by skopeo: every field against what was pushed,
 * paging, rights (lists and direct URLs), sessions with CSRF, deletes, and the OpenAPI document.
 */

interface Json {
  // biome-ignore lint/suspicious/noExplicitAny: test assertions walk the documents
  [key: string]: any;
}

async function getJson(
  registry: TestRegistry,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json; res: Response }> {
  const res = await call(registry, "GET", path, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? (JSON.parse(text) as Json) : {}, res };
}

async function ok(registry: TestRegistry, path: string, headers: Record<string, string> = {}): Promise<Json> {
  const { status, body } = await getJson(registry, path, headers);
  expect(status, JSON.stringify(body)).toBe(200);
  return body;
}

const enc = encodeURIComponent;

describe("browsing API with authentication", () => {
  let registry: TestRegistry;
  let fx: Fixtures;
  let viewer: Credentials;
  let outsider: Credentials;
  let deleter: Credentials;
  const admin = () => basic(ADMIN);

  beforeAll(async () => {
    registry = await startAuthRegistry();
    fx = await pushFixtures(registry);
    viewer = await addUser(registry, "viewer", "viewer-password-1", [["team/app", ["pull"]]]);
    outsider = await addUser(registry, "outsider", "outsider-password-1", [["other/*", ["pull", "push", "delete"]]]);
    deleter = await addUser(registry, "deleter", "deleter-password-1", [["team/*", ["pull", "delete"]]]);
  }, 180_000);
  afterAll(async () => {
    await registry?.destroy();
  });

  it("lists repositories with tag counts, sizes that add up to the pushed blobs, and push times", async () => {
    const page = await ok(registry, "/api/v1/repositories", admin());
    expect(page).toMatchObject({ page: 1, pageSize: 25, total: 2 });
    const [app, multi] = page.items;
    expect(app.name).toBe("team/app");
    expect(app.tagCount).toBe(3);
    // The image (manifest, config, two layers) plus the SBOM (manifest, empty config, one layer).
    const sbomBlobs = 2 + JSON.stringify({ spdxVersion: "SPDX-2.3", name: "team/app" }).length;
    expect(app.size.total).toBe(imageSize(fx.app) + fx.sbom.size + sbomBlobs);
    expect(app.size.unique).toBe(app.size.total);
    expect(Date.parse(app.lastPushedAt)).toBeGreaterThan(Date.now() - 600_000);
    expect(app.lastPulledAt).toBeNull();
    expect(multi.name).toBe("team/multi");
    expect(multi.tagCount).toBe(1);
    const platforms = Object.values(fx.index.platforms);
    expect(multi.size.total).toBe(fx.index.manifest.size + platforms.reduce((sum, p) => sum + imageSize(p), 0));
  });

  it("reports a tag's digest, size, creation date, platform and referrers by artifact type", async () => {
    const tags = await ok(registry, "/api/v1/repositories/team%2Fapp/tags", admin());
    expect(tags).toMatchObject({ repository: "team/app", total: 3, canDelete: true });
    expect(tags.items.map((t: Json) => t.name)).toEqual(["1.0", "1.1", "latest"]);
    for (const tag of tags.items) {
      expect(tag).toMatchObject({
        digest: fx.app.manifest.digest,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        kind: "image",
        artifactType: null,
        size: imageSize(fx.app),
        created: fx.app.created,
        pulledAt: null,
        platforms: [{ os: "linux", architecture: "amd64", variant: null, digest: fx.app.manifest.digest, size: imageSize(fx.app) }],
        referrers: { "application/spdx+json": 1 },
      });
      expect(Date.parse(tag.pushedAt)).toBeGreaterThan(0);
    }
    // Newest push first; the names order either way.
    const byPush = await ok(registry, "/api/v1/repositories/team%2Fapp/tags?sort=pushed", admin());
    expect(byPush.items.map((t: Json) => t.name)).toEqual(["latest", "1.1", "1.0"]);
    const byNameDesc = await ok(registry, "/api/v1/repositories/team%2Fapp/tags?sort=name&order=desc", admin());
    expect(byNameDesc.items.map((t: Json) => t.name)).toEqual(["latest", "1.1", "1.0"]);
  });

  it("gives each platform of an index its own size, and the index the latest creation date", async () => {
    const tags = await ok(registry, "/api/v1/repositories/team%2Fmulti/tags", admin());
    const [tag] = tags.items;
    const amd64 = fx.index.platforms["linux/amd64"];
    const arm64 = fx.index.platforms["linux/arm64/v8"];
    expect(tag).toMatchObject({
      name: "latest",
      digest: fx.index.manifest.digest,
      mediaType: "application/vnd.oci.image.index.v1+json",
      kind: "index",
      size: fx.index.manifest.size + imageSize(amd64) + imageSize(arm64),
      created: arm64.created,
      platforms: [
        { os: "linux", architecture: "amd64", variant: null, digest: amd64.manifest.digest, size: imageSize(amd64) },
        { os: "linux", architecture: "arm64", variant: "v8", digest: arm64.manifest.digest, size: imageSize(arm64) },
      ],
      referrers: {},
    });
    const image = await ok(registry, `/api/v1/repositories/team%2Fmulti/images/latest`, admin());
    expect(image.kind).toBe("index");
    expect(image.platforms).toEqual(tag.platforms);
    const child = await ok(registry, `/api/v1/repositories/team%2Fmulti/images/${enc(arm64.manifest.digest)}`, admin());
    expect(child.config).toMatchObject({ architecture: "arm64", variant: "v8", created: arm64.created });
  });

  it("shows an image's configuration, its layers with the history step that made each, and its referrers", async () => {
    const image = await ok(registry, "/api/v1/repositories/team%2Fapp/images/1.0", admin());
    expect(image).toMatchObject({
      repository: "team/app",
      reference: "1.0",
      digest: fx.app.manifest.digest,
      kind: "image",
      size: imageSize(fx.app),
      created: fx.app.created,
      canDelete: true,
    });
    expect(image.config).toEqual({
      created: fx.app.created,
      os: "linux",
      architecture: "amd64",
      variant: null,
      entrypoint: ["/usr/bin/app"],
      cmd: ["--serve", "--port=8080"],
      env: ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_MODE=production"],
      labels: { "org.opencontainers.image.source": "https://example.invalid/app", maintainer: "team@example.invalid" },
      exposedPorts: ["8080/tcp", "9090/udp"],
      user: "app",
      workingDir: "/srv/app",
      history: fx.app.history.map((h) => ({
        created: fx.app.created,
        createdBy: h.created_by,
        comment: null,
        emptyLayer: h.empty_layer === true,
      })),
    });
    // The ENV step made no layer: the second layer comes from the RUN step after it.
    expect(image.layers).toEqual([
      {
        ...fx.app.layers[0],
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        createdBy: fx.app.history[0]?.created_by,
        created: fx.app.created,
      },
      {
        ...fx.app.layers[1],
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        createdBy: fx.app.history[2]?.created_by,
        created: fx.app.created,
      },
    ]);
    expect(image.referrers).toEqual([
      {
        digest: fx.sbom.digest,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        artifactType: "application/spdx+json",
        size: fx.sbom.size,
        annotations: {},
      },
    ]);
    expect(image.manifest.config.digest).toBe(fx.app.config.digest);
    const sbom = await ok(registry, `/api/v1/repositories/team%2Fapp/images/${enc(fx.sbom.digest)}`, admin());
    expect(sbom).toMatchObject({ kind: "artifact", artifactType: "application/spdx+json", config: null, platforms: [] });
    expect(sbom.manifest.subject.digest).toBe(fx.app.manifest.digest);
  });

  it("counts blobs another repository references too as shared, not unique", async () => {
    // A mirror of the image (skopeo mounts the blobs) shares its config and layers with team/app.
    const { Skopeo } = await import("../../../test/support/skopeo.js");
    const skopeo = await Skopeo.create();
    try {
      const host = new URL(registry.url).host;
      const creds = `${ADMIN.user}:${ADMIN.password}`;
      await skopeo.run([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        creds,
        "--dest-creds",
        creds,
        `docker://${host}/team/app:1.0`,
        `docker://${host}/team/mirror:1.0`,
      ]);
    } finally {
      await skopeo.dispose();
    }
    const page = await ok(registry, "/api/v1/repositories?q=team/", admin());
    const app = page.items.find((r: Json) => r.name === "team/app");
    const shared = fx.app.config.size + fx.app.layers.reduce((sum, l) => sum + l.size, 0);
    expect(app.size.unique).toBe(app.size.total - shared);
    const mirror = page.items.find((r: Json) => r.name === "team/mirror");
    expect(mirror.size).toEqual({ total: imageSize(fx.app), unique: fx.app.manifest.size });
    await call(registry, "DELETE", `/v2/team/mirror/manifests/${fx.app.manifest.digest}`, {
      headers: bearer(await tokenFor(registry, ADMIN, "repository:team/mirror:delete")),
    }).then((res) => res.body.dump());
  });

  it("pages, sorts and searches repositories, with clear errors for bad parameters", async () => {
    const all = await ok(registry, "/api/v1/repositories?pageSize=100", admin());
    const names = all.items.map((r: Json) => r.name);
    expect(names).toEqual([...names].sort());
    expect(all.total).toBe(names.length);
    const first = await ok(registry, "/api/v1/repositories?pageSize=1&page=1", admin());
    const last = await ok(registry, `/api/v1/repositories?pageSize=1&page=${all.total}`, admin());
    const beyond = await ok(registry, `/api/v1/repositories?pageSize=1&page=${all.total + 1}`, admin());
    expect(first.items.map((r: Json) => r.name)).toEqual([names[0]]);
    expect(last.items.map((r: Json) => r.name)).toEqual([names.at(-1)]);
    expect(beyond).toMatchObject({ items: [], total: all.total, page: all.total + 1 });
    // By last push: the SBOM made team/app the latest; team/mirror, emptied, has none and comes last either way.
    const byPush = await ok(registry, "/api/v1/repositories?sort=pushed", admin());
    expect(byPush.items.map((r: Json) => r.name)).toEqual(["team/app", "team/multi", "team/mirror"]);
    const byPushAsc = await ok(registry, "/api/v1/repositories?sort=pushed&order=asc", admin());
    expect(byPushAsc.items.map((r: Json) => r.name)).toEqual(["team/multi", "team/app", "team/mirror"]);
    expect(byPush.items[2].lastPushedAt).toBeNull();
    const desc = await ok(registry, "/api/v1/repositories?order=desc", admin());
    expect(desc.items.map((r: Json) => r.name)).toEqual([...names].reverse());
    expect((await ok(registry, "/api/v1/repositories?q=MULT", admin())).items.map((r: Json) => r.name)).toEqual(["team/multi"]);
    expect(await ok(registry, "/api/v1/repositories?q=nothing-like-this", admin())).toMatchObject({ items: [], total: 0 });

    const tagsPage2 = await ok(registry, "/api/v1/repositories/team%2Fapp/tags?pageSize=2&page=2", admin());
    expect(tagsPage2).toMatchObject({ total: 3, page: 2, pageSize: 2 });
    expect(tagsPage2.items.map((t: Json) => t.name)).toEqual(["latest"]);

    for (const query of ["page=0", "pageSize=0", "pageSize=101", "page=x", "sort=size", "order=up"]) {
      const { status, body } = await getJson(registry, `/api/v1/repositories?${query}`, admin());
      expect(status, query).toBe(400);
      expect(body.errors[0].code).toBe("UNSUPPORTED");
      expect(body.errors[0].message).toMatch(/^invalid (page|pageSize|sort|order)/);
    }
    const badName = await getJson(registry, "/api/v1/repositories/Team%2F..%2Fx/tags", admin());
    expect(badName.status).toBe(404);
    const badDigest = await getJson(registry, "/api/v1/repositories/team%2Fapp/images/sha256:zz", admin());
    expect(badDigest.status).toBe(400);
    expect((await getJson(registry, "/api/v1/repositories/team%2Fapp/images/nope", admin())).status).toBe(404);
  });

  it("shows a user only what they may pull: nothing of a private repository, in lists or by direct URL", async () => {
    const seen = await ok(registry, "/api/v1/repositories", basic(viewer));
    expect(seen.items.map((r: Json) => r.name)).toEqual(["team/app"]);
    expect((await ok(registry, "/api/v1/repositories/team%2Fapp/tags", basic(viewer))).canDelete).toBe(false);
    const paths = [
      "/api/v1/repositories/team%2Fmulti/tags",
      "/api/v1/repositories/team%2Fmulti/images/latest",
      `/api/v1/repositories/team%2Fmulti/images/${enc(fx.index.manifest.digest)}`,
    ];
    for (const who of [viewer, outsider]) {
      for (const path of paths) {
        const { status, body } = await getJson(registry, path, basic(who));
        expect(status, `${who.user} ${path}`).toBe(404);
        expect(JSON.stringify(body)).not.toContain(fx.index.manifest.digest);
      }
    }
    const outsiderList = await ok(registry, "/api/v1/repositories", basic(outsider));
    expect(outsiderList).toMatchObject({ items: [], total: 0 });
    const anonymous = await ok(registry, "/api/v1/repositories");
    expect(anonymous).toMatchObject({ items: [], total: 0 });
    expect((await getJson(registry, "/api/v1/repositories/team%2Fapp/tags")).status).toBe(404);
    // An outsider cannot delete what it cannot see, and learns nothing from trying.
    const res = await call(registry, "DELETE", "/api/v1/repositories/team%2Fapp/tags/1.0", { headers: basic(outsider) });
    expect(res.statusCode).toBe(404);
    await res.body.dump();
    // A personal access token as the password: its own scope applies.
    const { id: patId, token } = usersOf(registry).createAccessToken("admin", "browse", [{ pattern: "team/multi", actions: ["pull"] }]);
    const viaPat = await ok(registry, "/api/v1/repositories", basic({ user: "admin", password: token }));
    expect(viaPat.items.map((r: Json) => r.name)).toEqual(["team/multi"]);
    // Logged in to the web UI with that token, the session keeps the token's scope.
    const login = await call(registry, "POST", "/api/v1/session", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "admin", password: token }),
    });
    expect(((await login.body.json()) as Json).user).toBe("admin");
    const patCookie = { cookie: String(login.headers["set-cookie"]).split(";")[0] as string };
    expect((await ok(registry, "/api/v1/repositories", patCookie)).items.map((r: Json) => r.name)).toEqual(["team/multi"]);
    expect((await getJson(registry, "/api/v1/repositories/team%2Fapp/tags", patCookie)).status).toBe(404);
    usersOf(registry).revokeToken(patId);
    const revoked = await getJson(registry, "/api/v1/repositories", patCookie);
    expect(revoked.status).toBe(401);
    expect(revoked.body.errors[0].message).toMatch(/revoked/);
    // A Bearer token from the token service works as it does on /v2/.
    const jwt = await tokenFor(registry, ADMIN, "repository:team/app:pull");
    expect((await ok(registry, "/api/v1/repositories/team%2Fapp/tags", bearer(jwt))).total).toBe(3);
    // …and only for what its access claim names, although its admin subject may pull everything.
    expect((await ok(registry, "/api/v1/repositories", bearer(jwt))).items.map((r: Json) => r.name)).toEqual(["team/app"]);
    expect((await getJson(registry, "/api/v1/repositories/team%2Fmulti/tags", bearer(jwt))).status).toBe(404);
    expect((await getJson(registry, "/api/v1/repositories", { authorization: "Bearer not-a-token" })).status).toBe(401);
    expect((await getJson(registry, "/api/v1/repositories", basic({ user: "viewer", password: "wrong" }))).status).toBe(401);
  });

  it("records pulls in batches: the tag, its manifest and the repository", async () => {
    const headers = {
      ...bearer(await tokenFor(registry, ADMIN, "repository:team/app:pull")),
      accept: "application/vnd.oci.image.manifest.v1+json",
    };
    const before = Date.now();
    for (let i = 0; i < 3; i++) {
      const res = await call(registry, "GET", "/v2/team/app/manifests/1.1", { headers });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    }
    await registry.deps.pulls?.flush();
    const tags = await ok(registry, "/api/v1/repositories/team%2Fapp/tags", admin());
    const pulled = Object.fromEntries(tags.items.map((t: Json) => [t.name, t.pulledAt]));
    // 1.0 was pulled by the mirroring skopeo copy above; latest never was.
    expect(pulled.latest).toBeNull();
    expect(Date.parse(pulled["1.1"])).toBeGreaterThanOrEqual(before - 1000);
    const repos = await ok(registry, "/api/v1/repositories?q=team/app", admin());
    expect(Date.parse(repos.items[0].lastPulledAt)).toBeGreaterThanOrEqual(before - 1000);
    const image = await ok(registry, `/api/v1/repositories/team%2Fapp/images/${enc(fx.app.manifest.digest)}`, admin());
    expect(Date.parse(image.pulledAt)).toBeGreaterThanOrEqual(before - 1000);
    const byPull = await ok(registry, "/api/v1/repositories?sort=pulled", admin());
    expect(byPull.items[0].name).toBe("team/app");
  });

  it("logs a browser in with a session cookie, demands the CSRF token on deletes, and expires", async () => {
    const wrong = await call(registry, "POST", "/api/v1/session", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "deleter", password: "nope" }),
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers["set-cookie"]).toBeUndefined();
    await wrong.body.dump();

    const login = await call(registry, "POST", "/api/v1/session", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: deleter.user, password: deleter.password }),
    });
    const session = (await login.body.json()) as Json;
    expect(login.statusCode).toBe(200);
    const setCookie = String(login.headers["set-cookie"]);
    expect(setCookie).toMatch(/^minato_session=[^;]+; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict$/);
    const cookie = { cookie: setCookie.split(";")[0] as string };
    expect(session).toMatchObject({ authRequired: true, loginAvailable: true, user: "deleter" });
    expect(session.csrfToken).toMatch(/^\S{20,}$/);
    expect(await ok(registry, "/api/v1/session", cookie)).toMatchObject({ user: "deleter", csrfToken: session.csrfToken });
    // team/mirror stays listed (empty) after its manifest went, as in the catalog.
    expect((await ok(registry, "/api/v1/repositories", cookie)).items.map((r: Json) => r.name)).toEqual([
      "team/app",
      "team/mirror",
      "team/multi",
    ]);

    const del = (headers: Record<string, string>) =>
      call(registry, "DELETE", "/api/v1/repositories/team%2Fapp/tags/1.1", { headers: { ...cookie, ...headers } });
    for (const headers of [{}, { "x-csrf-token": "forged" }, { "x-csrf-token": session.csrfToken, origin: "http://evil.example" }]) {
      const res = await del(headers);
      const body = (await res.body.json()) as Json;
      expect(res.statusCode, JSON.stringify(headers)).toBe(403);
      expect(body.errors[0].code).toBe("DENIED");
    }
    const tagsList = async () =>
      (await ok(registry, "/v2/team/app/tags/list", bearer(await tokenFor(registry, ADMIN, "repository:team/app:pull")))).tags as string[];
    expect(await tagsList()).toContain("1.1");
    const done = await del({ "x-csrf-token": session.csrfToken, origin: registry.url });
    expect(done.statusCode).toBe(204);
    await done.body.dump();
    expect(await tagsList()).toEqual(["1.0", "latest"]);

    // Expired (as if 12 hours had passed): refused, and the session endpoint says nobody.
    const db = new Database(join(registry.dataDir, "registry.db"));
    db.prepare("UPDATE browser_sessions SET expires_at = ?").run(Date.now() - 1);
    db.close();
    const expired = await getJson(registry, "/api/v1/repositories", cookie);
    expect(expired.status).toBe(401);
    expect(expired.body.errors[0].message).toMatch(/session has expired/);
    expect(await ok(registry, "/api/v1/session", cookie)).toMatchObject({ user: null, csrfToken: null });
  });

  it("logs out: the cookie no longer works", async () => {
    const login = await call(registry, "POST", "/api/v1/session", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: viewer.user, password: viewer.password }),
    });
    const { csrfToken } = (await login.body.json()) as Json;
    const cookie = { cookie: String(login.headers["set-cookie"]).split(";")[0] as string };
    const noCsrf = await call(registry, "DELETE", "/api/v1/session", { headers: cookie });
    expect(noCsrf.statusCode).toBe(403);
    await noCsrf.body.dump();
    // Another session of the same user ends when the password changes.
    const other = await call(registry, "POST", "/api/v1/session", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: deleter.user, password: deleter.password }),
    });
    const otherCookie = { cookie: String(other.headers["set-cookie"]).split(";")[0] as string };
    await other.body.dump();
    expect((await getJson(registry, "/api/v1/repositories", otherCookie)).status).toBe(200);
    usersOf(registry).setPassword(deleter.user, await hashPassword("deleter-password-2"));
    const changed = await getJson(registry, "/api/v1/repositories", otherCookie);
    expect(changed.status).toBe(401);
    expect(changed.body.errors[0].message).toMatch(/password was changed/);
    deleter = { ...deleter, password: "deleter-password-2" };

    const out = await call(registry, "DELETE", "/api/v1/session", { headers: { ...cookie, "x-csrf-token": csrfToken } });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers["set-cookie"])).toMatch(/^minato_session=; Max-Age=0/);
    await out.body.dump();
    expect((await getJson(registry, "/api/v1/repositories", cookie)).status).toBe(401);
  });

  it("deletes with the delete right only, as DELETE /v2/ does", async () => {
    const denied = await call(registry, "DELETE", "/api/v1/repositories/team%2Fapp/tags/latest", { headers: basic(viewer) });
    expect(denied.statusCode).toBe(403);
    await denied.body.dump();
    const amd64 = fx.index.platforms["linux/amd64"]?.manifest.digest as string;
    const missing = await call(registry, "DELETE", `/api/v1/repositories/team%2Fmulti/tags/nope`, { headers: basic(deleter) });
    expect(missing.statusCode).toBe(404);
    await missing.body.dump();
    const gone = await call(registry, "DELETE", `/api/v1/repositories/team%2Fmulti/manifests/${enc(fx.index.manifest.digest)}`, {
      headers: basic(deleter),
    });
    expect(gone.statusCode).toBe(204);
    await gone.body.dump();
    expect((await ok(registry, "/api/v1/repositories/team%2Fmulti/tags", admin())).total).toBe(0);
    expect((await getJson(registry, `/api/v1/repositories/team%2Fmulti/images/${enc(fx.index.manifest.digest)}`, admin())).status).toBe(
      404,
    );
    expect((await ok(registry, `/api/v1/repositories/team%2Fmulti/images/${enc(amd64)}`, admin())).digest).toBe(amd64);
  });

  it("serves an OpenAPI 3.1 document that validates and lists every route", async () => {
    const doc = await ok(registry, "/api/v1/openapi.json");
    expect(doc.openapi).toBe("3.1.0");
    const result = await new Validator().validate(doc);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    const routes = Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
      Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(routes.sort()).toEqual(
      [
        "GET /repositories",
        "GET /repositories/{name}/tags",
        "GET /repositories/{name}/images/{reference}",
        "DELETE /repositories/{name}/tags/{tag}",
        "DELETE /repositories/{name}/manifests/{digest}",
        "GET /session",
        "POST /session",
        "DELETE /session",
      ].sort(),
    );
    // Every documented route answers (a route missing from the server would be the generic 404).
    for (const route of routes) {
      const [method, path] = route.split(" ") as [string, string];
      const url = `/api/v1${path
        .replace("{name}", "team%2Fapp")
        .replace("{reference}", "1.0")
        .replace("{tag}", "no-such-tag")
        .replace("{digest}", enc(`sha256:${"0".repeat(64)}`))}`;
      const res = await call(registry, method, url, {
        headers: { ...admin(), "content-type": "application/json" },
        ...(method === "POST" ? { body: "{}" } : {}),
      });
      const text = await res.body.text();
      expect(text, route).not.toContain("no such endpoint");
      expect(text, route).not.toMatch(/"message":"not found"/);
    }
  });
});

describe("browsing API without authentication (loopback)", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
    await pushFixtures(registry);
  }, 180_000);
  afterAll(async () => {
    await registry?.destroy();
  });

  it("shows everything to everyone and lets them delete, as /v2/ does", async () => {
    expect(await ok(registry, "/api/v1/session")).toEqual({
      authRequired: false,
      loginAvailable: false,
      user: null,
      csrfToken: null,
      expiresAt: null,
    });
    const page = await ok(registry, "/api/v1/repositories");
    expect(page.items.map((r: Json) => r.name)).toEqual(["team/app", "team/multi"]);
    expect((await ok(registry, "/api/v1/repositories/team%2Fapp/tags")).canDelete).toBe(true);
    const login = await call(registry, "POST", "/api/v1/session", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "a", password: "b" }),
    });
    expect(login.statusCode).toBe(400);
    expect(await login.body.text()).toContain("without authentication");
    const res = await call(registry, "DELETE", "/api/v1/repositories/team%2Fapp/tags/latest");
    expect(res.statusCode).toBe(204);
    await res.body.dump();
    expect((await ok(registry, "/v2/team/app/tags/list")).tags).toEqual(["1.0", "1.1"]);
  });
});

describe("browsing API with deletes disabled", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry({ deletesEnabled: false });
  });
  afterAll(async () => {
    await registry?.destroy();
  });

  it("refuses deletes as /v2/ does (405) and offers none", async () => {
    const image = await pushImage(registry, "ro/app", { tag: "1.0" });
    expect((await ok(registry, "/api/v1/repositories/ro%2Fapp/tags")).canDelete).toBe(false);
    for (const path of ["/api/v1/repositories/ro%2Fapp/tags/1.0", `/api/v1/repositories/ro%2Fapp/manifests/${enc(image.digest)}`]) {
      const res = await call(registry, "DELETE", path);
      expect(res.statusCode, path).toBe(405);
      expect(((await res.body.json()) as Json).errors[0].message).toBe("deletes are disabled");
    }
    expect((await ok(registry, "/v2/ro/app/tags/list")).tags).toEqual(["1.0"]);
  });
});

describe("web UI assets", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await registry?.destroy();
  });

  it("serves the page, compressed, with assets named by content hash and cached for good", async () => {
    const page = await call(registry, "GET", "/", { headers: { "accept-encoding": "gzip" } });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["content-encoding"]).toBe("gzip");
    expect(page.headers["cache-control"]).toBe("no-cache");
    expect(String(page.headers["content-security-policy"])).toContain("script-src 'self'");
    const html = gunzipSync(Buffer.from(await page.body.arrayBuffer())).toString("utf8");
    const script = /src="(\/ui\/app\.js\?v=[0-9a-f]{16})"/.exec(html)?.[1];
    const style = /href="(\/ui\/app\.css\?v=[0-9a-f]{16})"/.exec(html)?.[1];
    expect(script && style).toBeTruthy();
    let total = Buffer.byteLength(html);
    for (const path of [script, style] as string[]) {
      const res = await call(registry, "GET", path, { headers: { "accept-encoding": "gzip" } });
      expect(res.statusCode).toBe(200);
      expect(res.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
      const body = Buffer.from(await res.body.arrayBuffer());
      total += body.length;
      const again = await call(registry, "GET", path, { headers: { "if-none-match": String(res.headers.etag) } });
      expect(again.statusCode).toBe(304);
      await again.body.dump();
    }
    // Fast on a slow link: everything the first view needs, compressed, under 16 KiB.
    expect(total).toBeLessThan(16 * 1024);
    // Without the current hash the asset may change: revalidate.
    const stale = await call(registry, "GET", "/ui/app.js?v=0000000000000000");
    expect(stale.headers["cache-control"]).toBe("no-cache");
    expect(stale.headers["content-encoding"]).toBeUndefined();
    await stale.body.dump();
  });
});

describe("browsing API: bad input", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startAuthRegistry({ throttle: { perUser: 3, perAddress: 50, windowMs: 60_000 } });
  });
  afterAll(async () => {
    await registry?.destroy();
  });

  const login = (body: string, headers: Record<string, string> = {}) =>
    call(registry, "POST", "/api/v1/session", { headers: { "content-type": "application/json", ...headers }, body });

  it("refuses malformed logins with a clear error", async () => {
    const cases: [string, Record<string, string>, number, RegExp][] = [
      ["not json", {}, 400, /Malformed JSON/],
      ["x", { "content-type": "text/plain" }, 415, /Unsupported Media Type/],
      [JSON.stringify({ username: 5, password: "x" }), {}, 400, /^invalid username/],
      [JSON.stringify({ username: "admin" }), {}, 400, /^invalid password/],
      [JSON.stringify({ username: "a".repeat(200), password: "x" }), {}, 400, /^invalid username/],
    ];
    for (const [body, headers, status, message] of cases) {
      const res = await login(body, headers);
      const answer = (await res.body.json()) as Json;
      expect(res.statusCode, body).toBe(status);
      expect(answer.errors[0].message).toMatch(message);
      expect(res.headers["set-cookie"]).toBeUndefined();
    }
    // A login form posted from another site is refused before any password is looked at.
    const crossSite = await login(JSON.stringify(ADMIN_LOGIN), { origin: "https://evil.example" });
    expect(crossSite.statusCode).toBe(403);
    await crossSite.body.dump();
    const tooLong = await getJson(registry, `/api/v1/repositories/${"a".repeat(300)}/tags`);
    expect(tooLong.status).toBe(400);
  });

  it("throttles failed logins per user, as the token service does", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await login(JSON.stringify({ username: "admin", password: `wrong-${i}` }));
      expect(res.statusCode).toBe(401);
      await res.body.dump();
    }
    const limited = await login(JSON.stringify(ADMIN_LOGIN));
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(((await limited.body.json()) as Json).errors[0].code).toBe("TOOMANYREQUESTS");
  });
});

const ADMIN_LOGIN = { username: ADMIN.user, password: ADMIN.password };
