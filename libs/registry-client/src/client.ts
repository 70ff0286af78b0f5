import { createReadStream } from "node:fs";
import { open, stat, truncate, unlink } from "node:fs/promises";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Descriptor, type Digest, Digester, digestOf, MANIFEST_MEDIA_TYPES, parseDigest } from "@minato/oci";
import { type Dispatcher, request } from "undici";
import { type Challenge, parseChallenges } from "./challenge.js";
import type { Credentials } from "./credentials.js";
import { AuthenticationError, ContentDigestError, RegistryResponseError } from "./errors.js";

/** One repository of a registry's search (the v1 search API's fields). */
export interface SearchResult {
  name: string;
  description: string;
  star_count: number;
  is_official: boolean;
  is_automated: boolean;
}

export interface SearchResults {
  num_results: number;
  query: string;
  results: SearchResult[];
}

export interface ClientOptions {
  /** `host[:port]` of the registry. */
  registry: string;
  credentials?: Credentials;
  /** Plain HTTP. Loopback registries (localhost, 127.0.0.0/8, ::1) default to it, as Docker does. */
  insecure?: boolean;
  dispatcher?: Dispatcher;
  userAgent?: string;
  /** Attempts per blob transfer after the first (network errors, interrupted bodies). */
  retries?: number;
}

export interface Progress {
  digest: Digest;
  current: number;
  total: number;
  status: "downloading" | "uploading" | "exists" | "mounted" | "done";
}
export type ProgressListener = (progress: Progress) => void;

export interface FetchedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

type Response = Dispatcher.ResponseData;
type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";

interface RequestOptions {
  method: Method;
  url: string;
  scopes: string[];
  headers?: Record<string, string>;
  body?: Buffer | Readable | string;
}

interface Token {
  value: string;
  expiresAt: number;
}

const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(", ");

export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export const pullScope = (repository: string) => `repository:${repository}:pull`;
export const pushScope = (repository: string) => `repository:${repository}:pull,push`;

async function errorFrom(response: Response, context: string): Promise<RegistryResponseError> {
  let errors: { code: string; message?: string; detail?: unknown }[] = [];
  try {
    const body = (await response.body.json()) as { errors?: typeof errors };
    if (Array.isArray(body?.errors)) errors = body.errors;
  } catch {
    // Not JSON (or HEAD): the status says it all.
  }
  return new RegistryResponseError(response.statusCode, errors, context, header(response, "retry-after"));
}

