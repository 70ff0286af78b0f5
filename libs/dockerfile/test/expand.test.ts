// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally.
// Variable expansion and word splitting: quotes, escapes, every modifier, and
// which variables a word used.

import { describe, expect, it } from "vitest";
import { ExpansionError, expand, expandHeredoc, expandWords } from "../src/index.js";
import { thrown } from "./helpers.js";

const env = new Map([
  ["HOME", "/root"],
  ["USER", "ann"],
  ["EMPTY", ""],
  ["SPACED", "  a  b  "],
  ["PATHS", "/usr/local/bin:/usr/bin:/bin"],
  ["FILE", "archive.tar.gz"],
  ["名前", "unicode"],
  ["_x1", "underscore"],
  ["1", "positional"],
]);

describe("expand", () => {
  const cases: [string, string][] = [
    // plain text, quotes and escapes
    ["hello", "hello"],
    ["he'll'o", "hello"],
    ['"a  b"', "a  b"],
    ["'a  b'", "a  b"],
    ["a\\ b", "a b"],
    ['a\\"b', 'a"b'],
    ["a\\'b", "a'b"],
    ["a\\\\b", "a\\b"],
    ["abc\\tdef", "abctdef"],
    ['"abc\\tdef"', "abc\\tdef"],
    ['"abc\\\\tdef"', "abc\\tdef"],
    ["'abc\\tdef'", "abc\\tdef"],
    ['"it\'s"', "it's"],
    ["'say \"hi\"'", 'say "hi"'],
    ['""', ""],
    ["''", ""],
    ["trailing\\", "trailing"],
    // variables
    ["$HOME", "/root"],
    ["${HOME}", "/root"],
    ["$HOME/bin", "/root/bin"],
    ["${HOME}_x", "/root_x"],
    ["$HOME_x", ""],
    ["$USER@host", "ann@host"],
    ["$名前", "unicode"],
    ["$_x1", "underscore"],
    ["$1x", "positionalx"],
    ["$UNSET", ""],
    ["a$", "a$"],
    ["$.", "$."],
    ["$ x", "$ x"],
    ["price: 5$", "price: 5$"],
    ["$@ $* $# $? $- $$ $! $0", "       "],
    ['"$HOME"', "/root"],
    ['"${HOME}/x"', "/root/x"],
    ["'$HOME'", "$HOME"],
    ["\\$HOME", "$HOME"],
    ["\\${HOME}", "${HOME}"],
    ['"\\$HOME"', "$HOME"],
    ['"\\\\$HOME"', "\\/root"],
    ["\\\\$HOME", "\\/root"],
    ["$SPACED", "  a  b  "],
    // ${var:-word} ${var-word}
    ["${UNSET:-default}", "default"],
    ["${EMPTY:-default}", "default"],
    ["${USER:-default}", "ann"],
    ["${UNSET-default}", "default"],
    ["${EMPTY-default}", ""],
    ["${UNSET:-}", ""],
    ["${UNSET:-two words}", "two words"],
    ["${UNSET:-'quoted $HOME'}", "quoted $HOME"],
    ['${UNSET:-"$HOME"}', "/root"],
    ["${UNSET:-${ALSO_UNSET:-$USER}}", "ann"],
    ["${UNSET:-a\\}b}", "a}b"],
    // ${var:+word} ${var+word}
    ["${USER:+set}", "set"],
    ["${EMPTY:+set}", ""],
    ["${UNSET:+set}", ""],
    ["${EMPTY+set}", "set"],
    ["${UNSET+set}", ""],
    ["${USER:+$HOME}", "/root"],
    // ${var:?word} ${var?word} when set
    ["${USER:?must be set}", "ann"],
    ["${USER?must be set}", "ann"],
    ["${EMPTY?may be empty}", ""],
    // # ## % %%
    ["${FILE#*.}", "tar.gz"],
    ["${FILE##*.}", "gz"],
    ["${FILE%.*}", "archive.tar"],
    ["${FILE%%.*}", "archive"],
    ["${FILE#nomatch}", "archive.tar.gz"],
    ["${FILE%nomatch}", "archive.tar.gz"],
    ["${FILE#archive}", ".tar.gz"],
    ["${FILE%.gz}", "archive.tar"],
    ["${FILE#?}", "rchive.tar.gz"],
    ["${FILE%?}", "archive.tar.g"],
    ["${FILE#*}", "archive.tar.gz"],
    ["${FILE##*}", ""],
    ["${PATHS%%:*}", "/usr/local/bin"],
    ["${PATHS##*:}", "/bin"],
    ["${PATHS#*:}", "/usr/bin:/bin"],
    ["${PATHS%:*}", "/usr/local/bin:/usr/bin"],
    ["${UNSET#x}", ""],
    ["${FILE#$UNSET}", "archive.tar.gz"],
    ["${FILE%.${UNSET:-gz}}", "archive.tar"],
    ["${FILE#a(r)}", "archive.tar.gz"],
    // / //
    ["${FILE/.tar/}", "archive.gz"],
    ["${FILE/a/A}", "Archive.tar.gz"],
    ["${FILE//a/A}", "Archive.tAr.gz"],
    ["${FILE/*./X}", "Xgz"],
    ["${FILE/a?c/X}", "Xhive.tar.gz"],
    ["${FILE/nomatch/X}", "archive.tar.gz"],
    ["${PATHS//:/ }", "/usr/local/bin /usr/bin /bin"],
    ["${PATHS//\\//|}", "|usr|local|bin:|usr|bin:|bin"],
    ["${UNSET/a/b}", ""],
    ["${USER/n/$HOME}", "a/rootn"],
  ];

  for (const [word, expected] of cases) {
    it(`${word} → ${JSON.stringify(expected)}`, () => {
      expect(expand(word, env).value).toBe(expected);
    });
  }

  it("accepts a plain record", () => {
    expect(expand("$A-${B:-b}", { A: "a" }).value).toBe("a-b");
    expect(expand("$toString $constructor", {}).value).toBe(" ");
  });

  it("reports used and unset variables", () => {
    const r = expand("$HOME ${UNSET:-$USER} ${EMPTY:+x} '$QUOTED' \\$ESCAPED", env);
    expect([...r.used].sort()).toEqual(["EMPTY", "HOME", "USER"]);
    expect([...r.unset]).toEqual(["UNSET"]);
  });

  it("reports a variable as used even when a modifier discards its value", () => {
    const r = expand("${USER:+fixed}", env);
    expect(r.value).toBe("fixed");
    expect([...r.used]).toEqual(["USER"]);
  });

  it("honours the backtick escape token", () => {
    expect(expand("c:\\path `$HOME", env, { escapeToken: "`" }).value).toBe("c:\\path $HOME");
    expect(expand('"say `"hi`""', env, { escapeToken: "`" }).value).toBe('say "hi"');
    expect(expand("a` b", env, { escapeToken: "`" }).value).toBe("a b");
  });

  it("can refuse the pattern modifiers", () => {
    const err = thrown(() => expand("${FILE%.gz}", env, { patternModifiers: false }));
    expect(err.message).toBe('failed to process "${FILE%.gz}": unsupported modifier (%) in substitution');
    expect(expand("${FILE:-x}", env, { patternModifiers: false }).value).toBe("archive.tar.gz");
  });

  const errors: [string, string][] = [
    ["'unterminated", "unexpected end of statement while looking for matching single-quote"],
    ['"unterminated', "unexpected end of statement while looking for matching double-quote"],
    ['"escaped\\"', "unexpected end of statement while looking for matching double-quote"],
    ["${}", "syntax error: bad substitution"],
    ["${:x}", "syntax error: bad substitution"],
    ["${{x}}", "syntax error: bad substitution"],
    ["${", "syntax error: missing '}'"],
    ["${HOME", "syntax error: missing '}'"],
    ["${HOME:-x", "syntax error: missing '}'"],
    ["${HOME/a", "syntax error: missing '/' in ${}"],
    ["${HOME/a/b", "syntax error: missing '}'"],
    ["${HOME:1:2}", "unsupported modifier (:1) in substitution"],
    ["${HOME:#x}", "unsupported modifier (:#) in substitution"],
    ["${HOME.x}", "unsupported modifier (.) in substitution"],
    ["${#HOME}", "unsupported modifier (H) in substitution"],
    ["${UNSET?}", "UNSET: is not allowed to be unset"],
    ["${UNSET:?}", "UNSET: is not allowed to be unset"],
    ["${EMPTY:?}", "EMPTY: is not allowed to be empty"],
    ["${UNSET?set UNSET first, $USER}", "UNSET: set UNSET first, ann"],
    ["${EMPTY:?custom}", "EMPTY: custom"],
    ["${FILE#\\x}", "invalid pattern (\\x) in substitution: invalid escape '\\x'"],
  ];
  for (const [word, message] of errors) {
    it(`fails on ${word}`, () => {
      const err = thrown(() => expand(word, env));
      expect(err).toBeInstanceOf(ExpansionError);
      expect((err as ExpansionError).detail).toBe(message);
      expect(err.message).toBe(`failed to process ${JSON.stringify(word)}: ${message}`);
    });
  }
});

