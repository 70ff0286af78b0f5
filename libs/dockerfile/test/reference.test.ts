// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally.
// Every example of ../shared/ref/dockerfile/reference.md that shows how a
// Dockerfile is read, section by section.

import { describe, expect, it } from "vitest";
import {
  type CopyInstruction,
  expand,
  expandInstruction,
  type LabelInstruction,
  parseDockerfile,
  planStages,
  resolveArg,
  resolveGlobalArgs,
  runScript,
} from "../src/index.js";
import { body, D, first, parseError } from "./helpers.js";

describe("Format", () => {
  it("treats # inside an instruction as an argument", () => {
    const run = first(D("FROM busybox", "# Comment", "RUN echo 'we are running some # of cool things'"), "run");
    expect(run.command).toEqual({ form: "shell", text: "echo 'we are running some # of cool things'" });
  });

  it("removes comment lines inside a continuation", () => {
    const withComment = first(D("FROM busybox", "RUN echo hello \\", "# comment", "world"), "run");
    const without = first(D("FROM busybox", "RUN echo hello \\", "world"), "run");
    expect(withComment.command).toEqual({ form: "shell", text: "echo hello world" });
    expect(without.command).toEqual(withComment.command);
  });

  it("does not continue comments", () => {
    // "Comments don't support line continuation characters."
    const instructions = body(D("FROM busybox", "# a comment \\", "RUN echo hi"));
    expect(instructions.map((i) => i.kind)).toEqual(["run"]);
  });

  it("ignores leading whitespace before comments and instructions", () => {
    const indented = parseDockerfile(D("FROM busybox", "        # this is a comment-line", "    RUN echo hello", "RUN echo world"));
    const flat = parseDockerfile(D("FROM busybox", "# this is a comment-line", "RUN echo hello", "RUN echo world"));
    const commands = (df: typeof flat) => df.stages[0]!.instructions.map((i) => (i.kind === "run" ? i.command : undefined));
    expect(commands(indented)).toEqual(commands(flat));
    expect(indented.stages[0]!.instructions[0]!.location).toEqual({ line: 3, column: 5, endLine: 3 });
  });

  it("keeps whitespace in arguments, including on continuation lines", () => {
    const run = first(D("FROM busybox", 'RUN echo "\\', "     hello\\", '     world"'), "run");
    expect(run.command).toEqual({ form: "shell", text: 'echo "     hello     world"' });
  });
});

describe("Parser directives", () => {
  it("does not continue a directive: the next line is an instruction", () => {
    const err = parseError(D("# direc \\", "tive=value"));
    expect(err.line).toBe(2);
    expect(err.detail).toBe("unknown instruction: tive=value");
  });

  it("refuses a directive used twice", () => {
    const err = parseError(D("# escape=`", "# escape=\\", "", "FROM ImageName"));
    expect(err.message).toBe("dockerfile parse error on line 2: only one escape parser directive can be used");
    expect(parseError(D("# syntax=a", "# syntax=b", "FROM x")).detail).toBe("only one syntax parser directive can be used");
  });

  it("treats a directive after an instruction as a comment", () => {
    const df = parseDockerfile(D("FROM ImageName", "# escape=`"));
    expect(df.escapeToken).toBe("\\");
    expect(df.directives).toEqual([]);
  });

  it("treats a directive after a comment as a comment", () => {
    const df = parseDockerfile(D("# About my dockerfile", "# escape=`", "FROM ImageName"));
    expect(df.escapeToken).toBe("\\");
    expect(df.directives).toEqual([]);
  });

  it("treats unknown directives as comments, and stops looking after them", () => {
    const df = parseDockerfile(D("# unknowndirective=value", "# syntax=value", "FROM x"));
    expect(df.syntax).toBeUndefined();
    expect(df.directives).toEqual([]);
  });

  it("allows non line-breaking whitespace and any case in keys", () => {
    for (const line of ["#escape=`", "# escape =`", "#\tescape= `", "# escape = `", "#\t  eScApE=`"]) {
      const df = parseDockerfile(D(line, "FROM x"));
      expect(df.escapeToken, line).toBe("`");
      expect(df.directives[0]).toMatchObject({ name: "escape", value: "`" });
    }
  });

  it("stops looking for directives after an empty line", () => {
    const df = parseDockerfile(D("# syntax=docker/dockerfile:1", "", "# escape=`", "FROM x"));
    expect(df.syntax).toBe("docker/dockerfile:1");
    expect(df.escapeToken).toBe("\\");
  });

  it("reads # syntax=docker/dockerfile:1", () => {
    const df = parseDockerfile(D("# syntax=docker/dockerfile:1", "FROM x"));
    expect(df.syntax).toBe("docker/dockerfile:1");
    expect(df.directives[0]!.location).toEqual({ line: 1, column: 1, endLine: 1 });
  });

  it("accepts `\\` and ` as escape tokens only", () => {
    expect(parseDockerfile(D("# escape=\\", "FROM x")).escapeToken).toBe("\\");
    const err = parseError(D("# escape=!", "FROM x"));
    expect(err.detail).toBe("invalid escape token '!' does not match ` or \\");
    expect(err.line).toBe(1);
  });

  it("reads the Windows example without the escape directive as current BuildKit does", () => {
    // The reference shows the legacy parser joining lines 2 and 3 ("COPY testfile.txt c:\RUN dir c:").
    // BuildKit's parser no longer treats an escaped escape (`\\`) as a continuation; the last line still is one.
    const [copy, run] = body(D("FROM microsoft/nanoserver", "COPY testfile.txt c:\\\\", "RUN dir c:\\"));
    expect(copy).toMatchObject({ kind: "copy", sources: ["testfile.txt"], dest: "c:\\\\" });
    expect(run).toMatchObject({ kind: "run", command: { form: "shell", text: "dir c:" } });
    // Expanding the destination removes the escape, giving the `c:\` the author meant.
    const expanded = expandInstruction(copy as CopyInstruction, {}).instruction;
    expect(expanded.dest).toBe("c:\\");
  });

  it("keeps Windows paths with # escape=`", () => {
    const df = parseDockerfile(D("# escape=`", "", "FROM microsoft/nanoserver", "COPY testfile.txt c:\\", "RUN dir c:\\"));
    const [copy, run] = df.stages[0]!.instructions;
    expect(copy).toMatchObject({ kind: "copy", sources: ["testfile.txt"], dest: "c:\\" });
    expect(run).toMatchObject({ kind: "run", command: { form: "shell", text: "dir c:\\" } });
    expect(expandInstruction(copy as CopyInstruction, {}, { escapeToken: df.escapeToken }).instruction.dest).toBe("c:\\");
  });

  it("continues lines with ` under # escape=`", () => {
    const df = parseDockerfile(D("# escape=`", "FROM x", "RUN echo a `", "  b"));
    expect(df.stages[0]!.instructions[0]).toMatchObject({ command: { form: "shell", text: "echo a   b" } });
  });

  it("reads the check directive", () => {
    const check = (line: string) => parseDockerfile(D(line, "FROM x")).check;
    expect(check("# check=skip=JSONArgsRecommended,StageNameCasing")).toMatchObject({
      skip: ["JSONArgsRecommended", "StageNameCasing"],
      skipAll: false,
      error: false,
    });
    expect(check("# check=skip=all")).toMatchObject({ skipAll: true, skip: [] });
    expect(check("# check=error=true")).toMatchObject({ error: true, skip: [] });
    expect(check("# check=skip=JSONArgsRecommended;error=true")).toMatchObject({ skip: ["JSONArgsRecommended"], error: true });
    expect(parseError(D("# check=skip", "FROM x")).detail).toBe('invalid check option "skip"');
    expect(parseError(D("# check=error=maybe", "FROM x")).detail).toContain("failed to parse check option");
  });
});

