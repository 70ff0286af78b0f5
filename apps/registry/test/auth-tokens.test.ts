import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { digestOf } from "@minato/oci";
import { createLocalJWKSet, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keysDir } from "../src/auth/index.js";
import { generateSigningKey } from "../src/auth/keys.js";
import { formatScope, parseScope, parseScopes, ScopeError } from "../src/auth/scope.js";
import {
  ADMIN,
  addUser,
  bearer,
  type Credentials,
  challengeOf,
  claimsOf,
  headerOf,
  postToken,
  pushSmallImage,
  requestToken,
  startAuthRegistry,
  statusWith,
  tokenFor,
  usersOf,
} from "./auth-helpers.js";
import { call, expectError, header, type TestRegistry } from "./harness.js";

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

describe("scope grammar (scope.md)", () => {
  it("parses type, name and actions, names with a registry host and port included", () => {
    expect(parseScope("repository:samalba/my-app:pull,push")).toEqual({
      type: "repository",
      name: "samalba/my-app",
      actions: ["pull", "push"],
    });
    expect(parseScope("repository:host:5000/x:pull")).toEqual({ type: "repository", name: "host:5000/x", actions: ["pull"] });
    expect(parseScope("repository:registry.example.com:443/team/app:pull,push")).toEqual({
      type: "repository",
      name: "registry.example.com:443/team/app",
      actions: ["pull", "push"],
    });
    expect(parseScope("registry:catalog:*")).toEqual({ type: "registry", name: "catalog", actions: ["*"] });
    // The deprecated resource class is ignored.
    expect(parseScope("repository(plugin):a/b:pull")).toEqual({ type: "repository", name: "a/b", actions: ["pull"] });
    expect(parseScope("repository:a:")).toEqual({ type: "repository", name: "a", actions: [] });
  });

  it("refuses malformed scopes", () => {
    for (const bad of [
      "repository",
      "repository:a",
      ":a:pull",
      "Repository:a:pull",
      "repository::pull",
      "repository:a:PULL",
      "repository:a b:pull",
    ]) {
      expect(() => parseScope(bad), bad).toThrow(ScopeError);
    }
  });

  it("splits space-separated lists and merges repeated resources", () => {
    const scopes = parseScopes(["repository:a:pull repository:host:5000/b:push", "repository:a:push"]);
    expect(scopes.map(formatScope)).toEqual(["repository:a:pull,push", "repository:host:5000/b:push"]);
  });
});

