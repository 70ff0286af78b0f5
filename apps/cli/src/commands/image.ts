import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { familiarName, formatImageReference, type ImageReference, parseImageReference } from "@minato/oci";
import { Option } from "commander";
import { registryAuthHeader } from "../auth.js";
import { type CommandGroup, collect, defineCommand } from "../command.js";
import type { Context } from "../context.js";
import { CliError, DaemonError, describeError } from "../errors.js";
import { formatEach, formatList, type ListFormat } from "../output/formatter.js";
import { ellipsis, indentedJson, shortId } from "../output/text.js";
import { goTimeString, humanSize, humanSizeWithPrecision, rfc3339, timeAgo } from "../output/units.js";
import { confirm } from "../prompt.js";
import { compressionFlag, filtersParam, imagePath, showJsonStream } from "./common.js";

/** swagger `ImageSummary`. */
export interface ImageSummary {
  Id: string;
  ParentId?: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created: number;
  Size: number;
  SharedSize?: number;
  VirtualSize?: number;
  Labels?: Record<string, string> | null;
  Containers?: number;
}

/** swagger `HistoryResponseItem`. */
export interface HistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

/** swagger `ImageDeleteResponseItem`. */
interface DeleteItem {
  Untagged?: string;
  Deleted?: string;
}

const NONE = "<none>";

export const IMAGES_FORMAT: ListFormat = {
  table: "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}",
  quiet: "{{.ID}}",
  headers: {
    Containers: "CONTAINERS",
    CreatedAt: "CREATED AT",
    CreatedSince: "CREATED",
    Digest: "DIGEST",
    ID: "IMAGE ID",
    Repository: "REPOSITORY",
    SharedSize: "SHARED SIZE",
    Size: "SIZE",
    Tag: "TAG",
    UniqueSize: "UNIQUE SIZE",
    VirtualSize: "VIRTUAL SIZE",
  },
};

export const IMAGES_DIGESTS_TABLE = "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";

export const HISTORY_FORMAT: ListFormat = {
  table: "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}",
  quiet: "{{.ID}}",
  headers: { Comment: "COMMENT", CreatedAt: "CREATED AT", CreatedBy: "CREATED BY", CreatedSince: "CREATED", ID: "IMAGE", Size: "SIZE" },
};

function parseOrNull(text: string): ImageReference | undefined {
  try {
    return parseImageReference(text, { defaultTag: false });
  } catch {
    return undefined;
  }
}

/**
 * The rows `docker images` shows for a list of images (docker/cli formatter/image.go): one per
 * repository and tag; with `digests`, one per tag and digest; a repository known only by digest gets
 * a `<none>` tag; an image with no name at all is `<none> <none>`. `now` fixes the CREATED column.
 */