describe("Environment replacement", () => {
  const env = new Map([
    ["variable", "value"],
    ["empty", ""],
  ]);
  const x = (word: string) => expand(word, env).value;

  it("supports $variable and ${variable}", () => {
    expect(x("$variable")).toBe("value");
    expect(x("${variable}_bar")).toBe("value_bar");
    expect(x("$variable_bar")).toBe("");
  });

  it("supports ${variable:-word} and ${variable-word}", () => {
    expect(x("${variable:-word}")).toBe("value");
    expect(x("${empty:-word}")).toBe("word");
    expect(x("${unset:-word}")).toBe("word");
    expect(x("${variable-word}")).toBe("value");
    expect(x("${empty-word}")).toBe("");
    expect(x("${unset-word}")).toBe("word");
  });

  it("supports ${variable:+word} and ${variable+word}", () => {
    expect(x("${variable:+word}")).toBe("word");
    expect(x("${empty:+word}")).toBe("");
    expect(x("${unset:+word}")).toBe("");
    expect(x("${variable+word}")).toBe("word");
    expect(x("${empty+word}")).toBe("word");
    expect(x("${unset+word}")).toBe("");
  });

  it("supports the pattern modifiers with the reference's examples", () => {
    const str = new Map([
      ["str", "foobarbaz"],
      ["string", "foobarbaz"],
    ]);
    expect(expand("${str#f*b}", str).value).toBe("arbaz");
    expect(expand("${str##f*b}", str).value).toBe("az");
    expect(expand("${string%b*}", str).value).toBe("foobar");
    expect(expand("${string%%b*}", str).value).toBe("foo");
    expect(expand("${string/ba/fo}", str).value).toBe("fooforbaz");
    expect(expand("${string//ba/fo}", str).value).toBe("fooforfoz");
  });

  it("lets word contain further variables", () => {
    expect(x("${unset:-$variable}")).toBe("value");
    expect(x("${unset:-${empty:-deep}}")).toBe("deep");
    expect(x("${variable:+[$variable]}")).toBe("[value]");
  });

  it("matches ? and * in patterns, and their escapes literally", () => {
    const v = new Map([["v", "a*b?c"]]);
    expect(expand("${v#?}", v).value).toBe("*b?c");
    expect(expand("${v#*b}", v).value).toBe("?c");
    expect(expand("${v#a\\*}", v).value).toBe("b?c");
    expect(expand("${v%\\?c}", v).value).toBe("a*b");
    expect(expand("${v/\\*/+}", v).value).toBe("a+b?c");
  });

  it("escapes whole variable names with a backslash", () => {
    expect(x("\\$foo")).toBe("$foo");
    expect(x("\\${foo}")).toBe("${foo}");
  });

  it("expands the busybox example", () => {
    const [envInstr, workdir, add, copy] = body(D("FROM busybox", "ENV FOO=/bar", "WORKDIR ${FOO}", "ADD . $FOO", "COPY \\$FOO /quux"));
    const env = new Map<string, string>();
    const set = expandInstruction(envInstr!, env).instruction;
    if (set.kind === "env") for (const p of set.pairs) env.set(p.key, p.value);
    expect(env.get("FOO")).toBe("/bar");
    expect(expandInstruction(workdir!, env).instruction).toMatchObject({ path: "/bar" });
    expect(expandInstruction(add!, env).instruction).toMatchObject({ sources: ["."], dest: "/bar" });
    expect(expandInstruction(copy!, env).instruction).toMatchObject({ sources: ["$FOO"], dest: "/quux" });
  });

  it("keeps the reference's trailing annotations as arguments (only whole lines are comments)", () => {
    const workdir = first(D("FROM busybox", "WORKDIR ${FOO}   # WORKDIR /bar"), "workdir");
    expect(expandInstruction(workdir, { FOO: "/bar" }).instruction.path).toBe("/bar   # WORKDIR /bar");
  });

  it("uses the same value of a variable throughout one instruction", () => {
    const [a, b, c] = body(D("FROM busybox", "ENV abc=hello", "ENV abc=bye def=$abc", "ENV ghi=$abc"));
    const env = new Map<string, string>();
    for (const instruction of [a!, b!, c!]) {
      const expanded = expandInstruction(instruction, env).instruction;
      if (expanded.kind === "env") for (const p of expanded.pairs) env.set(p.key, p.value);
    }
    expect(env.get("def")).toBe("hello");
    expect(env.get("ghi")).toBe("bye");
  });

  it("expands in the listed instructions only", () => {
    const env = new Map([["V", "x"]]);
    const instructions = body(
      D(
        "FROM busybox",
        "ADD $V /$V",
        "COPY $V /$V",
        "ENV K=$V",
        "EXPOSE $V",
        "LABEL l=$V",
        "STOPSIGNAL $V",
        "USER $V",
        "VOLUME /$V",
        "WORKDIR /$V",
        "RUN echo $V",
        "CMD echo $V",
        "ENTRYPOINT echo $V",
        "ONBUILD COPY $V /$V",
      ),
    );
    const used = instructions.map((i) => [i.kind, expandInstruction(i, env).used.has("V")]);
    expect(used).toEqual([
      ["add", true],
      ["copy", true],
      ["env", true],
      ["expose", true],
      ["label", true],
      ["stopsignal", true],
      ["user", true],
      ["volume", true],
      ["workdir", true],
      ["run", false],
      ["cmd", false],
      ["entrypoint", false],
      ["onbuild", false],
    ]);
    const from = parseDockerfile(D("ARG V=x", "FROM busybox:$V")).stages[0]!.from;
    expect(expandInstruction(from, new Map([["V", "1"]])).instruction.image).toBe("busybox:1");
  });
});

describe("Shell and exec form", () => {
  it("reads the exec form as a JSON array", () => {
    const entrypoint = first(D("FROM x", 'ENTRYPOINT ["/bin/bash", "-c", "echo hello"]'), "entrypoint");
    expect(entrypoint.command).toEqual({ form: "exec", args: ["/bin/bash", "-c", "echo hello"] });
  });

  it("does not substitute variables in the exec form", () => {
    const run = first(D("FROM x", 'RUN [ "echo", "$HOME" ]'), "run");
    expect(run.command).toEqual({ form: "exec", args: ["echo", "$HOME"] });
    expect(expandInstruction(run, new Map([["HOME", "/root"]])).instruction.command).toEqual(run.command);
    expect(first(D("FROM x", 'RUN [ "sh", "-c", "echo $HOME" ]'), "run").command).toEqual({
      form: "exec",
      args: ["sh", "-c", "echo $HOME"],
    });
  });

  it("falls back to the shell form when the JSON is invalid (unescaped backslashes)", () => {
    const run = first(D("FROM x", 'RUN ["c:\\windows\\system32\\tasklist.exe"]'), "run");
    expect(run.command).toEqual({ form: "shell", text: '["c:\\windows\\system32\\tasklist.exe"]' });
    const fixed = first(D("FROM x", 'RUN ["c:\\\\windows\\\\system32\\\\tasklist.exe"]'), "run");
    expect(fixed.command).toEqual({ form: "exec", args: ["c:\\windows\\system32\\tasklist.exe"] });
  });

  it("requires double quotes in the exec form", () => {
    expect(first(D("FROM x", "CMD ['echo', 'hi']"), "cmd").command).toEqual({ form: "shell", text: "['echo', 'hi']" });
  });

  it("joins shell-form continuation lines", () => {
    const a = first(D("FROM x", "RUN source $HOME/.bashrc && \\", "echo $HOME"), "run");
    const b = first(D("FROM x", "RUN source $HOME/.bashrc && echo $HOME"), "run");
    expect(a.command).toEqual(b.command);
  });

  it("reads a shell-form heredoc", () => {
    const run = first(D("FROM x", "RUN <<EOF", "  source $HOME/.bashrc", "  echo $HOME", "EOF"), "run");
    expect(run.heredocs).toEqual([{ name: "EOF", content: "  source $HOME/.bashrc\n  echo $HOME\n", expand: true, chomp: false, fd: 0 }]);
    expect(runScript(run)).toEqual({ script: "  source $HOME/.bashrc\n  echo $HOME\n" });
  });

  it("reads SHELL", () => {
    const [shell, run] = body(D("FROM x", 'SHELL ["/bin/bash", "-c"]', "RUN echo hello"));
    expect(shell).toMatchObject({ kind: "shell", shell: ["/bin/bash", "-c"] });
    expect(run).toMatchObject({ command: { form: "shell", text: "echo hello" } });
  });
});

