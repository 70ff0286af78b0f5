// `minato events` (docker events): the daemon's event stream, replayed from --since and ended at
// --until, one line per event as the docker CLI prints them or through --format.
import { type CommandGroup, collect, defineCommand } from "../command.js";
import { unescapeFormat } from "../output/formatter.js";
import { Template } from "../output/template.js";
import { filtersParam } from "./common.js";

interface EventMessage {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  time: number;
  timeNano: number;
}

/** `2026-12-07T20:41:01.123456789Z container start <id> (image=busybox, name=web)`, the docker CLI's line. */
export function eventLine(event: EventMessage, rawTimeNano: string): string {
  const nanos = BigInt(rawTimeNano);
  const seconds = new Date(Number(nanos / 1_000_000n)).toISOString().slice(0, 19);
  const time = `${seconds}.${(nanos % 1_000_000_000n).toString().padStart(9, "0")}Z`;
  const attributes = Object.entries(event.Actor.Attributes ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  return `${time} ${event.Type} ${event.Action} ${event.Actor.ID}${attributes.length ? ` (${attributes.join(", ")})` : ""}\n`;
}

const events = defineCommand<{ since?: string; until?: string; filter?: string[]; format?: string }>({
  name: "events",
  usage: "[OPTIONS]",
  description: "Get real time events from the server",
  options: (command) =>
    command
      .option("--since <string>", "Show all events created since timestamp (unix seconds, RFC 3339, or relative like 10m)")
      .option("--until <string>", "Stream events until this timestamp")
      .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
      .option(
        "--format <string>",
        "Format output using a custom template:\n'json': JSON, one object per line\n'TEMPLATE': the given Go template",
      ),
  async run(context, _args, options) {
    const format = options.format === "json" ? "{{json .}}" : options.format;
    const template = format ? new Template(unescapeFormat(format)) : undefined;
    const response = await context.client.call("GET", "/events", {
      query: { since: options.since, until: options.until, filters: filtersParam(options.filter) },
    });
    let buffered = "";
    try {
      for await (const chunk of response.body) {
        buffered += chunk.toString();
        for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line === "") continue;
          const event = JSON.parse(line) as EventMessage;
          // timeNano is beyond a double's precision: read from the line as written.
          const rawNanos = /"timeNano":(\d+)/.exec(line)?.[1] ?? String(event.timeNano);
          context.out(template ? `${template.execute(event)}\n` : eventLine(event, rawNanos));
        }
      }
    } catch (error) {
      throw context.client.lostConnection(error, "GET", "/events");
    }
    return 0;
  },
});

export const eventsGroup: CommandGroup = { commands: [events] };
