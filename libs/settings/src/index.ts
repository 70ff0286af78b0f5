import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Command, CommanderError, Option } from "commander";

/**
 * One setting of a server program: its flag, environment variable, default and meaning. A program
 * keeps its settings in one table; the table declares the commander options, renders `--help`,
 * and is what `.env.example` is checked against.
 */
export interface Setting {
  /** The long flag without dashes: `listen` is `--listen`. */
  readonly flag: string;
  /** A one-letter alias, with its dash: `-H`. */
  readonly short?: string;
  readonly env: string;
  /** The value when neither the flag nor the environment gives one ("" is unset). */
  readonly default: string;
  readonly help: string;
  /**
   * string (the default): `--flag VALUE`. boolean: a switch — `--flag` alone is true, `--no-flag`
   * and `--flag=false` turn it off. list: a repeatable flag; its variable is comma-separated.
   */
  readonly kind?: "string" | "boolean" | "list";
  /** The value's name in --help (VALUE by default). */
  readonly value?: string;
}

/** A configuration problem the user can fix: printed as one line, without a stack. */
export class ConfigError extends Error {}

export function parseBoolean(name: string, value: string): boolean {
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new ConfigError(`--${name} must be true or false, not ${JSON.stringify(value)}`);
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** Declares the settings as options of `command`; --help shows each one's variable and default. */
export function addSettings(command: Command, settings: readonly Setting[]): Command {
  for (const s of settings) {
    const names = `${s.short ? `${s.short}, ` : ""}--${s.flag}`;
    const where = `${s.env}${s.default ? `; default ${s.default}` : ""}`;
    const description = `${s.help} [${where}]`;
    if (s.kind === "boolean") {
      // An optional value keeps `--flag=false` and `--flag false` working beside the bare switch.
      command.addOption(new Option(`${names} [bool]`, description));
      command.addOption(new Option(`--no-${s.flag}`, `turn --${s.flag} off`).hideHelp());
    } else if (s.kind === "list") {
      command.addOption(
        new Option(`${names} <${s.value ?? "value"}>`, `${description} (repeatable; the variable is comma-separated)`).argParser(collect),
      );
    } else {
      command.addOption(new Option(`${names} <${s.value ?? "value"}>`, description));
    }
  }
  return command;
}

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * The value of each setting: the flag's, else the environment's (an empty value, as copied from
 * `.env.example`, is unset), else the default. Values come back as strings, as the environment has
 * them: a switch reads "true"/"false", a list is comma-separated.
 */
export function settingReader(
  settings: readonly Setting[],
  options: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): (flag: string) => string {
  return (flag) => {
    const setting = settings.find((s) => s.flag === flag);
    if (!setting) throw new Error(`no setting --${flag}`);
    const given = options[camel(flag)];
    if (given !== undefined) return Array.isArray(given) ? given.join(",") : String(given);
    return env[setting.env] || setting.default;
  };
}

/**
 * Reads `.env` from the working directory into the environment, as every Minato server does at
 * start; variables already set win over the file.
 */
export function loadDotEnv(dir = process.cwd()): void {
  const file = join(dir, ".env");
  if (existsSync(file)) process.loadEnvFile(file);
}

/** Makes parse errors of `command` and its subcommands thrown errors, printed by {@link runProgram}. */
export function quietErrors(command: Command): Command {
  return command.exitOverride().configureOutput({ outputError: () => undefined });
}

/** `minato-registry user add`: the program and the subcommands `argv` names, for a pointer to their help. */
function commandPath(program: Command, argv: string[]): string {
  const path = [program.name()];
  let command = program;
  for (const token of argv) {
    const sub = command.commands.find((c) => c.name() === token || c.aliases().includes(token));
    if (!sub) continue;
    path.push(sub.name());
    command = sub;
  }
  return path.join(" ");
}

/** The exit status of a command line that cannot be used (as getopt-style tools use). */
export const USAGE_EXIT = 2;

/**
 * Runs a commander program the way every Minato server program does: help and version exit 0,
 * a usage error prints one line (commander's suggestion included) and exits 2, a failure prints one
 * line and exits 1 — a stack only for a bug (an error that is neither a ConfigError nor a system error).
 */
export async function runProgram(program: Command, argv: string[]): Promise<void> {
  const name = program.name();
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (["commander.helpDisplayed", "commander.help", "commander.version"].includes(error.code)) return;
      const line = error.message
        .replace(/^error: /, "")
        .replace(/\s*\n\s*/g, " ")
        .replace(/\.$/, "");
      process.stderr.write(`${name}: ${line}; see '${commandPath(program, argv)} --help'\n`);
      process.exitCode = USAGE_EXIT;
      return;
    }
    const known = error instanceof ConfigError || (error as NodeJS.ErrnoException).code !== undefined || (error as Error).name === "Error";
    process.stderr.write(`${name}: ${known ? (error as Error).message : (error as Error).stack}\n`);
    process.exitCode = error instanceof ConfigError ? USAGE_EXIT : 1;
  }
}