describe("FROM", () => {
  it("reads the three forms with --platform and AS", () => {
    const df = parseDockerfile(
      D(
        "FROM --platform=linux/arm64 alpine AS one",
        "FROM alpine:3.20 AS two",
        "FROM alpine@sha256:" + "a".repeat(64) + " as Three",
        "FROM two",
      ),
    );
    expect(df.stages.map((s) => [s.from.image, s.from.platform, s.name])).toEqual([
      ["alpine", "linux/arm64", "one"],
      ["alpine:3.20", undefined, "two"],
      [`alpine@sha256:${"a".repeat(64)}`, undefined, "three"],
      ["two", undefined, undefined],
    ]);
  });

  it("shares a base stage (the ubuntu AS base example)", () => {
    const df = parseDockerfile(
      D(
        "FROM ubuntu AS base",
        "RUN apt-get update && apt-get install -y shared-tooling",
        "",
        "FROM base AS dev",
        "RUN apt-get install -y dev-tooling",
        "",
        "FROM base AS prod",
        "COPY --from=build /app /app",
      ),
    );
    expect(planStages(df, { target: "dev" }).map((p) => [p.index, p.base, p.dependsOn])).toEqual([
      [0, { kind: "image", ref: "ubuntu" }, []],
      [1, { kind: "stage", index: 0 }, [0]],
    ]);
    // "build" is not a stage here, so it is an image to read from.
    expect(planStages(df, { target: "prod" }).map((p) => [p.index, p.images])).toEqual([
      [0, []],
      [2, ["build"]],
    ]);
  });

  it("expands ARGs declared before the first FROM in FROM lines", () => {
    const df = parseDockerfile(
      D(
        "ARG  CODE_VERSION=latest",
        "FROM base:${CODE_VERSION}",
        "CMD  /code/run-app",
        "",
        "FROM extras:${CODE_VERSION}",
        "CMD  /code/run-extras",
      ),
    );
    expect(df.globalArgs[0]!.args).toEqual([{ name: "CODE_VERSION", default: "latest" }]);
    const globals = resolveGlobalArgs(df);
    expect(df.stages.map((s) => expandInstruction(s.from, globals).instruction.image)).toEqual(["base:latest", "extras:latest"]);
    const pinned = resolveGlobalArgs(df, { buildArgs: { CODE_VERSION: "1.2" } });
    expect(planStages(df, { globalArgs: pinned, target: undefined }).map((p) => p.base)).toEqual([{ kind: "image", ref: "extras:1.2" }]);
  });

  it("needs ARG without a value to use a global ARG inside a stage", () => {
    const df = parseDockerfile(D("ARG VERSION=latest", "FROM busybox:$VERSION", "ARG VERSION", "RUN echo $VERSION > image_version"));
    const globals = resolveGlobalArgs(df);
    const arg = df.stages[0]!.instructions[0]!;
    expect(arg.kind).toBe("arg");
    if (arg.kind !== "arg") return;
    // Before the ARG the stage does not see VERSION; after it, the global default.
    expect(resolveArg(arg.args[0]!, { globalArgs: globals, env: new Map() }).value).toBe("latest");
    expect(resolveArg(arg.args[0]!, { globalArgs: globals, buildArgs: { VERSION: "1.36" } }).value).toBe("1.36");
  });
});

