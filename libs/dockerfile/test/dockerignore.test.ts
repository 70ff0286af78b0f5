// .dockerignore: reading the file, matching with Docker's rules, exceptions,
// directory pruning, and which ignore file applies to a Dockerfile.

import { describe, expect, it } from "vitest";
import { cleanPath, createMatcher, dockerignoreFor, keepBuildFiles, parseDockerignore } from "../src/index.js";
import { thrown } from "./helpers.js";

describe("parseDockerignore", () => {
  it("drops comments and blank lines and cleans patterns", () => {
    const text = [
      "# comment",
      "",
      "   ",
      "  node_modules  ",
      "/build/",
      "./dist",
      "a//b/./c/",
      "x/../y",
      "!  keep.txt",
      "!/also/kept/",
      " # not a comment",
      "/",
      ".",
      "../outside",
      "**/",
    ].join("\n");
    expect(parseDockerignore(text)).toEqual([
      "node_modules",
      "build",
      "dist",
      "a/b/c",
      "y",
      "!keep.txt",
      "!also/kept",
      "# not a comment",
      "/",
      ".",
      "../outside",
      "**",
    ]);
  });

  it("handles CRLF, a BOM and a missing final newline", () => {
    expect(parseDockerignore("\ufeff*.log\r\n!important.log\r\ntmp")).toEqual(["*.log", "!important.log", "tmp"]);
  });

  it("keeps a lone ! for the matcher to refuse", () => {
    expect(parseDockerignore("!\n! \n")).toEqual(["!", "!"]);
    expect(thrown(() => createMatcher(["!"])).message).toBe('illegal exclusion pattern: "!"');
  });
});

