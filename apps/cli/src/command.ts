import { type Command, CommanderError, Option } from "commander";
import type { Context } from "./context.js";
import { UsageError } from "./errors.js";

/**
 * One CLI verb. Commands are declared as data and grouped by subject (image, system, registry …);
 * {@link buildProgram} turns the groups into commander commands. Adding a group (container,
 * network, volume …) is adding a module to `commands/index.ts`.
 */
export interface CommandSpec<Options = Record<string, unknown>> {
  name: string;
  /** Other names inside the group: `image list` for `image ls`. */
  aliases?: string[];
  /** Top-level names for the same command, as docker has `images` for `image ls`. */
  shortcuts?: string[];
  /** Usage after the command name, docker style: `[OPTIONS] IMAGE [IMAGE...]`. */
  usage: string;
  description: string;
  /** How many positional arguments it takes; none by default. */
  args?: { min?: number; max?: number };
  /** Declares its flags on the commander command. */
  options?: (command: Command) => void;
  /** Runs the command; resolves to the exit status (0 when nothing is returned). */
  run(context: Context, args: string[], options: Options): Promise<number | undefined>;
}

/** A subject's commands: under `minato <name> …`, or at the top level when it has no name. */
export interface CommandGroup {
  name?: string;
  description?: string;
  commands: CommandSpec<never>[];
}

/** Declares a command with typed options. */
export function defineCommand<Options>(spec: CommandSpec<Options>): CommandSpec<never> {
  return spec as unknown as CommandSpec<never>;
}

/** A repeatable flag (`--filter a=b --filter c=d`, `-c CMD -c ENV`). */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** A chosen command with its arguments, as parsed from the command line. */
export interface Invocation {
  spec: CommandSpec<never>;
  /** How the user named it: `minato image ls` or `minato images`. */
  path: string;
  args: string[];
  options: Record<string, unknown>;
}

const plural = (n: number) => (n === 1 ? "argument" : "arguments");

/** docker's messages for a wrong number of arguments (cli/required.go). */
export function checkArity(path: string, spec: Pick<CommandSpec, "args">, count: number): void {
  const min = spec.args?.min ?? 0;
  const max = spec.args?.max ?? min;
  if (count >= min && count <= max) return;
  let problem: string;
  if (max === 0) problem = "accepts no arguments";
  else if (min === max) problem = `requires exactly ${min} ${plural(min)}`;
  else if (max === Number.POSITIVE_INFINITY) problem = `requires at least ${min} ${plural(min)}`;
  else if (min === 0) problem = `accepts at most ${max} ${plural(max)}`;
  else problem = `requires at least ${min} and at most ${max} ${plural(max)}`;
  throw new UsageError(`"${path}" ${problem}. See '${path} --help'.`);
}

