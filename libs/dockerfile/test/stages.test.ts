// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally.
// planStages: which stages --target needs, their order and dependencies.

import { describe, expect, it } from "vitest";
import { DockerfileError, parseDockerfile, planStages, platformArgs, resolveGlobalArgs } from "../src/index.js";
import { D, thrown } from "./helpers.js";

const multi = parseDockerfile(
  D(
    "ARG NODE=20",
    "FROM node:${NODE}-alpine AS deps",
    "RUN npm ci",
    "FROM deps AS build",
    "RUN npm run build",
    "FROM deps AS test",
    "RUN npm test",
    "FROM alpine AS tools",
    "RUN apk add curl",
    "FROM nginx:alpine AS web",
    "COPY --from=build /app/dist /usr/share/nginx/html",
    "COPY --from=tools /usr/bin/curl /usr/bin/curl",
    "COPY --from=busybox:1.36 /bin/busybox /bin/",
  ),
);

describe("planStages", () => {
  it("builds the last stage and what it needs by default", () => {
    expect(planStages(multi).map((p) => [p.index, p.name, p.dependsOn])).toEqual([
      [0, "deps", []],
      [1, "build", [0]],
      [3, "tools", []],
      [4, "web", [1, 3]],
    ]);
    expect(planStages(multi)[3]!.images).toEqual(["busybox:1.36"]);
  });

  it("builds only what --target needs", () => {
    expect(planStages(multi, { target: "test" }).map((p) => p.index)).toEqual([0, 2]);
    expect(planStages(multi, { target: "TOOLS" }).map((p) => p.index)).toEqual([3]);
  });

  it("resolves bases with global ARGs", () => {
    expect(planStages(multi, { target: "deps" })[0]!.base).toEqual({ kind: "image", ref: "node:20-alpine" });
    const globals = resolveGlobalArgs(multi, { buildArgs: { NODE: "22" } });
    expect(planStages(multi, { target: "deps", globalArgs: globals })[0]!.base).toEqual({ kind: "image", ref: "node:22-alpine" });
    expect(planStages(multi, { target: "build" })[1]!.base).toEqual({ kind: "stage", index: 0 });
  });

  it("refuses an unknown target with a suggestion", () => {
    expect(thrown(() => planStages(multi, { target: "buidl" })).message).toBe(
      'target stage "buidl" could not be found (did you mean build?)',
    );
    expect(thrown(() => planStages(multi, { target: "nope" })).message).toBe('target stage "nope" could not be found');
  });

  it("follows COPY --from=<index>", () => {
    const df = parseDockerfile(D("FROM alpine", "RUN touch /a", "FROM scratch", "COPY --from=0 /a /a"));
    expect(planStages(df).map((p) => [p.index, p.dependsOn])).toEqual([
      [0, []],
      [1, [0]],
    ]);
    expect(thrown(() => planStages(parseDockerfile(D("FROM scratch", "COPY --from=3 /a /a")))).message).toBe(
      "dockerfile error on line 2: invalid stage index 3",
    );
  });

  it("follows RUN --mount=from=<stage> and treats other names as images", () => {
    const df = parseDockerfile(
      D(
        "FROM alpine AS cfg",
        "RUN echo hi > /c",
        "FROM alpine",
        "RUN --mount=from=cfg,source=/c,target=/c --mount=type=cache,target=/x --mount=from=golang:1.22,target=/go cat /c",
      ),
    );
    const [cfg, main] = planStages(df);
    expect(cfg!.index).toBe(0);
    expect(main).toMatchObject({ index: 1, dependsOn: [0], images: ["golang:1.22"] });
  });

  it("refuses stages used before they are defined, and cycles", () => {
    const later = thrown(() =>
      planStages(parseDockerfile(D("FROM alpine AS a", "COPY --from=b /x /x", "FROM alpine AS b"))),
    ) as DockerfileError;
    expect(later).toBeInstanceOf(DockerfileError);
    expect(later.message).toBe('dockerfile error on line 2: cannot copy from stage "b", it needs to be defined before current stage "a"');
    const mount = thrown(() => planStages(parseDockerfile(D("FROM alpine AS a", "RUN --mount=from=b,target=/b true", "FROM alpine AS b"))));
    expect(mount.message).toContain('cannot mount from stage "b" to "/b", stage needs to be defined before current command');
    const self = thrown(() => planStages(parseDockerfile(D("FROM alpine AS a", "COPY --from=a /x /y"))));
    expect(self.message).toBe("dockerfile error on line 2: circular dependency detected on stage: a");
    const unnamed = thrown(() => planStages(parseDockerfile(D("FROM alpine", "COPY --from=0 /x /y"))));
    expect(unnamed.message).toContain("circular dependency detected on stage: stage-0");
  });

  it("refuses variables in COPY --from", () => {
    const err = thrown(() => planStages(parseDockerfile(D("ARG S=a", "FROM alpine AS a", "FROM alpine", "COPY --from=$S /x /y"))));
    expect(err.message).toContain("variable expansion is not supported for --from");
  });

  it("uses a stage only when FROM names one defined earlier", () => {
    const df = parseDockerfile(D("FROM app AS first", "FROM alpine AS app", "FROM app"));
    expect(planStages(df, { target: "first" })[0]!.base).toEqual({ kind: "image", ref: "app" });
    expect(planStages(df).map((p) => [p.index, p.base])).toEqual([
      [1, { kind: "image", ref: "alpine" }],
      [2, { kind: "stage", index: 1 }],
    ]);
  });

  it("uses the last stage of a duplicated name for --from and --target", () => {
    const df = parseDockerfile(D("FROM alpine AS x", "FROM busybox AS x", "FROM scratch", "COPY --from=x / /"));
    expect(planStages(df).map((p) => p.index)).toEqual([1, 2]);
    expect(planStages(df, { target: "x" }).map((p) => p.index)).toEqual([1]);
  });

  it("adds the dependencies of a base stage's ONBUILD triggers", () => {
    const df = parseDockerfile(
      D(
        "FROM alpine AS assets",
        "RUN touch /a",
        "FROM alpine AS builder",
        "ONBUILD COPY --from=assets /a /a",
        "FROM builder AS app",
        "RUN ls /a",
      ),
    );
    expect(planStages(df).map((p) => [p.index, p.dependsOn])).toEqual([
      [0, []],
      [1, []],
      [2, [0, 1]],
    ]);
    expect(planStages(df, { target: "builder" }).map((p) => p.index)).toEqual([1]);
  });

  it("reports a broken ONBUILD trigger at the stage that runs it", () => {
    const df = parseDockerfile(D("FROM alpine AS base", "ONBUILD FLOOB x", "", "FROM base"));
    const err = thrown(() => planStages(df)) as DockerfileError;
    expect([err.line, err.detail]).toEqual([4, "unknown instruction: FLOOB"]);
  });

  it("expands --platform with the global scope", () => {
    const df = parseDockerfile(
      D("FROM --platform=$BUILDPLATFORM golang AS build", "FROM --platform=linux/arm64 alpine", "COPY --from=build /x /x"),
    );
    const globals = resolveGlobalArgs(df, { platform: platformArgs({ os: "linux", architecture: "amd64" }) });
    expect(planStages(df, { globalArgs: globals }).map((p) => p.platform)).toEqual(["linux/amd64", "linux/arm64"]);
    expect(planStages(df).map((p) => p.platform)).toEqual([undefined, "linux/arm64"]);
    expect(thrown(() => planStages(df, { globalArgs: new Map() })).message).toBe(
      "dockerfile error on line 1: empty platform value from expression $BUILDPLATFORM",
    );
  });

  it("refuses a base that expands to nothing", () => {
    expect(thrown(() => planStages(parseDockerfile(D("ARG IMAGE", "FROM $IMAGE")))).message).toBe(
      "dockerfile error on line 2: base name ($IMAGE) should not be blank",
    );
  });
});
