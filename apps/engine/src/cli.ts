import { loadDotEnv, quietErrors, runProgram } from "@minato/settings";
import { Command } from "commander";
import { daemonOptions, resolveConfig } from "./config.js";
import { startDaemon } from "./daemon.js";

async function run(options: Record<string, unknown>): Promise<void> {
  const daemon = await startDaemon(resolveConfig(options));
  let signals = 0;
  const stop = () => {
    if (++signals > 1) process.exit(1);
    daemon.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

export function daemonProgram(): Command {
  return daemonOptions(quietErrors(new Command("minatod")))
    .description(
      "The Minato engine daemon: images, containers, builds, volumes and networks,\nserved as the Docker Engine API on a unix socket. Runs as root.",
    )
    .usage("[flags]")
    .addHelpText("after", "\nEach flag is also read from its variable (flags win); .env in the working directory is read at start.")
    .action((options) => run(options));
}

export async function main(argv: string[]): Promise<void> {
  loadDotEnv();
  await runProgram(daemonProgram(), argv);
}
