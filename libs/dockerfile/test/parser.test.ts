// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally.
// Grammar edge cases beyond the reference's examples: line endings, BOM,
// continuations, flags, JSON, every instruction's argument rules, and errors
// with their line and column.

import { describe, expect, it } from "vitest";
import { DockerfileError, expandInstruction, parseDockerfile, parseTrigger } from "../src/index.js";
import { body, D, first, parseError, thrown } from "./helpers.js";

describe("lines", () => {
  it("accepts CRLF line endings", () => {
    const df = parseDockerfile('# escape=`\r\nFROM alpine AS base\r\nRUN echo a `\r\n  b\r\nENV A=1 `\r\n  B=2\r\nCMD ["sh"]\r\n');
    expect(df.escapeToken).toBe("`");
    const [run, env, cmd] = df.stages[0]!.instructions;
    expect(run).toMatchObject({ command: { form: "shell", text: "echo a   b" } });
    expect(env).toMatchObject({
      pairs: [
        { key: "A", value: "1" },
        { key: "B", value: "2" },
      ],
    });
    expect(cmd).toMatchObject({ command: { form: "exec", args: ["sh"] } });
  });

  it("keeps CRLF inside here-document bodies, as BuildKit does", () => {
    const run = first("FROM x\r\nRUN <<EOF\r\necho hi\r\nEOF\r\n", "run");
    expect(run.heredocs[0]!.content).toBe("echo hi\r\n");
  });

  it("strips a UTF-8 byte order mark", () => {
    const df = parseDockerfile("\ufeff# syntax=docker/dockerfile:1\nFROM x\n");
    expect(df.syntax).toBe("docker/dockerfile:1");
    expect(parseDockerfile("\ufeffFROM x\n").stages[0]!.from.image).toBe("x");
  });

  it("reads a file without a final newline", () => {
    expect(first("FROM x\nRUN echo hi", "run").command).toEqual({ form: "shell", text: "echo hi" });
  });

  it("skips empty continuation lines and warns", () => {
    const df = parseDockerfile(D("FROM x", "RUN echo a \\", "", "   ", "  b"));
    expect(df.stages[0]!.instructions[0]).toMatchObject({ command: { text: "echo a   b" }, location: { line: 2, endLine: 5 } });
    expect(df.warnings).toEqual([
      {
        rule: "NoEmptyContinuation",
        message: "Empty continuation line found in: RUN echo a   b",
        location: { line: 5, column: 1, endLine: 5 },
      },
    ]);
  });

  it("skips indented comments inside continuations", () => {
    expect(first(D("FROM x", "RUN a \\", "    # note", "  b"), "run").command).toEqual({ form: "shell", text: "a   b" });
  });

  it("ends a continuation at the end of the file", () => {
    expect(first("FROM x\nRUN echo a \\", "run").command).toEqual({ form: "shell", text: "echo a" });
    expect(first("FROM x\nRUN echo a \\\n", "run").command).toEqual({ form: "shell", text: "echo a" });
  });

  it("allows spaces and tabs after the continuation token", () => {
    expect(first(D("FROM x", "RUN a \\  \t", "b"), "run").command).toEqual({ form: "shell", text: "a b" });
  });

  it("continues on a line holding only the escape token", () => {
    expect(first(D("FROM x", "RUN a \\", "\\", "b"), "run").command).toEqual({ form: "shell", text: "a b" });
  });

  it("does not continue after an escaped escape token", () => {
    expect(body(D("FROM x", "RUN echo a\\\\", "RUN echo b")).map((i) => (i.kind === "run" ? i.command : null))).toEqual([
      { form: "shell", text: "echo a\\\\" },
      { form: "shell", text: "echo b" },
    ]);
  });

  it("keeps escapes inside RUN except at the end of a line", () => {
    expect(first(D("FROM x", "RUN printf 'a\\tb\\n' \\", "  && echo \\$HOME"), "run").command).toEqual({
      form: "shell",
      text: "printf 'a\\tb\\n'   && echo \\$HOME",
    });
  });

  it("reads instructions in any case and keeps the keyword as written", () => {
    const [run, copy] = body(D("from x", "run echo hi", "Copy a b"));
    expect(run).toMatchObject({ kind: "run", keyword: "run" });
    expect(copy).toMatchObject({ kind: "copy", keyword: "Copy" });
  });

  it("keeps the logical line as the original text", () => {
    const run = first(D("FROM x", "  RUN --network=none \\", "    make all # not a comment"), "run");
    expect(run.original).toBe("RUN --network=none     make all # not a comment");
  });
});

