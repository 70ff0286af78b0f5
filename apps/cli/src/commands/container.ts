import { readFileSync } from "node:fs";
import { familiarName, parseImageReference } from "@minato/oci";
import type { Command } from "commander";
import { registryAuthHeader } from "../auth.js";
import { type CommandGroup, collect, defineCommand } from "../command.js";
import type { Context } from "../context.js";
import { CliError, DaemonError, describeError, UsageError } from "../errors.js";
import { type HijackedStream, hijack as hijacked, runSession } from "../hijack.js";
import { formatEach, formatList, type ListFormat } from "../output/formatter.js";
import { displayJsonMessages, JsonMessageDisplay } from "../output/progress.js";
import { StreamDemuxer, type StreamName } from "../output/stdcopy.js";
import { ellipsis, indentedJson, shortId } from "../output/text.js";
import { goTimeString, humanSize, timeAgo } from "../output/units.js";
import { confirm } from "../prompt.js";
import { enterRawMode, followTerminalSize, proxySignals } from "../terminal.js";
import { eachName, filtersParam, imagePath } from "./common.js";
import { containerFileCommands } from "./container-files.js";
import { containerStatsCommands } from "./container-stats.js";
import { updateCommand } from "./container-update.js";
import { applyHealthFlags, type HealthFlags, healthOptions } from "./health-flags.js";
import { applyNetworkFlags, type NetworkFlags, port } from "./network.js";
import { applySecurityFlags, type SecurityFlags, securityOptions } from "./security-flags.js";
import { applyVolumeFlags, type VolumeFlags } from "./volume.js";

/** swagger `ContainerSummary` (the fields `docker ps` reads). */
export interface ContainerSummary {
  Id: string;
  Names?: string[] | null;
  Image: string;
  ImageID?: string;
  Command: string;
  Created: number;
  Ports?: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] | null;
  Labels?: Record<string, string> | null;
  State: string;
  Status: string;
  SizeRw?: number;
  SizeRootFs?: number;
  Mounts?: { Name?: string; Source?: string; Type?: string }[] | null;
  NetworkSettings?: { Networks?: Record<string, unknown> | null } | null;
}

export const PS_FORMAT: ListFormat = {
  table: "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}",
  quiet: "{{.ID}}",
  headers: {
    Command: "COMMAND",
    CreatedAt: "CREATED AT",
    ID: "CONTAINER ID",
    Image: "IMAGE",
    Labels: "LABELS",
    LocalVolumes: "LOCAL VOLUMES",
    Mounts: "MOUNTS",
    Names: "NAMES",
    Networks: "NETWORKS",
    Ports: "PORTS",
    RunningFor: "CREATED",
    State: "STATE",
    Status: "STATUS",
  },
};

/** The rows `docker ps` shows (docker/cli formatter/container.go); `now` fixes the CREATED column. */
export function containerRows(containers: ContainerSummary[], options: { noTrunc?: boolean; now?: number } = {}): Record<string, string>[] {
  const trunc = !options.noTrunc;
  return containers.map((c) => {
    let names = (c.Names ?? []).map((name) => name.replace(/^\//, ""));
    // Legacy link names (`/other/alias`) only without truncation.
    if (trunc) names = names.filter((name) => !name.includes("/"));
    let image = c.Image || "<no image>";
    if (trunc) {
      if (/^sha256:[0-9a-f]{64}$/.test(image)) image = shortId(image);
      else if (image.includes("@")) image = image.slice(0, image.indexOf("@"));
    }
    const ports = (c.Ports ?? [])
      .map((p) => (p.PublicPort ? `${p.IP ? `${p.IP}:` : ""}${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`))
      .join(", ");
    const labels = Object.entries(c.Labels ?? {})
      .map(([key, value]) => `${key}=${value}`)
      .join(",");
    const mounts = (c.Mounts ?? []).map((m) => (trunc ? ellipsis(m.Name || m.Source || "", 15) : m.Name || m.Source || "")).join(",");
    return {
      Command: JSON.stringify(trunc ? ellipsis(c.Command, 20) : c.Command),
      CreatedAt: goTimeString(c.Created),
      ID: trunc ? shortId(c.Id) : c.Id,
      Image: image,
      Labels: labels,
      LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Type === "volume").length),
      Mounts: mounts,
      Names: names.join(","),
      Networks: Object.keys(c.NetworkSettings?.Networks ?? {}).join(","),
      Ports: ports,
      RunningFor: timeAgo(c.Created, options.now),
      State: c.State,
      Status: c.Status,
    };
  });
}

/** The flags of `run` and `create`, as commander parses them. */
export interface ContainerFlags extends NetworkFlags, VolumeFlags, HealthFlags, SecurityFlags {
  env?: string[];
  envFile?: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  hostname?: string;
  label?: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  readOnly?: boolean;
  tmpfs?: string[];
  network?: string;
  restart?: string;
  rm?: boolean;
  name?: string;
  tty?: boolean;
  interactive?: boolean;
  detach?: boolean;
}

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** go-units `RAMInBytes`: `64m`, `1g`, `512k`, `1.5GiB`, plain bytes — binary multiples. */
export function ramInBytes(text: string): number {
  const match = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text);
  if (!match) throw new Error(`invalid size: '${text}'`);
  const value = Number.parseFloat(match[1] as string);
  if (!Number.isFinite(value)) throw new Error(`invalid size: '${text}'`);
  return Math.trunc(value * (UNITS[(match[2] ?? "").toLowerCase()] as number));
}