export function imageRows(
  images: ImageSummary[],
  options: { digests?: boolean; noTrunc?: boolean; now?: number } = {},
): Record<string, string>[] {
  const rows: Record<string, string>[] = [];
  const sorted = [...images].sort((a, b) => b.Created - a.Created);
  for (const image of sorted) {
    const size = humanSizeWithPrecision(image.Size, 3);
    const shared = image.SharedSize ?? -1;
    const row = (repository: string, tag: string, digest: string): Record<string, string> => ({
      Containers: image.Containers === undefined || image.Containers < 0 ? "N/A" : String(image.Containers),
      CreatedAt: goTimeString(image.Created),
      CreatedSince: timeAgo(image.Created, options.now),
      Digest: digest,
      ID: options.noTrunc ? image.Id : shortId(image.Id),
      Repository: repository,
      SharedSize: shared < 0 ? "N/A" : humanSizeWithPrecision(shared, 3),
      Size: size,
      Tag: tag,
      UniqueSize: shared < 0 ? "N/A" : humanSizeWithPrecision(image.Size - shared, 3),
      VirtualSize: humanSizeWithPrecision(image.VirtualSize ?? image.Size, 3),
    });
    const tags = new Map<string, string[]>();
    const digests = new Map<string, string[]>();
    for (const text of image.RepoTags ?? []) {
      const reference = parseOrNull(text);
      if (!reference?.tag) continue;
      const name = familiarName(reference);
      tags.set(name, [...(tags.get(name) ?? []), reference.tag]);
    }
    for (const text of image.RepoDigests ?? []) {
      const reference = parseOrNull(text);
      if (!reference?.digest) continue;
      const name = familiarName(reference);
      digests.set(name, [...(digests.get(name) ?? []), reference.digest]);
    }
    if (tags.size === 0 && digests.size === 0) {
      rows.push(row(NONE, NONE, NONE));
      continue;
    }
    for (const [repository, repositoryTags] of tags) {
      const repositoryDigests = options.digests ? (digests.get(repository) ?? []) : [];
      digests.delete(repository);
      for (const tag of repositoryTags) {
        if (repositoryDigests.length === 0) rows.push(row(repository, tag, NONE));
        for (const digest of repositoryDigests) rows.push(row(repository, tag, digest));
      }
    }
    for (const [repository, repositoryDigests] of digests) {
      if (options.digests) for (const digest of repositoryDigests) rows.push(row(repository, NONE, digest));
      else rows.push(row(repository, NONE, ""));
    }
  }
  return rows;
}

/** The rows of `docker history`: human sizes and ages unless `human` is off; CREATED BY cut to 45 characters. */
export function historyRows(
  items: HistoryItem[],
  options: { human?: boolean; noTrunc?: boolean; now?: number } = {},
): Record<string, string>[] {
  const human = options.human ?? true;
  return items.map((item) => {
    const createdBy = item.CreatedBy.replace(/\t/g, " ");
    return {
      Comment: item.Comment,
      CreatedAt: rfc3339(item.Created),
      CreatedBy: options.noTrunc ? createdBy : ellipsis(createdBy, 45),
      CreatedSince: human ? timeAgo(item.Created, options.now) : rfc3339(item.Created),
      ID: options.noTrunc || item.Id === "<missing>" ? item.Id : shortId(item.Id),
      Size: human ? humanSizeWithPrecision(item.Size, 3) : String(item.Size),
    };
  });
}

/** Parses a reference, defaulting the tag to `latest` as docker does (and saying so unless quiet). */
function referenceWithTag(context: Context, name: string, quiet: boolean): ImageReference {
  const reference = parseImageReference(name, { defaultTag: false });
  if (!reference.tag && !reference.digest) {
    if (!quiet) context.out("Using default tag: latest\n");
    reference.tag = "latest";
  }
  return reference;
}

async function openInput(path: string): Promise<Readable> {
  const info = await stat(path);
  if (info.isDirectory()) throw new CliError(`read ${path}: is a directory`);
  return createReadStream(path);
}

const list = defineCommand<{ all?: boolean; digests?: boolean; filter?: string[]; format?: string; trunc?: boolean; quiet?: boolean }>({
  name: "ls",
  aliases: ["list"],
  shortcuts: ["images"],
  usage: "[OPTIONS] [REPOSITORY[:TAG]]",
  description: "List images",
  args: { max: 1 },
  options: (command) =>
    command
      .option("-a, --all", "Show all images (default hides intermediate images)")
      .option("--digests", "Show digests")
      .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
      .option(
        "--format <string>",
        "Format output using a custom template:\n'table': table format with column headers (default)\n'table TEMPLATE': table format with the given Go template\n'json': JSON, one object per line\n'TEMPLATE': the given Go template",
      )
      .option("--no-trunc", "Don't truncate output")
      .option("-q, --quiet", "Only show image IDs"),
  async run(context, args, options) {
    const reference = args[0];
    const filters = filtersParam(options.filter, reference ? { reference: [reference] } : {});
    const images = await context.client.json<ImageSummary[]>("GET", "/images/json", { query: { all: options.all || undefined, filters } });
    const rows = imageRows(images, { digests: options.digests ?? false, noTrunc: options.trunc === false });
    const spec = options.digests ? { ...IMAGES_FORMAT, table: IMAGES_DIGESTS_TABLE } : IMAGES_FORMAT;
    context.out(formatList(rows, spec, { format: options.format, quiet: options.quiet ?? false }));
    return 0;
  },
});

