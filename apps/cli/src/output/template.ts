/**
 * The subset of Go's text/template that `--format` uses in the docker CLI: `{{.Field}}` chains,
 * `{{json .}}`, pipelines (`{{.Name | upper}}`), parenthesised arguments, `if`/`else`/`range`/`with`
 * blocks, whitespace trimming (`{{- … -}}`) and docker's template functions (json, upper, lower,
 * title, split, join, truncate, pad, println) plus the Go built-ins scripts reach for (len, index,
 * eq, ne, lt, le, gt, ge, not, and, or, print, printf). Values print as Go's `%v` prints them:
 * lists as `[a b]`, objects as `map[k:v]`, missing keys as `<no value>`.
 */

export class TemplateError extends Error {
  constructor(
    message: string,
    /** True for a template that does not parse (docker exits 64), false for one that fails on the data. */
    readonly parse: boolean,
  ) {
    super(message);
  }
}

type Token =
  | { kind: "field"; path: string[] }
  | { kind: "ident"; name: string }
  | { kind: "string"; value: string }
  | { kind: "number"; value: number }
  | { kind: "pipe" }
  | { kind: "open" }
  | { kind: "close" };

type Operand =
  | { kind: "field"; path: string[]; text: string }
  | { kind: "literal"; value: unknown }
  | { kind: "call"; name: string }
  | { kind: "pipeline"; pipeline: Pipeline };

/** One command of a pipeline: a function name with its arguments, or a single value. */
type Command = Operand[];
type Pipeline = Command[];

type Node =
  | { kind: "text"; text: string }
  | { kind: "action"; pipeline: Pipeline; source: string }
  | { kind: "if" | "with" | "range"; pipeline: Pipeline; body: Node[]; otherwise: Node[]; source: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "|") {
      tokens.push({ kind: "pipe" });
      i++;
    } else if (c === "(") {
      tokens.push({ kind: "open" });
      i++;
    } else if (c === ")") {
      tokens.push({ kind: "close" });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < source.length && source[j] !== '"') j += source[j] === "\\" ? 2 : 1;
      if (j >= source.length) throw new TemplateError("unterminated quoted string", true);
      tokens.push({ kind: "string", value: JSON.parse(source.slice(i, j + 1)) as string });
      i = j + 1;
    } else if (c === "`") {
      const j = source.indexOf("`", i + 1);
      if (j === -1) throw new TemplateError("unterminated raw quoted string", true);
      tokens.push({ kind: "string", value: source.slice(i + 1, j) });
      i = j + 1;
    } else if (c === ".") {
      const match = /^\.(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?/.exec(source.slice(i)) as RegExpExecArray;
      const text = match[0];
      tokens.push({ kind: "field", path: text === "." ? [] : text.slice(1).split(".") });
      i += text.length;
    } else if (/[-0-9]/.test(c)) {
      const match = /^-?\d+(?:\.\d+)?/.exec(source.slice(i));
      if (!match) throw new TemplateError(`unexpected "${c}" in command`, true);
      tokens.push({ kind: "number", value: Number(match[0]) });
      i += match[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i)) as RegExpExecArray;
      tokens.push({ kind: "ident", name: match[0] });
      i += match[0].length;
    } else if (c === "$") {
      throw new TemplateError("template variables ($) are not supported", true);
    } else {
      throw new TemplateError(`unexpected "${c}" in command`, true);
    }
  }
  return tokens;
}

