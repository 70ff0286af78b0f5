import type { Ctx } from "../http.js";

/** Hosts as they may appear in a Host header: names, IPv4, bracketed IPv6, with an optional port. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

const first = (value: string | undefined): string | undefined => value?.split(",")[0]?.trim() || undefined;

/**
 * The origin clients reach the registry at, for the realm of the built-in token service: the
 * configured public URL, else the request's Host (and, behind a trusted proxy, X-Forwarded-Proto and
 * X-Forwarded-Host) with the scheme the server speaks.
 */
export function requestOrigin(c: Ctx, options: { publicUrl?: string; trustProxy: boolean; tls: boolean }): string {
  if (options.publicUrl) return options.publicUrl;
  const forwardedProto = options.trustProxy ? first(c.req.header("x-forwarded-proto"))?.toLowerCase() : undefined;
  const proto = forwardedProto === "https" || forwardedProto === "http" ? forwardedProto : options.tls ? "https" : "http";
  const candidates = [options.trustProxy ? first(c.req.header("x-forwarded-host")) : undefined, c.req.header("host")];
  const host = candidates.find((h) => h !== undefined && HOST.test(h)) ?? hostOfSocket(c);
  return `${proto}://${host}`;
}

function hostOfSocket(c: Ctx): string {
  const socket = c.env.incoming.socket;
  const address = socket.localAddress ?? "127.0.0.1";
  return `${address.includes(":") ? `[${address}]` : address}:${socket.localPort}`;
}

/** The client's address; behind a trusted proxy the one it appended last to X-Forwarded-For. */
export function clientAddress(c: Ctx, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = c.req.header("x-forwarded-for")?.split(",").at(-1)?.trim();
    if (forwarded) return forwarded;
  }
  return c.env.incoming.socket.remoteAddress ?? "unknown";
}