const inspect = defineCommand<{ format?: string }>({
  name: "inspect",
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  description: "Display detailed information on one or more images",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) =>
    command.option(
      "-f, --format <string>",
      "Format output using a custom template:\n'json': JSON (default)\n'TEMPLATE': the given Go template",
    ),
  async run(context, names, options) {
    const found: unknown[] = [];
    const errors: string[] = [];
    for (const name of names) {
      try {
        found.push(await context.client.json("GET", imagePath(name, "/json")));
      } catch (error) {
        if (!(error instanceof DaemonError) || error.status !== 404) throw error;
        errors.push(error.display);
      }
    }
    if (!options.format || options.format === "json") context.out(`${indentedJson(found)}\n`);
    else context.out(formatEach(found, options.format));
    for (const line of errors) context.err(`${line}\n`);
    return errors.length ? 1 : 0;
  },
});

const pull = defineCommand<{ platform?: string; quiet?: boolean }>({
  name: "pull",
  shortcuts: ["pull"],
  usage: "[OPTIONS] NAME[:TAG|@DIGEST]",
  description: "Download an image from a registry",
  args: { min: 1 },
  options: (command) =>
    command
      .option("--platform <string>", "Set platform if server is multi-platform capable")
      .option("-q, --quiet", "Suppress verbose output"),
  async run(context, [name], options) {
    const reference = referenceWithTag(context, name as string, options.quiet ?? false);
    const response = await context.client.call("POST", "/images/create", {
      query: { fromImage: familiarName(reference), tag: reference.digest ?? reference.tag, platform: options.platform || undefined },
      headers: { "X-Registry-Auth": await registryAuthHeader(context, reference.registry) },
    });
    await showJsonStream(context, response, "POST /images/create", options.quiet);
    context.out(`${formatImageReference(reference)}\n`);
    return 0;
  },
});

const push = defineCommand<{ quiet?: boolean; compression?: string }>({
  name: "push",
  shortcuts: ["push"],
  usage: "[OPTIONS] NAME[:TAG]",
  description: "Upload an image to a registry",
  args: { min: 1 },
  options: (command) =>
    command
      .option("-q, --quiet", "Suppress verbose output")
      .option(
        "--compression <format>",
        "Compress the layers pushed with gzip or zstd (recompressing those stored otherwise; zstd needs an OCI manifest)",
      ),
  async run(context, [name], options) {
    const compression = compressionFlag(options.compression);
    const reference = referenceWithTag(context, name as string, options.quiet ?? false);
    if (reference.digest) throw new CliError("cannot push a digest reference");
    const response = await context.client.call("POST", imagePath(familiarName(reference), "/push"), {
      query: { tag: reference.tag, compression },
      headers: { "X-Registry-Auth": await registryAuthHeader(context, reference.registry) },
    });
    await showJsonStream(context, response, `POST ${imagePath(familiarName(reference), "/push")}`, options.quiet);
    if (options.quiet) context.out(`${formatImageReference(reference)}\n`);
    return 0;
  },
});

const tag = defineCommand({
  name: "tag",
  shortcuts: ["tag"],
  usage: "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
  description: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
  args: { min: 2 },
  async run(context, [source, target]) {
    const reference = parseImageReference(target as string, { defaultTag: false });
    if (reference.digest) throw new CliError("refusing to create a tag with a digest reference");
    const response = await context.client.call("POST", imagePath(source as string, "/tag"), {
      query: { repo: familiarName(reference), tag: reference.tag ?? "latest" },
    });
    await response.body.dump();
    return 0;
  },
});

