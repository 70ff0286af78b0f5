// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally.
// Dockerfiles in the styles people actually write: official-image shell
// chains, multi-stage builds with cache mounts, cross-compilation, Windows.

import { describe, expect, it } from "vitest";
import {
  type EnvInstruction,
  expandInstruction,
  type Instruction,
  parseDockerfile,
  planStages,
  platformArgs,
  resolveArg,
  resolveGlobalArgs,
  runScript,
  type Stage,
} from "../src/index.js";
import { D } from "./helpers.js";

/** Walks a stage the way a builder does, returning the final environment. */
function stageEnv(stage: Stage, globals: Map<string, string>, buildArgs: Record<string, string> = {}): Map<string, string> {
  const env = new Map<string, string>();
  for (const instruction of stage.instructions) {
    if (instruction.kind === "arg") {
      for (const decl of instruction.args) {
        const { value } = resolveArg(decl, { buildArgs, globalArgs: globals, env });
        if (value !== undefined) env.set(decl.name, value);
      }
    } else if (instruction.kind === "env") {
      for (const p of expandInstruction(instruction as EnvInstruction, env).instruction.pairs) env.set(p.key, p.value);
    }
  }
  return env;
}

const kinds = (instructions: readonly Instruction[]) => instructions.map((i) => i.kind);