function header(response: Response, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A client of one registry's Distribution API: token and Basic authentication driven by the
 * registry's challenges (docker-registry-auth token.md), manifests verified against their digests,
 * blob downloads that resume with Range and are verified before they are kept, and pushes that skip
 * blobs the registry has, mount across repositories and resume interrupted uploads.
 */
export class RegistryClient {
  readonly baseUrl: string;
  readonly #options: ClientOptions;
  readonly #tokens = new Map<string, Token>();
  /** The Bearer challenge's realm and service, once the registry has sent one. */
  #bearer?: { realm: string; service?: string };
  #basic = false;

  constructor(options: ClientOptions) {
    this.#options = options;
    const insecure = options.insecure ?? isLoopbackRegistry(options.registry);
    this.baseUrl = `${insecure ? "http" : "https"}://${options.registry}`;
  }

  get registry(): string {
    return this.#options.registry;
  }

  #url(path: string): string {
    return new URL(path, this.baseUrl).toString();
  }

  async #authorization(scopes: string[]): Promise<string | undefined> {
    const credentials = this.#options.credentials;
    if (this.#basic && credentials && "password" in credentials) {
      return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
    }
    if (!this.#bearer) return undefined;
    const key = scopes.join(" ");
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > Date.now() + 10_000) return `Bearer ${cached.value}`;
    const token = await this.#fetchToken(scopes);
    this.#tokens.set(key, token);
    return `Bearer ${token.value}`;
  }

  /** Gets a token from the realm (token.md "Requesting a Token"; oauth.md for identity tokens). */
  async #fetchToken(scopes: string[]): Promise<Token> {
    const { realm, service } = this.#bearer as { realm: string; service?: string };
    const credentials = this.#options.credentials;
    let response: Response;
    if (credentials && "identityToken" in credentials) {
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: credentials.identityToken, client_id: "minato" });
      if (service) form.set("service", service);
      if (scopes.length > 0) form.set("scope", scopes.join(" "));
      response = await request(realm, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "user-agent": this.#userAgent() },
        body: form.toString(),
        dispatcher: this.#options.dispatcher,
      });
    } else {
      const url = new URL(realm);
      if (service) url.searchParams.set("service", service);
      for (const scope of scopes) url.searchParams.append("scope", scope);
      const headers: Record<string, string> = { "user-agent": this.#userAgent() };
      if (credentials && "password" in credentials) {
        url.searchParams.set("account", credentials.username);
        headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
      }
      response = await request(url, { headers, dispatcher: this.#options.dispatcher });
    }
    if (response.statusCode === 401 || response.statusCode === 403) {
      await response.body.dump();
      throw new AuthenticationError(`${this.registry}: unauthorized: incorrect username or password`);
    }
    if (response.statusCode !== 200) throw await errorFrom(response, `token from ${realm}`);
    const body = (await response.body.json()) as { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    const value = body.token ?? body.access_token;
    if (!value) throw new AuthenticationError(`${realm} returned no token`);
    // token.md: expires_in defaults to 60 seconds when absent.
    const issuedAt = body.issued_at ? Date.parse(body.issued_at) : Date.now();
    return { value, expiresAt: (Number.isNaN(issuedAt) ? Date.now() : issuedAt) + (body.expires_in ?? 60) * 1000 };
  }

  /** Learns how the registry wants to be authenticated from a 401's challenges. */
  #learn(challengeHeader: string | undefined): void {
    const challenges: Challenge[] = challengeHeader ? parseChallenges(challengeHeader) : [];
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer?.params.realm) {
      this.#bearer = { realm: bearer.params.realm, ...(bearer.params.service ? { service: bearer.params.service } : {}) };
      this.#tokens.clear();
      return;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      if (!this.#options.credentials || !("password" in this.#options.credentials)) {
        throw new AuthenticationError(`${this.registry}: authentication required`);
      }
      this.#basic = true;
      return;
    }
    throw new AuthenticationError(`${this.registry}: authentication required, and the registry sent no usable challenge`);
  }

  #userAgent(): string {
    return this.#options.userAgent ?? "minato";
  }

  /**
   * Sends a request with what authorization it needs. A 401 teaches the client the registry's
   * challenge and the request is sent once more — unless its body is a stream, which cannot be
   * replayed: then the 401 is returned for the caller's resume logic.
   */
  async #send(options: RequestOptions): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { "user-agent": this.#userAgent(), ...options.headers };
      const authorization = await this.#authorization(options.scopes);
      if (authorization) headers.authorization = authorization;
      const response = await request(options.url, {
        method: options.method,
        headers,
        body: options.body,
        dispatcher: this.#options.dispatcher,
      });
      const replayable = options.body === undefined || typeof options.body === "string" || Buffer.isBuffer(options.body);
      if (response.statusCode !== 401 || attempt > 0 || !replayable) return response;
      const challenge = header(response, "www-authenticate");
      await response.body.dump();
      this.#learn(challenge);
    }
  }

  /** `GET /v2/`: checks the registry speaks the API and that the credentials are accepted. */
  async ping(): Promise<void> {
    const response = await this.#send({ method: "GET", url: this.#url("/v2/"), scopes: [] });
    await response.body.dump();
    if (response.statusCode === 401) throw new AuthenticationError(`${this.registry}: unauthorized: incorrect username or password`);
    if (response.statusCode !== 200) throw new RegistryResponseError(response.statusCode, [], `${this.registry} /v2/`);
  }

  /** Fetches a manifest and verifies it: against the digest asked for, or the one the registry names. */
  async getManifest(repository: string, reference: string, accept: string = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    const response = await this.#send({
      method: "GET",
      url: this.#url(`/v2/${repository}/manifests/${reference}`),
      scopes: [pullScope(repository)],
      headers: { accept },
    });
    if (response.statusCode !== 200) throw await errorFrom(response, `manifest ${repository}:${reference}`);
    const declaredLength = Number(header(response, "content-length") ?? 0);
    if (declaredLength > MAX_MANIFEST_BYTES) {
      await response.body.dump();
      throw new RegistryResponseError(413, [], `manifest ${repository}:${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`);
    }
    const bytes = Buffer.from(await response.body.arrayBuffer());
    const expected = (reference.includes(":") ? reference : header(response, "docker-content-digest")) as Digest | undefined;
    const digest = expected ? digestOf(bytes, parseDigest(expected).algorithm) : digestOf(bytes);
    if (expected && digest !== expected) throw new ContentDigestError(expected, digest);
    const contentType = header(response, "content-type")?.split(";")[0]?.trim();
    const declared = (JSON.parse(bytes.toString("utf8")) as { mediaType?: string }).mediaType;
    return { digest, mediaType: declared ?? contentType ?? "", bytes };
  }

  /** `HEAD` a manifest: its digest and type, or undefined when absent. */
  async headManifest(repository: string, reference: string): Promise<{ digest: Digest; mediaType: string; size: number } | undefined> {
    const response = await this.#send({
      method: "HEAD",
      url: this.#url(`/v2/${repository}/manifests/${reference}`),
      scopes: [pullScope(repository)],
      headers: { accept: MANIFEST_ACCEPT },
    });
    await response.body.dump();
    if (response.statusCode === 404) return undefined;
    if (response.statusCode !== 200) {
      throw new RegistryResponseError(response.statusCode, [], `manifest ${repository}:${reference}`, header(response, "retry-after"));
    }
    return {
      digest: header(response, "docker-content-digest") as Digest,
      mediaType: header(response, "content-type") ?? "",
      size: Number(header(response, "content-length") ?? 0),
    };
  }

  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    const response = await this.#send({
      method: "PUT",
      url: this.#url(`/v2/${repository}/manifests/${reference}`),
      scopes: [pushScope(repository)],
      headers: { "content-type": mediaType },
      body: bytes,
    });
    if (response.statusCode !== 201) throw await errorFrom(response, `push manifest ${repository}:${reference}`);
    await response.body.dump();
    return (header(response, "docker-content-digest") as Digest | undefined) ?? digestOf(bytes);
  }

  async deleteManifest(repository: string, reference: string): Promise<void> {
    const response = await this.#send({
      method: "DELETE",
      url: this.#url(`/v2/${repository}/manifests/${reference}`),
      scopes: [`repository:${repository}:delete`],
    });
    if (response.statusCode !== 202) throw await errorFrom(response, `delete ${repository}:${reference}`);
    await response.body.dump();
  }

  /** All tags, following `Link` pagination. */
  async listTags(repository: string): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = `/v2/${repository}/tags/list`;
    for (let page = 0; next && page < 10_000; page++) {
      const response = await this.#send({ method: "GET", url: this.#url(next), scopes: [pullScope(repository)] });
      if (response.statusCode !== 200) throw await errorFrom(response, `tags of ${repository}`);
      const body = (await response.body.json()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      next = /<([^>]+)>;\s*rel="?next"?/.exec(header(response, "link") ?? "")?.[1];
    }
    return tags;
  }

  /**
   * `GET /v1/search` (the Docker Hub v1 search API that dockerd queries for `docker search`), with
   * the catalog scope a registry asks for before listing repositories.
   */
  async search(query: string, limit: number): Promise<SearchResults> {
    const url = new URL(this.#url("/v1/search"));
    url.searchParams.set("q", query);
    url.searchParams.set("n", String(limit));
    const response = await this.#send({ method: "GET", url: url.toString(), scopes: ["registry:catalog:*"] });
    if (response.statusCode !== 200) throw await errorFrom(response, `search of ${this.registry}`);
    const body = (await response.body.json()) as Partial<SearchResults>;
    if (!Array.isArray(body.results)) throw new RegistryResponseError(502, [], `${this.registry}: the search answer has no results list`);
    return { num_results: body.num_results ?? body.results.length, query: body.query ?? query, results: body.results };
  }

  /** Size of a blob in the repository, or undefined when the registry does not have it there. */
  async blobSize(repository: string, digest: Digest, scopes = [pullScope(repository)]): Promise<number | undefined> {
    const response = await this.#send({ method: "HEAD", url: this.#url(`/v2/${repository}/blobs/${digest}`), scopes });
    await response.body.dump();
    if (response.statusCode === 404) return undefined;
    if (response.statusCode === 401 || response.statusCode === 403) {
      throw new AuthenticationError(
        `${this.registry}/${repository}: ${response.statusCode === 401 ? "authentication required" : "denied: requested access to the resource is denied"}`,
      );
    }
    if (response.statusCode !== 200) throw new RegistryResponseError(response.statusCode, [], `blob ${digest}`);
    return Number(header(response, "content-length"));
  }

  /** Opens a blob for reading from `offset`, following redirects (without credentials across hosts). */
  async #openBlob(repository: string, digest: Digest, offset: number): Promise<Response> {
    let url = this.#url(`/v2/${repository}/blobs/${digest}`);
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    let response = await this.#send({ method: "GET", url, scopes: [pullScope(repository)], headers });
    for (let hop = 0; hop < 5 && [301, 302, 303, 307, 308].includes(response.statusCode); hop++) {
      await response.body.dump();
      url = new URL(header(response, "location") as string, url).toString();
      const sameOrigin = new URL(url).origin === new URL(this.baseUrl).origin;
      response = sameOrigin
        ? await this.#send({ method: "GET", url, scopes: [pullScope(repository)], headers })
        : await request(url, { headers: { ...headers, "user-agent": this.#userAgent() }, dispatcher: this.#options.dispatcher });
    }
    return response;
  }

  /**
   * Opens a blob for streaming (a pull-through cache tees it to its client and its storage): the
   * declared size and the body, not yet verified — the reader hashes what it receives.
   */
  async openBlobStream(repository: string, digest: Digest): Promise<{ size: number | undefined; body: Readable }> {
    const response = await this.#openBlob(repository, digest, 0);
    if (response.statusCode !== 200) throw await errorFrom(response, `blob ${digest}`);
    const length = header(response, "content-length");
    return { size: length === undefined ? undefined : Number(length), body: response.body };
  }

  /** A small blob (an image config) read whole and verified; larger than `maxBytes` is refused. */
  async readBlob(repository: string, descriptor: Descriptor, maxBytes = 4 * 1024 * 1024): Promise<Buffer> {
    if (descriptor.size > maxBytes) throw new RegistryResponseError(413, [], `blob ${descriptor.digest} is larger than ${maxBytes} bytes`);
    const response = await this.#openBlob(repository, descriptor.digest, 0);
    if (response.statusCode !== 200) throw await errorFrom(response, `blob ${descriptor.digest}`);
    const bytes = Buffer.from(await response.body.arrayBuffer());
    const digest = digestOf(bytes, parseDigest(descriptor.digest).algorithm);
    if (digest !== descriptor.digest || bytes.byteLength !== descriptor.size) throw new ContentDigestError(descriptor.digest, digest);
    return bytes;
  }

  /**
   * Downloads a blob into `path`, resuming from what the file already holds (Range) and retrying
   * interrupted transfers. The content is verified against its digest and size before returning;
   * on mismatch the file is removed and {@link ContentDigestError} thrown.
   */
  async downloadBlob(repository: string, descriptor: Descriptor, path: string, onProgress?: ProgressListener): Promise<void> {
    const { digest, size } = descriptor;
    const { algorithm } = parseDigest(digest);
    const retries = this.#options.retries ?? 3;
    let digester = new Digester(algorithm);
    let lastError: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      let have = await stat(path).then(
        (s) => s.size,
        () => 0,
      );
      if (have > size) {
        await truncate(path, 0);
        have = 0;
      }
      if (digester.size !== have) digester = await hashPrefix(path, have, algorithm);
      if (have === size) break;
      const response = await this.#openBlob(repository, digest, have);
      if (response.statusCode === 200 && have > 0) {
        // The server ignored Range: start over.
        await truncate(path, 0);
        digester = new Digester(algorithm);
        have = 0;
      } else if (response.statusCode === 416) {
        await response.body.dump();
        await truncate(path, 0);
        continue;
      } else if (response.statusCode !== 200 && response.statusCode !== 206) {
        throw await errorFrom(response, `blob ${digest}`);
      }
      const file = await open(path, have > 0 ? "a" : "w");
      try {
        let current = have;
        for await (const chunk of response.body) {
          const buffer = chunk as Buffer;
          current += buffer.byteLength;
          if (current > size) throw new ContentDigestError(digest, `more than ${size} bytes`);
          digester.update(buffer);
          await file.write(buffer);
          onProgress?.({ digest, current, total: size, status: "downloading" });
        }
      } catch (error) {
        lastError = error;
        if (error instanceof ContentDigestError) {
          await file.close();
          await unlink(path).catch(() => undefined);
          throw error;
        }
      } finally {
        await file.close().catch(() => undefined);
      }
    }
    const actual = digester.digest();
    if (digester.size !== size || actual !== digest) {
      await unlink(path).catch(() => undefined);
      if (digester.size < size && lastError) throw lastError;
      throw new ContentDigestError(digest, actual);
    }
    onProgress?.({ digest, current: size, total: size, status: "done" });
  }

  /**
   * Pushes a blob unless the repository has it: mounts it from `mountFrom` when the registry allows,
   * else uploads it in one streamed PATCH, resuming from the registry's offset after interruptions.
   * `open(offset)` must return the blob's bytes from `offset` on.
   */
  /**
   * Asks for push access to `repository` before anything is sent: a token with the push scope and an
   * upload session opened (then cancelled) with it — the registry refuses here a caller it would
   * refuse at the manifest, after "Layer already exists" lines that HEAD requests (pull access) give.
   * Throws the registry's answer (401/403 DENIED …) when push is not allowed.
   */
  async checkPushAccess(repository: string): Promise<void> {
    const scopes = [pushScope(repository)];
    const start = await this.#send({ method: "POST", url: this.#url(`/v2/${repository}/blobs/uploads/`), scopes });
    if (start.statusCode !== 202 && start.statusCode !== 201) throw await errorFrom(start, `push to ${repository}`);
    await start.body.dump();
    const location = header(start, "location");
    if (!location) return;
    // Cancelling the session is a courtesy; a registry that does not support it expires the session.
    const cancel = await this.#send({ method: "DELETE", url: new URL(location, this.baseUrl).toString(), scopes }).catch(() => undefined);
    await cancel?.body.dump();
  }

  async pushBlob(
    repository: string,
    descriptor: Descriptor,
    open: (offset: number) => Readable | Promise<Readable>,
    options: { mountFrom?: string; onProgress?: ProgressListener } = {},
  ): Promise<"exists" | "mounted" | "uploaded"> {
    const { digest, size } = descriptor;
    const { onProgress, mountFrom } = options;
    const scopes = [pushScope(repository), ...(mountFrom && mountFrom !== repository ? [pullScope(mountFrom)] : [])];
    if ((await this.blobSize(repository, digest, scopes)) !== undefined) {
      onProgress?.({ digest, current: size, total: size, status: "exists" });
      return "exists";
    }
    const query = mountFrom && mountFrom !== repository ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}` : "";
    const start = await this.#send({ method: "POST", url: this.#url(`/v2/${repository}/blobs/uploads/${query}`), scopes });
    if (start.statusCode !== 201 && start.statusCode !== 202) throw await errorFrom(start, `push to ${repository}`);
    await start.body.dump();
    if (start.statusCode === 201) {
      onProgress?.({ digest, current: size, total: size, status: "mounted" });
      return "mounted";
    }
    let location = new URL(header(start, "location") as string, this.baseUrl).toString();

    const retries = this.#options.retries ?? 3;
    let offset = 0;
    for (let attempt = 0; offset < size; attempt++) {
      const source = await open(offset);
      let sent = offset;
      const body = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          sent += chunk.byteLength;
          onProgress?.({ digest, current: sent, total: size, status: "uploading" });
          callback(null, chunk);
        },
      });
      // pipeline forwards a failing source as an error on `body`, which aborts the request.
      pipeline(source, body).catch(() => undefined);
      try {
        const response = await this.#send({
          method: "PATCH",
          url: location,
          scopes,
          headers: {
            "content-type": "application/octet-stream",
            "content-length": String(size - offset),
            "content-range": `${offset}-${size - 1}`,
          },
          body,
        });
        await response.body.dump();
        if (response.statusCode === 202) {
          location = new URL(header(response, "location") as string, location).toString();
          offset = size;
          break;
        }
        if (response.statusCode !== 401 && response.statusCode !== 416 && response.statusCode < 500) {
          throw new RegistryResponseError(response.statusCode, [], `upload of ${digest}`);
        }
      } catch (error) {
        body.destroy();
        if (error instanceof RegistryResponseError || attempt >= retries) throw error;
      }
      if (attempt >= retries) throw new Error(`upload of ${digest} failed after ${retries + 1} attempts`);
      // Ask where to resume (distribution-spec end-13).
      const status = await this.#send({ method: "GET", url: location, scopes });
      await status.body.dump();
      if (status.statusCode !== 204) throw new RegistryResponseError(status.statusCode, [], `status of upload ${digest}`);
      location = new URL(header(status, "location") ?? location, location).toString();
      const range = /^0-(\d+)$/.exec(header(status, "range") ?? "");
      offset = range ? Number(range[1]) + 1 : 0;
      // "0-0" is what registries send for an empty session as well as for one byte.
      if (offset === 1) offset = 0;
    }

    const finish = new URL(location);
    finish.searchParams.set("digest", digest);
    const response = await this.#send({ method: "PUT", url: finish.toString(), scopes, headers: { "content-length": "0" }, body: "" });
    if (response.statusCode !== 201) throw await errorFrom(response, `commit upload of ${digest}`);
    await response.body.dump();
    onProgress?.({ digest, current: size, total: size, status: "done" });
    return "uploaded";
  }
}

async function hashPrefix(path: string, length: number, algorithm: Digester["algorithm"]): Promise<Digester> {
  const digester = new Digester(algorithm);
  if (length === 0) return digester;
  for await (const chunk of createReadStream(path, { start: 0, end: length - 1 })) digester.update(chunk as Buffer);
  return digester;
}
