/**
 * The ways a command fails, each printed as one line on stderr with docker's exit status: 1 for an
 * error from the daemon or the client, 125 for a command line the CLI cannot use.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }

  /** The line printed on stderr. */
  get display(): string {
    return this.message;
  }
}

/** Unknown flags, wrong argument counts: docker's `StatusError{StatusCode: 125}`. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 125);
    this.name = "UsageError";
  }
}

/** The daemon answered an API call with an error status and `{"message": …}`. */
export class DaemonError extends CliError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message, 1);
    this.name = "DaemonError";
  }

  override get display(): string {
    return `Error response from daemon: ${this.message}`;
  }
}

/** An `errorDetail` at the end of a JSON message stream (pull, push, load, import): printed as is. */
export class StreamError extends CliError {
  constructor(message: string) {
    super(message, 1);
    this.name = "StreamError";
  }
}

/** A one-line message for an error: the CLI's own, or a Node error reduced to its message. */
export function describeError(error: unknown): { line: string; exitCode: number } {
  if (error instanceof CliError) return { line: error.display, exitCode: error.exitCode };
  const code = (error as NodeJS.ErrnoException).code;
  const path = (error as NodeJS.ErrnoException).path;
  if (code === "ENOENT" && path) return { line: `open ${path}: no such file or directory`, exitCode: 1 };
  if (code === "EACCES" && path) return { line: `open ${path}: permission denied`, exitCode: 1 };
  if (code === "EISDIR" && path) return { line: `read ${path}: is a directory`, exitCode: 1 };
  return { line: (error as Error).message ?? String(error), exitCode: 1 };
}
