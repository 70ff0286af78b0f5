import {
  Agent,
  type RequestOptions as HttpRequestOptions,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
} from "node:http";
import type { Readable } from "node:stream";
import { CliError, DaemonError } from "./errors.js";

/** Where minatod listens unless `-H/--host` or `MINATO_HOST` say otherwise. */
export const DEFAULT_HOST = "unix:///run/minato/minato.sock";

/**
 * The newest Docker Engine API version this client speaks (ref/docker-engine-api/swagger.yaml,
 * `basePath`). Like the docker CLI it negotiates down to the daemon's `Api-Version` from `/_ping`.
 */
export const CLIENT_API_VERSION = "1.56";

/** The daemon address: the `--host` flag, else `MINATO_HOST`, else the default socket. */
export function resolveHost(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag || env.MINATO_HOST || DEFAULT_HOST;
}

/** The socket path of a `unix://PATH` address; other schemes are not spoken by minatod. */
export function socketPathOf(host: string): string {
  const match = /^unix:\/\/(.+)$/.exec(host);
  if (!match) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(host)?.[1];
    throw new CliError(
      scheme
        ? `unsupported protocol scheme "${scheme}" in daemon address ${host}: minatod listens on a unix socket (unix:///path/to/minato.sock)`
        : `invalid daemon address "${host}": expected unix:///path/to/minato.sock`,
    );
  }
  return match[1] as string;
}

function compareVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split(".").map(Number);
  const [bMajor = 0, bMinor = 0] = b.split(".").map(Number);
  return aMajor - bMajor || aMinor - bMinor;
}

/** A daemon's answer; the body is read as a stream or whole (`text`, `dump`). */
export interface EngineResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: ResponseBody;
}

export type ResponseBody = IncomingMessage & {
  /** The whole body as UTF-8 text. */
  text(): Promise<string>;
  /** Reads the body to its end, discarding it (so the connection can be reused). */
  dump(): Promise<void>;
};

function responseBody(message: IncomingMessage): ResponseBody {
  const read = async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of message) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  return Object.assign(message, {
    text: async () => (await read()).toString("utf8"),
    dump: async () => {
      await read();
    },
  });
}

export type QueryValue = string | number | boolean | undefined | string[];

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  body?: string | Buffer | Readable;
}