describe("real-world Dockerfiles", () => {
  it("reads a Node.js multi-stage build", () => {
    const df = parseDockerfile(
      D(
        "# syntax=docker/dockerfile:1.7",
        "",
        "ARG NODE_VERSION=20.11.1",
        "",
        "FROM node:${NODE_VERSION}-alpine AS base",
        "WORKDIR /usr/src/app",
        "",
        "FROM base AS deps",
        "RUN --mount=type=bind,source=package.json,target=package.json \\",
        "    --mount=type=bind,source=package-lock.json,target=package-lock.json \\",
        "    --mount=type=cache,target=/root/.npm \\",
        "    npm ci --omit=dev",
        "",
        "FROM deps AS build",
        "RUN --mount=type=cache,target=/root/.npm npm ci",
        "COPY . .",
        "RUN npm run build",
        "",
        "FROM base AS final",
        "ENV NODE_ENV production",
        "USER node",
        "COPY package.json .",
        "COPY --from=deps /usr/src/app/node_modules ./node_modules",
        "COPY --from=build /usr/src/app/dist ./dist",
        "EXPOSE 3000",
        "HEALTHCHECK --interval=30s --timeout=5s --retries=3 \\",
        "  CMD wget -qO- http://localhost:3000/health || exit 1",
        'CMD ["node", "dist/index.js"]',
      ),
    );
    expect(df.stages.map((s) => s.name)).toEqual(["base", "deps", "build", "final"]);
    expect(kinds(df.stages[3]!.instructions)).toEqual(["env", "user", "copy", "copy", "copy", "expose", "healthcheck", "cmd"]);
    expect(df.stages[1]!.instructions[0]).toMatchObject({
      mounts: [
        { type: "bind", source: "package.json", target: "package.json" },
        { type: "bind", source: "package-lock.json", target: "package-lock.json" },
        { type: "cache", target: "/root/.npm" },
      ],
      command: { form: "shell", text: "npm ci --omit=dev" },
      location: { line: 9, endLine: 12 },
    });
    expect(planStages(df).map((p) => [p.name, p.dependsOn])).toEqual([
      ["base", []],
      ["deps", [0]],
      ["build", [1]],
      ["final", [0, 1, 2]],
    ]);
    expect(planStages(df)[0]!.base).toEqual({ kind: "image", ref: "node:20.11.1-alpine" });
    expect(stageEnv(df.stages[3]!, resolveGlobalArgs(df)).get("NODE_ENV")).toBe("production");
  });

  it("reads an official-image style shell chain with comments and tabs", () => {
    const df = parseDockerfile(
      D(
        "FROM debian:bookworm-slim",
        "",
        "ENV PG_MAJOR 16",
        "ENV PATH $PATH:/usr/lib/postgresql/$PG_MAJOR/bin",
        "",
        "RUN set -eux; \\",
        "\tapt-get update; \\",
        "# gosu for easy step-down from root",
        "\tapt-get install -y --no-install-recommends \\",
        "\t\tca-certificates \\",
        "\t\tgosu \\",
        "\t; \\",
        "\trm -rf /var/lib/apt/lists/*; \\",
        "# verify that the binary works",
        "\tgosu nobody true",
        "",
        "VOLUME /var/lib/postgresql/data",
        "STOPSIGNAL SIGINT",
        "EXPOSE 5432",
        'CMD ["postgres"]',
      ),
    );
    const [pgMajor, path, run] = df.stages[0]!.instructions;
    expect(pgMajor).toMatchObject({ kind: "env", legacy: true, pairs: [{ key: "PG_MAJOR", value: "16" }] });
    const env = new Map([
      ["PATH", "/usr/bin:/bin"],
      ["PG_MAJOR", "16"],
    ]);
    expect(expandInstruction(path!, env).instruction).toMatchObject({
      pairs: [{ key: "PATH", value: "/usr/bin:/bin:/usr/lib/postgresql/16/bin" }],
    });
    expect(run).toMatchObject({
      command: {
        form: "shell",
        text: "set -eux; \tapt-get update; \tapt-get install -y --no-install-recommends \t\tca-certificates \t\tgosu \t; \trm -rf /var/lib/apt/lists/*; \tgosu nobody true",
      },
      location: { line: 6, column: 1, endLine: 15 },
    });
  });

  it("reads a cross-compiling Go build", () => {
    const df = parseDockerfile(
      D(
        "# syntax=docker/dockerfile:1",
        "FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS build",
        "ARG TARGETOS TARGETARCH",
        "ARG VERSION=dev",
        "WORKDIR /src",
        "RUN --mount=type=cache,target=/go/pkg/mod,id=gomod \\",
        "    --mount=type=cache,target=/root/.cache/go-build,id=gobuild-${TARGETARCH} \\",
        "    --mount=type=bind,target=. \\",
        '    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -ldflags "-X main.version=${VERSION}" -o /out/app ./cmd/app',
        "",
        "FROM gcr.io/distroless/static:nonroot",
        "COPY --from=build --chown=65532:65532 /out/app /app",
        "USER 65532:65532",
        'ENTRYPOINT ["/app"]',
      ),
    );
    const globals = resolveGlobalArgs(df, {
      platform: platformArgs({ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm64" }),
    });
    const plan = planStages(df, { globalArgs: globals });
    expect(plan.map((p) => [p.index, p.platform, p.dependsOn])).toEqual([
      [0, "linux/amd64", []],
      [1, undefined, [0]],
    ]);
    const env = stageEnv(df.stages[0]!, globals, { VERSION: "1.0.0" });
    expect(Object.fromEntries(env)).toEqual({ TARGETOS: "linux", TARGETARCH: "arm64", VERSION: "1.0.0" });
    const run = df.stages[0]!.instructions[3]!;
    const expanded = expandInstruction(run, env);
    expect(expanded.instruction).toMatchObject({ mounts: [{ id: "gomod" }, { id: "gobuild-arm64" }, { target: "." }] });
    expect([...expanded.used]).toEqual(["TARGETARCH"]);
  });

  it("reads an nginx image with an inline config", () => {
    const df = parseDockerfile(
      D(
        "FROM nginx:1.27-alpine",
        'LABEL org.opencontainers.image.title="web" \\',
        '      org.opencontainers.image.source="https://example.com/web"',
        "ARG SERVER_NAME=localhost",
        "COPY <<EOF /etc/nginx/conf.d/default.conf",
        "server {",
        "    listen 80;",
        "    server_name ${SERVER_NAME};",
        '    location / { return 200 "ok\\n"; }',
        "}",
        "EOF",
        "COPY --chmod=755 <<'EOF' /docker-entrypoint.d/99-hello.sh",
        "#!/bin/sh",
        'echo "hello from $HOSTNAME"',
        "EOF",
        "STOPSIGNAL SIGQUIT",
      ),
    );
    const [label, , config, script, signal] = df.stages[0]!.instructions;
    expect(label).toMatchObject({
      kind: "label",
      pairs: [{ key: "org.opencontainers.image.title" }, { key: "org.opencontainers.image.source" }],
    });
    const expandedConfig = expandInstruction(config!, { SERVER_NAME: "example.com" }).instruction;
    expect(expandedConfig).toMatchObject({
      dest: "/etc/nginx/conf.d/default.conf",
      inlineSources: [
        { name: "EOF", content: 'server {\n    listen 80;\n    server_name example.com;\n    location / { return 200 "okn"; }\n}\n' },
      ],
    });
    expect(expandInstruction(script!, {}).instruction).toMatchObject({
      chmod: "755",
      inlineSources: [{ content: '#!/bin/sh\necho "hello from $HOSTNAME"\n', expand: false }],
    });
    expect(signal).toMatchObject({ signal: "SIGQUIT" });
  });

  it("reads a Windows Dockerfile with the backtick escape", () => {
    const df = parseDockerfile(
      D(
        "# escape=`",
        "",
        "FROM mcr.microsoft.com/windows/servercore:ltsc2022",
        'SHELL ["powershell", "-Command", "$ErrorActionPreference = \'Stop\';"]',
        "ENV APP_HOME=C:\\app",
        "WORKDIR $APP_HOME",
        "RUN Invoke-WebRequest -Uri https://example.com/tool.zip -OutFile tool.zip; `",
        "    Expand-Archive tool.zip -DestinationPath C:\\tools; `",
        "    Remove-Item tool.zip",
        "COPY bin\\ C:\\app\\bin\\",
        'CMD ["C:\\\\app\\\\bin\\\\server.exe"]',
      ),
    );
    expect(df.escapeToken).toBe("`");
    const [shell, envInstr, workdir, run, copy, cmd] = df.stages[0]!.instructions;
    expect(shell).toMatchObject({ shell: ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"] });
    const env = new Map<string, string>();
    const expandedEnv = expandInstruction(envInstr!, env, { escapeToken: "`" }).instruction;
    if (expandedEnv.kind === "env") for (const p of expandedEnv.pairs) env.set(p.key, p.value);
    expect(env.get("APP_HOME")).toBe("C:\\app");
    expect(expandInstruction(workdir!, env, { escapeToken: "`" }).instruction).toMatchObject({ path: "C:\\app" });
    expect(run).toMatchObject({
      command: {
        form: "shell",
        text: "Invoke-WebRequest -Uri https://example.com/tool.zip -OutFile tool.zip;     Expand-Archive tool.zip -DestinationPath C:\\tools;     Remove-Item tool.zip",
      },
    });
    expect(expandInstruction(copy!, env, { escapeToken: "`" }).instruction).toMatchObject({ sources: ["bin\\"], dest: "C:\\app\\bin\\" });
    expect(cmd).toMatchObject({ command: { form: "exec", args: ["C:\\app\\bin\\server.exe"] } });
  });

  it("reads a Python image with a heredoc script and a secret", () => {
    const df = parseDockerfile(
      D(
        "FROM python:3.12-slim",
        "ENV PYTHONDONTWRITEBYTECODE=1 \\",
        "    PYTHONUNBUFFERED=1",
        "WORKDIR /app",
        "RUN --mount=type=secret,id=pip_conf,target=/etc/pip.conf \\",
        "    --mount=type=cache,target=/root/.cache/pip \\",
        "    --mount=type=bind,source=requirements.txt,target=requirements.txt \\",
        "    python -m pip install -r requirements.txt",
        "RUN <<EOF",
        "#!/usr/bin/env python3",
        "import compileall",
        "compileall.compile_dir('/app', quiet=1)",
        "EOF",
        "COPY . .",
        "RUN useradd --create-home appuser",
        "USER appuser",
        'CMD ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]',
      ),
    );
    const [envInstr, , pip, compile] = df.stages[0]!.instructions;
    expect(envInstr).toMatchObject({
      pairs: [
        { key: "PYTHONDONTWRITEBYTECODE", value: "1" },
        { key: "PYTHONUNBUFFERED", value: "1" },
      ],
    });
    expect(pip).toMatchObject({
      mounts: [{ type: "secret", id: "pip_conf", target: "/etc/pip.conf", readonly: true }, { type: "cache" }, { type: "bind" }],
    });
    expect(compile?.kind === "run" && runScript(compile)).toEqual({
      script: "/dev/pipes/EOF",
      file: { path: "/dev/pipes/EOF", content: "#!/usr/bin/env python3\nimport compileall\ncompileall.compile_dir('/app', quiet=1)\n" },
    });
  });

  it("reads a builder image with ONBUILD triggers and its downstream use", () => {
    const df = parseDockerfile(
      D(
        "FROM ruby:3.3 AS onbuild-base",
        "RUN bundle config --global frozen 1",
        "WORKDIR /usr/src/app",
        "ONBUILD COPY Gemfile Gemfile.lock ./",
        "ONBUILD RUN bundle install",
        "ONBUILD COPY . .",
        "",
        "FROM onbuild-base",
        'CMD ["./your-daemon-or-script.rb"]',
      ),
    );
    const triggers = df.stages[0]!.instructions.filter((i) => i.kind === "onbuild");
    expect(triggers.map((t) => (t.kind === "onbuild" ? [t.expression, t.trigger?.kind] : []))).toEqual([
      ["COPY Gemfile Gemfile.lock ./", "copy"],
      ["RUN bundle install", "run"],
      ["COPY . .", "copy"],
    ]);
    expect(planStages(df).map((p) => [p.index, p.base])).toEqual([
      [0, { kind: "image", ref: "ruby:3.3" }],
      [1, { kind: "stage", index: 0 }],
    ]);
  });

  it("reads every instruction with lower-case keywords and odd spacing", () => {
    const df = parseDockerfile(
      D(
        "arg   BASE=busybox",
        "from   $BASE   as   Base",
        "maintainer  someone",
        "label  a=b",
        "env    K=V",
        "arg    A",
        "workdir   /w",
        "user   1000",
        "copy   a   b",
        "add    c   d",
        "run    true",
        'cmd    [ "sh" ]',
        'entrypoint   ["/init"]',
        "expose   80",
        "volume   /v",
        "stopsignal   SIGTERM",
        "healthcheck   none",
        'shell   ["/bin/sh", "-c"]',
        "onbuild   run true",
      ),
    );
    expect(df.stages[0]!.name).toBe("base");
    expect(kinds(df.stages[0]!.instructions)).toEqual([
      "maintainer",
      "label",
      "env",
      "arg",
      "workdir",
      "user",
      "copy",
      "add",
      "run",
      "cmd",
      "entrypoint",
      "expose",
      "volume",
      "stopsignal",
      "healthcheck",
      "shell",
      "onbuild",
    ]);
  });
});