describe("flags", () => {
  it("reads quoted and escaped flag values", () => {
    const copy = first(D("FROM x", "COPY --chown=\"app user:app\" --chmod='755' --exclude=a\\ b src dst"), "copy");
    expect(copy).toMatchObject({ chown: "app user:app", chmod: "755", excludes: ["a b"] });
    expect(copy.flags.map((f) => [f.name, f.value, f.location.column])).toEqual([
      ["chown", "app user:app", 6],
      ["chmod", "755", 29],
      ["exclude", "a b", 43],
    ]);
  });

  it("stops at the first argument that is not a flag", () => {
    const run = first(D("FROM x", "RUN --network=none echo --not-a-flag"), "run");
    expect(run.command).toEqual({ form: "shell", text: "echo --not-a-flag" });
    expect(run.flags).toHaveLength(1);
  });

  it("ends flags with --", () => {
    const copy = first(D("FROM x", "COPY --link -- --weird-name /dst"), "copy");
    expect(copy).toMatchObject({ link: true, sources: ["--weird-name"], dest: "/dst" });
  });

  it("reads boolean flags", () => {
    const link = (flag: string) => first(D("FROM x", `COPY ${flag} a b`), "copy").link;
    expect(link("--link")).toBe(true);
    expect(link("--link=true")).toBe(true);
    expect(link("--link=TRUE")).toBe(true);
    expect(link("--link=false")).toBe(false);
    expect(parseError(D("FROM x", "COPY --link= a b")).detail).toBe("missing a value on flag: --link");
    expect(parseError(D("FROM x", "COPY --link=yes a b")).detail).toBe("expecting boolean value for flag --link, not: yes");
  });

  it("refuses unknown, duplicate and valueless flags with a position", () => {
    const unknown = parseError(D("FROM x", "COPY --form=build /a /b"));
    expect(unknown.message).toBe("dockerfile parse error on line 2: unknown flag: --form (did you mean from?)");
    expect([unknown.line, unknown.column]).toEqual([2, 6]);
    expect(parseError(D("FROM x", "COPY --from=a --from=b /a /b")).detail).toBe("duplicate flag specified: --from");
    expect(parseError(D("FROM x", "COPY --from /a /b")).detail).toBe("missing a value on flag: --from");
    expect(parseError(D("FROM x", "WORKDIR --foo /a")).detail).toBe("unknown flag: --foo");
    expect(parseError(D("FROM x", "RUN --mount-type=cache true")).detail).toBe("unknown flag: --mount-type");
    expect(parseError(D("FROM x", "RUN --netwrk=none true")).detail).toBe("unknown flag: --netwrk (did you mean network?)");
    expect(parseError(D("FROM x", "ENV --x=1 A=b")).detail).toBe("unknown flag: --x");
    expect(parseError(D("FROM --platfrom=linux/amd64 x")).detail).toBe("unknown flag: --platfrom (did you mean platform?)");
  });

  it("accepts repeated --mount and --exclude", () => {
    expect(first(D("FROM x", "RUN --mount=type=tmpfs,target=/a --mount=type=tmpfs,target=/b true"), "run").mounts).toHaveLength(2);
  });

  it("locates flags on continuation lines", () => {
    const err = parseError(
      D("FROM x", "RUN --mount=type=cache,target=/a \\", "    --mount=type=cache,target=/b,sharing=everyone \\", "    true"),
    );
    expect([err.line, err.column, err.endLine]).toEqual([3, 5, 4]);
    expect(err.detail).toBe('unsupported sharing value "everyone"');
  });
});

