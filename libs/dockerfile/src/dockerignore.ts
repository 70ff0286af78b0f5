// .dockerignore with Docker's semantics (moby/patternmatcher and its
// ignorefile reader, as Docker and BuildKit use them):
// - one pattern per line; a line starting with `#` is a comment (only at
//   column 1); surrounding whitespace is trimmed; blank lines are skipped;
// - patterns are cleaned like Go's filepath.Clean, a leading `/` is dropped
//   (`/foo`, `./foo` and `foo` are the same pattern);
// - `*` matches within a path element, `?` one character, `[a-z]` a class,
//   `\` escapes, `**` any number of directories (also none);
// - a path is excluded when it or one of its parent directories matches; a
//   `!` pattern re-includes what it matches; patterns apply in order and the
//   last one that matches wins.

import { trimSpace } from "./text.js";

export type IgnorePattern = {
  /** The cleaned pattern without its `!`. */
  pattern: string;
  /** A `!` exception: re-includes what it matches. */
  exclusion: boolean;
};

/** A compiled .dockerignore: call it with a context-relative path to learn whether it is excluded. */
export type DockerignoreMatcher = ((path: string) => boolean) & {
  readonly patterns: readonly IgnorePattern[];
  /** Any `!` pattern present. */
  readonly hasExceptions: boolean;
  /**
   * For an excluded directory: could an exception re-include something inside
   * it? When false a context walker can skip the directory; when true it must
   * descend, check each entry, and still send the directory (it is a parent of
   * what gets included). Same decision as BuildKit's context walker (fsutil).
   */
  mayHaveExceptions(dir: string): boolean;
};

/** Go's path.Clean. */
export function cleanPath(path: string): string {
  if (path === "") return ".";
  const rooted = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return `/${joined}`;
  return joined === "" ? "." : joined;
}

/**
 * Reads a .dockerignore into the pattern list Docker sends with a build
 * (moby/patternmatcher/ignorefile.ReadAll): comments and blank lines dropped,
 * patterns cleaned, `!` kept in front of exceptions.
 */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  lines.forEach((raw, index) => {
    let line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (index === 0 && line.startsWith("\ufeff")) line = line.slice(1);
    if (line.startsWith("#")) return;
    let pattern = trimSpace(line);
    if (pattern === "") return;
    const invert = pattern.startsWith("!");
    if (invert) pattern = trimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith("/")) pattern = pattern.slice(1);
    }
    patterns.push(invert ? `!${pattern}` : pattern);
  });
  return patterns;
}

const BAD_PATTERN = "syntax error in pattern";

/** Reads a `[...]` class at `i` (just past `[`) the way Go's filepath.Match does; returns a JS class and the index after `]`. */
function readClass(chars: string[], start: number): { source: string; end: number } {
  let i = start;
  let negated = false;
  if (chars[i] === "^") {
    negated = true;
    i++;
  }
  const esc = (): string => {
    const ch = chars[i];
    if (ch === undefined || ch === "-" || ch === "]") throw new Error(BAD_PATTERN);
    i++;
    if (ch === "\\") {
      const escaped = chars[i];
      if (escaped === undefined) throw new Error(BAD_PATTERN);
      i++;
      if (i >= chars.length) throw new Error(BAD_PATTERN);
      return escaped;
    }
    if (i >= chars.length) throw new Error(BAD_PATTERN);
    return ch;
  };
  const hex = (ch: string) => `\\u{${ch.codePointAt(0)!.toString(16)}}`;
  let body = "";
  let ranges = 0;
  for (;;) {
    if (chars[i] === "]" && ranges > 0) {
      i++;
      break;
    }
    const lo = esc();
    let hi = lo;
    if (chars[i] === "-") {
      i++;
      hi = esc();
    }
    body += lo === hi ? hex(lo) : `${hex(lo)}-${hex(hi)}`;
    ranges++;
  }
  return { source: `[${negated ? "^" : ""}${body}]`, end: i };
}

/** Go's filepath.Match syntax check (ErrBadPattern): classes must be well formed, `\` needs a following character. */
function validate(pattern: string): void {
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === "\\") {
      if (i + 1 >= chars.length) throw new Error(BAD_PATTERN);
      i++;
    } else if (ch === "[") {
      const { end } = readClass(chars, i + 1);
      i = end - 1;
    }
  }
}

const REGEX_SYNTAX = new Set(["^", "$", "\\", ".", "*", "+", "?", "(", ")", "[", "]", "{", "}", "|", "/"]);

function literal(ch: string): string {
  return REGEX_SYNTAX.has(ch) ? `\\${ch}` : ch;
}

type Compiled = IgnorePattern & { match(path: string): boolean };

