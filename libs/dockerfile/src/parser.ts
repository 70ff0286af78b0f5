// Phase two of parsing, as in BuildKit's instructions package: each raw node
// becomes a typed instruction (flags checked, arguments counted), and the
// instructions are grouped into global ARGs and stages.

import { DockerfileError, type SourceLocation } from "./errors.js";
import { expand } from "./lexer.js";
import { parseDevice, parseMount } from "./mounts.js";
import { chompHeredoc, located, parseHeredocWord, type RawNode, scan, type Word } from "./scanner.js";
import { withSuggestion } from "./suggest.js";
import { parseGoBool, parseGoDuration, parseInt32, quote, trimSpace } from "./text.js";
import type {
  AddInstruction,
  ArgInstruction,
  CheckDirective,
  Command,
  CopyInstruction,
  Dockerfile,
  EscapeToken,
  FlagUse,
  FromInstruction,
  Heredoc,
  InlineSource,
  Instruction,
  NetworkMode,
  SecurityMode,
  Stage,
  StageInstruction,
  Warning,
} from "./types.js";

const INSTRUCTION_NAMES = [
  "ADD",
  "ARG",
  "CMD",
  "COPY",
  "ENTRYPOINT",
  "ENV",
  "EXPOSE",
  "FROM",
  "HEALTHCHECK",
  "LABEL",
  "MAINTAINER",
  "ONBUILD",
  "RUN",
  "SHELL",
  "STOPSIGNAL",
  "USER",
  "VOLUME",
  "WORKDIR",
];

const VALID_STAGE_NAME = /^[a-z][a-z0-9\-_.]*$/;
const RESERVED_STAGE_NAMES = new Set(["context", "scratch"]);

type FlagKind = "bool" | "string" | "strings";

/** An error at a word of the node (a flag, an argument). */
class NodeError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** Instruction flags, checked as BuildKit's BFlags does. */
class Flags {
  private readonly values = new Map<string, { value: string; offset: number }[]>();
  readonly uses: FlagUse[];

  constructor(
    private readonly node: RawNode,
    private readonly location: (offset: number) => SourceLocation,
  ) {
    this.uses = node.flags.map((word) => {
      const body = word.value.startsWith("--") ? word.value.slice(2) : word.value;
      const eq = body.indexOf("=");
      return {
        name: eq < 0 ? body : body.slice(0, eq),
        value: eq < 0 ? undefined : body.slice(eq + 1),
        location: this.location(word.offset),
      };
    });
  }

  parse(spec: Record<string, FlagKind>): void {
    const names = Object.keys(spec);
    for (const word of this.node.flags) {
      const arg = word.value;
      if (arg === "--") return;
      if (!arg.startsWith("--")) throw new NodeError(`arg should start with -- : ${arg}`, word.offset);
      const eq = arg.indexOf("=");
      const flagName = eq < 0 ? arg : arg.slice(0, eq);
      const value = eq < 0 ? undefined : arg.slice(eq + 1);
      const name = flagName.slice(2);
      const kind = Object.hasOwn(spec, name) ? spec[name] : undefined;
      if (kind === undefined) throw new NodeError(withSuggestion(`unknown flag: ${flagName}`, name, names, true), word.offset);
      const seen = this.values.get(name);
      if (seen && kind !== "strings") throw new NodeError(`duplicate flag specified: ${flagName}`, word.offset);
      let stored: string;
      if (kind === "bool") {
        if (value === "") throw new NodeError(`missing a value on flag: ${flagName}`, word.offset);
        const lower = (value ?? "").toLowerCase();
        if (lower === "" || lower === "true") stored = "true";
        else if (lower === "false") stored = "false";
        else throw new NodeError(`expecting boolean value for flag ${flagName}, not: ${value}`, word.offset);
      } else {
        if (value === undefined) throw new NodeError(`missing a value on flag: ${flagName}`, word.offset);
        stored = value;
      }
      this.values.set(name, [...(seen ?? []), { value: stored, offset: word.offset }]);
    }
  }

  bool(name: string): boolean | undefined {
    const v = this.values.get(name)?.[0];
    return v === undefined ? undefined : v.value === "true";
  }

  string(name: string): string | undefined {
    return this.values.get(name)?.[0]?.value;
  }

  strings(name: string): { value: string; offset: number }[] {
    return this.values.get(name) ?? [];
  }

  offset(name: string): number {
    return this.values.get(name)?.[0]?.offset ?? this.node.keywordOffset;
  }
}

interface BuildContext {
  escapeToken: EscapeToken;
}

