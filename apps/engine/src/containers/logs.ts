// Container logs: conmon's k8s-file records ("<time> <stdout|stderr> <P|F> <text>") turned into what
// the Docker API sends — the multiplexed stream (8-byte header: stream byte, three zero bytes, a
// big-endian uint32 length; swagger "ContainerAttach") for non-TTY containers, raw bytes for TTYs.
import { open } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

export interface LogEntry {
  time: string;
  stream: "stdout" | "stderr";
  /** The bytes written, with the newline when the line ended. */
  data: string;
}

/** One frame of the multiplexed stream: 1 stdout, 2 stderr (0 stdin). */
export function multiplexFrame(stream: 0 | 1 | 2, data: Buffer | string): Buffer {
  const body = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** Splits a multiplexed stream back into frames (for tests and clients); a trailing partial frame is left out. */
export function demultiplex(buffer: Buffer): { stream: number; data: Buffer }[] {
  const frames: { stream: number; data: Buffer }[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    if (offset + 8 + size > buffer.length) break;
    frames.push({ stream: buffer[offset] as number, data: buffer.subarray(offset + 8, offset + 8 + size) });
    offset += 8 + size;
  }
  return frames;
}

/** conmon writes local time with an offset; Docker shows UTC with `Z` (RFC 3339 with nanoseconds). */
export function dockerTimestamp(time: string): string {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!match) return time;
  const fraction = (match[2] ?? ".").slice(1).padEnd(9, "0");
  const utc = new Date(`${match[1]}${match[3]}`).toISOString().slice(0, 19);
  return `${utc}.${fraction}Z`;
}

/** Parses complete k8s-file lines; P records are kept as they are (data without a newline). */
export function parseRecords(text: string): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const first = line.indexOf(" ");
    const second = line.indexOf(" ", first + 1);
    if (first < 0 || second < 0) continue;
    const stream = line.slice(first + 1, second);
    if (stream !== "stdout" && stream !== "stderr") continue;
    const third = line.indexOf(" ", second + 1);
    const tag = third < 0 ? line.slice(second + 1) : line.slice(second + 1, third);
    const body = third < 0 ? "" : line.slice(third + 1);
    entries.push({ time: line.slice(0, first), stream, data: tag === "P" ? body : `${body}\n` });
  }
  return entries;
}

/** Joins partial records of a stream into whole lines (the unit `--tail` counts). */
export function joinLines(entries: LogEntry[]): LogEntry[] {
  const lines: LogEntry[] = [];
  const open = new Map<string, LogEntry>();
  for (const entry of entries) {
    const pending = open.get(entry.stream);
    const line = pending ?? { ...entry, data: "" };
    line.data += entry.data;
    if (line.data.endsWith("\n")) {
      open.delete(entry.stream);
      lines.push(line);
    } else if (!pending) open.set(entry.stream, line);
  }
  lines.push(...open.values());
  return lines;
}

/** `tail`: "all" or a count of lines from the end. */
export function tailLines(entries: LogEntry[], tail: string | undefined): LogEntry[] {
  const lines = joinLines(entries);
  if (tail === undefined || tail === "" || tail === "all") return lines;
  const n = Number(tail);
  if (!Number.isInteger(n) || n < 0) return lines;
  return n === 0 ? [] : lines.slice(-n);
}

/** The bytes of one entry as the API sends them. */
export function encodeEntry(entry: LogEntry, options: { tty: boolean; timestamps: boolean }): Buffer {
  const data = options.timestamps ? `${dockerTimestamp(entry.time)} ${entry.data}` : entry.data;
  return options.tty ? Buffer.from(data, "utf8") : multiplexFrame(entry.stream === "stdout" ? 1 : 2, data);
}

/**
 * Reads a k8s-file log from `offset` and keeps reading as it grows until `done()` says the writer
 * is finished (then one last read). The file is opened once, so a log unlinked meanwhile is still
 * read to its end. Yields entries as complete lines of the file arrive.
 */
export async function* followLog(path: string, offset: number, done: () => boolean, signal?: AbortSignal): AsyncGenerator<LogEntry> {
  const handle = await open(path, "r");
  try {
    let position = offset;
    let rest = "";
    let delay = 10;
    for (;;) {
      const finished = done();
      const buffer = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead > 0) {
        position += bytesRead;
        const text = rest + buffer.subarray(0, bytesRead).toString("utf8");
        const nl = text.lastIndexOf("\n");
        rest = text.slice(nl + 1);
        yield* parseRecords(text.slice(0, nl + 1));
        delay = 10;
        continue;
      }
      if (finished || signal?.aborted) return;
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
  } finally {
    await handle.close();
  }
}
