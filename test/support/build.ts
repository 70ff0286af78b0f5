// Helpers of the build tests: a context tar, POST /build with its message stream, cache hits per
// step, an image's files across its layers (from `docker save`), and small loopback HTTP servers.
import { execFileSync } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { createGunzip, gunzipSync } from "node:zlib";
import { readTar, type TarHeader } from "@minato/layers";
import type { EngineProcess, JsonMessage } from "./engine-process.js";

export interface Built {
  status: number;
  messages: JsonMessage[];
  text: string;
  id?: string;
  body: string;
}

export const tarOf = (dir: string): Buffer => execFileSync("tar", ["-C", dir, "-cf", "-", "."], { maxBuffer: 64 * 1024 * 1024 });

export async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

/** POST /build with a context tar; the stream's messages, its text and the built image ID. */
export async function postBuild(
  engine: EngineProcess,
  context: Buffer,
  query: Record<string, string | string[]> = {},
  headers: Record<string, string> = {},
): Promise<Built> {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) for (const v of [value].flat()) params.append(key, v);
  const response = await engine.api("POST", `/build?${params}`, {
    body: context,
    headers: { "Content-Type": "application/x-tar", ...headers },
  });
  const body = response.body.toString("utf8");
  if (response.status !== 200) return { status: response.status, messages: [], text: "", body };
  const messages = body
    .split(/\r?\n/)
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as JsonMessage & { aux?: { ID?: string } });
  const id = messages.map((m) => (m.aux as { ID?: string } | undefined)?.ID).find((v) => v !== undefined);
  return { status: 200, messages, text: messages.map((m) => m.stream ?? "").join(""), body, ...(id ? { id } : {}) };
}

/** For each step (by number), whether the stream said "Using cache" for it. */
export function cacheHits(text: string): Map<number, boolean> {
  const hits = new Map<number, boolean>();
  let step = 0;
  for (const line of text.split("\n")) {
    const match = /^Step (\d+)\/\d+ : /.exec(line);
    if (match) {
      step = Number(match[1]);
      hits.set(step, false);
    } else if (line === " ---> Using cache") hits.set(step, true);
  }
  return hits;
}

export type ImageFile = TarHeader & { content: string; layer: number };

/** The image's files across its layers (later layers win), from `GET /images/{name}/get`. */
export async function imageFiles(engine: EngineProcess, name: string, work: string): Promise<Map<string, ImageFile>> {
  const saved = await engine.api("GET", `/images/${encodeURIComponent(name)}/get`);
  if (saved.status !== 200) throw new Error(`GET /images/${name}/get: ${saved.status}`);
  const dir = await mkdtemp(join(work, "save-"));
  execFileSync("tar", ["-C", dir, "-xf", "-"], { input: saved.body, maxBuffer: 256 * 1024 * 1024 });
  const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as { Layers: string[] }[];
  const files = new Map<string, ImageFile>();
  for (const [index, layer] of (manifest[0]?.Layers ?? []).entries()) {
    for await (const entry of readTar(createReadStream(join(dir, layer)).pipe(createGunzip()))) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry.body) chunks.push(Buffer.from(chunk));
      files.set(entry.header.name.replace(/^\.\//, "").replace(/\/$/, ""), {
        ...entry.header,
        content: Buffer.concat(chunks).toString("utf8"),
        layer: index,
      });
    }
  }
  await rm(dir, { recursive: true, force: true });
  return files;
}

/** Every byte of the image as `docker save` writes it, layers gunzipped: to look for leaked data. */
export async function imageBytes(engine: EngineProcess, name: string, work: string): Promise<string> {
  const saved = await engine.api("GET", `/images/${encodeURIComponent(name)}/get`);
  if (saved.status !== 200) throw new Error(`GET /images/${name}/get: ${saved.status}`);
  const dir = await mkdtemp(join(work, "bytes-"));
  try {
    execFileSync("tar", ["-C", dir, "-xf", "-"], { input: saved.body, maxBuffer: 256 * 1024 * 1024 });
    const files = execFileSync("find", [dir, "-type", "f"], { encoding: "utf8" }).split("\n").filter(Boolean);
    const parts: string[] = [];
    for (const file of files) {
      const data = await readFile(file);
      parts.push((data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : data).toString("latin1"));
    }
    return parts.join("\n");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface LoopbackServer {
  url: string;
  port: number;
  requests: string[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 answering with `handler`; it records each request's path. */
export async function loopbackServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<LoopbackServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? "");
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
