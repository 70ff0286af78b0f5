import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, type Dispatcher, request } from "undici";
import { ROOT } from "./registry-process.js";

export const MINATOD = join(ROOT, "apps/engine/bin/minatod.js");

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One line of Docker's JSON message stream. */
export interface JsonMessage {
  status?: string;
  id?: string;
  stream?: string;
  error?: string;
  errorDetail?: { message: string };
  aux?: { Tag?: string; Digest?: string; Size?: number };
  progressDetail?: { current?: number; total?: number };
}

/** `X-Registry-Auth` as the docker CLI sends it: base64url of an AuthConfig. */
export function registryAuth(username: string, password: string, serveraddress: string): string {
  return Buffer.from(JSON.stringify({ username, password, serveraddress })).toString("base64url");
}

/**
 * A real `minatod` in a child process with its own data root, exec root and socket, and a client of
 * its Docker Engine API over that socket. It must run as root, as the daemon refuses otherwise.
 */
export class EngineProcess {
  #child?: ChildProcess;
  #exited?: Promise<void>;
  #log = "";
  #args: string[] = [];
  readonly #dispatcher: Dispatcher;

  private constructor(readonly work: string) {
    this.#dispatcher = new Agent({ connect: { socketPath: this.socket } });
  }

  get socket(): string {
    return join(this.work, "minato.sock");
  }

  get dataRoot(): string {
    return join(this.work, "data");
  }

  get output(): string {
    return this.#log;
  }

  /** `args`: more minatod flags; `workMode`: the work dir's mode (--userns-remap needs it traversable: 0o711). */
  static async start(options: { args?: string[]; workMode?: number } = {}): Promise<EngineProcess> {
    if (process.getuid?.() !== 0) throw new Error("engine tests need root: minatod unpacks layers with their owners (CI runs as root)");
    const engine = new EngineProcess(await mkdtemp(join(tmpdir(), "minato-engine-")));
    engine.#args = options.args ?? [];
    if (options.workMode !== undefined) await chmod(engine.work, options.workMode);
    await mkdir(engine.dataRoot, { recursive: true });
    await engine.restart();
    return engine;
  }

  async restart(): Promise<void> {
    const child = spawn(
      process.execPath,
      [
        MINATOD,
        "--data-root",
        this.dataRoot,
        "--exec-root",
        join(this.work, "exec"),
        "-H",
        `unix://${this.socket}`,
        "--log-level",
        "warn",
        ...this.#args,
      ],
      // Its own directory as the working directory: a developer's .env in the repository is not read.
      { stdio: ["ignore", "ignore", "pipe"], cwd: this.work },
    );
    child.stderr?.on("data", (chunk) => {
      this.#log = (this.#log + chunk).slice(-16_384);
    });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once("exit", () => resolve()));
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`minatod exited at start: ${this.#log}`);
      const up = await this.api("GET", "/_ping").then(
        (r) => r.status === 200,
        () => false,
      );
      if (up) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`minatod did not answer on ${this.socket}: ${this.#log}`);
  }

  async api(
    method: Dispatcher.HttpMethod,
    path: string,
    options: { body?: Buffer | string | NodeJS.ReadableStream; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse> {
    const response = await request(`http://localhost/v1.47${path}`, {
      method,
      dispatcher: this.#dispatcher,
      headers: options.headers,
      body: options.body as Buffer | string | undefined,
    });
    return { status: response.statusCode, headers: response.headers, body: Buffer.from(await response.body.arrayBuffer()) };
  }

  async json<T = unknown>(
    method: Dispatcher.HttpMethod,
    path: string,
    options?: Parameters<EngineProcess["api"]>[2],
  ): Promise<{ status: number; body: T }> {
    const response = await this.api(method, path, options);
    return { status: response.status, body: JSON.parse(response.body.toString("utf8") || "null") as T };
  }

  /** A streaming endpoint's messages, one JSON object per line. */
  async messages(method: Dispatcher.HttpMethod, path: string, options?: Parameters<EngineProcess["api"]>[2]): Promise<JsonMessage[]> {
    const response = await this.api(method, path, options);
    if (response.status !== 200) throw new Error(`${method} ${path}: ${response.status} ${response.body.toString("utf8")}`);
    return response.body
      .toString("utf8")
      .split(/\r?\n/)
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as JsonMessage);
  }

  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    this.#child?.kill(signal);
    await this.#exited;
  }

  async dispose(): Promise<void> {
    await this.kill("SIGTERM");
    await (this.#dispatcher as Agent).close();
    await rm(this.work, { recursive: true, force: true });
  }
}

/** The error a JSON message stream ended with, if any. */
export function streamError(messages: JsonMessage[]): string | undefined {
  return messages.find((m) => m.errorDetail)?.errorDetail?.message;
}

/** Writes the busybox root filesystem tar of `scripts/busybox-rootfs.sh` to `dir/busybox.tar`. */
export async function busyboxRootfs(dir: string): Promise<string> {
  const rootfs = join(dir, "busybox.tar");
  await new Promise<void>((resolve, reject) =>
    execFile(join(ROOT, "scripts/busybox-rootfs.sh"), [rootfs], (error) => (error ? reject(error) : resolve())),
  );
  return rootfs;
}

/** Bounded polling for a condition, so tests wait on state rather than on time. */
export async function until(probe: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
