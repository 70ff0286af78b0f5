import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), "s3-server.mjs");

/** s3rver's one account: requests signed with other keys are refused (InvalidAccessKeyId, SignatureDoesNotMatch). */
export const S3_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

/**
 * An S3-compatible server (@20minutes/s3rver) in its own process on 127.0.0.1, storing objects as
 * files under a fresh temporary directory. It can be stopped and started again on the same port and
 * directory, to play an S3 endpoint that goes away and comes back.
 */
export class S3TestServer {
  #child: ChildProcess | undefined;
  #port = 0;
  #output = "";

  private constructor(
    readonly directory: string,
    readonly buckets: string[],
  ) {}

  static async start(buckets: string[] = ["minato"]): Promise<S3TestServer> {
    const server = new S3TestServer(await mkdtemp(join(tmpdir(), "minato-s3-")), buckets);
    await server.start();
    return server;
  }

  get port(): number {
    return this.#port;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Starts the server (again, on the same port and directory once it has one). */
  async start(): Promise<void> {
    if (this.running) return;
    const args = [LAUNCHER, "--directory", this.directory, "--port", String(this.#port), ...this.buckets.flatMap((b) => ["--bucket", b])];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    child.stderr?.on("data", (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString("utf8")).slice(-8192);
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const ready = new Promise<number>((resolve, reject) => {
      lines.once("line", (line) => {
        try {
          resolve((JSON.parse(line) as { port: number }).port);
        } catch (error) {
          reject(error);
        }
      });
      child.once("exit", (code) => reject(new Error(`S3 server exited (${code}) before it was ready:\n${this.#output}`)));
    });
    this.#port = await ready;
  }

  /** Stops the server and waits for its process to end. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.directory, { recursive: true, force: true });
  }

  /**
   * Multipart uploads still open in `bucket` whose key starts with `prefix`, read from the server's
   * storage directory: s3rver has no ListMultipartUploads to ask it through the API.
   */
  async openMultipartUploads(bucket: string, prefix: string): Promise<string[]> {
    const dir = join(this.directory, bucket, "._S3rver_uploads");
    const ids = await readdir(dir).catch(() => [] as string[]);
    const open: string[] = [];
    for (const id of ids) {
      const key = await readFile(join(dir, id, "key"), "utf8").catch(() => "");
      if (key.startsWith(prefix)) open.push(`multipart upload ${id} of ${key}`);
    }
    return open;
  }
}
