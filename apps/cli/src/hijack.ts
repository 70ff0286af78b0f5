// The client side of a hijacked connection (attach, exec start): the POST upgraded to a raw TCP-like
// stream as the docker CLI does it, then a session on it — the daemon's output to our stdout/stderr
// (raw for a TTY, else the multiplexed stream), our stdin to the daemon, half-closed when it ends.
import { request as httpRequest, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Context, Io } from "./context.js";
import { DaemonError } from "./errors.js";
import { StreamDemuxer } from "./output/stdcopy.js";

export interface HijackedStream {
  socket: Socket;
  /** Bytes that came with the 101 answer, before the socket was handed over. */
  head: Buffer;
  /** True for a TTY's raw stream, false for the multiplexed one. */
  raw: boolean;
}

const isRaw = (contentType: string | string[] | undefined) => String(contentType ?? "").includes("raw-stream");

/** A POST the daemon answers by taking the connection over; other answers become DaemonErrors. */
export async function hijack(context: Context, path: string, query: string, body?: string): Promise<HijackedStream> {
  const version = await context.client.apiVersion();
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      context.client.requestOptions("POST", `/v${version}${path}${query}`, {
        Connection: "Upgrade",
        Upgrade: "tcp",
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
      }),
    );
    request.on("upgrade", (response: IncomingMessage, socket: Socket, head: Buffer) => {
      resolve({ socket, head, raw: isRaw(response.headers["content-type"]) });
    });
    request.on("response", (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8").trim();
        let message = text;
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? text;
        } catch {
          // not JSON
        }
        reject(new DaemonError(response.statusCode ?? 500, message || `request failed with status ${response.statusCode}`));
      });
    });
    request.on("error", (error) => reject(context.client.lostConnection(error, "POST", path)));
    request.end(body);
  });
}

export interface SessionOptions {
  /** Send our stdin (and half-close the connection when it ends). */
  stdin: boolean;
  /** With a TTY: the detach sequence the daemon watches for, to tell a detach from the end of the process. */
  detachKeys?: Buffer;
}

/**
 * Runs the session until the daemon ends the stream: "ended" when the process's output ended,
 * "detached" when the user typed the detach keys (the daemon ends the stream then, too).
 */
export function runSession(io: Io, stream: HijackedStream, options: SessionOptions): Promise<"ended" | "detached"> {
  const { socket } = stream;
  return new Promise((resolve, reject) => {
    let detached = false;
    let matched = 0;
    const demuxer = new StreamDemuxer((name, payload) => {
      if (!(name === "stdout" ? io.stdout : io.stderr).write(payload)) pauseUntilDrained(name === "stdout" ? io.stdout : io.stderr);
    });
    const pauseUntilDrained = (target: NodeJS.WritableStream) => {
      socket.pause();
      target.once("drain", () => socket.resume());
    };
    const onOutput = (chunk: Buffer) => {
      if (stream.raw) {
        if (!io.stdout.write(chunk)) pauseUntilDrained(io.stdout);
        return;
      }
      try {
        demuxer.push(chunk);
      } catch (error) {
        finish(error as Error);
      }
    };
    const onInput = (chunk: Buffer | string) => {
      const data = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      const keys = options.detachKeys;
      if (keys && keys.length > 0) {
        for (const byte of data) {
          matched = byte === keys[matched] ? matched + 1 : byte === keys[0] ? 1 : 0;
          if (matched === keys.length) detached = true;
        }
      }
      if (!socket.destroyed && !socket.writableEnded) socket.write(data);
    };
    const onInputEnd = () => {
      if (!socket.destroyed && !socket.writableEnded) socket.end();
    };
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      if (options.stdin) {
        io.stdin.off("data", onInput);
        io.stdin.off("end", onInputEnd);
        io.stdin.pause();
      }
      socket.destroy();
      if (error) reject(error);
      else resolve(detached ? "detached" : "ended");
    };
    socket.on("data", onOutput);
    socket.on("end", () => finish());
    socket.on("close", () => finish());
    socket.on("error", (error) => finish(error));
    if (stream.head.length > 0) onOutput(stream.head);
    if (options.stdin) {
      io.stdin.on("data", onInput);
      io.stdin.on("end", onInputEnd);
      io.stdin.resume();
    }
  });
}
