import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { Readable } from "node:stream";
import { createMatcher, dockerignoreFor, keepBuildFiles, parseDockerignore } from "@minato/dockerfile";
import { END_OF_ARCHIVE, type EntryType, encodeHeader, padding } from "@minato/layers";
import { fileEntry, isArchive, readAll, stdinDockerfileName } from "../build-stdin.js";
import { type CommandGroup, collect, defineCommand } from "../command.js";
import type { Context } from "../context.js";
import { CliError } from "../errors.js";
import { confirm } from "../prompt.js";
import { compressionFlag, showJsonStream } from "./common.js";

/** `KEY=VALUE`, or `KEY` alone for the value from the environment (docker's --build-arg and --label). */
function pairs(values: string[] | undefined, env: NodeJS.ProcessEnv, fromEnv: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values ?? []) {
    const eq = value.indexOf("=");
    if (eq !== -1) out[value.slice(0, eq)] = value.slice(eq + 1);
    else if (fromEnv && env[value] !== undefined) out[value] = env[value] as string;
    else if (!fromEnv) out[value] = "";
  }
  return out;
}

/** Up to this many bytes the context tar is made in memory and sent in one write. */
const IN_MEMORY_CONTEXT = 32 * 1024 * 1024;

/**
 * The build context as the docker CLI sends it to the classic builder: a tar of the directory
 * without what `.dockerignore` (or `<Dockerfile>.dockerignore`) excludes, the Dockerfile and the
 * ignore file kept. Entries sorted, numeric owners 0. The tree is walked once, synchronously (a
 * context is mostly small files, where streams cost more than the reads); a context up to 32 MiB is
 * one Buffer, a bigger one a stream that reads the files as it goes.
 */