describe("RUN", () => {
  it("reads a heredoc RUN", () => {
    const run = first(D("FROM x", "RUN <<EOF", "apt-get update", "apt-get install -y curl", "EOF"), "run");
    expect(run.command).toEqual({ form: "shell", text: "<<EOF" });
    expect(runScript(run)?.script).toBe("apt-get update\napt-get install -y curl\n");
  });

  it("reads --device (the llama.cpp example)", () => {
    const df = parseDockerfile(
      D(
        "# syntax=docker/dockerfile:1-labs",
        "",
        "FROM scratch AS model",
        "ADD https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF/resolve/main/Llama-3.2-1B-Instruct-Q4_K_M.gguf /model.gguf",
        "",
        "FROM scratch AS prompt",
        "COPY <<EOF prompt.txt",
        'Q: Generate  a list of 10 unique biggest countries by population in JSON with their estimated poulation in 1900 and 2024. Answer only newline formatted JSON with keys "country", "population_1900", "population_2024" with 10 items.',
        "A:",
        "[",
        "    {",
        "",
        "EOF",
        "",
        "FROM ghcr.io/ggml-org/llama.cpp:full-cuda-b5124",
        "RUN --device=nvidia.com/gpu=all \\",
        "    --mount=from=model,target=/models \\",
        "    --mount=from=prompt,target=/tmp \\",
        "    ./llama-cli -m /models/model.gguf -no-cnv -ngl 99 -f /tmp/prompt.txt",
      ),
    );
    expect(df.syntax).toBe("docker/dockerfile:1-labs");
    const copy = df.stages[1]!.instructions[0] as CopyInstruction;
    expect(copy.inlineSources).toHaveLength(1);
    expect(copy.inlineSources[0]!.name).toBe("EOF");
    expect(copy.inlineSources[0]!.content.endsWith("A:\n[\n    {\n\n")).toBe(true);
    expect(copy.dest).toBe("prompt.txt");
    const run = df.stages[2]!.instructions[0]!;
    expect(run).toMatchObject({
      kind: "run",
      devices: [{ name: "nvidia.com/gpu=all", required: false }],
      mounts: [
        { type: "bind", from: "model", target: "/models", readonly: true },
        { type: "bind", from: "prompt", target: "/tmp", readonly: true },
      ],
      command: { form: "shell", text: "./llama-cli -m /models/model.gguf -no-cnv -ngl 99 -f /tmp/prompt.txt" },
    });
    expect(planStages(df).map((p) => [p.index, p.dependsOn])).toEqual([
      [0, []],
      [1, []],
      [2, [0, 1]],
    ]);
  });

  it("reads the --device name forms", () => {
    const devices = (spec: string) => first(D("FROM x", `RUN --device=${spec} true`), "run").devices;
    expect(devices("vendor1.com/device")).toEqual([{ name: "vendor1.com/device", required: false }]);
    expect(devices("vendor1.com/device=foo,required")).toEqual([{ name: "vendor1.com/device=foo", required: true }]);
    expect(devices("vendor1.com/device=*")).toEqual([{ name: "vendor1.com/device=*", required: false }]);
    expect(devices("class1,required=false")).toEqual([{ name: "class1", required: false }]);
  });

  it("reads cache mounts (Go and apt examples)", () => {
    const go = first(
      D("# syntax=docker/dockerfile:1", "FROM golang", "RUN --mount=type=cache,target=/root/.cache/go-build \\", "  go build ..."),
      "run",
    );
    expect(go.mounts).toEqual([
      {
        spec: "type=cache,target=/root/.cache/go-build",
        needsExpansion: false,
        type: "cache",
        target: "/root/.cache/go-build",
        readonly: false,
        required: false,
      },
    ]);
    expect(go.command).toEqual({ form: "shell", text: "go build ..." });
    const [, apt] = body(
      D(
        "FROM ubuntu",
        "RUN rm -f /etc/apt/apt.conf.d/docker-clean; echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache",
        "RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\",
        "  --mount=type=cache,target=/var/lib/apt,sharing=locked \\",
        "  apt-get update && apt-get --no-install-recommends install -y gcc",
      ),
    );
    expect(apt).toMatchObject({
      mounts: [
        { type: "cache", target: "/var/cache/apt", sharing: "locked" },
        { type: "cache", target: "/var/lib/apt", sharing: "locked" },
      ],
      command: { form: "shell", text: "apt-get update && apt-get --no-install-recommends install -y gcc" },
    });
  });

  it("reads tmpfs, secret, ssh and bind mounts", () => {
    const mount = (spec: string) => first(D("FROM x", `RUN --mount=${spec} true`), "run").mounts[0];
    expect(mount("type=tmpfs,target=/tmp,size=64m")).toMatchObject({
      type: "tmpfs",
      target: "/tmp",
      size: 64 * 1024 * 1024,
      readonly: false,
    });
    expect(mount("type=secret,id=aws,target=/root/.aws/credentials")).toMatchObject({
      type: "secret",
      id: "aws",
      target: "/root/.aws/credentials",
      readonly: true,
      required: false,
    });
    expect(mount("type=secret,id=API_KEY,env=API_KEY")).toMatchObject({ type: "secret", id: "API_KEY", env: "API_KEY" });
    expect(mount("type=secret,id=k,required,mode=0440,uid=1000,gid=1000")).toMatchObject({
      required: true,
      mode: 0o440,
      uid: 1000,
      gid: 1000,
    });
    expect(mount("type=ssh")).toMatchObject({ type: "ssh", readonly: true });
    expect(mount("type=ssh,id=default,required=true,mode=0600")).toMatchObject({ id: "default", required: true, mode: 0o600 });
    expect(mount("target=.")).toMatchObject({ type: "bind", target: ".", readonly: true });
    expect(mount("type=bind,source=/src,target=/dst,rw")).toMatchObject({ readonly: false, source: "/src" });
    expect(mount("type=cache,target=/c,id=mine,ro,from=base,source=/sub,mode=0755,uid=1,gid=2")).toMatchObject({
      id: "mine",
      readonly: true,
      from: "base",
      source: "/sub",
      mode: 0o755,
    });
    expect(mount("type=bind,dst=/a")).toMatchObject({ target: "/a" });
    expect(mount("type=bind,destination=/a,src=b")).toMatchObject({ target: "/a", source: "b" });
  });

  it("reads the GitLab ssh example", () => {
    const [, , run] = body(
      D(
        "FROM alpine",
        "RUN apk add --no-cache openssh-client",
        "RUN mkdir -p -m 0700 ~/.ssh && ssh-keyscan gitlab.com >> ~/.ssh/known_hosts",
        "RUN --mount=type=ssh \\",
        "  ssh -q -T git@gitlab.com 2>&1 | tee /hello",
        '# "Welcome to GitLab, @GITLAB_USERNAME_ASSOCIATED_WITH_SSHKEY" should be printed here',
        "# with the type of build progress is defined as `plain`.",
      ),
    );
    expect(run).toMatchObject({ mounts: [{ type: "ssh" }], command: { text: "ssh -q -T git@gitlab.com 2>&1 | tee /hello" } });
  });

  it("reads --network and --security", () => {
    expect(first(D("FROM python:3.6", "RUN --network=none pip install --find-links wheels mypackage"), "run")).toMatchObject({
      network: "none",
      command: { text: "pip install --find-links wheels mypackage" },
    });
    expect(first(D("FROM x", "RUN --network=host true"), "run").network).toBe("host");
    expect(first(D("FROM x", "RUN --network=default true"), "run").network).toBe("default");
    expect(first(D("FROM x", "RUN true"), "run").network).toBeUndefined();
    expect(first(D("FROM ubuntu", "RUN --security=insecure cat /proc/self/status | grep CapEff"), "run").security).toBe("insecure");
    expect(first(D("FROM x", "RUN --security=sandbox true"), "run").security).toBe("sandbox");
  });
});

describe("CMD", () => {
  it("reads the three forms", () => {
    expect(first(D("FROM x", 'CMD ["executable","param1","param2"]'), "cmd").command).toEqual({
      form: "exec",
      args: ["executable", "param1", "param2"],
    });
    expect(first(D("FROM x", 'CMD ["param1","param2"]'), "cmd").command).toEqual({ form: "exec", args: ["param1", "param2"] });
    expect(first(D("FROM x", "CMD command param1 param2"), "cmd").command).toEqual({ form: "shell", text: "command param1 param2" });
  });
});

describe("LABEL", () => {
  it("gives the labels docker image inspect shows", () => {
    const instructions = body(
      D(
        "FROM x",
        'LABEL "com.example.vendor"="ACME Incorporated"',
        'LABEL com.example.label-with-value="foo"',
        'LABEL version="1.0"',
        'LABEL description="This text illustrates \\',
        'that label-values can span multiple lines."',
        'LABEL multi.label1="value1" multi.label2="value2" other="value3"',
      ),
    );
    const labels: Record<string, string> = {};
    for (const instruction of instructions) {
      const expanded = expandInstruction(instruction as LabelInstruction, {}).instruction;
      for (const pair of expanded.pairs) labels[pair.key] = pair.value;
    }
    expect(labels).toEqual({
      "com.example.vendor": "ACME Incorporated",
      "com.example.label-with-value": "foo",
      version: "1.0",
      description: "This text illustrates that label-values can span multiple lines.",
      "multi.label1": "value1",
      "multi.label2": "value2",
      other: "value3",
    });
  });

  it("reads multiple labels over continuation lines", () => {
    const label = first(D("FROM x", 'LABEL multi.label1="value1" \\', '      multi.label2="value2" \\', '      other="value3"'), "label");
    expect(label.pairs).toEqual([
      { key: "multi.label1", value: '"value1"' },
      { key: "multi.label2", value: '"value2"' },
      { key: "other", value: '"value3"' },
    ]);
    expect(label.location).toEqual({ line: 2, column: 1, endLine: 4 });
  });

  it("expands in double quotes, not in single quotes", () => {
    const label = first(D("FROM x", "LABEL a=\"foo-$ENV_VAR\" b='foo-$ENV_VAR'"), "label");
    expect(expandInstruction(label, { ENV_VAR: "x" }).instruction.pairs).toEqual([
      { key: "a", value: "foo-x" },
      { key: "b", value: "foo-$ENV_VAR" },
    ]);
  });
});

