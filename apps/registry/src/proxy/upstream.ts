import { readFileSync } from "node:fs";
import { ManifestError } from "@minato/oci";
import { AuthenticationError, ContentDigestError, RegistryClient, RegistryResponseError } from "@minato/registry-client";
import { Agent } from "undici";
import { RegistryError } from "../errors.js";
import type { UpstreamConfig } from "./config.js";

const DOCKER_HUB_HOSTS = new Set(["registry-1.docker.io", "index.docker.io", "docker.io"]);

/** One upstream registry and the namespace it fills. */
export class Upstream {
  readonly client: RegistryClient;
  readonly #dockerHub: boolean;

  constructor(readonly config: UpstreamConfig) {
    const url = new URL(config.url);
    const tls = url.protocol === "https:" && (config.ca || config.insecureSkipVerify);
    this.client = new RegistryClient({
      registry: url.host,
      insecure: url.protocol === "http:",
      ...(config.username ? { credentials: { username: config.username, password: config.password as string } } : {}),
      ...(tls
        ? {
            dispatcher: new Agent({
              connect: { ...(config.ca ? { ca: readFileSync(config.ca) } : {}), rejectUnauthorized: !config.insecureSkipVerify },
            }),
          }
        : {}),
      userAgent: "minato-registry (pull-through cache)",
      retries: 0,
    });
    this.#dockerHub = DOCKER_HUB_HOSTS.has(url.hostname);
  }

  get prefix(): string {
    return this.config.prefix;
  }

  /** Whether `name` lies in this upstream's namespace. */
  owns(name: string): boolean {
    return name.startsWith(`${this.config.prefix}/`);
  }

  /** The repository's name upstream: the prefix removed (`library/` added for Docker Hub's official images). */
  remoteName(name: string): string {
    const remote = name.slice(this.config.prefix.length + 1);
    return this.#dockerHub && !remote.includes("/") ? `library/${remote}` : remote;
  }

  /**
   * The upstream's failure as this registry's error, meaning kept: a 404 stays a 404, a 429 stays
   * TOOMANYREQUESTS with its Retry-After; content that does not match its digest is a bad gateway.
   */
  error(error: unknown, kind: "manifest" | "blob", detail: Record<string, string>): RegistryError {
    const where = `upstream ${this.config.url}`;
    if (error instanceof RegistryError) return error;
    if (error instanceof RegistryResponseError) {
      if (error.status === 404) return new RegistryError(404, kind === "blob" ? "BLOB_UNKNOWN" : "MANIFEST_UNKNOWN", detail);
      if (error.status === 429) {
        return new RegistryError(429, "TOOMANYREQUESTS", detail, `${where} is rate limiting: ${error.message}`, {
          "Retry-After": error.retryAfter ?? "60",
        });
      }
      if (error.status === 401 || error.status === 403) {
        return new RegistryError(502, "DENIED", detail, `${where} refused the proxy's credentials: ${error.message}`);
      }
      return new RegistryError(502, "UNKNOWN", { ...detail, upstreamStatus: error.status }, `${where} failed: ${error.message}`);
    }
    if (error instanceof AuthenticationError) return new RegistryError(502, "DENIED", detail, `${where}: ${error.message}`);
    if (error instanceof ContentDigestError) {
      return new RegistryError(502, "DIGEST_INVALID", detail, `${where} sent content that does not match its digest; nothing was cached`);
    }
    if (error instanceof ManifestError) {
      return new RegistryError(502, "MANIFEST_INVALID", detail, `${where} sent an invalid manifest: ${error.message}`);
    }
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return new RegistryError(503, "UNKNOWN", detail, `${where} is unreachable (${cause}) and the content is not cached`, {
      "Retry-After": "10",
    });
  }
}

/** Whether a failure means "upstream could not answer" (serve a stale copy) rather than "upstream said no". */
export function isUpstreamOutage(error: unknown): boolean {
  if (error instanceof RegistryResponseError) return error.status >= 500 || error.status === 429;
  return !(error instanceof AuthenticationError || error instanceof ContentDigestError || error instanceof ManifestError);
}
