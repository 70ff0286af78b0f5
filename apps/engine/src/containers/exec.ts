// Exec instances as dockerd keeps them (swagger "Exec"): created against a running container, started
// once (conmon --exec runs the process through @minato/runtime), their exit code recorded when the
// process ends. They live in memory only, as in dockerd; a session's files go once it has ended and
// no reader needs its log any more.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { type AttachConnection, connectAttach, type ExecSession, hostCapabilities, RuntimeError, resizeTerminal } from "@minato/runtime";
import { ApiError, badRequest, conflict, notFound } from "../api/errors.js";
import { apiErrorFrom, type ContainerManager, type ContainerRecord } from "./manager.js";

/** swagger `ExecConfig` (the fields minatod uses). */
export interface ExecConfig {
  Cmd?: string[] | null;
  Env?: string[] | null;
  User?: string;
  WorkingDir?: string;
  Tty?: boolean;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Privileged?: boolean;
  DetachKeys?: string;
}

export interface ExecInstance {
  id: string;
  containerId: string;
  config: ExecConfig;
  started: boolean;
  running: boolean;
  /** Set once the process has ended (or failed to start: 126/127 as dockerd reports them). */
  exitCode: number | null;
  pid: number;
  session?: ExecSession;
  /** Resolves once the process has ended. */
  ended: Promise<void>;
}

function checkRunning(c: ContainerRecord): void {
  if (c.status === "paused") throw conflict(`Container ${c.id} is paused, unpause the container before exec`);
  if (c.status !== "running") throw conflict(`container ${c.id} is not running`);
}

export class ExecStore {
  readonly #instances = new Map<string, ExecInstance>();

  constructor(private readonly manager: ContainerManager) {}

  get(id: string): ExecInstance {
    const instance = this.#instances.get(id);
    if (!instance) throw notFound(`No such exec instance: ${id}`);
    return instance;
  }

  create(containerInput: string, config: ExecConfig): ExecInstance {
    const c = this.manager.get(containerInput);
    checkRunning(c);
    if (!Array.isArray(config.Cmd) || config.Cmd.length === 0) throw badRequest("No exec command specified");
    if (config.Privileged !== undefined && config.Privileged !== null && typeof config.Privileged !== "boolean")
      throw badRequest("invalid Privileged: expected a boolean");
    // Docker's ids: 64 hex digits.
    const id = randomBytes(32).toString("hex");
    let markEnded: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => {
      markEnded = resolve;
    });
    const instance: ExecInstance = { id, containerId: c.id, config, started: false, running: false, exitCode: null, pid: 0, ended };
    (instance as ExecInstance & { markEnded: () => void }).markEnded = markEnded;
    this.#instances.set(id, instance);
    this.manager.events?.container(c, `exec_create: ${config.Cmd.join(" ")}`, { execID: id });
    return instance;
  }

  /**
   * Runs the process. A command that cannot be run fails here (a RuntimeError carrying 126/127, which
   * becomes the instance's exit code, as dockerd records it). `readers` delays the removal of the
   * session's files (its log) until the output has been sent. With `attach`, the session's attach
   * socket is connected before the process runs and handed over (paused: resume it to read).
   */
  async start(
    id: string,
    readers: Promise<unknown> = Promise.resolve(),
    attach?: (connection: AttachConnection) => void,
  ): Promise<ExecInstance> {
    const instance = this.get(id);
    if (instance.started) throw conflict(`Exec command ${id} has already run`);
    const c = this.manager.get(instance.containerId);
    checkRunning(c);
    instance.started = true;
    const markEnded = (instance as ExecInstance & { markEnded: () => void }).markEnded;
    const config = instance.config;
    let session: ExecSession;
    try {
      session = await this.manager.runtime.exec(c.id, {
        args: config.Cmd ?? [],
        ...(config.Env ? { env: config.Env } : {}),
        ...(config.User ? { user: config.User } : {}),
        ...(config.WorkingDir ? { workdir: config.WorkingDir } : {}),
        tty: config.Tty === true,
        // `exec --privileged`, as dockerd: every capability the daemon holds (the container's seccomp
        // filter, set when it started, still applies).
        ...(config.Privileged === true ? { capabilities: [...hostCapabilities()] } : {}),
        stdin: attach !== undefined && config.AttachStdin === true,
        ...(attach
          ? {
              attach: async ({ attachSocket }: { attachSocket: string }) => {
                const connection = connectAttach(attachSocket);
                connection.pause();
                attach(connection);
              },
            }
          : {}),
        // Short: conmon's attach socket path under the session directory must fit 108 bytes.
        id: id.slice(0, 12),
      });
    } catch (error) {
      instance.exitCode = error instanceof RuntimeError && error.exitCode !== undefined ? error.exitCode : 126;
      markEnded();
      throw apiErrorFrom(error);
    }
    instance.session = session;
    instance.pid = session.pid;
    instance.running = true;
    this.manager.events?.container(c, `exec_start: ${(config.Cmd ?? []).join(" ")}`, { execID: id });
    void this.#watch(instance, session, markEnded, readers);
    return instance;
  }

  async #watch(instance: ExecInstance, session: ExecSession, markEnded: () => void, readers: Promise<unknown>): Promise<void> {
    for (;;) {
      const code = await session.wait(5_000).catch(() => undefined);
      if (code !== undefined) {
        instance.exitCode = code;
        break;
      }
      // The container's bundle (and the session with it) went away: the process is gone.
      if (!existsSync(session.dir)) break;
    }
    instance.running = false;
    const c = this.manager.find(instance.containerId);
    if (c) this.manager.events?.container(c, "exec_die", { execID: instance.id, exitCode: String(instance.exitCode ?? -1) });
    markEnded();
    await readers.catch(() => undefined);
    await session.remove().catch(() => undefined);
  }

  /**
   * Resizes the session's terminal through conmon's control FIFO. As in moby: 409 when the container
   * is not running; a session still starting is waited for (up to 10 s); without a TTY, or once the
   * process ended, there is nothing to resize and it succeeds.
   */
  async resize(id: string, height: number, width: number): Promise<void> {
    const instance = this.get(id);
    checkRunning(this.manager.get(instance.containerId));
    for (let waited = 0; instance.started && !instance.session && instance.exitCode === null; waited += 20) {
      if (waited >= 10_000) throw new ApiError(500, "timeout waiting for exec session ready");
      await sleep(20);
    }
    const session = instance.session;
    if (!session || !instance.running || instance.config.Tty !== true) return;
    await resizeTerminal(session.ctlFifo, height, width);
  }

  /** Waits until the session's log file exists (conmon creates it as it starts the process). */
  static async logReady(session: ExecSession, instance: ExecInstance): Promise<boolean> {
    for (let delay = 5; ; delay = Math.min(delay * 2, 50)) {
      if (existsSync(session.log)) return true;
      if (!instance.running) return existsSync(session.log);
      await sleep(delay);
    }
  }
}
