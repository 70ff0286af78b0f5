import { RegistryError } from "../errors.js";
import type { Ctx } from "../http.js";
import type { Logger } from "../logger.js";
import type { RegistryMetrics } from "../metrics.js";
import { type Permissions, permittedActions } from "./acl.js";
import { type Action, accessAllows, accessMentions, formatScope, type ResourceScope } from "./scope.js";
import { InvalidTokenError, type TokenVerifier, type VerifiedToken } from "./verify.js";

/** What app.ts asks of authentication; `deps.auth` is undefined when the registry runs without it. */
export interface Authorizer {
  /**
   * Lets the request through when it carries a valid token covering `scope` (or, without a scope, any
   * valid token: `GET /v2/`). Otherwise 401 with a Bearer challenge for the scope it needs, or 403
   * DENIED when the token was issued for this resource but without the action.
   */
  require(c: Ctx, scope?: ResourceScope): Promise<void>;
  /** Whether the request's verified token allows `action` on repository `name` (a mount's `from`). */
  permits(c: Ctx, name: string, action: Action): boolean;
  /** Repositories the request's verified token grants pull on (an automatic mount looks only there). */
  pullableRepositories(c: Ctx): string[];
  /** The verified token's subject (user name) of this request; undefined when anonymous or unverified. */
  subject(c: Ctx): string | undefined;
  /** Which repositories the caller may see in listings: those it may pull. */
  visibleRepositories(c: Ctx): (name: string) => boolean;
}

export interface AuthorizerOptions {
  verifier: TokenVerifier;
  service: string;
  /** The token service's URL for this request. */
  realm: (c: Ctx) => string;
  logger: Logger;
  /** Built-in issuer: the caller's current permissions (catalog filtering). Undefined for an external issuer. */
  permissions?: (token: VerifiedToken) => Permissions;
  metrics?: RegistryMetrics;
}

const quote = (value: string): string => `"${value.replace(/["\\]/g, "")}"`;

/**
 * What a refused client should do next, in substance what Docker says: the repository may not exist
 * (a registry does not tell an unauthorised caller which), or it needs a login or other rights. Starts
 * with the spec's DENIED message, which clients match on.
 */
function deniedMessage(scope: ResourceScope, missing: string[], subject: string): string {
  const what = scope.type === "repository" ? `repository ${scope.name}` : `${scope.type} ${scope.name}`;
  const actions = missing.join(", ");
  let hint: string;
  if (missing.includes("pull")) {
    hint = `${what} does not exist or ${subject === "" ? "may require 'minato login'" : `user ${subject} may not pull it`}`;
  } else {
    hint = subject === "" ? `${actions} on ${what} requires 'minato login'` : `user ${subject} may not ${actions} on ${what}`;
  }
  return `requested access to the resource is denied: ${hint}${subject === "" ? "" : " (ask an admin for a grant)"}`;
}

export function createAuthorizer(options: AuthorizerOptions): Authorizer {
  const verified = new WeakMap<Request, VerifiedToken>();

  const challenge = (c: Ctx, scope: ResourceScope | undefined, error?: string): string => {
    const params = [`realm=${quote(options.realm(c))}`, `service=${quote(options.service)}`];
    if (scope) params.push(`scope=${quote(formatScope(scope))}`);
    if (error) params.push(`error=${quote(error)}`);
    return `Bearer ${params.join(",")}`;
  };
  const detail = (scope: ResourceScope | undefined) =>
    scope?.actions.map((action) => ({ Type: scope.type, Name: scope.name, Action: action }));
  const unauthorized = (c: Ctx, scope: ResourceScope | undefined, error?: string, message?: string) =>
    new RegistryError(401, "UNAUTHORIZED", detail(scope), message, { "WWW-Authenticate": challenge(c, scope, error) });

  return {
    async require(c, scope) {
      const header = c.req.header("authorization");
      const match = /^bearer\s+(\S+)\s*$/i.exec(header ?? "");
      if (!match) throw unauthorized(c, scope);
      let token: VerifiedToken;
      try {
        token = await options.verifier.verify(match[1] as string);
      } catch (error) {
        if (!(error instanceof InvalidTokenError)) throw error;
        options.logger.debug({ reason: error.message, path: c.req.path }, "rejected bearer token");
        options.metrics?.authFailures.inc({ reason: "invalid_token" });
        throw unauthorized(c, scope, "invalid_token", "authentication required: the token is invalid");
      }
      verified.set(c.req.raw, token);
      if (!scope) return;
      const missing = scope.actions.filter((action) => !accessAllows(token.access, scope.type, scope.name, action));
      if (missing.length === 0) return;
      // The issuer was asked about this resource and left the action out: that is its answer.
      if (accessMentions(token.access, scope.type, scope.name)) {
        throw new RegistryError(403, "DENIED", detail({ ...scope, actions: missing }), deniedMessage(scope, missing, token.subject), {
          "WWW-Authenticate": challenge(c, scope, "insufficient_scope"),
        });
      }
      // A valid token for something else: the client should come back with one for this scope.
      throw unauthorized(c, scope, "insufficient_scope");
    },

    permits(c, name, action) {
      const token = verified.get(c.req.raw);
      return token !== undefined && accessAllows(token.access, "repository", name, action);
    },

    subject(c) {
      return verified.get(c.req.raw)?.subject || undefined;
    },

    pullableRepositories(c) {
      const token = verified.get(c.req.raw);
      if (!token) return [];
      const names = token.access.filter((e) => e.type === "repository" && (e.actions.includes("pull") || e.actions.includes("*")));
      return [...new Set(names.map((e) => e.name))];
    },

    visibleRepositories(c) {
      const token = verified.get(c.req.raw);
      if (!token) return () => false;
      if (!options.permissions) return () => true;
      const permissions = options.permissions(token);
      return (name) => permittedActions(permissions, name).has("pull");
    },
  };
}
