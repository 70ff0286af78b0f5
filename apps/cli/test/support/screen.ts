/**
 * A minimal terminal for asserting what a TTY shows: it interprets the output the progress
 * renderer writes (text, CR, LF, cursor up/down `ESC[nA`/`ESC[nB`, erase line `ESC[2K`/`ESC[K`) and
 * keeps the resulting screen. Cursor movement is clamped to the lines that exist, as a terminal
 * clamps it to its screen; only a line feed adds lines.
 */
export class Screen {
  readonly isTTY = true;
  readonly lines: string[] = [""];
  row = 0;
  col = 0;
  /** Everything written, escape codes included. */
  raw = "";

  constructor(readonly columns = 120) {}

  write(chunk: string | Uint8Array): boolean {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    this.raw += text;
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string;
      if (c === "\u001b") {
        const match = /^\[(\d*)([A-Za-z])/.exec(text.slice(i + 1));
        if (!match) throw new Error(`unsupported escape sequence at ${JSON.stringify(text.slice(i, i + 8))}`);
        const n = match[1] ? Number(match[1]) : 1;
        switch (match[2]) {
          case "A":
            this.row = Math.max(0, this.row - n);
            break;
          case "B":
            this.row = Math.min(this.lines.length - 1, this.row + n);
            break;
          case "K":
            this.lines[this.row] = (this.lines[this.row] as string).slice(0, this.col);
            break;
          default:
            throw new Error(`unsupported escape sequence ESC[${match[1]}${match[2]}`);
        }
        if (match[2] === "K" && match[1] === "2") this.lines[this.row] = "";
        i += match[0].length;
      } else if (c === "\r") {
        this.col = 0;
      } else if (c === "\n") {
        this.row++;
        this.col = 0;
        if (this.row === this.lines.length) this.lines.push("");
      } else {
        const line = (this.lines[this.row] as string).padEnd(this.col);
        this.lines[this.row] = line.slice(0, this.col) + c + line.slice(this.col + 1);
        this.col++;
        if (this.col > this.columns) throw new Error(`line ${this.row} overflows ${this.columns} columns: ${this.lines[this.row]}`);
      }
    }
    return true;
  }

  /** The screen as text, trailing spaces and the empty line under the cursor dropped. */
  text(): string {
    const lines = this.lines.map((l) => l.trimEnd());
    while (lines.length > 0 && lines.at(-1) === "") lines.pop();
    return lines.join("\n");
  }
}
