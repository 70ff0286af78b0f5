import type Database from "better-sqlite3";
import { constantTimeEqual, hashSecret, randomId } from "../auth/passwords.js";
import { openDatabase } from "../metadata/sqlite.js";

/** A browser's login to the web UI. */
export interface BrowserSession {
  id: string;
  userId: number;
  user: string;
  /** Set when the user logged in with a personal access token: its scope and revocation apply. */
  accessTokenId: string | null;
  /** For a password login, a hash of the user's password hash then: a password change ends the session. */
  passwordStamp: string | null;
  /** Sent back in the X-CSRF-Token header of every request that changes something. */
  csrfToken: string;
  expiresAt: number;
}

/**
 * Browser sessions in the registry database, so any replica recognises them and a logout or an
 * expiry takes effect everywhere. The cookie carries `<id>.<secret>`; only the secret's hash is stored.
 */
/** What a password session remembers of the password: a hash of its hash, never the hash itself. */
export const passwordStamp = (passwordHash: string | null): string => hashSecret(`minato-session:${passwordHash ?? ""}`);

export class SessionStore {
  readonly #db: Database.Database;

  constructor(path: string) {
    this.#db = openDatabase(path);
  }

  create(
    userId: number,
    login: { accessTokenId: string | null; passwordStamp: string | null },
    ttlMs: number,
  ): { cookie: string; session: BrowserSession } {
    const id = randomId(16);
    const secret = randomId(32);
    const csrfToken = randomId(32);
    const now = Date.now();
    this.#db
      .prepare(
        `INSERT INTO browser_sessions (id, secret_hash, user_id, access_token_id, password_stamp, csrf_token, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, hashSecret(secret), userId, login.accessTokenId, login.passwordStamp, csrfToken, now, now + ttlMs);
    // Expired sessions are removed whenever someone logs in: the table cannot grow without bound.
    this.#db.prepare("DELETE FROM browser_sessions WHERE expires_at < ?").run(now);
    return { cookie: `${id}.${secret}`, session: this.find(`${id}.${secret}`) as BrowserSession };
  }

  /** The live session a cookie value names; undefined when unknown, forged or expired. */
  find(cookie: string): BrowserSession | undefined {
    const dot = cookie.indexOf(".");
    if (dot <= 0) return undefined;
    const row = this.#db
      .prepare(
        `SELECT s.id, s.secret_hash AS secretHash, s.user_id AS userId, u.name AS user, s.access_token_id AS accessTokenId,
           s.password_stamp AS passwordStamp, s.csrf_token AS csrfToken, s.expires_at AS expiresAt
         FROM browser_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`,
      )
      .get(cookie.slice(0, dot)) as (BrowserSession & { secretHash: string }) | undefined;
    const matches = constantTimeEqual(hashSecret(cookie.slice(dot + 1)), row?.secretHash ?? "");
    if (!row || !matches || row.expiresAt <= Date.now()) return undefined;
    const { secretHash: _, ...session } = row;
    return session;
  }

  delete(id: string): void {
    this.#db.prepare("DELETE FROM browser_sessions WHERE id = ?").run(id);
  }

  close(): void {
    this.#db.close();
  }
}
