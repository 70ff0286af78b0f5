import type Database from "better-sqlite3";
import { openDatabase } from "../metadata/sqlite.js";
import { isValidPattern, type Permissions, type Rule } from "./acl.js";
import { hashSecret, randomId, randomSecret } from "./passwords.js";
import type { Action } from "./scope.js";

/**
 * Users, groups, grants, public repositories, personal access tokens and refresh tokens, in the
 * registry's SQLite database (tables from metadata migration 2). Secrets are stored only as hashes.
 */
export interface User {
  id: number;
  name: string;
  passwordHash: string | null;
  admin: boolean;
  robot: boolean;
  createdAt: number;
}

export interface UserSummary extends Omit<User, "passwordHash"> {
  groups: string[];
}

export interface Grant {
  user?: string;
  group?: string;
  pattern: string;
  actions: Action[];
}

export type GrantSubject = { user: string } | { group: string };

export interface AccessToken {
  id: string;
  user: string;
  userId: number;
  name: string;
  secretHash: string;
  scopes: Rule[];
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface RefreshToken {
  id: string;
  userId: number;
  accessTokenId: string | null;
  service: string;
  clientId: string | null;
  secretHash: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface TokenListing {
  kind: "access" | "refresh";
  id: string;
  user: string;
  name: string;
  scopes: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** Personal access tokens and refresh tokens: a prefix, an id to find the row, a secret to check. */
export const ACCESS_TOKEN_PREFIX = "mnp_";
export const REFRESH_TOKEN_PREFIX = "mnr_";

export function splitToken(token: string, prefix: string): { id: string; secret: string } | undefined {
  if (!token.startsWith(prefix)) return undefined;
  const match = /^([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/.exec(token.slice(prefix.length));
  return match ? { id: match[1] as string, secret: match[2] as string } : undefined;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export class UserStoreError extends Error {}

function checkName(kind: string, name: string): void {
  if (!NAME.test(name)) throw new UserStoreError(`invalid ${kind} name ${JSON.stringify(name)} (lowercase letters, digits, . _ -)`);
}

type Row = Record<string, unknown>;

const toActions = (text: string): Action[] => (text === "" ? [] : (text.split(",") as Action[]));

export class UserStore {
  readonly #db: Database.Database;

  constructor(path: string) {
    this.#db = openDatabase(path);
  }

  close(): void {
    this.#db.close();
  }

  // ── users ──────────────────────────────────────────────────────────────────

  countUsers(): number {
    return this.#db.prepare("SELECT count(*) FROM users").pluck().get() as number;
  }

  addUser(name: string, options: { passwordHash: string | null; admin?: boolean; robot?: boolean }): User {
    checkName("user", name);
    if (this.getUser(name)) throw new UserStoreError(`user ${name} exists`);
    this.#db
      .prepare("INSERT INTO users (name, password_hash, admin, robot, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(name, options.passwordHash, options.admin ? 1 : 0, options.robot ? 1 : 0, Date.now());
    return this.getUser(name) as User;
  }

  getUser(name: string): User | undefined {
    const row = this.#db
      .prepare("SELECT id, name, password_hash AS passwordHash, admin, robot, created_at AS createdAt FROM users WHERE name = ?")
      .get(name) as Row | undefined;
    return row ? { ...(row as unknown as User), admin: row.admin === 1, robot: row.robot === 1 } : undefined;
  }

  #requireUser(name: string): User {
    const user = this.getUser(name);
    if (!user) throw new UserStoreError(`no user ${name}`);
    return user;
  }

  /** Sets a password and revokes the user's refresh tokens (a password change ends remembered logins). */
  setPassword(name: string, passwordHash: string | null): void {
    const user = this.#requireUser(name);
    this.#db.transaction(() => {
      this.#db.prepare("UPDATE users SET password_hash = ? WHERE id = ?").run(passwordHash, user.id);
      this.#db.prepare("UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL").run(Date.now(), user.id);
    })();
  }

  setAdmin(name: string, admin: boolean): void {
    const user = this.#requireUser(name);
    this.#db.prepare("UPDATE users SET admin = ? WHERE id = ?").run(admin ? 1 : 0, user.id);
  }

  /** Removes a user with its grants, memberships and tokens. */
  removeUser(name: string): void {
    const user = this.#requireUser(name);
    this.#db.prepare("DELETE FROM users WHERE id = ?").run(user.id);
  }

  listUsers(): UserSummary[] {
    const rows = this.#db
      .prepare(
        `SELECT u.id, u.name, u.admin, u.robot, u.created_at AS createdAt,
                (SELECT group_concat(g.name, ',') FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = u.id) AS groups
         FROM users u ORDER BY u.name`,
      )
      .all() as Row[];
    return rows.map((r) => ({
      id: r.id as number,
      name: r.name as string,
      admin: r.admin === 1,
      robot: r.robot === 1,
      createdAt: r.createdAt as number,
      groups: r.groups ? (r.groups as string).split(",").sort() : [],
    }));
  }

  // ── groups ─────────────────────────────────────────────────────────────────

  addGroup(name: string): void {
    checkName("group", name);
    const { changes } = this.#db
      .prepare("INSERT INTO groups (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
      .run(name, Date.now());
    if (changes === 0) throw new UserStoreError(`group ${name} exists`);
  }

  removeGroup(name: string): void {
    const { changes } = this.#db.prepare("DELETE FROM groups WHERE name = ?").run(name);
    if (changes === 0) throw new UserStoreError(`no group ${name}`);
  }

  #groupId(name: string): number {
    const id = this.#db.prepare("SELECT id FROM groups WHERE name = ?").pluck().get(name) as number | undefined;
    if (id === undefined) throw new UserStoreError(`no group ${name}`);
    return id;
  }

  addMember(group: string, user: string): void {
    const groupId = this.#groupId(group);
    const userId = this.#requireUser(user).id;
    this.#db.prepare("INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING").run(groupId, userId);
  }

  removeMember(group: string, user: string): void {
    const groupId = this.#groupId(group);
    const userId = this.#requireUser(user).id;
    this.#db.prepare("DELETE FROM group_members WHERE group_id = ? AND user_id = ?").run(groupId, userId);
  }

  listGroups(): { name: string; members: string[] }[] {
    const rows = this.#db
      .prepare(
        `SELECT g.name, (SELECT group_concat(u.name, ',') FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = g.id) AS members
         FROM groups g ORDER BY g.name`,
      )
      .all() as Row[];
    return rows.map((r) => ({ name: r.name as string, members: r.members ? (r.members as string).split(",").sort() : [] }));
  }

  // ── grants ─────────────────────────────────────────────────────────────────

  #subjectIds(subject: GrantSubject): [number | null, number | null] {
    return "user" in subject ? [this.#requireUser(subject.user).id, null] : [null, this.#groupId(subject.group)];
  }

  /** Adds actions on a pattern to what the subject already has there. */
  grant(subject: GrantSubject, pattern: string, actions: readonly Action[]): Action[] {
    if (!isValidPattern(pattern)) throw new UserStoreError(`invalid repository pattern ${JSON.stringify(pattern)}`);
    const [userId, groupId] = this.#subjectIds(subject);
    return this.#db.transaction(() => {
      const row = this.#db
        .prepare("SELECT id, actions FROM grants WHERE user_id IS ? AND group_id IS ? AND pattern = ?")
        .get(userId, groupId, pattern) as Row | undefined;
      const merged = ORDER.filter((a) => actions.includes(a) || toActions((row?.actions as string) ?? "").includes(a));
      if (row) this.#db.prepare("UPDATE grants SET actions = ? WHERE id = ?").run(merged.join(","), row.id);
      else
        this.#db
          .prepare("INSERT INTO grants (user_id, group_id, pattern, actions) VALUES (?, ?, ?, ?)")
          .run(userId, groupId, pattern, merged.join(","));
      return merged;
    })();
  }

  /** Takes actions (all of them when none are named) on a pattern away from the subject. */
  revoke(subject: GrantSubject, pattern: string, actions?: readonly Action[]): Action[] {
    const [userId, groupId] = this.#subjectIds(subject);
    return this.#db.transaction(() => {
      const row = this.#db
        .prepare("SELECT id, actions FROM grants WHERE user_id IS ? AND group_id IS ? AND pattern = ?")
        .get(userId, groupId, pattern) as Row | undefined;
      if (!row)
        throw new UserStoreError(`no grant on ${pattern} for ${"user" in subject ? `user ${subject.user}` : `group ${subject.group}`}`);
      const left = actions ? toActions(row.actions as string).filter((a) => !actions.includes(a)) : [];
      if (left.length === 0) this.#db.prepare("DELETE FROM grants WHERE id = ?").run(row.id);
      else this.#db.prepare("UPDATE grants SET actions = ? WHERE id = ?").run(left.join(","), row.id);
      return left;
    })();
  }