describe("matching", () => {
  // [patterns, path, excluded]
  const table: [string[], string, boolean][] = [
    // Docker's documentation examples
    [["*/temp*"], "somedir/temporary.txt", true],
    [["*/temp*"], "somedir/temp", true],
    [["*/temp*"], "somedir/temp/inside", true],
    [["*/temp*"], "temporary.txt", false],
    [["*/temp*"], "a/b/temp", false],
    [["*/*/temp*"], "somedir/subdir/temporary.txt", true],
    [["*/*/temp*"], "somedir/temporary.txt", false],
    [["temp?"], "tempa", true],
    [["temp?"], "tempb", true],
    [["temp?"], "temp", false],
    [["temp?"], "tempab", false],
    [["temp?"], "dir/tempa", false],
    [["**/*.go"], "main.go", true],
    [["**/*.go"], "cmd/app/main.go", true],
    [["**/*.go"], "main.go.txt", false],
    [["*.md", "!README.md"], "README.md", false],
    [["*.md", "!README.md"], "CHANGELOG.md", true],
    [["*.md", "!README*.md", "README-secret.md"], "README-secret.md", true],
    [["*.md", "!README*.md", "README-secret.md"], "README-public.md", false],
    [["*.md", "!README*.md", "README-secret.md"], "other.md", true],
    [["*.md", "README-secret.md", "!README*.md"], "README-secret.md", false],
    [["*.md", "README-secret.md", "!README*.md"], "README.md", false],
    [["foo/bar"], "foo/bar", true],
    [["/foo/bar"].map((p) => parseDockerignore(p)[0]!), "foo/bar", true],
    [["foo/bar"], "foo/bar/baz", true],
    [["foo/bar"], "foo/barn", false],
    [["foo/bar"], "x/foo/bar", false],
    // exact names exclude whole directories
    [["node_modules"], "node_modules", true],
    [["node_modules"], "node_modules/pkg/index.js", true],
    [["node_modules"], "app/node_modules", false],
    [["**/node_modules"], "app/node_modules/x", true],
    [["**/node_modules"], "node_modules", true],
    [["**/node_modules"], "my_node_modules", false],
    // ** forms
    [["**"], "anything/at/all", true],
    [["**"], "x", true],
    [["foo/**"], "foo/a", true],
    [["foo/**"], "foo/a/b", true],
    [["foo/**"], "foo", false],
    [["foo/**"], "foobar/a", false],
    [["foo**"], "foobar", true],
    [["foo/**/bar"], "foo/bar", true],
    [["foo/**/bar"], "foo/a/bar", true],
    [["foo/**/bar"], "foo/a/b/bar", true],
    [["foo/**/bar"], "foo/a/b/bar/c", true],
    [["foo/**/bar"], "foo/barx", false],
    [["**/foo/**"], "a/foo/b", true],
    [["**/foo/**"], "foo/b", true],
    [["a/**/*.txt"], "a/x.txt", true],
    [["a/**/*.txt"], "a/b/c/x.txt", true],
    [["a/**/*.txt"], "b/x.txt", false],
    [["**/*"], "a", true],
    // * and ? stay within a path element
    [["*"], "a", true],
    [["*"], "a/b", true],
    [["*.txt"], "a.txt", true],
    [["*.txt"], "dir/a.txt", false],
    [["*/*.txt"], "dir/a.txt", true],
    [["a?c"], "abc", true],
    [["a?c"], "a/c", false],
    [["a*c"], "a/c", false],
    [["a*c"], "abbbc", true],
    // classes and escapes
    [["[a-c].txt"], "b.txt", true],
    [["[a-c].txt"], "d.txt", false],
    [["[^a-c].txt"], "d.txt", true],
    [["[^a-c].txt"], "a.txt", false],
    [["[!a].txt"], "!.txt", true],
    [["[\\]]x"], "]x", true],
    [["\\*.txt"], "*.txt", true],
    [["\\*.txt"], "a.txt", false],
    [["a\\?"], "a?", true],
    [["a\\?"], "ab", false],
    // characters that are special in regular expressions but not in patterns
    [["a.b"], "a.b", true],
    [["a.b"], "axb", false],
    [["a+b(c)|{d}$"], "a+b(c)|{d}$", true],
    [["*.c++"], "main.c++", true],
    [["*.c++"], "main.cxx", false],
    [["a^b*"], "a^bc", true],
    [["é*"], "été", true],
    [["日本/*"], "日本/語", true],
    // leading ./ and / in paths given to the matcher
    [["foo"], "./foo", true],
    [["foo"], "/foo/x", true],
    [["foo"], "foo/", true],
    // the context root itself is never excluded
    [["*"], ".", false],
    [["**"], "", false],
    // patterns that can never match a context path
    [["/"], "anything", false],
    [["."], "anything", false],
    [["../outside"], "outside", false],
    // exceptions: last match wins, parents count
    [["dir", "!dir/keep"], "dir/keep", false],
    [["dir", "!dir/keep"], "dir/keep/deep/file", false],
    [["dir", "!dir/keep"], "dir/other", true],
    [["dir", "!dir/keep"], "dir", true],
    [["!dir/keep", "dir"], "dir/keep", true],
    [["dir", "!dir/keep", "dir/keep/secret"], "dir/keep/secret", true],
    [["dir", "!dir/keep", "dir/keep/secret"], "dir/keep/public", false],
    [["*", "!src", "src/*.test.ts"], "src/a.test.ts", true],
    [["*", "!src", "src/*.test.ts"], "src/a.ts", false],
    [["*", "!src", "src/*.test.ts"], "README.md", true],
    [["**/*.log", "!**/keep.log"], "a/b/keep.log", false],
    [["**/*.log", "!**/keep.log"], "a/b/other.log", true],
    [["!not-excluded"], "not-excluded", false],
    [[], "anything", false],
    [["", "   "], "anything", false],
  ];

  for (const [patterns, path, excluded] of table) {
    it(`${JSON.stringify(patterns)} ${excluded ? "excludes" : "keeps"} ${JSON.stringify(path)}`, () => {
      expect(createMatcher(patterns)(path)).toBe(excluded);
    });
  }

  it("cleans patterns given directly", () => {
    const m = createMatcher(["  ./a//b/  ", "!a/b/../b/c"]);
    expect(m.patterns).toEqual([
      { pattern: "a/b", exclusion: false },
      { pattern: "a/b/c", exclusion: true },
    ]);
    expect(m("a/b/x")).toBe(true);
    expect(m("a/b/c")).toBe(false);
  });

  it("refuses malformed patterns like filepath.Match", () => {
    for (const bad of ["[", "a[", "[]", "[]a]", "[a-]", "[-a]", "[^]", "a\\", "[a\\", "**/[z"]) {
      expect(thrown(() => createMatcher([bad])).message, bad).toBe("syntax error in pattern");
    }
    expect(createMatcher(["[a-z]*", "\\[x\\]", "[\\-]", "x]"]).patterns).toHaveLength(4);
  });
});

