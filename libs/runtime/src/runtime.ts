// Runtime: OCI bundles run by runc under conmon. conmon is the parent of each container process: it
// keeps the container's stdio, writes its log (k8s-file) and, when the process ends, its exit code
// into an exit file — so containers outlive whoever created them (see runtime.md for the operations).
import { spawn } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { delimiter, isAbsolute, join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type AttachConnection, connectAttach, resizeTerminal } from "./attach.js";
import { RuntimeError } from "./errors.js";
import { type CgroupMode, detectCgroupMode } from "./host.js";
import { type LogRecord, parseK8sLog } from "./logs.js";
import { mergeEnv } from "./spec.js";
import type { OciProcess, OciResources, OciSpec } from "./spec-types.js";
import { readOptional, resolveUserInRootfs } from "./user.js";

export interface RuntimeOptions {
  /** Directory holding one bundle directory per container (e.g. /run/minato/containers). Keep it short: attach socket paths must fit 108 bytes. */
  root: string;
  /** runc's state directory (`runc --root`); default `<root>/.runc`. */
  stateRoot?: string;
  /** The OCI runtime binary; default: selectOciRuntime(). */
  runtimePath?: string;
  /** The conmon binary; default: conmon from PATH (or /usr/bin/conmon, /usr/libexec/podman/conmon). */
  conmonPath?: string;
  /** Maximum size of each log file (conmon --log-size-max); unlimited by default. */
  logSizeMax?: number;
}

export interface CreateOptions {
  /** Keep a stdin pipe open to the process (attach socket writes reach it). */
  stdin?: boolean;
  /**
   * Keep the process's stdin open when an attached client ends its input (Docker's OpenStdin without
   * StdinOnce); by default conmon closes it then.
   */
  leaveStdinOpen?: boolean;
}

/** OCI states (runtime.md) as runc reports them. */
export type ContainerStatus = "creating" | "created" | "running" | "paused" | "stopped";

export interface ContainerState {
  id: string;
  status: ContainerStatus;
  /** The container process's host pid (0 once stopped). */
  pid: number;
  bundle: string;
  /** From conmon's exit file once the process has ended: 128+signal when a signal killed it. */
  exitCode?: number;
  /** True when conmon saw the cgroup's OOM killer act (it writes an `oom` file in the persist dir). */
  oomKilled: boolean;
}

export interface ContainerPaths {
  bundle: string;
  config: string;
  /** k8s-file log written by conmon. */
  log: string;
  /** conmon's exit file: the exit code as decimal text. */
  exitFile: string;
  /** conmon's attach socket (SOCK_SEQPACKET): reads get stdout/stderr frames, writes go to stdin. */
  attachSocket: string;
  /** conmon's control FIFO (resize and log-reopen commands). */
  ctlFifo: string;
  conmonPidFile: string;
  pidFile: string;
  /** Present when the container was OOM-killed. */
  oomFile: string;
}

export interface ExecOptions {
  args: string[];
  /** Added to (replacing by key) the container's environment. */
  env?: string[];
  /** `-u`: resolved against the container's rootfs; default the container's user. */
  user?: string;
  /** `-w`; default the container's working directory. */
  workdir?: string;
  tty?: boolean;
  stdin?: boolean;
  /** The exec session id; generated when omitted. */
  id?: string;
  /** `exec --privileged`: these capabilities (bounding, effective, permitted) instead of the container's. */
  capabilities?: string[];
  /**
   * Called once conmon's attach socket for the session is listening and before the process runs
   * (conmon --exec-attach), so a client connected here misses none of its output.
   */
  attach?: (sockets: { attachSocket: string; ctlFifo: string }) => Promise<void>;
}

export interface ExecSession {
  id: string;
  containerId: string;
  pid: number;
  dir: string;
  log: string;
  exitFile: string;
  attachSocket: string;
  /** conmon's control FIFO for the session (exists only for sessions started with `attach`). */
  ctlFifo: string;
  /** Waits (bounded polling) for the exec'd process to end and returns its exit code. */
  wait(timeoutMs?: number): Promise<number>;
  /** The session's output so far. */
  output(): Promise<LogRecord[]>;
  /** Removes the session's files (after it ended). */
  remove(): Promise<void>;
}

const ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const DEFAULT_WAIT_MS = 30_000;

