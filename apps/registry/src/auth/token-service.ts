import { isValidRepositoryName } from "@minato/oci";
import type { Hono } from "hono";
import { SignJWT } from "jose";
import type { AuditLog } from "../audit.js";
import { RegistryError } from "../errors.js";
import type { Ctx, Env } from "../http.js";
import type { Logger } from "../logger.js";
import type { RegistryMetrics } from "../metrics.js";
import { permittedActions } from "./acl.js";
import type { AuthConfig } from "./config.js";
import { checkCredentials, checkRefreshToken, type Subject } from "./credentials.js";
import type { KeyRing } from "./keys.js";
import { randomId } from "./passwords.js";
import { clientAddress } from "./request.js";
import { type AccessEntry, formatScope, parseScopes, REPOSITORY_ACTIONS, type ResourceScope, ScopeError } from "./scope.js";
import type { LoginThrottle } from "./throttle.js";
import type { UserStore } from "./users.js";

/** Private claim naming the personal access token a token was obtained with (its scope still applies). */
export const ACCESS_TOKEN_CLAIM = "minato_pat";

export interface TokenServiceDeps {
  config: AuthConfig;
  keys: KeyRing;
  users: UserStore;
  throttle: LoginThrottle;
  logger: Logger;
  metrics?: RegistryMetrics;
  audit?: AuditLog;
}

interface Issued {
  token: string;
  expiresIn: number;
  issuedAt: string;
  access: AccessEntry[];
}

/**
 * The built-in token service (docker-registry-auth token.md and oauth.md): GET with HTTP Basic or
 * anonymous, POST with an OAuth2 password or refresh_token grant. It grants the intersection of what
 * was asked and what the subject may do; a partial grant is not an error.
 */
export function mountTokenService(app: Hono<Env>, deps: TokenServiceDeps): void {
  const { config } = deps;
  const jwks = (c: Ctx) => c.json(deps.keys.jwks(), 200, { "Cache-Control": "public, max-age=300" });
  app.get(`${config.tokenPath}/jwks`, jwks);
  app.get("/.well-known/jwks.json", jwks);
  app.get(config.tokenPath, (c) => getToken(c, deps));
  app.post(config.tokenPath, (c) => postToken(c, deps));
}

async function getToken(c: Ctx, deps: TokenServiceDeps): Promise<Response> {
  checkService(deps, c.req.query("service"));
  const scopes = requestedScopes(c.req.queries("scope") ?? []);
  let subject: Subject | undefined;
  const basic = parseBasic(c.req.header("authorization"), deps.config.service);
  if (basic) {
    subject = await login(c, deps, basic.username, basic.password);
    if (!subject) {
      throw new RegistryError(401, "UNAUTHORIZED", undefined, "invalid username or password", {
        "WWW-Authenticate": `Basic realm="${deps.config.service}"`,
      });
    }
  }
  const issued = await issue(deps, subject, scopes, c);
  const refreshToken =
    c.req.query("offline_token") === "true" && subject
      ? deps.users.createRefreshToken(subject.userId, subject.accessTokenId ?? null, deps.config.service, c.req.query("client_id") ?? null)
      : undefined;
  return c.json(
    {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    },
    200,
    { "Cache-Control": "no-store" },
  );
}