describe("RUN --mount", () => {
  const mountError = (spec: string) => parseError(D("FROM x", `RUN --mount=${spec} true`)).detail;

  it("defaults to a read-only bind mount; cache and tmpfs are writable", () => {
    const mounts = first(D("FROM x", "RUN --mount=target=/a --mount=type=cache,target=/b --mount=type=tmpfs,target=/c true"), "run").mounts;
    expect(mounts.map((m) => [m.type, m.readonly])).toEqual([
      ["bind", true],
      ["cache", false],
      ["tmpfs", false],
    ]);
  });

  it("reads quoted CSV fields", () => {
    const mount = first(D("FROM x", 'RUN --mount="type=bind,\\"target=/a,b\\"" true'), "run").mounts[0]!;
    expect(mount).toMatchObject({ type: "bind", target: "/a,b" });
  });

  it("refuses invalid options with BuildKit's messages", () => {
    expect(mountError("type=volume,target=/a")).toBe('unsupported mount type "volume"');
    expect(mountError("type=cahce,target=/a")).toBe('unsupported mount type "cahce" (did you mean cache?)');
    expect(mountError("type=cache,target=/a,sharing=bad")).toBe('unsupported sharing value "bad"');
    expect(mountError("type=bind,target=/a,sharing=locked")).toBe("invalid cache sharing set for bind mount");
    expect(mountError("type=bind,target=/a,mode=0644")).toBe('mode not allowed for "bind" type mounts');
    expect(mountError("type=tmpfs,target=/a,uid=1")).toBe('uid not allowed for "tmpfs" type mounts');
    expect(mountError("type=cache,target=/a,mode=999")).toBe("invalid value 999 for mode");
    expect(mountError("type=cache,target=/a,uid=-1")).toBe("invalid value -1 for uid");
    expect(mountError("type=cache,target=/a,ro=maybe")).toBe("invalid value for ro: maybe");
    expect(mountError("type=bind,target=/a,required")).toBe("unexpected key 'required' for mount type 'bind'");
    expect(mountError("type=bind,target=/a,size=1m")).toBe("unexpected key 'size' for mount type 'bind'");
    expect(mountError("type=tmpfs,target=/a,size=lots")).toBe("invalid value for size: lots");
    expect(mountError("type=bind,target=/a,bogus")).toBe("invalid field 'bogus' must be a key=value pair");
    expect(mountError("type=bind,targt=/a")).toBe("unexpected key 'targt' in 'targt=/a' (did you mean target?)");
    expect(mountError("type=secret")).toBe("invalid secret mount. one of source, target required");
    expect(mountError("type=secret,id=a,from=b")).toBe("secret mount should not have a from");
    expect(mountError("type=secret,id=a,source=b")).toBe("both source and id can't be set");
    expect(mountError("type=bind,from=$STAGE,target=/a")).toBe("'from' doesn't support variable expansion, define alias stage instead");
    expect(mountError('type=bind,target=a\\"b')).toBe('failed to parse csv mounts: bare " in non-quoted-field');
  });

  it("checks mounts that use variables when they are expanded", () => {
    const run = first(D("FROM x", "RUN --mount=type=$T,target=$DIR,sharing=locked,mode=$MODE true"), "run");
    expect(run.mounts[0]).toMatchObject({ needsExpansion: true, target: "$DIR" });
    const ok = expandInstruction(run, { T: "cache", DIR: "/cache", MODE: "0700" });
    expect(ok.instruction.mounts[0]).toMatchObject({
      needsExpansion: false,
      type: "cache",
      target: "/cache",
      sharing: "locked",
      mode: 0o700,
    });
    expect([...ok.used].sort()).toEqual(["DIR", "MODE", "T"]);
    const bad = thrown(() => expandInstruction(run, { T: "bind", DIR: "/x", MODE: "0700" })) as DockerfileError;
    expect(bad).toBeInstanceOf(DockerfileError);
    expect(bad.message).toBe('dockerfile error on line 2: mode not allowed for "bind" type mounts');
  });

  it("refuses invalid --network and --security", () => {
    const net = parseError(D("FROM x", "RUN --network=bridge true"));
    expect(net.detail).toBe('invalid network mode "bridge"');
    expect(net.column).toBe(5);
    expect(parseError(D("FROM x", "RUN --security=privileged true")).detail).toBe('security "privileged" is not valid');
  });
});

