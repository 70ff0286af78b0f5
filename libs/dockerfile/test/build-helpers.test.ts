// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally.
// What the builder calls at build time: expandInstruction, runScript,
// normalizeExposedPorts and the ARG scoping helpers.

import { describe, expect, it } from "vitest";
import {
  type AddInstruction,
  DockerfileError,
  expandInstruction,
  isPredefinedArg,
  normalizeExposedPorts,
  PLATFORM_ARGS,
  parseDockerfile,
  platformArgs,
  resolveArg,
  resolveGlobalArgs,
  runScript,
} from "../src/index.js";
import { body, D, first, thrown } from "./helpers.js";

describe("expandInstruction", () => {
  const env = new Map([
    ["APP", "/app"],
    ["USER", "app"],
    ["V", "1.2"],
    ["PORTS", "80 443"],
  ]);

  it("expands COPY sources, destination, --chown and --chmod but not --from or --exclude", () => {
    const copy = first(
      D("FROM x", "COPY --from=build --chown=$USER:$USER --chmod=${MODE:-644} --exclude=$APP/*.md $APP/src ${APP}/dst/"),
      "copy",
    );
    const r = expandInstruction(copy, env);
    expect(r.instruction).toMatchObject({
      from: "build",
      chown: "app:app",
      chmod: "644",
      excludes: ["$APP/*.md"],
      sources: ["/app/src"],
      dest: "/app/dst/",
    });
    expect([...r.used].sort()).toEqual(["APP", "USER"]);
    expect([...r.unset]).toEqual(["MODE"]);
    // The parsed instruction is left as it was.
    expect(copy.sources).toEqual(["$APP/src"]);
  });

  it("expands ADD --checksum and JSON-form paths", () => {
    const add = first(D("FROM x", 'ADD --checksum=sha256:${SUM} ["https://example.com/v$V.tgz", "$APP/"]'), "add");
    const r = expandInstruction(add, { ...Object.fromEntries(env), SUM: "abc" });
    expect(r.instruction).toMatchObject({ checksum: "sha256:abc", sources: ["https://example.com/v1.2.tgz"], dest: "/app/" });
  });

  it("expands ENV and LABEL keys and values", () => {
    const label = first(D("FROM x", 'LABEL "org.$USER.version"="$V" other=\'$V\''), "label");
    expect(expandInstruction(label, env).instruction.pairs).toEqual([
      { key: "org.app.version", value: "1.2" },
      { key: "other", value: "$V" },
    ]);
  });

  it("expands each EXPOSE word into possibly several ports", () => {
    const expose = first(D("FROM x", "EXPOSE $PORTS 8080/udp"), "expose");
    expect(expandInstruction(expose, env).instruction.ports).toEqual(["80", "443", "8080/udp"]);
  });

  it("expands VOLUME, USER, WORKDIR and STOPSIGNAL", () => {
    const [volume, user, workdir, signal] = body(
      D("FROM x", 'VOLUME ["$APP/data", "/logs"]', "USER ${USER}:${GROUP:-$USER}", "WORKDIR $APP", "STOPSIGNAL ${SIG:-SIGTERM}"),
    );
    expect(expandInstruction(volume!, env).instruction).toMatchObject({ paths: ["/app/data", "/logs"] });
    expect(expandInstruction(user!, env).instruction).toMatchObject({ user: "app:app" });
    expect(expandInstruction(workdir!, env).instruction).toMatchObject({ path: "/app" });
    expect(expandInstruction(signal!, env).instruction).toMatchObject({ signal: "SIGTERM" });
  });

  it("expands FROM with the global ARGs", () => {
    const df = parseDockerfile(D("ARG BASE=alpine", "ARG TAG=3.20", "FROM --platform=$BUILDPLATFORM ${BASE}:${TAG}"));
    const globals = resolveGlobalArgs(df, { platform: platformArgs({ os: "linux", architecture: "amd64" }) });
    const r = expandInstruction(df.stages[0]!.from, globals);
    expect(r.instruction).toMatchObject({ image: "alpine:3.20", platform: "linux/amd64" });
    expect([...r.used].sort()).toEqual(["BASE", "BUILDPLATFORM", "TAG"]);
  });

  it("expands here-document sources only when their delimiter is unquoted", () => {
    const add = body(D("FROM x", "ADD <<A <<'B' /dst/", "$V", "A", "$V", "B"))[0] as AddInstruction;
    expect(expandInstruction(add, env).instruction.inlineSources).toEqual([
      { name: "A", content: "1.2\n", expand: true },
      { name: "B", content: "$V\n", expand: false },
    ]);
  });

  it("uses the Dockerfile's escape token", () => {
    const df = parseDockerfile(D("# escape=`", "FROM x", "WORKDIR C:\\Users\\`$USER"));
    const workdir = df.stages[0]!.instructions[0]!;
    expect(expandInstruction(workdir, env, { escapeToken: df.escapeToken }).instruction).toMatchObject({ path: "C:\\Users\\$USER" });
  });

  it("leaves commands, ARG, ONBUILD and HEALTHCHECK alone", () => {
    for (const line of [
      "RUN echo $V",
      "CMD echo $V",
      'ENTRYPOINT ["$V"]',
      "ARG A=$V",
      "ONBUILD RUN echo $V",
      "HEALTHCHECK CMD echo $V",
      'SHELL ["$V"]',
    ]) {
      const instruction = first(D("FROM x", line), body(D("FROM x", line))[0]!.kind);
      const r = expandInstruction(instruction, env);
      expect(r.instruction, line).toEqual(instruction);
      expect(r.used.size, line).toBe(0);
    }
  });

  it("fails with the instruction's location", () => {
    const workdir = body(D("FROM x", "", "WORKDIR ${DIR:?set DIR}"))[0]!;
    const err = thrown(() => expandInstruction(workdir, {})) as DockerfileError;
    expect(err).toBeInstanceOf(DockerfileError);
    expect(err.phase).toBe("expand");
    expect(err.location).toEqual({ line: 3, column: 1, endLine: 3 });
    expect(err.message).toBe('dockerfile error on line 3: failed to process "${DIR:?set DIR}": DIR: set DIR');
  });
});

