import { existsSync } from "node:fs";
import { ADMIN_COMMANDS, ADMIN_USAGE, adminCommand } from "./auth/admin-cli.js";
import { ConfigError, loadConfig, SETTINGS } from "./config.js";
import { LIFECYCLE_COMMANDS, LIFECYCLE_USAGE, lifecycleCommand } from "./lifecycle/admin-cli.js";
import { createLogger } from "./logger.js";
import { startRegistry } from "./server.js";

const USAGE = `Usage: minato-registry [serve] [flags]

An OCI Distribution registry.

Commands:
  serve        serve the registry (default)

Flags (each also read from its environment variable; flags win):
${SETTINGS.map((s) => `  --${("switch" in s ? s.flag : `${s.flag} VALUE`).padEnd(26)} ${s.help}\n  ${"".padEnd(28)} ${s.env}${s.default ? `, default ${s.default}` : ""}`).join("\n")}
  --help                     show this help

${ADMIN_USAGE}
${LIFECYCLE_USAGE}`;

async function serveCommand(argv: string[]): Promise<void> {
  const config = loadConfig(argv);
  const logger = createLogger(config.logLevel);
  const registry = await startRegistry(config, logger);
  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) process.exit(1);
    logger.info({ signal }, "shutting down; waiting for in-flight requests");
    registry.close().then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

export async function main(argv: string[]): Promise<void> {
  if (existsSync(".env")) process.loadEnvFile(".env");
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(USAGE);
    return;
  }
  try {
    if (command === undefined || command.startsWith("-")) return await serveCommand(argv);
    if (command === "serve") return await serveCommand(rest);
    if (ADMIN_COMMANDS.has(command)) return await adminCommand(command, rest);
    if (LIFECYCLE_COMMANDS.has(command)) {
      process.exitCode = await lifecycleCommand(command, rest);
      return;
    }
    throw new ConfigError(`unknown command ${JSON.stringify(command)}; see --help`);
  } catch (error) {
    const message = error instanceof ConfigError ? error.message : (error as Error).message;
    process.stderr.write(`minato-registry: ${message}\n`);
    process.exitCode = 2;
  }
}
