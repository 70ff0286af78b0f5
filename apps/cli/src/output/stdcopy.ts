/**
 * Docker's multiplexed stream (logs and attach of a container without a TTY): frames of an 8-byte
 * header — stream type (0 stdin, 1 stdout, 2 stderr, 3 system error), three zero bytes, the payload
 * size as a big-endian uint32 — followed by the payload. Chunks may cut frames anywhere.
 */
export type StreamName = "stdout" | "stderr";

const HEADER = 8;

export class StreamDemuxer {
  #pending: Buffer = Buffer.alloc(0);

  /** `onFrame` gets each payload with the stream it goes to (stdin frames go to stdout, as docker's StdCopy does). */
  constructor(readonly onFrame: (stream: StreamName, payload: Buffer) => void) {}

  /** Feeds bytes; throws on a header that is not a stream type, or a system-error frame (its text). */
  push(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= HEADER) {
      const type = this.#pending[0] as number;
      const size = this.#pending.readUInt32BE(4);
      if (type > 3) throw new Error(`Unrecognized input header: ${type}`);
      if (this.#pending.length < HEADER + size) break;
      const payload = this.#pending.subarray(HEADER, HEADER + size);
      this.#pending = this.#pending.subarray(HEADER + size);
      if (type === 3) throw new Error(`error from daemon in stream: ${payload.toString("utf8")}`);
      if (size > 0) this.onFrame(type === 2 ? "stderr" : "stdout", payload);
    }
  }

  /** Bytes of an unfinished frame left at the end of the stream (0 when it ended cleanly). */
  get leftover(): number {
    return this.#pending.length;
  }
}

/** Splits a whole multiplexed buffer into its stdout and stderr text. */
export function demultiplex(data: Buffer): { stdout: string; stderr: string } {
  const out: Record<StreamName, Buffer[]> = { stdout: [], stderr: [] };
  const demuxer = new StreamDemuxer((stream, payload) => out[stream].push(payload));
  demuxer.push(data);
  return { stdout: Buffer.concat(out.stdout).toString("utf8"), stderr: Buffer.concat(out.stderr).toString("utf8") };
}