/** `--cpus 1.5` as `NanoCpus` (1.5e9): exact decimal arithmetic, at most nine decimals, as docker's `NanoCPUs.Set`. */
export function nanoCpus(text: string): number {
  const match = /^(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match || (match[1] === "" && !match[2])) throw new Error(`failed to parse ${text} as a rational number`);
  const fraction = match[2] ?? "";
  if (fraction.replace(/0+$/, "").length > 9) throw new Error("value is too precise");
  const nano = BigInt(match[1] || "0") * 1_000_000_000n + BigInt((fraction.slice(0, 9) || "0").padEnd(9, "0"));
  return Number(nano);
}

/**
 * An `--env-file` (docker's `opts.ParseEnvFile`): one `NAME=value` a line, the value as written;
 * `#` comments and blank lines skipped; a bare `NAME` takes its value from `lookup` and is dropped
 * when unset there.
 */
export function parseEnvFile(text: string, lookup: (name: string) => string | undefined): string[] {
  const lines: string[] = [];
  const body = text.startsWith("\ufeff") ? text.slice(1) : text;
  for (const raw of body.split(/\r?\n/)) {
    const line = raw.replace(/^[ \t\f\v]+/, "");
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    const variable = eq === -1 ? line : line.slice(0, eq);
    if (variable === "") throw new Error(`no variable name on line '${line}'`);
    if (/\s/.test(variable)) throw new Error(`variable '${variable}' contains whitespaces`);
    if (eq !== -1) lines.push(line);
    else {
      const value = lookup(variable);
      if (value !== undefined) lines.push(`${variable}=${value}`);
    }
  }
  return lines;
}

/** `-e NAME=value`, or `-e NAME` taking the value from the environment (left bare when unset there). */
export function envFlag(value: string, lookup: (name: string) => string | undefined): string {
  if (value.includes("=")) {
    if (value.startsWith("=")) throw new Error(`invalid environment variable: ${value}`);
    return value;
  }
  const found = lookup(value);
  return found === undefined ? value : `${value}=${found}`;
}

const flagError = (value: string, flag: string, error: unknown) =>
  new UsageError(`invalid argument "${value}" for "${flag}" flag: ${(error as Error).message}`);

/**
 * The `POST /containers/create` body for `run`/`create` flags, an image and a command (docker's
 * `opts.parse`). `readText` reads `--env-file`s; `lookup` resolves bare `-e NAME`.
 */
export function containerCreateBody(
  flags: ContainerFlags,
  image: string,
  command: string[],
  io: { readText: (path: string) => string; lookup: (name: string) => string | undefined },
): Record<string, unknown> {
  const env: string[] = [];
  for (const file of flags.envFile ?? []) {
    try {
      env.push(...parseEnvFile(io.readText(file), io.lookup));
    } catch (error) {
      const { line } = describeError(error);
      throw new UsageError(`invalid argument "${file}" for "--env-file" flag: ${line}`);
    }
  }
  for (const value of flags.env ?? []) {
    try {
      env.push(envFlag(value, io.lookup));
    } catch (error) {
      throw flagError(value, "-e, --env", error);
    }
  }
  const labels: Record<string, string> = {};
  for (const label of flags.label ?? []) {
    const eq = label.indexOf("=");
    if (eq === 0) throw flagError(label, "-l, --label", new Error(`invalid label: ${label}`));
    if (eq === -1) labels[label] = "";
    else labels[label.slice(0, eq)] = label.slice(eq + 1);
  }
  const hostConfig: Record<string, unknown> = {};
  if (flags.memory !== undefined) {
    try {
      hostConfig.Memory = ramInBytes(flags.memory);
    } catch (error) {
      throw flagError(flags.memory, "-m, --memory", error);
    }
  }
  if (flags.cpus !== undefined) {
    try {
      hostConfig.NanoCpus = nanoCpus(flags.cpus);
    } catch (error) {
      throw flagError(flags.cpus, "--cpus", error);
    }
  }
  if (flags.pidsLimit !== undefined) {
    if (!/^-?\d+$/.test(flags.pidsLimit)) {
      throw flagError(flags.pidsLimit, "--pids-limit", new Error(`strconv.ParseInt: parsing "${flags.pidsLimit}": invalid syntax`));
    }
    hostConfig.PidsLimit = Number(flags.pidsLimit);
  }
  if (flags.readOnly) hostConfig.ReadonlyRootfs = true;
  if (flags.tmpfs?.length) {
    const tmpfs: Record<string, string> = {};
    for (const value of flags.tmpfs) {
      const colon = value.indexOf(":");
      const path = colon === -1 ? value : value.slice(0, colon);
      if (!path.startsWith("/")) throw flagError(value, "--tmpfs", new Error(`invalid mount path: '${path}' mount path must be absolute`));
      tmpfs[path] = colon === -1 ? "" : value.slice(colon + 1);
    }
    hostConfig.Tmpfs = tmpfs;
  }
  if (flags.network !== undefined) hostConfig.NetworkMode = flags.network;
  if (flags.rm) hostConfig.AutoRemove = true;
  if (flags.restart !== undefined) {
    hostConfig.RestartPolicy = restartPolicyFlag(flags.restart);
    if (flags.rm && (hostConfig.RestartPolicy as { Name: string }).Name !== "no")
      throw new UsageError("Conflicting options: --restart and --rm");
  }
  const body: Record<string, unknown> = {
    Image: image,
    Tty: flags.tty === true,
    // As the docker CLI: -i opens stdin; a foreground run closes it when the client's input ends.
    AttachStdin: flags.interactive === true && flags.detach !== true,
    AttachStdout: flags.detach !== true,
    AttachStderr: flags.detach !== true,
    OpenStdin: flags.interactive === true,
    StdinOnce: flags.interactive === true && flags.detach !== true,
  };
  if (command.length > 0) body.Cmd = command;
  if (flags.entrypoint !== undefined) body.Entrypoint = [flags.entrypoint];
  if (env.length > 0) body.Env = env;
  if (flags.workdir !== undefined) body.WorkingDir = flags.workdir;
  if (flags.user !== undefined) body.User = flags.user;
  if (flags.hostname !== undefined) body.Hostname = flags.hostname;
  if (Object.keys(labels).length > 0) body.Labels = labels;
  applyNetworkFlags(flags, body, hostConfig);
  applyVolumeFlags(flags, body, hostConfig);
  applyHealthFlags(flags, body);
  applySecurityFlags(flags, hostConfig, io.readText);
  body.HostConfig = hostConfig;
  return body;
}

