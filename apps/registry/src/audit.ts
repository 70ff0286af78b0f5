import { userInfo } from "node:os";
import type Database from "better-sqlite3";
import { clientAddress } from "./auth/request.js";
import type { Ctx, RegistryDeps } from "./http.js";
import { openDatabase } from "./metadata/sqlite.js";

/**
 * The audit trail: who did what, when and from where, in the registry database (table audit_log).
 * Actions: login, login-failed, token, push, delete (the registry); user …, grant, revoke, … (admin
 * commands, from "local"); gc-delete (the collector). Kept for --audit-retention.
 */
export interface AuditEntry {
  at: number;
  /** User name; "" for anonymous, the OS user for admin commands, "gc" for the collector. */
  actor: string;
  /** Client address; "local" for commands run on the machine. */
  address: string;
  action: string;
  /** What it was done to: a repository reference, a user, a pattern. */
  target: string;
  detail?: Record<string, unknown>;
}

/** Records what a request did, by the token's subject (or `actor`) from the client's address. */
export function auditRequest(
  c: Ctx,
  deps: Pick<RegistryDeps, "audit" | "auth" | "options">,
  action: string,
  target: string,
  detail?: Record<string, unknown>,
  actor?: string,
): void {
  deps.audit?.record({
    actor: actor ?? deps.auth?.subject(c) ?? "",
    address: clientAddress(c, deps.options.trustProxy),
    action,
    target,
    ...(detail ? { detail } : {}),
  });
}

/** Who runs an admin command on this machine, for its audit entries. */
export function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "unknown"}`;
  }
}

export interface AuditQuery {
  since?: number;
  user?: string;
  action?: string;
  limit: number;
}

export class AuditLog {
  readonly #db: Database.Database;
  readonly #insert;
  readonly #prune;

  constructor(databasePath: string) {
    this.#db = openDatabase(databasePath);
    this.#insert = this.#db.prepare("INSERT INTO audit_log (at, actor, address, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)");
    this.#prune = this.#db.prepare("DELETE FROM audit_log WHERE at < ?");
  }

  record(entry: Omit<AuditEntry, "at">): void {
    const detail = entry.detail ? JSON.stringify(entry.detail) : null;
    this.#insert.run(Date.now(), entry.actor.slice(0, 128), entry.address.slice(0, 128), entry.action, entry.target.slice(0, 512), detail);
  }

  /** Newest first. */
  query(query: AuditQuery): AuditEntry[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.since !== undefined) {
      where.push("at >= ?");
      params.push(query.since);
    }
    if (query.user !== undefined) {
      where.push("actor = ?");
      params.push(query.user);
    }
    if (query.action !== undefined) {
      where.push("action = ?");
      params.push(query.action);
    }
    const sql = `SELECT at, actor, address, action, target, detail FROM audit_log ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY at DESC, id DESC LIMIT ?`;
    const rows = this.#db.prepare(sql).all(...params, query.limit) as (Omit<AuditEntry, "detail"> & { detail: string | null })[];
    return rows.map(({ detail, ...row }) => (detail ? { ...row, detail: JSON.parse(detail) as Record<string, unknown> } : row));
  }

  /** Removes entries older than `before` (ms since epoch); returns how many. */
  prune(before: number): number {
    return this.#prune.run(before).changes;
  }

  close(): void {
    this.#db.close();
  }
}
