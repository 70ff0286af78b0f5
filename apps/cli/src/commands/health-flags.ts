// `run`/`create` health check flags as the docker CLI turns them into swagger `HealthConfig`
// (docker's opts.parse): durations in Go's syntax, sent as nanoseconds.
import type { Command } from "commander";
import { UsageError } from "../errors.js";

export interface HealthFlags {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  healthStartInterval?: string;
  /** commander's negation of `--no-healthcheck`: false when given. */
  healthcheck?: boolean;
}

const UNIT_NANOS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration (`30s`, `1m30s`, `1.5h`, `-5s`, `0`) in nanoseconds. */
export function goDuration(text: string): number {
  if (text === "0") return 0;
  const match = /^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(text);
  if (!match) throw new Error(`time: invalid duration "${text}"`);
  let nanos = 0;
  for (const [, amount, unit] of text.matchAll(/((?:\d+(?:\.\d*)?|\.\d+))(ns|us|µs|ms|s|m|h)/g))
    nanos += Number(amount) * (UNIT_NANOS[unit as string] ?? 0);
  return Math.round(match[1] === "-" ? -nanos : nanos);
}

export function healthOptions(command: Command): Command {
  return command
    .option("--health-cmd <string>", "Command to run to check health")
    .option("--health-interval <duration>", "Time between running the check (ms|s|m|h) (default 0s)")
    .option("--health-timeout <duration>", "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    .option("--health-retries <int>", "Consecutive failures needed to report unhealthy")
    .option(
      "--health-start-period <duration>",
      "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)",
    )
    .option("--health-start-interval <duration>", "Time between running the check during the start period (ms|s|m|h) (default 0s)")
    .option("--no-healthcheck", "Disable any container-specified HEALTHCHECK");
}

/** Sets `body.Healthcheck` from the flags; refuses what the docker CLI refuses. */
export function applyHealthFlags(flags: HealthFlags, body: Record<string, unknown>): void {
  const duration = (value: string | undefined, flag: string) => {
    if (value === undefined) return 0;
    let nanos: number;
    try {
      nanos = goDuration(value);
    } catch (error) {
      throw new UsageError(`invalid argument "${value}" for "${flag}" flag: ${(error as Error).message}`);
    }
    if (nanos < 0) throw new UsageError(`${flag} cannot be negative`);
    return nanos;
  };
  const interval = duration(flags.healthInterval, "--health-interval");
  const timeout = duration(flags.healthTimeout, "--health-timeout");
  const startPeriod = duration(flags.healthStartPeriod, "--health-start-period");
  const startInterval = duration(flags.healthStartInterval, "--health-start-interval");
  let retries = 0;
  if (flags.healthRetries !== undefined) {
    if (!/^-?\d+$/.test(flags.healthRetries))
      throw new UsageError(
        `invalid argument "${flags.healthRetries}" for "--health-retries" flag: strconv.ParseInt: parsing "${flags.healthRetries}": invalid syntax`,
      );
    retries = Number(flags.healthRetries);
    if (retries < 0) throw new UsageError("--health-retries cannot be negative");
  }
  const any =
    (flags.healthCmd ?? "") !== "" || interval !== 0 || timeout !== 0 || startPeriod !== 0 || startInterval !== 0 || retries !== 0;
  if (flags.healthcheck === false) {
    if (any) throw new UsageError("--no-healthcheck conflicts with --health-* options");
    body.Healthcheck = { Test: ["NONE"] };
    return;
  }
  if (!any) return;
  body.Healthcheck = {
    ...(flags.healthCmd ? { Test: ["CMD-SHELL", flags.healthCmd] } : {}),
    Interval: interval,
    Timeout: timeout,
    StartPeriod: startPeriod,
    StartInterval: startInterval,
    Retries: retries,
  };
}
