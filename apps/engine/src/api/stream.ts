import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import type { JsonMessage, ProgressSink } from "../progress.js";
import type { EngineEnv } from "./types.js";

/**
 * Streams Docker's JSON messages as the work goes (pull, push, load, import): one JSON object per
 * line. Failures after the stream started are reported in-band as `errorDetail`, as dockerd does.
 */
export async function jsonMessageStream(out: ServerResponse, work: (progress: ProgressSink) => Promise<void>): Promise<Response> {
  out.writeHead(200, { "Content-Type": "application/json" });
  const write: ProgressSink = (message: JsonMessage) => {
    // The docker CLI updates a layer's line in place only when the message carries progressDetail.
    const line = message.id && !message.progressDetail ? { ...message, progressDetail: {} } : message;
    if (!out.writableEnded) out.write(`${JSON.stringify(line)}\r\n`);
  };
  try {
    await work(write);
  } catch (error) {
    const message = (error as Error).message;
    write({ errorDetail: { message }, error: message });
  }
  out.end();
  return RESPONSE_ALREADY_SENT;
}

/**
 * Takes the connection over for a raw (TTY) or multiplexed stream, as dockerd hijacks attach and exec
 * start: HTTP 101 when the client asked to upgrade to tcp, else a 200 whose body is the stream.
 */
export function hijack(c: Context<EngineEnv>, tty: boolean): Socket {
  const socket = c.env.incoming.socket;
  // The docker CLI half-closes a hijacked connection it has no stdin for: keep writing after its FIN
  // (the HTTP server would otherwise end the socket).
  socket.removeAllListeners("end");
  socket.allowHalfOpen = true;
  const upgrade = (c.req.header("Upgrade") ?? "").toLowerCase() === "tcp";
  const contentType = tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
  socket.write(
    upgrade
      ? `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`
      : `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\nConnection: close\r\n\r\n`,
  );
  return socket;
}
