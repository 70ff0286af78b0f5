import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import { failedStreams } from "../metrics.js";
import type { JsonMessage, ProgressSink } from "../progress.js";
import { badRequest } from "./errors.js";
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
    failedStreams.add(out);
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
  // The connection is ours from here: the HTTP server's parser must not read what the client sends
  // next (stdin). Node's server reads the socket in C++ (parser.consume) and in a `data` listener;
  // both are undone, as Node does itself for an `upgrade`. Paused until the attach reads stdin.
  const parser = (socket as Socket & { parser?: { _consumed?: boolean; unconsume?: () => void } }).parser;
  if (parser?._consumed) {
    parser.unconsume?.();
    parser._consumed = false;
  }
  socket.removeAllListeners("data");
  socket.setTimeout(0);
  // The docker CLI half-closes a hijacked connection it has no stdin for: keep writing after its FIN
  // (the HTTP server would otherwise end the socket).
  socket.removeAllListeners("end");
  socket.allowHalfOpen = true;
  // Input is queued from now on: the request's own stream may resume the socket at any time, and
  // what the client sends before the attach is ready (stdin of `run -i`) must not be lost.
  inputs.set(socket, new HijackedInput(socket));
  const upgrade = (c.req.header("Upgrade") ?? "").toLowerCase() === "tcp";
  const contentType = tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
  socket.write(
    upgrade
      ? `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`
      : `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\nConnection: close\r\n\r\n`,
  );
  return socket;
}

/** The `h` and `w` query parameters of the resize endpoints, required integers as moby parses them. */
export function terminalSize(c: Context<EngineEnv>): { height: number; width: number } {
  const parse = (name: string) => {
    const text = c.req.query(name) ?? "";
    if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535)
      throw badRequest(`invalid ${name === "h" ? "height" : "width"} ${JSON.stringify(text)}: expected an integer from 0 to 65535`);
    return Number(text);
  };
  return { height: parse("h"), width: parse("w") };
}

const inputs = new WeakMap<Socket, HijackedInput>();

/** What the client of a hijacked connection sends, kept until a consumer takes it. */
export class HijackedInput {
  #chunks: Buffer[] = [];
  #size = 0;
  #ended = false;
  #onData: ((chunk: Buffer) => void) | undefined;
  #onEnd: (() => void) | undefined;

  constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      if (this.#onData) return this.#onData(chunk);
      this.#chunks.push(chunk);
      this.#size += chunk.length;
      // Backpressure on a client that sends much before anyone reads it.
      if (this.#size > 1024 * 1024) socket.pause();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#onEnd?.();
    });
  }

  /** Hands the queued and all further input to `onData`, and the client's end of input to `onEnd`. */
  consume(onData: (chunk: Buffer) => void, onEnd: () => void): void {
    this.#onData = onData;
    this.#onEnd = onEnd;
    for (const chunk of this.#chunks.splice(0)) onData(chunk);
    this.#size = 0;
    this.socket.resume();
    if (this.#ended) onEnd();
  }

  /** Drops input from now on. */
  stop(): void {
    this.#onData = () => undefined;
    this.#onEnd = () => undefined;
  }
}

/** The input queue of a connection taken over by hijack(). */
export function hijackedInput(socket: Socket): HijackedInput {
  const input = inputs.get(socket);
  if (!input) throw new Error("not a hijacked connection");
  return input;
}
