import type { Credentials } from "@minato/registry-client";
import { badRequest } from "./errors.js";

/** Docker's AuthConfig (swagger `AuthConfig`), as sent in `X-Registry-Auth` and to `POST /auth`. */
export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export function credentialsFrom(config: AuthConfig): Credentials | undefined {
  if (config.identitytoken) return { identityToken: config.identitytoken };
  if (config.username) return { username: config.username, password: config.password ?? "" };
  if (config.auth) {
    const decoded = Buffer.from(config.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** Decodes `X-Registry-Auth`: base64url (or standard base64) JSON of an AuthConfig. */
export function registryAuthHeader(value: string | undefined): Credentials | undefined {
  if (!value) return undefined;
  try {
    const json = Buffer.from(value.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8");
    return credentialsFrom(JSON.parse(json) as AuthConfig);
  } catch {
    throw badRequest("invalid X-Registry-Auth header");
  }
}