describe("JSON arguments", () => {
  it("refuses arrays of non-strings", () => {
    for (const json of ['["a", 1]', "[true]", "[null]", '[["a"]]', '[{"a": "b"}]']) {
      const err = parseError(D("FROM x", `CMD ${json}`));
      expect(err.detail, json).toBe("when using JSON array syntax, arrays must be comprised of strings only");
      expect(err.column).toBe(5);
    }
    expect(parseError(D("FROM x", "COPY [1, 2]")).detail).toContain("comprised of strings only");
  });

  it("falls back to the shell form on anything that is not a JSON array", () => {
    const text = (line: string) => {
      const cmd = first(D("FROM x", line), "cmd");
      return cmd.command.form === "shell" ? cmd.command.text : cmd.command.args;
    };
    expect(text('CMD ["a", "b"] && echo')).toBe('["a", "b"] && echo');
    expect(text('CMD ["unterminated')).toBe('["unterminated');
    expect(text("CMD [a, b]")).toBe("[a, b]");
    expect(text('CMD {"a": 1}')).toBe('{"a": 1}');
    expect(text("CMD []")).toEqual([]);
    expect(text('CMD  [ "spaced" ,"out" ]  ')).toEqual(["spaced", "out"]);
    expect(text('CMD ["\\u00e9t\\u00e9", "\\t"]')).toEqual(["été", "\t"]);
  });

  it("reads JSON for COPY, ADD and VOLUME, and whitespace lists otherwise", () => {
    expect(first(D("FROM x", 'COPY ["with space", "other", "/dst/"]'), "copy")).toMatchObject({
      sources: ["with space", "other"],
      dest: "/dst/",
      json: true,
    });
    expect(first(D("FROM x", "COPY  a \t b  /dst/ "), "copy")).toMatchObject({ sources: ["a", "b"], dest: "/dst/", json: false });
  });
});

