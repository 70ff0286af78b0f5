import { pipeline } from "node:stream/promises";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Digest } from "@minato/oci";
import { BlobNotFoundError, type ByteRange } from "@minato/storage";
import { RegistryError } from "../errors.js";
import { API_VERSION, API_VERSION_HEADER, type Ctx, type RegistryDeps, requireDigest } from "../http.js";
import { BLOB_MEDIA_TYPE, eventsFor, type OutboxEvent } from "../notifications/index.js";

/** Blobs are immutable: caches may keep them for a year (as Distribution advertises). */
const IMMUTABLE = "max-age=31536000";

/**
 * Parses a single `Range: bytes=…` (RFC 9110 §14.1.2). Returns undefined to serve the whole blob
 * (no header, another unit, or several ranges — a server may ignore Range), "unsatisfiable" for 416.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return header.includes(",") || !header.startsWith("bytes=") ? undefined : "unsatisfiable";
  const [, first, last] = match as unknown as [string, string, string];
  if (first === "" && last === "") return "unsatisfiable";
  if (first === "") {
    // Suffix range: the last N bytes.
    const length = Number(last);
    if (length === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || (last !== "" && Number(last) < start)) return "unsatisfiable";
  return { start, end };
}

export async function getBlob(c: Ctx, deps: RegistryDeps, name: string, reference: string, head: boolean): Promise<Response> {
  const digest = requireDigest(reference);
  let blob = await deps.metadata.linkedBlob(name, digest);
  const upstream = deps.proxy?.upstreamOf(name);
  if (upstream) deps.metrics.proxyCacheRequests.inc({ kind: "blob", result: blob ? "hit" : "miss" });
  if (upstream && !blob && deps.proxy) {
    // Not cached yet: from upstream (streamed to this client while it is cached, unless a range is asked for).
    const out = head || c.req.header("range") ? undefined : c.env.outgoing;
    const fetched = await deps.proxy.blob(deps, upstream, name, digest, { head, ...(out ? { out } : {}) });
    if (fetched === "sent") return RESPONSE_ALREADY_SENT;
    blob = fetched;
  }
  if (!blob) throw new RegistryError(404, "BLOB_UNKNOWN", { digest });
  const headers: Record<string, string> = {
    "Content-Type": "application/octet-stream",
    "Docker-Content-Digest": digest,
    "Accept-Ranges": "bytes",
    ETag: `"${digest}"`,
    "Cache-Control": IMMUTABLE,
  };
  const range = parseRange(c.req.header("range"), blob.size);
  if (range === "unsatisfiable") {
    throw new RegistryError(416, "BLOB_UNKNOWN", { digest, size: blob.size }, "requested range not satisfiable", {
      "Content-Range": `bytes */${blob.size}`,
    });
  }
  if (range) headers["Content-Range"] = `bytes ${range.start}-${range.end}/${blob.size}`;
  headers["Content-Length"] = String(range ? range.end - range.start + 1 : blob.size);
  const status = range ? 206 : 200;
  if (head) return c.body(null, status, headers);
  // Object storage may serve the bytes itself (a presigned URL; the client sends its Range there).
  const redirect = await deps.storage.redirectUrl?.(digest);
  deps.notifications?.pulled(
    deps.notifications.event(c, deps, "pull", "blobs", { mediaType: BLOB_MEDIA_TYPE, size: blob.size, digest, repository: name }),
  );
  if (redirect) return c.body(null, 307, { Location: redirect, "Docker-Content-Digest": digest, "Content-Length": "0" });
  return streamBlob(c, deps, digest, status, headers, range ?? wholeBlob(blob.size));
}

/** The whole blob as a range, so the storage driver knows how much it reads (none for an empty blob). */
function wholeBlob(size: number): ByteRange | undefined {
  return size > 0 ? { start: 0, end: size - 1 } : undefined;
}

/** Pipes storage straight into the socket: no Web-stream conversion on the hottest path. */
async function streamBlob(
  c: Ctx,
  deps: RegistryDeps,
  digest: Digest,
  status: number,
  headers: Record<string, string>,
  range: ByteRange | undefined,
): Promise<Response> {
  let body: Awaited<ReturnType<typeof deps.storage.read>>;
  try {
    body = await deps.storage.read(digest, range);
  } catch (error) {
    if (error instanceof BlobNotFoundError) {
      deps.logger.error({ digest }, "blob linked in metadata is missing from storage");
      throw new RegistryError(404, "BLOB_UNKNOWN", { digest });
    }
    throw error;
  }
  const out = c.env.outgoing;
  out.writeHead(status, { ...headers, [API_VERSION_HEADER]: API_VERSION });
  pipeline(body, out).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ERR_STREAM_PREMATURE_CLOSE") deps.logger.warn({ err: error, digest }, "blob download interrupted");
  });
  return RESPONSE_ALREADY_SENT;
}

export async function deleteBlob(c: Ctx, deps: RegistryDeps, name: string, reference: string): Promise<Response> {
  if (!deps.options.deletesEnabled) throw new RegistryError(405, "UNSUPPORTED", undefined, "deletes are disabled");
  const digest = requireDigest(reference);
  let events: OutboxEvent[] = [];
  if (deps.notifications) {
    const blob = await deps.metadata.linkedBlob(name, digest);
    if (blob) events = eventsFor(c, deps, "delete", "blobs", { mediaType: BLOB_MEDIA_TYPE, size: blob.size, digest, repository: name });
  }
  if (!(await deps.metadata.unlinkBlob(name, digest, events))) throw new RegistryError(404, "BLOB_UNKNOWN", { digest });
  deps.notifications?.written();
  // The bytes stay until garbage collection: another repository may link them, an upload may be racing.
  return c.body(null, 202, { "Content-Length": "0" });
}