describe("runScript", () => {
  it("is undefined without here-documents", () => {
    expect(runScript(first(D("FROM x", "RUN echo hi"), "run"))).toBeUndefined();
  });

  it("strips tabs for <<- when the heredoc is the whole command", () => {
    const run = first(D("FROM x", "RUN <<-EOF", "\tif true; then", "\t\techo yes", "\tfi", "\tEOF"), "run");
    expect(runScript(run)).toEqual({ script: "if true; then\necho yes\nfi\n" });
  });

  it("hands the shell the raw bodies when the heredoc is part of a command", () => {
    const run = first(D("FROM x", "RUN cat <<-EOF > /etc/motd", "\thello", "\tEOF"), "run");
    expect(runScript(run)).toEqual({ script: "cat <<-EOF > /etc/motd\n\thello\nEOF" });
  });

  it("keeps flags out of the script", () => {
    const run = first(D("FROM x", "RUN --mount=type=cache,target=/c <<EOF", "ls /c", "EOF"), "run");
    expect(runScript(run)).toEqual({ script: "ls /c\n" });
  });
});

describe("normalizeExposedPorts", () => {
  it("adds the default protocol and lower-cases it", () => {
    expect(normalizeExposedPorts(["80", "53/UDP", "443/tcp", "132/sctp"])).toEqual(["80/tcp", "53/udp", "443/tcp", "132/sctp"]);
  });

  it("expands ranges and tolerates host parts", () => {
    expect(normalizeExposedPorts(["8000-8002/udp"])).toEqual(["8000/udp", "8001/udp", "8002/udp"]);
    expect(normalizeExposedPorts(["5000-5000"])).toEqual(["5000/tcp"]);
    expect(normalizeExposedPorts(["127.0.0.1:8080:80"])).toEqual(["80/tcp"]);
  });

  it("refuses invalid ports", () => {
    expect(() => normalizeExposedPorts(["http"])).toThrow("invalid containerPort: http");
    expect(() => normalizeExposedPorts(["70000"])).toThrow("invalid containerPort: 70000");
    expect(() => normalizeExposedPorts(["90-80"])).toThrow("invalid containerPort: 90-80");
    expect(() => normalizeExposedPorts(["80/icmp"])).toThrow("invalid proto: icmp");
    expect(() => normalizeExposedPorts(["/tcp"])).toThrow("no port specified");
  });
});

describe("ARG scoping", () => {
  it("lists the predefined and platform ARGs", () => {
    expect(isPredefinedArg("HTTP_PROXY")).toBe(true);
    expect(isPredefinedArg("no_proxy")).toBe(true);
    expect(isPredefinedArg("all_proxy")).toBe(true);
    expect(isPredefinedArg("PATH")).toBe(false);
    expect(PLATFORM_ARGS).toHaveLength(8);
  });

  it("derives the platform ARGs", () => {
    expect(
      Object.fromEntries(platformArgs({ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm", variant: "v7" })),
    ).toEqual({
      TARGETPLATFORM: "linux/arm/v7",
      TARGETOS: "linux",
      TARGETARCH: "arm",
      TARGETVARIANT: "v7",
      BUILDPLATFORM: "linux/amd64",
      BUILDOS: "linux",
      BUILDARCH: "amd64",
      BUILDVARIANT: "",
    });
  });

  it("resolves global ARGs in order, build args winning over defaults", () => {
    const df = parseDockerfile(D("ARG A=1", "ARG B=${A}2", "ARG C", "ARG D=$TARGETARCH", "FROM x"));
    const platform = platformArgs({ os: "linux", architecture: "arm64" });
    expect(Object.fromEntries(resolveGlobalArgs(df, { platform }))).toMatchObject({ A: "1", B: "12", D: "arm64" });
    expect(resolveGlobalArgs(df).has("C")).toBe(false);
    const overridden = resolveGlobalArgs(df, { platform, buildArgs: { A: "9", C: "c", TARGETARCH: "riscv64" } });
    expect(Object.fromEntries(overridden)).toMatchObject({ A: "9", B: "92", C: "c", D: "riscv64", TARGETARCH: "riscv64" });
  });

  it("reports a bad global default at its line", () => {
    const df = parseDockerfile(D("ARG A=${", "FROM x"));
    const err = thrown(() => resolveGlobalArgs(df)) as DockerfileError;
    expect(err).toBeInstanceOf(DockerfileError);
    expect(err.line).toBe(1);
  });

  it("resolves a stage ARG: build arg, else default, else global", () => {
    expect(resolveArg({ name: "A", default: "d" }, { buildArgs: { A: "b" } }).value).toBe("b");
    expect(resolveArg({ name: "A", default: "${B}-d" }, { env: { B: "x" } })).toMatchObject({ value: "x-d" });
    expect([...resolveArg({ name: "A", default: "${B}-d" }, { env: { B: "x" } }).used]).toEqual(["B"]);
    expect(resolveArg({ name: "A" }, { globalArgs: new Map([["A", "g"]]) }).value).toBe("g");
    expect(resolveArg({ name: "A", default: "d" }, { globalArgs: new Map([["A", "g"]]) }).value).toBe("d");
    expect(resolveArg({ name: "A" }, {}).value).toBeUndefined();
    expect(resolveArg({ name: "A", default: '"quoted value"' }, {}).value).toBe("quoted value");
  });
});