function parsePipeline(tokens: Token[], position: { i: number }, nested: boolean): Pipeline {
  const pipeline: Pipeline = [];
  let command: Command = [];
  while (position.i < tokens.length) {
    const token = tokens[position.i++] as Token;
    if (token.kind === "close") {
      if (!nested) throw new TemplateError("unexpected right paren", true);
      position.i--;
      break;
    }
    if (token.kind === "pipe") {
      if (command.length === 0) throw new TemplateError("missing command before |", true);
      pipeline.push(command);
      command = [];
      continue;
    }
    if (token.kind === "open") {
      const inner = parsePipeline(tokens, position, true);
      if (tokens[position.i]?.kind !== "close") throw new TemplateError("unclosed left paren", true);
      position.i++;
      command.push({ kind: "pipeline", pipeline: inner });
    } else if (token.kind === "field") {
      command.push({ kind: "field", path: token.path, text: token.path.length ? `.${token.path.join(".")}` : "." });
    } else if (token.kind === "string" || token.kind === "number") {
      command.push({ kind: "literal", value: token.value });
    } else if (token.name === "true" || token.name === "false") {
      command.push({ kind: "literal", value: token.name === "true" });
    } else if (token.name === "nil") {
      command.push({ kind: "literal", value: null });
    } else {
      if (!(token.name in FUNCTIONS)) throw new TemplateError(`function "${token.name}" not defined`, true);
      if (command.length > 0) {
        // A function name as an argument: Go calls it with no arguments.
        command.push({ kind: "pipeline", pipeline: [[{ kind: "call", name: token.name }]] });
      } else {
        command.push({ kind: "call", name: token.name });
      }
    }
  }
  if (command.length === 0) throw new TemplateError(pipeline.length ? "missing command after |" : "missing value for command", true);
  pipeline.push(command);
  return pipeline;
}

function parseAction(source: string): Pipeline {
  const tokens = tokenize(source);
  const position = { i: 0 };
  const pipeline = parsePipeline(tokens, position, false);
  if (position.i < tokens.length) throw new TemplateError("unexpected tokens after pipeline", true);
  return pipeline;
}

/** Splits a template into text and `{{…}}` actions, applying `{{-` / `-}}` trimming. */
function lex(template: string): ({ text: string } | { action: string })[] {
  const parts: ({ text: string } | { action: string })[] = [];
  let i = 0;
  let trimNext = false;
  while (i <= template.length) {
    const open = template.indexOf("{{", i);
    let text = template.slice(i, open === -1 ? undefined : open);
    if (trimNext) text = text.replace(/^\s+/, "");
    trimNext = false;
    if (open === -1) {
      if (text) parts.push({ text });
      break;
    }
    let start = open + 2;
    if (template.startsWith("- ", start) || template.startsWith("-\t", start) || template.startsWith("-\n", start)) {
      text = text.replace(/\s+$/, "");
      start += 1;
    }
    if (text) parts.push({ text });
    // Find the closing braces outside string literals.
    let j = start;
    let quote: string | undefined;
    for (; j < template.length; j++) {
      const c = template[j];
      if (quote) {
        if (c === "\\" && quote === '"') j++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === "`") {
        quote = c;
      } else if (template.startsWith("}}", j)) {
        break;
      }
    }
    if (j >= template.length) throw new TemplateError("unclosed action", true);
    let action = template.slice(start, j);
    if (/\s-$/.test(action)) {
      action = action.slice(0, -1);
      trimNext = true;
    }
    const trimmed = action.trim();
    // Comments: {{/* … */}}
    if (!(trimmed.startsWith("/*") && trimmed.endsWith("*/"))) parts.push({ action: trimmed });
    i = j + 2;
  }
  return parts;
}

type ListEnd = { end: "end" | "else" | "eof" } | { end: "else-chain"; word: "if" | "with"; rest: string };

function parse(template: string): Node[] {
  const parts = lex(template);
  let index = 0;

  const parseBlock = (word: "if" | "with" | "range", rest: string, source: string): Node => {
    if (!rest) throw new TemplateError(`missing value for ${word}`, true);
    const pipeline = parseAction(rest);
    const body = parseList(true);
    let otherwise: Node[] = [];
    if (body.end === "else") {
      const tail = parseList(true);
      if (tail.end !== "end") throw new TemplateError(`unexpected EOF in ${word}`, true);
      otherwise = tail.nodes;
    } else if (body.end === "else-chain") {
      // {{else if …}}: a nested block that ends at this block's {{end}}.
      otherwise = [parseBlock(body.word, body.rest, `${body.word} ${body.rest}`)];
    } else if (body.end !== "end") {
      throw new TemplateError(`unexpected EOF in ${word}`, true);
    }
    return { kind: word, pipeline, body: body.nodes, otherwise, source };
  };

  const parseList = (inBlock: boolean): { nodes: Node[] } & ListEnd => {
    const nodes: Node[] = [];
    while (index < parts.length) {
      const part = parts[index++] as { text: string } | { action: string };
      if ("text" in part) {
        nodes.push({ kind: "text", text: part.text });
        continue;
      }
      const keyword = /^([a-z]+)\b\s*([\s\S]*)$/.exec(part.action);
      const word = keyword?.[1];
      const rest = keyword?.[2] ?? "";
      if (word === "end" || word === "else") {
        if (!inBlock) throw new TemplateError(`unexpected {{${word}}}`, true);
        if (word === "end") return { nodes, end: "end" };
        if (!rest) return { nodes, end: "else" };
        const chained = /^(if|with)\b\s*([\s\S]*)$/.exec(rest);
        if (!chained) throw new TemplateError(`unexpected "${rest}" in else`, true);
        return { nodes, end: "else-chain", word: chained[1] as "if" | "with", rest: chained[2] ?? "" };
      }
      if (word === "if" || word === "with" || word === "range") {
        nodes.push(parseBlock(word, rest, part.action));
        continue;
      }
      nodes.push({ kind: "action", pipeline: parseAction(part.action), source: part.action });
    }
    return { nodes, end: "eof" };
  };
  return parseList(false).nodes;
}

