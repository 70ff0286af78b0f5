import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Digest, Digester, type ManifestSummary, parseDigest, parseManifest } from "@minato/oci";
import { RegistryError } from "../errors.js";
import { API_VERSION, API_VERSION_HEADER, type RegistryDeps } from "../http.js";
import { tagRules } from "../lifecycle/policy.js";
import type { StoredManifest } from "../metadata/store.js";
import type { UpstreamConfig } from "./config.js";
import { isUpstreamOutage, Upstream } from "./upstream.js";

/** A manifest served from the cache; `stale` when upstream could not be asked whether it is current. */
export interface CachedManifest {
  manifest: StoredManifest;
  stale: boolean;
  /** Downloaded from upstream for this request (a cache miss). */
  fetched?: boolean;
}

/** A manifest fetched from upstream whose blobs or children are not all cached yet. */
interface Pending {
  manifest: StoredManifest;
  summary: ManifestSummary;
  tags: Set<string>;
}

/** An upstream blob download in progress: the first client tees it, the others wait for it. */
interface Flight {
  /** Resolves once the blob is stored, verified and linked (its size); rejects when it was not. */
  done: Promise<number>;
}

/** At most this many manifests are held in memory waiting for their blobs (oldest dropped first). */
const MAX_PENDING = 1000;

/**
 * The pull-through cache: namespaces whose content comes from upstream registries. What it fetches
 * is verified against its digest and stored like pushed content (blob links, manifests, tags in the
 * metadata store), so garbage collection, retention and quotas treat it alike.
 *
 * A manifest can only be recorded once everything it references is (the store checks references),
 * so a manifest fetched before its blobs is held here, served from memory, and recorded as soon as
 * the last of its blobs or children is cached.
 */
export class PullThroughCache {
  readonly upstreams: Upstream[];
  /** When each cached tag (`name:tag`) was last confirmed upstream, and where it pointed. */
  readonly #tags = new Map<string, { digest: Digest; checkedAt: number }>();
  readonly #pending = new Map<string, Pending>();
  readonly #flights = new Map<string, Flight>();
  readonly #manifestFlights = new Map<string, Promise<CachedManifest>>();

  constructor(configs: UpstreamConfig[]) {
    this.upstreams = configs.map((config) => new Upstream(config));
  }

  /** The upstream whose namespace holds `name`, if any. */
  upstreamOf(name: string): Upstream | undefined {
    return this.upstreams.find((u) => u.owns(name));
  }

