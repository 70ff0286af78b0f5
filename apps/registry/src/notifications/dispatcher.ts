import { createHmac, randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import type { Logger } from "../logger.js";
import { openDatabase } from "../metadata/sqlite.js";
import type { RegistryMetrics } from "../metrics.js";
import type { Endpoint } from "./config.js";
import { ENVELOPE_MEDIA_TYPE } from "./events.js";

/** Events per envelope; how often an idle endpoint looks for new events. */
const BATCH = 100;
const IDLE_POLL_MS = 250;
const SIGNATURE_HEADER = "X-Minato-Signature";
const LEASE_MARGIN_MS = 5000;

interface Row {
  id: number;
  action: string;
  mediaType: string;
  body: string;
}

/** The HMAC a receiver recomputes over the exact body bytes with the endpoint's secret. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * Delivers the outbox to every endpoint, at least once and in order, each from its own cursor: a
 * failing or slow endpoint backs off alone while the others (and requests) go on. An endpoint is
 * claimed with a lease in the database, so of several replicas sharing it one sends at a time; the
 * cursor moves only after a 2xx answer, so a crash or restart resends, never skips.
 */
export class NotificationDispatcher {
  readonly #db: Database.Database;
  readonly #owner = randomUUID();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #aborts = new Set<AbortController>();
  #stopped = false;
  readonly #q;

  constructor(
    databasePath: string,
    private readonly endpoints: readonly Endpoint[],
    private readonly logger: Logger,
    private readonly metrics?: RegistryMetrics,
  ) {
    const db = openDatabase(databasePath);
    this.#db = db;
    this.#q = {
      // A new endpoint starts after what is already queued: it gets events from its creation on.
      addCursor: db.prepare(
        "INSERT INTO notification_cursors (endpoint, position) VALUES (?, (SELECT ifnull(max(id), 0) FROM notification_events)) ON CONFLICT DO NOTHING",
      ),
      claim: db.prepare(
        `UPDATE notification_cursors SET owner = ?, lease_until = ?
         WHERE endpoint = ? AND (owner IS NULL OR owner = ? OR lease_until < ?) AND retry_at <= ? RETURNING position, failures`,
      ),
      batch: db.prepare("SELECT id, action, media_type AS mediaType, body FROM notification_events WHERE id > ? ORDER BY id LIMIT ?"),
      advance: db.prepare(
        "UPDATE notification_cursors SET position = ?, failures = 0, retry_at = 0 WHERE endpoint = ? AND owner = ? AND position < ?",
      ),
      fail: db.prepare("UPDATE notification_cursors SET failures = failures + 1, retry_at = ? WHERE endpoint = ? AND owner = ?"),
      release: db.prepare("UPDATE notification_cursors SET owner = NULL, lease_until = 0 WHERE owner = ?"),
      pending: db
        .prepare("SELECT count(*) FROM notification_events WHERE id > (SELECT position FROM notification_cursors WHERE endpoint = ?)")
        .pluck(),
      forgetOthers: db.prepare("DELETE FROM notification_cursors WHERE endpoint NOT IN (SELECT value FROM json_each(?))"),
      prune: db.prepare("DELETE FROM notification_events WHERE id <= (SELECT ifnull(min(position), 0) FROM notification_cursors)"),
    };
    // Cursors of endpoints no longer configured would keep their events forever.
    this.#q.forgetOthers.run(JSON.stringify(endpoints.map((e) => e.name)));
    for (const endpoint of endpoints) this.#q.addCursor.run(endpoint.name);
    if (endpoints.length === 0) this.#q.prune.run();
  }

  start(): void {
    for (const endpoint of this.endpoints) this.#schedule(endpoint, 0);
  }

  /** Events were just written: endpoints waiting idle look now rather than at their next poll. */
  wake(): void {
    for (const endpoint of this.endpoints) if (!this.#running.has(endpoint.name)) this.#schedule(endpoint, 0);
  }

  #schedule(endpoint: Endpoint, delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timers.get(endpoint.name));
    const timer = setTimeout(() => {
      this.#timers.delete(endpoint.name);
      const run = this.#deliver(endpoint)
        .catch((error: unknown) => {
          this.logger.error({ err: error, endpoint: endpoint.name }, "notification delivery failed");
          return IDLE_POLL_MS;
        })
        .then((next) => {
          this.#running.delete(endpoint.name);
          this.#schedule(endpoint, next);
        });
      this.#running.set(endpoint.name, run);
    }, delayMs);
    timer.unref();
    this.#timers.set(endpoint.name, timer);
  }

  /** One round for one endpoint; returns the delay before the next. */
  async #deliver(endpoint: Endpoint): Promise<number> {
    const now = Date.now();
    // Renewed every round; after a crash another process (or this one restarted) takes over once it lapses.
    const leaseMs = endpoint.timeoutMs + LEASE_MARGIN_MS;
    const claimed = this.#q.claim.get(this.#owner, now + leaseMs, endpoint.name, this.#owner, now, now) as
      | { position: number; failures: number }
      | undefined;
    if (!claimed) return IDLE_POLL_MS;
    const rows = this.#q.batch.all(claimed.position, BATCH) as Row[];
    this.metrics?.notificationsPending.set({ endpoint: endpoint.name }, this.#q.pending.get(endpoint.name) as number);
    if (rows.length === 0) return IDLE_POLL_MS;
    const last = (rows.at(-1) as Row).id;
    const wanted = rows.filter((row) => matches(endpoint, row));
    if (wanted.length > 0) {
      const outcome = await this.#send(endpoint, wanted);
      if (this.#stopped) return 0; // abandoned: sent again after the restart
      if (outcome !== "delivered") {
        const delay = Math.min(endpoint.backoffMs * 2 ** Math.min(claimed.failures, 30), endpoint.maxBackoffMs);
        this.#q.fail.run(Date.now() + delay, endpoint.name, this.#owner);
        this.metrics?.notifications.inc({ endpoint: endpoint.name, outcome }, wanted.length);
        this.logger.warn({ endpoint: endpoint.name, outcome, retryInMs: delay, events: wanted.length }, "notification delivery failed");
        return delay;
      }
      this.metrics?.notifications.inc({ endpoint: endpoint.name, outcome }, wanted.length);
    }
    this.#q.advance.run(last, endpoint.name, this.#owner, last);
    this.#q.prune.run();
    return rows.length === BATCH ? 0 : IDLE_POLL_MS;
  }

  async #send(endpoint: Endpoint, rows: Row[]): Promise<"delivered" | "failed" | "timeout"> {
    // The stored event texts are spliced as they are: what was recorded is what is signed and sent.
    const body = `{"events":[${rows.map((row) => row.body).join(",")}]}`;
    const headers: Record<string, string> = { ...endpoint.headers, "Content-Type": ENVELOPE_MEDIA_TYPE };
    if (endpoint.secret) headers[SIGNATURE_HEADER] = signature(endpoint.secret, body);
    const abort = new AbortController();
    this.#aborts.add(abort);
    const timer = setTimeout(() => abort.abort(new Error("timeout")), endpoint.timeoutMs);
    try {
      const res = await fetch(endpoint.url, { method: "POST", headers, body, signal: abort.signal, redirect: "manual" });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? "delivered" : "failed";
    } catch {
      return abort.signal.aborted && !this.#stopped ? "timeout" : "failed";
    } finally {
      clearTimeout(timer);
      this.#aborts.delete(abort);
    }
  }

  /** Stops scheduling, abandons sends in flight (they are resent later), and frees the claims. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    for (const abort of this.#aborts) abort.abort(new Error("stopping"));
    await Promise.all(this.#running.values());
    this.#q.release.run(this.#owner);
    this.#db.close();
  }
}

function matches(endpoint: Endpoint, row: Row): boolean {
  if (endpoint.actions && !endpoint.actions.includes(row.action as never)) return false;
  if (endpoint.mediaTypes && !endpoint.mediaTypes.includes(row.mediaType)) return false;
  return true;
}