describe("MAINTAINER, EXPOSE, ENV", () => {
  it("reads MAINTAINER", () => {
    expect(first(D("FROM x", "MAINTAINER SvenDowideit@home.org.au"), "maintainer").maintainer).toBe("SvenDowideit@home.org.au");
  });

  it("reads EXPOSE with protocols", () => {
    expect(first(D("FROM x", "EXPOSE 80/udp"), "expose").ports).toEqual(["80/udp"]);
    expect(body(D("FROM x", "EXPOSE 80/tcp", "EXPOSE 80/udp")).map((i) => (i.kind === "expose" ? i.ports : []))).toEqual([
      ["80/tcp"],
      ["80/udp"],
    ]);
    expect(first(D("FROM debian:stable", "EXPOSE 80 443"), "expose").ports).toEqual(["443", "80"]);
  });

  it("reads ENV with quotes and escaped spaces", () => {
    const env = (line: string) => expandInstruction(first(D("FROM x", line), "env"), {}).instruction.pairs;
    expect(env('ENV MY_NAME="John Doe"')).toEqual([{ key: "MY_NAME", value: "John Doe" }]);
    expect(env("ENV MY_DOG=Rex\\ The\\ Dog")).toEqual([{ key: "MY_DOG", value: "Rex The Dog" }]);
    expect(env("ENV MY_CAT=fluffy")).toEqual([{ key: "MY_CAT", value: "fluffy" }]);
    const multi = first(D("FROM x", 'ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog \\', "    MY_CAT=fluffy"), "env");
    expect(expandInstruction(multi, {}).instruction.pairs).toEqual([
      { key: "MY_NAME", value: "John Doe" },
      { key: "MY_DOG", value: "Rex The Dog" },
      { key: "MY_CAT", value: "fluffy" },
    ]);
  });

  it("reads the legacy ENV key value syntax", () => {
    const legacy = first(D("FROM x", "ENV MY_VAR my-value"), "env");
    expect(legacy).toMatchObject({ legacy: true, pairs: [{ key: "MY_VAR", value: "my-value" }] });
    const one = first(D("FROM x", "ENV ONE TWO= THREE=world"), "env");
    expect(expandInstruction(one, {}).instruction.pairs).toEqual([{ key: "ONE", value: "TWO= THREE=world" }]);
  });

  it("reads ENV for a single RUN and ARG instead", () => {
    expect(first(D("FROM x", "RUN DEBIAN_FRONTEND=noninteractive apt-get update && apt-get install -y ..."), "run").command).toEqual({
      form: "shell",
      text: "DEBIAN_FRONTEND=noninteractive apt-get update && apt-get install -y ...",
    });
    expect(first(D("FROM x", "ARG DEBIAN_FRONTEND=noninteractive"), "arg").args).toEqual([
      { name: "DEBIAN_FRONTEND", default: "noninteractive" },
    ]);
  });
});

describe("ADD", () => {
  it("reads sources and destination", () => {
    expect(first(D("FROM x", "ADD file1.txt file2.txt /usr/src/things/"), "add")).toMatchObject({
      sources: ["file1.txt", "file2.txt"],
      dest: "/usr/src/things/",
      json: false,
    });
    expect(first(D("FROM x", "ADD https://example.com/archive.zip /usr/src/things/"), "add").sources).toEqual([
      "https://example.com/archive.zip",
    ]);
    expect(first(D("FROM x", "ADD git@github.com:user/repo.git /usr/src/things/"), "add").sources).toEqual([
      "git@github.com:user/repo.git",
    ]);
    expect(first(D("FROM x", "ADD git@github.com:moby/buildkit.git#v0.14.1:docs /buildkit-docs"), "add").sources).toEqual([
      "git@github.com:moby/buildkit.git#v0.14.1:docs",
    ]);
    expect(first(D("FROM x", 'ADD ["a file.txt", "/dest dir/"]'), "add")).toMatchObject({
      sources: ["a file.txt"],
      dest: "/dest dir/",
      json: true,
    });
  });

  it("keeps glob patterns for the builder", () => {
    expect(first(D("FROM x", "ADD *.png /dest/"), "add").sources).toEqual(["*.png"]);
    expect(first(D("FROM x", "ADD index.?s /dest/"), "add").sources).toEqual(["index.?s"]);
    expect(first(D("FROM x", "ADD arr[[]0].txt /dest/"), "add").sources).toEqual(["arr[[]0].txt"]);
  });

  it("reads the ADD flags", () => {
    expect(
      first(D("FROM alpine", "ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /buildkit"), "add").keepGitDir,
    ).toBe(true);
    expect(first(D("FROM alpine", "ADD --keep-git-dir https://github.com/moby/buildkit.git /b"), "add").keepGitDir).toBe(true);
    expect(first(D("FROM alpine", "ADD https://github.com/moby/buildkit.git /b"), "add").keepGitDir).toBeUndefined();
    expect(first(D("FROM x", "ADD --checksum=be1f38e https://github.com/moby/buildkit.git#v0.26.2 /"), "add").checksum).toBe("be1f38e");
    const sum = "24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d";
    expect(
      first(
        D("FROM x", `ADD --checksum=sha256:${sum} https://mirrors.edge.kernel.org/pub/linux/kernel/Historic/linux-0.01.tar.gz /`),
        "add",
      ),
    ).toMatchObject({
      checksum: `sha256:${sum}`,
      sources: ["https://mirrors.edge.kernel.org/pub/linux/kernel/Historic/linux-0.01.tar.gz"],
    });
    const [unpack, noUnpack, plain] = body(
      D(
        "FROM alpine",
        "ADD --unpack=true https://example.com/archive.tar.gz /download",
        "ADD --unpack=false my-archive.tar.gz .",
        "ADD a.tar.gz .",
      ),
    );
    expect([unpack, noUnpack, plain].map((i) => (i?.kind === "add" ? i.unpack : null))).toEqual([true, false, undefined]);
    expect(first(D("FROM x", "ADD --chown=1:2 --chmod=640 --link --exclude=*.md a /b/"), "add")).toMatchObject({
      chown: "1:2",
      chmod: "640",
      link: true,
      excludes: ["*.md"],
    });
  });
});

