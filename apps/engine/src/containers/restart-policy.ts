// Restart policies (swagger `RestartPolicy`; moby's restartmanager): whether a container that exited
// starts again, and after how long. The delay starts at 100 ms and doubles with each restart up to a
// minute; a run of ten seconds or more starts the count over.
import { badRequest } from "../api/errors.js";

export type RestartPolicyName = "no" | "always" | "unless-stopped" | "on-failure";

export interface RestartPolicy {
  Name: RestartPolicyName;
  MaximumRetryCount: number;
}

const NAMES: readonly string[] = ["no", "always", "unless-stopped", "on-failure"];
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
const STABLE_RUN_MS = 10_000;

/** Validates `HostConfig.RestartPolicy` as dockerd does; "" means no. */
export function restartPolicy(input: unknown, autoRemove: boolean): RestartPolicy {
  const raw = (input ?? {}) as { Name?: unknown; MaximumRetryCount?: unknown };
  const name = raw.Name === undefined || raw.Name === "" ? "no" : raw.Name;
  if (typeof name !== "string" || !NAMES.includes(name)) throw badRequest(`invalid restart policy '${String(name)}'`);
  const count = raw.MaximumRetryCount ?? 0;
  if (typeof count !== "number" || !Number.isInteger(count) || count < 0)
    throw badRequest("invalid restart policy: maximum retry count must be a non-negative integer");
  if (count > 0 && name !== "on-failure")
    throw badRequest(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  if (autoRemove && name !== "no") throw badRequest("can't create 'AutoRemove' container with restart policy");
  return { Name: name as RestartPolicyName, MaximumRetryCount: count };
}

export interface ExitFacts {
  exitCode: number;
  manuallyStopped: boolean;
  restartCount: number;
}

/** After an exit while the daemon runs. */
export function restartsAfterExit(policy: RestartPolicy, exit: ExitFacts): boolean {
  if (exit.manuallyStopped) return false;
  switch (policy.Name) {
    case "always":
    case "unless-stopped":
      return true;
    case "on-failure":
      return exit.exitCode !== 0 && (policy.MaximumRetryCount === 0 || exit.restartCount < policy.MaximumRetryCount);
    default:
      return false;
  }
}

/** When the daemon starts: `always` even after a manual stop (Docker's documented difference from unless-stopped). */
export function restartsOnDaemonStart(policy: RestartPolicy, manuallyStopped: boolean): boolean {
  return policy.Name === "always" || (policy.Name === "unless-stopped" && !manuallyStopped);
}

/** The wait before the next restart of a container, per container. */
export class RestartBackoff {
  readonly #delays = new Map<string, number>();

  next(id: string, ranMs: number): number {
    const previous = this.#delays.get(id);
    const delay = previous === undefined || ranMs >= STABLE_RUN_MS ? FIRST_DELAY_MS : Math.min(previous * 2, MAX_DELAY_MS);
    this.#delays.set(id, delay);
    return delay;
  }

  forget(id: string): void {
    this.#delays.delete(id);
  }
}
