import type { Credentials } from "@minato/registry-client";
import type { Context } from "./context.js";

/** Docker Hub's server address in config.json and in AuthConfig, as the docker CLI writes it. */
export const DOCKER_HUB_ADDRESS = "https://index.docker.io/v1/";

const HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/**
 * The registry a login server names: scheme and path dropped (docker's `ConvertToHostname`),
 * Docker Hub's many spellings folded into `docker.io`.
 */
export function registryOfServer(server: string | undefined): string {
  if (!server || server === DOCKER_HUB_ADDRESS) return "docker.io";
  const host = server.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "");
  return HUB_HOSTS.has(host.toLowerCase()) ? "docker.io" : host;
}

/** How a registry is named to the user and in the daemon's AuthConfig. */
export function serverAddress(registry: string): string {
  return registry === "docker.io" ? DOCKER_HUB_ADDRESS : registry;
}

/** swagger `AuthConfig`, as sent to `POST /auth` and in `X-Registry-Auth`. */
export interface AuthConfig {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress?: string;
}

export function authConfigOf(registry: string, credentials: Credentials | undefined): AuthConfig {
  if (!credentials) return {};
  if ("identityToken" in credentials) {
    return {
      ...(credentials.username ? { username: credentials.username } : {}),
      identitytoken: credentials.identityToken,
      serveraddress: serverAddress(registry),
    };
  }
  return { username: credentials.username, password: credentials.password, serveraddress: serverAddress(registry) };
}

/** `X-Registry-Auth`: the AuthConfig JSON in URL-safe base64 with padding (Go's `base64.URLEncoding`). */
export function encodeAuthConfig(config: AuthConfig): string {
  return Buffer.from(JSON.stringify(config)).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

/** The `X-Registry-Auth` header for a registry: the stored login, or an empty AuthConfig as docker sends. */
export async function registryAuthHeader(context: Context, registry: string): Promise<string> {
  return encodeAuthConfig(authConfigOf(registry, await context.credentials.get(registry)));
}
