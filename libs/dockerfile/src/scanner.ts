// Phase one of parsing, as in BuildKit's parser package: physical lines →
// parser directives, comments, line continuations and here-documents →
// one raw node per instruction with its keyword, flag words and argument
// words, each remembering where it came from (line and column).

import { DockerfileError, type SourceLocation, SyntaxIssue } from "./errors.js";
import { heredocWords, rawWords } from "./lexer.js";
import { isSpace, quote, splitWhitespaceOnce, trimLeftSpace, trimSpace, WHITESPACE_RUN } from "./text.js";
import type { Directive, EscapeToken, Heredoc, Warning } from "./types.js";

/** A piece of a logical line: where it starts in the logical text and in the file. */
interface Segment {
  start: number;
  line: number;
  column: number;
}

/** An instruction's text with continuations joined, mapping offsets back to file positions. */
export class LogicalLine {
  text = "";
  private readonly segments: Segment[] = [];

  add(piece: string, line: number, column: number): void {
    this.segments.push({ start: this.text.length, line, column });
    this.text += piece;
  }

  position(offset: number): { line: number; column: number } {
    let segment = this.segments[0]!;
    for (const s of this.segments) {
      if (s.start <= offset) segment = s;
      else break;
    }
    return { line: segment.line, column: segment.column + Math.max(0, offset - segment.start) };
  }
}

export interface Word {
  value: string;
  /** Offset in the logical line. */
  offset: number;
}

export interface KeyValueWord {
  key: string;
  value: string;
  legacy: boolean;
  offset: number;
}

export interface RawNode {
  keyword: string;
  /** keyword lower-cased */
  cmd: string;
  /** The text the node was parsed from (the logical line, or the rest of an ONBUILD line for its child). */
  original: string;
  keywordOffset: number;
  flags: Word[];
  argsOffset: number;
  args: Word[];
  json: boolean;
  keyValues?: KeyValueWord[];
  child?: RawNode;
  heredocs: Heredoc[];
  line: LogicalLine;
  startLine: number;
  endLine: number;
}

export interface ScanResult {
  nodes: RawNode[];
  directives: Directive[];
  escapeToken: EscapeToken;
  warnings: Warning[];
}

const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*$/;
const HEREDOC_WORD = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;
const HEREDOC_INSTRUCTIONS = new Set(["run", "copy", "add"]);

/** Which line parser each instruction uses (BuildKit's dispatch table). */
type LineParser = "json" | "jsonList" | "whitespace" | "string" | "nameVal" | "nameOrNameVal" | "sub" | "health" | "ignore";
const LINE_PARSERS: Record<string, LineParser> = {
  add: "jsonList",
  arg: "nameOrNameVal",
  cmd: "json",
  copy: "jsonList",
  entrypoint: "json",
  env: "nameVal",
  expose: "whitespace",
  from: "whitespace",
  healthcheck: "health",
  label: "nameVal",
  maintainer: "string",
  onbuild: "sub",
  run: "json",
  shell: "json",
  stopsignal: "string",
  user: "string",
  volume: "jsonList",
  workdir: "string",
};

export const NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only";

function trimNewline(s: string): string {
  let end = s.length;
  while (end > 0 && (s[end - 1] === "\r" || s[end - 1] === "\n")) end--;
  return s.slice(0, end);
}

function isComment(s: string): boolean {
  return trimLeftSpace(s).startsWith("#");
}

/** Splits into lines that keep their terminators (BuildKit keeps them for here-document bodies). */
function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf("\n", start);
    if (nl < 0) {
      if (start < text.length) lines.push(text.slice(start));
      return lines;
    }
    lines.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
}

class Directives {
  escapeToken: EscapeToken = "\\";
  done = false;
  readonly found: Directive[] = [];
  private readonly seen = new Set<string>();

  check(token: string, line: number): void {
    if (this.done) return;
    if (!token.startsWith("#")) {
      this.done = true;
      return;
    }
    const m = DIRECTIVE.exec(trimLeftSpace(token.slice(1)));
    const name = m?.[1]?.toLowerCase();
    if (!m || (name !== "syntax" && name !== "escape" && name !== "check")) {
      this.done = true;
      return;
    }
    const location = { line, column: 1, endLine: line };
    if (this.seen.has(name)) throw new DockerfileError(`only one ${name} parser directive can be used`, location);
    this.seen.add(name);
    const value = m[2]!;
    if (name === "escape") {
      if (value !== "`" && value !== "\\") throw new DockerfileError(`invalid escape token '${value}' does not match \` or \\`, location);
      this.escapeToken = value;
    }
    this.found.push({ name, value, location });
  }