function findInPath(name: string, extra: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/bin", "/sbin", "/bin", ...extra];
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The OCI runtime for this host: crun when cgroup v2 is unified and crun is installed, otherwise runc
 * (crun refuses hybrid cgroup layouts; runc handles v1, hybrid and v2).
 */
export function selectOciRuntime(mode: CgroupMode = detectCgroupMode()): { name: "runc" | "crun"; path: string } {
  if (mode === "unified") {
    const crun = findInPath("crun");
    if (crun) return { name: "crun", path: crun };
  }
  const runc = findInPath("runc");
  if (!runc)
    throw new RuntimeError("UNSUPPORTED_HOST", "runc not found in PATH: install the Debian package runc (apt-get install -y runc)");
  return { name: "runc", path: runc };
}

/** Maps an OCI runtime's start error to the exit code Docker reports (moby's translateContainerdStartErr). */
export function startErrorExitCode(message: string): { code: "COMMAND_NOT_FOUND" | "NOT_EXECUTABLE" | "RUNTIME_FAILED"; exitCode: number } {
  if (/executable file not found|no such file or directory/i.test(message)) return { code: "COMMAND_NOT_FOUND", exitCode: 127 };
  if (/permission denied|is a directory/i.test(message)) return { code: "NOT_EXECUTABLE", exitCode: 126 };
  return { code: "RUNTIME_FAILED", exitCode: 128 };
}

function signalName(signal: string | number): string {
  if (typeof signal === "number") return String(signal);
  const upper = signal.toUpperCase();
  if (/^[0-9]+$/.test(upper)) return upper;
  return upper.startsWith("SIG") ? upper.slice(3) : upper;
}

interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

function execFile(path: string, args: string[]): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** runc's text error ("time=... level=error msg=\"...\"") reduced to its message. */
function runcMessage(stderr: string): string {
  const lines = stderr
    .trim()
    .split("\n")
    .filter((l) => l !== "");
  const last = lines.at(-1) ?? "";
  const json = (() => {
    try {
      return (JSON.parse(last) as { msg?: string }).msg;
    } catch {
      return undefined;
    }
  })();
  if (json) return json;
  const match = /msg="((?:[^"\\]|\\.)*)"/.exec(last);
  return match ? match[1]!.replace(/\\"/g, '"') : last;
}

/** True while `pid` is a live (not zombie) conmon process. */
async function conmonAlive(pid: number): Promise<boolean> {
  const stat = await readOptional(`/proc/${pid}/stat`);
  if (stat === undefined) return false;
  const close = stat.lastIndexOf(")");
  const comm = stat.slice(stat.indexOf("(") + 1, close);
  const state = stat.slice(close + 2, close + 3);
  return comm === "conmon" && state !== "Z" && state !== "X";
}

/** Bounded polling for a condition; throws `message` after `timeoutMs`. */
async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, message: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new RuntimeError("RUNTIME_FAILED", message);
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
}

interface ConmonResult {
  pid: number;
}

export class Runtime {
  readonly root: string;
  readonly stateRoot: string;
  readonly runtimePath: string;
  readonly conmonPath: string;
  readonly logSizeMax: number | undefined;

  constructor(options: RuntimeOptions) {
    if (!isAbsolute(options.root)) throw new RuntimeError("INVALID_OPTION", `runtime root must be absolute: ${options.root}`);
    this.root = options.root;
    this.stateRoot = options.stateRoot ?? join(options.root, ".runc");
    this.runtimePath = options.runtimePath ?? selectOciRuntime().path;
    const conmon = options.conmonPath ?? findInPath("conmon", ["/usr/libexec/podman", "/usr/local/libexec/podman"]);
    if (!conmon)
      throw new RuntimeError("UNSUPPORTED_HOST", "conmon not found: install the Debian package conmon (apt-get install -y conmon)");
    this.conmonPath = conmon;
    this.logSizeMax = options.logSizeMax;
  }

  /** The files of a container's bundle. */
  paths(id: string): ContainerPaths {
    checkId(id);
    const bundle = join(this.root, id);
    return {
      bundle,
      config: join(bundle, "config.json"),
      log: join(bundle, "ctr.log"),
      exitFile: join(bundle, "exits", id),
      attachSocket: join(bundle, "attach"),
      ctlFifo: join(bundle, "ctl"),
      conmonPidFile: join(bundle, "conmon.pid"),
      pidFile: join(bundle, "pidfile"),
      oomFile: join(bundle, "oom"),
    };
  }