describe("COPY", () => {
  it("reads sources, --from and destinations", () => {
    expect(first(D("FROM x", "COPY file1.txt file2.txt /usr/src/things/"), "copy")).toMatchObject({ sources: ["file1.txt", "file2.txt"] });
    const df = parseDockerfile(
      D(
        "FROM golang AS build",
        "WORKDIR /app",
        "RUN --mount=type=bind,target=. go build -o /myapp ./cmd",
        "",
        "COPY --from=build /myapp /usr/bin/",
      ),
    );
    expect(df.stages[0]!.instructions[2]).toMatchObject({ kind: "copy", from: "build", sources: ["/myapp"], dest: "/usr/bin/" });
    expect(first(D("FROM x", "COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf"), "copy").from).toBe("nginx:latest");
    expect(first(D("FROM x", "COPY test.txt rel/"), "copy").dest).toBe("rel/");
  });

  it("builds the stage a COPY --from needs", () => {
    const df = parseDockerfile(
      D(
        "# syntax=docker/dockerfile:1",
        "FROM alpine AS build",
        "COPY . .",
        "RUN apk add clang",
        "RUN clang -o /hello hello.c",
        "",
        "FROM scratch",
        "COPY --from=build /hello /",
      ),
    );
    expect(planStages(df).map((p) => [p.index, p.base, p.dependsOn])).toEqual([
      [0, { kind: "image", ref: "alpine" }, []],
      [1, { kind: "scratch" }, [0]],
    ]);
  });

  it("reads --chmod in octal, symbolic and from an ARG", () => {
    const chmods = body(
      D(
        "FROM x",
        "COPY --chmod=755 app.sh /app/",
        "COPY --chmod=644 file.txt /data/",
        "ARG MODE=440",
        "COPY --chmod=$MODE . .",
        "COPY --chmod=+x script.sh /app/",
        "COPY --chmod=u=rwX,go=rX . /app/",
        "COPY --chmod=g=u config/ /config/",
      ),
    )
      .filter((i): i is CopyInstruction => i.kind === "copy")
      .map((i) => expandInstruction(i, { MODE: "440" }).instruction.chmod);
    expect(chmods).toEqual(["755", "644", "440", "+x", "u=rwX,go=rX", "g=u"]);
  });

  it("reads --chown forms", () => {
    const chowns = body(
      D(
        "FROM x",
        "COPY --chown=55:mygroup files* /somedir/",
        "COPY --chown=bin files* /somedir/",
        "COPY --chown=1 files* /somedir/",
        "COPY --chown=10:11 files* /somedir/",
        "COPY --chown=myuser:mygroup --chmod=644 files* /somedir/",
      ),
    ).map((i) => (i.kind === "copy" ? [i.chown, i.chmod, i.sources] : []));
    expect(chowns).toEqual([
      ["55:mygroup", undefined, ["files*"]],
      ["bin", undefined, ["files*"]],
      ["1", undefined, ["files*"]],
      ["10:11", undefined, ["files*"]],
      ["myuser:mygroup", "644", ["files*"]],
    ]);
  });

  it("reads --link, --parents and --exclude", () => {
    expect(first(D("# syntax=docker/dockerfile:1", "FROM alpine", "COPY --link /foo /bar"), "copy")).toMatchObject({
      link: true,
      sources: ["/foo"],
    });
    expect(first(D("FROM x", "COPY --link=false /foo /bar"), "copy").link).toBe(false);
    const [noParents, parents, dot, globstar] = body(
      D(
        "FROM scratch",
        "COPY ./x/a.txt ./y/a.txt /no_parents/",
        "COPY --parents ./x/a.txt ./y/a.txt /parents/",
        "COPY --parents ./x/./y/*.txt /parents/",
        "COPY --parents ./src/**/*.txt /parents/",
      ),
    );
    expect([noParents, parents, dot, globstar].map((i) => (i?.kind === "copy" ? [i.parents, i.sources] : []))).toEqual([
      [false, ["./x/a.txt", "./y/a.txt"]],
      [true, ["./x/a.txt", "./y/a.txt"]],
      [true, ["./x/./y/*.txt"]],
      [true, ["./src/**/*.txt"]],
    ]);
    expect(first(D("FROM scratch", "COPY --exclude=*.txt hom* /mydir/"), "copy").excludes).toEqual(["*.txt"]);
    expect(first(D("FROM scratch", "COPY --exclude=*.txt --exclude=*.md hom* /mydir/"), "copy").excludes).toEqual(["*.txt", "*.md"]);
  });
});

describe("ENTRYPOINT", () => {
  it("reads the exec and shell forms of the examples", () => {
    const [entrypoint, cmd] = body(D("FROM ubuntu", 'ENTRYPOINT ["top", "-b"]', 'CMD ["-c"]'));
    expect(entrypoint).toMatchObject({ command: { form: "exec", args: ["top", "-b"] } });
    expect(cmd).toMatchObject({ command: { form: "exec", args: ["-c"] } });
    expect(first(D("FROM ubuntu", "ENTRYPOINT exec top -b"), "entrypoint").command).toEqual({ form: "shell", text: "exec top -b" });
    const apache = body(
      D(
        "FROM debian:stable",
        "RUN apt-get update && apt-get install -y --force-yes apache2",
        "EXPOSE 80 443",
        'VOLUME ["/var/www", "/var/log/apache2", "/etc/apache2"]',
        'ENTRYPOINT ["/usr/sbin/apache2ctl", "-D", "FOREGROUND"]',
      ),
    );
    expect(apache.map((i) => i.kind)).toEqual(["run", "expose", "volume", "entrypoint"]);
    expect(apache[2]).toMatchObject({ paths: ["/var/www", "/var/log/apache2", "/etc/apache2"], json: true });
  });

  it("treats a leading -- as the end of (no) flags, as BuildKit does", () => {
    // `CMD -- --ignored-param1`: BuildKit's flag reader consumes the `--`.
    const [entrypoint, cmd] = body(D("FROM ubuntu", "ENTRYPOINT top -b", "CMD -- --ignored-param1"));
    expect(entrypoint).toMatchObject({ command: { form: "shell", text: "top -b" } });
    expect(cmd).toMatchObject({ command: { form: "shell", text: "--ignored-param1" }, flags: [] });
  });
});

describe("VOLUME, USER, WORKDIR", () => {
  it("reads VOLUME as JSON or a list", () => {
    expect(first(D("FROM x", 'VOLUME ["/data"]'), "volume")).toMatchObject({ paths: ["/data"], json: true });
    expect(first(D("FROM x", 'VOLUME ["/var/log/"]'), "volume").paths).toEqual(["/var/log/"]);
    expect(first(D("FROM x", "VOLUME /var/log"), "volume").paths).toEqual(["/var/log"]);
    expect(first(D("FROM x", "VOLUME /var/log /var/db"), "volume")).toMatchObject({ paths: ["/var/log", "/var/db"], json: false });
    const myvol = body(D("FROM ubuntu", "RUN mkdir /myvol", 'RUN echo "hello world" > /myvol/greeting', "VOLUME /myvol"));
    expect(myvol[2]).toMatchObject({ kind: "volume", paths: ["/myvol"] });
  });

  it("reads USER", () => {
    expect(first(D("FROM x", "USER patrick"), "user").user).toBe("patrick");
    expect(first(D("FROM x", "USER 1000:1000"), "user").user).toBe("1000:1000");
    const windows = body(D("FROM microsoft/windowsservercore", "RUN net user /add patrick", "USER patrick"));
    expect(windows[1]).toMatchObject({ kind: "user", user: "patrick" });
  });

  it("reads WORKDIR and expands only variables that are set", () => {
    const dirs = body(D("FROM x", "WORKDIR /a", "WORKDIR b", "WORKDIR c", "RUN pwd"));
    expect(dirs.map((i) => (i.kind === "workdir" ? i.path : i.kind))).toEqual(["/a", "b", "c", "run"]);
    const workdir = body(D("FROM x", "ENV DIRPATH=/path", "WORKDIR $DIRPATH/$DIRNAME", "RUN pwd"))[1]!;
    // The reference prints "/path/$DIRNAME"; BuildKit expands an unset variable to nothing.
    const expanded = expandInstruction(workdir, { DIRPATH: "/path" });
    expect(expanded.instruction).toMatchObject({ path: "/path/" });
    expect([...expanded.unset]).toEqual(["DIRNAME"]);
  });
});

