// `ADD <http(s) URL>` (reference: "Adding files from a URL", "ADD --checksum"): the file is fetched
// into a scratch directory, hashed while it streams, checked against `--checksum`, and named after
// the URL path's last segment. Its mtime comes from the Last-Modified header when there is one.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { utimes } from "node:fs/promises";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

const ALGORITHMS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export const isUrl = (source: string) => /^https?:\/\//i.test(source);

/** A git repository source (`ADD https://…/repo.git#ref`, `git@host:repo`), which this engine does not fetch. */
export const isGitSource = (source: string) => /^git@|^git:\/\//i.test(source) || (isUrl(source) && /\.git\/?(#.*)?$/i.test(source));

/** `--checksum=<algorithm>:<hex>`, validated. */
export function parseChecksum(value: string): { algorithm: string; hex: string } {
  const colon = value.indexOf(":");
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  const length = ALGORITHMS[algorithm];
  if (colon === -1 || length === undefined || hex.length !== length || !/^[0-9a-f]+$/.test(hex)) {
    throw new Error(`invalid checksum digest format: ${value} (want sha256:<64 hex digits>, sha384: or sha512:)`);
  }
  return { algorithm, hex };
}

/** The file name a URL gives when the destination is a directory: its path's last segment. */
export function urlFileName(url: string): string {
  const path = new URL(url).pathname;
  const name = decodeURIComponent(posix.basename(path));
  if (name === "" || name === "." || name === ".." || name.includes("/")) {
    throw new Error(`cannot determine filename from url: ${url}`);
  }
  return name;
}

export interface Downloaded {
  path: string;
  /** `<algorithm>:<hex>` of the content, in the checksum's algorithm (sha256 without one). */
  digest: string;
}

/** Fetches `url` into `dir/name`; throws on a non-2xx answer or a checksum mismatch. */
export async function download(url: string, dir: string, name: string, checksum?: string): Promise<Downloaded> {
  const expected = checksum !== undefined ? parseChecksum(checksum) : undefined;
  const algorithm = expected?.algorithm ?? "sha256";
  const response = await fetch(url, { redirect: "follow" }).catch((error: Error) => {
    const cause = (error.cause as Error | undefined)?.message;
    throw new Error(`failed to GET ${url}: ${cause ?? error.message}`);
  });
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`failed to GET ${url} with status ${response.status} ${response.statusText}`);
  }
  const path = join(dir, name);
  const hash = createHash(algorithm);
  const body = Readable.fromWeb(response.body as import("node:stream/web").ReadableStream<Uint8Array>);
  body.on("data", (chunk: Buffer) => hash.update(chunk));
  await pipeline(body, createWriteStream(path, { mode: 0o600 }));
  const digest = `${algorithm}:${hash.digest("hex")}`;
  if (expected && digest !== `${expected.algorithm}:${expected.hex}`) {
    throw new Error(`checksum mismatch for ${url}: expected ${expected.algorithm}:${expected.hex}, got ${digest}`);
  }
  const modified = Date.parse(response.headers.get("last-modified") ?? "");
  if (!Number.isNaN(modified)) await utimes(path, modified / 1000, modified / 1000);
  return { path, digest };
}