  private runtimeArgs(): string[] {
    return ["--root", this.stateRoot];
  }

  private async runtime(args: string[]): Promise<Exec> {
    return execFile(this.runtimePath, [...this.runtimeArgs(), ...args]);
  }

  private async runtimeOrThrow(id: string, args: string[]): Promise<string> {
    const result = await this.runtime(args);
    if (result.code === 0) return result.stdout;
    const message = runcMessage(result.stderr);
    if (/container does not exist|not exist/i.test(message)) throw new RuntimeError("NOT_FOUND", `No such container: ${id}`);
    if (/not running|not paused|cannot (pause|resume|kill)|is not|already/i.test(message)) {
      throw new RuntimeError("INVALID_STATE", `container ${id}: ${message}`);
    }
    throw new RuntimeError("RUNTIME_FAILED", `${args[0]} ${id}: ${message || `exit ${result.code}`}`);
  }

  /**
   * Starts conmon, which runs `runc create` (or `runc exec` for --exec) and reports the process pid on
   * the sync pipe (fd 3, _OCI_SYNCPIPE) as {"data": pid}, or {"data": -1, "message": ...} on failure.
   */
  private conmon(args: string[], cwd: string, what: string, attach?: () => Promise<void>): Promise<ConmonResult> {
    return new Promise((resolve, reject) => {
      // With --exec-attach conmon reads the start pipe once at startup, writes the attach pipe when its
      // attach socket listens, then reads the start pipe again before it runs the process.
      const child = spawn(this.conmonPath, args, {
        env: { ...process.env, _OCI_SYNCPIPE: "3", ...(attach ? { _OCI_ATTACHPIPE: "4", _OCI_STARTPIPE: "5" } : {}) },
        stdio: attach ? ["ignore", "ignore", "pipe", "pipe", "pipe", "pipe"] : ["ignore", "ignore", "pipe", "pipe"],
        // conmon drops files (e.g. `oom`) in its working directory: keep them in the bundle.
        cwd,
        detached: true,
      });
      const sync = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
      let stderr = "";
      let buffer = "";
      let settled = false;
      let exited: number | null | undefined;
      const stdio = child.stdio as unknown[];
      const attachPipe = stdio[4] as (NodeJS.ReadableStream & { destroy(): void }) | null | undefined;
      const startPipe = stdio[5] as (NodeJS.WritableStream & { destroy(): void }) | null | undefined;
      const finish = (error: Error | undefined, value?: ConmonResult) => {
        if (settled) return;
        settled = true;
        sync.destroy();
        attachPipe?.destroy();
        startPipe?.destroy();
        child.unref();
        if (error) reject(error);
        else resolve(value!);
      };
      child.stderr!.setEncoding("utf8").on("data", (d: string) => {
        stderr += d;
      });
      child.on("error", (error) =>
        finish(new RuntimeError("UNSUPPORTED_HOST", `cannot run conmon (${this.conmonPath}): ${error.message}`)),
      );
      child.on("exit", (code) => {
        exited = code;
        // conmon's first process exits once it has forked the monitor; a failure before that is fatal.
        if (code !== 0) finish(new RuntimeError("RUNTIME_FAILED", `${what}: conmon exited with ${code}: ${stderr.trim()}`));
      });
      sync.setEncoding("utf8");
      sync.on("data", (d: string) => {
        buffer += d;
        for (;;) {
          const nl = buffer.indexOf("\n");
          if (nl < 0) break;
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          let message: { data?: number; message?: string };
          try {
            message = JSON.parse(line) as { data?: number; message?: string };
          } catch {
            continue;
          }
          if (typeof message.data !== "number") continue;
          if (message.data < 0) {
            const text = (message.message ?? "unknown error").trim();
            const mapped = startErrorExitCode(text);
            finish(new RuntimeError(mapped.code, `${what}: ${text}`, mapped.exitCode));
          } else finish(undefined, { pid: message.data });
          return;
        }
      });
      sync.on("end", () => {
        finish(new RuntimeError("RUNTIME_FAILED", `${what}: conmon closed its sync pipe without a pid (exit ${exited}): ${stderr.trim()}`));
      });
      sync.on("error", () => {});
      if (attach && attachPipe && startPipe) {
        startPipe.on("error", () => {});
        attachPipe.on("error", () => {});
        startPipe.write("0");
        attachPipe.once("data", () => {
          attach().then(
            () => startPipe.write("0"),
            (error: Error) => {
              finish(error);
              child.kill("SIGKILL");
            },
          );
        });
      }
    });
  }