  listGrants(filter?: GrantSubject): Grant[] {
    const rows = this.#db
      .prepare(
        `SELECT u.name AS user, g.name AS "group", r.pattern, r.actions FROM grants r
         LEFT JOIN users u ON u.id = r.user_id LEFT JOIN groups g ON g.id = r.group_id
         ORDER BY coalesce(u.name, ''), coalesce(g.name, ''), r.pattern`,
      )
      .all() as Row[];
    return rows
      .map(
        (r): Grant => ({
          ...(r.user ? { user: r.user as string } : { group: r.group as string }),
          pattern: r.pattern as string,
          actions: toActions(r.actions as string),
        }),
      )
      .filter((g) => !filter || ("user" in filter ? g.user === filter.user : g.group === filter.group));
  }

  // ── public repositories ────────────────────────────────────────────────────

  addPublic(pattern: string): void {
    if (!isValidPattern(pattern)) throw new UserStoreError(`invalid repository pattern ${JSON.stringify(pattern)}`);
    this.#db.prepare("INSERT INTO public_repositories (pattern, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING").run(pattern, Date.now());
  }

  removePublic(pattern: string): void {
    const { changes } = this.#db.prepare("DELETE FROM public_repositories WHERE pattern = ?").run(pattern);
    if (changes === 0) throw new UserStoreError(`${pattern} is not public`);
  }

