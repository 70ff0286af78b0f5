// Attach and interactive exec: a hijacked client connection joined to a conmon attach socket
// (@minato/runtime's bridge). Output goes to the client as it is read — raw for a TTY, else the
// multiplexed stream (swagger "ContainerAttach": 8-byte header, 1 stdout, 2 stderr) — and the client's
// bytes go to the process's stdin. With a TTY the input is watched for the detach keys (moby reads
// them from a TTY's input only), which end the attach and leave the process running.
import type { Socket } from "node:net";
import type { AttachConnection } from "@minato/runtime";
import { badRequest } from "../api/errors.js";
import { hijackedInput } from "../api/stream.js";
import { multiplexFrame } from "./logs.js";
import type { ContainerManager } from "./manager.js";

export const DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q";

/**
 * Docker's detach key syntax: comma-separated keys, each a single character or `ctrl-<key>` where
 * key is a letter or one of @ [ \ ] ^ _ (moby's pkg/term ToBytes).
 */
export function parseDetachKeys(spec: string): Buffer {
  const bytes: number[] = [];
  for (const key of spec.split(",")) {
    const lower = key.toLowerCase();
    if (lower.startsWith("ctrl-") && key.length === 6) {
      const ch = lower.charCodeAt(5);
      if (ch >= 0x61 && ch <= 0x7a) bytes.push(ch - 0x60);
      else if ("@[\\]^_".includes(lower[5]!)) bytes.push(lower.charCodeAt(5) - 0x40);
      else throw badRequest(`Invalid escape keys (${spec}) provided`);
    } else if (key.length === 1) {
      bytes.push(key.charCodeAt(0));
    } else {
      throw badRequest(`Invalid escape keys (${spec}) provided`);
    }
  }
  return Buffer.from(bytes);
}

export interface PipeOptions {
  tty: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Forward the client's bytes to the process (only where it has a stdin). */
  stdin: boolean;
  /** The escape sequence that detaches (TTY only); empty for none. */
  detachKeys?: Buffer;
  /** Awaited after the output ended and before the client's connection is ended (e.g. until the exit code is recorded). */
  beforeEnd?: () => Promise<unknown>;
}

/**
 * Joins `client` (a hijacked connection) and `connection`. Resolves once the process's output has
 * ended (conmon closed the socket) and was handed to the client, or the client went away, or it
 * detached; the client connection is ended either way.
 */
export function pipeAttach(client: Socket, connection: AttachConnection, options: PipeOptions): Promise<"ended" | "detached" | "gone"> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (how: "ended" | "detached" | "gone") => {
      if (settled) return;
      settled = true;
      input.stop();
      if (how !== "ended") connection.close();
      if (!client.destroyed) client.end();
      resolve(how);
    };
    connection.onOutput((stream, data) => {
      if (client.destroyed || !(stream === "stdout" ? options.stdout : options.stderr)) return;
      const ok = client.write(options.tty ? data : multiplexFrame(stream === "stdout" ? 1 : 2, data));
      if (!ok) {
        // A slow client: stop reading the socket (conmon keeps the rest) until it caught up.
        connection.pause();
        client.once("drain", () => connection.resume());
      }
    });
    const keys = options.tty && options.detachKeys && options.detachKeys.length > 0 ? options.detachKeys : undefined;
    let matched = 0;
    const onInput = (chunk: Buffer) => {
      if (!options.stdin) return;
      if (!keys) {
        connection.write(chunk);
        return;
      }
      // Bytes that may start the detach sequence are held back until it is complete or broken.
      let from = 0;
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] === keys[matched]) {
          if (matched === 0 && i > from) connection.write(chunk.subarray(from, i));
          matched++;
          if (matched === keys.length) {
            finish("detached");
            return;
          }
          from = i + 1;
        } else if (matched > 0) {
          connection.write(keys.subarray(0, matched));
          matched = 0;
          from = i;
          i--;
        }
      }
      if (matched === 0 && from < chunk.length) connection.write(chunk.subarray(from));
    };
    // hijack() queued what the client sent before this point.
    const input = hijackedInput(client);
    input.consume(onInput, () => {
      // The client has no more input (the docker CLI half-closes when its stdin ends): end the
      // process's stdin too; conmon keeps it open when the container runs with OpenStdin and not StdinOnce.
      if (options.stdin) connection.endInput();
    });
    client.on("error", () => client.destroy());
    client.on("close", () => finish("gone"));
    void connection.ended.then(async () => {
      await options.beforeEnd?.().catch(() => undefined);
      finish("ended");
    });
  });
}

/**
 * The attach socket of the container's current run, or of its next one: a created or stopped
 * container is attached when it starts (`docker run`/`start -a` attach first), between conmon's
 * create and the process's start. Undefined when the client leaves, the start fails or the container
 * is removed first.
 */
export function containerAttachment(manager: ContainerManager, id: string, client: Socket): Promise<AttachConnection | undefined> {
  const connectNow = (): AttachConnection | undefined => {
    try {
      return manager.runtime.attach(id);
    } catch {
      return undefined;
    }
  };
  return new Promise((resolve) => {
    let settled = false;
    const settle = (connection: AttachConnection | undefined) => {
      if (settled) {
        connection?.close();
        return;
      }
      settled = true;
      cancel();
      clearInterval(removed);
      client.off("close", onClose);
      resolve(connection);
    };
    const cancel = manager.beforeNextStart(id, (started) => settle(started ? connectNow() : undefined));
    const onClose = () => settle(undefined);
    client.once("close", onClose);
    const removed = setInterval(() => {
      if (!manager.find(id)) settle(undefined);
    }, 500);
    // A running container's conmon listens already (also one whose start is under way right now); a
    // stopped one's conmon may still be draining its last output, which is not this attach's business.
    const status = manager.find(id)?.status;
    if (status === "running" || status === "created") {
      const connection = connectNow();
      if (connection) settle(connection);
    }
  });
}