describe("instruction arguments", () => {
  it("requires FROM to have one or three arguments and a valid stage name", () => {
    expect(parseError(D("FROM")).detail).toBe("FROM requires either one or three arguments");
    expect(parseError(D("FROM a b")).detail).toBe("FROM requires either one or three arguments");
    expect(parseError(D("FROM a AS")).detail).toBe("FROM requires either one or three arguments");
    expect(parseError(D("FROM a IS b")).detail).toBe("FROM requires either one or three arguments");
    const bad = parseError(D("FROM a AS 1st"));
    expect(bad.detail).toBe('invalid name for build stage: "1st", name can\'t start with a number or contain symbols');
    expect(bad.column).toBe(11);
    expect(parseError(D("FROM a AS my/stage")).detail).toContain("invalid name for build stage");
    expect(parseDockerfile(D("FROM a AS My-Stage_1.x")).stages[0]!.name).toBe("my-stage_1.x");
  });

  it("requires COPY and ADD to have a destination", () => {
    expect(parseError(D("FROM x", "COPY onlyone")).detail).toBe(
      "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
    );
    expect(parseError(D("FROM x", "ADD")).detail).toContain("ADD requires at least two arguments");
    expect(parseError(D("FROM x", 'COPY ["a"]')).detail).toContain("COPY requires at least two arguments");
    expect(parseError(D("FROM x", "COPY a <<EOF", "x", "EOF")).detail).toBe("COPY cannot accept a heredoc as a destination");
  });

  it("requires exactly one argument where the reference says so", () => {
    expect(parseError(D("FROM x", "WORKDIR")).detail).toBe("WORKDIR requires exactly one argument");
    expect(parseError(D("FROM x", "USER")).detail).toBe("USER requires exactly one argument");
    expect(parseError(D("FROM x", "STOPSIGNAL")).detail).toBe("STOPSIGNAL requires exactly one argument");
    expect(parseError(D("FROM x", "MAINTAINER")).detail).toBe("MAINTAINER requires exactly one argument");
    // The rest of the line is the one argument, spaces included.
    expect(first(D("FROM x", "WORKDIR /my dir"), "workdir").path).toBe("/my dir");
    expect(first(D("FROM x", "MAINTAINER Jane Doe <jane@example.com>"), "maintainer").maintainer).toBe("Jane Doe <jane@example.com>");
  });

  it("requires at least one argument elsewhere", () => {
    for (const keyword of ["ENV", "LABEL", "ARG", "VOLUME", "EXPOSE", "HEALTHCHECK", "ONBUILD", "SHELL"]) {
      expect(parseError(D("FROM x", keyword)).detail, keyword).toBe(`${keyword} requires at least one argument`);
    }
    expect(parseError(D("FROM x", "SHELL []")).detail).toBe("SHELL requires at least one argument");
  });

  it("reads ENV and LABEL pairs and refuses malformed ones", () => {
    expect(first(D("FROM x", "ENV A=1 B=\"two words\" C='3' D="), "env").pairs).toEqual([
      { key: "A", value: "1" },
      { key: "B", value: '"two words"' },
      { key: "C", value: "'3'" },
      { key: "D", value: "" },
    ]);
    expect(first(D("FROM x", "ENV A=b=c"), "env").pairs).toEqual([{ key: "A", value: "b=c" }]);
    expect(parseError(D("FROM x", "ENV A")).detail).toBe("ENV must have two arguments");
    expect(parseError(D("FROM x", "LABEL a")).detail).toBe("LABEL must have two arguments");
    const missing = parseError(D("FROM x", "ENV A=1 B"));
    expect(missing.detail).toBe('Syntax error - can\'t find = in "B". Must be of the form: name=value');
    expect(missing.column).toBe(9);
    expect(parseError(D("FROM x", "ENV =1")).detail).toBe("ENV names can not be blank");
    expect(parseError(D("FROM x", "LABEL =1")).detail).toBe("LABEL names can not be blank");
    expect(first(D("FROM x", "LABEL legacy label value"), "label")).toMatchObject({
      legacy: true,
      pairs: [{ key: "legacy", value: "label value" }],
    });
  });

  it("keeps quoted spaces inside one ENV word", () => {
    const env = first(D("FROM x", "ENV PATH=\"/a b:$PATH\" X='y z' W=a\\ b"), "env");
    expect(env.pairs).toEqual([
      { key: "PATH", value: '"/a b:$PATH"' },
      { key: "X", value: "'y z'" },
      { key: "W", value: "a\\ b" },
    ]);
    expect(expandInstruction(env, { PATH: "/bin" }).instruction.pairs).toEqual([
      { key: "PATH", value: "/a b:/bin" },
      { key: "X", value: "y z" },
      { key: "W", value: "a b" },
    ]);
  });

  it("reads ARG names and defaults", () => {
    expect(first(D("FROM x", 'ARG A="x y" B= C=${A}'), "arg").args).toEqual([
      { name: "A", default: '"x y"' },
      { name: "B", default: "" },
      { name: "C", default: "${A}" },
    ]);
    expect(parseError(D("FROM x", "ARG =x")).detail).toBe("ARG names can not be blank");
    // BuildKit checks no flags on ARG and STOPSIGNAL.
    expect(first(D("FROM x", "ARG --ignored A"), "arg")).toMatchObject({ args: [{ name: "A" }], flags: [{ name: "ignored" }] });
    expect(first(D("FROM x", "STOPSIGNAL --ignored SIGKILL"), "stopsignal").signal).toBe("SIGKILL");
  });

  it("sorts EXPOSE ports as BuildKit does", () => {
    expect(first(D("FROM x", "EXPOSE 8080 443/tcp 53/udp 80"), "expose").ports).toEqual(["443/tcp", "53/udp", "80", "8080"]);
  });

  it("refuses empty VOLUME paths", () => {
    expect(parseError(D("FROM x", 'VOLUME ["/a", " "]')).detail).toBe("VOLUME specified can not be an empty string");
  });

  it("checks HEALTHCHECK", () => {
    expect(parseError(D("FROM x", "HEALTHCHECK NONE extra")).detail).toBe("HEALTHCHECK NONE takes no arguments");
    expect(parseError(D("FROM x", "HEALTHCHECK CMD")).detail).toBe("Missing command after HEALTHCHECK CMD");
    expect(parseError(D("FROM x", "HEALTHCHECK RUN true")).detail).toBe('Unknown type "RUN" in HEALTHCHECK (try CMD)');
    expect(parseError(D("FROM x", "HEALTHCHECK --interval=1us CMD true")).detail).toBe('Interval "interval" cannot be less than 1ms');
    expect(parseError(D("FROM x", "HEALTHCHECK --timeout=soon CMD true")).detail).toBe('time: invalid duration "soon"');
    expect(parseError(D("FROM x", "HEALTHCHECK --timeout=5 CMD true")).detail).toBe('time: missing unit in duration "5"');
    expect(parseError(D("FROM x", "HEALTHCHECK --retries=-1 CMD true")).detail).toBe("--retries cannot be negative (-1)");
    expect(parseError(D("FROM x", "HEALTHCHECK --retries=x CMD true")).detail).toBe('strconv.ParseInt: parsing "x": invalid syntax');
    expect(parseError(D("FROM x", "HEALTHCHECK --bogus=1 CMD true")).detail).toBe("unknown flag: --bogus");
    const hc = first(D("FROM x", "healthcheck --interval=0 --start-period=1.5ms --timeout=1h2m3.5s cmd true"), "healthcheck");
    expect(hc).toMatchObject({ interval: 0, startPeriod: 1_500_000, timeout: 3_723_500_000_000, test: ["CMD-SHELL", "true"] });
  });

  it("reads an ONBUILD trigger's expression with its heredoc", () => {
    const onbuild = first(D("FROM x", "ONBUILD RUN <<EOF", "echo from trigger", "EOF"), "onbuild");
    expect(onbuild.expression).toBe("RUN <<EOF\necho from trigger\nEOF");
    expect(onbuild.trigger).toMatchObject({ kind: "run", heredocs: [{ name: "EOF", content: "echo from trigger\n" }] });
    expect(parseTrigger(onbuild.expression)).toMatchObject({ kind: "run", heredocs: [{ name: "EOF", content: "echo from trigger\n" }] });
    expect(onbuild.location).toEqual({ line: 2, column: 1, endLine: 4 });
  });

  it("keeps an invalid ONBUILD trigger for the downstream build to report", () => {
    const onbuild = first(D("FROM x", "ONBUILD NOSUCH thing"), "onbuild");
    expect(onbuild).toMatchObject({ expression: "NOSUCH thing" });
    expect(onbuild.trigger).toBeUndefined();
    expect(thrown(() => parseTrigger(onbuild.expression)).message).toBe("dockerfile parse error on line 1: unknown instruction: NOSUCH");
    expect(thrown(() => parseTrigger("FROM x")).message).toContain("FROM isn't allowed as an ONBUILD trigger");
    expect(thrown(() => parseTrigger("RUN a\nRUN b")).message).toContain("onbuild trigger should be a single expression");
  });
});