  listPublic(): string[] {
    return this.#db.prepare("SELECT pattern FROM public_repositories ORDER BY pattern").pluck().all() as string[];
  }

  // ── permissions ────────────────────────────────────────────────────────────

  /** What a user (or, with no user, an anonymous client) may do; `accessTokenId` cuts it to that token's scope. */
  permissions(user: string | undefined, accessTokenId?: string): Permissions {
    const publicPatterns = this.listPublic();
    const found = user === undefined ? undefined : this.getUser(user);
    if (!found) return { admin: false, rules: [], publicPatterns };
    const rows = this.#db
      .prepare(
        `SELECT pattern, actions FROM grants WHERE user_id = ?
         UNION ALL
         SELECT r.pattern, r.actions FROM grants r JOIN group_members m ON m.group_id = r.group_id WHERE m.user_id = ?`,
      )
      .all(found.id, found.id) as Row[];
    const permissions: Permissions = {
      admin: found.admin,
      rules: rows.map((r) => ({ pattern: r.pattern as string, actions: toActions(r.actions as string) })),
      publicPatterns,
    };
    if (accessTokenId !== undefined) {
      const token = this.getAccessToken(accessTokenId);
      permissions.restrict = token && token.userId === found.id && isLive(token) ? token.scopes : [];
    }
    return permissions;
  }

  // ── personal access tokens ────────────────────────────────────────────────

