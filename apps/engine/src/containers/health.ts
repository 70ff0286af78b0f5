// Health checks as dockerd runs them (moby daemon/health.go; swagger "HealthConfig", "Health"): the
// container's HEALTHCHECK (or --health-cmd) runs as an exec in the container every interval (every
// start interval during the start period while still starting); a probe that exits 0 makes it
// healthy, `retries` failures in a row unhealthy, and failures within the start period do not count
// until the first success. Each change of status is a `health_status` event. The state is kept in
// the container's directory, so checks go on where they were after a daemon restart.
import { randomBytes } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { badRequest } from "../api/errors.js";
import type { EngineEvent, EventLog } from "../events/log.js";
import type { ContainerManager, ContainerRecord } from "./manager.js";

/** swagger `HealthConfig`; durations in nanoseconds, 0 meaning the default. */
export interface HealthConfig {
  Test?: string[] | null;
  Interval?: number;
  Timeout?: number;
  Retries?: number;
  StartPeriod?: number;
  StartInterval?: number;
}

export type HealthStatus = "starting" | "healthy" | "unhealthy";

/** swagger `HealthcheckResult`. */
export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** swagger `Health`. */
export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthResult[];
}

const MS = 1_000_000;
const DEFAULT_INTERVAL = 30_000;
const DEFAULT_TIMEOUT = 30_000;
const DEFAULT_START_INTERVAL = 5_000;
const DEFAULT_RETRIES = 3;
const MAX_LOG_ENTRIES = 5;
const MAX_OUTPUT = 4096;

/**
 * The container's effective health check: the user's fields over the image's (a field left 0 or an
 * empty Test inherits, as dockerd merges them). Refuses what dockerd refuses. Undefined: none.
 */
export function effectiveHealthcheck(
  user: HealthConfig | null | undefined,
  image: HealthConfig | null | undefined,
): HealthConfig | undefined {
  if (!user && !image) return undefined;
  const merged: HealthConfig = { ...(image ?? {}) };
  for (const [key, value] of Object.entries(user ?? {}) as [keyof HealthConfig, unknown][]) {
    if (key === "Test" ? Array.isArray(value) && value.length > 0 : typeof value === "number" && value !== 0)
      (merged as Record<string, unknown>)[key] = value;
  }
  for (const key of ["Interval", "Timeout", "StartPeriod", "StartInterval"] as const) {
    const value = merged[key];
    if (value === undefined || value === null || value === 0) continue;
    if (typeof value !== "number" || !Number.isInteger(value) || value < MS)
      throw badRequest(`${key} in Healthcheck cannot be less than 1ms`);
  }
  if (merged.Retries !== undefined && merged.Retries !== null && (!Number.isInteger(merged.Retries) || merged.Retries < 0))
    throw badRequest("Retries in Healthcheck cannot be negative");
  const test = merged.Test;
  if (test !== undefined && test !== null) {
    if (!Array.isArray(test) || test.some((part) => typeof part !== "string"))
      throw badRequest("Healthcheck Test must be a list of strings");
    const [kind] = test;
    if (kind !== undefined && !["NONE", "CMD", "CMD-SHELL"].includes(kind))
      throw badRequest(`unknown healthcheck type '${kind}' (expected NONE, CMD or CMD-SHELL)`);
    if ((kind === "CMD" || kind === "CMD-SHELL") && test.length < 2) throw badRequest(`Healthcheck ${kind} needs a command`);
  }
  return merged;
}

/** The probe's argv, or undefined when the container has no check (none configured, or NONE). */
export function probeCommand(check: HealthConfig | undefined): string[] | undefined {
  const [kind, ...rest] = check?.Test ?? [];
  if (kind === "CMD") return rest;
  if (kind === "CMD-SHELL") return ["/bin/sh", "-c", rest.join(" ")];
  return undefined;
}

const msOf = (nanos: number | undefined, fallback: number) => (nanos ? Math.max(1, Math.round(nanos / MS)) : fallback);

