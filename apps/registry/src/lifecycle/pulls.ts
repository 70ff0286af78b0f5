import type { Digest } from "@minato/oci";
import type { Logger } from "../logger.js";
import type { MetadataStore, Pull } from "../metadata/store.js";

/**
 * Last-pulled time per manifest, for retention's keepPulledWithin. Pulls are gathered in memory and
 * written in one transaction per interval, not one write per pull; a crash loses at most one
 * interval of pull times, which only makes retention keep less.
 */
export class PullTracker {
  #pending = new Map<string, Pull>();
  #timer: NodeJS.Timeout;

  constructor(
    readonly metadata: MetadataStore,
    readonly logger: Logger,
    intervalMs = 30_000,
  ) {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  record(repository: string, digest: Digest): void {
    this.#pending.set(`${repository}@${digest}`, { repository, digest, at: Date.now() });
  }

  async flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const pulls = [...this.#pending.values()];
    this.#pending = new Map();
    try {
      await this.metadata.recordPulls(pulls);
    } catch (error) {
      this.logger.warn({ err: error, count: pulls.length }, "could not record pull times");
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
