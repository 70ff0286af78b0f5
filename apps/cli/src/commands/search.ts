// `minato search TERM`: a registry's repositories through the daemon (`GET /images/search`), in the
// docker CLI's columns. `host[:port]/name` searches that registry; credentials come from `minato login`.
import { parseImageReference } from "@minato/oci";
import { registryAuthHeader } from "../auth.js";
import { collect, defineCommand } from "../command.js";
import { UsageError } from "../errors.js";
import { formatList, type ListFormat } from "../output/formatter.js";
import { ellipsis } from "../output/text.js";
import { filtersParam } from "./common.js";

interface SearchResult {
  name: string;
  description: string;
  star_count: number;
  is_official: boolean;
  is_automated: boolean;
}

const FORMAT: ListFormat = {
  table: "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
  quiet: "{{.Name}}",
  headers: { Name: "NAME", Description: "DESCRIPTION", StarCount: "STARS", IsOfficial: "OFFICIAL", IsAutomated: "AUTOMATED" },
};

/** The registry a term names (dockerd's rule: a first component with a dot, a colon, or `localhost`). */
function registryOf(term: string): string {
  const first = term.includes("/") ? term.slice(0, term.indexOf("/")) : "";
  return first.includes(".") || first.includes(":") || first === "localhost" ? parseImageReference(`${first}/x`).registry : "docker.io";
}

export const searchCommand = defineCommand<{ filter?: string[]; format?: string; limit?: string; noTrunc?: boolean }>({
  name: "search",
  usage: "[OPTIONS] TERM",
  description: "Search a registry for images",
  args: { min: 1, max: 1 },
  options: (command) =>
    command
      .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
      .option("--format <string>", "Pretty-print search using a Go template")
      .option("--limit <int>", "Max number of search results")
      .option("--no-trunc", "Don't truncate output"),
  async run(context, [term], options) {
    if (options.limit !== undefined && !/^\d+$/.test(options.limit))
      throw new UsageError(
        `invalid argument "${options.limit}" for "--limit" flag: strconv.ParseInt: parsing "${options.limit}": invalid syntax`,
      );
    const results = await context.client.json<SearchResult[]>("GET", "/images/search", {
      query: { term, limit: options.limit, filters: filtersParam(options.filter) },
      headers: { "X-Registry-Auth": await registryAuthHeader(context, registryOf(term as string)) },
    });
    // commander's --no-trunc sets `trunc: false`.
    const truncate = (options as { trunc?: boolean }).trunc !== false;
    const rows = results.map((r) => {
      const description = r.description.replace(/\n/g, " ");
      return {
        Name: r.name,
        Description: truncate ? ellipsis(description, 45) : description,
        StarCount: String(r.star_count),
        IsOfficial: r.is_official ? "[OK]" : "",
        IsAutomated: r.is_automated ? "[OK]" : "",
      };
    });
    context.out(formatList(rows, FORMAT, { format: options.format }));
    return 0;
  },
});