async function postToken(c: Ctx, deps: TokenServiceDeps): Promise<Response> {
  const form = await c.req.parseBody();
  const field = (name: string): string | undefined => (typeof form[name] === "string" ? (form[name] as string) : undefined);
  checkService(deps, field("service"));
  const scopes = requestedScopes([field("scope") ?? ""]);
  const grantType = field("grant_type");
  let subject: Subject | undefined;
  let refreshToken: string | undefined;
  if (grantType === "password") {
    const username = field("username");
    const password = field("password");
    if (!username || password === undefined) return oauthError(c, "invalid_request", "username and password are required");
    subject = await login(c, deps, username, password);
    if (!subject) return oauthError(c, "invalid_grant", "invalid username or password");
    if (field("access_type") === "offline") {
      refreshToken = deps.users.createRefreshToken(
        subject.userId,
        subject.accessTokenId ?? null,
        deps.config.service,
        field("client_id") ?? null,
      );
    }
  } else if (grantType === "refresh_token") {
    refreshToken = field("refresh_token");
    const address = `addr:${clientAddress(c, deps.config.trustProxy)}`;
    try {
      throttled(deps, [[address, deps.config.throttle.perAddress]]);
    } catch (error) {
      deps.metrics?.loginsThrottled.inc();
      throw error;
    }
    subject = refreshToken ? checkRefreshToken(deps.users, refreshToken, deps.config.service) : undefined;
    if (!subject) {
      deps.throttle.fail(address);
      deps.metrics?.authFailures.inc({ reason: "refresh_token" });
      return oauthError(c, "invalid_grant", "refresh token invalid, expired or revoked");
    }
  } else {
    return oauthError(c, "unsupported_grant_type", "grant_type must be password or refresh_token");
  }
  const issued = await issue(deps, subject, scopes, c);
  return c.json(
    {
      access_token: issued.token,
      token: issued.token,
      scope: issued.access
        .filter((a) => a.actions.length > 0)
        .map(formatScope)
        .join(" "),
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    },
    200,
    { "Cache-Control": "no-store" },
  );
}

function oauthError(c: Ctx, error: string, description: string): Response {
  return c.json({ error, error_description: description }, 400, { "Cache-Control": "no-store" });
}

function checkService(deps: TokenServiceDeps, service: string | undefined): void {
  if (service !== undefined && service !== deps.config.service) {
    throw new RegistryError(
      400,
      "DENIED",
      { service: service.slice(0, 200) },
      `this token service issues tokens for ${deps.config.service} only`,
    );
  }
}

function requestedScopes(values: string[]): ResourceScope[] {
  try {
    return parseScopes(values);
  } catch (error) {
    if (error instanceof ScopeError) throw new RegistryError(400, "UNSUPPORTED", undefined, error.message);
    throw error;
  }
}

/**
 * The Basic credentials of a token request, or undefined for an anonymous one (no Authorization
 * header). Anything else in the header is refused rather than served an anonymous token: a client
 * whose credentials did not arrive intact must hear so, not get less access silently.
 */