function nodeLocation(node: RawNode): SourceLocation {
  const at = node.line.position(node.keywordOffset);
  return { line: at.line, column: at.column, endLine: node.endLine };
}

function commandOf(node: RawNode, args: Word[]): Command {
  if (node.json) return { form: "exec", args: args.map((a) => a.value) };
  return { form: "shell", text: args.map((a) => a.value).join(" ") };
}

function argsError(node: RawNode, message: string): NodeError {
  return new NodeError(message, node.args[0]?.offset ?? node.keywordOffset);
}

function requireExactlyOne(node: RawNode, name: string): string {
  if (node.args.length !== 1) throw argsError(node, `${name} requires exactly one argument`);
  return node.args[0]!.value;
}

function parseFrom(node: RawNode, base: BaseFields, flags: Flags): FromInstruction {
  const args = node.args.map((a) => a.value);
  let name: string | undefined;
  if (args.length === 3 && args[1]!.toLowerCase() === "as") {
    name = args[2]!.toLowerCase();
    if (!VALID_STAGE_NAME.test(name)) {
      throw new NodeError(
        `invalid name for build stage: ${quote(args[2]!)}, name can't start with a number or contain symbols`,
        node.args[2]!.offset,
      );
    }
  } else if (args.length !== 1) {
    throw argsError(node, "FROM requires either one or three arguments");
  }
  flags.parse({ platform: "string" });
  const from: FromInstruction = { ...base, kind: "from", image: args[0]! };
  const platform = flags.string("platform");
  if (platform !== undefined) from.platform = platform;
  if (name !== undefined) from.name = name;
  return from;
}

interface BaseFields {
  keyword: string;
  original: string;
  location: SourceLocation;
  flags: FlagUse[];
}