  private conmonArgs(
    cid: string,
    cuuid: string,
    bundle: string,
    p: { pidFile: string; conmonPidFile: string; log: string; exitDir: string; persistDir: string },
    terminal: boolean,
    stdin: boolean,
    leaveStdinOpen = false,
  ): string[] {
    const args = [
      "--api-version",
      "1",
      "--cid",
      cid,
      "--cuuid",
      cuuid,
      "--name",
      cid,
      "--runtime",
      this.runtimePath,
      "--bundle",
      bundle,
      "--container-pidfile",
      p.pidFile,
      "--conmon-pidfile",
      p.conmonPidFile,
      "--log-path",
      `k8s-file:${p.log}`,
      "--exit-dir",
      p.exitDir,
      "--persist-dir",
      p.persistDir,
      "--socket-dir-path",
      bundle,
      "--full-attach",
      "--log-level",
      "error",
      ...this.runtimeArgs().flatMap((a) => ["--runtime-arg", a]),
    ];
    if (this.logSizeMax !== undefined) args.push("--log-size-max", String(this.logSizeMax));
    if (terminal) args.push("--terminal");
    if (stdin) args.push("--stdin");
    if (stdin && leaveStdinOpen) args.push("--leave-stdin-open");
    return args;
  }

  /**
   * Creates the container (OCI `create`): writes the bundle, then conmon runs `runc create`. The
   * process waits for `start`. Command-not-found and not-executable are reported here as RuntimeErrors
   * with Docker's exit codes 127/126 (runc looks the command up before it waits for start).
   */
  async create(id: string, spec: OciSpec, options: CreateOptions = {}): Promise<{ pid: number; paths: ContainerPaths }> {
    const paths = this.paths(id);
    if (!isAbsolute(spec.root.path)) throw new RuntimeError("INVALID_OPTION", "spec.root.path must be absolute");
    const rel = relative(paths.bundle, spec.root.path);
    if (rel === "" || !rel.startsWith("..")) {
      throw new RuntimeError(
        "INVALID_OPTION",
        `the rootfs must live outside the bundle directory ${paths.bundle} (delete removes the bundle)`,
      );
    }
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await mkdir(this.stateRoot, { recursive: true, mode: 0o700 });
    try {
      await mkdir(paths.bundle, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") throw new RuntimeError("CONFLICT", `container ${id} already exists`);
      throw error;
    }
    try {
      await mkdir(join(paths.bundle, "exits"));
      await writeFile(paths.config, JSON.stringify(spec, null, 2), { mode: 0o600 });
      const args = this.conmonArgs(
        id,
        id,
        paths.bundle,
        {
          pidFile: paths.pidFile,
          conmonPidFile: paths.conmonPidFile,
          log: paths.log,
          exitDir: join(paths.bundle, "exits"),
          persistDir: paths.bundle,
        },
        spec.process.terminal ?? false,
        options.stdin ?? false,
        options.leaveStdinOpen ?? false,
      );
      const { pid } = await this.conmon(args, paths.bundle, `create ${id}`);
      return { pid, paths };
    } catch (error) {
      await this.runtime(["delete", "--force", id]);
      await this.waitConmonGone(paths.conmonPidFile);
      await rm(paths.bundle, { recursive: true, force: true });
      throw error;
    }
  }

  /** OCI `start`: runs the user process of a created container. */
  async start(id: string): Promise<void> {
    await this.runtimeOrThrow(id, ["start", id]);
  }

  /** create + start. */
  async run(id: string, spec: OciSpec, options: CreateOptions = {}): Promise<{ pid: number; paths: ContainerPaths }> {
    const created = await this.create(id, spec, options);
    try {
      await this.start(id);
    } catch (error) {
      await this.delete(id, { force: true });
      throw error;
    }
    return created;
  }

  /** The container's exit code from conmon's exit file, once its process has ended. */
  async exitCode(id: string): Promise<number | undefined> {
    const text = await readOptional(this.paths(id).exitFile);
    if (text === undefined || text.trim() === "") return undefined;
    return Number(text.trim());
  }

  /** OCI `state`, plus the exit code and OOM flag conmon recorded. */
  async state(id: string): Promise<ContainerState> {
    const paths = this.paths(id);
    const out = await this.runtimeOrThrow(id, ["state", id]);
    const raw = JSON.parse(out) as { id: string; status: ContainerStatus; pid?: number; bundle: string };
    const exitCode = await this.exitCode(id);
    let status = raw.status;
    // conmon writes the exit file after reaping; runc may still say "running" for a moment before.
    if (exitCode !== undefined) status = "stopped";
    return {
      id: raw.id,
      status,
      pid: status === "stopped" ? 0 : (raw.pid ?? 0),
      bundle: raw.bundle,
      ...(exitCode !== undefined ? { exitCode } : {}),
      oomKilled: existsSync(paths.oomFile),
    };
  }

  /** Ids of the containers runc knows under this runtime's state root. */
  async list(): Promise<string[]> {
    const result = await this.runtime(["list", "--format", "json"]);
    if (result.code !== 0) throw new RuntimeError("RUNTIME_FAILED", `list: ${runcMessage(result.stderr)}`);
    const parsed = JSON.parse(result.stdout.trim() || "null") as { id: string }[] | null;
    return (parsed ?? []).map((c) => c.id);
  }

  /** Sends a signal (name like "SIGTERM"/"TERM" or a number) to the container's process; `all` to every process in it. */
  async kill(id: string, signal: string | number = "SIGTERM", options: { all?: boolean } = {}): Promise<void> {
    await this.runtimeOrThrow(id, ["kill", ...(options.all ? ["--all"] : []), id, signalName(signal)]);
  }

  /** Freezes every process of the container (cgroup freezer). */
  async pause(id: string): Promise<void> {
    await this.runtimeOrThrow(id, ["pause", id]);
  }

  /** Thaws a paused container. */
  async resume(id: string): Promise<void> {
    await this.runtimeOrThrow(id, ["resume", id]);
  }

  /**
   * OCI runtimes' `update`: applies new cgroup limits to a running or paused container (runc writes
   * the v1 or v2 files, whichever the host has). Fields left out stay as they are.
   */
  async update(id: string, resources: OciResources): Promise<void> {
    const file = join(this.paths(id).bundle, "resources.json");
    await writeFile(file, JSON.stringify(resources), { mode: 0o600 });
    try {
      await this.runtimeOrThrow(id, ["update", "--resources", file, id]);
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Waits (bounded polling on the exit file) for the container's process to end; returns its exit code. */
  async wait(id: string, timeoutMs = DEFAULT_WAIT_MS): Promise<number> {
    return waitFor(() => this.exitCode(id), timeoutMs, `container ${id} did not exit within ${timeoutMs} ms`);
  }

  /** The container's log so far. */
  async logs(id: string): Promise<LogRecord[]> {
    return parseK8sLog((await readOptional(this.paths(id).log)) ?? "");
  }

  /**
   * OCI `delete`: removes runc's state and cgroups and the bundle directory. A running container is
   * refused (INVALID_STATE) unless `force`, which kills it first.
   */
  async delete(id: string, options: { force?: boolean } = {}): Promise<void> {
    const paths = this.paths(id);
    const result = await this.runtime(["delete", ...(options.force ? ["--force"] : []), id]);
    if (result.code !== 0) {
      const message = runcMessage(result.stderr);
      if (!/does not exist/i.test(message)) {
        if (/running|paused|created/i.test(message)) throw new RuntimeError("INVALID_STATE", `cannot delete container ${id}: ${message}`);
        throw new RuntimeError("RUNTIME_FAILED", `delete ${id}: ${message}`);
      }
      if (!existsSync(paths.bundle)) throw new RuntimeError("NOT_FOUND", `No such container: ${id}`);
    }
    await this.waitConmonGone(paths.conmonPidFile);
    await rm(paths.bundle, { recursive: true, force: true });
  }

  /** conmon exits right after writing the exit file; wait for it so the bundle can go. */
  private async waitConmonGone(pidFile: string): Promise<void> {
    const text = await readOptional(pidFile);
    const pid = Number(text?.trim());
    if (!Number.isInteger(pid) || pid <= 0) return;
    try {
      await waitFor(async () => ((await conmonAlive(pid)) ? undefined : true), 10_000, `conmon ${pid} did not exit`);
    } catch {
      process.kill(pid, "SIGKILL");
    }
  }

  /**
   * Connects to the container's attach socket (it listens from `create` on, so a client connected
   * between create and start sees all the output). NOT_FOUND when no conmon listens there.
   */
  attach(id: string): AttachConnection {
    return connectAttach(this.paths(id).attachSocket);
  }

  /** Resizes the container's TTY; false when its conmon is gone. */
  resize(id: string, height: number, width: number): Promise<boolean> {
    return resizeTerminal(this.paths(id).ctlFifo, height, width);
  }

  /** The container's config.json as written at create. */
  async spec(id: string): Promise<OciSpec> {
    const text = await readOptional(this.paths(id).config);
    if (text === undefined) throw new RuntimeError("NOT_FOUND", `No such container: ${id}`);
    return JSON.parse(text) as OciSpec;
  }

  /**
   * Runs another process in a running container: conmon --exec runs `runc exec --detach` and monitors
   * the process (its own log, exit file and attach socket in a per-session directory of the bundle).
   */
  async exec(id: string, options: ExecOptions): Promise<ExecSession> {
    const spec = await this.spec(id);
    // A stopped container has conmon's exit file; runc exec itself refuses a paused one (mapped
    // below). Asking `runc state` first would cost one more runc process on every exec.
    if ((await this.exitCode(id)) !== undefined) throw new RuntimeError("INVALID_STATE", `Container ${id} is not running`);
    if (options.args.length === 0) throw new RuntimeError("NO_COMMAND", "No exec command specified");
    const execId = options.id ?? `e${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    checkId(execId);
    const bundle = this.paths(id).bundle;
    const dir = join(bundle, `exec-${execId}`);
    const process: OciProcess = {
      ...spec.process,
      terminal: options.tty ?? false,
      args: options.args,
      env: mergeEnv(spec.process.env, options.env ?? []),
      cwd: options.workdir ?? spec.process.cwd,
      ...(options.capabilities
        ? {
            capabilities: {
              bounding: [...options.capabilities],
              effective: [...options.capabilities],
              permitted: [...options.capabilities],
            },
          }
        : {}),
    };
    if (options.user !== undefined) {
      const user = await resolveUserInRootfs(spec.root.path, options.user);
      process.user = { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}) };
    }
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") throw new RuntimeError("CONFLICT", `exec session ${execId} already exists`);
      throw error;
    }
    const specFile = join(dir, "process.json");
    await writeFile(specFile, JSON.stringify(process), { mode: 0o600 });
    await mkdir(join(dir, "exits"));
    const log = join(dir, "exec.log");
    const exitFile = join(dir, "exits", id);
    const args = [
      ...this.conmonArgs(
        id,
        execId,
        dir,
        { pidFile: join(dir, "pid"), conmonPidFile: join(dir, "conmon.pid"), log, exitDir: join(dir, "exits"), persistDir: dir },
        options.tty ?? false,
        options.stdin ?? false,
        // A client leaving a TTY session does not close its input (moby closes stdin on detach only without a TTY).
        options.tty ?? false,
      ),
      "--exec",
      "--exec-process-spec",
      specFile,
      ...(options.attach ? ["--exec-attach"] : []),
    ];
    const sockets = { attachSocket: join(dir, "attach"), ctlFifo: join(dir, "ctl") };
    let pid: number;
    try {
      const attach = options.attach;
      ({ pid } = await this.conmon(args, dir, `exec in ${id}`, attach ? () => attach(sockets) : undefined));
    } catch (error) {
      await this.waitConmonGone(join(dir, "conmon.pid"));
      await rm(dir, { recursive: true, force: true });
      const refused = /cannot exec in a (paused|stopped) container/.exec((error as Error).message);
      if (refused) throw new RuntimeError("INVALID_STATE", `Container ${id} is ${refused[1]}`);
      throw error;
    }
    const readExit = async () => {
      const text = await readOptional(exitFile);
      return text === undefined || text.trim() === "" ? undefined : Number(text.trim());
    };
    return {
      id: execId,
      containerId: id,
      pid,
      dir,
      log,
      exitFile,
      ...sockets,
      wait: (timeoutMs = DEFAULT_WAIT_MS) => waitFor(readExit, timeoutMs, `exec ${execId} in ${id} did not exit within ${timeoutMs} ms`),
      output: async () => parseK8sLog((await readOptional(log)) ?? ""),
      remove: async () => {
        await this.waitConmonGone(join(dir, "conmon.pid"));
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}

function checkId(id: string): void {
  if (!ID_PATTERN.test(id))
    throw new RuntimeError(
      "INVALID_OPTION",
      `invalid container id ${JSON.stringify(id)}: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128 characters`,
    );
}
