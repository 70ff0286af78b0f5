import { isIP } from "node:net";

/** Token authentication settings (absent from RegistryConfig when the registry runs without auth). */
export interface AuthConfig {
  /** The registry's name in challenges and the audience (`aud`) tokens must carry. */
  service: string;
  /** The issuer (`iss`): the built-in token service's name, or the external issuer to trust. */
  issuer: string;
  /** Path of the built-in token service; its JWKS is at `<path>/jwks` and `/.well-known/jwks.json`. */
  tokenPath: string;
  tokenTtlSeconds: number;
  /** External base URL (behind a proxy): the realm becomes `<publicUrl><tokenPath>`. */
  publicUrl?: string;
  /** Honour X-Forwarded-Proto/-Host (realm) and X-Forwarded-For (login throttling) from a proxy. */
  trustProxy: boolean;
  /** External issuer mode: no built-in token service; tokens are verified with these keys. */
  external?: { realm: string; jwksUrl?: string; keyFiles?: string[] };
  /** The first admin, created when there is no user yet; a password is generated when none is given. */
  admin: { user: string; password?: string };
  /** Failed logins allowed per (user, client address) and per client address within the window. */
  throttle: { perUser: number; perAddress: number; windowMs: number };
}

export const DEFAULT_ISSUER = "minato-registry";

export function defaultAuthConfig(overrides: Partial<AuthConfig> = {}): AuthConfig {
  return {
    service: "minato-registry",
    issuer: DEFAULT_ISSUER,
    tokenPath: "/token",
    tokenTtlSeconds: 300,
    trustProxy: false,
    admin: { user: "admin" },
    throttle: { perUser: 10, perAddress: 50, windowMs: 15 * 60_000 },
    ...overrides,
  };
}

/** Loopback only: 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`. Anything else may be reachable. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

export class UnsafeExposureError extends Error {}

/** Unauthenticated serving is for loopback; elsewhere it takes an explicit, named opt-in. */
export function assertSafeExposure(host: string, auth: AuthConfig | undefined, allowAnonymous: boolean): void {
  if (auth || allowAnonymous || isLoopback(host)) return;
  throw new UnsafeExposureError(
    `refusing to serve without authentication on non-loopback address ${host}: use --auth token, or --insecure-allow-anonymous to accept anonymous push and pull`,
  );
}

/** The settings `resolveAuthConfig` reads (flags of config.ts SETTINGS). */
export type AuthSetting =
  | "auth"
  | "insecure-allow-anonymous"
  | "public-url"
  | "trust-proxy"
  | "auth-service"
  | "auth-issuer"
  | "auth-realm"
  | "auth-jwks-url"
  | "auth-keys"
  | "token-path"
  | "token-ttl"
  | "admin-user"
  | "admin-password"
  | "login-limit"
  | "login-limit-addr"
  | "login-window";

function flag(name: string, value: string): boolean {
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off|)$/i.test(value)) return false;
  throw new Error(`--${name} must be true or false, not ${JSON.stringify(value)}`);
}

function positiveInteger(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d{1,6}$/.test(value) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

function httpUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`--${name} must be an http(s) URL, not ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`--${name} must be an http(s) URL`);
  return value.replace(/\/+$/, "");
}

/**
 * Auth settings → AuthConfig, or undefined for `--auth none`. Unset, auth is `none` on a loopback
 * address (local development and tests keep an open registry) and `token` anywhere else.
 */
export function resolveAuthConfig(
  host: string,
  get: (setting: AuthSetting) => string,
  parseDuration: (value: string) => number,
): { auth?: AuthConfig; insecureAllowAnonymous: boolean } {
  const allowAnonymous = flag("insecure-allow-anonymous", get("insecure-allow-anonymous"));
  const mode = get("auth") || (isLoopback(host) ? "none" : "token");
  if (mode !== "none" && mode !== "token") throw new Error(`--auth must be none or token, not ${JSON.stringify(mode)}`);
  if (mode === "none") {
    assertSafeExposure(host, undefined, allowAnonymous);
    return { insecureAllowAnonymous: allowAnonymous };
  }

  const tokenPath = get("token-path");
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(tokenPath) || tokenPath === "/" || /^\/v2(\/|$)/.test(tokenPath) || tokenPath.endsWith("/")) {
    throw new Error(`--token-path must be a path like /token outside /v2/, not ${JSON.stringify(tokenPath)}`);
  }
  const ttl = parseDuration(get("token-ttl"));
  if (ttl < 60_000 || ttl > 86_400_000) throw new Error("--token-ttl must be between 60s and 24h (clients expect at least 60 seconds)");
  const windowMs = parseDuration(get("login-window"));
  if (windowMs < 1000) throw new Error("--login-window must be at least 1s");

  const jwksUrl = get("auth-jwks-url") ? httpUrl("auth-jwks-url", get("auth-jwks-url")) : "";
  const keyFiles = get("auth-keys")
    .split(",")
    .map((f) => f.trim())
    .filter(Boolean);
  const realm = get("auth-realm");
  const issuer = get("auth-issuer");
  let external: AuthConfig["external"];
  if (jwksUrl || keyFiles.length > 0 || realm) {
    if (jwksUrl && keyFiles.length > 0) throw new Error("--auth-jwks-url and --auth-keys are alternatives; give one");
    if (!jwksUrl && keyFiles.length === 0)
      throw new Error("--auth-realm names an external token service: also give --auth-jwks-url or --auth-keys");
    if (!realm) throw new Error("an external issuer needs --auth-realm, the URL of its token service");
    if (!issuer) throw new Error("an external issuer needs --auth-issuer, the iss its tokens carry");
    external = { realm: httpUrl("auth-realm", realm), ...(jwksUrl ? { jwksUrl } : { keyFiles }) };
  }
  const publicUrl = get("public-url") ? httpUrl("public-url", get("public-url")) : undefined;
  const adminPassword = get("admin-password");
  const service = get("auth-service");
  if (!service || /["\\\s]/.test(service)) throw new Error("--auth-service must be a non-empty name without quotes or spaces");

  return {
    insecureAllowAnonymous: allowAnonymous,
    auth: {
      service,
      issuer: issuer || DEFAULT_ISSUER,
      tokenPath,
      tokenTtlSeconds: Math.floor(ttl / 1000),
      ...(publicUrl ? { publicUrl } : {}),
      trustProxy: flag("trust-proxy", get("trust-proxy")),
      ...(external ? { external } : {}),
      admin: { user: get("admin-user"), ...(adminPassword ? { password: adminPassword } : {}) },
      throttle: {
        perUser: positiveInteger("login-limit", get("login-limit")),
        perAddress: positiveInteger("login-limit-addr", get("login-limit-addr")),
        windowMs,
      },
    },
  };
}