const remove = defineCommand<{ force?: boolean; prune?: boolean }>({
  name: "rm",
  aliases: ["remove"],
  shortcuts: ["rmi"],
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  description: "Remove one or more images",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) => command.option("-f, --force", "Force removal of the image").option("--no-prune", "Do not delete untagged parents"),
  async run(context, names, options) {
    let failed = false;
    for (const name of names) {
      try {
        const items = await context.client.json<DeleteItem[]>("DELETE", imagePath(name), {
          query: { force: options.force || undefined, noprune: options.prune === false || undefined },
        });
        for (const item of items ?? []) {
          if (item.Untagged) context.out(`Untagged: ${item.Untagged}\n`);
          if (item.Deleted) context.out(`Deleted: ${item.Deleted}\n`);
        }
      } catch (error) {
        if (!(error instanceof DaemonError)) throw error;
        failed = true;
        context.err(`${describeError(error).line}\n`);
      }
    }
    return failed ? 1 : 0;
  },
});

const history = defineCommand<{ human?: boolean; trunc?: boolean; quiet?: boolean; format?: string }>({
  name: "history",
  shortcuts: ["history"],
  usage: "[OPTIONS] IMAGE",
  description: "Show the history of an image",
  args: { min: 1 },
  options: (command) =>
    command
      .option(
        "--format <string>",
        "Format output using a custom template:\n'table': table format with column headers (default)\n'table TEMPLATE': table format with the given Go template\n'json': JSON, one object per line\n'TEMPLATE': the given Go template",
      )
      .option("-H, --human", "Print sizes and dates in human readable format (--human=false for raw values)", true)
      .addOption(new Option("--no-human").hideHelp())
      .option("--no-trunc", "Don't truncate output")
      .option("-q, --quiet", "Only show image IDs"),
  async run(context, [name], options) {
    const items = await context.client.json<HistoryItem[]>("GET", imagePath(name as string, "/history"));
    const rows = historyRows(items, { human: options.human !== false, noTrunc: options.trunc === false });
    context.out(formatList(rows, HISTORY_FORMAT, { format: options.format, quiet: options.quiet ?? false }));
    return 0;
  },
});

const save = defineCommand<{ output?: string }>({
  name: "save",
  shortcuts: ["save"],
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  description: "Save one or more images to a tar archive (streamed to STDOUT by default)",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) => command.option("-o, --output <string>", "Write to a file, instead of STDOUT"),
  async run(context, names, options) {
    const { output } = options;
    if (!output && context.io.stdout.isTTY) throw new CliError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    if (output) {
      const directory = dirname(output);
      const info = await stat(directory).catch(() => undefined);
      if (!info?.isDirectory()) throw new CliError(`failed to save image: invalid output path: directory "${directory}" does not exist`);
    }
    const response = await context.client.call("GET", "/images/get", { query: { names } });
    if (!output) {
      await pipeline(response.body, context.io.stdout, { end: false }).catch((error) => {
        throw context.client.lostConnection(error, "GET", "/images/get");
      });
      return 0;
    }
    // Written beside the target and renamed at the end, so a failed save leaves no partial archive.
    const temporary = join(dirname(output), `.${basename(output)}.${process.pid}.tmp`);
    try {
      await pipeline(response.body, createWriteStream(temporary, { mode: 0o644 }));
      await rename(temporary, output);
    } catch (error) {
      await rm(temporary, { force: true });
      throw context.client.lostConnection(error, "GET", "/images/get");
    }
    return 0;
  },
});

