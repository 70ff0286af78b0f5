// Attaching to a process conmon monitors: its attach socket (SOCK_SEQPACKET, bridged to a stream
// socket by the native addon in native/attach_bridge.c) carries the process's output out and the
// client's input in; its control FIFO `ctl` takes terminal resizes.
import { existsSync } from "node:fs";
import { constants, open } from "node:fs/promises";
import { createRequire } from "node:module";
import { Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { RuntimeError } from "./errors.js";

interface BridgeAddon {
  connect(path: string): number;
}

const addonPath = fileURLToPath(new URL("../build/Release/attach_bridge.node", import.meta.url));
let addon: BridgeAddon | undefined;

function bridge(): BridgeAddon {
  if (addon) return addon;
  if (!existsSync(addonPath)) {
    throw new RuntimeError(
      "UNSUPPORTED_HOST",
      `@minato/runtime: native addon missing at ${addonPath} — build it with \`npm rebuild -w @minato/runtime\` (needs python3, make, gcc and Node headers)`,
    );
  }
  addon = createRequire(import.meta.url)(addonPath) as BridgeAddon;
  return addon;
}

/** conmon's pipe bytes on the attach socket. */
const PIPE_STDOUT = 2;
const PIPE_STDERR = 3;
const FRAME_HEADER = 5;

export type OutputStream = "stdout" | "stderr";

/**
 * One client of a conmon attach socket. `onOutput` gets what the process writes (a TTY's output is all
 * `stdout`); `write` feeds its stdin; `endInput` half-closes, which makes conmon close the process's
 * stdin (unless it runs with --leave-stdin-open). `ended` resolves when conmon closes the socket —
 * the process is gone — or the connection is destroyed.
 */
export class AttachConnection {
  readonly ended: Promise<void>;
  #socket: Socket;
  #pending = Buffer.alloc(0);
  #listeners: ((stream: OutputStream, data: Buffer) => void)[] = [];

  constructor(fd: number) {
    // allowHalfOpen: the container's output keeps coming after the client's input has ended.
    this.#socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
    this.#socket.on("error", () => this.#socket.destroy());
    this.#socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    this.ended = new Promise((resolve) => {
      this.#socket.once("end", () => {
        // conmon is done: there is nobody left to read input, so close our side too (frees the bridge).
        this.#socket.end();
        resolve();
      });
      this.#socket.once("close", () => resolve());
    });
  }

  onOutput(listener: (stream: OutputStream, data: Buffer) => void): void {
    this.#listeners.push(listener);
  }

  #receive(chunk: Buffer): void {
    let buffer = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    while (buffer.length >= FRAME_HEADER) {
      const length = buffer.readUInt32BE(1);
      if (buffer.length < FRAME_HEADER + length) break;
      const pipe = buffer[0];
      const data = buffer.subarray(FRAME_HEADER, FRAME_HEADER + length);
      buffer = buffer.subarray(FRAME_HEADER + length);
      if (pipe !== PIPE_STDOUT && pipe !== PIPE_STDERR) continue;
      for (const listener of this.#listeners) listener(pipe === PIPE_STDOUT ? "stdout" : "stderr", data);
    }
    this.#pending = Buffer.from(buffer);
  }

  /** Input for the process; false when the caller should wait for `drain` (backpressure). */
  write(data: Buffer | string): boolean {
    if (this.#socket.destroyed || this.#socket.writableEnded) return true;
    return this.#socket.write(data);
  }

  onDrain(listener: () => void): void {
    this.#socket.on("drain", listener);
  }

  /** Stops (or resumes) reading output, for a slow consumer. */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  /** Ends the input: conmon closes the process's stdin. */
  endInput(): void {
    if (!this.#socket.destroyed && !this.#socket.writableEnded) this.#socket.end();
  }

  /** Drops the connection (conmon keeps the process's stdin open only with --leave-stdin-open). */
  close(): void {
    this.#socket.destroy();
  }
}

/** Connects to a conmon attach socket. Throws a RuntimeError (NOT_FOUND) when nothing listens there. */
export function connectAttach(socketPath: string): AttachConnection {
  let fd: number;
  try {
    fd = bridge().connect(socketPath);
  } catch (error) {
    if (error instanceof RuntimeError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new RuntimeError(
      code === "ENOENT" || code === "ECONNREFUSED" ? "NOT_FOUND" : "RUNTIME_FAILED",
      `attach: ${(error as Error).message}`,
    );
  }
  return new AttachConnection(fd);
}

/**
 * Resizes the terminal of the process behind conmon's control FIFO. Its messages are lines
 * "<type> <height> <width>\n"; type 1 is a resize (TIOCSWINSZ on the TTY master), 2 reopens the log.
 * Returns false when no conmon reads the FIFO any more.
 */
export async function resizeTerminal(ctlFifo: string, height: number, width: number): Promise<boolean> {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 0 || width < 0 || height > 65535 || width > 65535) {
    throw new RuntimeError("INVALID_OPTION", `invalid terminal size ${height}x${width}`);
  }
  // Non-blocking: opening a FIFO nobody reads fails with ENXIO instead of hanging.
  const handle = await open(ctlFifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
  if (!handle) return false;
  try {
    await handle.write(`1 ${height} ${width}\n`);
    return true;
  } catch {
    return false;
  } finally {
    await handle.close();
  }
}