describe("ARG", () => {
  it("reads declarations with and without defaults", () => {
    expect(body(D("FROM busybox", "ARG user1", "ARG buildno", "# ..."))).toMatchObject([
      { kind: "arg", args: [{ name: "user1" }] },
      { kind: "arg", args: [{ name: "buildno" }] },
    ]);
    expect(body(D("FROM busybox", "ARG user1=someuser", "ARG buildno=1"))).toMatchObject([
      { args: [{ name: "user1", default: "someuser" }] },
      { args: [{ name: "buildno", default: "1" }] },
    ]);
    expect(first(D("FROM x", "ARG a b=2 c"), "arg").args).toEqual([{ name: "a" }, { name: "b", default: "2" }, { name: "c" }]);
  });

  it("scopes an ARG from its line on (the username example)", () => {
    const [user1, arg, user2] = body(D("FROM busybox", "USER ${username:-some_user}", "ARG username", "USER $username"));
    const buildArgs = { username: "what_user" };
    const env = new Map<string, string>();
    expect(expandInstruction(user1!, env).instruction).toMatchObject({ user: "some_user" });
    if (arg?.kind !== "arg") throw new Error("expected ARG");
    const value = resolveArg(arg.args[0]!, { buildArgs, env }).value;
    if (value !== undefined) env.set("username", value);
    expect(expandInstruction(user2!, env).instruction).toMatchObject({ user: "what_user" });
  });

  it("lets ENV override ARG and default from it", () => {
    const steps = (lines: string[], buildArgs: Record<string, string>) => {
      const env = new Map<string, string>();
      for (const instruction of body(D("FROM ubuntu", ...lines))) {
        if (instruction.kind === "arg") {
          for (const decl of instruction.args) {
            const v = resolveArg(decl, { buildArgs, env }).value;
            if (v !== undefined) env.set(decl.name, v);
          }
        } else if (instruction.kind === "env") {
          for (const p of expandInstruction(instruction, env).instruction.pairs) env.set(p.key, p.value);
        }
      }
      return env.get("CONT_IMG_VER");
    };
    expect(steps(["ARG CONT_IMG_VER", "ENV CONT_IMG_VER=v1.0.0", "RUN echo $CONT_IMG_VER"], { CONT_IMG_VER: "v2.0.1" })).toBe("v1.0.0");
    expect(steps(["ARG CONT_IMG_VER", "ENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}", "RUN echo $CONT_IMG_VER"], {})).toBe("v1.0.0");
    expect(steps(["ARG CONT_IMG_VER", "ENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}"], { CONT_IMG_VER: "v2.0.1" })).toBe("v2.0.1");
  });

  it("reports which ARGs a step uses, for the cache", () => {
    const [, envFromArg] = body(D("FROM ubuntu", "ARG CONT_IMG_VER", "ENV CONT_IMG_VER=$CONT_IMG_VER", "RUN echo $CONT_IMG_VER"));
    expect([...expandInstruction(envFromArg!, { CONT_IMG_VER: "1" }).used]).toEqual(["CONT_IMG_VER"]);
    const [, constant] = body(D("FROM ubuntu", "ARG CONT_IMG_VER", "ENV CONT_IMG_VER=hello", "RUN echo $CONT_IMG_VER"));
    expect([...expandInstruction(constant!, { CONT_IMG_VER: "1" }).used]).toEqual([]);
  });

  it("exposes a global platform ARG in a stage when redeclared", () => {
    const df = parseDockerfile(D("FROM alpine", "ARG TARGETPLATFORM", 'RUN echo "I\'m building for $TARGETPLATFORM"'));
    const arg = df.stages[0]!.instructions[0]!;
    if (arg.kind !== "arg") throw new Error("expected ARG");
    const globals = resolveGlobalArgs(df, {
      platform: new Map([
        ["TARGETPLATFORM", "linux/arm/v7"],
        ["BUILDPLATFORM", "linux/amd64"],
      ]),
    });
    expect(resolveArg(arg.args[0]!, { globalArgs: globals }).value).toBe("linux/arm/v7");
  });

  it("reads the keep-git-dir example", () => {
    const [workdir, run] = body(
      D(
        "# syntax=docker/dockerfile:1",
        "FROM alpine",
        "WORKDIR /src",
        "RUN --mount=target=. \\",
        "  make REVISION=$(git rev-parse HEAD) build",
      ),
    );
    expect(workdir).toMatchObject({ kind: "workdir", path: "/src" });
    expect(run).toMatchObject({ mounts: [{ type: "bind", target: "." }], command: { text: "make REVISION=$(git rev-parse HEAD) build" } });
  });
});

