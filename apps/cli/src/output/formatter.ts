import { alignColumns } from "./tabwriter.js";
import { Template, TemplateError } from "./template.js";

/**
 * How a listing command prints its rows, as the docker CLI's formatter does: a table by default,
 * `-q` for IDs only, or `--format` with a Go template — prefixed with `table` for aligned columns
 * under headers, `json` for one JSON object per line.
 */
export interface ListFormat {
  /** The default table, e.g. `table {{.Repository}}\t{{.Tag}}`. */
  table: string;
  /** What `-q` prints, e.g. `{{.ID}}`. */
  quiet: string;
  /** Column titles by field name, e.g. `{ ID: "IMAGE ID" }`. */
  headers: Record<string, string>;
}

/** Turns `\t` and `\n` typed on the command line into real tabs and newlines, as docker does. */
export function unescapeFormat(format: string): string {
  return format.replace(/\\t/g, "\t").replace(/\\n/g, "\n");
}

/** The template a `--format` value (or its absence) stands for, and whether it is a table. */
export function resolveFormat(spec: ListFormat, format: string | undefined, quiet: boolean): { template: string; table: boolean } {
  let chosen = format ?? "";
  if (chosen === "" || chosen === "table") chosen = quiet ? spec.quiet : spec.table;
  else if (chosen === "json") chosen = "{{json .}}";
  const table = chosen.startsWith("table");
  const body = unescapeFormat(table ? chosen.slice("table".length) : chosen);
  return { template: table ? body.trim() : body, table };
}

/** Renders rows (objects of display fields) the way `docker images` / `docker history` do. */
export function formatList(rows: Record<string, unknown>[], spec: ListFormat, options: { format?: string; quiet?: boolean }): string {
  const { template, table } = resolveFormat(spec, options.format, options.quiet ?? false);
  const row = new Template(template, true);
  let out = "";
  if (table) out += `${new Template(template).execute(spec.headers)}\n`;
  for (const value of rows) out += `${row.execute(value)}\n`;
  return table ? alignColumns(out) : out;
}

/** Renders one object per line with a template (inspect, version and info `--format`). */
export function formatEach(values: unknown[], format: string): string {
  const template = new Template(unescapeFormat(format));
  return values.map((value) => `${template.execute(value)}\n`).join("");
}

export { TemplateError };