/** How Go's fmt prints a value with `%v`. */
export function printValue(value: unknown): string {
  if (value === undefined) return "<no value>";
  if (value === null) return "<nil>";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (Array.isArray(value)) return `[${value.map(printValue).join(" ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, v]) => `${k}:${printValue(v)}`).join(" ")}]`;
  }
  return String(value);
}

function truthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === "") return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "object") return Object.keys(value as object).length > 0;
  return true;
}

function lengthOf(value: unknown): number {
  if (typeof value === "string") return Buffer.byteLength(value);
  if (Array.isArray(value)) return value.length;
  if (value && typeof value === "object") return Object.keys(value).length;
  throw new TemplateError(`error calling len: len of type ${typeof value}`, false);
}

function compare(name: string, a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
  throw new TemplateError(`error calling ${name}: incompatible types for comparison`, false);
}

function sprintf(format: string, args: unknown[]): string {
  let n = 0;
  return format.replace(/%([%vsdqtf])/g, (_, verb: string) => {
    if (verb === "%") return "%";
    const arg = args[n++];
    if (verb === "q") return JSON.stringify(printValue(arg));
    if (verb === "d") return typeof arg === "number" ? String(Math.trunc(arg)) : `%!d(${printValue(arg)})`;
    return printValue(arg);
  });
}

const FUNCTIONS: Record<string, (...args: unknown[]) => unknown> = {
  json: (value) => JSON.stringify(value === undefined ? null : value),
  upper: (value) => String(value).toUpperCase(),
  lower: (value) => String(value).toLowerCase(),
  title: (value) =>
    String(value).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_, before: string, letter: string) => before + letter.toUpperCase()),
  split: (value, separator) => String(value).split(String(separator)),
  join: (list, separator) => (Array.isArray(list) ? list.map(printValue).join(String(separator)) : printValue(list)),
  truncate: (value, length) => {
    const chars = [...String(value)];
    return chars.length > Number(length) ? chars.slice(0, Number(length)).join("") : String(value);
  },
  pad: (value, left, right) => `${" ".repeat(Number(left))}${String(value)}${" ".repeat(Number(right))}`,
  println: (...args) => `${args.map(printValue).join(" ")}\n`,
  print: (...args) => args.map(printValue).join(""),
  printf: (format, ...args) => sprintf(String(format), args),
  len: (value) => lengthOf(value),
  index: (value, ...keys) => {
    let current = value;
    for (const key of keys) {
      if (current === null || current === undefined) throw new TemplateError("error calling index: index of untyped nil", false);
      if (Array.isArray(current)) {
        if (typeof key !== "number" || key < 0 || key >= current.length)
          throw new TemplateError(`error calling index: index out of range: ${printValue(key)}`, false);
        current = current[key];
      } else if (typeof current === "object") {
        current = (current as Record<string, unknown>)[String(key)];
      } else {
        throw new TemplateError(`error calling index: can't index item of type ${typeof current}`, false);
      }
    }
    return current;
  },
  eq: (a, ...rest) => rest.some((b) => a === b),
  ne: (a, b) => a !== b,
  lt: (a, b) => compare("lt", a, b) < 0,
  le: (a, b) => compare("le", a, b) <= 0,
  gt: (a, b) => compare("gt", a, b) > 0,
  ge: (a, b) => compare("ge", a, b) >= 0,
  not: (value) => !truthy(value),
  and: (...args) => args.find((a) => !truthy(a)) ?? args.at(-1),
  or: (...args) => args.find((a) => truthy(a)) ?? args.at(-1),
};