interface Output {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

/** The commander error a parse failed with, and the command path it failed in. */
export class ParseFailure extends Error {
  constructor(
    readonly error: CommanderError,
    readonly path: string,
  ) {
    super(error.message);
  }
}

/**
 * Builds the commander tree. Commands do not run inside commander: the action records the
 * {@link Invocation} and the caller runs it, so parsing errors and command errors are reported
 * alike, as one line and docker's exit status. With `argv`, only commands named in it get their
 * flags declared: a command runs only when named, and declaring every command's flags was a good
 * part of the CLI's start.
 */
export function buildProgram(
  root: Command,
  groups: CommandGroup[],
  output: Output,
  onInvoke: (invocation: Invocation) => void,
  argv?: string[],
): Command {
  const named = argv ? new Set(argv) : undefined;
  const mentioned = (spec: CommandSpec<never>, name: string) =>
    !named || named.has(name) || (spec.aliases ?? []).some((alias) => named.has(alias));
  const configure = (command: Command, path: string) => {
    command
      .exitOverride((error) => {
        throw new ParseFailure(error, path);
      })
      .configureOutput({ writeOut: output.writeOut, writeErr: output.writeErr, outputError: () => undefined })
      .helpOption("--help", "Print usage")
      .helpCommand(false)
      .configureHelp({ subcommandTerm: (sub) => sub.name(), sortOptions: true });
  };
  configure(root, "minato");

  const add = (parent: Command, spec: CommandSpec<never>, name: string, path: string, heading: string) => {
    const command = parent
      .command(name)
      .description(spec.description)
      .summary(spec.description.split("\n")[0] as string)
      .usage(spec.usage)
      .argument("[args...]")
      .helpGroup(heading);
    configure(command, path);
    if (name === spec.name) for (const alias of spec.aliases ?? []) command.alias(alias);
    if (mentioned(spec, name)) spec.options?.(command);
    command.action((args: string[], options: Record<string, unknown>) => {
      onInvoke({ spec, path, args, options });
    });
  };

  for (const group of groups) {
    if (!group.name) {
      for (const spec of group.commands) add(root, spec, spec.name, `minato ${spec.name}`, "Commands:");
      continue;
    }
    const parent = root
      .command(group.name)
      .description(group.description ?? "")
      .usage("COMMAND")
      .helpGroup("Management Commands:");
    const path = `minato ${group.name}`;
    configure(parent, path);
    parent
      .argument("[command]")
      .allowExcessArguments()
      .action((name: string | undefined) => {
        if (name) throw new ParseFailure(new CommanderError(1, "commander.unknownCommand", `error: unknown command '${name}'`), path);
        parent.help();
      });
    for (const spec of group.commands) add(parent, spec, spec.name, `minato ${group.name} ${spec.name}`, "Commands:");
  }
  for (const group of groups) {
    for (const spec of group.commands) {
      for (const shortcut of spec.shortcuts ?? []) add(root, spec, shortcut, `minato ${shortcut}`, "Commands:");
    }
  }
  return root;
}

function findSubcommand(command: Command, name: string): Command | undefined {
  return command.commands.find((c) => c.name() === name || c.aliases().includes(name));
}

function findOption(command: Command, flag: string): Option | undefined {
  return command.options.find((o) => o.long === flag || o.short === flag);
}

const isBoolean = (option: Option) => !option.required && !option.optional;

/**
 * Go-style flag spellings commander does not know, rewritten before parsing: `--flag=false` /
 * `-f=false` for booleans (docker's `history --human=false`), and `-o=FILE` for short flags with a
 * value. Walks the command tree so each token is read against the right command's flags.
 */
export function normalizeArgv(root: Command, argv: string[]): string[] {
  const out: string[] = [];
  let command = root;
  let positional = false;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (token.startsWith("-") && token !== "-") {
      const eq = token.indexOf("=");
      const long = token.startsWith("--");
      const flag = eq === -1 ? (long ? token : token.slice(0, 2)) : token.slice(0, eq);
      const option = findOption(command, flag);
      if (option && eq !== -1 && (long || eq === 2)) {
        const value = token.slice(eq + 1);
        if (isBoolean(option)) {
          const lowered = value.toLowerCase();
          if (["true", "1", "t"].includes(lowered)) {
            out.push(option.long ?? flag);
          } else if (["false", "0", "f"].includes(lowered)) {
            const negation = option.long ? findOption(command, `--no-${option.long.slice(2)}`) : undefined;
            if (negation?.long) out.push(negation.long);
          } else {
            throw new UsageError(`invalid argument "${value}" for "${flag}" flag: strconv.ParseBool: parsing "${value}": invalid syntax`);
          }
        } else {
          out.push(option.long ?? flag, value);
        }
        continue;
      }
      out.push(token);
      // A flag taking a value as the next token: skip over the value.
      if (option?.required && eq === -1 && (long || token.length === 2) && i + 1 < argv.length) out.push(argv[++i] as string);
      else if (!long && eq === -1 && token.length > 2) {
        // Clustered short flags (`-aq`, `-qi FILE`): the first one needing a value takes the rest or the next token.
        for (let j = 1; j < token.length; j++) {
          const clustered = findOption(command, `-${token[j]}`);
          if (clustered?.required) {
            if (j === token.length - 1 && i + 1 < argv.length) out.push(argv[++i] as string);
            break;
          }
        }
      }
      continue;
    }
    const sub = positional ? undefined : findSubcommand(command, token);
    if (sub) command = sub;
    else positional = true;
    out.push(token);
    // `run IMAGE CMD ARGS…`: what follows the first argument belongs to the container's command, as typed.
    if (positional && (command as unknown as { _passThroughOptions?: boolean })._passThroughOptions) {
      out.push(...argv.slice(i + 1));
      break;
    }
  }
  return out;
}

/** One line for a commander parse failure, in docker's words, with the exit status. */
export function describeParseFailure(failure: ParseFailure): { line?: string; exitCode: number } {
  const { error, path } = failure;
  if (error.code === "commander.helpDisplayed" || error.code === "commander.help" || error.code === "commander.version") {
    return { exitCode: error.exitCode };
  }
  const message = error.message.replace(/^error: /, "");
  // commander puts its "(Did you mean …?)" on a line of its own: the error stays one line.
  const unknownCommand = /^unknown command '([^']+)'([\s\S]*)$/.exec(message);
  if (unknownCommand) {
    const suggestion = (unknownCommand[2] ?? "").replace(/\s+/g, " ").trimEnd();
    return { line: `${path}: '${unknownCommand[1]}' is not a ${path} command.${suggestion} See '${path} --help'.`, exitCode: 125 };
  }
  const rewrites: [RegExp, (match: RegExpExecArray) => string][] = [
    [/^unknown option '(--[^']+)'(.*)$/, (m) => `unknown flag: ${m[1]}${m[2]}`],
    [/^unknown option '-([^'-])[^']*'(.*)$/, (m) => `unknown shorthand flag: '${m[1]}' in -${m[1]}${m[2]}`],
    [/^option '(?:-\w, )?--([\w-]+)[^']*' argument missing$/, (m) => `flag needs an argument: --${m[1]}`],
  ];
  let line = message;
  for (const [pattern, rewrite] of rewrites) {
    const match = pattern.exec(message);
    if (match) {
      line = rewrite(match);
      break;
    }
  }
  return { line: `${line.replace(/\.$/, "")}. See '${path} --help'.`, exitCode: 125 };
}

export { CommanderError, Option };
