import { Command } from "commander";
import { DEFAULT_HOST } from "./client.js";
import { buildProgram, checkArity, describeParseFailure, type Invocation, normalizeArgv, ParseFailure } from "./command.js";
import { COMMAND_GROUPS } from "./commands/index.js";
import { Context, type GlobalOptions, type Io } from "./context.js";
import { CliError, describeError } from "./errors.js";
import { TemplateError } from "./output/template.js";
import { CLI_VERSION } from "./version.js";

function processIo(): Io {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}

function createProgram(io: Io, argv: string[], onInvoke: (invocation: Invocation) => void): Command {
  const root = new Command("minato")
    .usage("[OPTIONS] COMMAND")
    .description("A client for the Minato engine (minatod), speaking the Docker Engine API")
    .enablePositionalOptions()
    .option("-H, --host <string>", `Daemon socket to connect to (default "${DEFAULT_HOST}", or $MINATO_HOST)`)
    .option("--config <string>", 'Location of client config files (default "~/.docker", or $DOCKER_CONFIG)')
    .version(`Minato version ${CLI_VERSION}`, "-v, --version", "Print version information and quit")
    .addHelpText(
      "after",
      "\nEnvironment: MINATO_HOST (the daemon socket), DOCKER_CONFIG (client config files), MINATO_DEBUG=1 (print the stack of an unexpected error).",
    );
  return buildProgram(
    root,
    COMMAND_GROUPS,
    { writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) },
    onInvoke,
    argv,
  );
}

/**
 * Runs `minato ARGS…` and resolves to the exit status: 0 on success, 1 when the daemon or the
 * client reports an error, 125 for a command line that cannot be used (docker's statuses). Errors
 * are printed as one line on stderr.
 */
export async function main(argv: string[], io: Io = processIo(), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let invocation: Invocation | undefined;
  const program = createProgram(io, argv, (chosen) => {
    invocation = chosen;
  });
  // `minato images | head -1`: a closed pipe ends the output quietly (the listener stays: the
  // error can arrive after the command returned).
  io.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
  try {
    try {
      await program.parseAsync(normalizeArgv(program, argv), { from: "user" });
    } catch (error) {
      if (error instanceof ParseFailure) {
        const { line, exitCode } = describeParseFailure(error);
        if (line) io.stderr.write(`${line}\n`);
        return exitCode;
      }
      throw error;
    }
    if (!invocation) return 0;
    checkArity(invocation.path, invocation.spec, invocation.args.length);
    const context = new Context(io, env, program.opts<GlobalOptions>());
    try {
      return (await invocation.spec.run(context, invocation.args, invocation.options as never)) ?? 0;
    } finally {
      await context.close();
    }
  } catch (error) {
    if (error instanceof TemplateError) {
      io.stderr.write(error.parse ? `template parsing error: template: ${error.message}\n` : `template: ${error.message}\n`);
      return error.parse ? 64 : 1;
    }
    // MINATO_DEBUG=1 keeps the stack of an unexpected error for a bug report.
    if (env.MINATO_DEBUG && !(error instanceof CliError)) io.stderr.write(`${(error as Error).stack}\n`);
    const { line, exitCode } = describeError(error);
    io.stderr.write(`${line}\n`);
    return exitCode;
  }
}