/** `--restart no|always|unless-stopped|on-failure[:N]` as swagger `RestartPolicy` (docker's opts.ParseRestartPolicy). */
export function restartPolicyFlag(value: string): { Name: string; MaximumRetryCount: number } {
  const [name = "", count, extra] = value.split(":");
  const invalid = (why: string) => flagError(value, "--restart", new Error(why));
  if (extra !== undefined) throw invalid(`invalid restart policy format: maximum retry count must be an integer`);
  if (!["", "no", "always", "unless-stopped", "on-failure"].includes(name)) throw invalid(`invalid restart policy '${name}'`);
  if (count === undefined) return { Name: name || "no", MaximumRetryCount: 0 };
  if (name !== "on-failure") throw invalid(`invalid restart policy format: maximum retry count can only be used with 'on-failure'`);
  if (!/^\d+$/.test(count)) throw invalid(`invalid restart policy format: maximum retry count must be an integer`);
  return { Name: name, MaximumRetryCount: Number(count) };
}

/** The API path of a container name or ID. */
export function containerPath(id: string, suffix = ""): string {
  return `/containers/${encodeURIComponent(id)}${suffix}`;
}

/** An error before the container ran, with docker's status: 125, or 126/127 for a command that cannot be run. */
export function runFailure(error: unknown): CliError {
  const { line } = describeError(error);
  let code = 125;
  if (error instanceof DaemonError) {
    if (/executable file not found|no such file or directory|system cannot find the file specified/i.test(error.message)) code = 127;
    else if (/permission denied/i.test(error.message)) code = 126;
  }
  return new CliError(line, code);
}

/** Writes to a stream, waiting for it to drain when it asks to. */
async function write(stream: NodeJS.WritableStream, data: Buffer): Promise<void> {
  if (!stream.write(data)) await new Promise<void>((resolve) => stream.once("drain", () => resolve()));
}

/** Copies a container's output stream (multiplexed unless `raw`) to the CLI's stdout and stderr. */
async function copyOutput(context: Context, source: AsyncIterable<Buffer | Uint8Array>, raw: boolean, head?: Buffer): Promise<void> {
  const targets: Record<StreamName, NodeJS.WritableStream> = { stdout: context.io.stdout, stderr: context.io.stderr };
  const frames: [StreamName, Buffer][] = [];
  const demuxer = new StreamDemuxer((stream, payload) => frames.push([stream, payload]));
  const feed = async (chunk: Buffer) => {
    if (raw) return write(context.io.stdout, chunk);
    demuxer.push(chunk);
    for (const [stream, payload] of frames.splice(0)) await write(targets[stream], payload);
  };
  if (head && head.length > 0) await feed(head);
  for await (const chunk of source) await feed(Buffer.from(chunk));
}

const isRaw = (contentType: string | string[] | undefined) => String(contentType ?? "").includes("raw-stream");

/** How a foreground session talks to the user's terminal. */
interface SessionFlags {
  /** Forward stdin (`-i`). */
  stdin: boolean;
  /** The container has a TTY: raw mode and resizes when our stdin is a terminal. */
  tty: boolean;
  /** Forward signals to the container (`--sig-proxy`, without a TTY only). */
  sigProxy: boolean;
  detachKeys: string;
}

const DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q";

/** Docker's detach key syntax (single characters or ctrl-<letter|@[\\]^_>, comma-separated) as bytes. */
export function detachKeyBytes(spec: string): Buffer {
  const bytes: number[] = [];
  for (const key of spec.split(",")) {
    const lower = key.toLowerCase();
    if (lower.startsWith("ctrl-") && key.length === 6) {
      const code = lower.charCodeAt(5);
      if (code >= 0x61 && code <= 0x7a) bytes.push(code - 0x60);
      else if ("@[\\]^_".includes(lower[5] as string)) bytes.push(code - 0x40);
      else throw new UsageError(`invalid detach keys (${spec}) provided`);
    } else if (key.length === 1) bytes.push(key.charCodeAt(0));
    else throw new UsageError(`invalid detach keys (${spec}) provided`);
  }
  return Buffer.from(bytes);
}

/** `POST /containers/{id}/attach`: output, and stdin when asked. */
function attach(context: Context, id: string, session?: SessionFlags): Promise<HijackedStream> {
  const stdin = session?.stdin ? "&stdin=1" : "";
  const keys = session?.detachKeys ? `&detachKeys=${encodeURIComponent(session.detachKeys)}` : "";
  return hijacked(context, containerPath(id, "/attach"), `?stream=1&stdout=1&stderr=1${stdin}${keys}`);
}

/**
 * Drives a hijacked session: raw mode and terminal size for a TTY, signal forwarding without one,
 * stdin copied in. Everything local is restored when the session ends, however it ends.
 */