  /** `(?:[^E])E[ \t]*$|^E[ \t]*$`: the escape token ends the line unless it is itself escaped. */
  trimContinuation(s: string): [string, boolean] {
    let end = s.length;
    while (end > 0 && (s[end - 1] === " " || s[end - 1] === "\t")) end--;
    if (end === 0 || s[end - 1] !== this.escapeToken) return [s, true];
    const at = end - 1;
    if (at === 0) return ["", false];
    if (s[at - 1] === this.escapeToken) return [s, true];
    return [s.slice(0, at), false];
  }
}

/** BuildKit's extractBuilderFlags: leading `--words` (quotes and escapes removed) and the rest of the line. */
function extractFlags(line: string, escapeToken: string): { flags: Word[]; rest: number } {
  const flags: Word[] = [];
  let phase: "spaces" | "word" | "quote" = "spaces";
  let word = "";
  let start = 0;
  let quoteChar = "";
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const atEnd = pos === line.length;
    let ch = atEnd ? "" : line[pos]!;
    if (phase === "spaces") {
      if (atEnd) break;
      if (isSpace(ch)) continue;
      if (ch !== "-" || pos + 1 === line.length || line[pos + 1] !== "-") return { flags, rest: pos };
      phase = "word";
      start = pos;
    }
    if (atEnd) {
      if (word !== "--" && (blankOK || word.length > 0)) flags.push({ value: word, offset: start });
      break;
    }
    if (phase === "word") {
      if (isSpace(ch)) {
        phase = "spaces";
        if (word === "--") return { flags, rest: pos };
        if (blankOK || word.length > 0) flags.push({ value: word, offset: start });
        word = "";
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quoteChar = ch;
        blankOK = true;
        phase = "quote";
        continue;
      }
      if (ch === escapeToken) {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos]!;
      }
      word += ch;
      continue;
    }
    // phase === "quote"
    if (ch === quoteChar) {
      phase = "word";
      continue;
    }
    if (ch === escapeToken) {
      if (pos + 1 === line.length) {
        phase = "word";
        continue;
      }
      pos++;
      ch = line[pos]!;
    }
    word += ch;
  }
  return { flags, rest: line.length };
}

/** BuildKit's parseWords: whitespace-separated words; quotes and escapes are kept for later expansion. */
export function parseWords(rest: string, escapeToken: string): Word[] {
  const words: Word[] = [];
  let phase: "spaces" | "word" | "quote" = "spaces";
  let quoteChar = "";
  let blankOK = false;
  let word = "";
  let start = 0;
  const chars = Array.from(rest);
  let offset = 0;
  for (let i = 0; i <= chars.length; i++) {
    const atEnd = i === chars.length;
    let ch = atEnd ? "" : chars[i]!;
    const here = offset;
    offset += ch.length;
    if (phase === "spaces") {
      if (atEnd) break;
      if (isSpace(ch)) continue;
      phase = "word";
      start = here;
    }
    if (atEnd) {
      if (blankOK || word.length > 0) words.push({ value: word, offset: start });
      break;
    }
    if (phase === "word") {
      if (isSpace(ch)) {
        phase = "spaces";
        if (blankOK || word.length > 0) words.push({ value: word, offset: start });
        word = "";
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quoteChar = ch;
        blankOK = true;
        phase = "quote";
      }
      if (ch === escapeToken) {
        if (i + 1 === chars.length) continue;
        word += ch;
        i++;
        ch = chars[i]!;
        offset += ch.length;
      }
      word += ch;
      continue;
    }
    // phase === "quote"
    if (ch === quoteChar) phase = "word";
    if (ch === escapeToken && quoteChar !== "'") {
      if (i + 1 === chars.length) {
        phase = "word";
        continue;
      }
      word += ch;
      i++;
      ch = chars[i]!;
      offset += ch.length;
    }
    word += ch;
  }
  return words;
}

function whitespaceWords(rest: string, base: number): Word[] {
  if (rest === "") return [];
  const words: Word[] = [];
  const re = new RegExp(WHITESPACE_RUN.source, "g");
  let start = 0;
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    words.push({ value: rest.slice(start, m.index), offset: base + start });
    start = m.index + m[0].length;
  }
  words.push({ value: rest.slice(start), offset: base + start });
  return words;
}

function parseJson(rest: string, base: number): Word[] | undefined {
  const trimmed = trimLeftSpace(rest);
  if (!trimmed.startsWith("[")) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const offset = base + rest.length - trimmed.length;
  return parsed.map((item) => {
    if (typeof item !== "string") throw new SyntaxIssue(NOT_STRING_ARRAY, offset);
    return { value: item, offset };
  });
}

