/** Where something is in the Dockerfile: 1-based line and column (UTF-16 units), and the last line it spans. */
export interface SourceLocation {
  line: number;
  column: number;
  endLine: number;
}

/**
 * An error tied to a place in the Dockerfile. `message` reads like BuildKit's
 * ("dockerfile parse error on line 3: unknown instruction: RUNN (did you mean RUN?)");
 * `detail` is the part after the colon.
 *
 * `phase` is "parse" for errors found by {@link parseDockerfile} and "expand" for
 * errors found while expanding variables at build time ({@link expandInstruction},
 * {@link planStages}), whose message reads "dockerfile error on line N: …".
 */
export class DockerfileError extends Error {
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
  readonly detail: string;
  readonly phase: "parse" | "expand";

  constructor(detail: string, location: SourceLocation, phase: "parse" | "expand" = "parse") {
    super(`dockerfile ${phase === "parse" ? "parse error" : "error"} on line ${location.line}: ${detail}`);
    this.name = "DockerfileError";
    this.detail = detail;
    this.line = location.line;
    this.column = location.column;
    this.endLine = location.endLine;
    this.phase = phase;
  }

  get location(): SourceLocation {
    return { line: this.line, column: this.column, endLine: this.endLine };
  }
}

/** A variable-expansion failure (bad substitution, `${x:?message}`, unterminated quote…). */
export class ExpansionError extends Error {
  readonly detail: string;
  constructor(source: string, detail: string) {
    super(`failed to process ${JSON.stringify(source)}: ${detail}`);
    this.name = "ExpansionError";
    this.detail = detail;
  }
}

/** An error without a location yet; the parser attaches one. */
export class SyntaxIssue extends Error {
  constructor(
    message: string,
    readonly offset?: number,
  ) {
    super(message);
    this.name = "SyntaxIssue";
  }
}