async function interactiveSession(
  context: Context,
  stream: HijackedStream,
  session: SessionFlags,
  hooks: { resize: (height: number, width: number) => Promise<void>; kill: (signal: string) => Promise<void> },
): Promise<"ended" | "detached"> {
  const terminal = session.tty && session.stdin && context.io.stdin.isTTY === true;
  const restoreMode = terminal ? enterRawMode(context.io.stdin) : () => undefined;
  const stopResizing = session.tty ? followTerminalSize(context.io.stdout, hooks.resize) : () => undefined;
  const stopSignals = !session.tty && session.sigProxy ? proxySignals(hooks.kill) : () => undefined;
  try {
    return await runSession(context.io, stream, {
      stdin: session.stdin,
      ...(terminal ? { detachKeys: detachKeyBytes(session.detachKeys) } : {}),
    });
  } finally {
    stopSignals();
    stopResizing();
    restoreMode();
  }
}

const containerSessionHooks = (context: Context, id: string) => ({
  resize: async (height: number, width: number) => {
    await (await context.client.call("POST", containerPath(id, "/resize"), { query: { h: String(height), w: String(width) } })).body.dump();
  },
  kill: async (signal: string) => {
    await (await context.client.call("POST", containerPath(id, "/kill"), { query: { signal } })).body.dump();
  },
});

/**
 * Runs a created container in the foreground, as `docker run` / `docker start -a` do: wait in place,
 * attach, start, copy the output (and stdin with -i) until it ends, then the exit status the wait reports.
 */
async function runAttached(context: Context, id: string, autoRemove: boolean, session?: SessionFlags): Promise<number> {
  const flags: SessionFlags = session ?? { stdin: false, tty: false, sigProxy: true, detachKeys: DEFAULT_DETACH_KEYS };
  const waiting = await context.client
    .call("POST", containerPath(id, "/wait"), { query: { condition: autoRemove ? "removed" : "next-exit" } })
    .catch((error) => {
      throw runFailure(error);
    });
  let stream: HijackedStream;
  try {
    stream = await attach(context, id, flags);
  } catch (error) {
    waiting.body.destroy();
    throw runFailure(error);
  }
  // The session runs from before the start so that no input or output is lost; resizes wait for the
  // start (a TTY exists only then), as the docker CLI sends them after it.
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    markStarted = resolve;
  });
  const hooks = containerSessionHooks(context, id);
  const running = interactiveSession(context, stream, flags, {
    ...hooks,
    resize: async (height, width) => {
      await started;
      await hooks.resize(height, width);
    },
  });
  running.catch(() => undefined);
  try {
    const response = await context.client.call("POST", containerPath(id, "/start"));
    await response.body.dump();
    markStarted();
  } catch (error) {
    stream.socket.destroy();
    waiting.body.destroy();
    throw runFailure(error);
  }
  let how: "ended" | "detached";
  try {
    how = await running;
  } catch (error) {
    waiting.body.destroy();
    throw new CliError(describeError(error).line, 125);
  }
  if (how === "detached") {
    waiting.body.destroy();
    return 0;
  }
  const text = await waiting.body.text().catch((error) => {
    throw context.client.lostConnection(error, "POST", containerPath(id, "/wait"));
  });
  const result = JSON.parse(text) as { StatusCode: number; Error?: { Message?: string } | null };
  if (result.Error?.Message) throw new CliError(result.Error.Message, 125);
  return result.StatusCode;
}

/** Pulls an image as `docker run` does when it is missing: progress on stderr. */
async function pullImage(context: Context, image: string): Promise<void> {
  const reference = parseImageReference(image, { defaultTag: false });
  if (!reference.tag && !reference.digest) reference.tag = "latest";
  const response = await context.client.call("POST", "/images/create", {
    query: { fromImage: familiarName(reference), tag: reference.digest ?? reference.tag },
    headers: { "X-Registry-Auth": await registryAuthHeader(context, reference.registry) },
  });
  const display = new JsonMessageDisplay(context.io.stderr, { terminal: context.io.stderr.isTTY === true });
  try {
    await displayJsonMessages(response.body, display);
  } finally {
    if (!response.body.destroyed) response.body.destroy();
  }
}