describe("mayHaveExceptions", () => {
  it("is false without exceptions", () => {
    const m = createMatcher(["node_modules", "*.log"]);
    expect(m.hasExceptions).toBe(false);
    expect(m.mayHaveExceptions("node_modules")).toBe(false);
  });

  it("is true for a directory an exception points into", () => {
    const m = createMatcher(["vendor", "!vendor/keep/file", "!docs/**"]);
    expect(m.hasExceptions).toBe(true);
    expect(m.mayHaveExceptions("vendor")).toBe(true);
    expect(m.mayHaveExceptions("vendor/keep")).toBe(true);
    expect(m.mayHaveExceptions("vendor/other")).toBe(false);
    expect(m.mayHaveExceptions("vend")).toBe(false);
    expect(m.mayHaveExceptions("docs")).toBe(true);
    expect(m.mayHaveExceptions("./vendor/")).toBe(true);
  });

  it("is always true when an exception uses wildcards", () => {
    const m = createMatcher(["build", "!**/*.keep"]);
    expect(m.mayHaveExceptions("build")).toBe(true);
    expect(m.mayHaveExceptions("anything")).toBe(true);
    expect(m("build/x.keep")).toBe(false);
    expect(m("build/x.o")).toBe(true);
  });

  it("supports a context walk that prunes and re-includes", () => {
    const tree = ["app/main.go", "vendor/a/a.go", "vendor/keep/k.go", "vendor/keep/sub/s.go", "tmp/x", "tmp/y/z", ".git/HEAD"];
    const m = createMatcher(parseDockerignore("vendor\n!vendor/keep\ntmp\n.git\n"));
    const sent = new Set<string>();
    const visited: string[] = [];
    const send = (path: string) => {
      // An included entry brings its (possibly excluded) parent directories along.
      const parts = path.split("/");
      for (let i = 1; i <= parts.length; i++) sent.add(parts.slice(0, i).join("/"));
    };
    const walk = (dir: string, entries: string[]) => {
      const children = new Map<string, string[]>();
      for (const entry of entries) {
        const [head, ...rest] = entry.split("/");
        children.set(head!, [...(children.get(head!) ?? []), ...(rest.length > 0 ? [rest.join("/")] : [])]);
      }
      for (const [name, below] of children) {
        const path = dir === "" ? name : `${dir}/${name}`;
        visited.push(path);
        const isDir = below.length > 0;
        if (!m(path)) send(path);
        else if (!isDir || !m.mayHaveExceptions(path)) continue;
        if (isDir) walk(path, below);
      }
    };
    walk("", tree);
    expect([...sent].sort()).toEqual([
      "app",
      "app/main.go",
      "vendor",
      "vendor/keep",
      "vendor/keep/k.go",
      "vendor/keep/sub",
      "vendor/keep/sub/s.go",
    ]);
    // tmp and .git are pruned without being read; vendor is read because of the exception.
    expect(visited).not.toContain("tmp/x");
    expect(visited).not.toContain(".git/HEAD");
    expect(visited).toContain("vendor/a");
  });
});

describe("which ignore file applies", () => {
  it("prefers <Dockerfile>.dockerignore next to the Dockerfile", () => {
    expect(dockerignoreFor()).toEqual(["Dockerfile.dockerignore", ".dockerignore"]);
    expect(dockerignoreFor("build/app.Dockerfile")).toEqual(["build/app.Dockerfile.dockerignore", ".dockerignore"]);
    expect(dockerignoreFor("-")).toEqual([".dockerignore"]);
  });

  it("keeps the ignore file and the Dockerfile in the context", () => {
    expect(keepBuildFiles(["*"], "Dockerfile")).toEqual(["*", "!.dockerignore", "!Dockerfile"]);
    expect(keepBuildFiles(["docker"], "docker/Dockerfile.prod")).toEqual(["docker", "!docker/Dockerfile.prod"]);
    expect(keepBuildFiles(["*.log"], "Dockerfile")).toEqual(["*.log"]);
    expect(keepBuildFiles([".*"], "./Dockerfile", "Dockerfile.dockerignore")).toEqual([".*"]);
  });
});

describe("cleanPath", () => {
  it("behaves like Go's path.Clean", () => {
    const cases: [string, string][] = [
      ["", "."],
      [".", "."],
      ["/", "/"],
      ["a/b/", "a/b"],
      ["a//b", "a/b"],
      ["./a", "a"],
      ["a/./b", "a/b"],
      ["a/../b", "b"],
      ["a/..", "."],
      ["../a", "../a"],
      ["../../a/../b", "../../b"],
      ["/../a", "/a"],
      ["/a/b/../../..", "/"],
    ];
    for (const [input, output] of cases) expect(cleanPath(input), input).toBe(output);
  });
});