describe("stages", () => {
  it("separates global ARGs from stages", () => {
    const df = parseDockerfile(D("ARG A=1", "ARG B", "FROM x:$A AS one", "ARG A", "RUN true", "FROM one"));
    expect(df.globalArgs.map((a) => a.args)).toEqual([[{ name: "A", default: "1" }], [{ name: "B" }]]);
    expect(df.stages.map((s) => [s.index, s.name, s.from.image, s.instructions.map((i) => i.kind)])).toEqual([
      [0, "one", "x:$A", ["arg", "run"]],
      [1, undefined, "one", []],
    ]);
  });

  it("refuses instructions before the first FROM other than ARG", () => {
    const err = parseError(D("ARG A", "", "RUN echo", "FROM x"));
    expect(err.message).toBe("dockerfile parse error on line 3: no build stage in current context");
  });

  it("refuses a file without stages or instructions", () => {
    expect(parseError(D("ARG A=1")).detail).toBe("dockerfile contains no stages to build");
    expect(parseError("").detail).toBe("file with no instructions");
    expect(parseError(D("# just a comment", "", "   ")).detail).toBe("file with no instructions");
  });

  it("warns about duplicate and reserved stage names", () => {
    const df = parseDockerfile(D("FROM a AS base", "FROM b AS base", "FROM c AS scratch"));
    expect(df.warnings.map((w) => [w.rule, w.location.line])).toEqual([
      ["DuplicateStageName", 2],
      ["ReservedStageName", 3],
    ]);
  });
});