/** moby/patternmatcher's Pattern.compile: exact, prefix (`dir/**`), suffix (`**\/name`) or regular-expression matching. */
function compile(pattern: string, exclusion: boolean): Compiled {
  const chars = Array.from(pattern);
  let type: "exact" | "prefix" | "suffix" | "regexp" = "exact";
  let re = "^";
  for (let i = 0, token = 0; i < chars.length; i++, token++) {
    const ch = chars[i]!;
    if (ch === "*") {
      if (chars[i + 1] === "*") {
        i++;
        if (chars[i + 1] === "/") i++;
        if (i + 1 >= chars.length) {
          // Trailing `**` matches everything below, as in .gitignore.
          if (type === "exact") type = "prefix";
          else {
            re += "[^\\n]*";
            type = "regexp";
          }
        } else {
          re += "(?:[^\\n]*/)?";
          type = "regexp";
        }
        if (token === 0) type = "suffix";
      } else {
        re += "[^/]*";
        type = "regexp";
      }
    } else if (ch === "?") {
      re += "[^/]";
      type = "regexp";
    } else if (ch === "\\") {
      const next = chars[i + 1];
      if (next !== undefined) {
        re += literal(next);
        i++;
        type = "regexp";
      } else re += "\\\\";
    } else if (ch === "[") {
      const { source, end } = readClass(chars, i + 1);
      re += source;
      i = end - 1;
      type = "regexp";
    } else if (ch === "]") {
      re += "\\]";
      type = "regexp";
    } else {
      re += literal(ch);
    }
  }
  let match: (path: string) => boolean;
  switch (type) {
    case "exact":
      match = (path) => path === pattern;
      break;
    case "prefix": {
      const prefix = pattern.slice(0, -2);
      match = (path) => path.startsWith(prefix);
      break;
    }
    case "suffix": {
      const suffix = pattern.slice(2);
      match = (path) => path.endsWith(suffix) || (suffix.startsWith("/") && path === suffix.slice(1));
      break;
    }
    case "regexp": {
      const regex = new RegExp(`${re}$`, "u");
      match = (path) => regex.test(path);
      break;
    }
  }
  return { pattern, exclusion, match };
}

function withoutTrailingGlob(pattern: string): string {
  let p = pattern;
  if (p.endsWith("/**")) p = p.slice(0, -3);
  if (p.endsWith("/*")) p = p.slice(0, -2);
  return p;
}

function normalizePath(path: string): string {
  let p = cleanPath(path);
  while (p.startsWith("/")) p = p.slice(1);
  return p === "" ? "." : p;
}

/**
 * Compiles patterns (as {@link parseDockerignore} returns them). Throws on an
 * invalid pattern ("syntax error in pattern") or a lone `!`.
 */
export function createMatcher(patterns: readonly string[]): DockerignoreMatcher {
  const compiled: Compiled[] = [];
  for (const raw of patterns) {
    let p = trimSpace(raw);
    if (p === "") continue;
    p = cleanPath(p);
    let exclusion = false;
    if (p.startsWith("!")) {
      if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
      exclusion = true;
      p = p.slice(1);
    }
    validate(p);
    compiled.push(compile(p, exclusion));
  }
  const hasExceptions = compiled.some((p) => p.exclusion);
  const exceptionsArePrefixes = compiled.every((p) => !p.exclusion || !/[*[\]?^\\]/.test(withoutTrailingGlob(p.pattern)));

  const matcher = (path: string): boolean => {
    const file = normalizePath(path);
    if (file === ".") return false;
    const slash = file.lastIndexOf("/");
    const parents = slash < 0 ? [] : file.slice(0, slash).split("/");
    let matched = false;
    for (const pattern of compiled) {
      if (pattern.exclusion !== matched) continue;
      let match = pattern.match(file);
      for (let i = 0; !match && i < parents.length; i++) match = pattern.match(parents.slice(0, i + 1).join("/"));
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  };

  const mayHaveExceptions = (dir: string): boolean => {
    if (!hasExceptions) return false;
    if (!exceptionsArePrefixes) return true;
    const dirSlash = `${normalizePath(dir)}/`;
    return compiled.some((p) => p.exclusion && `${withoutTrailingGlob(p.pattern)}/`.startsWith(dirSlash));
  };

  return Object.assign(matcher, {
    patterns: compiled.map(({ pattern, exclusion }) => ({ pattern, exclusion })),
    hasExceptions,
    mayHaveExceptions,
  });
}

/**
 * The ignore files that apply to a Dockerfile, in priority order: the
 * Dockerfile-specific `<path>.dockerignore` next to it, then `.dockerignore`
 * at the context root. The first that exists is used.
 */
export function dockerignoreFor(dockerfilePath = "Dockerfile"): string[] {
  if (dockerfilePath === "" || dockerfilePath === "-") return [".dockerignore"];
  return [`${dockerfilePath}.dockerignore`, ".dockerignore"];
}

/**
 * What the Docker CLI does before sending a context to the classic builder:
 * the ignore file and the Dockerfile are always sent, so exceptions are added
 * when the patterns would exclude them. `dockerfile` is context-relative.
 */
export function keepBuildFiles(patterns: readonly string[], dockerfile: string, ignoreFile = ".dockerignore"): string[] {
  const out = [...patterns];
  if (createMatcher(out)(ignoreFile)) out.push(`!${ignoreFile}`);
  const file = normalizePath(dockerfile.replaceAll("\\", "/"));
  if (createMatcher(out)(file)) out.push(`!${file}`);
  return out;
}
