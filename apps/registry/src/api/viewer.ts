import { getCookie } from "hono/cookie";
import { type Permissions, permittedActions } from "../auth/acl.js";
import type { AuthConfig } from "../auth/config.js";
import { checkCredentials, type Subject } from "../auth/credentials.js";
import type { AuthRuntime } from "../auth/index.js";
import { constantTimeEqual } from "../auth/passwords.js";
import { clientAddress } from "../auth/request.js";
import type { Action } from "../auth/scope.js";
import type { LoginThrottle } from "../auth/throttle.js";
import { isLive } from "../auth/users.js";
import { RegistryError } from "../errors.js";
import type { Ctx, RegistryDeps } from "../http.js";
import { type BrowserSession, passwordStamp, type SessionStore } from "./sessions.js";

export const SESSION_COOKIE = "minato_session";
export const CSRF_HEADER = "x-csrf-token";

/** Who is asking, and what they may do on each repository. */
export interface Viewer {
  /** The user's name; undefined when anonymous or when the registry runs without authentication. */
  user?: string;
  session?: BrowserSession;
  may(repository: string, action: Action): boolean;
}

export interface ViewerDeps {
  deps: RegistryDeps;
  /** Authentication as configured (undefined: open registry, loopback development). */
  auth?: { runtime: AuthRuntime; config: AuthConfig };
  sessions?: SessionStore;
  throttle: LoginThrottle;
}

const OPEN: Viewer = { may: () => true };

/**
 * The same identities and rights as the distribution API: a browser session (cookie), HTTP Basic with
 * a password or personal access token, or a Bearer token (what its access claim names); anonymous
 * callers get what is public. A request that presents a session cookie no longer valid is refused
 * (401), so the UI goes back to its login page instead of quietly showing less.
 */
export async function viewerOf(c: Ctx, v: ViewerDeps): Promise<Viewer> {
  if (!v.auth) return OPEN;
  const { runtime } = v.auth;
  const users = runtime.users;
  const authorization = c.req.header("authorization");
  if (authorization && /^bearer\s/i.test(authorization)) {
    // A token allows what its access claim says, as on /v2/ (an external issuer's tokens included).
    await v.deps.auth?.require(c);
    return { may: (name, action) => runtime.authorizer.permits(c, name, action) };
  }
  if (authorization && /^basic\s/i.test(authorization)) {
    if (!users) throw unauthorized("this registry's users are managed by an external token issuer; use a Bearer token");
    const credentials = parseBasic(authorization);
    const subject = credentials ? await login(c, v, credentials.username, credentials.password) : undefined;
    if (!subject) throw unauthorized("invalid username or password");
    return fromPermissions(users.permissions(subject.name, subject.accessTokenId), subject.name);
  }
  const cookie = getCookie(c, SESSION_COOKIE);
  if (cookie !== undefined && v.sessions && users) {
    const session = v.sessions.find(cookie);
    if (!session) throw unauthorized("your session has expired; log in again");
    // A session opened with an access token ends when the token is revoked or expires; one opened
    // with a password, when the password changes (as refresh tokens do).
    if (session.accessTokenId !== null) {
      const token = users.getAccessToken(session.accessTokenId);
      if (!token || !isLive(token)) throw unauthorized("the access token of this session was revoked or has expired; log in again");
    } else if (passwordStamp(users.getUser(session.user)?.passwordHash ?? null) !== session.passwordStamp) {
      throw unauthorized("your password was changed; log in again");
    }
    return { ...fromPermissions(users.permissions(session.user, session.accessTokenId ?? undefined), session.user), session };
  }
  // Anonymous: public repositories only (an external issuer's anonymous callers see nothing here).
  return users ? fromPermissions(users.permissions(undefined)) : { may: () => false };
}

function fromPermissions(permissions: Permissions, user?: string): Viewer {
  const cache = new Map<string, Set<Action>>();
  return {
    ...(user ? { user } : {}),
    may(name, action) {
      let allowed = cache.get(name);
      if (!allowed) {
        allowed = permittedActions(permissions, name);
        cache.set(name, allowed);
      }
      return allowed.has(action);
    },
  };
}

/**
 * CSRF protection for requests that change something with a browser session: the session's token
 * must come back in the X-CSRF-Token header (a cross-site form or script cannot read it), and an
 * Origin header, when sent, must be this registry's. Bearer and Basic callers carry no ambient
 * credentials, so they need neither.
 */
export function checkCsrf(c: Ctx, viewer: Viewer): void {
  if (!viewer.session) return;
  const sent = c.req.header(CSRF_HEADER) ?? "";
  if (!constantTimeEqual(sent, viewer.session.csrfToken)) throw forbidden("missing or wrong CSRF token");
  checkOrigin(c);
}

/** Refuses a request whose Origin is another site's. */
export function checkOrigin(c: Ctx): void {
  const origin = c.req.header("origin");
  if (origin === undefined) return;
  const host = c.req.header("host");
  let originHost: string | undefined;
  try {
    originHost = new URL(origin).host;
  } catch {
    originHost = undefined;
  }
  if (!host || originHost !== host) throw forbidden("cross-origin request refused");
}

function parseBasic(header: string): { username: string; password: string } | undefined {
  const match = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1] as string, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Checks a password or access token, with the token service's failed-login limits per user and per address. */
export async function login(c: Ctx, v: ViewerDeps, username: string, password: string): Promise<Subject | undefined> {
  const users = v.auth?.runtime.users;
  if (!v.auth || !users) return undefined;
  const { throttle: limits, trustProxy } = v.auth.config;
  const keys: [string, number][] = [
    [`user:${username.toLowerCase().slice(0, 128)}`, limits.perUser],
    [`addr:${clientAddress(c, trustProxy)}`, limits.perAddress],
  ];
  const wait = Math.max(...keys.map(([key, limit]) => v.throttle.retryAfter(key, limit)));
  if (wait > 0) {
    v.deps.metrics.loginsThrottled.inc();
    throw new RegistryError(429, "TOOMANYREQUESTS", undefined, "too many failed logins; try again later", { "Retry-After": String(wait) });
  }
  const subject = await checkCredentials(users, username, password);
  if (!subject) {
    for (const [key] of keys) v.throttle.fail(key);
    v.deps.logger.info({ user: username.slice(0, 64), client: clientAddress(c, trustProxy) }, "web login failed");
    v.deps.metrics.authFailures.inc({ reason: "password" });
    return undefined;
  }
  v.throttle.clear(keys[0]?.[0] as string);
  return subject;
}

export const unauthorized = (message: string) => new RegistryError(401, "UNAUTHORIZED", undefined, message);
export const forbidden = (message: string) => new RegistryError(403, "DENIED", undefined, message);