describe("expandWords", () => {
  const words = (text: string, vars: Record<string, string> = {}) => expandWords(text, vars).words;

  it("splits on unquoted whitespace", () => {
    expect(words("a b\tc")).toEqual(["a", "b", "c"]);
    expect(words("  a   b  ")).toEqual(["a", "b"]);
    expect(words('"a b" c')).toEqual(["a b", "c"]);
    expect(words("'a b' c")).toEqual(["a b", "c"]);
    expect(words("a\\ b c")).toEqual(["a b", "c"]);
    expect(words('x" y "z')).toEqual(["x y z"]);
    expect(words("")).toEqual([]);
  });

  it("splits unquoted expansions but not quoted ones", () => {
    const vars = { PORTS: "80 443/tcp", LEAD: "  a b  " };
    expect(words("$PORTS 8080/udp", vars)).toEqual(["80", "443/tcp", "8080/udp"]);
    expect(words('"$PORTS"', vars)).toEqual(["80 443/tcp"]);
    expect(words("x${LEAD}y", vars)).toEqual(["x", "a", "b", "y"]);
    expect(words('x"${LEAD}"y', vars)).toEqual(["x  a b  y"]);
  });

  it("reports used variables", () => {
    expect([...expandWords("$A ${B:-x}", { A: "1" }).used]).toEqual(["A"]);
  });
});

describe("expandHeredoc", () => {
  it("expands variables and keeps quotes literal", () => {
    expect(expandHeredoc("echo \"hello ${FOO}\" '$FOO'\n", { FOO: "bar" }).value).toBe("echo \"hello bar\" 'bar'\n");
  });

  it("uses backslash to escape, as BuildKit does for COPY heredocs", () => {
    expect(expandHeredoc("\\\n", {}).value).toBe("\n");
    expect(expandHeredoc("\\\\\n", {}).value).toBe("\\\n");
    expect(expandHeredoc("\\$\n", {}).value).toBe("$\n");
    expect(expandHeredoc("cost \\$5, home $HOME\n", { HOME: "/h" }).value).toBe("cost $5, home /h\n");
  });

  it("reports used variables", () => {
    const r = expandHeredoc("$A $B\n", { A: "1" });
    expect([...r.used]).toEqual(["A"]);
    expect([...r.unset]).toEqual(["B"]);
  });
});