function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export function contextTar(dir: string, dockerfile: string, stdinDockerfile?: Buffer): Buffer | Readable {
  let patterns: string[] = [];
  let ignoreFile = ".dockerignore";
  for (const name of dockerignoreFor(dockerfile)) {
    try {
      patterns = parseDockerignore(readFileSync(join(dir, name), "utf8"));
      ignoreFile = name;
      break;
    } catch {}
  }
  // `-f -`: the Dockerfile from stdin joins the context under its own name (see build-stdin.ts),
  // listed in the .dockerignore the tar carries in place of the directory's.
  const appended = stdinDockerfile
    ? Buffer.concat([
        // With no .dockerignore, the one made up ignores itself too (as docker's does).
        fileEntry(".dockerignore", Buffer.from(`${readOptional(join(dir, ".dockerignore")) ?? ".dockerignore"}\n${dockerfile}\n`)),
        fileEntry(dockerfile, stdinDockerfile),
      ])
    : undefined;
  const matcher = createMatcher(keepBuildFiles(patterns, dockerfile, ignoreFile));
  // Headers (and padding) as Buffers, files' contents as [path, size] to read.
  const parts: (Buffer | [string, number])[] = [];
  let total = END_OF_ARCHIVE.length;
  const walk = (path: string, rel: string): void => {
    for (const name of readdirSync(path).sort()) {
      const full = join(path, name);
      const r = rel === "" ? name : `${rel}/${name}`;
      if (appended && r === ".dockerignore") continue;
      const stats = lstatSync(full);
      const excluded = patterns.length > 0 && matcher(r);
      if (excluded && !(stats.isDirectory() && matcher.mayHaveExceptions(r))) continue;
      let type: EntryType;
      if (stats.isDirectory()) type = "directory";
      else if (stats.isSymbolicLink()) type = "symlink";
      else if (stats.isFile()) type = "file";
      else continue;
      const header = encodeHeader({
        name: r,
        type,
        mode: stats.mode & 0o7777,
        uid: 0,
        gid: 0,
        size: type === "file" ? stats.size : 0,
        mtime: Math.floor(stats.mtimeMs / 1000),
        linkname: type === "symlink" ? readlinkSync(full) : "",
        devmajor: 0,
        devminor: 0,
        xattrs: new Map(),
      });
      parts.push(header);
      total += header.length;
      if (type === "file") {
        const pad = padding(stats.size);
        parts.push([full, stats.size], pad);
        total += stats.size + pad.length;
      } else if (type === "directory") walk(full, r);
    }
  };
  walk(dir, "");
  if (appended) {
    parts.push(appended);
    total += appended.length;
  }
  const changed = (path: string) => new CliError(`${path} changed while the context was read`);
  if (total <= IN_MEMORY_CONTEXT) {
    const buffers = parts.map((part) => {
      if (Buffer.isBuffer(part)) return part;
      const [path, size] = part;
      const content = readFileSync(path);
      if (content.length < size) throw changed(path);
      return content.subarray(0, size);
    });
    return Buffer.concat([...buffers, END_OF_ARCHIVE], total);
  }
  async function* entries(): AsyncGenerator<Buffer> {
    for (const part of parts) {
      if (Buffer.isBuffer(part)) {
        yield part;
        continue;
      }
      const [path, size] = part;
      let written = 0;
      if (size > 0) {
        for await (const chunk of createReadStream(path, { end: size - 1 })) {
          written += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      }
      if (written < size) throw changed(path);
    }
    yield END_OF_ARCHIVE;
  }
  return Readable.from(entries());
}

/**
 * `--secret id=x[,src=path|,env=VAR][,type=file|env]` (buildx's syntax): the values go to minatod in
 * the X-Minato-Build-Secrets header, base64 of a JSON object of base64 values. With only an id, the
 * environment variable of that name, else the file of that name.
 */
export function secretsHeader(specs: string[] | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (!specs || specs.length === 0) return undefined;
  const secrets: Record<string, string> = {};
  for (const spec of specs) {
    const fields = new Map<string, string>();
    for (const field of spec.split(",")) {
      const eq = field.indexOf("=");
      if (eq === -1) throw new CliError(`invalid secret ${JSON.stringify(spec)}: ${JSON.stringify(field)} is not key=value`);
      const key = field.slice(0, eq).toLowerCase();
      if (!["id", "src", "source", "env", "type"].includes(key))
        throw new CliError(`invalid secret ${JSON.stringify(spec)}: unexpected key ${key}`);
      fields.set(key, field.slice(eq + 1));
    }
    const id = fields.get("id");
    if (!id) throw new CliError(`invalid secret ${JSON.stringify(spec)}: id is required`);
    const type = fields.get("type");
    const src = fields.get("src") ?? fields.get("source");
    let variable = fields.get("env") ?? (type === "env" ? (src ?? id) : undefined);
    let file = type !== "env" ? src : undefined;
    if (variable === undefined && file === undefined) {
      if (type !== "file" && env[id] !== undefined) variable = id;
      else file = id;
    }
    let value: Buffer;
    if (variable !== undefined) {
      const found = env[variable];
      if (found === undefined) throw new CliError(`secret ${id}: environment variable ${variable} is not set`);
      value = Buffer.from(found);
    } else {
      try {
        value = readFileSync(file as string);
      } catch (error) {
        throw new CliError(`secret ${id}: ${(error as Error).message}`);
      }
    }
    secrets[id] = value.toString("base64");
  }
  return Buffer.from(JSON.stringify(secrets)).toString("base64");
}

interface BuildOptions {
  secret?: string[];
  tag?: string[];
  file?: string;
  buildArg?: string[];
  label?: string[];
  target?: string;
  cache?: boolean;
  pull?: boolean;
  quiet?: boolean;
  iidfile?: string;
  platform?: string;
  compression?: string;
}

const build = defineCommand<BuildOptions>({
  name: "build",
  usage: "[OPTIONS] PATH | -",
  description: "Build an image from a Dockerfile",
  args: { min: 1, max: 1 },
  options: (command) =>
    command
      .option("-t, --tag <name>", "Name and optionally a tag in the 'name:tag' format", collect)
      .option("-f, --file <string>", "Name of the Dockerfile (Default is 'PATH/Dockerfile')")
      .option("--build-arg <KEY=VALUE>", "Set build-time variables", collect)
      .option("--label <KEY=VALUE>", "Set metadata for an image", collect)
      .option("--target <string>", "Set the target build stage to build")
      .option("--no-cache", "Do not use cache when building the image")
      .option("--pull", "Always attempt to pull a newer version of the image")
      .option("-q, --quiet", "Suppress the build output and print image ID on success")
      .option("--iidfile <string>", "Write the image ID to the file")
      .option("--platform <string>", "Set platform if server is multi-platform capable")
      .option(
        "--secret <stringArray>",
        'Secret to expose to the build (format: "id=mysecret[,src=/local/secret]" or "id=x,env=VAR")',
        collect,
      )
      .option("--compression <format>", "Compress the image's new layers with gzip (default) or zstd (OCI zstd layers)"),
  async run(context: Context, [path], options) {
    const compression = compressionFlag(options.compression);
    if (path === "-" && options.file === "-") throw new CliError("invalid argument: can't use stdin for both build context and dockerfile");
    let dockerfile = "Dockerfile";
    let body: Buffer | Readable;
    if (path === "-") {
      // A tar (the context, its Dockerfile inside) or a Dockerfile alone (no context), as docker reads them.
      const input = await readAll(context.io.stdin);
      if (isArchive(input)) {
        body = input;
        if (options.file) dockerfile = options.file;
      } else body = Buffer.concat([fileEntry("Dockerfile", input), END_OF_ARCHIVE]);
    } else {
      const dir = resolve(path as string);
      if (!lstatSync(dir, { throwIfNoEntry: false })?.isDirectory())
        throw new CliError(`unable to prepare context: path "${path}" not found`);
      if (options.file === "-") {
        dockerfile = stdinDockerfileName();
        body = contextTar(dir, dockerfile, await readAll(context.io.stdin));
      } else {
        dockerfile = dockerfileIn(dir, path as string, options.file);
        body = contextTar(dir, dockerfile);
      }
    }
    const secrets = secretsHeader(options.secret, context.env);
    const response = await context.client.call("POST", "/build", {
      query: {
        t: options.tag ?? [],
        dockerfile,
        buildargs: JSON.stringify(pairs(options.buildArg, context.env, true)),
        labels: JSON.stringify(pairs(options.label, context.env, false)),
        target: options.target || undefined,
        nocache: options.cache === false ? "1" : undefined,
        pull: options.pull ? "1" : undefined,
        q: options.quiet ? "1" : undefined,
        platform: options.platform || undefined,
        compression,
      },
      headers: { "Content-Type": "application/x-tar", ...(secrets ? { "X-Minato-Build-Secrets": secrets } : {}) },
      body,
    });
    const aux = await showJsonStream(context, response, "POST /build", options.quiet === true);
    const id = aux.map((a) => (a as { ID?: string }).ID).find((v) => typeof v === "string");
    if (options.quiet && id) context.io.stdout.write(`${id}\n`);
    if (options.iidfile && id) await writeFile(options.iidfile, id);
    return 0;
  },
});

/** `-f`'s path as a name inside the context directory (default Dockerfile). */
function dockerfileIn(dir: string, path: string, file: string | undefined): string {
  let dockerfile = "Dockerfile";
  if (file) {
    const rel = relative(dir, resolve(file));
    if (rel.startsWith("..") || isAbsolute(rel)) {
      throw new CliError(`the Dockerfile (${file}) must be within the build context (${path})`);
    }
    dockerfile = rel.split("\\").join("/");
  }
  return dockerfile;
}

const builderPrune = defineCommand<{ force?: boolean; all?: boolean }>({
  name: "prune",
  usage: "[OPTIONS]",
  description: "Remove build cache",
  options: (command) =>
    command
      .option("-a, --all", "Remove all unused build cache, not just dangling ones")
      .option("-f, --force", "Do not prompt for confirmation"),
  async run(context, _args, options) {
    if (
      !options.force &&
      !(await confirm(context, "WARNING! This will remove all dangling build cache.\nAre you sure you want to continue?"))
    ) {
      return 0;
    }
    const result = await context.client.json<{ CachesDeleted?: string[] | null; SpaceReclaimed?: number }>("POST", "/build/prune", {
      query: { all: options.all ? "1" : undefined },
    });
    const deleted = result.CachesDeleted ?? [];
    if (deleted.length > 0) context.io.stdout.write(`Deleted build cache objects:\n${deleted.join("\n")}\n\n`);
    context.io.stdout.write(`Total reclaimed space: ${result.SpaceReclaimed ?? 0}B\n`);
    return 0;
  },
});

export const buildGroup: CommandGroup = { commands: [build] };
export const builderGroup: CommandGroup = { name: "builder", description: "Manage builds", commands: [builderPrune] };