/** Builds a query string; arrays repeat their key (`names=a&names=b`), undefined values are left out. */
export function queryString(query: Record<string, QueryValue> | undefined): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) params.append(key, item);
    else params.append(key, typeof value === "boolean" ? (value ? "1" : "0") : String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

const CONNECT_ERRORS = new Set(["ENOENT", "ECONNREFUSED", "ENOTSOCK"]);

function errnoOf(error: unknown): string | undefined {
  let current = error as { code?: string; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 4; depth++) {
    if (current.code && /^E[A-Z]+$/.test(current.code)) return current.code;
    current = current.cause as typeof current;
  }
  return undefined;
}

/**
 * A client of minatod's Docker Engine API over its unix socket (node:http, which a CLI process has
 * loaded anyway: no HTTP library to load on every start). Every call goes to a
 * versioned path (`/v1.xx/...`); the version is negotiated once with `/_ping`. Error answers become
 * {@link DaemonError}s carrying the daemon's `message`; a socket that is missing or refuses becomes
 * docker's "Cannot connect" line.
 */
export class EngineClient {
  readonly socketPath: string;
  #agent: Agent | undefined;
  #version: Promise<string> | undefined;

  constructor(readonly host: string) {
    this.socketPath = socketPathOf(host);
  }

  get #keepAlive(): Agent {
    // No timeouts: a pull may unpack a big layer for minutes between two messages.
    this.#agent ??= new Agent({ keepAlive: true });
    return this.#agent;
  }

  /**
   * A connection the daemon dropped mid-call (it crashed or was stopped) as one line naming the
   * call; other errors unchanged.
   */
  lostConnection(error: unknown, method: string, path: string): Error {
    const code = (error as { code?: string }).code ?? errnoOf(error);
    if (code === "ECONNRESET" || code === "EPIPE" || code === "ERR_STREAM_PREMATURE_CLOSE") {
      return new CliError(`the Minato daemon at ${this.host} closed the connection during ${method} ${path}: ${(error as Error).message}`);
    }
    return error as Error;
  }

  #connectError(error: unknown, method: string, path: string): Error {
    const code = errnoOf(error);
    if (code === "EACCES" || code === "EPERM") {
      return new CliError(`permission denied while trying to connect to the Minato daemon socket at ${this.host}`);
    }
    if (code && CONNECT_ERRORS.has(code)) return new CliError(`Cannot connect to the Minato daemon at ${this.host}. Is minatod running?`);
    return this.lostConnection(error, method, path.replace(/^\/v[\d.]+/, ""));
  }

  /** node:http options for a request on the daemon's socket; hijacked connections pass no keep-alive agent. */
  requestOptions(method: string, path: string, headers: OutgoingHttpHeaders = {}, agent?: Agent): HttpRequestOptions {
    const options: HttpRequestOptions & { servername: string } = {
      socketPath: this.socketPath,
      ...(agent ? { agent } : {}),
      // No TLS on a unix socket: without this, http.Agent works a TLS server name out of the Host
      // header, and its first IPv6 check compiles a large regex (~5 ms of every CLI start).
      servername: "",
      method,
      path,
      headers: { Host: "localhost", ...headers },
    };
    return options;
  }

  #send(method: string, path: string, options: RequestOptions = {}): Promise<EngineResponse> {
    return new Promise((resolve, reject) => {
      const target = this.requestOptions(method, `${path}${queryString(options.query)}`, options.headers, this.#keepAlive);
      const req = request(target, (message) =>
        resolve({ statusCode: message.statusCode ?? 0, headers: message.headers, body: responseBody(message) }),
      );
      req.once("error", (error) => reject(this.#connectError(error, method, path)));
      const body = options.body;
      if (body === undefined || typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
      else {
        body.once("error", (error) => req.destroy(error));
        body.pipe(req);
      }
    });
  }

  /** `GET /_ping`: the daemon's API version and OS type from the response headers. */
  async ping(): Promise<{ apiVersion: string | undefined; osType: string | undefined }> {
    const response = await this.#send("GET", "/_ping");
    await response.body.dump();
    if (response.statusCode >= 400) throw new DaemonError(response.statusCode, `ping failed with status ${response.statusCode}`);
    const header = (name: string) => {
      const value = response.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    return { apiVersion: header("api-version"), osType: header("ostype") };
  }

  /** The API version used for calls: ours, or the daemon's when it is older. */
  apiVersion(): Promise<string> {
    this.#version ??= this.ping().then(({ apiVersion }) =>
      apiVersion && /^\d+\.\d+$/.test(apiVersion) && compareVersions(apiVersion, CLIENT_API_VERSION) < 0 ? apiVersion : CLIENT_API_VERSION,
    );
    return this.#version;
  }

  /** Calls `method path` on the negotiated API version; throws {@link DaemonError} for 4xx/5xx answers. */
  async call(method: string, path: string, options: RequestOptions = {}): Promise<EngineResponse> {
    const version = await this.apiVersion();
    const response = await this.#send(method, `/v${version}${path}`, options);
    if (response.statusCode >= 400) throw new DaemonError(response.statusCode, await errorMessage(response));
    return response;
  }

  /** A call whose answer is JSON. */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.call(method, path, options);
    const text = await response.body.text();
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch {
      throw new CliError(`invalid JSON from the daemon for ${method} ${path}: ${text.slice(0, 200)}`);
    }
  }

  /** Closes the connections to the daemon, letting the process exit. */
  async close(): Promise<void> {
    this.#agent?.destroy();
    this.#agent = undefined;
  }
}

/** The `message` of a Docker API error body, or its text. */
async function errorMessage(response: EngineResponse): Promise<string> {
  const text = (await response.body.text().catch(() => "")).trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // Not JSON: the text itself is the message.
  }
  return text || `request failed with status ${response.statusCode}`;
}