  /** Refuses writes into a proxied namespace: its content is upstream's. */
  refuseWrite(name: string, method: string): void {
    const upstream = this.upstreamOf(name);
    if (!upstream) return;
    throw new RegistryError(
      405,
      "UNSUPPORTED",
      { name, upstream: upstream.config.url },
      `${upstream.prefix}/ is a pull-through cache of ${upstream.config.url}: ${method} is refused; push to the upstream or to a repository outside ${upstream.prefix}/`,
      { Allow: "GET, HEAD" },
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Manifests

  async manifest(deps: RegistryDeps, upstream: Upstream, name: string, reference: string): Promise<CachedManifest> {
    const found = await this.#lookup(deps, upstream, name, reference);
    const result = found.stale ? "stale" : found.fetched ? "miss" : "hit";
    deps.metrics.proxyCacheRequests.inc({ kind: "manifest", result });
    return found;
  }

  async #lookup(deps: RegistryDeps, upstream: Upstream, name: string, reference: string): Promise<CachedManifest> {
    if (reference.includes(":")) {
      const local = await this.#local(deps, name, reference as Digest);
      if (local) return { manifest: local, stale: false };
      return this.#singleFlight(`${name}@${reference}`, async () => ({
        manifest: await this.#fetchManifest(deps, upstream, name, reference, undefined),
        stale: false,
        fetched: true,
      }));
    }
    const key = `${name}:${reference}`;
    const state = this.#tags.get(key);
    if (state && Date.now() - state.checkedAt < upstream.config.tagTtlMs) {
      const local = await this.#local(deps, name, state.digest);
      if (local) return { manifest: local, stale: false };
    }
    return this.#singleFlight(key, () => this.#revalidate(deps, upstream, name, reference));
  }

  /** A tag past its freshness: a HEAD upstream; the manifest is downloaded only if the digest moved. */
  async #revalidate(deps: RegistryDeps, upstream: Upstream, name: string, tag: string): Promise<CachedManifest> {
    const key = `${name}:${tag}`;
    const known = this.#tags.get(key)?.digest;
    const local = known ? await this.#local(deps, name, known) : await deps.metadata.getManifest(name, tag);
    let head: Awaited<ReturnType<Upstream["client"]["headManifest"]>>;
    try {
      head = await upstream.client.headManifest(upstream.remoteName(name), tag);
    } catch (error) {
      if (local && isUpstreamOutage(error)) {
        deps.logger.warn({ name, tag, err: error }, "upstream unavailable: serving the cached manifest stale");
        return { manifest: local, stale: true };
      }
      throw upstream.error(error, "manifest", { name, reference: tag });
    }
    if (!head) throw new RegistryError(404, "MANIFEST_UNKNOWN", { name, reference: tag });
    if (local && head.digest === local.digest) {
      this.#tags.set(key, { digest: local.digest, checkedAt: Date.now() });
      return { manifest: local, stale: false };
    }
    try {
      return { manifest: await this.#fetchManifest(deps, upstream, name, tag, tag), stale: false, fetched: true };
    } catch (error) {
      if (local && !(error instanceof RegistryError) && isUpstreamOutage(error)) return { manifest: local, stale: true };
      throw error;
    }
  }

  /** Downloads and verifies a manifest, keeps it until it can be recorded, and points `tag` at it. */
  async #fetchManifest(deps: RegistryDeps, upstream: Upstream, name: string, reference: string, tag: string | undefined) {
    let manifest: StoredManifest;
    let summary: ManifestSummary;
    try {
      // The client verifies the bytes against the digest asked for, or the one upstream names.
      const fetched = await upstream.client.getManifest(upstream.remoteName(name), reference);
      deps.metrics.proxyCacheFetchedBytes.inc(fetched.bytes.byteLength);
      summary = parseManifest(fetched.bytes, fetched.mediaType);
      manifest = { digest: fetched.digest, mediaType: summary.mediaType, content: fetched.bytes };
    } catch (error) {
      throw upstream.error(error, "manifest", { name, reference });
    }
    const key = `${name}@${manifest.digest}`;
    const pending = this.#pending.get(key) ?? { manifest, summary, tags: new Set<string>() };
    if (tag) {
      pending.tags.add(tag);
      this.#tags.set(`${name}:${tag}`, { digest: manifest.digest, checkedAt: Date.now() });
    }
    this.#pending.set(key, pending);
    while (this.#pending.size > MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value as string);
    await this.#record(deps, name);
    return manifest;
  }

  /** A manifest of `name` the cache holds: recorded in the store, or pending. */
  async #local(deps: RegistryDeps, name: string, digest: Digest): Promise<StoredManifest | undefined> {
    return (await deps.metadata.getManifest(name, digest)) ?? this.#pending.get(`${name}@${digest}`)?.manifest;
  }

  /** Records every pending manifest of `name` whose references are all cached now (children before their index). */
  async #record(deps: RegistryDeps, name: string): Promise<void> {
    const rules = deps.policy ? tagRules(deps.policy, name) : {};
    for (let progress = true; progress; ) {
      progress = false;
      for (const [key, pending] of this.#pending) {
        if (!key.startsWith(`${name}@`)) continue;
        const { manifest, summary } = pending;
        // Only tags that still point here: a tag that moved since must not be moved back.
        const tags = [...pending.tags].filter((t) => this.#tags.get(`${name}:${t}`)?.digest === manifest.digest);
        const missing = await deps.metadata.putManifest(name, { ...manifest, summary }, tags, rules);
        if (missing.length === 0) {
          this.#pending.delete(key);
          progress = true;
        }
      }
    }
  }

  async #singleFlight<T>(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.#manifestFlights.get(key) as Promise<T> | undefined;
    if (running) return running;
    const flight = work().finally(() => this.#manifestFlights.delete(key));
    this.#manifestFlights.set(key, flight as Promise<CachedManifest>);
    return flight;
  }

  // ---------------------------------------------------------------------------------------------
  // Blobs

  /**
   * A blob of a proxied repository that is not cached there. HEAD asks upstream (nothing cached).
   * GET: a blob stored for another repository is linked once upstream confirms it has it; else it is
   * fetched once however many clients ask — the first gets the bytes as they arrive (the last chunk
   * only after verification), the others wait and are served from storage. Returns the blob's size
   * for the caller to serve, or "sent" when the response was written here.
   */
  async blob(
    deps: RegistryDeps,
    upstream: Upstream,
    name: string,
    digest: Digest,
    options: { head: boolean; out?: ServerResponse },
  ): Promise<{ size: number } | "sent"> {
    const remote = upstream.remoteName(name);
    const detail = { name, digest };
    const stored = await deps.metadata.storedBlob(digest);
    if (options.head || stored) {
      let size: number | undefined;
      try {
        size = await upstream.client.blobSize(remote, digest);
      } catch (error) {
        throw upstream.error(error, "blob", detail);
      }
      if (size === undefined) throw new RegistryError(404, "BLOB_UNKNOWN", detail);
      if (options.head || !stored) return { size };
      // Upstream has it: this repository may read the copy already stored.
      await deps.metadata.linkBlob(name, digest, stored.size);
      await this.#record(deps, name);
      return { size: stored.size };
    }
    const key = `${name}@${digest}`;
    const running = this.#flights.get(key);
    if (running) return { size: await running.done.catch((error) => Promise.reject(upstream.error(error, "blob", detail))) };
    let started: () => void = () => undefined;
    let failed: (error: unknown) => void = () => undefined;
    const headersSent = new Promise<void>((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    headersSent.catch(() => undefined);
    const done = this.#download(deps, upstream, name, digest, options.out, () => started()).finally(() => this.#flights.delete(key));
    this.#flights.set(key, { done });
    done.catch((error: unknown) => {
      failed(error);
      deps.logger.warn({ err: error, name, digest }, "pull-through blob download failed; nothing cached");
    });
    if (!options.out) return { size: await done.catch((error) => Promise.reject(upstream.error(error, "blob", detail))) };
    try {
      await headersSent;
    } catch (error) {
      throw upstream.error(error, "blob", detail);
    }
    return "sent";
  }

  /** Streams a blob from upstream into storage (and to `out`), verifies, records it; its size. */
  async #download(
    deps: RegistryDeps,
    upstream: Upstream,
    name: string,
    digest: Digest,
    out: ServerResponse | undefined,
    started: () => void,
  ): Promise<number> {
    const { body, size } = await upstream.client.openBlobStream(upstream.remoteName(name), digest);
    if (out) {
      out.writeHead(200, {
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": digest,
        ETag: `"${digest}"`,
        ...(size === undefined ? {} : { "Content-Length": String(size) }),
        [API_VERSION_HEADER]: API_VERSION,
      });
    }
    started();
    const client = out && !out.destroyed ? out : undefined;
    const digester = new Digester(parseDigest(digest).algorithm);
    // One chunk is held back: the client's body is complete only once the blob is verified.
    let held: Buffer | undefined;
    const toClient = async (chunk: Buffer) => {
      if (!client || client.destroyed) return;
      if (client.write(chunk)) return;
      // Wait for the client to drain (or go away), leaving no listener behind either way.
      await new Promise<void>((resolve) => {
        const done = () => {
          client.off("drain", done);
          client.off("close", done);
          resolve();
        };
        client.once("drain", done);
        client.once("close", done);
      });
    };
    const tee = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        digester.update(chunk);
        deps.metrics.proxyCacheFetchedBytes.inc(chunk.byteLength);
        if (size !== undefined && digester.size > size) return callback(new Error(`upstream sent more than ${size} bytes`));
        const previous = held;
        held = chunk;
        if (!previous) return callback(null, chunk);
        toClient(previous).then(
          () => callback(null, chunk),
          () => callback(null, chunk),
        );
      },
    });
    const id = randomUUID();
    await deps.storage.createUpload(id);
    try {
      const piped = pipeline(body, tee);
      piped.catch(() => undefined);
      await deps.storage.append(id, 0, tee);
      await piped;
      const actual = digester.digest();
      if (actual !== digest || (size !== undefined && digester.size !== size)) {
        throw new RegistryError(
          502,
          "DIGEST_INVALID",
          { expected: digest, actual },
          `upstream ${upstream.config.url} sent ${actual} for ${digest}; nothing was cached`,
        );
      }
      while (!(await deps.metadata.reserveBlobWrite(digest, id))) await new Promise((resolve) => setTimeout(resolve, 25));
      try {
        await deps.storage.commit(id, digest);
      } catch (error) {
        await deps.metadata.releaseBlobWrite(digest, id);
        throw error;
      }
      if (!(await deps.metadata.linkBlob(name, digest, digester.size, id))) throw new Error(`blob ${digest} was collected while reserved`);
    } catch (error) {
      await deps.storage.abort(id).catch(() => undefined);
      body.destroy();
      client?.destroy();
      throw error;
    }
    await this.#record(deps, name);
    if (client && !client.destroyed) client.end(held);
    return digester.size;
  }
}
