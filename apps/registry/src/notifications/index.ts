import type { Ctx, RegistryDeps } from "../http.js";
import type { Logger } from "../logger.js";
import type { MetadataStore } from "../metadata/store.js";
import type { RegistryMetrics } from "../metrics.js";
import type { Endpoint, EventAction } from "./config.js";
import { NotificationDispatcher } from "./dispatcher.js";
import { EventFactory, type EventSourceOptions, type EventTarget, type OutboxEvent } from "./events.js";

export { loadNotifications, parseNotifications } from "./config.js";
export { BLOB_MEDIA_TYPE, ENVELOPE_MEDIA_TYPE, type OutboxEvent } from "./events.js";

/** The event for a write, as the list the metadata store takes (empty when notifications are off). */
export function eventsFor(
  c: Ctx,
  deps: Pick<RegistryDeps, "auth" | "notifications">,
  action: EventAction,
  kind: "blobs" | "manifests",
  target: EventTarget,
  actor?: string,
): OutboxEvent[] {
  return deps.notifications ? [deps.notifications.event(c, deps, action, kind, target, actor)] : [];
}

/** Pulls change nothing in the database: their events are written in batches, this often. */
const PULL_FLUSH_MS = 200;

/**
 * Registry notifications: routes build events and hand them to the metadata store with the write
 * they report (same transaction); pulls are buffered briefly and written in batches; the dispatcher
 * delivers from the database.
 */
export class Notifications {
  readonly #factory: EventFactory;
  readonly #dispatcher: NotificationDispatcher;
  #pulls: OutboxEvent[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    databasePath: string,
    endpoints: readonly Endpoint[],
    source: EventSourceOptions,
    private readonly metadata: MetadataStore,
    private readonly logger: Logger,
    metrics?: RegistryMetrics,
  ) {
    this.#factory = new EventFactory(source);
    this.#dispatcher = new NotificationDispatcher(databasePath, endpoints, logger, metrics);
  }

  start(): void {
    this.#dispatcher.start();
  }

  event(
    c: Ctx,
    deps: Pick<RegistryDeps, "auth">,
    action: EventAction,
    kind: "blobs" | "manifests",
    target: EventTarget,
    actor?: string,
  ): OutboxEvent {
    return this.#factory.event(c, deps, action, kind, target, actor);
  }

  /** Events were committed with a write: deliver them soon. */
  written(): void {
    this.#dispatcher.wake();
  }

  pulled(event: OutboxEvent): void {
    this.#pulls.push(event);
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      void this.#flush();
    }, PULL_FLUSH_MS);
  }

  #flush(): Promise<void> {
    const batch = this.#pulls;
    this.#pulls = [];
    this.#flushing = this.#flushing.then(async () => {
      if (batch.length === 0) return;
      await this.metadata.recordEvents(batch).then(
        () => this.#dispatcher.wake(),
        (error: unknown) => this.logger.error({ err: error, events: batch.length }, "recording pull events failed"),
      );
    });
    return this.#flushing;
  }

  /** Writes buffered pulls, then stops delivering (the rest goes out after the next start). */
  async close(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.#flush();
    await this.#dispatcher.stop();
  }
}