function inlineSources(node: RawNode, command: string, heredocs: Heredoc[]): { sources: string[]; inline: InlineSource[]; dest: string } {
  const words = node.args.map((a) => a.value);
  const dest = words[words.length - 1]!;
  if (parseHeredocWord(dest))
    throw new NodeError(`${command} cannot accept a heredoc as a destination`, node.args[words.length - 1]!.offset);
  const byName = new Map(heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const inline: InlineSource[] = [];
  for (const src of words.slice(0, -1)) {
    const heredoc = parseHeredocWord(src);
    if (heredoc) {
      const content = byName.get(heredoc.name)?.content ?? "";
      inline.push({ name: heredoc.name, content: heredoc.chomp ? chompHeredoc(content) : content, expand: heredoc.expand });
    } else sources.push(src);
  }
  return { sources, inline, dest };
}

/** Builds the typed instruction for a raw node (ONBUILD's trigger uses the outer node's heredocs). */
function buildInstruction(node: RawNode, ctx: BuildContext, heredocs: Heredoc[] = node.heredocs): Instruction {
  const flags = new Flags(node, (offset) => {
    const at = node.line.position(offset);
    return { line: at.line, column: at.column, endLine: at.line };
  });
  const base: BaseFields = {
    keyword: node.keyword,
    original: node.original,
    location: nodeLocation(node),
    flags: flags.uses,
  };
  switch (node.cmd) {
    case "from":
      return parseFrom(node, base, flags);

    case "run": {
      flags.parse({ device: "strings", mount: "strings", network: "string", security: "string" });
      const devices = flags.strings("device").map((d) => {
        try {
          return parseDevice(d.value);
        } catch (err) {
          throw new NodeError((err as Error).message, d.offset);
        }
      });
      const mounts = flags.strings("mount").map((m) => {
        try {
          return parseMount(m.value, m.value.includes("$") ? undefined : (word) => expand(word, new Map(), ctx).value);
        } catch (err) {
          throw new NodeError((err as Error).message, m.offset);
        }
      });
      const network = flags.string("network");
      if (network !== undefined && network !== "default" && network !== "none" && network !== "host") {
        throw new NodeError(`invalid network mode ${quote(network)}`, flags.offset("network"));
      }
      const security = flags.string("security");
      if (security !== undefined && security !== "sandbox" && security !== "insecure") {
        throw new NodeError(`security ${quote(security)} is not valid`, flags.offset("security"));
      }
      return {
        ...base,
        kind: "run",
        command: commandOf(node, node.args),
        heredocs,
        mounts,
        ...(network !== undefined ? { network: network as NetworkMode } : {}),
        ...(security !== undefined ? { security: security as SecurityMode } : {}),
        devices,
      };
    }

    case "cmd":
      flags.parse({});
      return { ...base, kind: "cmd", command: commandOf(node, node.args) };

    case "entrypoint":
      flags.parse({});
      return { ...base, kind: "entrypoint", command: commandOf(node, node.args) };

    case "env":
    case "label": {
      flags.parse({});
      const kvs = node.keyValues ?? [];
      const upper = node.cmd.toUpperCase();
      if (kvs.length === 0) throw argsError(node, `${upper} requires at least one argument`);
      for (const kv of kvs) if (kv.key === "") throw new NodeError(`${upper} names can not be blank`, kv.offset);
      const pairs = kvs.map((kv) => ({ key: kv.key, value: kv.value }));
      const legacy = kvs[0]!.legacy;
      return node.cmd === "env" ? { ...base, kind: "env", pairs, legacy } : { ...base, kind: "label", pairs, legacy };
    }

    case "arg": {
      if (node.args.length === 0) throw argsError(node, "ARG requires at least one argument");
      const args = node.args.map((word) => {
        const eq = word.value.indexOf("=");
        if (eq < 0) return { name: word.value };
        if (eq === 0) throw new NodeError("ARG names can not be blank", word.offset);
        return { name: word.value.slice(0, eq), default: word.value.slice(eq + 1) };
      });
      // BuildKit does not check ARG's flags.
      return { ...base, kind: "arg", args };
    }

    case "copy": {
      if (node.args.length < 2) {
        throw argsError(node, "COPY requires at least two arguments, but only one was provided. Destination could not be determined");
      }
      flags.parse({ chown: "string", from: "string", chmod: "string", link: "bool", exclude: "strings", parents: "bool" });
      const { sources, inline, dest } = inlineSources(node, "COPY", heredocs);
      const copy: CopyInstruction = {
        ...base,
        kind: "copy",
        sources,
        inlineSources: inline,
        dest,
        json: node.json,
        link: flags.bool("link") ?? false,
        parents: flags.bool("parents") ?? false,
        excludes: flags.strings("exclude").map((e) => e.value),
        heredocs,
      };
      const from = flags.string("from");
      const chown = flags.string("chown");
      const chmod = flags.string("chmod");
      if (from !== undefined && from !== "") copy.from = from;
      if (chown !== undefined && chown !== "") copy.chown = chown;
      if (chmod !== undefined && chmod !== "") copy.chmod = chmod;
      return copy;
    }

    case "add": {
      if (node.args.length < 2) {
        throw argsError(node, "ADD requires at least two arguments, but only one was provided. Destination could not be determined");
      }
      flags.parse({
        chown: "string",
        chmod: "string",
        link: "bool",
        "keep-git-dir": "bool",
        checksum: "string",
        unpack: "bool",
        exclude: "strings",
      });
      const { sources, inline, dest } = inlineSources(node, "ADD", heredocs);
      const add: AddInstruction = {
        ...base,
        kind: "add",
        sources,
        inlineSources: inline,
        dest,
        json: node.json,
        link: flags.bool("link") ?? false,
        excludes: flags.strings("exclude").map((e) => e.value),
        heredocs,
      };
      const chown = flags.string("chown");
      const chmod = flags.string("chmod");
      const checksum = flags.string("checksum");
      const keepGitDir = flags.bool("keep-git-dir");
      const unpack = flags.bool("unpack");
      if (chown !== undefined && chown !== "") add.chown = chown;
      if (chmod !== undefined && chmod !== "") add.chmod = chmod;
      if (checksum !== undefined && checksum !== "") add.checksum = checksum;
      if (keepGitDir !== undefined) add.keepGitDir = keepGitDir;
      if (unpack !== undefined) add.unpack = unpack;
      return add;
    }

    case "workdir": {
      const path = requireExactlyOne(node, "WORKDIR");
      flags.parse({});
      return { ...base, kind: "workdir", path };
    }

    case "user": {
      const user = requireExactlyOne(node, "USER");
      flags.parse({});
      return { ...base, kind: "user", user };
    }

    case "maintainer": {
      const maintainer = requireExactlyOne(node, "MAINTAINER");
      flags.parse({});
      return { ...base, kind: "maintainer", maintainer };
    }

    case "stopsignal":
      // BuildKit does not check STOPSIGNAL's flags.
      return { ...base, kind: "stopsignal", signal: requireExactlyOne(node, "STOPSIGNAL") };

    case "volume": {
      if (node.args.length === 0) throw argsError(node, "VOLUME requires at least one argument");
      flags.parse({});
      const paths = node.args.map((word) => {
        const path = trimSpace(word.value);
        if (path === "") throw new NodeError("VOLUME specified can not be an empty string", word.offset);
        return path;
      });
      return { ...base, kind: "volume", paths, json: node.json };
    }

    case "expose": {
      if (node.args.length === 0) throw argsError(node, "EXPOSE requires at least one argument");
      flags.parse({});
      const ports = node.args.map((a) => a.value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return { ...base, kind: "expose", ports };
    }

    case "healthcheck":
      return parseHealthcheck(node, base, flags);

    case "shell": {
      flags.parse({});
      if (node.args.length === 0) throw argsError(node, "SHELL requires at least one argument");
      if (!node.json) throw argsError(node, "SHELL requires the arguments to be in JSON form");
      return { ...base, kind: "shell", shell: node.args.map((a) => a.value) };
    }

    case "onbuild": {
      if (node.args.length === 0 || !node.child) throw argsError(node, "ONBUILD requires at least one argument");
      flags.parse({});
      const trigger = trimSpace(node.args[0]!.value).toUpperCase();
      if (trigger === "ONBUILD") throw argsError(node, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (trigger === "MAINTAINER" || trigger === "FROM") throw argsError(node, `${trigger} isn't allowed as an ONBUILD trigger`);
      let expression = node.original.replace(/^[\t\n\f\r ]*onbuild[\t\n\f\r ]*/i, "");
      for (const heredoc of heredocs) expression += `\n${heredoc.content}${heredoc.name}`;
      let parsed: Instruction | undefined;
      try {
        parsed = buildInstruction(node.child, ctx, heredocs);
      } catch {
        parsed = undefined;
      }
      return { ...base, kind: "onbuild", expression, ...(parsed ? { trigger: parsed } : {}) };
    }

    default:
      throw new NodeError(
        withSuggestion(`unknown instruction: ${node.keyword}`, node.keyword, INSTRUCTION_NAMES, false),
        node.keywordOffset,
      );
  }
}

function parseHealthcheck(node: RawNode, base: BaseFields, flags: Flags): Instruction {
  if (node.args.length === 0) throw argsError(node, "HEALTHCHECK requires at least one argument");
  const type = node.args[0]!.value.toUpperCase();
  const rest = node.args.slice(1);
  const none = { interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
  if (type === "NONE") {
    if (rest.length !== 0) throw new NodeError("HEALTHCHECK NONE takes no arguments", rest[0]!.offset);
    return { ...base, kind: "healthcheck", test: ["NONE"], ...none };
  }
  flags.parse({ interval: "string", timeout: "string", "start-period": "string", "start-interval": "string", retries: "string" });
  if (type !== "CMD") throw new NodeError(`Unknown type ${quote(type)} in HEALTHCHECK (try CMD)`, node.args[0]!.offset);
  if (rest.length === 0) throw argsError(node, "Missing command after HEALTHCHECK CMD");
  const command = commandOf(node, rest);
  const test = command.form === "exec" ? ["CMD", ...command.args] : ["CMD-SHELL", command.text];

  const interval = (name: string): number => {
    const value = flags.string(name);
    if (value === undefined || value === "") return 0;
    let ns: number;
    try {
      ns = parseGoDuration(value);
    } catch (err) {
      throw new NodeError((err as Error).message, flags.offset(name));
    }
    if (ns === 0) return 0;
    if (ns < 1e6) throw new NodeError(`Interval ${quote(name)} cannot be less than 1ms`, flags.offset(name));
    return ns;
  };
  const result = {
    interval: interval("interval"),
    timeout: interval("timeout"),
    startPeriod: interval("start-period"),
    startInterval: interval("start-interval"),
    retries: 0,
  };
  const retries = flags.string("retries");
  if (retries !== undefined && retries !== "") {
    const n = parseInt32(retries);
    if (n === undefined) throw new NodeError(`strconv.ParseInt: parsing ${quote(retries)}: invalid syntax`, flags.offset("retries"));
    if (n < 0) throw new NodeError(`--retries cannot be negative (${n})`, flags.offset("retries"));
    result.retries = n;
  }
  return { ...base, kind: "healthcheck", test, command, ...result };
}

function asDockerfileError(err: unknown, node: RawNode): DockerfileError {
  if (err instanceof DockerfileError) return err;
  if (err instanceof NodeError) return located(new Error(err.message), node.line, node.startLine, node.endLine, err.offset);
  return located(err, node.line, node.startLine, node.endLine, node.keywordOffset);
}

function parseCheck(value: string, location: SourceLocation): CheckDirective {
  const check: CheckDirective = { skipAll: false, skip: [], error: false, experimentalAll: false, experimental: [] };
  const text = trimSpace(value);
  if (text === "") return check;
  // Go's strings.SplitN(text, ";", 3)
  const parts = text.split(";");
  const limited = parts.length > 3 ? [parts[0]!, parts[1]!, parts.slice(2).join(";")] : parts;
  for (const part of limited) {
    const eq = part.indexOf("=");
    if (eq < 0) throw new DockerfileError(`invalid check option ${quote(part)}`, location);
    const key = trimSpace(part.slice(0, eq));
    const v = trimSpace(part.slice(eq + 1));
    if (key === "skip" || key === "experimental") {
      const all = v === "all";
      const list = all ? [] : v.split(",").map((rule) => trimSpace(rule));
      if (key === "skip") {
        check.skipAll = all;
        check.skip = list;
      } else {
        check.experimentalAll = all;
        check.experimental = list;
      }
    } else if (key === "error") {
      const b = parseGoBool(v);
      if (b === undefined) throw new DockerfileError(`failed to parse check option ${quote(part)}: invalid syntax`, location);
      check.error = b;
    } else {
      throw new DockerfileError(`invalid check option ${quote(key)}`, location);
    }
  }
  return check;
}

/**
 * Parses a Dockerfile (reference: "Dockerfile reference"). Nothing is expanded:
 * values keep their quotes and variables for {@link expandInstruction} at build
 * time. Throws {@link DockerfileError} with the line and column of the problem.
 */
export function parseDockerfile(text: string): Dockerfile {
  const scanned = scan(text);
  const ctx: BuildContext = { escapeToken: scanned.escapeToken };
  const instructions: { node: RawNode; instruction: Instruction }[] = [];
  for (const node of scanned.nodes) {
    try {
      instructions.push({ node, instruction: buildInstruction(node, ctx) });
    } catch (err) {
      throw asDockerfileError(err, node);
    }
  }

  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  const warnings: Warning[] = [...scanned.warnings];
  const names = new Set<string>();
  for (const { instruction } of instructions) {
    if (instruction.kind === "from") {
      const stage: Stage = { index: stages.length, from: instruction, instructions: [] };
      if (instruction.name !== undefined) {
        stage.name = instruction.name;
        if (RESERVED_STAGE_NAMES.has(instruction.name)) {
          warnings.push({
            rule: "ReservedStageName",
            message: `'${instruction.name}' is reserved and should not be used as a stage name`,
            location: instruction.location,
          });
        }
        if (names.has(instruction.name)) {
          warnings.push({
            rule: "DuplicateStageName",
            message: `Duplicate stage name ${quote(instruction.name)}, stage names should be unique`,
            location: instruction.location,
          });
        }
        names.add(instruction.name);
      }
      stages.push(stage);
    } else if (stages.length === 0) {
      if (instruction.kind !== "arg") throw new DockerfileError("no build stage in current context", instruction.location);
      globalArgs.push(instruction);
    } else {
      stages[stages.length - 1]!.instructions.push(instruction as StageInstruction);
    }
  }
  if (stages.length === 0) {
    const last = instructions[instructions.length - 1]!.instruction.location;
    throw new DockerfileError("dockerfile contains no stages to build", last);
  }

  const dockerfile: Dockerfile = {
    escapeToken: scanned.escapeToken,
    directives: scanned.directives,
    globalArgs,
    stages,
    warnings,
  };
  for (const directive of scanned.directives) {
    if (directive.name === "syntax") dockerfile.syntax = directive.value;
    if (directive.name === "check") dockerfile.check = parseCheck(directive.value, directive.location);
  }
  return dockerfile;
}

/**
 * Parses an ONBUILD trigger expression (as stored in an image's config) into
 * its instruction, the way a downstream build does before running it.
 * Triggers are parsed with the default escape token, as BuildKit does.
 */
export function parseTrigger(expression: string): StageInstruction {
  const scanned = scan(expression);
  const node = scanned.nodes[0]!;
  if (scanned.nodes.length !== 1) {
    throw new DockerfileError("onbuild trigger should be a single expression", nodeLocation(scanned.nodes[1]!));
  }
  let instruction: Instruction;
  try {
    instruction = buildInstruction(node, { escapeToken: scanned.escapeToken });
  } catch (err) {
    throw asDockerfileError(err, node);
  }
  if (instruction.kind === "from" || instruction.kind === "onbuild" || instruction.kind === "maintainer") {
    throw new DockerfileError(`${instruction.kind.toUpperCase()} isn't allowed as an ONBUILD trigger`, instruction.location);
  }
  return instruction;
}
