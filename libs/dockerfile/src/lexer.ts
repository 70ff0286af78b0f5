// Variable expansion and word splitting, as the Dockerfile reference describes
// ("Environment replacement") and BuildKit's shell lexer implements: quotes,
// the escape token, $var, ${var} and the modifiers
//   ${v:-w} ${v-w} ${v:+w} ${v+w} ${v:?w} ${v?w}
//   ${v#p} ${v##p} ${v%p} ${v%%p} ${v/p/r} ${v//p/r}
// Only the builder expands (at build time, with the ENV/ARG values of the
// step); this module is pure.

import { ExpansionError } from "./errors.js";
import { isSpace } from "./text.js";

/** Variables visible to an expansion: a Map or a plain record. */
export type EnvLookup = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

export interface ExpandOptions {
  /** The Dockerfile's escape token (`# escape=` directive). Default `\`. */
  escapeToken?: "\\" | "`";
  /**
   * Accept the pattern modifiers `#`, `##`, `%`, `%%`, `/`, `//`. The reference
   * marks them as a newer syntax; BuildKit accepts them. Default true.
   */
  patternModifiers?: boolean;
}

export interface Expansion {
  value: string;
  /** Variables the word referenced that were set (what a cache key must include). */
  used: Set<string>;
  /** Variables the word referenced that were not set. */
  unset: Set<string>;
}

export interface WordsExpansion {
  words: string[];
  used: Set<string>;
  unset: Set<string>;
}

interface LexerOptions {
  escapeToken: string;
  rawQuotes: boolean;
  rawEscapes: boolean;
  skipProcessQuotes: boolean;
  skipUnsetEnv: boolean;
  patternModifiers: boolean;
}

class Fail extends Error {}

class Words {
  words: string[] = [];
  private buf = "";
  private inWord = false;

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.buf.length > 0) {
        this.words.push(this.buf);
        this.buf = "";
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }

  addRawChar(ch: string): void {
    this.buf += ch;
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  addRawString(s: string): void {
    this.buf += s;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.buf.length > 0) {
      this.words.push(this.buf);
      this.buf = "";
      this.inWord = false;
    }
    return this.words;
  }
}