/** `POST /containers/create`, pulling the image first when the daemon does not have it (`--pull missing`). */
async function createContainer(context: Context, flags: ContainerFlags & { pull?: string }, args: string[]): Promise<string> {
  const [image, ...command] = args as [string, ...string[]];
  const pull = flags.pull ?? "missing";
  if (!["missing", "always", "never"].includes(pull)) {
    throw new UsageError(`invalid pull option: '${pull}': must be one of "always", "missing" or "never"`);
  }
  const body = containerCreateBody(flags, image, command, {
    readText: (path) => readFileSync(path, "utf8"),
    lookup: (name) => context.env[name],
  });
  const create = () =>
    context.client.json<{ Id: string; Warnings?: string[] | null }>("POST", "/containers/create", {
      query: { name: flags.name || undefined },
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  try {
    if (pull === "always") await pullImage(context, image);
    let created: { Id: string; Warnings?: string[] | null };
    try {
      created = await create();
    } catch (error) {
      if (!(error instanceof DaemonError && error.status === 404 && /^No such image/.test(error.message)) || pull !== "missing")
        throw error;
      const reference = parseImageReference(image, { defaultTag: false });
      context.err(`Unable to find image '${reference.tag || reference.digest ? image : `${image}:latest`}' locally\n`);
      await pullImage(context, image);
      created = await create();
    }
    for (const warning of created.Warnings ?? []) context.err(`WARNING: ${warning}\n`);
    return created.Id;
  } catch (error) {
    throw runFailure(error);
  }
}

const FORMAT_HELP =
  "Format output using a custom template:\n'table': table format with column headers (default)\n'table TEMPLATE': table format with the given Go template\n'json': JSON, one object per line\n'TEMPLATE': the given Go template";

/** The flags `run` and `create` share. */
function containerOptions(command: Command): Command {
  // Flags after IMAGE belong to the container's command, not to minato.
  command.parent?.enablePositionalOptions();
  return securityOptions(healthOptions(command))
    .passThroughOptions()
    .option("--name <string>", "Assign a name to the container")
    .option("-e, --env <list>", "Set environment variables", collect)
    .option("--env-file <list>", "Read in a file of environment variables", collect)
    .option("-w, --workdir <string>", "Working directory inside the container")
    .option("-u, --user <string>", "Username or UID (format: <name|uid>[:<group|gid>])")
    .option("--entrypoint <string>", "Overwrite the default ENTRYPOINT of the image")
    .option("-h, --hostname <string>", "Container host name")
    .option("-l, --label <list>", "Set meta data on a container", collect)
    .option("-m, --memory <bytes>", "Memory limit")
    .option("--cpus <decimal>", "Number of CPUs")
    .option("--pids-limit <int>", "Tune container pids limit (set -1 for unlimited)")
    .option("--read-only", "Mount the container's root filesystem as read only")
    .option("--tmpfs <list>", "Mount a tmpfs directory", collect)
    .option("--network <network>", "Connect a container to a network (bridge, host, none, NAME, container:NAME)")
    .option("-p, --publish <list>", "Publish a container's port(s) to the host", collect)
    .option("-P, --publish-all", "Publish all exposed ports to random ports")
    .option("--expose <list>", "Expose a port or a range of ports", collect)
    .option("--ip <string>", "IPv4 address (e.g., 172.30.100.104)")
    .option("--network-alias <list>", "Add network-scoped alias for the container", collect)
    .option("--add-host <list>", "Add a custom host-to-IP mapping (host:ip)", collect)
    .option("--dns <list>", "Set custom DNS servers", collect)
    .option("--dns-search <list>", "Set custom DNS search domains", collect)
    .option("--dns-option <list>", "Set DNS options", collect)
    .option("-v, --volume <list>", "Bind mount a volume", collect)
    .option("--mount <mount>", "Attach a filesystem mount to the container", collect)
    .option("--volumes-from <list>", "Mount volumes from the specified container(s)", collect)
    .option("--rm", "Automatically remove the container and its associated anonymous volumes when it exits")
    .option("--restart <string>", 'Restart policy to apply when a container exits (default "no")')
    .option("-t, --tty", "Allocate a pseudo-TTY")
    .option("-i, --interactive", "Keep STDIN open even if not attached")
    .option("--pull <string>", 'Pull image before running ("always", "missing", "never")', "missing");
}

type RunFlags = ContainerFlags & { detach?: boolean; pull?: string; sigProxy?: boolean; detachKeys?: string };

const run = defineCommand<RunFlags>({
  name: "run",
  shortcuts: ["run"],
  usage: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
  description: "Create and run a new container from an image",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) => {
    containerOptions(command)
      .option("-d, --detach", "Run container in background and print container ID")
      .option("--detach-keys <string>", "Override the key sequence for detaching a container")
      .option("--sig-proxy [bool]", "Proxy received signals to the process", parseBool, true);
  },
  async run(context, args, options) {
    const id = await createContainer(context, options, args);
    if (options.detach) {
      try {
        await (await context.client.call("POST", containerPath(id, "/start"))).body.dump();
      } catch (error) {
        throw runFailure(error);
      }
      context.out(`${id}\n`);
      return 0;
    }
    return runAttached(context, id, options.rm === true, {
      stdin: options.interactive === true,
      tty: options.tty === true,
      sigProxy: options.sigProxy !== false,
      detachKeys: options.detachKeys ?? DEFAULT_DETACH_KEYS,
    });
  },
});

const create = defineCommand<ContainerFlags & { pull?: string }>({
  name: "create",
  shortcuts: ["create"],
  usage: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
  description: "Create a new container",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) => {
    containerOptions(command);
  },
  async run(context, args, options) {
    context.out(`${await createContainer(context, options, args)}\n`);
    return 0;
  },
});

async function post(context: Context, name: string, verb: string, query: Record<string, string | undefined> = {}): Promise<string> {
  await (await context.client.call("POST", containerPath(name, `/${verb}`), { query })).body.dump();
  return name;
}

const start = defineCommand<{ attach?: boolean; interactive?: boolean; detachKeys?: string }>({
  name: "start",
  shortcuts: ["start"],
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  description: "Start one or more stopped containers",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) =>
    command
      .option("-a, --attach", "Attach STDOUT/STDERR and forward signals")
      .option("-i, --interactive", "Attach container's STDIN")
      .option("--detach-keys <string>", "Override the key sequence for detaching a container"),
  async run(context, names, options) {
    if (options.attach || options.interactive) {
      if (names.length > 1) throw new UsageError("you cannot start and attach multiple containers at once");
      const info = await context.client.json<{
        Id: string;
        HostConfig?: { AutoRemove?: boolean };
        Config?: { Tty?: boolean; OpenStdin?: boolean };
      }>("GET", containerPath(names[0] as string, "/json"));
      return runAttached(context, info.Id, info.HostConfig?.AutoRemove === true, {
        stdin: options.interactive === true && info.Config?.OpenStdin === true,
        tty: info.Config?.Tty === true,
        sigProxy: true,
        detachKeys: options.detachKeys ?? DEFAULT_DETACH_KEYS,
      });
    }
    return eachName(context, names, (name) => post(context, name, "start"));
  },
});

