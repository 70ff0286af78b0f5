// conmon's k8s-file log format: one line per chunk, "<RFC3339Nano time> <stdout|stderr> <P|F> <text>",
// where P marks a partial line continued by the next record of the same stream and F ends a line.

export interface LogRecord {
  time: string;
  stream: "stdout" | "stderr";
  /** The line's text, without its newline; partial records are joined. */
  text: string;
  /** True when the line ended with a newline in the container's output. */
  complete: boolean;
}

/** Parses k8s-file log text into lines, joining partial records per stream. */
export function parseK8sLog(text: string): LogRecord[] {
  const records: LogRecord[] = [];
  const pending = new Map<string, LogRecord>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const first = line.indexOf(" ");
    const second = line.indexOf(" ", first + 1);
    const third = line.indexOf(" ", second + 1);
    if (first < 0 || second < 0) continue;
    const time = line.slice(0, first);
    const stream = line.slice(first + 1, second);
    if (stream !== "stdout" && stream !== "stderr") continue;
    const tag = third < 0 ? line.slice(second + 1) : line.slice(second + 1, third);
    const body = third < 0 ? "" : line.slice(third + 1);
    const open = pending.get(stream);
    const record = open ?? { time, stream, text: "", complete: false };
    record.text += body;
    if (tag === "P") {
      pending.set(stream, record);
      continue;
    }
    pending.delete(stream);
    record.complete = true;
    records.push(record);
  }
  for (const open of pending.values()) records.push(open);
  return records.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
