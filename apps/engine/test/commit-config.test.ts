import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/errors.js";
import { goFileMode } from "../src/containers/archive.js";
import { applyCommitChanges, mergeConfig } from "../src/containers/commit-config.js";

describe("commit changes (docker commit -c)", () => {
  const container = {
    Hostname: "abc123",
    Env: ["PATH=/bin", "A=1"],
    Cmd: ["sh"],
    Entrypoint: null,
    WorkingDir: "/srv",
    Labels: { keep: "yes" },
    Image: "busybox",
    AttachStdout: true,
  };

  it("applies each instruction, expanding the config's ENV, and keeps only image fields", () => {
    const changed = applyCommitChanges(container, [
      'CMD ["cat", "/data/x"]',
      "ENV B=$A-two A=3",
      "LABEL role=web",
      "EXPOSE 80 53/udp",
      "WORKDIR app",
      "USER nobody",
      "VOLUME /data",
      "STOPSIGNAL SIGINT",
      "ONBUILD RUN echo later",
    ]);
    const config = mergeConfig(changed, container);
    expect(config).toEqual({
      User: "nobody",
      ExposedPorts: { "80/tcp": {}, "53/udp": {} },
      Env: ["PATH=/bin", "B=1-two", "A=3"],
      Cmd: ["cat", "/data/x"],
      Volumes: { "/data": {} },
      WorkingDir: "/srv/app",
      Labels: { keep: "yes", role: "web" },
      StopSignal: "SIGINT",
      OnBuild: ["RUN echo later"],
    });
  });

  it("shell forms run through /bin/sh -c; ENTRYPOINT alone resets CMD", () => {
    expect(applyCommitChanges(container, ["CMD echo hi"]).Cmd).toEqual(["/bin/sh", "-c", "echo hi"]);
    const entry = mergeConfig(applyCommitChanges(container, ['ENTRYPOINT ["/bin/app"]']), container);
    expect(entry.Entrypoint).toEqual(["/bin/app"]);
    expect(entry.Cmd).toBeUndefined();
    const both = applyCommitChanges(container, ['CMD ["x"]', 'ENTRYPOINT ["/bin/app"]']);
    expect(both.Cmd).toEqual(["x"]);
  });

  it("a body config's empty fields come from the container (moby merge)", () => {
    const config = mergeConfig({ Cmd: ["true"], Env: ["A=9"] }, container);
    expect(config).toMatchObject({ Cmd: ["true"], Env: ["A=9", "PATH=/bin"], WorkingDir: "/srv", Labels: { keep: "yes" } });
  });

  it("refuses instructions commit does not accept, and unparsable ones, as 400s", () => {
    for (const [change, message] of [
      ["RUN rm -rf /", "RUN is not a valid change command"],
      ["FROM busybox", "FROM is not a valid change command"],
      ["COPY a b", "COPY is not a valid change command"],
      ["MAINTAINER me", "MAINTAINER is not a valid change command"],
    ] as const) {
      const attempt = () => applyCommitChanges(container, [change]);
      expect(attempt).toThrow(ApiError);
      expect(attempt).toThrow(message);
    }
    expect(() => applyCommitChanges(container, ["NOPE x"])).toThrow(/invalid change/);
    // Not valid JSON: the shell form, as the Dockerfile reference says.
    expect(applyCommitChanges(container, ['CMD ["unterminated']).Cmd).toEqual(["/bin/sh", "-c", '["unterminated']);
  });
});

describe("Go os.FileMode bits for X-Docker-Container-Path-Stat", () => {
  const stats = (mode: number, kind: "dir" | "file" | "link") =>
    ({
      mode,
      isDirectory: () => kind === "dir",
      isSymbolicLink: () => kind === "link",
      isBlockDevice: () => false,
      isCharacterDevice: () => false,
      isFIFO: () => false,
      isSocket: () => false,
    }) as unknown as import("node:fs").Stats;

  it("sets the type and special bits where Go has them", () => {
    expect(goFileMode(stats(0o40755, "dir"))).toBe(2 ** 31 + 0o755);
    expect(goFileMode(stats(0o120777, "link"))).toBe(2 ** 27 + 0o777);
    expect(goFileMode(stats(0o104755, "file"))).toBe(2 ** 23 + 0o755);
    expect(goFileMode(stats(0o41777, "dir"))).toBe(2 ** 31 + 2 ** 20 + 0o777);
  });
});
