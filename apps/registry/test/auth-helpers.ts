import { type Digest, digestOf, MediaType } from "@minato/oci";
import { decodeJwt, decodeProtectedHeader, type JWTPayload } from "jose";
import { expect } from "vitest";
import { hashPassword } from "../src/auth/passwords.js";
import type { Action } from "../src/auth/scope.js";
import type { UserStore } from "../src/auth/users.js";
import type { AuthConfig } from "../src/index.js";
import { call, type Response, startTestRegistry, type TestOverrides, type TestRegistry } from "./harness.js";

/** Helpers for the token-authentication tests (auth*.test.ts). */

export const ADMIN = { user: "admin", password: "admin-password-1" };

/** A registry with the built-in token service and a known first admin. */
export function startAuthRegistry(auth: Partial<AuthConfig> = {}, overrides: TestOverrides = {}): Promise<TestRegistry> {
  return startTestRegistry({ ...overrides, auth: { admin: { ...ADMIN }, ...auth } });
}

export function usersOf(registry: TestRegistry): UserStore {
  const users = registry.auth?.users;
  if (!users) throw new Error("registry has no built-in user store");
  return users;
}

export interface Credentials {
  user: string;
  password: string;
}

/** Adds a user with grants `[pattern, actions]`. */
export async function addUser(
  registry: TestRegistry,
  user: string,
  password: string,
  grants: [string, Action[]][] = [],
  options: { admin?: boolean } = {},
): Promise<Credentials> {
  const users = usersOf(registry);
  users.addUser(user, { passwordHash: await hashPassword(password), admin: options.admin ?? false });
  for (const [pattern, actions] of grants) users.grant({ user }, pattern, actions);
  return { user, password };
}

export const basic = (c: Credentials): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`${c.user}:${c.password}`).toString("base64")}`,
});
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

export interface TokenAnswer {
  res: Response;
  status: number;
  json: Record<string, unknown>;
}

/** GET /token with optional Basic credentials and any number of `scope` parameters. */
export async function requestToken(
  registry: TestRegistry,
  credentials: Credentials | undefined,
  scopes: string[],
  extra: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<TokenAnswer> {
  const query = new URLSearchParams({ service: "minato-registry", ...extra });
  for (const scope of scopes) query.append("scope", scope);
  const res = await call(registry, "GET", `/token?${query}`, { headers: { ...(credentials ? basic(credentials) : {}), ...headers } });
  const text = await res.body.text();
  return { res, status: res.statusCode, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A token from the built-in service (asserting 200). */
export async function tokenFor(registry: TestRegistry, credentials: Credentials | undefined, ...scopes: string[]): Promise<string> {
  const answer = await requestToken(registry, credentials, scopes);
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  return answer.json.token as string;
}

/** POST /token with an OAuth2 form. */
export async function postToken(
  registry: TestRegistry,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<TokenAnswer> {
  const res = await call(registry, "POST", "/token", {
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.body.text();
  return { res, status: res.statusCode, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export function claimsOf(token: string): JWTPayload & { access: { type: string; name: string; actions: string[] }[] } {
  return decodeJwt(token) as JWTPayload & { access: { type: string; name: string; actions: string[] }[] };
}

export function headerOf(token: string) {
  return decodeProtectedHeader(token);
}

/** A `WWW-Authenticate: Bearer k="v",…` challenge as a map. */
export function challengeOf(res: Response): Record<string, string> {
  const value = res.headers["www-authenticate"];
  const text = Array.isArray(value) ? value.join(", ") : (value ?? "");
  expect(text).toMatch(/^Bearer /);
  return Object.fromEntries([...text.slice(7).matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]));
}

/** Status of a request with a token, body drained. */
export async function statusWith(registry: TestRegistry, method: string, path: string, token?: string): Promise<number> {
  const res = await call(registry, method, path, { headers: token ? bearer(token) : {} });
  await res.body.dump();
  return res.statusCode;
}

/** Pushes a blob (single POST) and an OCI manifest referencing it, with a token; returns the manifest digest. */
export async function pushSmallImage(
  registry: TestRegistry,
  name: string,
  tag: string,
  token: string,
): Promise<{ manifest: Digest; layer: Digest }> {
  const layer = Buffer.from(`layer of ${name}:${tag} ${Math.random()}`);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  for (const blob of [layer, config]) {
    const res = await call(registry, "POST", `/v2/${name}/blobs/uploads/?digest=${digestOf(blob)}`, {
      headers: { ...bearer(token), "content-type": "application/octet-stream" },
      body: blob,
    });
    const text = await res.body.text();
    expect(res.statusCode, text).toBe(201);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: digestOf(layer), size: layer.length }],
    }),
  );
  const res = await call(registry, "PUT", `/v2/${name}/manifests/${tag}`, {
    headers: { ...bearer(token), "content-type": MediaType.ociManifest },
    body: manifest,
  });
  const text = await res.body.text();
  expect(res.statusCode, text).toBe(201);
  return { manifest: digestOf(manifest), layer: digestOf(layer) };
}
