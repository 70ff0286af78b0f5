import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "./http.js";

/** The repository root: tests spawn the built CLI from here. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const REGISTRY_BIN = join(ROOT, "apps/registry/bin/minato-registry.js");
const BUILT_CLI = join(ROOT, "apps/registry/dist/cli.js");

const HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 20_000;
const EXIT_TIMEOUT_MS = 30_000;
/** Keep the tail of the child's output for error messages. */
const LOG_TAIL_BYTES = 16 * 1024;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A free TCP port on the loopback interface, as the kernel hands out for port 0. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port"))));
    });
  });
}

export interface RegistryProcessOptions {
  /** Extra CLI flags after `serve --listen … --data …`. */
  args?: string[];
  /** Use this data directory instead of a fresh temporary one (dispose then leaves it in place). */
  dataDir?: string;
  /** Flags for node itself, before the script (e.g. V8 heap settings). */
  nodeArgs?: string[];
}

/**
 * The real `minato-registry serve` binary in a child process on a loopback port, with its own data
 * directory. Stop it with SIGTERM or SIGKILL and start it again on the same port and data.
 */
export class RegistryProcess {
  readonly host = HOST;
  #child: ChildProcess | undefined;
  #exited: Promise<ExitStatus> | undefined;
  #output = "";

  private constructor(
    readonly port: number,
    readonly dataDir: string,
    /** Temporary directory owning dataDir and the child's working directory; removed by dispose. */
    readonly workDir: string,
    readonly args: string[],
    readonly nodeArgs: string[],
  ) {}

  /** Picks a free loopback port, makes a temporary data directory and starts the registry. */
  static async start(options: RegistryProcessOptions = {}): Promise<RegistryProcess> {
    if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: build first with \`npx tsc -b\``);
    const workDir = await mkdtemp(join(tmpdir(), "minato-e2e-"));
    const dataDir = options.dataDir ?? join(workDir, "data");
    await mkdir(dataDir, { recursive: true });
    let lastError: unknown;
    // The port is free when picked but could be taken before the child binds it: try a few.
    for (let attempt = 0; attempt < 5; attempt++) {
      const registry = new RegistryProcess(await freePort(), dataDir, workDir, options.args ?? [], options.nodeArgs ?? []);
      try {
        await registry.restart();
        return registry;
      } catch (error) {
        lastError = error;
        await registry.stop("SIGKILL").catch(() => undefined);
        if (!/EADDRINUSE/.test(registry.output)) break;
      }
    }
    await rm(workDir, { recursive: true, force: true });
    throw lastError;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** `127.0.0.1:<port>`, as skopeo and other clients name the registry. */
  get authority(): string {
    return `${this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Everything the current (or last) child wrote to stdout and stderr, truncated to the tail. */
  get output(): string {
    return this.#output;
  }

  /** Log lines of level error or fatal (pino levels 50 and 60) the current child wrote. */
  errorLogs(): string[] {
    return this.#output.split("\n").filter((line) => /"level":(50|60)\b/.test(line));
  }

  /** Resolves when the current child exits. */
  get exited(): Promise<ExitStatus> {
    if (!this.#exited) throw new Error("registry was never started");
    return this.#exited;
  }

  /** Starts the binary (again) on the same port and data directory and waits until `GET /v2/` answers (200, or 401 with auth). */
  async restart(): Promise<void> {
    if (this.running) throw new Error(`registry pid ${this.pid} is still running`);
    this.#output = "";
    // No MINATO_* settings leak in from the environment, and no .env is read: the child runs in workDir.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("MINATO_")));
    const child = spawn(
      process.execPath,
      [...this.nodeArgs, REGISTRY_BIN, "serve", "--listen", this.authority, "--data", this.dataDir, "--log-level", "warn", ...this.args],
      { cwd: this.workDir, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    const append = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString("utf8")).slice(-LOG_TAIL_BYTES);
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    this.#exited = new Promise<ExitStatus>((resolveExit) => {
      child.once("exit", (code, signal) => resolveExit({ code, signal }));
    });
    await this.#waitReady(child);
  }

  async #waitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let exit: ExitStatus | undefined;
    void this.#exited?.then((status) => {
      exit = status;
    });
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (exit || child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`registry exited before it was ready (${JSON.stringify(exit)}):\n${this.#output}`);
      }
      try {
        const response = await request("GET", `${this.url}/v2/`);
        // 401: the registry answers, with token authentication switched on by `args`.
        if (response.status === 200 || response.status === 401) return;
        throw new Error(`GET /v2/ answered ${response.status}: ${response.body.toString("utf8").slice(0, 500)}`);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== "ECONNREFUSED" && code !== "ECONNRESET") throw error;
        lastError = error;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGKILL");
    throw new Error(`registry did not answer GET /v2/ within ${READY_TIMEOUT_MS} ms (${String(lastError)}):\n${this.#output}`);
  }

  /** Sends `signal` to the child and waits for it to exit. Resolves at once when it is not running. */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<ExitStatus> {
    const child = this.#child;
    if (!child || !this.#exited) return { code: null, signal: null };
    if (!this.running) return this.#exited;
    child.kill(signal);
    return this.waitForExit();
  }

  /** Sends a signal without waiting for the exit (observe it through {@link exited}). */
  signal(signal: "SIGTERM" | "SIGKILL"): void {
    if (!this.running) throw new Error("registry is not running");
    this.#child?.kill(signal);
  }

  /** Waits for the current child to exit; kills it and throws if it takes longer than a generous bound. */
  async waitForExit(): Promise<ExitStatus> {
    const exited = this.exited;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#child?.kill("SIGKILL");
        reject(new Error(`registry pid ${this.pid} did not exit within ${EXIT_TIMEOUT_MS} ms:\n${this.#output}`));
      }, EXIT_TIMEOUT_MS);
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the child if it still runs and removes the temporary directory. */
  async dispose(): Promise<void> {
    if (this.running) await this.stop("SIGKILL");
    await rm(this.workDir, { recursive: true, force: true });
  }
}
