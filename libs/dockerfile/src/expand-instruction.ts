// Build-time helpers: expanding an instruction's variables with the step's
// environment (the reference's list of instructions that expand), turning
// RUN here-documents into the script to run, and EXPOSE words into ports.

import { DockerfileError } from "./errors.js";
import { type EnvLookup, type ExpandOptions, expand, expandHeredoc, expandWords } from "./lexer.js";
import { parseMount } from "./mounts.js";
import { parseHeredocWord } from "./scanner.js";
import type { EscapeToken, Instruction, RunInstruction } from "./types.js";

export interface InstructionExpansion<T extends Instruction> {
  /** A copy of the instruction with its expandable fields expanded. */
  instruction: T;
  /** Variables the instruction used that were set: part of the step's cache key. */
  used: Set<string>;
  /** Variables the instruction referenced that were not set. */
  unset: Set<string>;
}

/**
 * Expands the variables of one instruction with `env` (the ENV and ARG values
 * in effect before this step; a change inside the instruction takes effect on
 * the next one, as the reference's `ENV abc=bye def=$abc` example shows).
 *
 * Expanded, per the reference's "Environment replacement" list and BuildKit:
 * FROM (image, --platform; give it the global ARGs), ENV and LABEL (keys and
 * values), COPY and ADD (sources, destination, --chown, --chmod, ADD
 * --checksum, here-document bodies whose delimiter was not quoted), WORKDIR,
 * USER, VOLUME, EXPOSE (each word may expand to several), STOPSIGNAL and RUN
 * --mount values. RUN/CMD/ENTRYPOINT commands are left to the shell; ARG
 * defaults are resolved with {@link resolveArg}; ONBUILD triggers expand when
 * they run downstream. Quotes are removed from expanded values.
 *
 * Pass the Dockerfile's escape token. Throws {@link DockerfileError} (phase
 * "expand") located at the instruction.
 */
export function expandInstruction<T extends Instruction>(
  instruction: T,
  env: EnvLookup,
  options: { escapeToken?: EscapeToken; patternModifiers?: boolean } = {},
): InstructionExpansion<T> {
  const used = new Set<string>();
  const unset = new Set<string>();
  const lexOptions: ExpandOptions = { escapeToken: options.escapeToken ?? "\\", patternModifiers: options.patternModifiers ?? true };
  const fail = (err: unknown): never => {
    if (err instanceof DockerfileError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new DockerfileError(message, instruction.location, "expand");
  };
  const merge = (r: { used: Set<string>; unset: Set<string> }) => {
    for (const name of r.used) used.add(name);
    for (const name of r.unset) unset.add(name);
  };
  const word = (value: string): string => {
    try {
      const r = expand(value, env, lexOptions);
      merge(r);
      return r.value;
    } catch (err) {
      return fail(err);
    }
  };
  const optional = (value: string | undefined) => (value === undefined ? undefined : word(value));
  const set = <O extends object>(obj: O, key: keyof O & string, value: string | undefined) => {
    if (value === undefined) delete obj[key];
    else (obj as Record<string, unknown>)[key] = value;
  };

  const i = structuredClone(instruction) as Instruction;
  switch (i.kind) {
    case "from":
      i.image = word(i.image);
      set(i, "platform", optional(i.platform));
      break;
    case "env":
    case "label":
      i.pairs = i.pairs.map((p) => ({ key: word(p.key), value: word(p.value) }));
      break;
    case "copy":
    case "add":
      i.sources = i.sources.map(word);
      i.dest = word(i.dest);
      set(i, "chown", optional(i.chown));
      set(i, "chmod", optional(i.chmod));
      if (i.kind === "add") set(i, "checksum", optional(i.checksum));
      i.inlineSources = i.inlineSources.map((source) => {
        if (!source.expand) return source;
        try {
          const r = expandHeredoc(source.content, env);
          merge(r);
          return { ...source, content: r.value };
        } catch (err) {
          return fail(err);
        }
      });
      break;
    case "workdir":
      i.path = word(i.path);
      break;
    case "user":
      i.user = word(i.user);
      break;
    case "stopsignal":
      i.signal = word(i.signal);
      break;
    case "volume":
      i.paths = i.paths.map(word);
      break;
    case "expose":
      i.ports = i.ports.flatMap((port) => {
        try {
          const r = expandWords(port, env, lexOptions);
          merge(r);
          return r.words;
        } catch (err) {
          return fail(err);
        }
      });
      break;
    case "run":
      i.mounts = i.mounts.map((mount) => {
        try {
          return parseMount(mount.spec, word);
        } catch (err) {
          return fail(err);
        }
      });
      break;
    default:
      break;
  }
  return { instruction: i as T, used, unset };
}

/** What to run for a RUN with here-documents: `script` goes to the shell; `file`, when set, is mounted first. */
export interface RunScript {
  script: string;
  /** A heredoc starting with `#!`: mount `content` executable (0755) at `path`; `script` is that path. */
  file?: { path: string; content: string };
}

/**
 * BuildKit's treatment of RUN here-documents:
 * - `RUN <<EOF` alone: the body is the script (tabs stripped for `<<-`), or, when
 *   it starts with `#!` (not on Windows), an executable file the shell runs;
 * - otherwise (`RUN <<EOF bash`, `RUN cat <<A >a && cat <<B >b`): the command line
 *   with each body and delimiter appended, for the shell to read as here-documents.
 * Returns undefined when the RUN has no here-document.
 */
export function runScript(run: RunInstruction, options: { os?: string } = {}): RunScript | undefined {
  if (run.heredocs.length === 0 || run.command.form !== "shell") return undefined;
  const first = run.heredocs[0]!;
  if (parseHeredocWord(run.command.text)) {
    const data = first.chomp ? first.content.replace(/^\t+/gm, "") : first.content;
    if (options.os !== "windows" && first.content.startsWith("#!")) {
      const path = `/dev/pipes/${first.name}`;
      return { script: path, file: { path, content: data } };
    }
    return { script: data };
  }
  let script = run.command.text;
  for (const heredoc of run.heredocs) script += `\n${heredoc.content}${heredoc.name}`;
  return { script };
}

function parsePortNumber(raw: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(raw)) return undefined;
  const n = Number.parseInt(raw, 10);
  return n >= 0 && n <= 65535 ? n : undefined;
}

