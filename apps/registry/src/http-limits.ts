import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { Server as HttpsServer } from "node:https";
import type { Socket } from "node:net";
import type { ErrorCode } from "./errors.js";
import { hasBody } from "./http.js";
import type { RegistryLimits } from "./limits.js";
import type { Logger } from "./logger.js";

/**
 * Connection-level defences of the HTTP server: timeouts for headers, idle connections and keep-alive;
 * a minimum transfer rate on request bodies (never a total time, so a slow but progressing multi-GiB
 * upload finishes while a trickle is cut); and a cap on open connections per client address.
 */
export interface HttpGuard {
  /** Options for http(s).createServer: how often Node checks the headers timeout. */
  serverOptions: { connectionsCheckingInterval: number };
  /** Applies timeouts and installs the listeners on the server once it exists. */
  attach(server: Server): void;
  /** Whether a connection was over its address's cap: its request is answered 429 and it is closed. */
  refused(socket: Socket): boolean;
  stop(): void;
}

interface TrackedBody {
  req: IncomingMessage;
  res: ServerResponse;
  socket: Socket;
  /** Bytes read from the socket at the start of the current window, and when it started. */
  bytesAtStart: number;
  windowStart: number;
}

export function createHttpGuard(limits: RegistryLimits, options: { trustProxy: boolean; logger: Logger }): HttpGuard {
  const open = new Map<string, number>();
  const refusedSockets = new WeakSet<Socket>();
  const bodies = new Set<TrackedBody>();
  let ticker: NodeJS.Timeout | undefined;

  const onConnection = (socket: Socket) => {
    // Behind a trusted proxy every connection comes from the proxy: the cap is the proxy's job there.
    if (options.trustProxy) return;
    const address = socket.remoteAddress ?? "unknown";
    const count = open.get(address) ?? 0;
    if (count >= limits.connectionsPerClient) {
      refusedSockets.add(socket);
      // Its first request is answered 429; one that sends nothing is not kept waiting for long.
      socket.setTimeout(Math.min(5000, limits.headersTimeoutMs), () => socket.destroy());
      options.logger.warn({ client: address, limit: limits.connectionsPerClient }, "connection refused: too many from this address");
      return;
    }
    open.set(address, count + 1);
    socket.once("close", () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (limits.minBodyRate === 0 || !hasBody(req)) return;
    const body: TrackedBody = { req, res, socket: req.socket, bytesAtStart: req.socket.bytesRead, windowStart: Date.now() };
    bodies.add(body);
    const untrack = () => bodies.delete(body);
    req.once("end", untrack);
    req.once("close", untrack);
  };

  const tickMs = Math.max(100, Math.min(1000, Math.floor(limits.bodyRateWindowMs / 4)));
  let lastTick = Date.now();
  const checkRates = () => {
    const now = Date.now();
    const stalled = now - lastTick > 2 * tickMs + 250;
    lastTick = now;
    for (const body of bodies) {
      const { req, res, socket } = body;
      if (req.complete || socket.destroyed) {
        bodies.delete(body);
        continue;
      }
      // Bytes waiting for the registry to read them (storage is slower than the client), or this process
      // was not running for a while (an overloaded host): not the client's fault; the window restarts.
      if (req.readableLength > 0 || stalled) {
        body.bytesAtStart = socket.bytesRead;
        body.windowStart = now;
        continue;
      }
      const elapsed = now - body.windowStart;
      if (elapsed < limits.bodyRateWindowMs) continue;
      const received = socket.bytesRead - body.bytesAtStart;
      if (received >= (limits.minBodyRate * elapsed) / 1000) {
        body.bytesAtStart = socket.bytesRead;
        body.windowStart = now;
        continue;
      }
      bodies.delete(body);
      options.logger.info(
        { client: socket.remoteAddress, method: req.method, path: req.url?.slice(0, 200), received, ms: elapsed },
        "request body too slow; connection cut",
      );
      if (res.headersSent) socket.destroy();
      else cut(socket, req.url ?? "", limits);
    }
  };

  return {
    serverOptions: { connectionsCheckingInterval: Math.max(250, Math.min(30_000, Math.floor(limits.headersTimeoutMs / 4))) },
    attach(server) {
      // No total request time: the body rate floor bounds slow bodies instead.
      server.requestTimeout = 0;
      server.headersTimeout = limits.headersTimeoutMs;
      server.keepAliveTimeout = limits.keepAliveTimeoutMs;
      // Inactivity in both directions; Node destroys the socket when it fires.
      server.timeout = limits.idleTimeoutMs;
      // Under TLS the request's socket is the TLS one, which exists once the handshake is done.
      server.prependListener(server instanceof HttpsServer ? "secureConnection" : "connection", onConnection);
      server.prependListener("request", onRequest);
      if (limits.minBodyRate > 0) {
        lastTick = Date.now();
        ticker = setInterval(checkRates, tickMs);
        ticker.unref();
      }
    },
    refused: (socket) => refusedSockets.has(socket),
    stop() {
      if (ticker) clearInterval(ticker);
      bodies.clear();
    },
  };
}

/** Answers 408 straight on the socket (as Node's own request timeout does) and closes it. */
function cut(socket: Socket, url: string, limits: RegistryLimits): void {
  // The spec's codes: the upload or manifest being sent is what became invalid.
  const code: ErrorCode = url.includes("/blobs/uploads/")
    ? "BLOB_UPLOAD_INVALID"
    : url.includes("/manifests/")
      ? "MANIFEST_INVALID"
      : "UNSUPPORTED";
  const message = `request body too slow: under ${limits.minBodyRate} bytes/s for ${limits.bodyRateWindowMs / 1000}s`;
  const body = JSON.stringify({ errors: [{ code, message }] });
  socket.end(
    `HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  socket.destroySoon();
  setTimeout(() => socket.destroy(), 1000).unref();
}