/** A parsed template, ready to run against many values. */
export class Template {
  readonly #nodes: Node[];

  /** @param strict when set, a field missing on the top-level value is an error (docker's typed row contexts). */
  constructor(
    source: string,
    readonly strict = false,
  ) {
    this.#nodes = parse(source);
  }

  execute(data: unknown): string {
    let out = "";
    const root = data;
    const field = (dot: unknown, path: string[], text: string): unknown => {
      let current = dot;
      for (const [i, name] of path.entries()) {
        if (current === null || current === undefined) {
          if (i === 0 && current === undefined) return undefined;
          throw new TemplateError(`executing at <${text}>: nil pointer evaluating ${name}`, false);
        }
        if (typeof current !== "object" || Array.isArray(current)) {
          throw new TemplateError(
            `executing at <${text}>: can't evaluate field ${name} in type ${Array.isArray(current) ? "slice" : typeof current}`,
            false,
          );
        }
        if (!(name in current)) {
          if (this.strict && current === root) throw new TemplateError(`executing at <${text}>: can't evaluate field ${name}`, false);
          return undefined;
        }
        current = (current as Record<string, unknown>)[name];
      }
      return current;
    };
    const runPipeline = (pipeline: Pipeline, dot: unknown): unknown => {
      let previous: unknown;
      let first = true;
      for (const command of pipeline) {
        const [head, ...rest] = command as [Operand, ...Operand[]];
        const evaluate = (operand: Operand): unknown => {
          switch (operand.kind) {
            case "field":
              return field(dot, operand.path, operand.text);
            case "literal":
              return operand.value;
            case "pipeline":
              return runPipeline(operand.pipeline, dot);
            case "call":
              return (FUNCTIONS[operand.name] as (...args: unknown[]) => unknown)();
          }
        };
        if (head.kind === "call") {
          const args = rest.map(evaluate);
          if (!first) args.push(previous);
          previous = (FUNCTIONS[head.name] as (...args: unknown[]) => unknown)(...args);
        } else {
          if (rest.length > 0)
            throw new TemplateError(
              `can't give argument to non-function ${head.kind === "field" ? head.text : printValue(evaluate(head))}`,
              false,
            );
          if (!first) throw new TemplateError("can't give argument to non-function", false);
          previous = evaluate(head);
        }
        first = false;
      }
      return previous;
    };
    const run = (nodes: Node[], dot: unknown) => {
      for (const node of nodes) {
        switch (node.kind) {
          case "text":
            out += node.text;
            break;
          case "action":
            out += printValue(runPipeline(node.pipeline, dot));
            break;
          case "if": {
            run(truthy(runPipeline(node.pipeline, dot)) ? node.body : node.otherwise, dot);
            break;
          }
          case "with": {
            const value = runPipeline(node.pipeline, dot);
            if (truthy(value)) run(node.body, value);
            else run(node.otherwise, dot);
            break;
          }
          case "range": {
            const value = runPipeline(node.pipeline, dot);
            const items = Array.isArray(value)
              ? value
              : value && typeof value === "object"
                ? Object.keys(value)
                    .sort()
                    .map((k) => (value as Record<string, unknown>)[k])
                : typeof value === "number"
                  ? Array.from({ length: value }, (_, i) => i)
                  : value === undefined || value === null
                    ? []
                    : undefined;
            if (items === undefined) throw new TemplateError(`range can't iterate over ${printValue(value)}`, false);
            if (items.length === 0) run(node.otherwise, dot);
            for (const item of items) run(node.body, item);
            break;
          }
        }
      }
    };
    run(this.#nodes, data);
    return out;
  }
}

/** Parses and runs a template once. */
export function renderTemplate(source: string, data: unknown, strict = false): string {
  return new Template(source, strict).execute(data);
}
