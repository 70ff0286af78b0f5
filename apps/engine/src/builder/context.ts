// The build context: the tar the client sends, unpacked into a private directory with the same
// path rules as a layer (no `..`, no writing through symlinks), then .dockerignore applied.
import { lstat, readdir, readFile, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { createMatcher, type DockerignoreMatcher, dockerignoreFor, parseDockerignore } from "@minato/dockerfile";
import { applyLayer, LayerError } from "@minato/layers";
import { badRequest } from "../api/errors.js";
import { resolveIn } from "./fs.js";

/** Unpacks a context tar (plain or gzip) into `dir`, an empty or missing directory. */
export async function extractContext(body: Readable, dir: string): Promise<void> {
  try {
    await applyLayer(body, dir);
  } catch (error) {
    if (error instanceof LayerError) throw badRequest(`invalid build context: ${error.message}`);
    throw error;
  }
}

/** Reads the Dockerfile (a path inside the context) and the ignore patterns that go with it. */
export async function readBuildFiles(dir: string, dockerfile: string): Promise<{ text: string; ignore: string[] }> {
  const path = await resolveIn(dir, dockerfile);
  const text = await readFile(path, "utf8").catch(() => {
    throw badRequest(`Cannot locate specified Dockerfile: ${dockerfile}`);
  });
  for (const name of dockerignoreFor(dockerfile)) {
    const found = await readFile(await resolveIn(dir, name), "utf8").catch(() => undefined);
    if (found !== undefined) return { text, ignore: parseDockerignore(found) };
  }
  return { text, ignore: [] };
}

/** Removes what `.dockerignore` excludes from the context (the classic builder does the same daemon-side). */
export async function applyIgnore(dir: string, patterns: string[]): Promise<void> {
  if (patterns.length === 0) return;
  const matcher = createMatcher(patterns);
  await prune(dir, "", matcher);
}

async function prune(dir: string, rel: string, matcher: DockerignoreMatcher): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const r = rel === "" ? name : `${rel}/${name}`;
    const excluded = matcher(r);
    const stats = await lstat(path);
    if (stats.isDirectory()) {
      if (excluded && !matcher.mayHaveExceptions(r)) {
        await rm(path, { recursive: true, force: true });
        continue;
      }
      await prune(path, r, matcher);
      if (excluded) await rmdir(path).catch(() => undefined);
    } else if (excluded) await rm(path, { force: true });
  }
}