describe("ONBUILD", () => {
  it("stores triggers", () => {
    const [add, run] = body(D("FROM x", "ONBUILD ADD . /app/src", "ONBUILD RUN /usr/local/bin/python-build --dir /app/src"));
    expect(add).toMatchObject({
      kind: "onbuild",
      expression: "ADD . /app/src",
      trigger: { kind: "add", sources: ["."], dest: "/app/src" },
    });
    expect(run).toMatchObject({ expression: "RUN /usr/local/bin/python-build --dir /app/src", trigger: { kind: "run" } });
  });

  it("allows triggers that copy or mount from stages", () => {
    const [copy, run] = body(
      D(
        "# syntax=docker/dockerfile:1.11",
        "FROM alpine AS baseimage",
        "ONBUILD COPY --from=build /usr/bin/app /app",
        "ONBUILD RUN --mount=from=config,target=/opt/appconfig ...",
      ),
    );
    expect(copy).toMatchObject({ trigger: { kind: "copy", from: "build" } });
    expect(run).toMatchObject({ trigger: { kind: "run", mounts: [{ from: "config", target: "/opt/appconfig" }] } });
  });

  it("refuses ONBUILD ONBUILD, FROM and MAINTAINER", () => {
    expect(parseError(D("FROM x", "ONBUILD ONBUILD RUN x")).detail).toBe("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    expect(parseError(D("FROM x", "ONBUILD FROM y")).detail).toBe("FROM isn't allowed as an ONBUILD trigger");
    expect(parseError(D("FROM x", "onbuild maintainer me")).detail).toBe("MAINTAINER isn't allowed as an ONBUILD trigger");
  });
});

describe("STOPSIGNAL and HEALTHCHECK", () => {
  it("reads STOPSIGNAL", () => {
    expect(first(D("FROM x", "STOPSIGNAL SIGKILL"), "stopsignal").signal).toBe("SIGKILL");
    expect(first(D("FROM x", "STOPSIGNAL 9"), "stopsignal").signal).toBe("9");
  });

  it("reads the HEALTHCHECK example", () => {
    const hc = first(D("FROM x", "HEALTHCHECK --interval=5m --timeout=3s \\", "  CMD curl -f http://localhost/ || exit 1"), "healthcheck");
    expect(hc).toMatchObject({
      test: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
      command: { form: "shell", text: "curl -f http://localhost/ || exit 1" },
      interval: 300e9,
      timeout: 3e9,
      startPeriod: 0,
      startInterval: 0,
      retries: 0,
    });
  });

  it("reads every option, the exec form and NONE", () => {
    const hc = first(
      D("FROM x", 'HEALTHCHECK --interval=30s --timeout=30s --start-period=1m30s --start-interval=5s --retries=3 CMD ["/bin/check", "-q"]'),
      "healthcheck",
    );
    expect(hc).toMatchObject({
      test: ["CMD", "/bin/check", "-q"],
      interval: 30e9,
      timeout: 30e9,
      startPeriod: 90e9,
      startInterval: 5e9,
      retries: 3,
    });
    const none = first(D("FROM x", "HEALTHCHECK NONE"), "healthcheck");
    expect(none).toMatchObject({ test: ["NONE"], interval: 0, retries: 0 });
    expect(none.command).toBeUndefined();
    expect(first(D("FROM x", "HEALTHCHECK CMD /bin/check-running"), "healthcheck").test).toEqual(["CMD-SHELL", "/bin/check-running"]);
  });
});

describe("SHELL", () => {
  it("reads the Windows examples", () => {
    const instructions = body(
      D(
        "FROM microsoft/windowsservercore",
        "",
        "# Executed as cmd /S /C echo default",
        "RUN echo default",
        "",
        "# Executed as cmd /S /C powershell -command Write-Host default",
        "RUN powershell -command Write-Host default",
        "",
        "# Executed as powershell -command Write-Host hello",
        'SHELL ["powershell", "-command"]',
        "RUN Write-Host hello",
        "",
        "# Executed as cmd /S /C echo hello",
        'SHELL ["cmd", "/S", "/C"]',
        "RUN echo hello",
      ),
    );
    expect(instructions.map((i) => (i.kind === "shell" ? i.shell : i.kind === "run" ? i.command : null))).toEqual([
      { form: "shell", text: "echo default" },
      { form: "shell", text: "powershell -command Write-Host default" },
      ["powershell", "-command"],
      { form: "shell", text: "Write-Host hello" },
      ["cmd", "/S", "/C"],
      { form: "shell", text: "echo hello" },
    ]);
  });

  it("reads the exec form with escaped quotes and backslashes", () => {
    const run = first(D("FROM x", 'RUN ["powershell", "-command", "Execute-MyCmdlet", "-param1 \\"c:\\\\foo.txt\\""]'), "run");
    expect(run.command).toEqual({ form: "exec", args: ["powershell", "-command", "Execute-MyCmdlet", '-param1 "c:\\foo.txt"'] });
    const shellForm = first(D("FROM x", 'RUN powershell -command Execute-MyCmdlet -param1 "c:\\foo.txt"'), "run");
    expect(shellForm.command).toEqual({ form: "shell", text: 'powershell -command Execute-MyCmdlet -param1 "c:\\foo.txt"' });
  });

  it("reads the escape=` PowerShell example", () => {
    const df = parseDockerfile(
      D(
        "# escape=`",
        "",
        "FROM microsoft/nanoserver",
        'SHELL ["powershell","-command"]',
        "RUN New-Item -ItemType Directory C:\\Example",
        "ADD Execute-MyCmdlet.ps1 c:\\example\\",
        "RUN c:\\example\\Execute-MyCmdlet -sample 'hello world'",
      ),
    );
    expect(df.stages[0]!.instructions.map((i) => (i.kind === "run" ? i.command : i.kind === "add" ? [i.sources, i.dest] : i.kind))).toEqual(
      [
        "shell",
        { form: "shell", text: "New-Item -ItemType Directory C:\\Example" },
        [["Execute-MyCmdlet.ps1"], "c:\\example\\"],
        { form: "shell", text: "c:\\example\\Execute-MyCmdlet -sample 'hello world'" },
      ],
    );
  });

  it("requires JSON", () => {
    expect(parseError(D("FROM x", "SHELL powershell -command")).detail).toBe("SHELL requires the arguments to be in JSON form");
  });
});

describe("Here-documents", () => {
  it("runs a multi-line script with an interpreter", () => {
    const run = first(
      D(
        "# syntax=docker/dockerfile:1",
        "FROM debian",
        "RUN <<EOT bash",
        "  set -ex",
        "  apt-get update",
        "  apt-get install -y vim",
        "EOT",
      ),
      "run",
    );
    expect(run.command).toEqual({ form: "shell", text: "<<EOT bash" });
    expect(run.heredocs[0]).toMatchObject({ name: "EOT", content: "  set -ex\n  apt-get update\n  apt-get install -y vim\n" });
    expect(runScript(run)).toEqual({ script: "<<EOT bash\n  set -ex\n  apt-get update\n  apt-get install -y vim\nEOT" });
    expect(run.location).toEqual({ line: 3, column: 1, endLine: 7 });
  });

  it("runs a heredoc alone with the default shell", () => {
    const run = first(D("# syntax=docker/dockerfile:1", "FROM debian", "RUN <<EOT", "  mkdir -p foo/bar", "EOT"), "run");
    expect(runScript(run)).toEqual({ script: "  mkdir -p foo/bar\n" });
  });

  it("runs a heredoc with a shebang as a file", () => {
    const run = first(
      D("# syntax=docker/dockerfile:1", "FROM python:3.6", "RUN <<EOT", "#!/usr/bin/env python", 'print("hello world")', "EOT"),
      "run",
    );
    expect(runScript(run)).toEqual({
      script: "/dev/pipes/EOT",
      file: { path: "/dev/pipes/EOT", content: '#!/usr/bin/env python\nprint("hello world")\n' },
    });
    expect(runScript(run, { os: "windows" })).toEqual({ script: '#!/usr/bin/env python\nprint("hello world")\n' });
  });

  it("reads several here-documents on one line", () => {
    const run = first(
      D(
        "# syntax=docker/dockerfile:1",
        "FROM alpine",
        "RUN <<FILE1 cat > file1 && <<FILE2 cat > file2",
        "I am",
        "first",
        "FILE1",
        "I am",
        "second",
        "FILE2",
      ),
      "run",
    );
    expect(run.heredocs.map((h) => [h.name, h.content])).toEqual([
      ["FILE1", "I am\nfirst\n"],
      ["FILE2", "I am\nsecond\n"],
    ]);
    expect(runScript(run)?.script).toBe("<<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2");
  });

  it("creates inline files with COPY", () => {
    const copy = first(D("# syntax=docker/dockerfile:1", "FROM alpine", "COPY <<EOF greeting.txt", "hello world", "EOF"), "copy");
    expect(copy).toMatchObject({
      sources: [],
      inlineSources: [{ name: "EOF", content: "hello world\n", expand: true }],
      dest: "greeting.txt",
    });
  });

  it("expands variables when the delimiter is not quoted, strips tabs with <<-", () => {
    const df = parseDockerfile(
      D(
        "# syntax=docker/dockerfile:1",
        "FROM alpine",
        "ARG FOO=bar",
        "COPY <<-EOT /script.sh",
        '  echo "hello ${FOO}"',
        "EOT",
        "ENTRYPOINT ash /script.sh",
      ),
    );
    const [arg, copy, entrypoint] = df.stages[0]!.instructions;
    if (arg?.kind !== "arg" || copy?.kind !== "copy") throw new Error("unexpected instructions");
    const env = new Map([["FOO", resolveArg(arg.args[0]!, {}).value!]]);
    const expanded = expandInstruction(copy, env);
    expect(expanded.instruction.inlineSources).toEqual([{ name: "EOT", content: '  echo "hello bar"\n', expand: true }]);
    expect([...expanded.used]).toEqual(["FOO"]);
    expect(entrypoint).toMatchObject({ command: { form: "shell", text: "ash /script.sh" } });
  });

  it("does not expand when any part of the delimiter is quoted", () => {
    const copy = body(
      D("# syntax=docker/dockerfile:1", "FROM alpine", "ARG FOO=bar", 'COPY <<-"EOT" /script.sh', '  echo "hello ${FOO}"', "EOT"),
    )[1] as CopyInstruction;
    const expanded = expandInstruction(copy, { FOO: "bar" });
    expect(expanded.instruction.inlineSources).toEqual([{ name: "EOT", content: '  echo "hello ${FOO}"\n', expand: false }]);
    expect(expanded.used.size).toBe(0);
  });
});