/** A duration as Go prints one (time.Duration.String): `200ms`, `30s`, `1m30s`, `2h0m0s`. */
export function goDurationText(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = `${(ms % 60_000) / 1000}s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  return minutes > 0 ? `${minutes}m${seconds}` : seconds;
}

interface Monitor {
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
}

export class HealthMonitor {
  readonly #states = new Map<string, HealthState>();
  readonly #monitors = new Map<string, Monitor>();
  readonly #unsubscribe: () => void;
  readonly #saving = new Map<string, Promise<void>>();
  /** Probes run and failed since the daemon started (the metrics' health check counters). */
  probesRun = 0;
  probesFailed = 0;

  constructor(
    private readonly manager: ContainerManager,
    private readonly events: EventLog,
    private readonly log: { warn(obj: object, msg: string): void },
  ) {
    this.#unsubscribe = events.subscribe((event) => this.#onEvent(event));
  }

  /** After a daemon restart: the running containers' checks go on from their saved state. */
  async resume(): Promise<void> {
    for (const c of this.manager.list()) {
      const saved = await readFile(this.#file(c.id), "utf8")
        .then((text) => JSON.parse(text) as HealthState)
        .catch(() => undefined);
      if (saved) this.#states.set(c.id, saved);
      if (c.status === "running" || c.status === "paused") this.#begin(c, saved === undefined);
    }
  }

  close(): void {
    this.#unsubscribe();
    for (const id of [...this.#monitors.keys()]) this.#stop(id);
  }

  /** inspect's `State.Health`: undefined for a container without a health check or never started (as dockerd's). */
  state(c: ContainerRecord): HealthState | undefined {
    if (!probeCommand(c.config.Healthcheck as HealthConfig | undefined)) return undefined;
    return this.#states.get(c.id);
  }

  /** The `health` filter's value: starting, healthy, unhealthy or none. */
  status(c: ContainerRecord): HealthStatus | "none" {
    return this.state(c)?.Status ?? "none";
  }

  #file(id: string): string {
    return join(this.manager.dir(id), "health.json");
  }

  #onEvent(event: EngineEvent): void {
    if (event.Type !== "container") return;
    const id = event.Actor.ID;
    if (event.Action === "start") {
      const c = this.manager.find(id);
      if (c) this.#begin(c, true);
    } else if (event.Action === "die") this.#stop(id);
    else if (event.Action === "destroy") {
      this.#stop(id);
      this.#states.delete(id);
    }
  }

  /** `reset`: a (re)start — starting again, the streak cleared, the log kept (as dockerd's initHealthMonitor). */
  #begin(c: ContainerRecord, reset: boolean): void {
    const check = c.config.Healthcheck as HealthConfig | undefined;
    if (!probeCommand(check)) return;
    this.#stop(c.id);
    if (reset) {
      const previous = this.#states.get(c.id);
      this.#states.set(c.id, { Status: "starting", FailingStreak: 0, Log: previous?.Log ?? [] });
      void this.#save(c.id);
    }
    const monitor: Monitor = { timer: undefined, stopped: false };
    this.#monitors.set(c.id, monitor);
    this.#schedule(c.id, monitor);
  }

  #stop(id: string): void {
    const monitor = this.#monitors.get(id);
    if (!monitor) return;
    monitor.stopped = true;
    clearTimeout(monitor.timer);
    this.#monitors.delete(id);
  }

  /** The wait before the next probe: the start interval while starting within the start period. */
  #interval(c: ContainerRecord, check: HealthConfig): number {
    const interval = msOf(check.Interval, DEFAULT_INTERVAL);
    const sinceStart = Date.now() - Date.parse(c.startedAt ?? c.created);
    if (sinceStart >= msOf(check.StartPeriod, 0)) return interval;
    return this.#states.get(c.id)?.Status === "starting" ? msOf(check.StartInterval, DEFAULT_START_INTERVAL) : interval;
  }

  #schedule(id: string, monitor: Monitor): void {
    const c = this.manager.find(id);
    const check = c?.config.Healthcheck as HealthConfig | undefined;
    if (!c || !check || monitor.stopped) return;
    monitor.timer = setTimeout(
      () => {
        void this.#probe(id, monitor).finally(() => this.#schedule(id, monitor));
      },
      this.#interval(c, check),
    );
    monitor.timer.unref();
  }

  async #probe(id: string, monitor: Monitor): Promise<void> {
    const c = this.manager.find(id);
    const check = c?.config.Healthcheck as HealthConfig | undefined;
    const args = probeCommand(check);
    // A frozen container cannot run a probe; its health stays as it was until it is thawed.
    if (!c || !check || !args || c.status !== "running") return;
    const timeout = msOf(check.Timeout, DEFAULT_TIMEOUT);
    const start = new Date();
    const execId = randomBytes(32).toString("hex");
    const command = args.join(" ");
    let result: Omit<HealthResult, "Start" | "End">;
    this.events.container(c, `exec_create: ${command}`, { execID: execId });
    try {
      const session = await this.manager.runtime.exec(c.id, { args, id: `h${execId.slice(0, 11)}` });
      this.events.container(c, `exec_start: ${command}`, { execID: execId });
      try {
        const code = await session.wait(timeout).catch(() => undefined);
        if (code === undefined) {
          // Hung: killed without a grace period, as the swagger says.
          try {
            process.kill(session.pid, "SIGKILL");
          } catch {
            // already gone
          }
          result = { ExitCode: -1, Output: `Health check exceeded timeout (${goDurationText(timeout)})` };
        } else {
          const output = (await session.output()).map((r) => (r.complete ? `${r.text}\n` : r.text)).join("");
          result = { ExitCode: code, Output: output.length > MAX_OUTPUT ? output.slice(0, MAX_OUTPUT) : output };
        }
      } finally {
        void session.remove().catch(() => undefined);
      }
    } catch (error) {
      // The probe could not run (no such command, the container stopped): a failure with the reason.
      result = { ExitCode: -1, Output: (error as Error).message };
    }
    this.events.container(c, "exec_die", { execID: execId, exitCode: String(result.ExitCode) });
    this.probesRun += 1;
    if (result.ExitCode !== 0) this.probesFailed += 1;
    if (monitor.stopped) return;
    this.#record(c, check, { Start: start.toISOString(), End: new Date().toISOString(), ...result });
  }

  #record(c: ContainerRecord, check: HealthConfig, result: HealthResult): void {
    const state = this.#states.get(c.id) ?? { Status: "starting", FailingStreak: 0, Log: [] };
    const before = state.Status;
    state.Log = [...state.Log, result].slice(-MAX_LOG_ENTRIES);
    if (result.ExitCode === 0) {
      state.FailingStreak = 0;
      state.Status = "healthy";
    } else {
      // Within the start period, failures before the first success do not count.
      const inStartPeriod = Date.parse(result.Start) - Date.parse(c.startedAt ?? c.created) < msOf(check.StartPeriod, 0);
      if (!(state.Status === "starting" && inStartPeriod)) {
        state.FailingStreak += 1;
        if (state.FailingStreak >= (check.Retries || DEFAULT_RETRIES)) state.Status = "unhealthy";
      }
    }
    this.#states.set(c.id, state);
    void this.#save(c.id);
    if (state.Status !== before) this.events.container(c, `health_status: ${state.Status}`);
  }

  /** Saves the container's current state; saves of one container run one after another, the last one last. */
  #save(id: string): Promise<void> {
    const next = (this.#saving.get(id) ?? Promise.resolve()).then(() => this.#write(id));
    this.#saving.set(id, next);
    void next.finally(() => {
      if (this.#saving.get(id) === next) this.#saving.delete(id);
    });
    return next;
  }

  async #write(id: string): Promise<void> {
    const state = this.#states.get(id);
    if (!state) return;
    // Written aside and renamed: a daemon stopped mid-write leaves the previous state, never half of one.
    const file = this.#file(id);
    const temporary = `${file}.${randomBytes(4).toString("hex")}`;
    try {
      await writeFile(temporary, JSON.stringify(state));
      await rename(temporary, file);
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => undefined);
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn({ err: error, id }, "saving the health state");
    }
  }
}