function parsePortRange(ports: string): [number, number] | undefined {
  if (ports === "") return undefined;
  const dash = ports.indexOf("-");
  const start = dash < 0 ? ports : ports.slice(0, dash);
  const end = dash < 0 ? undefined : ports.slice(dash + 1);
  const first = parsePortNumber(start);
  if (first === undefined) return undefined;
  if (end === undefined || end === start) return [first, first];
  const last = parsePortNumber(end);
  if (last === undefined || last < first) return undefined;
  return [first, last];
}

/**
 * EXPOSE words (after expansion) as image-config keys: "80" → "80/tcp",
 * "53/UDP" → "53/udp", "8000-8002" → three ports. Accepts and ignores the
 * `ip:hostPort:` prefix BuildKit tolerates. Throws on an invalid port or protocol.
 */
export function normalizeExposedPorts(ports: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of ports) {
    const parts = raw.split(":");
    const containerPart = parts[parts.length - 1]!;
    const hostPart = parts.length >= 2 ? parts[parts.length - 2]! : "";
    const slash = containerPart.indexOf("/");
    const port = slash < 0 ? containerPart : containerPart.slice(0, slash);
    const proto = slash < 0 ? "" : containerPart.slice(slash + 1);
    if (port === "") throw new Error(`invalid port: ${JSON.stringify(raw)}: no port specified`);
    const lower = proto.toLowerCase();
    if (lower !== "" && lower !== "tcp" && lower !== "udp" && lower !== "sctp") {
      throw new Error(`invalid port: ${JSON.stringify(raw)}: invalid proto: ${proto}`);
    }
    const range = parsePortRange(port);
    if (!range) throw new Error(`invalid containerPort: ${port}`);
    if (hostPart !== "") {
      const hostRange = parsePortRange(hostPart);
      if (!hostRange) throw new Error(`invalid hostPort: ${hostPart}`);
      if (range[1] - range[0] !== hostRange[1] - hostRange[0] && range[1] !== range[0]) {
        throw new Error(`invalid ranges specified for container and host Ports: ${port} and ${hostPart}`);
      }
    }
    for (let p = range[0]; p <= range[1]; p++) out.push(`${p}/${lower === "" ? "tcp" : lower}`);
  }
  return out;
}