const stop = defineCommand<{ time?: string; signal?: string }>({
  name: "stop",
  shortcuts: ["stop"],
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  description: "Stop one or more running containers",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) =>
    command
      .option("-s, --signal <string>", "Signal to send to the container")
      .option("-t, --time <int>", "Seconds to wait before killing the container"),
  async run(context, names, options) {
    if (options.time !== undefined && !/^-?\d+$/.test(options.time)) {
      throw new UsageError(
        `invalid argument "${options.time}" for "-t, --time" flag: strconv.ParseInt: parsing "${options.time}": invalid syntax`,
      );
    }
    return eachName(context, names, (name) => post(context, name, "stop", { t: options.time, signal: options.signal }));
  },
});

const restart = defineCommand<{ time?: string; signal?: string }>({
  name: "restart",
  shortcuts: ["restart"],
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  description: "Restart one or more containers",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) =>
    command
      .option("-s, --signal <string>", "Signal to send to the container")
      .option("-t, --time <int>", "Seconds to wait before killing the container"),
  async run(context, names, options) {
    if (options.time !== undefined && !/^-?\d+$/.test(options.time)) {
      throw new UsageError(
        `invalid argument "${options.time}" for "-t, --time" flag: strconv.ParseInt: parsing "${options.time}": invalid syntax`,
      );
    }
    return eachName(context, names, (name) => post(context, name, "restart", { t: options.time, signal: options.signal }));
  },
});

const kill = defineCommand<{ signal?: string }>({
  name: "kill",
  shortcuts: ["kill"],
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  description: "Kill one or more running containers",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) => command.option("-s, --signal <string>", "Signal to send to the container"),
  async run(context, names, options) {
    return eachName(context, names, (name) => post(context, name, "kill", { signal: options.signal || undefined }));
  },
});

const pause = defineCommand({
  name: "pause",
  shortcuts: ["pause"],
  usage: "CONTAINER [CONTAINER...]",
  description: "Pause all processes within one or more containers",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  async run(context, names) {
    return eachName(context, names, (name) => post(context, name, "pause"));
  },
});

const unpause = defineCommand({
  name: "unpause",
  shortcuts: ["unpause"],
  usage: "CONTAINER [CONTAINER...]",
  description: "Unpause all processes within one or more containers",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  async run(context, names) {
    return eachName(context, names, (name) => post(context, name, "unpause"));
  },
});

const wait = defineCommand({
  name: "wait",
  shortcuts: ["wait"],
  usage: "CONTAINER [CONTAINER...]",
  description: "Block until one or more containers stop, then print their exit codes",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  async run(context, names) {
    return eachName(context, names, async (name) => {
      const result = await context.client.json<{ StatusCode: number; Error?: { Message?: string } | null }>(
        "POST",
        containerPath(name, "/wait"),
      );
      if (result.Error?.Message) throw new CliError(result.Error.Message);
      return String(result.StatusCode);
    });
  },
});

const remove = defineCommand<{ force?: boolean; volumes?: boolean }>({
  name: "rm",
  aliases: ["remove"],
  shortcuts: ["rm"],
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  description: "Remove one or more containers",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) =>
    command
      .option("-f, --force", "Force the removal of a running container (uses SIGKILL)")
      .option("-v, --volumes", "Remove anonymous volumes associated with the container"),
  async run(context, names, options) {
    return eachName(context, names, async (name) => {
      const response = await context.client.call("DELETE", containerPath(name), {
        query: { force: options.force || undefined, v: options.volumes || undefined },
      });
      await response.body.dump();
      return name;
    });
  },
});

const rename = defineCommand({
  name: "rename",
  shortcuts: ["rename"],
  usage: "CONTAINER NEW_NAME",
  description: "Rename a container",
  args: { min: 2, max: 2 },
  async run(context, [name, newName]) {
    if ((newName as string).trim() === "") throw new UsageError("Error: Neither old nor new names may be empty");
    await post(context, name as string, "rename", { name: newName });
    return 0;
  },
});