const load = defineCommand<{ input?: string; quiet?: boolean }>({
  name: "load",
  shortcuts: ["load"],
  usage: "[OPTIONS]",
  description: "Load an image from a tar archive or STDIN",
  options: (command) =>
    command
      .option("-i, --input <string>", "Read from tar archive file, instead of STDIN")
      .option("-q, --quiet", "Suppress the load output"),
  async run(context, _args, options) {
    if (!options.input && context.io.stdin.isTTY) throw new CliError("requested load from stdin, but stdin is empty");
    const body = options.input ? await openInput(options.input) : (context.io.stdin as Readable);
    // As docker does: progress bars only on a terminal; the "Loaded image" lines always.
    const quiet = options.quiet || !context.io.stdout.isTTY;
    const response = await context.client.call("POST", "/images/load", {
      query: { quiet: quiet ? "1" : "0" },
      headers: { "Content-Type": "application/x-tar" },
      body,
    });
    await showJsonStream(context, response, "POST /images/load");
    return 0;
  },
});

const importImage = defineCommand<{ change?: string[]; message?: string; platform?: string }>({
  name: "import",
  shortcuts: ["import"],
  usage: "[OPTIONS] file|- [REPOSITORY[:TAG]]",
  description: "Import the contents from a tarball to create a filesystem image",
  args: { min: 1, max: 2 },
  options: (command) =>
    command
      .option("-c, --change <string>", "Apply Dockerfile instruction to the created image", collect)
      .option("-m, --message <string>", "Set commit message for imported image")
      .option("--platform <string>", "Set platform if server is multi-platform capable"),
  async run(context, [source, repository], options) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source as string)) {
      throw new CliError(`importing from a URL is not supported (${source}): download it and pass the file, or - for standard input`);
    }
    let reference: ImageReference | undefined;
    if (repository) {
      reference = parseImageReference(repository, { defaultTag: false });
      if (reference.digest) throw new CliError("refusing to create a tag with a digest reference");
    }
    if (source === "-" && context.io.stdin.isTTY) throw new CliError("requested import from stdin, but stdin is a terminal");
    const body = source === "-" ? (context.io.stdin as Readable) : await openInput(source as string);
    const response = await context.client.call("POST", "/images/create", {
      query: {
        fromSrc: "-",
        repo: reference ? familiarName(reference) : undefined,
        tag: reference?.tag,
        changes: options.change ?? [],
        message: options.message,
        platform: options.platform || undefined,
      },
      headers: { "Content-Type": "application/x-tar" },
      body,
    });
    await showJsonStream(context, response, "POST /images/create");
    return 0;
  },
});

const prune = defineCommand<{ all?: boolean; force?: boolean; filter?: string[] }>({
  name: "prune",
  usage: "[OPTIONS]",
  description: "Remove unused images",
  options: (command) =>
    command
      .option("-a, --all", "Remove all unused images, not just dangling ones")
      .option("--filter <filter>", 'Provide filter values (e.g. "until=<timestamp>")', collect)
      .option("-f, --force", "Do not prompt for confirmation"),
  async run(context, _args, options) {
    const warning = options.all
      ? "WARNING! This will remove all images without at least one container associated to them."
      : "WARNING! This will remove all dangling images.";
    if (!options.force && !(await confirm(context, `${warning}\nAre you sure you want to continue?`))) return 0;
    const filters = filtersParam(options.filter, { dangling: [String(!options.all)] });
    const report = await context.client.json<{ ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }>("POST", "/images/prune", {
      query: { filters },
    });
    const deleted = report.ImagesDeleted ?? [];
    if (deleted.length > 0) {
      let text = "Deleted Images:\n";
      for (const item of deleted) {
        if (item.Untagged) text += `untagged: ${item.Untagged}\n`;
        if (item.Deleted) text += `deleted: ${item.Deleted}\n`;
      }
      context.out(`${text}\n`);
    }
    context.out(`Total reclaimed space: ${humanSize(report.SpaceReclaimed ?? 0)}\n`);
    return 0;
  },
});

/** `minato image …` and its top-level shortcuts (`images`, `pull`, `push`, `tag`, `rmi`, `history`, `save`, `load`, `import`). */
export const imageGroup: CommandGroup = {
  name: "image",
  description: "Manage images",
  commands: [list, inspect, pull, push, tag, remove, history, save, load, importImage, prune],
};
