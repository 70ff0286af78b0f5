import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

/** Where the filesystem blob store keeps a committed blob: <data>/blobs/sha256/<first two hex>/<hex>. */
export function blobPath(dataDir: string, digest: string): string {
  const hex = digest.slice("sha256:".length);
  return join(dataDir, "blobs", "sha256", hex.slice(0, 2), hex);
}

/** Where an upload session's bytes live: <data>/uploads/<uuid>. */
export function uploadPath(dataDir: string, location: string): string {
  const id = location.split("?")[0]?.split("/").pop() ?? "";
  return join(dataDir, "uploads", id);
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function listUploads(dataDir: string): Promise<string[]> {
  return readdir(join(dataDir, "uploads"));
}

/** Every file under <data>/blobs, relative to it. */
export async function listBlobFiles(dataDir: string): Promise<string[]> {
  const root = join(dataDir, "blobs");
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(root.length + 1));
}

/**
 * Checks the blob store holds nothing but verified blobs: every file is at sha256/<xx>/<hex> and
 * its content hashes to <hex>. Returns the digests found.
 */
export async function verifyBlobStore(dataDir: string): Promise<string[]> {
  const digests: string[] = [];
  for (const file of await listBlobFiles(dataDir)) {
    const [, prefix, encoded] = /^sha256\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(file) ?? [];
    if (!prefix || !encoded?.startsWith(prefix)) throw new Error(`stray file in the blob store: blobs/${file}`);
    const hex = createHash("sha256")
      .update(await readFile(join(dataDir, "blobs", file)))
      .digest("hex");
    if (hex !== encoded) throw new Error(`blobs/${file} holds content hashing to ${hex}`);
    digests.push(`sha256:${hex}`);
  }
  return digests.sort();
}
