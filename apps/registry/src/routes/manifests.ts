import {
  bareMediaType,
  type Digest,
  digestOf,
  isValidTag,
  ManifestError,
  type ManifestSummary,
  parseDigest,
  parseManifest,
} from "@minato/oci";
import { auditRequest } from "../audit.js";
import { errorEntry, RegistryError } from "../errors.js";
import { type Ctx, type RegistryDeps, readBody, requireDigest } from "../http.js";
import { tagRules } from "../lifecycle/policy.js";
import { ImmutableTagError } from "../metadata/store.js";
import { eventsFor, type OutboxEvent } from "../notifications/index.js";

/** distribution-spec end-7b: at least 10 tags per request SHOULD be accepted; past this, 414. */
const MAX_TAGS_PER_PUSH = 100;

export type Reference = { kind: "digest"; digest: Digest } | { kind: "tag"; tag: string };

function parseReference(reference: string): Reference {
  if (reference.includes(":")) return { kind: "digest", digest: requireDigest(reference) };
  if (!isValidTag(reference)) throw new RegistryError(400, "NAME_INVALID", { tag: reference.slice(0, 200) }, "invalid tag");
  return { kind: "tag", tag: reference };
}

function isValidReference(reference: string): boolean {
  if (!reference.includes(":")) return isValidTag(reference);
  try {
    parseDigest(reference);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether an `Accept` header admits a media type. No header, or a wildcard, admits everything;
 * Distribution likewise answers 404 when a client accepts only other manifest types.
 */
function accepts(header: string | undefined, mediaType: string): boolean {
  if (!header) return true;
  for (const entry of header.split(",")) {
    const type = bareMediaType(entry);
    if (type === mediaType || type === "*/*" || type === "application/*" || type === "") return true;
  }
  return false;
}

export async function getManifest(c: Ctx, deps: RegistryDeps, name: string, reference: string, head: boolean): Promise<Response> {
  // A reference that is neither a tag nor a digest names no manifest: 404 MANIFEST_UNKNOWN, as the
  // distribution-spec conformance suite and other registries answer (its route would not match).
  if (!isValidReference(reference)) throw new RegistryError(404, "MANIFEST_UNKNOWN", { reference: reference.slice(0, 200) });
  const upstream = deps.proxy?.upstreamOf(name);
  const cached = upstream ? await deps.proxy?.manifest(deps, upstream, name, reference) : undefined;
  const manifest = cached ? cached.manifest : await deps.metadata.getManifest(name, reference);
  if (!manifest) throw new RegistryError(404, "MANIFEST_UNKNOWN", { name, reference });
  if (!accepts(c.req.header("accept"), manifest.mediaType)) {
    throw new RegistryError(
      404,
      "MANIFEST_UNKNOWN",
      { mediaType: manifest.mediaType },
      `manifest is ${manifest.mediaType}, which the Accept header does not allow`,
    );
  }
  const headers: Record<string, string> = {
    "Content-Type": manifest.mediaType,
    "Content-Length": String(manifest.content.byteLength),
    "Docker-Content-Digest": manifest.digest,
    ETag: `"${manifest.digest}"`,
  };
  // RFC 9111 §5.5 (obsoleted but what clients and caches still read), plus a header of our own.
  if (cached?.stale) Object.assign(headers, { Warning: '110 - "Response is Stale"', "X-Minato-Cache": "stale" });
  if (head) return c.body(null, 200, headers);
  if (deps.notifications) {
    const target = { mediaType: manifest.mediaType, size: manifest.content.byteLength, digest: manifest.digest, repository: name };
    deps.notifications.pulled(
      deps.notifications.event(c, deps, "pull", "manifests", reference.includes(":") ? target : { ...target, tag: reference }),
    );
  }
  return c.body(manifest.content as Uint8Array<ArrayBuffer>, 200, headers);
}

export async function putManifest(c: Ctx, deps: RegistryDeps, name: string, reference: string): Promise<Response> {
  const target = parseReference(reference);
  const limit = deps.options.maxManifestBytes;
  const content = await readBody(
    c.env.incoming,
    limit,
    () => new RegistryError(413, "MANIFEST_INVALID", { limit }, `manifest exceeds ${limit} bytes`),
  );

  let summary: ManifestSummary;
  try {
    summary = parseManifest(content, c.req.header("content-type"));
  } catch (error) {
    if (error instanceof ManifestError) throw new RegistryError(400, "MANIFEST_INVALID", { reason: error.message });
    throw error;
  }

  const algorithm = target.kind === "digest" ? parseDigest(target.digest).algorithm : "sha256";
  const digest = digestOf(content, algorithm);
  if (target.kind === "digest" && digest !== target.digest) {
    throw new RegistryError(400, "DIGEST_INVALID", { expected: target.digest, actual: digest });
  }

  // end-7b: tags may ride along a push by digest.
  const extraTags = target.kind === "digest" ? (c.req.queries("tag") ?? []) : [];
  if (extraTags.length > MAX_TAGS_PER_PUSH) throw new RegistryError(414, "UNSUPPORTED", { max: MAX_TAGS_PER_PUSH }, "too many tags");
  for (const tag of extraTags) {
    if (!isValidTag(tag)) throw new RegistryError(400, "NAME_INVALID", { tag: tag.slice(0, 200) }, "invalid tag");
  }
  const tags = target.kind === "tag" ? [target.tag] : [...new Set(extraTags)];

  await checkDescriptorSizes(deps, name, summary);
  const rules = deps.policy ? tagRules(deps.policy, name) : {};
  const pushed = { mediaType: summary.mediaType, size: content.byteLength, digest, repository: name };
  const events = (tags.length > 0 ? tags : [undefined]).flatMap((tag) =>
    eventsFor(c, deps, "push", "manifests", tag === undefined ? pushed : { ...pushed, tag }),
  );
  const missing = await refuseImmutable(() =>
    deps.metadata.putManifest(name, { digest, mediaType: summary.mediaType, content, summary }, tags, rules, events),
  );
  if (missing.length === 0) {
    deps.notifications?.written();
    auditRequest(c, deps, "push", `${name}@${digest}`, { mediaType: summary.mediaType, ...(tags.length > 0 ? { tags } : {}) });
  }
  if (missing.length > 0) {
    throw RegistryError.many(
      400,
      missing.map((ref) => errorEntry("MANIFEST_BLOB_UNKNOWN", ref)),
    );
  }

  const headers: Record<string, string> = {
    Location: `/v2/${name}/manifests/${digest}`,
    "Docker-Content-Digest": digest,
    "Content-Length": "0",
  };
  if (summary.subject) headers["OCI-Subject"] = summary.subject.digest;
  if (extraTags.length > 0) headers["OCI-Tag"] = tags.join(", ");
  return c.body(null, 201, headers);
}

/**
 * A descriptor's `size` is the exact length of what it points to (image-spec descriptor.md); one that
 * disagrees with the stored blob or child manifest would make clients distrust or misread the content.
 * Sizes of stored content never change, so checking before the write needs no transaction.
 */
async function checkDescriptorSizes(deps: RegistryDeps, name: string, summary: ManifestSummary): Promise<void> {
  const wrong: { digest: Digest; size: number; actual: number }[] = [];
  for (const blob of summary.blobs) {
    const stored = await deps.metadata.linkedBlob(name, blob.digest);
    if (stored && stored.size !== blob.size) wrong.push({ digest: blob.digest, size: blob.size, actual: stored.size });
  }
  for (const child of summary.manifests) {
    const stored = await deps.metadata.getManifest(name, child.digest);
    if (stored && stored.content.byteLength !== child.size) {
      wrong.push({ digest: child.digest, size: child.size, actual: stored.content.byteLength });
    }
  }
  if (wrong.length > 0) {
    throw RegistryError.many(
      400,
      wrong.map((w) =>
        errorEntry("MANIFEST_INVALID", w, `descriptor of ${w.digest} gives size ${w.size}, the content is ${w.actual} bytes`),
      ),
    );
  }
}

export async function deleteManifest(c: Ctx, deps: RegistryDeps, name: string, reference: string): Promise<Response> {
  if (!deps.options.deletesEnabled) throw new RegistryError(405, "UNSUPPORTED", undefined, "deletes are disabled");
  const target = parseReference(reference);
  if (!(await deps.metadata.repositoryExists(name))) throw new RegistryError(404, "NAME_UNKNOWN", { name });
  if (!(await deleteReference(deps, name, target, c))) throw new RegistryError(404, "MANIFEST_UNKNOWN", { name, reference });
  return c.body(null, 202, { "Content-Length": "0" });
}

/**
 * Deletes a tag, or a manifest with its tags, refusing to remove an immutable tag (403 DENIED); false
 * when absent. The distribution API and the browsing API both delete through it.
 */
export async function deleteReference(
  deps: Pick<RegistryDeps, "metadata" | "policy" | "auth" | "notifications" | "audit" | "options">,
  name: string,
  target: Reference,
  c: Ctx,
  /** Who deletes, when not the bearer token's subject (a browser session). */
  actor?: string,
): Promise<boolean> {
  const rules = deps.policy ? tagRules(deps.policy, name) : {};
  let events: OutboxEvent[] = [];
  if (deps.notifications) {
    // What is deleted, for the event (read first: the delete removes it).
    const manifest = await deps.metadata.getManifest(name, target.kind === "digest" ? target.digest : target.tag);
    if (manifest) {
      const about = { mediaType: manifest.mediaType, size: manifest.content.byteLength, digest: manifest.digest, repository: name };
      events = eventsFor(c, deps, "delete", "manifests", target.kind === "tag" ? { ...about, tag: target.tag } : about, actor);
    }
  }
  const deleted = await refuseImmutable(() =>
    target.kind === "digest"
      ? deps.metadata.deleteManifest(name, target.digest, rules, events)
      : deps.metadata.deleteTag(name, target.tag, rules, events),
  );
  if (deleted) {
    deps.notifications?.written();
    const what = target.kind === "tag" ? `${name}:${target.tag}` : `${name}@${target.digest}`;
    auditRequest(c, deps, "delete", what, undefined, actor);
  }
  return deleted;
}

/** An immutable tag that a PUT would move or a DELETE remove: 403 DENIED naming the rule. */
async function refuseImmutable<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ImmutableTagError) throw new RegistryError(403, "DENIED", { tag: error.tag, rule: error.rule }, error.message);
    throw error;
  }
}