  /** A new token for `user`, limited to `scopes`; the secret is returned once and only its hash is kept. */
  createAccessToken(user: string, name: string, scopes: Rule[], expiresAt: number | null = null): { id: string; token: string } {
    const owner = this.#requireUser(user);
    if (scopes.length === 0) throw new UserStoreError("an access token needs at least one scope, e.g. team-a/*:pull");
    const id = randomId();
    const secret = randomSecret();
    this.#db
      .prepare("INSERT INTO access_tokens (id, user_id, name, secret_hash, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(id, owner.id, name, hashSecret(secret), JSON.stringify(scopes), Date.now(), expiresAt);
    return { id, token: `${ACCESS_TOKEN_PREFIX}${id}_${secret}` };
  }

  getAccessToken(id: string): AccessToken | undefined {
    const row = this.#db
      .prepare(
        `SELECT t.id, u.name AS user, t.user_id AS userId, t.name, t.secret_hash AS secretHash, t.scopes, t.created_at AS createdAt,
                t.expires_at AS expiresAt, t.last_used_at AS lastUsedAt, t.revoked_at AS revokedAt
         FROM access_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`,
      )
      .get(id) as Row | undefined;
    return row ? ({ ...row, scopes: JSON.parse(row.scopes as string) } as AccessToken) : undefined;
  }

  // ── refresh tokens ─────────────────────────────────────────────────────────

  createRefreshToken(userId: number, accessTokenId: string | null, service: string, clientId: string | null): string {
    const id = randomId();
    const secret = randomSecret();
    this.#db
      .prepare(
        "INSERT INTO refresh_tokens (id, user_id, access_token_id, service, client_id, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(id, userId, accessTokenId, service, clientId, hashSecret(secret), Date.now());
    return `${REFRESH_TOKEN_PREFIX}${id}_${secret}`;
  }

  getRefreshToken(id: string): (RefreshToken & { user: string }) | undefined {
    return this.#db
      .prepare(
        `SELECT r.id, u.name AS user, r.user_id AS userId, r.access_token_id AS accessTokenId, r.service, r.client_id AS clientId,
                r.secret_hash AS secretHash, r.created_at AS createdAt, r.last_used_at AS lastUsedAt, r.revoked_at AS revokedAt
         FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.id = ?`,
      )
      .get(id) as (RefreshToken & { user: string }) | undefined;
  }

  touchToken(kind: "access" | "refresh", id: string): void {
    const table = kind === "access" ? "access_tokens" : "refresh_tokens";
    this.#db.prepare(`UPDATE ${table} SET last_used_at = ? WHERE id = ?`).run(Date.now(), id);
  }

  /** Revokes a personal access token or a refresh token by id (refresh tokens obtained with it go too). */
  revokeToken(id: string): "access" | "refresh" {
    const now = Date.now();
    return this.#db.transaction((): "access" | "refresh" => {
      const access = this.#db.prepare("UPDATE access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").run(now, id);
      if (access.changes > 0) {
        this.#db.prepare("UPDATE refresh_tokens SET revoked_at = ? WHERE access_token_id = ? AND revoked_at IS NULL").run(now, id);
        return "access";
      }
      const refresh = this.#db.prepare("UPDATE refresh_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").run(now, id);
      if (refresh.changes > 0) return "refresh";
      throw new UserStoreError(`no live token ${id}`);
    })();
  }

  listTokens(user?: string): TokenListing[] {
    const rows = this.#db
      .prepare(
        `SELECT 'access' AS kind, t.id, u.name AS user, t.name, t.scopes, t.created_at AS createdAt, t.expires_at AS expiresAt,
                t.last_used_at AS lastUsedAt, t.revoked_at AS revokedAt
         FROM access_tokens t JOIN users u ON u.id = t.user_id
         UNION ALL
         SELECT 'refresh', r.id, u.name, coalesce(r.client_id, ''), coalesce(r.access_token_id, ''), r.created_at, NULL,
                r.last_used_at, r.revoked_at
         FROM refresh_tokens r JOIN users u ON u.id = r.user_id
         ORDER BY 3, 6`,
      )
      .all() as Row[];
    return rows
      .filter((r) => user === undefined || r.user === user)
      .map((r) => ({
        ...(r as unknown as TokenListing),
        scopes:
          r.kind === "access"
            ? (JSON.parse(r.scopes as string) as Rule[]).map((s) => `${s.pattern}:${s.actions.join(",")}`).join(" ")
            : r.scopes
              ? `via ${r.scopes}`
              : "",
      }));
  }
}

const ORDER: readonly Action[] = ["pull", "push", "delete"];

export function isLive(token: { revokedAt: number | null; expiresAt?: number | null }, now = Date.now()): boolean {
  return token.revokedAt === null && (token.expiresAt === null || token.expiresAt === undefined || token.expiresAt > now);
}
