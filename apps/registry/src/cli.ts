import { loadDotEnv, quietErrors, runProgram } from "@minato/settings";
import { Command } from "commander";
import { addAdminCommands } from "./auth/admin-cli.js";
import { resolveConfig, serveOptions } from "./config.js";
import { addLifecycleCommands } from "./lifecycle/admin-cli.js";
import { createLogger } from "./logger.js";
import { startRegistry } from "./server.js";

async function serve(options: Record<string, unknown>): Promise<void> {
  const config = resolveConfig(options);
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

export function registryProgram(): Command {
  const program = quietErrors(new Command("minato-registry"))
    .description("An OCI Distribution registry.")
    .usage("[serve] [flags] | COMMAND …")
    .configureHelp({ showGlobalOptions: true })
    .addHelpText(
      "after",
      "\nWithout a command, serve. Settings: 'minato-registry serve --help'; .env in the working directory is read at start.",
    );
  serveOptions(program.command("serve").description("serve the registry (the default command)")).action((options) => serve(options));
  return addLifecycleCommands(addAdminCommands(program));
}

export async function main(argv: string[]): Promise<void> {
  loadDotEnv();
  // `minato-registry --listen …` is `minato-registry serve --listen …`, as before there were commands.
  const bare = argv.length === 0 || (argv[0]?.startsWith("-") && !["-h", "--help"].includes(argv[0]));
  await runProgram(registryProgram(), bare ? ["serve", ...argv] : argv);
}
