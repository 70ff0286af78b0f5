import type { EngineResponse } from "../client.js";
import type { Context } from "../context.js";
import { CliError, UsageError } from "../errors.js";
import { displayJsonMessages, JsonMessageDisplay } from "../output/progress.js";

/**
 * `--filter name=value` flags as the API's `filters` query parameter: JSON of `{name: [values]}`.
 * Undefined when there are none.
 */
export function filtersParam(flags: string[] | undefined, extra: Record<string, string[]> = {}): string | undefined {
  const filters: Record<string, string[]> = {};
  for (const flag of flags ?? []) {
    const eq = flag.indexOf("=");
    if (eq <= 0) throw new CliError(`bad format of filter (expected name=value)`);
    const name = flag.slice(0, eq).trim().toLowerCase();
    filters[name] = [...(filters[name] ?? []), flag.slice(eq + 1)];
  }
  for (const [name, values] of Object.entries(extra)) filters[name] = [...(filters[name] ?? []), ...values];
  return Object.keys(filters).length ? JSON.stringify(filters) : undefined;
}

/** `--compression gzip|zstd` (Minato's flag on push, commit and build), refused before any request when unknown. */
export function compressionFlag(value: string | undefined): "gzip" | "zstd" | undefined {
  if (value === undefined || value === "gzip" || value === "zstd") return value;
  throw new UsageError(`invalid argument "${value}" for "--compression" flag: use gzip or zstd`);
}

/** The API path of an image name or ID: slashes and colons stay as the docker client sends them. */
export function imagePath(name: string, suffix = ""): string {
  return `/images/${encodeURI(name).replace(/[?#]/g, encodeURIComponent)}${suffix}`;
}

/**
 * Shows a JSON message stream from the daemon: progress on the terminal, plain lines elsewhere,
 * nothing with `quiet` (but errors still end the command). Returns the `aux` values seen.
 */
export async function showJsonStream(context: Context, response: EngineResponse, call: string, quiet = false): Promise<unknown[]> {
  const aux: unknown[] = [];
  const out = quiet ? { write: () => true } : context.io.stdout;
  const display = new JsonMessageDisplay(out, { terminal: !quiet && context.io.stdout.isTTY === true, onAux: (value) => aux.push(value) });
  try {
    await displayJsonMessages(response.body, display);
  } catch (error) {
    const [method = "", path = ""] = call.split(" ");
    throw context.client.lostConnection(error, method, path);
  } finally {
    if (!response.body.destroyed) response.body.destroy();
  }
  return aux;
}

/**
 * Runs `action` on each named object in turn, as docker's multi-object verbs (`rm`, `stop` …) do: the name on stdout
 * for each success, one error line on stderr for each failure, status 1 if any failed.
 */
export async function eachName(context: Context, names: string[], action: (name: string) => Promise<string | undefined>): Promise<number> {
  let failed = false;
  for (const name of names) {
    try {
      const line = await action(name);
      if (line !== undefined) context.out(`${line}\n`);
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      failed = true;
      context.err(`${error.display}\n`);
    }
  }
  return failed ? 1 : 0;
}