function lookup(env: EnvLookup, name: string): string | undefined {
  if (env instanceof Map) return env.get(name);
  const record = env as Readonly<Record<string, string>>;
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

function isDigit(ch: string): boolean {
  return /^\p{Nd}$/u.test(ch);
}

function isLetter(ch: string): boolean {
  return /^\p{L}$/u.test(ch);
}

function isSpecialParam(ch: string): boolean {
  return "@*#?-$!0".includes(ch);
}

class ShellWord {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  readonly used = new Set<string>();
  readonly unset = new Set<string>();

  constructor(
    source: string,
    private readonly env: EnvLookup,
    private readonly opts: LexerOptions,
  ) {
    this.chars = Array.from(source);
    this.rawEscapes = opts.rawEscapes;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    const ch = this.chars[this.pos];
    if (ch !== undefined) this.pos++;
    return ch;
  }

  private getEnv(name: string): string | undefined {
    const value = lookup(this.env, name);
    if (value !== undefined) this.used.add(name);
    else this.unset.add(name);
    return value;
  }

  /** Reads up to `stop` (consumed) or the end of input when `stop` is undefined. */
  processStopOn(stop: string | undefined, rawEscapes: boolean): [string, string[]] {
    let result = "";
    const words = new Words();
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
        if (stop !== undefined && ch === stop) {
          this.next();
          return [result, words.finish()];
        }
        if (ch === "$") {
          const value = this.processDollar();
          result += value;
          words.addString(value);
        } else if (ch === "<") {
          const value = this.processPossibleHeredoc();
          result += value;
          words.addRawString(value);
        } else if (!this.opts.skipProcessQuotes && (ch === "'" || ch === '"')) {
          const value = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
          result += value;
          words.addRawString(value);
        } else {
          let c = this.next()!;
          if (c === this.opts.escapeToken) {
            if (this.rawEscapes) {
              words.addRawChar(c);
              result += c;
            }
            const escaped = this.next();
            if (escaped === undefined) break;
            c = escaped;
            words.addRawChar(c);
          } else {
            words.addChar(c);
          }
          result += c;
        }
      }
      if (stop !== undefined) throw new Fail(`unexpected end of statement while looking for matching ${stop}`);
      return [result, words.finish()];
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    // Everything up to the next single quote is literal; a single quote cannot be escaped.
    let result = "";
    const open = this.next()!;
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new Fail("unexpected end of statement while looking for matching single-quote");
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    // Literal except $ expansions; the escape token escapes only ", $ and itself.
    let result = "";
    const open = this.next()!;
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new Fail("unexpected end of statement while looking for matching double-quote");
      if (ch === '"') {
        this.next();
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      if (ch === "$") {
        result += this.processDollar();
        continue;
      }
      let c = this.next()!;
      if (c === this.opts.escapeToken) {
        if (this.rawEscapes) result += c;
        const after = this.peek();
        if (after === undefined) continue;
        if (after === '"' || after === "$" || after === this.opts.escapeToken) c = this.next()!;
      }
      result += c;
    }
  }

  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== "<") return "<";
    this.next();
    let space = "";
    for (let ch = this.peek(); ch === " " || ch === "\t" || ch === "\r"; ch = this.peek()) space += this.next();
    return `<<${space}`;
  }

  private processName(): string {
    let name = "";
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === "" && isDigit(ch)) {
        for (let d = this.peek(); d !== undefined && isDigit(d); d = this.peek()) name += this.next();
        return name;
      }
      if (name === "" && isSpecialParam(ch)) {
        this.next();
        return ch;
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== "_") break;
      name += this.next();
    }
    return name;
  }

  private processDollar(): string {
    this.next(); // $
    if (this.peek() !== "{") {
      const name = this.processName();
      if (name === "") return "$";
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnsetEnv) return `$${name}`;
      return value ?? "";
    }
    this.next(); // {
    const first = this.peek();
    if (first === undefined) throw new Fail("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") throw new Fail("syntax error: bad substitution");
    const name = this.processName();
    let ch = this.next();
    if (ch === undefined) throw new Fail("syntax error: missing '}'");
    let modifier = ch;

    if (ch === "}") {
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnsetEnv) return `\${${name}}`;
      return value ?? "";
    }

    let nullIsUnset = false;
    if (ch === ":") {
      nullIsUnset = true;
      ch = this.next();
      if (ch === undefined) throw new Fail("syntax error: missing '}'");
      modifier += ch;
    }

    if (nullIsUnset || ch === "+" || ch === "-" || ch === "?" || ch === "#" || ch === "%") {
      const patternModifier = ch === "#" || ch === "%";
      if (patternModifier && (nullIsUnset || !this.opts.patternModifiers)) {
        throw new Fail(`unsupported modifier (${modifier}) in substitution`);
      }
      const word = this.readUntilBrace(patternModifier);
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnsetEnv) return `\${${name}${modifier}${word}}`;
      switch (ch) {
        case "-":
          return value === undefined || (nullIsUnset && value === "") ? word : value;
        case "+":
          return value === undefined || (nullIsUnset && value === "") ? "" : word;
        case "?":
          if (value === undefined) throw new Fail(`${name}: ${word !== "" ? word : "is not allowed to be unset"}`);
          if (nullIsUnset && value === "") throw new Fail(`${name}: ${word !== "" ? word : "is not allowed to be empty"}`);
          return value;
        case "#":
        case "%": {
          // # and % remove the shortest match, ## and %% the longest.
          let pattern = word;
          const greedy = pattern.startsWith(ch);
          if (greedy) pattern = pattern.slice(1);
          return ch === "%" ? trimSuffix(pattern, value ?? "", greedy) : trimPrefix(pattern, value ?? "", greedy);
        }
        default:
          throw new Fail(`unsupported modifier (${modifier}) in substitution`);
      }
    }

    if (ch === "/") {
      if (!this.opts.patternModifiers) throw new Fail(`unsupported modifier (${modifier}) in substitution`);
      const replaceAll = this.peek() === "/";
      if (replaceAll) this.next();
      let pattern: string;
      try {
        [pattern] = this.processStopOn("/", true);
      } catch (err) {
        if (this.peek() === undefined) throw new Fail(`syntax error: missing '/' in \${}`);
        throw err;
      }
      const replacement = this.readUntilBrace(true);
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnsetEnv) return `\${${name}/${pattern}/${replacement}}`;
      const re = shellPatternToRegex(pattern, true, false);
      const subject = value ?? "";
      if (replaceAll) return subject.replace(new RegExp(re.source, "gu"), () => replacement);
      const m = re.exec(subject);
      return m ? subject.slice(0, m.index) + replacement + subject.slice(m.index + m[0].length) : subject;
    }

    throw new Fail(`unsupported modifier (${modifier}) in substitution`);
  }

  private readUntilBrace(rawEscapes: boolean): string {
    try {
      return this.processStopOn("}", rawEscapes)[0];
    } catch (err) {
      if (this.peek() === undefined) throw new Fail("syntax error: missing '}'");
      throw err;
    }
  }
}

const REGEX_SYNTAX = new Set(["^", "$", "\\", ".", "*", "+", "?", "(", ")", "[", "]", "{", "}", "|", "/"]);

