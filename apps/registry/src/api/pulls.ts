import type { Digest } from "@minato/oci";
import type { MiddlewareHandler } from "hono";
import type { Env } from "../http.js";
import type { Logger } from "../logger.js";
import type { MetadataStore, PullRecord } from "../metadata/store.js";

const MANIFEST_PATH = /^\/v2\/(.+)\/manifests\/([^/]+)$/;

/**
 * Last-pull times for the browsing API. A pull must not cost a database write, so pulls are
 * gathered in memory (one entry per repository, manifest and tag however often it is pulled) and
 * written in one transaction every `intervalMs`, or sooner when many are pending.
 */
export class PullRecorder {
  readonly #pending = new Map<string, PullRecord>();
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly metadata: MetadataStore,
    private readonly logger: Logger,
    intervalMs = 5_000,
    private readonly maxPending = 1_000,
  ) {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  record(pull: PullRecord): void {
    this.#pending.set(`${pull.repository}\0${pull.digest}\0${pull.tag ?? ""}`, pull);
    if (this.#pending.size >= this.maxPending) void this.flush();
  }

  /** Writes what is pending; resolves when it is stored (a failure is logged and the batch dropped: these are hints). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#pending.size === 0) return;
      const batch = [...this.#pending.values()];
      this.#pending.clear();
      await this.metadata.recordPulls(batch).catch((error: unknown) => {
        this.logger.warn({ err: error, pulls: batch.length }, "could not record pull times");
      });
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  /** Records every manifest a GET served (HEAD only checks; it is not a pull). */
  middleware(): MiddlewareHandler<Env> {
    return async (c, next) => {
      await next();
      if (c.req.method !== "GET" || c.res.status !== 200) return;
      const match = MANIFEST_PATH.exec(c.req.path);
      const digest = c.res.headers.get("docker-content-digest");
      if (!match || !digest) return;
      const [, repository, reference] = match as unknown as [string, string, string];
      this.record({ repository, digest: digest as Digest, at: Date.now(), ...(reference.includes(":") ? {} : { tag: reference }) });
    };
  }
}