function parseNameVal(rest: string, base: number, key: string, escapeToken: string): KeyValueWord[] {
  const words = parseWords(rest, escapeToken);
  if (words.length === 0) return [];
  if (!words[0]!.value.includes("=")) {
    const parts = splitWhitespaceOnce(rest);
    if (parts.length < 2) throw new SyntaxIssue(`${key} must have two arguments`, base);
    return [{ key: parts[0]!, value: parts[1]!, legacy: true, offset: base }];
  }
  return words.map((word) => {
    const eq = word.value.indexOf("=");
    if (eq < 0) {
      throw new SyntaxIssue(`Syntax error - can't find = in ${quote(word.value)}. Must be of the form: name=value`, base + word.offset);
    }
    return { key: word.value.slice(0, eq), value: word.value.slice(eq + 1), legacy: false, offset: base + word.offset };
  });
}

interface NodeContext {
  escapeToken: string;
  line: LogicalLine;
}

/** BuildKit's newNodeFromLine for `text`, which starts at `base` in the logical line. */
function newNode(text: string, base: number, ctx: NodeContext): RawNode {
  const trimmed = trimSpace(text);
  const lead = base + (text.length - trimLeftSpace(text).length);
  const m = WHITESPACE_RUN.exec(trimmed);
  const keyword = m ? trimmed.slice(0, m.index) : trimmed;
  const cmd = keyword.toLowerCase();
  let flags: Word[] = [];
  let args = "";
  let argsOffset = lead + trimmed.length;
  if (m) {
    const restStart = m.index + m[0].length;
    const rest = trimmed.slice(restStart);
    const extracted = extractFlags(rest, ctx.escapeToken);
    flags = extracted.flags.map((f) => ({ value: f.value, offset: lead + restStart + f.offset }));
    const remaining = rest.slice(extracted.rest);
    args = trimSpace(remaining);
    argsOffset = lead + restStart + extracted.rest + (remaining.length - trimLeftSpace(remaining).length);
  }
  const node: RawNode = {
    keyword,
    cmd,
    original: text,
    keywordOffset: lead,
    flags,
    argsOffset,
    args: [],
    json: false,
    heredocs: [],
    line: ctx.line,
    startLine: 0,
    endLine: 0,
  };
  switch (LINE_PARSERS[cmd] ?? "ignore") {
    case "json": {
      if (args === "") break;
      const json = parseJson(args, argsOffset);
      if (json) {
        node.args = json;
        node.json = true;
      } else node.args = [{ value: args, offset: argsOffset }];
      break;
    }
    case "jsonList": {
      const json = parseJson(args, argsOffset);
      if (json) {
        node.args = json;
        node.json = true;
      } else node.args = whitespaceWords(args, argsOffset);
      break;
    }
    case "whitespace":
      node.args = whitespaceWords(args, argsOffset);
      break;
    case "string":
      if (args !== "") node.args = [{ value: args, offset: argsOffset }];
      break;
    case "nameVal":
      node.keyValues = parseNameVal(args, argsOffset, cmd.toUpperCase(), ctx.escapeToken);
      break;
    case "nameOrNameVal":
      node.args = parseWords(args, ctx.escapeToken).map((w) => ({ value: w.value, offset: argsOffset + w.offset }));
      break;
    case "sub":
      if (args !== "") {
        node.child = newNode(args, argsOffset, ctx);
        node.args = [{ value: node.child.keyword, offset: node.child.keywordOffset }];
      }
      break;
    case "health": {
      if (args === "") break;
      let sep = 0;
      while (sep < args.length && !isSpace(args[sep])) sep++;
      let next = sep;
      while (next < args.length && isSpace(args[next])) next++;
      node.args = [{ value: args.slice(0, sep), offset: argsOffset }];
      const cmdText = args.slice(next);
      if (cmdText !== "") {
        const json = parseJson(cmdText, argsOffset + next);
        if (json) {
          node.args.push(...json);
          node.json = true;
        } else node.args.push({ value: cmdText, offset: argsOffset + next });
      }
      break;
    }
    case "ignore":
      break;
  }
  return node;
}

function canContainHeredoc(node: RawNode): boolean {
  const target = node.cmd === "onbuild" && node.child ? node.child : node;
  return HEREDOC_INSTRUCTIONS.has(target.cmd) && !target.json;
}

