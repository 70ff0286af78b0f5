import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * The registry's Prometheus metrics: one prom-client Registry per running registry (tests run several in
 * one process), reached through `deps.metrics`. Names follow Prometheus conventions: `minato_registry_`
 * prefix, base units, `_total` counters. Labels are bounded: route kinds, methods, codes, drivers,
 * operations, endpoint names; never raw paths, digests or (unless the operator enables it) repositories.
 *
 * Other modules record into the named objects below, e.g. the pull-through cache:
 * `deps.metrics.proxyCacheRequests.inc({ result: "hit" })`.
 */
export const METRIC_PREFIX = "minato_registry_";

/** What a request addressed, for the `kind` label. */
export type RouteKind =
  | "base"
  | "blob"
  | "manifest"
  | "upload"
  | "tags"
  | "catalog"
  | "referrers"
  | "token"
  | "api"
  | "ui"
  | "health"
  | "metrics"
  | "other";

/** Per-repository storage numbers read from metadata at scrape time. */
export interface StorageStats {
  totalBytes: number;
  totalBlobs: number;
  /** Only when repository labels are enabled. */
  repositories?: { repository: string; bytes: number; blobs: number }[];
}

export interface RegistryMetricsOptions {
  /** Adds per-repository storage series (cardinality grows with the number of repositories). */
  repositoryLabels?: boolean;
  /** Read at scrape time for the storage gauges; absent: those gauges stay empty. */
  storageStats?: (perRepository: boolean) => Promise<StorageStats>;
  /** prom-client's process metrics (memory, CPU, event-loop lag, open fds); on by default. */
  processMetrics?: boolean;
}

const name = (suffix: string) => `${METRIC_PREFIX}${suffix}`;

/** Request durations: from a cached manifest HEAD (sub-ms) to a multi-GiB blob transfer. */
const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const STORAGE_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30];

export class RegistryMetrics {
  readonly registry = new Registry();
  readonly repositoryLabels: boolean;

  readonly requests = new Counter({
    name: name("http_requests_total"),
    help: "HTTP requests answered, by route kind, method and status code",
    labelNames: ["kind", "method", "code"] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: name("http_request_duration_seconds"),
    help: "Time from request to the end of the response, by route kind",
    labelNames: ["kind"] as const,
    buckets: REQUEST_BUCKETS,
    registers: [this.registry],
  });
  readonly receivedBytes = new Counter({
    name: name("http_received_bytes_total"),
    help: "Request body bytes received",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  readonly sentBytes = new Counter({
    name: name("http_sent_bytes_total"),
    help: "Response bytes sent (headers excluded)",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  readonly uploadsInFlight = new Gauge({
    name: name("uploads_in_flight"),
    help: "Upload requests (POST, PATCH, PUT of blob uploads) being served now",
    registers: [this.registry],
  });
  readonly storageDuration = new Histogram({
    name: name("storage_operation_duration_seconds"),
    help: "Blob storage operations, by driver and operation",
    labelNames: ["driver", "operation", "outcome"] as const,
    buckets: STORAGE_BUCKETS,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: name("auth_failures_total"),
    help: "Refused credentials or tokens, by reason",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly loginsThrottled = new Counter({
    name: name("logins_throttled_total"),
    help: "Logins refused with 429 because of too many failures",
    registers: [this.registry],
  });
  readonly gcRuns = new Counter({
    name: name("gc_runs_total"),
    help: "Garbage collections, by outcome",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly gcDuration = new Histogram({
    name: name("gc_duration_seconds"),
    help: "Duration of garbage collections",
    buckets: [0.01, 0.1, 0.5, 1, 5, 30, 120, 600, 3600],
    registers: [this.registry],
  });
  readonly gcFreedBytes = new Counter({
    name: name("gc_freed_bytes_total"),
    help: "Blob bytes removed from storage by garbage collection",
    registers: [this.registry],
  });
  readonly gcDeletedBlobs = new Counter({
    name: name("gc_deleted_blobs_total"),
    help: "Blobs removed from storage by garbage collection",
    registers: [this.registry],
  });
  readonly notifications = new Counter({
    name: name("notifications_total"),
    help: "Notification deliveries, by endpoint and outcome (delivered, failed)",
    labelNames: ["endpoint", "outcome"] as const,
    registers: [this.registry],
  });
  readonly notificationsPending = new Gauge({
    name: name("notifications_pending"),
    help: "Events waiting for delivery, by endpoint",
    labelNames: ["endpoint"] as const,
    registers: [this.registry],
  });
  readonly proxyCacheRequests = new Counter({
    name: name("proxy_cache_requests_total"),
    help: "Pull-through cache lookups, by kind (blob, manifest) and result (hit, miss)",
    labelNames: ["kind", "result"] as const,
    registers: [this.registry],
  });
  readonly proxyCacheFetchedBytes = new Counter({
    name: name("proxy_cache_fetched_bytes_total"),
    help: "Bytes fetched from upstream registries by the pull-through cache",
    registers: [this.registry],
  });

  constructor(options: RegistryMetricsOptions = {}) {
    this.repositoryLabels = options.repositoryLabels ?? false;
    const stats = options.storageStats;
    const perRepository = this.repositoryLabels;
    // Read once per scrape, shared by the four gauges below.
    let pending: Promise<StorageStats> | undefined;
    const read = () => {
      if (!stats) return undefined;
      pending ??= stats(perRepository).finally(() => setImmediate(() => (pending = undefined)));
      return pending;
    };
    new Gauge({
      name: name("storage_bytes"),
      help: "Bytes of all blobs the metadata knows",
      registers: [this.registry],
      async collect() {
        const s = await read();
        if (s) this.set(s.totalBytes);
      },
    });
    new Gauge({
      name: name("storage_blobs"),
      help: "Number of blobs the metadata knows",
      registers: [this.registry],
      async collect() {
        const s = await read();
        if (s) this.set(s.totalBlobs);
      },
    });
    if (perRepository) {
      new Gauge({
        name: name("repository_storage_bytes"),
        help: "Bytes of the blobs linked in each repository",
        labelNames: ["repository"] as const,
        registers: [this.registry],
        async collect() {
          const s = await read();
          this.reset();
          for (const r of s?.repositories ?? []) this.set({ repository: r.repository }, r.bytes);
        },
      });
      new Gauge({
        name: name("repository_blobs"),
        help: "Number of blobs linked in each repository",
        labelNames: ["repository"] as const,
        registers: [this.registry],
        async collect() {
          const s = await read();
          this.reset();
          for (const r of s?.repositories ?? []) this.set({ repository: r.repository }, r.blobs);
        },
      });
    }
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  /** The exposition text and its content type, for `/metrics`. */
  async scrape(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
