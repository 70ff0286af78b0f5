import { spawn } from "node:child_process";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { type Digest, digestOf, MediaType } from "@minato/oci";
import { RegistryClient } from "@minato/registry-client";

/**
 * A loopback HTTP forwarder in front of an upstream registry that counts what passes through it:
 * how the tests see whether the pull-through cache asked upstream. `answer` overrides the upstream
 * (a 429, say); `close()` makes the upstream unreachable.
 */
export class CountingForwarder {
  readonly requests: string[] = [];
  answer?: { status: number; headers: Record<string, string>; body: string };
  #server?: Server;
  url = "";

  constructor(readonly target: string) {}

  async start(port = 0): Promise<this> {
    const [host, targetPort] = this.target.split(":") as [string, string];
    const server = createServer((req, res) => {
      this.requests.push(`${req.method} ${req.url}`);
      if (this.answer) {
        res.writeHead(this.answer.status, { ...this.answer.headers, "content-type": "application/json" });
        res.end(this.answer.body);
        return;
      }
      const upstream = request({ host, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  /** Requests whose line matches, e.g. `GET /v2/app/blobs/`. */
  count(prefix: string): number {
    return this.requests.filter((r) => r.startsWith(prefix)).length;
  }

  reset(): void {
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

export interface PushedImage {
  manifest: Buffer;
  digest: Digest;
  layers: Buffer[];
  config: Buffer;
}

/** Pushes an OCI image with the given layer bytes to a registry (`host:port`), optionally with credentials. */
export async function pushImage(
  registry: string,
  repository: string,
  tag: string,
  layers: Buffer[],
  credentials?: { username: string; password: string },
): Promise<PushedImage> {
  const client = new RegistryClient({ registry, ...(credentials ? { credentials } : {}) });
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: {},
      rootfs: { type: "layers", diff_ids: layers.map((l) => digestOf(l)) },
    }),
  );
  for (const blob of [...layers, config]) {
    await client.pushBlob(repository, { mediaType: "application/octet-stream", digest: digestOf(blob), size: blob.length }, () =>
      Readable.from([blob]),
    );
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: digestOf(l), size: l.length })),
    }),
  );
  const digest = await client.putManifest(repository, tag, manifest, MediaType.ociManifest);
  return { manifest, digest, layers, config };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((done, fail) => {
    // A client that hangs fails its test with its output instead of stalling the run.
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", fail);
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}
