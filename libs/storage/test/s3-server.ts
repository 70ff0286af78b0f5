import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";

const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), "s3-server.mjs");

/** s3rver's one account: requests signed with other keys are refused (InvalidAccessKeyId, SignatureDoesNotMatch). */
export const S3_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

/**
 * An S3 client for the server at `endpoint` (path-style, s3rver's account). s3rver signs bucket-level
 * paths without the SDK's trailing slash: bucket requests are sent as `/<bucket>?…`.
 */
export function s3TestClient(endpoint: string): S3Client {
  const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: S3_CREDENTIALS, maxAttempts: 1 });
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { path?: string };
      if (request.path && /^\/[^/]+\/$/.test(request.path)) request.path = request.path.slice(0, -1);
      return next(args);
    },
    { step: "build" },
  );
  return client;
}

/** Every key in `bucket` that starts with `prefix`, listed through the S3 API. */
export async function listKeys(client: S3Client, bucket: string, prefix = ""): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) keys.push(object.Key as string);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** Deletes every object of `bucket`, then the bucket (s3rver drops its open multipart uploads with it). */
export async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  for (const key of await listKeys(client, bucket)) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/**
 * An S3-compatible server (@20minutes/s3rver) in its own process on 127.0.0.1, storing objects as
 * files under a fresh temporary directory. It can be stopped and started again on the same port and
 * directory, to play an S3 endpoint that goes away and comes back. It never outlives this process:
 * it exits when its stdin (a pipe from here) closes.
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
    const args = [
      LAUNCHER,
      "--exit-with-stdin",
      "--directory",
      this.directory,
      "--port",
      String(this.#port),
      ...this.buckets.flatMap((b) => ["--bucket", b]),
    ];
    const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
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
