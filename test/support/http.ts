import { createHash } from "node:crypto";
import { type Agent, type ClientRequest, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";

/**
 * A small HTTP/1.1 client on node:http. Every request opens its own connection (no keep-alive
 * pool), so a registry that was killed and restarted on the same port never sees a stale socket.
 */

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type RequestBody = Buffer | string | AsyncIterable<Buffer>;

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: RequestBody;
  /** A keep-alive agent to reuse connections; by default each request has its own connection. */
  agent?: Agent;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(", ") : value;
}

async function collect(response: IncomingMessage): Promise<HttpResponse> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return { status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) };
}

/**
 * Starts a request and returns it for the caller to write the body; `response` settles with the
 * whole answer. Without `agent` the request has a connection of its own (`Connection: close`).
 */
export function openRequest(
  method: string,
  url: string,
  headers: Record<string, string> = {},
  agent?: Agent,
): { req: ClientRequest; response: Promise<HttpResponse> } {
  const req = httpRequest(url, { method, headers, agent: agent ?? false });
  const response = new Promise<HttpResponse>((resolve, reject) => {
    req.once("response", (res) => collect(res).then(resolve, reject));
    req.once("error", reject);
  });
  return { req, response };
}

/** Writes `chunk` and waits until it was handed to the socket (backpressure respected). */
export function write(req: ClientRequest, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    req.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}

export async function request(method: string, url: string, options: RequestOptions = {}): Promise<HttpResponse> {
  const headers = { ...options.headers };
  const body = options.body;
  if ((typeof body === "string" || Buffer.isBuffer(body)) && headers["Content-Length"] === undefined) {
    headers["Content-Length"] = String(Buffer.byteLength(body));
  }
  const { req, response } = openRequest(method, url, headers, options.agent);
  // Keep the response promise observed while the body is written, so an early answer is not unhandled.
  response.catch(() => undefined);
  if (body === undefined || typeof body === "string" || Buffer.isBuffer(body)) {
    req.end(body);
  } else {
    for await (const chunk of body) await write(req, chunk);
    req.end();
  }
  return response;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export { header };

/** Client side of the distribution-spec push and pull flows against one registry. */
export class RegistryClient {
  constructor(readonly baseUrl: string) {}

  url(path: string): string {
    return path.startsWith("http") ? path : `${this.baseUrl}${path}`;
  }

  request(method: string, path: string, options: RequestOptions = {}): Promise<HttpResponse> {
    return request(method, this.url(path), options);
  }

  /** POST /v2/<repo>/blobs/uploads/ → the session's Location (202). */
  async startUpload(repo: string): Promise<string> {
    const response = await this.request("POST", `/v2/${repo}/blobs/uploads/`, { headers: { "Content-Length": "0" } });
    expectStatus(response, 202, `POST upload in ${repo}`);
    const location = header(response.headers, "location");
    if (!location) throw new Error("upload session without Location");
    return location;
  }

  /** PATCH one chunk at `offset` with Content-Range; returns the new Location (202). */
  async patchChunk(location: string, offset: number, chunk: Buffer): Promise<string> {
    const response = await this.request("PATCH", location, {
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-Range": `${offset}-${offset + chunk.byteLength - 1}`,
      },
      body: chunk,
    });
    expectStatus(response, 202, `PATCH ${offset}+${chunk.byteLength}`);
    const range = header(response.headers, "range");
    if (range !== `0-${offset + chunk.byteLength - 1}`) throw new Error(`PATCH answered Range ${range}`);
    return header(response.headers, "location") ?? location;
  }

  /** PUT <location>?digest= with no body: publishes the session (201). */
  async finishUpload(location: string, digest: string): Promise<HttpResponse> {
    const separator = location.includes("?") ? "&" : "?";
    return this.request("PUT", `${location}${separator}digest=${encodeURIComponent(digest)}`, { headers: { "Content-Length": "0" } });
  }

  /** The session's persisted size, from `GET <location>` (204, `Range: 0-<last>`). */
  async uploadOffset(location: string): Promise<number> {
    const response = await this.request("GET", location);
    expectStatus(response, 204, "GET upload status");
    return parseUploadRange(header(response.headers, "range"));
  }

  /** Chunked upload of `data` (POST, PATCH each chunk, PUT ?digest=): the blob's digest. */
  async pushBlob(repo: string, data: Buffer, chunkSize = 1024 * 1024): Promise<string> {
    const digest = sha256(data);
    let location = await this.startUpload(repo);
    for (let offset = 0; offset < data.byteLength; offset += chunkSize) {
      location = await this.patchChunk(location, offset, data.subarray(offset, offset + chunkSize));
    }
    const response = await this.finishUpload(location, digest);
    expectStatus(response, 201, `PUT blob ${digest}`);
    if (header(response.headers, "docker-content-digest") !== digest) throw new Error("PUT answered another digest");
    return digest;
  }

  async pushManifest(repo: string, reference: string, manifest: Buffer, mediaType: string): Promise<HttpResponse> {
    return this.request("PUT", `/v2/${repo}/manifests/${reference}`, { headers: { "Content-Type": mediaType }, body: manifest });
  }

  async getBlob(repo: string, digest: string): Promise<HttpResponse> {
    return this.request("GET", `/v2/${repo}/blobs/${digest}`);
  }
}

/**
 * The offset to resume at from an upload `Range` header. The registry sends `0-<last byte>`, so
 * `0-0` is ambiguous between "empty" and "one byte"; the callers here never stop at exactly one byte.
 */
export function parseUploadRange(range: string | undefined): number {
  const match = /^(?:bytes=)?0-(\d+)$/.exec(range ?? "");
  if (!match) throw new Error(`upload status without a valid Range header: ${range}`);
  const last = Number(match[1]);
  return last === 0 ? 0 : last + 1;
}

export function expectStatus(response: HttpResponse, status: number, what: string): void {
  if (response.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${response.status} ${response.body.toString("utf8").slice(0, 500)}`);
  }
}