const prune = defineCommand<{ force?: boolean; filter?: string[] }>({
  name: "prune",
  usage: "[OPTIONS]",
  description: "Remove all stopped containers",
  options: (command) =>
    command
      .option("-f, --force", "Do not prompt for confirmation")
      .option("--filter <filter>", 'Provide filter values (e.g. "until=<timestamp>")', collect),
  async run(context, _args, options) {
    if (
      !options.force &&
      !(await confirm(context, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"))
    )
      return 0;
    const result = await context.client.json<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>(
      "POST",
      "/containers/prune",
      { query: { filters: filtersParam(options.filter) } },
    );
    const deleted = result.ContainersDeleted ?? [];
    if (deleted.length > 0) context.out(`Deleted Containers:\n${deleted.map((id) => `${id}\n`).join("")}\n`);
    context.out(`Total reclaimed space: ${humanSize(result.SpaceReclaimed ?? 0)}\n`);
    return 0;
  },
});

const list = defineCommand<{
  all?: boolean;
  filter?: string[];
  format?: string;
  last?: string;
  latest?: boolean;
  trunc?: boolean;
  quiet?: boolean;
}>({
  name: "ls",
  aliases: ["list", "ps"],
  shortcuts: ["ps"],
  usage: "[OPTIONS]",
  description: "List containers",
  options: (command) =>
    command
      .option("-a, --all", "Show all containers (default shows just running)")
      .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
      .option("--format <string>", FORMAT_HELP)
      .option("-n, --last <int>", "Show n last created containers (includes all states)")
      .option("-l, --latest", "Show the latest created container (includes all states)")
      .option("--no-trunc", "Don't truncate output")
      .option("-q, --quiet", "Only display container IDs"),
  async run(context, _args, options) {
    let limit = options.latest ? 1 : -1;
    if (options.last !== undefined) {
      if (!/^-?\d+$/.test(options.last)) {
        throw new UsageError(
          `invalid argument "${options.last}" for "-n, --last" flag: strconv.ParseInt: parsing "${options.last}": invalid syntax`,
        );
      }
      if (!options.latest) limit = Number(options.last);
    }
    const containers = await context.client.json<ContainerSummary[]>("GET", "/containers/json", {
      query: {
        all: options.all || limit > 0 || undefined,
        limit: limit > 0 ? String(limit) : undefined,
        filters: filtersParam(options.filter),
      },
    });
    const rows = containerRows(containers ?? [], { noTrunc: options.trunc === false });
    context.out(formatList(rows, PS_FORMAT, { format: options.format, quiet: options.quiet ?? false }));
    return 0;
  },
});

const logs = defineCommand<{ follow?: boolean; tail?: string; timestamps?: boolean; since?: string; until?: string }>({
  name: "logs",
  shortcuts: ["logs"],
  usage: "[OPTIONS] CONTAINER",
  description: "Fetch the logs of a container",
  args: { min: 1 },
  options: (command) =>
    command
      .option("-f, --follow", "Follow log output")
      .option("-n, --tail <string>", 'Number of lines to show from the end of the logs (default "all")')
      .option("-t, --timestamps", "Show timestamps")
      .option("--since <string>", 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)')
      .option("--until <string>", 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
  async run(context, [name], options) {
    const path = containerPath(name as string, "/logs");
    const response = await context.client.call("GET", path, {
      query: {
        stdout: "1",
        stderr: "1",
        follow: options.follow ? "1" : undefined,
        tail: options.tail ?? "all",
        timestamps: options.timestamps ? "1" : undefined,
        since: options.since,
        until: options.until,
      },
    });
    try {
      await copyOutput(context, response.body, isRaw(response.headers["content-type"]));
    } catch (error) {
      throw context.client.lostConnection(error, "GET", path);
    } finally {
      if (!response.body.destroyed) response.body.destroy();
    }
    return 0;
  },
});

/** Prints inspect results as docker does: indented JSON by default, else the template per object. */
function printInspected(context: Context, found: unknown[], format: string | undefined): void {
  if (!format || format === "json") context.out(`${indentedJson(found)}\n`);
  else context.out(formatEach(found, format));
}

const INSPECT_FORMAT_HELP = "Format output using a custom template:\n'json': JSON (default)\n'TEMPLATE': the given Go template";

const inspect = defineCommand<{ format?: string }>({
  name: "inspect",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  description: "Display detailed information on one or more containers",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) => command.option("-f, --format <string>", INSPECT_FORMAT_HELP),
  async run(context, names, options) {
    const found: unknown[] = [];
    const errors: string[] = [];
    for (const name of names) {
      try {
        found.push(await context.client.json("GET", containerPath(name, "/json")));
      } catch (error) {
        if (!(error instanceof DaemonError) || error.status !== 404) throw error;
        errors.push(`Error: ${error.message}`);
      }
    }
    printInspected(context, found, options.format);
    for (const line of errors) context.err(`${line}\n`);
    return errors.length ? 1 : 0;
  },
});

/** The top-level `inspect`: a container, else an image (or only the `--type` asked for). */
const inspectAny = defineCommand<{ format?: string; type?: string }>({
  name: "inspect",
  usage: "[OPTIONS] NAME|ID [NAME|ID...]",
  description: "Return low-level information on Minato objects",
  args: { min: 1, max: Number.POSITIVE_INFINITY },
  options: (command) =>
    command
      .option("-f, --format <string>", INSPECT_FORMAT_HELP)
      .option("--type <string>", "Only inspect objects of the given type (container or image)"),
  async run(context, names, options) {
    const type = options.type;
    if (type !== undefined && type !== "container" && type !== "image") throw new UsageError(`"${type}" is not a valid value for --type`);
    const lookups: [string, (name: string) => string][] = [];
    if (type !== "image") lookups.push(["container", (name) => containerPath(name, "/json")]);
    if (type !== "container") lookups.push(["image", (name) => imagePath(name, "/json")]);
    const found: unknown[] = [];
    const errors: string[] = [];
    for (const name of names) {
      let value: unknown;
      for (const [, path] of lookups) {
        try {
          value = await context.client.json("GET", path(name));
          break;
        } catch (error) {
          if (!(error instanceof DaemonError) || error.status !== 404) throw error;
        }
      }
      if (value === undefined) errors.push(`Error: No such ${type ?? "object"}: ${name}`);
      else found.push(value);
    }
    printInspected(context, found, options.format);
    for (const line of errors) context.err(`${line}\n`);
    return errors.length ? 1 : 0;
  },
});

/**
 * `exec`: create the exec instance, start it (detached, or over a hijacked connection copying its
 * output, and stdin with -i), then its exit code from the exec inspect, as the docker CLI does
 * (126/127 included).
 */
const exec = defineCommand<{
  detach?: boolean;
  env?: string[];
  user?: string;
  workdir?: string;
  tty?: boolean;
  interactive?: boolean;
  detachKeys?: string;
  privileged?: boolean;
}>({
  name: "exec",
  shortcuts: ["exec"],
  usage: "[OPTIONS] CONTAINER COMMAND [ARG...]",
  description: "Execute a command in a running container",
  args: { min: 2, max: Number.POSITIVE_INFINITY },
  options: (command) => {
    command.parent?.enablePositionalOptions();
    command
      .passThroughOptions()
      .option("-d, --detach", "Detached mode: run command in the background")
      .option("-e, --env <list>", "Set environment variables", collect)
      .option("-u, --user <string>", "Username or UID (format: <name|uid>[:<group|gid>])")
      .option("-w, --workdir <string>", "Working directory inside the container")
      .option("-t, --tty", "Allocate a pseudo-TTY")
      .option("-i, --interactive", "Keep STDIN open even if not attached")
      .option("--detach-keys <string>", "Override the key sequence for detaching a container")
      .option("--privileged", "Give extended privileges to the command");
  },
  async run(context, args, options) {
    const [container, ...cmd] = args as [string, ...string[]];
    const tty = options.tty === true;
    const created = await context.client.json<{ Id: string }>("POST", containerPath(container, "/exec"), {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        Cmd: cmd,
        Env: (options.env ?? []).map((value) => envFlag(value, (name) => context.env[name])),
        User: options.user ?? "",
        WorkingDir: options.workdir ?? "",
        Tty: tty,
        AttachStdin: options.interactive === true && !options.detach,
        ...(options.detachKeys ? { DetachKeys: options.detachKeys } : {}),
        AttachStdout: !options.detach,
        AttachStderr: !options.detach,
        ...(options.privileged ? { Privileged: true } : {}),
      }),
    });
    const startPath = `/exec/${encodeURIComponent(created.Id)}/start`;
    if (options.detach) {
      await (
        await context.client.call("POST", startPath, {
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ Detach: true, Tty: tty }),
        })
      ).body.dump();
      return 0;
    }
    const stream = await hijacked(context, startPath, "", JSON.stringify({ Detach: false, Tty: tty }));
    const execPath = `/exec/${encodeURIComponent(created.Id)}`;
    const how = await interactiveSession(
      context,
      stream,
      { stdin: options.interactive === true, tty, sigProxy: false, detachKeys: options.detachKeys ?? DEFAULT_DETACH_KEYS },
      {
        resize: async (height, width) => {
          await (await context.client.call("POST", `${execPath}/resize`, { query: { h: String(height), w: String(width) } })).body.dump();
        },
        kill: async () => undefined,
      },
    );
    if (how === "detached") return 0;
    const inspected = await context.client.json<{ ExitCode?: number | null; Running?: boolean }>(
      "GET",
      `/exec/${encodeURIComponent(created.Id)}/json`,
    );
    return inspected.ExitCode ?? 0;
  },
});

