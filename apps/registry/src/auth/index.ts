import { join } from "node:path";
import type { Hono } from "hono";
import type { AuditLog } from "../audit.js";
import type { Ctx, Env } from "../http.js";
import type { Logger } from "../logger.js";
import type { RegistryMetrics } from "../metrics.js";
import type { AuthConfig } from "./config.js";
import { KeyRing, loadPublicKeys } from "./keys.js";
import { type Authorizer, createAuthorizer } from "./middleware.js";
import { generatePassword, hashPassword } from "./passwords.js";
import { requestOrigin } from "./request.js";
import { LoginThrottle } from "./throttle.js";
import { ACCESS_TOKEN_CLAIM, mountTokenService } from "./token-service.js";
import { UserStore } from "./users.js";
import { localVerifier, remoteVerifier, type TokenVerifier } from "./verify.js";

export type { AuthConfig } from "./config.js";
export { defaultAuthConfig } from "./config.js";
export type { Authorizer } from "./middleware.js";

export interface AuthRuntime {
  authorizer: Authorizer;
  /** Built-in issuer only. */
  users?: UserStore;
  keys?: KeyRing;
  /** Adds the token service and JWKS routes (built-in issuer only). */
  mount(app: Hono<Env>): void;
  /** For the startup log line: no secrets. */
  summary: Record<string, unknown>;
  close(): void;
}

export const keysDir = (dataDir: string): string => join(dataDir, "auth", "keys");

export interface AuthContext {
  dataDir: string;
  databasePath: string;
  tls: boolean;
  logger: Logger;
  metrics?: RegistryMetrics;
  audit?: AuditLog;
  /** Where the generated first admin password is shown, once (the CLI's stdout by default). */
  announce?: (line: string) => void;
}

export async function startAuth(config: AuthConfig, context: AuthContext): Promise<AuthRuntime> {
  const { logger } = context;
  const originOptions = { trustProxy: config.trustProxy, tls: context.tls, ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}) };
  const builtInRealm = (c: Ctx) => `${requestOrigin(c, originOptions)}${config.tokenPath}`;

  if (config.external) {
    const { external } = config;
    const options = { issuer: config.issuer, audience: config.service };
    let verifier: TokenVerifier;
    if (external.jwksUrl) verifier = remoteVerifier({ ...options, jwksUrl: external.jwksUrl });
    else {
      const trusted = await loadPublicKeys(external.keyFiles ?? []);
      verifier = localVerifier({ ...options, keys: () => trusted });
    }
    return {
      authorizer: createAuthorizer({
        verifier,
        service: config.service,
        realm: () => external.realm,
        logger,
        ...(context.metrics ? { metrics: context.metrics } : {}),
      }),
      mount() {},
      summary: {
        auth: "token",
        issuer: config.issuer,
        service: config.service,
        realm: external.realm,
        keys: external.jwksUrl ?? external.keyFiles,
      },
      close() {},
    };
  }

  const keys = await KeyRing.open(keysDir(context.dataDir));
  const users = new UserStore(context.databasePath);
  try {
    await bootstrapAdmin(users, config, logger, context.announce ?? ((line) => process.stdout.write(`${line}\n`)));
  } catch (error) {
    users.close();
    throw error;
  }
  const verifier = localVerifier({ issuer: config.issuer, audience: config.service, keys: () => keys.trusted });
  const authorizer = createAuthorizer({
    verifier,
    service: config.service,
    realm: builtInRealm,
    logger,
    ...(context.metrics ? { metrics: context.metrics } : {}),
    permissions: (token) => {
      const pat = token.claims[ACCESS_TOKEN_CLAIM];
      return users.permissions(token.subject || undefined, typeof pat === "string" ? pat : undefined);
    },
  });
  const throttle = new LoginThrottle(config.throttle.windowMs);
  return {
    authorizer,
    users,
    keys,
    mount(app) {
      mountTokenService(app, {
        config,
        keys,
        users,
        throttle,
        logger,
        ...(context.metrics ? { metrics: context.metrics } : {}),
        ...(context.audit ? { audit: context.audit } : {}),
      });
    },
    summary: { auth: "token", issuer: config.issuer, service: config.service, tokenPath: config.tokenPath, signingKey: keys.signing.kid },
    close() {
      users.close();
    },
  };
}

/** With no user at all, creates the first admin: with the configured password, else a generated one shown once. */
async function bootstrapAdmin(users: UserStore, config: AuthConfig, logger: Logger, announce: (line: string) => void): Promise<void> {
  if (users.countUsers() > 0) return;
  const password = config.admin.password ?? generatePassword();
  users.addUser(config.admin.user, { passwordHash: await hashPassword(password), admin: true });
  logger.info({ user: config.admin.user, generated: config.admin.password === undefined }, "created the first admin user");
  if (config.admin.password === undefined) {
    announce(
      `minato-registry: created admin user "${config.admin.user}" with password ${password} — shown only now; change it with 'minato-registry user passwd ${config.admin.user}'`,
    );
  }
}
