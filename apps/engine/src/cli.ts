import { ConfigError, loadConfig, USAGE } from "./config.js";
import { DaemonError, startDaemon } from "./daemon.js";

export async function main(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return;
  }
  try {
    const daemon = await startDaemon(loadConfig(argv));
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
  } catch (error) {
    const known = error instanceof ConfigError || error instanceof DaemonError || (error as NodeJS.ErrnoException).code !== undefined;
    process.stderr.write(`minatod: ${known ? (error as Error).message : (error as Error).stack}\n`);
    process.exitCode = 1;
  }
}
