import type { IncomingMessage } from "node:http";
import type { HttpBindings } from "@hono/node-server";
import { type Digest, type DigestError, parseDigest } from "@minato/oci";
import type { BlobStore } from "@minato/storage";
import type { Context } from "hono";
import type { PullRecorder } from "./api/pulls.js";
import type { AuditLog } from "./audit.js";
import type { Authorizer } from "./auth/middleware.js";
import { RegistryError } from "./errors.js";
import type { Policy } from "./lifecycle/policy.js";
import type { Logger } from "./logger.js";
import type { MetadataStore, UploadLimits } from "./metadata/store.js";
import type { RegistryMetrics } from "./metrics.js";
import type { Notifications } from "./notifications/index.js";
import type { PullThroughCache } from "./proxy/cache.js";

/** distribution-spec "Legacy Docker support HTTP headers": sent on every response. */
export const API_VERSION_HEADER = "Docker-Distribution-API-Version";
export const API_VERSION = "registry/2.0";

export interface RegistryOptions {
  /** DELETE of blobs, manifests and tags; when off they answer 405 UNSUPPORTED. */
  deletesEnabled: boolean;
  /** Largest manifest accepted (distribution-spec: at least 4 MiB must be supported). */
  maxManifestBytes: number;
  /** Largest page of tags, repositories or referrers returned at once. */
  maxPageSize: number;
  /** Open upload sessions allowed per repository and per client address. */
  uploadLimits: UploadLimits;
  /** Take the client address from X-Forwarded-For (behind a trusted proxy). */
  trustProxy: boolean;
}

export interface RegistryDeps {
  storage: BlobStore;
  metadata: MetadataStore;
  options: RegistryOptions;
  logger: Logger;
  /** Token authentication; undefined when the registry runs without (loopback development). */
  auth?: Authorizer;
  /** Immutable tags, quotas and retention (lifecycle/policy.ts); undefined: none. */
  policy?: Policy;
  /** Last-pull times for the browsing API (batched); undefined: pulls are not recorded. */
  pulls?: PullRecorder;
  /** Prometheus metrics (metrics.ts): always recorded; served at /metrics unless turned off. */
  metrics: RegistryMetrics;
  /** Webhook notifications (notifications/); undefined when no endpoint is configured. */
  notifications?: Notifications;
  /** The audit trail (audit.ts); undefined in embeddings that keep none. */
  audit?: AuditLog;
  /** Namespaces filled from upstream registries (--proxy-config); undefined: none. */
  proxy?: PullThroughCache;
}

export type Env = { Bindings: HttpBindings };
export type Ctx = Context<Env>;

/** A digest from a URL or query parameter: 400 DIGEST_INVALID when it is not one we can verify. */
export function requireDigest(value: string | undefined): Digest {
  if (!value) throw new RegistryError(400, "DIGEST_INVALID", undefined, "digest parameter is required");
  try {
    return parseDigest(value).digest;
  } catch (error) {
    throw new RegistryError(400, "DIGEST_INVALID", { digest: value.slice(0, 200) }, (error as DigestError).message);
  }
}

/** Page size from `?n=`: absent means the largest page; anything but a non-negative integer is refused. */
export function pageSize(c: Ctx, max: number): number {
  const n = c.req.query("n");
  if (n === undefined || n === "") return max;
  if (!/^\d{1,9}$/.test(n)) throw new RegistryError(400, "UNSUPPORTED", { n }, "n must be a non-negative integer");
  return Math.min(Number(n), max);
}

/** RFC 5988 `Link` to the next page, keeping the path and page size. */
export function nextLink(path: string, n: number, last: string, extra: Record<string, string> = {}): string {
  const query = new URLSearchParams({ ...extra, n: String(n), last });
  return `<${path}?${query}>; rel="next"`;
}

/** Reads a request body fully, refusing more than `limit` bytes with 413. */
export async function readBody(incoming: IncomingMessage, limit: number, tooLarge: () => RegistryError): Promise<Buffer> {
  const declared = Number(incoming.headers["content-length"] ?? 0);
  if (declared > limit) {
    incoming.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming) {
    size += (chunk as Buffer).byteLength;
    if (size > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/** Whether the request carries a body (a Content-Length above zero or a chunked transfer). */
export function hasBody(incoming: IncomingMessage): boolean {
  const length = incoming.headers["content-length"];
  if (length !== undefined) return Number(length) > 0;
  return incoming.headers["transfer-encoding"] !== undefined;
}
