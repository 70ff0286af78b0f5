import { readFileSync } from "node:fs";
import { ConfigError, parseDuration } from "../config.js";

/**
 * Pull-through cache namespaces, read from a JSON file (`--proxy-config`): each maps a repository
 * prefix to an upstream registry. A file rather than flags because each upstream carries
 * credentials and TLS options of its own.
 *
 *   { "upstreams": [
 *       { "prefix": "hub", "url": "https://registry-1.docker.io", "tagTtl": "10m" },
 *       { "prefix": "mirror", "url": "https://registry.internal:5000", "username": "ci",
 *         "passwordEnv": "MIRROR_PASSWORD", "ca": "/etc/minato/internal-ca.pem" } ] }
 *
 * `hub/library/alpine` is then fetched as `library/alpine` from Docker Hub (and `hub/alpine` as
 * `library/alpine` too, Docker Hub's shorthand for official images).
 */
export interface UpstreamConfig {
  /** Repository prefix served from this upstream, without trailing slash (`hub`, `cache/ghcr`). */
  prefix: string;
  /** `http://` or `https://` base URL (scheme, host, port). */
  url: string;
  username?: string;
  password?: string;
  /** Tag freshness: within it a cached tag is served without asking upstream (ms). */
  tagTtlMs: number;
  /** PEM file of the CA(s) that sign the upstream's certificate. */
  ca?: string;
  /** Skip TLS certificate verification (testing only). */
  insecureSkipVerify: boolean;
}

export const DEFAULT_TAG_TTL_MS = 5 * 60_000;

const KEYS = new Set(["prefix", "url", "username", "password", "passwordEnv", "passwordFile", "tagTtl", "ca", "insecureSkipVerify"]);
const PREFIX = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

export function loadProxyConfig(path: string, env: NodeJS.ProcessEnv = process.env): UpstreamConfig[] {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`cannot read proxy config ${path}: ${(error as Error).message}`);
  }
  return parseProxyConfig(document, path, env);
}

export function parseProxyConfig(document: unknown, source: string, env: NodeJS.ProcessEnv = process.env): UpstreamConfig[] {
  const fail = (message: string): never => {
    throw new ConfigError(`proxy config ${source}: ${message}`);
  };
  const upstreams = (document as { upstreams?: unknown })?.upstreams;
  if (!Array.isArray(upstreams) || Object.keys(document as object).some((k) => k !== "upstreams")) {
    fail(`must be an object with one key, "upstreams": a list`);
  }
  const result: UpstreamConfig[] = [];
  for (const [index, entry] of (upstreams as unknown[]).entries()) {
    const where = `upstreams[${index}]`;
    if (typeof entry !== "object" || entry === null) fail(`${where} must be an object`);
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) if (!KEYS.has(key)) fail(`${where}: unknown key ${JSON.stringify(key)}`);
    const str = (key: string): string | undefined => {
      const value = e[key];
      if (value !== undefined && typeof value !== "string") fail(`${where}.${key} must be a string`);
      return value as string | undefined;
    };
    const prefix = str("prefix")?.replace(/\/+$/, "");
    if (!prefix || !PREFIX.test(prefix)) fail(`${where}.prefix must be a repository name path such as "hub" or "cache/ghcr"`);
    const url = str("url");
    let parsed: URL | undefined;
    try {
      parsed = new URL(url ?? "");
    } catch {
      fail(`${where}.url must be an http:// or https:// URL`);
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || (parsed.pathname !== "/" && parsed.pathname !== "") || parsed.search) {
      fail(`${where}.url must be an http:// or https:// URL with no path (the registry's base)`);
    }
    const sources = ["password", "passwordEnv", "passwordFile"].filter((k) => e[k] !== undefined);
    if (sources.length > 1) fail(`${where}: give one of password, passwordEnv, passwordFile`);
    let password = str("password");
    const passwordEnv = str("passwordEnv");
    if (passwordEnv !== undefined) {
      password = env[passwordEnv];
      if (password === undefined) fail(`${where}.passwordEnv names ${passwordEnv}, which is not set`);
    }
    const passwordFile = str("passwordFile");
    if (passwordFile !== undefined) {
      try {
        password = readFileSync(passwordFile, "utf8").trim();
      } catch (error) {
        fail(`${where}.passwordFile: ${(error as Error).message}`);
      }
    }
    const username = str("username");
    if (Boolean(username) !== Boolean(password)) fail(`${where}: username and a password go together`);
    const ca = str("ca");
    if (ca !== undefined) {
      try {
        readFileSync(ca);
      } catch (error) {
        fail(`${where}.ca: ${(error as Error).message}`);
      }
    }
    if (e.insecureSkipVerify !== undefined && typeof e.insecureSkipVerify !== "boolean")
      fail(`${where}.insecureSkipVerify must be a boolean`);
    const ttl = str("tagTtl");
    let tagTtlMs = DEFAULT_TAG_TTL_MS;
    if (ttl !== undefined) {
      try {
        tagTtlMs = parseDuration(ttl);
      } catch (error) {
        fail(`${where}.tagTtl: ${(error as Error).message}`);
      }
    }
    for (const other of result) {
      const p = prefix as string;
      if (p === other.prefix || p.startsWith(`${other.prefix}/`) || other.prefix.startsWith(`${p}/`)) {
        fail(`${where}.prefix ${p} overlaps ${other.prefix}`);
      }
    }
    result.push({
      prefix: prefix as string,
      url: (parsed as URL).origin,
      ...(username ? { username, password: password as string } : {}),
      tagTtlMs,
      ...(ca ? { ca } : {}),
      insecureSkipVerify: e.insecureSkipVerify === true,
    });
  }
  return result;
}