function literal(ch: string): string {
  return REGEX_SYNTAX.has(ch) ? `\\${ch}` : ch;
}

/**
 * A shell pattern (`?` one character, `*` any run, `\*` `\?` `\\` literal) as a
 * regular expression; `*` is lazy unless `greedy`. Like Go's regexp, `.` does not
 * match a newline.
 */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? "^" : "";
  const star = greedy ? "[^\\n]*" : "[^\\n]*?";
  for (let i = 0; i < chars.length; i++) {
    const tok = chars[i]!;
    if (tok === "*") out += star;
    else if (tok === "?") out += "[^\\n]";
    else if (tok === "\\") {
      // `}` and `/` are escaped to end the ${...} syntax, not the pattern.
      const after = chars[i + 1];
      if (after === "}" || after === "/") continue;
      i++;
      if (after !== "*" && after !== "?" && after !== "\\") {
        throw new Fail(`invalid pattern (${pattern}) in substitution: invalid escape '\\${after ?? "\ufffd"}'`);
      }
      out += literal(after);
    } else out += literal(tok);
  }
  return new RegExp(out, "u");
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPatternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

// Reverses a pattern keeping escapes in front of what they escape: a\*c → c\*a.
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = new Array(chars.length);
  const last = chars.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = chars[i]!;
    const at = last - i;
    if (tok === "\\" && i !== last) {
      out[at - 1] = tok;
      out[at] = chars[i + 1]!;
      i += 2;
    } else {
      out[at] = tok;
      i++;
    }
  }
  return out.join("");
}

function reverse(s: string): string {
  return Array.from(s).reverse().join("");
}

// Regular expressions find leftmost matches, so the shortest/longest suffix is
// found by reversing both the pattern and the value.
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}

function lexerOptions(options: Partial<LexerOptions> & ExpandOptions): LexerOptions {
  return {
    escapeToken: options.escapeToken ?? "\\",
    rawQuotes: options.rawQuotes ?? false,
    rawEscapes: options.rawEscapes ?? false,
    skipProcessQuotes: options.skipProcessQuotes ?? false,
    skipUnsetEnv: options.skipUnsetEnv ?? false,
    patternModifiers: options.patternModifiers ?? true,
  };
}

function run(
  source: string,
  env: EnvLookup,
  options: LexerOptions,
): { value: string; words: string[]; used: Set<string>; unset: Set<string> } {
  const sw = new ShellWord(source, env, options);
  try {
    const [value, words] = sw.processStopOn(undefined, options.rawEscapes);
    return { value, words, used: sw.used, unset: sw.unset };
  } catch (err) {
    if (err instanceof Fail) throw new ExpansionError(source, err.message);
    throw err;
  }
}

/**
 * Expands one word the way the builder does for ENV, LABEL, COPY, WORKDIR…:
 * quotes are removed, the escape token escapes the next character, `$var` and
 * `${var…}` are replaced. Whitespace is kept (no word splitting).
 *
 * Throws {@link ExpansionError} on bad syntax or a failing `${var?message}`.
 */
export function expand(word: string, env: EnvLookup, options: ExpandOptions = {}): Expansion {
  const { value, used, unset } = run(word, env, lexerOptions(options));
  return { value, used, unset };
}

/**
 * Expands and splits into words (as for EXPOSE): unquoted whitespace, including
 * whitespace produced by an unquoted expansion, separates words.
 */
export function expandWords(text: string, env: EnvLookup, options: ExpandOptions = {}): WordsExpansion {
  const { words, used, unset } = run(text, env, lexerOptions(options));
  return { words, used, unset };
}

/**
 * Expands the body of a here-document whose delimiter was not quoted (COPY/ADD
 * `<<EOF`): quotes are literal, `\` escapes the next character, variables expand.
 * This matches BuildKit, which always uses `\` here whatever the escape directive.
 */
export function expandHeredoc(content: string, env: EnvLookup): Expansion {
  const { value, used, unset } = run(content, env, lexerOptions({ skipProcessQuotes: true }));
  return { value, used, unset };
}

/** @internal Word splitting with quotes and escapes kept verbatim and unset variables left as written. */
export function rawWords(line: string): string[] {
  try {
    return run(line, new Map(), lexerOptions({ rawQuotes: true, rawEscapes: true, skipUnsetEnv: true })).words;
  } catch {
    return [];
  }
}

/** @internal Words of `text` with quotes removed (`quoted` false) or kept (`quoted` true), unset variables kept. */
export function heredocWords(text: string, quoted: boolean): string[] {
  return run(text, new Map(), lexerOptions({ rawQuotes: quoted, skipUnsetEnv: true })).words;
}
