export { main } from "./cli.js";
export { CLIENT_API_VERSION, DEFAULT_HOST, EngineClient, resolveHost } from "./client.js";
export type { CommandGroup, CommandSpec } from "./command.js";
export { CliError, DaemonError, StreamError, UsageError } from "./errors.js";
export { formatList, resolveFormat } from "./output/formatter.js";
export { displayJsonMessages, JsonMessageDisplay, progressBar } from "./output/progress.js";
export { alignColumns } from "./output/tabwriter.js";
export { renderTemplate, Template } from "./output/template.js";
export { bytesSize, humanDuration, humanSize, humanSizeWithPrecision } from "./output/units.js";
