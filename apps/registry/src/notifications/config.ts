import { readFileSync } from "node:fs";
import { ConfigError } from "@minato/settings";
import { z } from "zod";

export const EVENT_ACTIONS = ["push", "pull", "mount", "delete"] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

/** One webhook receiver (README "Observability"). Durations in ms. */
export interface Endpoint {
  name: string;
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** First retry delay; doubles per consecutive failure up to maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
  /** HMAC-SHA256 key: the body's signature goes in `X-Minato-Signature: sha256=<hex>`. */
  secret?: string;
  /** Only these actions / target media types; absent: all. */
  actions?: EventAction[];
  mediaTypes?: string[];
}

const DURATION = /^(\d+)(ms|s|m|h)$/;
const duration = z
  .string()
  .regex(DURATION, "a duration such as 500ms, 5s, 2m")
  .transform((text) => {
    const [, n, unit] = DURATION.exec(text) as RegExpExecArray;
    return Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as "ms"];
  });

const ENDPOINT = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "letters, digits, . _ - (at most 64)"),
  url: z.url({ protocol: /^https?$/ }),
  headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "a header name"), z.string()).default({}),
  timeout: duration.default(5000),
  backoff: duration.default(1000),
  maxBackoff: duration.default(300_000),
  secret: z.string().min(16, "at least 16 characters").optional(),
  actions: z.array(z.enum(EVENT_ACTIONS)).min(1).optional(),
  mediaTypes: z.array(z.string().min(1)).min(1).optional(),
});

const DOCUMENT = z.strictObject({ endpoints: z.array(ENDPOINT) });

/** Parses the notifications file's document; names must be unique (each keeps its own cursor). */
export function parseNotifications(document: unknown, origin: string): Endpoint[] {
  const result = DOCUMENT.safeParse(document);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(`${origin}: ${issue?.path.join(".") || "document"}: ${issue?.message}`);
  }
  const names = new Set<string>();
  return result.data.endpoints.map(({ timeout, backoff, maxBackoff, ...endpoint }) => {
    if (names.has(endpoint.name)) throw new ConfigError(`${origin}: endpoint name ${JSON.stringify(endpoint.name)} is used twice`);
    names.add(endpoint.name);
    if (backoff > maxBackoff) throw new ConfigError(`${origin}: endpoint ${endpoint.name}: backoff exceeds maxBackoff`);
    return { ...endpoint, timeoutMs: timeout, backoffMs: backoff, maxBackoffMs: maxBackoff };
  });
}

export function loadNotifications(path: string): Endpoint[] {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`cannot read notifications file ${path}: ${(error as Error).message}`);
  }
  return parseNotifications(document, path);
}
