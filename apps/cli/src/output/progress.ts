import { StreamError } from "../errors.js";
import { humanSize } from "./units.js";

/** One line of Docker's JSON message stream (pull, push, load, import). */
export interface JsonMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  /** Pre-rendered progress text (deprecated by Docker; shown only when there is no progressDetail). */
  progress?: string;
  stream?: string;
  error?: string;
  errorDetail?: { code?: number; message?: string };
  aux?: unknown;
}

/** Where progress goes: a terminal (with its width) or a plain stream. */
export interface ProgressOutput {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const ESC = "\u001b[";

/**
 * The counters (and, when there is room, the bar) of a progress line, after docker's
 * `JSONProgress.String`: `[=====>      ]  1.2MB/4.26MB`. Empty when there is nothing to count.
 */
export function progressBar(detail: JsonMessage["progressDetail"], room: number): string {
  const current = detail?.current ?? 0;
  const total = detail?.total ?? 0;
  if (current <= 0 && total <= 0) return "";
  const currentText = humanSize(current).padStart(8);
  if (total <= 0) return currentText;
  const numbers = current > total ? currentText : `${currentText}/${humanSize(total)}`;
  // "[" + bar + ">" + "] " around the bar; docker's bar is 50 wide, narrower terminals get less.
  const barWidth = Math.min(50, room - numbers.length - 4);
  if (barWidth < 10) return numbers;
  const filled = Math.min(barWidth, Math.floor((current / total) * barWidth));
  return `[${"=".repeat(filled)}>${" ".repeat(barWidth - filled)}] ${numbers}`;
}

const hasProgress = (message: JsonMessage) => (message.progressDetail?.current ?? 0) > 0 || (message.progressDetail?.total ?? 0) > 0;

/**
 * Renders a JSON message stream as docker's `jsonmessage.DisplayJSONMessagesStream` does.
 *
 * On a terminal every layer ID owns one line, created when the ID first appears and rewritten in
 * place (cursor up, clear, write, cursor down) whenever a message for it arrives, in whatever order
 * they come. A message without an ID is printed below and starts a fresh block of lines.
 *
 * Elsewhere (a pipe, a file) each status is one plain line, `id: status`, with no escape codes;
 * byte-counting updates are left out, as docker leaves them out.
 *
 * `errorDetail` ends the display with a {@link StreamError}; `aux` goes to `onAux`.
 */
export class JsonMessageDisplay {
  readonly #out: ProgressOutput;
  readonly #terminal: boolean;
  readonly #onAux: ((aux: unknown) => void) | undefined;
  /** Line index (from the top of the current block) of each ID, and what was last drawn there. */
  readonly #lines = new Map<string, { index: number; text: string }>();

  constructor(out: ProgressOutput, options: { terminal?: boolean; onAux?: (aux: unknown) => void } = {}) {
    this.#out = out;
    this.#terminal = options.terminal ?? out.isTTY === true;
    this.#onAux = options.onAux;
  }

  get #columns(): number {
    const columns = this.#out.columns;
    return columns && columns > 0 ? columns : 80;
  }

  show(message: JsonMessage): void {
    if (message.error !== undefined || message.errorDetail !== undefined) {
      throw new StreamError(message.errorDetail?.message || message.error || "unknown error");
    }
    if (message.aux !== undefined) {
      this.#onAux?.(message.aux);
      return;
    }
    const id = message.id;
    if (id && message.stream === undefined) {
      if (this.#terminal) this.#drawLine(id, message);
      else if (!hasProgress(message)) this.#out.write(`${id}: ${message.status ?? ""}\n`);
      return;
    }
    // Anything else ends the current block: later IDs get fresh lines below it.
    this.#lines.clear();
    if (message.stream !== undefined) this.#out.write(message.stream);
    else if (message.status !== undefined) this.#out.write(`${message.status}\n`);
  }

  #drawLine(id: string, message: JsonMessage): void {
    const prefix = `${id}: ${message.status ?? ""}`;
    const columns = this.#columns;
    let progress = progressBar(message.progressDetail, columns - prefix.length - 1);
    if (!progress && !hasProgress(message) && message.progress) progress = message.progress;
    const text = [...(progress ? `${prefix} ${progress}` : prefix)].slice(0, columns).join("");
    let line = this.#lines.get(id);
    if (!line) {
      line = { index: this.#lines.size, text: "" };
      this.#lines.set(id, line);
      this.#out.write("\n");
    }
    if (line.text === text) return;
    line.text = text;
    // The cursor rests at the start of the line below the block; this ID's line is `up` lines above.
    const up = this.#lines.size - line.index;
    this.#out.write(`${ESC}${up}A\r${ESC}2K${text}\r${ESC}${up}B`);
  }
}

/**
 * Reads a JSON message stream (one object per line) and displays it; resolves when it ends,
 * rejects with a {@link StreamError} when it reports an error.
 */
export async function displayJsonMessages(source: AsyncIterable<Uint8Array | string>, display: JsonMessageDisplay): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  const handle = (line: string) => {
    const text = line.trim();
    if (!text) return;
    let message: JsonMessage;
    try {
      message = JSON.parse(text) as JsonMessage;
    } catch {
      throw new StreamError(`invalid JSON in the daemon's progress stream: ${text.slice(0, 200)}`);
    }
    display.show(message);
  };
  for await (const chunk of source) {
    buffered += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    let newline = buffered.indexOf("\n");
    while (newline !== -1) {
      handle(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
    }
  }
  handle(buffered + decoder.decode());
}