interface HeredocWord {
  name: string;
  expand: boolean;
  chomp: boolean;
  fd: number;
}

/** Recognises a here-document word (`<<EOF`, `<<-"EOF"`, `3<<EOF`) as BuildKit does; undefined otherwise. */
export function parseHeredocWord(word: string): HeredocWord | undefined {
  const m = HEREDOC_WORD.exec(word);
  if (!m) return undefined;
  const rest = m[3]!;
  if (rest === "") return undefined;
  const words = heredocWords(rest, false);
  if (words.length !== 1) return undefined;
  const raw = heredocWords(rest, true);
  const name = words[0]!;
  const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
  const fd = m[1] === "" ? 0 : Number.parseInt(m[1]!, 10);
  return { name, expand: quotes(name) === quotes(raw[0] ?? ""), chomp: m[2] === "-", fd: Number.isSafeInteger(fd) ? fd : 0 };
}

/** Strips leading tabs from every line (`<<-`). */
export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, "");
}

/**
 * Scans the whole file into raw nodes. Errors found here are the ones BuildKit's
 * parser reports before looking at any instruction's meaning.
 */
export function scan(input: string): ScanResult {
  const text = input.startsWith("\ufeff") ? input.slice(1) : input;
  const lines = splitLines(text);
  const directives = new Directives();
  const nodes: RawNode[] = [];
  const warnings: Warning[] = [];
  let i = 0;
  while (i < lines.length) {
    const content = trimNewline(lines[i]!);
    const startLine = ++i;
    const leftTrimmed = trimLeftSpace(content);
    directives.check(leftTrimmed, startLine);
    const firstPiece = isComment(leftTrimmed) ? "" : leftTrimmed;
    let [piece, isEnd] = directives.trimContinuation(firstPiece);
    if (isEnd && piece === "") continue;

    const logical = new LogicalLine();
    logical.add(piece, startLine, content.length - leftTrimmed.length + 1);
    let emptyContinuation = false;
    while (!isEnd && i < lines.length) {
      const next = trimNewline(lines[i]!);
      const lineNo = ++i;
      directives.check(next, lineNo);
      if (isComment(next)) continue;
      if (trimLeftSpace(next) === "") {
        emptyContinuation = true;
        continue;
      }
      [piece, isEnd] = directives.trimContinuation(next);
      logical.add(piece, lineNo, 1);
    }
    const ctx: NodeContext = { escapeToken: directives.escapeToken, line: logical };
    let node: RawNode;
    try {
      node = newNode(logical.text, 0, ctx);
    } catch (err) {
      throw located(err, logical, startLine, i);
    }
    if (emptyContinuation) {
      warnings.push({
        rule: "NoEmptyContinuation",
        message: `Empty continuation line found in: ${logical.text}`,
        location: { line: i, column: 1, endLine: i },
      });
    }

    if (canContainHeredoc(node) && logical.text.includes("<<")) {
      for (const word of rawWords(logical.text)) {
        let heredoc: HeredocWord | undefined;
        try {
          heredoc = parseHeredocWord(word);
        } catch (err) {
          throw located(err, logical, startLine, i);
        }
        if (!heredoc) continue;
        let content = "";
        let terminated = false;
        while (i < lines.length) {
          const raw = lines[i++]!;
          let candidate = trimNewline(raw);
          if (heredoc.chomp) candidate = candidate.replace(/^\t+/, "");
          if (candidate === heredoc.name) {
            terminated = true;
            break;
          }
          content += raw;
        }
        if (!terminated) {
          const at = logical.position(node.keywordOffset);
          throw new DockerfileError("unterminated heredoc", { line: startLine, column: at.column, endLine: i });
        }
        node.heredocs.push({ ...heredoc, content });
      }
    }
    node.startLine = startLine;
    node.endLine = i;
    nodes.push(node);
  }
  if (nodes.length === 0) {
    const line = Math.max(1, lines.length);
    throw new DockerfileError("file with no instructions", { line, column: 1, endLine: line });
  }
  return { nodes, directives: directives.found, escapeToken: directives.escapeToken, warnings };
}

/** Attaches a location to an error raised while reading an instruction. */
export function located(err: unknown, line: LogicalLine, startLine: number, endLine: number, fallbackOffset = 0): DockerfileError {
  if (err instanceof DockerfileError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const offset = err instanceof SyntaxIssue && err.offset !== undefined ? err.offset : fallbackOffset;
  const at = line.position(offset);
  const location: SourceLocation = { line: at.line, column: at.column, endLine: Math.max(endLine, at.line, startLine) };
  return new DockerfileError(message, location);
}
