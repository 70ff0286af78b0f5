import { PassThrough, Writable } from "node:stream";
import { main } from "../../src/cli.js";
import type { Io } from "../../src/context.js";

/** A writable that keeps what it is given, optionally posing as a terminal. */
export class Capture extends Writable {
  text = "";
  isTTY: boolean | undefined;
  columns = 100;

  constructor(tty = false) {
    super();
    if (tty) this.isTTY = true;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString("utf8");
    callback();
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in-process with captured streams: `stdin` is the given text (or a stream that
 * poses as a terminal with `stdinTTY`), `env` replaces the process environment.
 */
export async function runCli(
  argv: string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: string | Buffer; stdinTTY?: boolean; stdoutTTY?: boolean } = {},
): Promise<RunResult> {
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean };
  if (options.stdinTTY) stdin.isTTY = true;
  else stdin.end(options.stdin ?? "");
  const stdout = new Capture(options.stdoutTTY);
  const stderr = new Capture();
  const io: Io = { stdin, stdout, stderr };
  const code = await main(argv, io, options.env ?? { HOME: "/nonexistent" });
  return { code, stdout: stdout.text, stderr: stderr.text };
}