describe("token authentication (built-in issuer)", () => {
  let registry: TestRegistry;
  let admin: Credentials;
  let alice: Credentials;
  let reader: Credentials;
  let signingKey: KeyObject;
  let kid: string;

  beforeAll(async () => {
    registry = await startAuthRegistry();
    admin = { ...ADMIN };
    alice = await addUser(registry, "alice", "alice-password", [["team-a/*", ["pull", "push"]]]);
    reader = await addUser(registry, "reader", "reader-password", [["team-a/*", ["pull"]]]);
    const dir = keysDir(registry.dataDir);
    const [file] = (await readdir(dir)).filter((f) => f.endsWith(".pem"));
    signingKey = createPrivateKey(await readFile(join(dir, file as string)));
    kid = registry.auth?.keys?.signing.kid as string;
  });
  afterAll(() => registry.destroy());

  /** A token signed with the registry's own key, so only the claim under test is wrong. */
  function genuine(claims: JWTPayload, options: { key?: KeyObject; kid?: string; alg?: string } = {}): Promise<string> {
    const t = now();
    const payload: JWTPayload = {
      iss: "minato-registry",
      aud: "minato-registry",
      sub: "alice",
      iat: t,
      nbf: t,
      exp: t + 300,
      jti: "test",
      access: [{ type: "repository", name: "team-a/app", actions: ["pull"] }],
      ...claims,
    };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: options.alg ?? "ES256", typ: "JWT", kid: options.kid ?? kid })
      .sign(options.key ?? signingKey);
  }

  describe("challenges", () => {
    it("GET /v2/ without a token: 401 with realm and service, no scope", async () => {
      const res = await call(registry, "GET", "/v2/");
      await expectError(res, 401, "UNAUTHORIZED");
      expect(challengeOf(res)).toEqual({ realm: `${registry.url}/token`, service: "minato-registry" });
    });

    it("names the scope each request needs", async () => {
      const cases: [string, string, string][] = [
        ["GET", "/v2/team-a/app/manifests/latest", "repository:team-a/app:pull"],
        ["GET", "/v2/team-a/app/blobs/sha256:" + "a".repeat(64), "repository:team-a/app:pull"],
        ["GET", "/v2/team-a/app/tags/list", "repository:team-a/app:pull"],
        ["POST", "/v2/team-a/app/blobs/uploads/", "repository:team-a/app:pull,push"],
        ["PUT", "/v2/team-a/app/manifests/v1", "repository:team-a/app:pull,push"],
        ["PATCH", "/v2/team-a/app/blobs/uploads/0b0e6ad6-0000-4000-8000-000000000000", "repository:team-a/app:pull,push"],
        ["DELETE", "/v2/team-a/app/manifests/sha256:" + "b".repeat(64), "repository:team-a/app:delete"],
        ["GET", "/v2/_catalog", "registry:catalog:*"],
      ];
      for (const [method, path, scope] of cases) {
        const res = await call(registry, method, path);
        const entries = await expectError(res, 401, "UNAUTHORIZED");
        expect(challengeOf(res), `${method} ${path}`).toEqual({ realm: `${registry.url}/token`, service: "minato-registry", scope });
        expect(challengeOf(res).error).toBeUndefined();
        if (scope.startsWith("repository:"))
          expect(entries[0]?.detail).toContainEqual({ Type: "repository", Name: "team-a/app", Action: scope.split(":")[2]?.split(",")[0] });
      }
    });

    it("HEAD gets the challenge without a body", async () => {
      const res = await call(registry, "HEAD", "/v2/team-a/app/manifests/latest");
      expect(res.statusCode).toBe(401);
      expect(challengeOf(res).scope).toBe("repository:team-a/app:pull");
      expect((await res.body.text()).length).toBe(0);
    });

    it("a token that is not valid is `invalid_token`", async () => {
      const res = await call(registry, "GET", "/v2/", { headers: bearer("not.a.jwt") });
      await expectError(res, 401, "UNAUTHORIZED");
      expect(challengeOf(res).error).toBe("invalid_token");
    });

    it("Basic credentials are not accepted on the API itself", async () => {
      const res = await call(registry, "GET", "/v2/", {
        headers: { authorization: `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString("base64")}` },
      });
      await expectError(res, 401, "UNAUTHORIZED");
    });
  });

  describe("token service (token.md)", () => {
    it("answers token, access_token, expires_in and issued_at; the JWT carries iss, sub, aud, exp, nbf, iat, jti and access", async () => {
      const answer = await requestToken(registry, alice, ["repository:team-a/app:pull,push"]);
      expect(answer.status).toBe(200);
      expect(answer.res.headers["content-type"]).toMatch(/^application\/json/);
      const { token, access_token, expires_in, issued_at } = answer.json as Record<string, string | number>;
      expect(access_token).toBe(token);
      expect(expires_in).toBe(300);
      expect(Number.isNaN(Date.parse(issued_at as string))).toBe(false);
      expect(issued_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      expect(answer.json.refresh_token).toBeUndefined();
      expect(headerOf(token as string)).toMatchObject({ alg: "ES256", typ: "JWT", kid });
      const claims = claimsOf(token as string);
      expect(claims).toMatchObject({ iss: "minato-registry", sub: "alice", aud: "minato-registry" });
      expect(claims.exp).toBe((claims.iat as number) + 300);
      expect(claims.nbf).toBe(claims.iat);
      expect(typeof claims.jti).toBe("string");
      expect(claims.access).toEqual([{ type: "repository", name: "team-a/app", actions: ["pull", "push"] }]);
    });

    it("grants the intersection of asked and allowed: a partial grant is not an error", async () => {
      const answer = await requestToken(registry, reader, ["repository:team-a/app:pull,push,delete", "repository:team-b/app:pull"]);
      expect(answer.status).toBe(200);
      expect(claimsOf(answer.json.token as string).access).toEqual([
        { type: "repository", name: "team-a/app", actions: ["pull"] },
        { type: "repository", name: "team-b/app", actions: [] },
      ]);
    });

    it("expands `*` to what the subject holds; admins hold everything", async () => {
      const mine = claimsOf(await tokenFor(registry, alice, "repository:team-a/app:*")).access;
      expect(mine).toEqual([{ type: "repository", name: "team-a/app", actions: ["pull", "push"] }]);
      const all = claimsOf(await tokenFor(registry, admin, "repository:anything/here:*")).access;
      expect(all).toEqual([{ type: "repository", name: "anything/here", actions: ["pull", "push", "delete"] }]);
    });

    it("accepts scopes whose names carry a host and port, and grants nothing on such names", async () => {
      const answer = await requestToken(registry, admin, ["repository:127.0.0.1:5000/team-a/app:pull"]);
      expect(answer.status).toBe(200);
      expect(claimsOf(answer.json.token as string).access).toEqual([
        { type: "repository", name: "127.0.0.1:5000/team-a/app", actions: [] },
      ]);
    });

    it("anonymous requests get a token with only what is public", async () => {
      usersOf(registry).addPublic("library/*");
      const access = claimsOf(
        await tokenFor(registry, undefined, "repository:library/busybox:pull,push", "repository:team-a/app:pull"),
      ).access;
      expect(access).toEqual([
        { type: "repository", name: "library/busybox", actions: ["pull"] },
        { type: "repository", name: "team-a/app", actions: [] },
      ]);
      expect(claimsOf(await tokenFor(registry, undefined)).sub).toBe("");
    });

    it("refuses wrong credentials with 401, a malformed scope with 400 and another service with 400", async () => {
      const wrong = await requestToken(registry, { user: "alice", password: "nope" }, ["repository:team-a/app:pull"]);
      expect(wrong.status).toBe(401);
      expect(wrong.res.headers["www-authenticate"]).toMatch(/^Basic /);
      const unknown = await requestToken(registry, { user: "nobody", password: "nope" }, []);
      expect(unknown.status).toBe(401);
      expect((await requestToken(registry, alice, ["repository"])).status).toBe(400);
      expect((await requestToken(registry, alice, [], { service: "another-registry" })).status).toBe(400);
    });

    it("groups pass their grants to members", async () => {
      const users = usersOf(registry);
      const carol = await addUser(registry, "carol", "carol-password");
      users.addGroup("team-c");
      users.grant({ group: "team-c" }, "team-c/*", ["pull", "push"]);
      expect(claimsOf(await tokenFor(registry, carol, "repository:team-c/app:pull,push")).access[0]?.actions).toEqual([]);
      users.addMember("team-c", "carol");
      expect(claimsOf(await tokenFor(registry, carol, "repository:team-c/app:pull,push")).access[0]?.actions).toEqual(["pull", "push"]);
    });

    it("publishes its public keys as a JWKS that verifies its tokens", async () => {
      for (const path of ["/token/jwks", "/.well-known/jwks.json"]) {
        const res = await call(registry, "GET", path);
        expect(res.statusCode).toBe(200);
        const jwks = (await res.body.json()) as { keys: Record<string, string>[] };
        expect(jwks.keys.map((k) => k.kid)).toContain(kid);
        for (const key of jwks.keys) expect(key.d).toBeUndefined();
        const token = await tokenFor(registry, alice, "repository:team-a/app:pull");
        const { payload } = await jwtVerify(token, createLocalJWKSet(jwks as never), {
          issuer: "minato-registry",
          audience: "minato-registry",
        });
        expect(payload.sub).toBe("alice");
      }
    });
  });

  describe("OAuth2 POST (oauth.md)", () => {
    it("password grant with access_type=offline returns a refresh token; the refresh grant mints tokens for new scopes", async () => {
      const first = await postToken(registry, {
        grant_type: "password",
        username: "alice",
        password: "alice-password",
        service: "minato-registry",
        client_id: "test-suite",
        access_type: "offline",
        scope: "repository:team-a/app:pull",
      });
      expect(first.status).toBe(200);
      expect(first.json).toMatchObject({ scope: "repository:team-a/app:pull", expires_in: 300 });
      expect(first.json.access_token).toBe(first.json.token);
      const refresh = first.json.refresh_token as string;
      expect(refresh).toMatch(/^mnr_/);

      const second = await postToken(registry, {
        grant_type: "refresh_token",
        refresh_token: refresh,
        service: "minato-registry",
        client_id: "test-suite",
        scope: "repository:team-a/app:pull,push repository:team-b/x:pull",
      });
      expect(second.status).toBe(200);
      expect(second.json.refresh_token).toBe(refresh);
      expect(second.json.scope).toBe("repository:team-a/app:pull,push");
      expect(claimsOf(second.json.access_token as string).sub).toBe("alice");

      // Revoked: refused. Only a hash is stored, never the token itself.
      const id = refresh.slice(4, 20);
      expect(JSON.stringify(usersOf(registry).getRefreshToken(id))).not.toContain(refresh.slice(21));
      usersOf(registry).revokeToken(id);
      const third = await postToken(registry, {
        grant_type: "refresh_token",
        refresh_token: refresh,
        service: "minato-registry",
        client_id: "t",
      });
      expect(third.status).toBe(400);
      expect(third.json.error).toBe("invalid_grant");
    });

    it("GET with offline_token=true returns a refresh token too", async () => {
      const answer = await requestToken(registry, alice, [], { offline_token: "true", client_id: "test" });
      expect(answer.json.refresh_token).toMatch(/^mnr_/);
      const anonymous = await requestToken(registry, undefined, [], { offline_token: "true" });
      expect(anonymous.json.refresh_token).toBeUndefined();
    });

    it("refuses a bad password (invalid_grant) and unknown grant types", async () => {
      const bad = await postToken(registry, { grant_type: "password", username: "alice", password: "wrong", service: "minato-registry" });
      expect(bad.status).toBe(400);
      expect(bad.json.error).toBe("invalid_grant");
      const other = await postToken(registry, { grant_type: "authorization_code", code: "x", service: "minato-registry" });
      expect(other.json.error).toBe("unsupported_grant_type");
      const forged = await postToken(registry, { grant_type: "refresh_token", refresh_token: `mnr_0123456789abcdef_${"A".repeat(43)}` });
      expect(forged.json.error).toBe("invalid_grant");
    });

    it("a password change revokes the user's refresh tokens", async () => {
      const dave = await addUser(registry, "dave", "dave-password-1", [["team-a/*", ["pull"]]]);
      const first = await postToken(registry, {
        grant_type: "password",
        username: dave.user,
        password: dave.password,
        access_type: "offline",
      });
      const refresh = first.json.refresh_token as string;
      usersOf(registry).setPassword("dave", null);
      const again = await postToken(registry, { grant_type: "refresh_token", refresh_token: refresh });
      expect(again.json.error).toBe("invalid_grant");
    });
  });

  describe("authorization with tokens", () => {
    it("pushes and pulls with a token that covers the action", async () => {
      const token = await tokenFor(registry, alice, "repository:team-a/app:pull,push");
      const { manifest, layer } = await pushSmallImage(registry, "team-a/app", "v1", token);
      expect(await statusWith(registry, "GET", "/v2/team-a/app/manifests/v1", token)).toBe(200);
      expect(await statusWith(registry, "GET", `/v2/team-a/app/blobs/${layer}`, token)).toBe(200);
      expect(await statusWith(registry, "HEAD", `/v2/team-a/app/manifests/${manifest}`, token)).toBe(200);
      expect(await statusWith(registry, "GET", "/v2/", token)).toBe(200);
    });

    it("403 DENIED when the token was granted pull but the request pushes", async () => {
      const token = await tokenFor(registry, reader, "repository:team-a/app:pull,push");
      expect(await statusWith(registry, "GET", "/v2/team-a/app/manifests/v1", token)).toBe(200);
      const res = await call(registry, "POST", "/v2/team-a/app/blobs/uploads/", { headers: bearer(token) });
      const entries = await expectError(res, 403, "DENIED");
      expect(entries[0]?.detail).toEqual([{ Type: "repository", Name: "team-a/app", Action: "push" }]);
      expect(challengeOf(res)).toMatchObject({ scope: "repository:team-a/app:pull,push", error: "insufficient_scope" });
      const del = await call(registry, "DELETE", "/v2/team-a/app/manifests/v1", { headers: bearer(token) });
      await expectError(del, 403, "DENIED");
    });

    it("401 insufficient_scope when the token is for another repository, so the client fetches the right one", async () => {
      const token = await tokenFor(registry, alice, "repository:team-a/other:pull");
      const res = await call(registry, "GET", "/v2/team-a/app/manifests/v1", { headers: bearer(token) });
      await expectError(res, 401, "UNAUTHORIZED");
      expect(challengeOf(res)).toMatchObject({ scope: "repository:team-a/app:pull", error: "insufficient_scope" });
    });

    it("anonymous clients pull public repositories but cannot push to them", async () => {
      const adminToken = await tokenFor(registry, admin, "repository:library/hello:pull,push");
      await pushSmallImage(registry, "library/hello", "latest", adminToken);
      const anonymous = await tokenFor(registry, undefined, "repository:library/hello:pull,push");
      expect(await statusWith(registry, "GET", "/v2/library/hello/manifests/latest", anonymous)).toBe(200);
      expect(await statusWith(registry, "GET", "/v2/library/hello/tags/list", anonymous)).toBe(200);
      expect(await statusWith(registry, "POST", "/v2/library/hello/blobs/uploads/", anonymous)).toBe(403);
      const privateToken = await tokenFor(registry, undefined, "repository:team-a/app:pull");
      const denied = await call(registry, "GET", "/v2/team-a/app/manifests/v1", { headers: bearer(privateToken) });
      const [entry] = await expectError(denied, 403, "DENIED");
      // In substance what Docker says: no such repository, or it needs a login.
      expect(entry?.message).toBe(
        "requested access to the resource is denied: repository team-a/app does not exist or may require 'minato login'",
      );
    });

    it("a cross-repository mount needs pull on `from`; without it the upload falls back to a session (202)", async () => {
      const users = usersOf(registry);
      const secret = Buffer.from(`secret layer ${Math.random()}`);
      const digest = digestOf(secret);
      const adminToken = await tokenFor(registry, admin, "repository:team-s/secret:pull,push");
      const up = await call(registry, "POST", `/v2/team-s/secret/blobs/uploads/?digest=${digest}`, {
        headers: { ...bearer(adminToken), "content-type": "application/octet-stream" },
        body: secret,
      });
      expect(up.statusCode).toBe(201);
      await up.body.dump();

      // alice may push team-a/* but not pull team-s/*: the mount is not done and the blob stays hidden.
      const token = await tokenFor(registry, alice, "repository:team-a/mounted:pull,push", "repository:team-s/secret:pull");
      const res = await call(registry, "POST", `/v2/team-a/mounted/blobs/uploads/?mount=${digest}&from=team-s/secret`, {
        headers: bearer(token),
      });
      await res.body.dump();
      expect(res.statusCode).toBe(202);
      expect(await statusWith(registry, "HEAD", `/v2/team-a/mounted/blobs/${digest}`, token)).toBe(404);

      // With pull on the source (granted now), the same request mounts.
      users.grant({ user: "alice" }, "team-s/*", ["pull"]);
      const allowed = await tokenFor(registry, alice, "repository:team-a/mounted:pull,push", "repository:team-s/secret:pull");
      const mounted = await call(registry, "POST", `/v2/team-a/mounted/blobs/uploads/?mount=${digest}&from=team-s/secret`, {
        headers: bearer(allowed),
      });
      await mounted.body.dump();
      expect(mounted.statusCode).toBe(201);
      users.revoke({ user: "alice" }, "team-s/*");
    });

    it("an automatic mount (no `from`) looks only in repositories the token grants pull on", async () => {
      const users = usersOf(registry);
      const secret = Buffer.from(`auto-mounted secret ${Math.random()}`);
      const digest = digestOf(secret);
      const adminToken = await tokenFor(registry, admin, "repository:team-s/auto:pull,push");
      const up = await call(registry, "POST", `/v2/team-s/auto/blobs/uploads/?digest=${digest}`, {
        headers: { ...bearer(adminToken), "content-type": "application/octet-stream" },
        body: secret,
      });
      expect(up.statusCode).toBe(201);
      await up.body.dump();
      const mount = async (token: string) => {
        const res = await call(registry, "POST", `/v2/team-a/auto-mounted/blobs/uploads/?mount=${digest}`, { headers: bearer(token) });
        await res.body.dump();
        return res.statusCode;
      };
      // alice cannot read team-s/*: even asking for it, the blob is not revealed.
      expect(await mount(await tokenFor(registry, alice, "repository:team-a/auto-mounted:pull,push", "repository:team-s/auto:pull"))).toBe(
        202,
      );
      const adminRead = await tokenFor(registry, admin, "repository:team-a/auto-mounted:pull");
      expect(await statusWith(registry, "HEAD", `/v2/team-a/auto-mounted/blobs/${digest}`, adminRead)).toBe(404);
      users.grant({ user: "alice" }, "team-s/*", ["pull"]);
      try {
        // Allowed to read it, but the token does not grant pull there: not looked at.
        expect(await mount(await tokenFor(registry, alice, "repository:team-a/auto-mounted:pull,push"))).toBe(202);
        // A token granting pull on the holder: mounted.
        expect(
          await mount(await tokenFor(registry, alice, "repository:team-a/auto-mounted:pull,push", "repository:team-s/auto:pull")),
        ).toBe(201);
      } finally {
        users.revoke({ user: "alice" }, "team-s/*");
      }
    });

    it("the catalog lists only what the caller may pull, with correct pagination", async () => {
      const adminToken = await tokenFor(registry, admin, "repository:team-b/one:pull,push", "repository:team-a/two:pull,push");
      await pushSmallImage(registry, "team-b/one", "v1", adminToken);
      await pushSmallImage(registry, "team-a/two", "v1", adminToken);
      const list = async (credentials: Credentials | undefined, query = "") => {
        const token = await tokenFor(registry, credentials, "registry:catalog:*");
        const res = await call(registry, "GET", `/v2/_catalog${query}`, { headers: bearer(token) });
        expect(res.statusCode).toBe(200);
        return { body: (await res.body.json()) as { repositories: string[] }, link: header(res, "link") };
      };
      const all = (await list(admin)).body.repositories;
      expect(all).toEqual(expect.arrayContaining(["library/hello", "team-a/app", "team-a/two", "team-b/one"]));
      // Repositories holding only blobs (no manifest) are not listed.
      expect(all).not.toContain("team-s/secret");
      const visibleToAlice = (await list(alice)).body.repositories;
      expect(visibleToAlice).toEqual(all.filter((r) => r.startsWith("team-a/") || r.startsWith("library/")));
      expect((await list(undefined)).body.repositories).toEqual(["library/hello"]);

      // Pages of one: every visible repository once, in order, hidden ones never.
      const seen: string[] = [];
      let query = "?n=1";
      for (let i = 0; i < 20; i++) {
        const page = await list(alice, query);
        seen.push(...page.body.repositories);
        if (!page.link) break;
        query = `?${new URL(/<([^>]+)>/.exec(page.link)?.[1] as string, "http://x").searchParams}`;
      }
      expect(seen).toEqual(visibleToAlice);

      // Without the catalog scope: a challenge for it.
      const token = await tokenFor(registry, alice, "repository:team-a/app:pull");
      const res = await call(registry, "GET", "/v2/_catalog", { headers: bearer(token) });
      await expectError(res, 401, "UNAUTHORIZED");
      expect(challengeOf(res).scope).toBe("registry:catalog:*");
    });

    it("a personal access token works as the password within its scope, and stops when revoked", async () => {
      const users = usersOf(registry);
      const { id, token: pat } = users.createAccessToken("alice", "ci", [{ pattern: "team-a/app", actions: ["pull"] }]);
      const patCredentials = { user: "alice", password: pat };
      const access = claimsOf(
        await tokenFor(registry, patCredentials, "repository:team-a/app:pull,push", "repository:team-a/two:pull"),
      ).access;
      // Cut down to the token's scope, although alice herself may push to team-a/*.
      expect(access).toEqual([
        { type: "repository", name: "team-a/app", actions: ["pull"] },
        { type: "repository", name: "team-a/two", actions: [] },
      ]);
      // The catalog of a token-authenticated caller follows the token's scope too.
      const catalogToken = await tokenFor(registry, patCredentials, "registry:catalog:*");
      const res = await call(registry, "GET", "/v2/_catalog", { headers: bearer(catalogToken) });
      expect(((await res.body.json()) as { repositories: string[] }).repositories).toEqual(["team-a/app"]);
      // Another user's name with this token: refused.
      expect((await requestToken(registry, { user: "reader", password: pat }, [])).status).toBe(401);
      users.revokeToken(id);
      expect((await requestToken(registry, patCredentials, ["repository:team-a/app:pull"])).status).toBe(401);
    });
  });

  describe("forged and tampered tokens are refused", () => {
    const path = "/v2/team-a/app/manifests/v1";
    const expectInvalid = async (token: string) => {
      const res = await call(registry, "GET", path, { headers: bearer(token) });
      await expectError(res, 401, "UNAUTHORIZED");
      expect(challengeOf(res).error).toBe("invalid_token");
    };

    it("accepts the genuine article (the baseline for the cases below)", async () => {
      expect(await statusWith(registry, "GET", path, await genuine({}))).toBe(200);
    });

    it("alg: none", async () => {
      const t = now();
      const claims = {
        iss: "minato-registry",
        aud: "minato-registry",
        sub: "alice",
        iat: t,
        nbf: t,
        exp: t + 300,
        access: [{ type: "repository", name: "team-a/app", actions: ["pull"] }],
      };
      await expectInvalid(`${b64({ alg: "none", typ: "JWT", kid })}.${b64(claims)}.`);
      await expectInvalid(`${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`);
    });

    it("HS256 signed with the public key as the shared secret", async () => {
      const publicKey = createPublicKey(signingKey);
      for (const secret of [
        publicKey.export({ type: "spki", format: "pem" }) as string,
        publicKey.export({ type: "spki", format: "der" }),
        JSON.stringify(publicKey.export({ format: "jwk" })),
      ]) {
        const t = now();
        const forged = await new SignJWT({ access: [{ type: "repository", name: "team-a/app", actions: ["pull"] }] })
          .setProtectedHeader({ alg: "HS256", typ: "JWT", kid })
          .setIssuer("minato-registry")
          .setAudience("minato-registry")
          .setSubject("alice")
          .setIssuedAt(t)
          .setExpirationTime(t + 300)
          .sign(typeof secret === "string" ? new TextEncoder().encode(secret) : new Uint8Array(secret));
        await expectInvalid(forged);
      }
    });

    it("signed by another key, under our kid or its own", async () => {
      const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      await expectInvalid(await genuine({}, { key: privateKey }));
      await expectInvalid(await genuine({}, { key: privateKey, kid: "someone-else" }));
      const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
      await expectInvalid(await genuine({}, { key: rsa, alg: "RS256" }));
    });

    it("tampered: claims changed after signing", async () => {
      const token = await genuine({});
      const [h, , s] = token.split(".");
      const t = now();
      const widened = b64({
        ...claimsOf(token),
        access: [{ type: "repository", name: "team-a/app", actions: ["pull", "push", "delete"] }],
        exp: t + 300,
      });
      await expectInvalid(`${h}.${widened}.${s}`);
    });

    it("expired, not yet valid, without exp (beyond the leeway)", async () => {
      const t = now();
      await expectInvalid(await genuine({ exp: t - 120, iat: t - 500, nbf: t - 500 }));
      await expectInvalid(await genuine({ nbf: t + 600, iat: t }));
      const noExp = await new SignJWT({ access: [{ type: "repository", name: "team-a/app", actions: ["pull"] }] })
        .setProtectedHeader({ alg: "ES256", typ: "JWT", kid })
        .setIssuer("minato-registry")
        .setAudience("minato-registry")
        .setSubject("alice")
        .sign(signingKey);
      await expectInvalid(noExp);
      // Within the small leeway for clock skew: still accepted.
      expect(await statusWith(registry, "GET", path, await genuine({ exp: t - 5 }))).toBe(200);
    });

    it("wrong audience, wrong issuer", async () => {
      await expectInvalid(await genuine({ aud: "another-registry" }));
      await expectInvalid(await genuine({ iss: "someone-else" }));
    });

    it("malformed access claims", async () => {
      await expectInvalid(await genuine({ access: "repository:team-a/app:pull" }));
      await expectInvalid(await genuine({ access: [{ type: "repository", name: "team-a/app", actions: "pull" }] }));
    });

    it("an access claim for another repository does not open this one", async () => {
      const token = await genuine({ access: [{ type: "repository", name: "team-a/other", actions: ["pull", "push"] }] });
      const res = await call(registry, "GET", path, { headers: bearer(token) });
      await expectError(res, 401, "UNAUTHORIZED");
      expect(challengeOf(res).error).toBe("insufficient_scope");
      const prefix = await genuine({ access: [{ type: "repository", name: "team-a/*", actions: ["pull"] }] });
      expect(await statusWith(registry, "GET", path, prefix)).toBe(401);
      const wrongType = await genuine({ access: [{ type: "registry", name: "team-a/app", actions: ["pull"] }] });
      expect(await statusWith(registry, "GET", path, wrongType)).toBe(401);
    });
  });

  describe("signing keys", () => {
    it("the key file has mode 0600 in a 0700 directory", async () => {
      const { stat } = await import("node:fs/promises");
      const dir = keysDir(registry.dataDir);
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
      const files = (await readdir(dir)).filter((f) => f.endsWith(".pem"));
      expect(files.length).toBe(1);
      expect((await stat(join(dir, files[0] as string))).mode & 0o777).toBe(0o600);
    });
  });
});

describe("signing key rotation", () => {
  it("trusts every key in the ring: tokens of the previous key stay valid after a rotation", async () => {
    const first = await startAuthRegistry();
    const dataDir = first.dataDir;
    const oldKid = first.auth?.keys?.signing.kid;
    const oldToken = await tokenFor(first, ADMIN, "repository:x/y:pull");
    await first.close();

    const rotated = await generateSigningKey(keysDir(dataDir));
    const second = await startAuthRegistry({}, { dataDir });
    try {
      expect(second.auth?.keys?.signing.kid).toBe(rotated.kid);
      expect(await statusWith(second, "GET", "/v2/", oldToken)).toBe(200);
      const newToken = await tokenFor(second, ADMIN, "repository:x/y:pull");
      expect(headerOf(newToken).kid).toBe(rotated.kid);
      expect(headerOf(newToken).kid).not.toBe(oldKid);
      const jwks = (await (await call(second, "GET", "/token/jwks")).body.json()) as { keys: { kid: string }[] };
      expect(jwks.keys.map((k) => k.kid).sort()).toEqual([oldKid, rotated.kid].sort());
    } finally {
      await second.destroy();
      // The harness removes only the directory it made itself; this one came from the first registry.
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
