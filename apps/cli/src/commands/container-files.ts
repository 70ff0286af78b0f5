// `minato commit`, `cp`, `diff` and `export`: a container's filesystem, through the daemon's
// `/commit`, `/containers/{id}/changes`, `/containers/{id}/export` and `/containers/{id}/archive`.
import { createWriteStream } from "node:fs";
import { lstat, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { END_OF_ARCHIVE, encodeHeader, padding, readTar } from "@minato/layers";
import { Option } from "commander";
import { collect, defineCommand } from "../command.js";
import type { Context } from "../context.js";
import { CliError, DaemonError, UsageError } from "../errors.js";
import { extractLocal, packLocal } from "../local-archive.js";
import { compressionFlag } from "./common.js";

const containerPath = (container: string, suffix: string) => `/containers/${encodeURIComponent(container)}${suffix}`;

/** `REPOSITORY[:TAG]` as the docker CLI splits it: a colon after the last slash starts the tag. */
export function splitRepoTag(reference: string): { repo: string; tag?: string } {
  const colon = reference.lastIndexOf(":");
  if (colon > reference.lastIndexOf("/")) return { repo: reference.slice(0, colon), tag: reference.slice(colon + 1) };
  return { repo: reference };
}

const commit = defineCommand<{ author?: string; change?: string[]; message?: string; pause?: boolean; compression?: string }>({
  name: "commit",
  shortcuts: ["commit"],
  usage: "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
  description: "Create a new image from a container's changes",
  args: { min: 1, max: 2 },
  options: (command) =>
    command
      .option("-a, --author <string>", 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
      .option("-c, --change <string>", "Apply Dockerfile instruction to the created image", collect)
      .option("-m, --message <string>", "Commit message")
      .option("-p, --pause", "Pause container during commit", true)
      .addOption(new Option("--no-pause").hideHelp())
      .option("--compression <format>", "Compress the new layer with gzip (default) or zstd (an OCI zstd layer)"),
  async run(context, [container, reference], options) {
    const compression = compressionFlag(options.compression);
    const target = reference ? splitRepoTag(reference) : undefined;
    const answer = await context.client.json<{ Id: string }>("POST", "/commit", {
      query: {
        container,
        repo: target?.repo,
        tag: target?.tag,
        comment: options.message,
        author: options.author,
        pause: options.pause !== false,
        changes: options.change ?? [],
        compression,
      },
      headers: { "Content-Type": "application/json" },
      body: "null",
    });
    context.out(`${answer.Id}\n`);
    return 0;
  },
});

const KIND_LETTERS = ["C", "A", "D"];

const diff = defineCommand({
  name: "diff",
  shortcuts: ["diff"],
  usage: "CONTAINER",
  description: "Inspect changes to files or directories on a container's filesystem",
  args: { min: 1, max: 1 },
  async run(context, [container]) {
    const changes = await context.client.json<{ Path: string; Kind: number }[] | null>(
      "GET",
      containerPath(container as string, "/changes"),
    );
    for (const change of changes ?? []) context.out(`${KIND_LETTERS[change.Kind] ?? "?"} ${change.Path}\n`);
    return 0;
  },
});

const exportContainer = defineCommand<{ output?: string }>({
  name: "export",
  shortcuts: ["export"],
  usage: "[OPTIONS] CONTAINER",
  description: "Export a container's filesystem as a tar archive",
  args: { min: 1, max: 1 },
  options: (command) => command.option("-o, --output <string>", "Write to a file, instead of STDOUT"),
  async run(context, [container], options) {
    const { output } = options;
    if (!output && context.io.stdout.isTTY) throw new CliError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    const path = containerPath(container as string, "/export");
    if (output) {
      const directory = dirname(output);
      if (!(await stat(directory).catch(() => undefined))?.isDirectory())
        throw new CliError(`failed to export container: invalid output path: directory "${directory}" does not exist`);
    }
    const response = await context.client.call("GET", path);
    if (!output) {
      await pipeline(response.body, context.io.stdout, { end: false }).catch((error) => {
        throw context.client.lostConnection(error, "GET", path);
      });
      return 0;
    }
    // Written beside the target and renamed at the end, so a failed export leaves no partial archive.
    const temporary = join(dirname(output), `.${basename(output)}.${process.pid}.tmp`);
    try {
      await pipeline(response.body, createWriteStream(temporary, { mode: 0o644 }));
      await rename(temporary, output);
    } catch (error) {
      await rm(temporary, { force: true });
      throw context.client.lostConnection(error, "GET", path);
    }
    return 0;
  },
});

/** swagger `ContainerPathStat`. */
interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

const GO_MODE_DIR = 2 ** 31;
const GO_MODE_SYMLINK = 2 ** 27;
const isDir = (stat: PathStat) => Math.floor(stat.mode / GO_MODE_DIR) % 2 === 1;
const isSymlink = (stat: PathStat) => Math.floor(stat.mode / GO_MODE_SYMLINK) % 2 === 1;

function decodeStat(header: string | string[] | undefined): PathStat | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  try {
    return JSON.parse(Buffer.from(value, "base64").toString("utf8")) as PathStat;
  } catch {
    return undefined;
  }
}

/** `CONTAINER:PATH` (a container name cannot hold a colon; a local path with one needs `./`). */
function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith("/") || arg.startsWith(".")) return { path: arg };
  const colon = arg.indexOf(":");
  if (colon <= 0) return { path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

const endsWithDot = (path: string) => path === "." || path.endsWith("/.");
const endsWithSeparator = (path: string) => path.endsWith("/");

/** HEAD /containers/{id}/archive: the stat of a container path, or undefined when it does not exist. */
async function statContainer(context: Context, container: string, path: string): Promise<PathStat | undefined> {
  try {
    const response = await context.client.call("HEAD", containerPath(container, "/archive"), { query: { path } });
    await response.body.dump();
    return decodeStat(response.headers["x-docker-container-path-stat"]);
  } catch (error) {
    if (error instanceof DaemonError && error.status === 404) return undefined;
    throw error;
  }
}

/** Docker's `-L`: a symlink source is replaced by its target (absolute in the container), named as the link. */
async function followContainerLink(context: Context, container: string, path: string): Promise<{ path: string; rebase?: string }> {
  const stat = await statContainer(context, container, path);
  if (!stat) throw new DaemonError(404, `Could not find the file ${path} in container ${container}`);
  if (!isSymlink(stat)) return { path };
  return { path: stat.linkTarget, rebase: posix.basename(path) };
}

async function copyFromContainer(
  context: Context,
  container: string,
  source: string,
  destination: string,
  options: CpOptions,
): Promise<void> {
  let srcPath = source;
  let rebase: string | undefined;
  if (options.followLink) ({ path: srcPath, rebase } = await followContainerLink(context, container, source));
  const response = await context.client.call("GET", containerPath(container, "/archive"), { query: { path: srcPath } });
  const stat = decodeStat(response.headers["x-docker-container-path-stat"]);
  if (!stat) {
    await response.body.dump();
    throw new CliError("the daemon sent no X-Docker-Container-Path-Stat header");
  }
  const topName = stat.name === "/" ? "." : stat.name;
  if (destination === "-") {
    if (!rebase) {
      await pipeline(response.body, context.io.stdout, { end: false });
      return;
    }
    const renamed = async function* () {
      for await (const { header, body } of readTar(response.body)) {
        const rest = header.name.slice(topName.length);
        yield encodeHeader({ ...header, name: `${rebase}${rest}` });
        for await (const chunk of body) yield Buffer.from(chunk);
        yield padding(header.size);
      }
      yield END_OF_ARCHIVE;
    };
    await pipeline(Readable.from(renamed()), context.io.stdout, { end: false });
    return;
  }
  const local = await localStat(destination);
  let target: string;
  if (isDir(stat)) {
    if (local && !local.isDirectory()) throw new CliError(`cannot copy a directory to a file: ${destination}`);
    if (local) target = endsWithDot(source) ? destination : join(destination, rebase ?? topName);
    else target = destination;
  } else {
    if (!local && endsWithSeparator(destination)) throw new CliError(`no such directory: ${destination}`);
    target = local?.isDirectory() ? join(destination, rebase ?? topName) : destination;
  }
  const parent = await localStat(dirname(target));
  if (!parent?.isDirectory()) throw new CliError(`no such directory: ${dirname(target)}`);
  await extractLocal(response.body, topName, target, { archive: options.archive === true });
}

function localStat(path: string) {
  return stat(path).catch(() => undefined);
}

async function copyToContainer(
  context: Context,
  source: string,
  container: string,
  destination: string,
  options: CpOptions,
): Promise<void> {
  const put = async (dir: string, body: Readable) => {
    const response = await context.client.call("PUT", containerPath(container, "/archive"), {
      query: { path: dir, noOverwriteDirNonDir: true, copyUIDGID: options.archive === true },
      headers: { "Content-Type": "application/x-tar" },
      body,
    });
    await response.body.dump();
  };
  let dstPath = destination;
  let dstStat = await statContainer(context, container, dstPath);
  if (dstStat && isSymlink(dstStat)) {
    // Copying onto a symlink goes to what it points to (docker's CopyInfoDestinationPath).
    dstPath = dstStat.linkTarget;
    dstStat = await statContainer(context, container, dstPath);
  }
  if (source === "-") {
    if (!dstStat || !isDir(dstStat)) throw new CliError(`destination "${container}:${destination}" must be a directory`);
    await put(dstPath, context.io.stdin as Readable);
    return;
  }
  const local = options.followLink ? await stat(source) : await lstat(source);
  if (dstStat && isDir(dstStat)) {
    const name = local.isDirectory() && endsWithDot(source) ? "." : basename(source);
    await put(dstPath, Readable.from(packLocal(source, name, options.followLink === true)));
    return;
  }
  if (endsWithSeparator(destination)) throw new CliError(`destination "${container}:${destination}" must be a directory`);
  if (dstStat && local.isDirectory()) throw new CliError(`cannot copy a directory to a file: ${container}:${destination}`);
  // A new name (or a file replaced): into the parent, named as the destination.
  await put(
    posix.dirname(posix.join("/", dstPath)),
    Readable.from(packLocal(source, posix.basename(dstPath), options.followLink === true)),
  );
}

interface CpOptions {
  archive?: boolean;
  followLink?: boolean;
  quiet?: boolean;
}

const cp = defineCommand<CpOptions>({
  name: "cp",
  shortcuts: ["cp"],
  usage: "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       minato cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
  description:
    "Copy files/folders between a container and the local filesystem\n\nUse '-' as the source to read a tar archive from stdin\nand extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a\ncontainer source to stdout.",
  args: { min: 2, max: 2 },
  options: (command) =>
    command
      .option("-a, --archive", "Archive mode (copy all uid/gid information)")
      .option("-L, --follow-link", "Always follow symbol link in SRC_PATH")
      .option("-q, --quiet", "Suppress progress output during copy"),
  async run(context, [src, dst], options) {
    const from = splitCpArg(src as string);
    const to = splitCpArg(dst as string);
    if (from.container && to.container) throw new UsageError("copying between containers is not supported");
    if (!from.container && !to.container) throw new UsageError("must specify at least one container source");
    if (from.container) {
      if (from.path === "") throw new CliError("source path cannot be empty");
      await copyFromContainer(context, from.container, from.path, to.path, options);
    } else {
      if (to.path === "") throw new CliError("destination path cannot be empty");
      await copyToContainer(context, from.path, to.container as string, to.path, options);
    }
    return 0;
  },
});

export const containerFileCommands = [commit, cp, diff, exportContainer];
