import { ConfigError, parseDuration } from "./config.js";

/**
 * What one client may hold of the registry: upload sessions, connections, and how slowly it may send.
 * Large uploads are bounded by a minimum transfer rate, never by a total time, so a slow but
 * progressing multi-GiB push finishes while a trickle is cut.
 */
export interface RegistryLimits {
  /** Upload sessions that received no request for this long are cancelled (ms). */
  uploadIdleTtlMs: number;
  /** Open upload sessions allowed per repository and per client address; past them, 429. */
  uploadsPerRepository: number;
  uploadsPerClient: number;
  /** Time to receive a request's headers (ms). */
  headersTimeoutMs: number;
  /** How long an idle keep-alive connection is kept between requests (ms). */
  keepAliveTimeoutMs: number;
  /** A connection on which nothing moves either way for this long is closed (ms). */
  idleTimeoutMs: number;
  /** Request bodies slower than this (bytes/s) over a whole window are cut with 408; 0: no floor. */
  minBodyRate: number;
  bodyRateWindowMs: number;
  /** Open connections allowed per client address (not applied behind --trust-proxy: the proxy is one address). */
  connectionsPerClient: number;
}

/** The embedded defaults, the same as the SETTINGS defaults loadLimits parses (config.test.ts checks). */
export const DEFAULT_LIMITS: RegistryLimits = {
  uploadIdleTtlMs: 30 * 60_000,
  uploadsPerRepository: 1000,
  uploadsPerClient: 100,
  headersTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  minBodyRate: 1024,
  bodyRateWindowMs: 30_000,
  connectionsPerClient: 128,
};

/** The flags of config.ts SETTINGS that loadLimits reads. */
export type LimitSetting =
  | "upload-idle-ttl"
  | "max-uploads-per-repo"
  | "max-uploads-per-client"
  | "headers-timeout"
  | "keep-alive-timeout"
  | "idle-timeout"
  | "min-body-rate"
  | "body-rate-window"
  | "max-connections-per-client";

function count(name: LimitSetting, value: string, min: number): number {
  const n = Number(value);
  if (!/^\d{1,9}$/.test(value.trim()) || n < min)
    throw new ConfigError(`--${name} must be an integer ≥ ${min}, not ${JSON.stringify(value)}`);
  return n;
}

function duration(name: LimitSetting, value: string, minMs: number): number {
  const ms = parseDuration(value);
  if (ms < minMs) throw new ConfigError(`--${name} must be at least ${minMs} ms`);
  return ms;
}

/** Reads the limit settings through the config loader's getter. */
export function loadLimits(get: (flag: LimitSetting) => string): RegistryLimits {
  return {
    uploadIdleTtlMs: duration("upload-idle-ttl", get("upload-idle-ttl"), 1000),
    uploadsPerRepository: count("max-uploads-per-repo", get("max-uploads-per-repo"), 1),
    uploadsPerClient: count("max-uploads-per-client", get("max-uploads-per-client"), 1),
    headersTimeoutMs: duration("headers-timeout", get("headers-timeout"), 1000),
    keepAliveTimeoutMs: duration("keep-alive-timeout", get("keep-alive-timeout"), 1000),
    idleTimeoutMs: duration("idle-timeout", get("idle-timeout"), 1000),
    minBodyRate: count("min-body-rate", get("min-body-rate"), 0),
    bodyRateWindowMs: duration("body-rate-window", get("body-rate-window"), 1000),
    connectionsPerClient: count("max-connections-per-client", get("max-connections-per-client"), 1),
  };
}