function parseBasic(header: string | undefined, service: string): { username: string; password: string } | undefined {
  if (header === undefined) return undefined;
  const refuse = (message: string) =>
    new RegistryError(401, "UNAUTHORIZED", undefined, message, { "WWW-Authenticate": `Basic realm="${service}"` });
  const scheme = /^(\S+)(?:\s+(.*))?$/.exec(header.trim());
  if (scheme?.[1]?.toLowerCase() !== "basic") {
    throw refuse("the token service takes Basic credentials (user:password) or none, not a bearer token or another scheme");
  }
  const encoded = scheme[2]?.trim() ?? "";
  // Strict base64 (RFC 7617): Buffer.from would silently skip invalid characters.
  const decoded = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(encoded)
    ? utf8(Buffer.from(encoded, "base64"))
    : undefined;
  const colon = decoded?.indexOf(":") ?? -1;
  if (decoded === undefined || colon < 0) throw refuse("malformed Basic credentials: expected base64 of user:password in UTF-8");
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Strictly decoded UTF-8, or undefined for bytes that are not (a lenient decode would alter the password). */
function utf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** Refuses, before any password is looked at, a user or address with too many recent failures. */
function throttled(deps: TokenServiceDeps, keys: [string, number][]): void {
  const wait = Math.max(...keys.map(([key, limit]) => deps.throttle.retryAfter(key, limit)));
  if (wait > 0) {
    throw new RegistryError(429, "TOOMANYREQUESTS", undefined, "too many failed logins; try again later", { "Retry-After": String(wait) });
  }
}

async function login(c: Ctx, deps: TokenServiceDeps, username: string, password: string): Promise<Subject | undefined> {
  const { throttle: limits, trustProxy } = deps.config;
  const client = clientAddress(c, trustProxy);
  // Per user *and* address, never per user alone: failures from one address must not lock the user
  // out everywhere (anyone could lock out a shared CI account). The address limit covers spraying.
  const userKey = `user:${username.toLowerCase().slice(0, 128)}@${client}`;
  const addressKey = `addr:${client}`;
  try {
    throttled(deps, [
      [userKey, limits.perUser],
      [addressKey, limits.perAddress],
    ]);
  } catch (error) {
    deps.logger.warn({ user: username.slice(0, 64), client }, "login throttled");
    deps.metrics?.loginsThrottled.inc();
    throw error;
  }
  const subject = await checkCredentials(deps.users, username, password);
  if (!subject) {
    deps.throttle.fail(userKey);
    deps.throttle.fail(addressKey);
    deps.logger.info({ user: username.slice(0, 64), client }, "login failed");
    deps.metrics?.authFailures.inc({ reason: "password" });
    deps.audit?.record({ actor: username.slice(0, 64), address: client, action: "login-failed", target: "" });
    return undefined;
  }
  deps.throttle.clear(userKey);
  deps.audit?.record({ actor: subject.name, address: client, action: "login", target: "" });
  return subject;
}

/** Intersects what was asked with what the subject may do, and signs an access token for it. */
async function issue(deps: TokenServiceDeps, subject: Subject | undefined, scopes: ResourceScope[], c: Ctx): Promise<Issued> {
  const permissions = deps.users.permissions(subject?.name, subject?.accessTokenId);
  const access: AccessEntry[] = scopes.map((scope) => {
    if (scope.type === "repository") {
      const allowed = isValidRepositoryName(scope.name) ? permittedActions(permissions, scope.name) : new Set<string>();
      const asked = scope.actions.includes("*") ? REPOSITORY_ACTIONS : scope.actions;
      return { type: scope.type, name: scope.name, actions: REPOSITORY_ACTIONS.filter((a) => asked.includes(a) && allowed.has(a)) };
    }
    // Everyone may list the catalog; the listing shows only what the caller may pull.
    if (scope.type === "registry" && scope.name === "catalog") return { ...scope, actions: scope.actions.filter((a) => a === "*") };
    // Metrics (`registry:metrics:*`): admins, and users whose grants cover the repository pattern `metrics`.
    if (scope.type === "registry" && scope.name === "metrics") {
      const allowed = subject !== undefined && permittedActions({ ...permissions, publicPatterns: [] }, "metrics").has("pull");
      return { ...scope, actions: allowed ? scope.actions.filter((a) => a === "*") : [] };
    }
    return { ...scope, actions: [] };
  });
  const key = deps.keys.signing;
  const now = Math.floor(Date.now() / 1000);
  const ttl = deps.config.tokenTtlSeconds;
  const token = await new SignJWT({ access, ...(subject?.accessTokenId ? { [ACCESS_TOKEN_CLAIM]: subject.accessTokenId } : {}) })
    .setProtectedHeader({ alg: key.alg, typ: "JWT", kid: key.kid })
    .setIssuer(deps.config.issuer)
    .setSubject(subject?.name ?? "")
    .setAudience(deps.config.service)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + ttl)
    .setJti(randomId(16))
    .sign(key.privateKey);
  deps.logger.debug({ sub: subject?.name ?? "", access: access.map(formatScope) }, "issued token");
  const granted = access.filter((a) => a.actions.length > 0).map(formatScope);
  if (subject || granted.length > 0) {
    deps.audit?.record({
      actor: subject?.name ?? "",
      address: clientAddress(c, deps.config.trustProxy),
      action: "token",
      target: granted.join(" "),
      ...(subject?.accessTokenId ? { detail: { accessToken: subject.accessTokenId } } : {}),
    });
  }
  return { token, expiresIn: ttl, issuedAt: new Date(now * 1000).toISOString(), access };
}