describe("errors", () => {
  it("names unknown instructions with a suggestion, at their position", () => {
    const cases: [string, string, number, number][] = [
      [D("FROM x", "RUNN echo"), "unknown instruction: RUNN (did you mean RUN?)", 2, 1],
      [D("FROM x", "   cpoy a b"), "unknown instruction: cpoy (did you mean copy?)", 2, 4],
      [D("FROM x", "FNTRYPOINT x"), "unknown instruction: FNTRYPOINT (did you mean ENTRYPOINT?)", 2, 1],
      [D("FROM x", "BADCMD"), "unknown instruction: BADCMD", 2, 1],
      [D("FORM x"), "unknown instruction: FORM (did you mean FROM?)", 1, 1],
    ];
    for (const [text, detail, line, column] of cases) {
      const err = parseError(text);
      expect([err.detail, err.line, err.column], text).toEqual([detail, line, column]);
      expect(err.message).toBe(`dockerfile parse error on line ${line}: ${detail}`);
    }
  });

  it("reports the first problem in file order, syntax before meaning", () => {
    // BuildKit reads the whole file (comments, continuations, heredocs) before checking instructions.
    expect(parseError(D("FROM x", "RUNN a", "ENV A")).detail).toBe("ENV must have two arguments");
    expect(parseError(D("FROM x", "RUNN a", "COPY --x a b")).detail).toBe("unknown instruction: RUNN (did you mean RUN?)");
  });

  it("reports an unterminated heredoc from its instruction to the end of the file", () => {
    const err = parseError(D("FROM x", "", "RUN <<EOF", "echo never ends"));
    expect(err.detail).toBe("unterminated heredoc");
    expect([err.line, err.column, err.endLine]).toEqual([3, 1, 4]);
  });

  it("reports the line of a continued instruction's problem", () => {
    const err = parseError(D("FROM x", "COPY \\", "  --chmod=644 \\", "  --chwn=me a b"));
    expect([err.line, err.column, err.endLine]).toEqual([4, 3, 4]);
    expect(err.detail).toBe("unknown flag: --chwn (did you mean chown?)");
  });

  it("exposes the location", () => {
    const err = parseError(D("FROM x", "EXPOSE"));
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("DockerfileError");
    expect(err.location).toEqual({ line: 2, column: 1, endLine: 2 });
    expect(err.phase).toBe("parse");
  });
});