/**
 * `attach`: the local terminal joined to a running container's stdio — stdin too unless --no-stdin
 * (when the container was created with -i), signals forwarded without a TTY, the exit code once it ends.
 */
const attachCommand = defineCommand<{ stdin?: boolean; sigProxy?: boolean; detachKeys?: string }>({
  name: "attach",
  shortcuts: ["attach"],
  usage: "[OPTIONS] CONTAINER",
  description: "Attach local standard input, output, and error streams to a running container",
  args: { min: 1, max: 1 },
  options: (command) =>
    command
      .option("--no-stdin", "Do not attach STDIN")
      .option("--sig-proxy [bool]", "Proxy all received signals to the process", parseBool, true)
      .option("--detach-keys <string>", "Override the key sequence for detaching a container"),
  async run(context, names, options) {
    const info = await context.client.json<{
      Id: string;
      State?: { Running?: boolean; Paused?: boolean };
      Config?: { Tty?: boolean; OpenStdin?: boolean };
    }>("GET", containerPath(names[0] as string, "/json"));
    if (!info.State?.Running) throw new CliError("You cannot attach to a stopped container, start it first");
    if (info.State.Paused) throw new CliError("You cannot attach to a paused container, unpause it first");
    const session: SessionFlags = {
      stdin: options.stdin !== false && info.Config?.OpenStdin === true,
      tty: info.Config?.Tty === true,
      sigProxy: options.sigProxy !== false,
      detachKeys: options.detachKeys ?? DEFAULT_DETACH_KEYS,
    };
    const waiting = await context.client.call("POST", containerPath(info.Id, "/wait"), { query: { condition: "next-exit" } });
    let how: "ended" | "detached";
    try {
      how = await interactiveSession(context, await attach(context, info.Id, session), session, containerSessionHooks(context, info.Id));
    } catch (error) {
      waiting.body.destroy();
      throw error;
    }
    if (how === "detached") {
      waiting.body.destroy();
      return 0;
    }
    const result = JSON.parse(await waiting.body.text()) as { StatusCode: number };
    return result.StatusCode;
  },
});

/** `--sig-proxy=false` / `--sig-proxy false` as docker's boolean flags take it. */
function parseBool(value: string | undefined): boolean {
  return value === undefined || !/^(false|0|f|FALSE|False)$/.test(value);
}

/** `minato container …` and its top-level shortcuts (`run`, `ps`, `logs`, `stop`, `rm` …). */
export const containerGroup: CommandGroup = {
  name: "container",
  description: "Manage containers",
  commands: [
    run,
    create,
    start,
    stop,
    restart,
    kill,
    pause,
    unpause,
    wait,
    rename,
    updateCommand,
    remove,
    prune,
    list,
    logs,
    inspect,
    exec,
    port,
    attachCommand,
    ...containerStatsCommands,
    ...containerFileCommands,
  ],
};

/** Top-level commands about any kind of object. */
export const objectGroup: CommandGroup = { commands: [inspectAny] };
