/**
 * Build → Ship → Run across two engines (as root): the stock docker CLI's classic builder
 * (`DOCKER_BUILDKIT=0 docker build`) builds and tags an image on minatod, `minato push` sends it to
 * a Minato registry on loopback, and a second minatod pulls it and runs it.
 */
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTree } from "./support/build.js";
import { busyboxRootfs, EngineProcess, streamError } from "./support/engine-process.js";
import { RegistryProcess, ROOT } from "./support/registry-process.js";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string | undefined>, cwd: string): Promise<Result> {
  return new Promise((resolve) => {
    execFile(command, args, { env, cwd, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr }),
    );
  });
}

/** A non-TTY container's log stream without its 8-byte frame headers. */
function demux(body: Buffer): string {
  let text = "";
  for (let at = 0; at + 8 <= body.length; ) {
    const size = body.readUInt32BE(at + 4);
    text += body.subarray(at + 8, at + 8 + size).toString("utf8");
    at += 8 + size;
  }
  return text;
}

describe("docker build on minatod → minato push → another engine pulls and runs", () => {
  let registry: RegistryProcess;
  let builder: EngineProcess;
  let runner: EngineProcess;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-build-push-"));
    [registry, builder, runner] = await Promise.all([RegistryProcess.start(), EngineProcess.start(), EngineProcess.start()]);
    const rootfs = await readFile(await busyboxRootfs(work));
    expect(
      streamError(await builder.messages("POST", "/images/create?fromSrc=-&repo=busybox&tag=latest", { body: rootfs })),
    ).toBeUndefined();
  });
  afterAll(async () => {
    await Promise.all([builder?.dispose(), runner?.dispose(), registry?.dispose()]);
    await rm(work, { recursive: true, force: true });
  });

  it("builds with DOCKER_BUILDKIT=0 docker build, pushes with minato push, pulls and runs on a second engine", async () => {
    const context = join(work, "context");
    await writeTree(context, {
      Dockerfile: [
        "FROM busybox AS build",
        "WORKDIR /src",
        "COPY greet.sh .",
        "RUN chmod 755 greet.sh && sed -i 's/WORLD/shipped world/' greet.sh",
        "FROM busybox",
        "COPY --from=build /src/greet.sh /usr/local/bin/greet",
        "ENV WHO=engine-b",
        'ENTRYPOINT ["/usr/local/bin/greet"]',
        'CMD ["from"]',
        "",
      ].join("\n"),
      "greet.sh": '#!/bin/sh\necho "hello WORLD $1 $WHO"\n',
    });
    await chmod(join(context, "greet.sh"), 0o644);
    const name = `${registry.authority}/shipped/greet:1`;
    const home = await mkdtemp(join(work, "home-"));
    const dockerEnv = {
      PATH: process.env.PATH,
      HOME: home,
      DOCKER_CONFIG: join(home, ".docker"),
      DOCKER_HOST: `unix://${builder.socket}`,
      DOCKER_BUILDKIT: "0",
    };
    const built = await run("docker", ["build", "-t", name, "."], dockerEnv, context);
    expect(built.code, built.stderr + built.stdout).toBe(0);
    expect(built.stdout).toContain(`Successfully tagged ${name}`);
    expect(built.stdout).toMatch(/^Step 4\/9 : RUN chmod 755 greet.sh/m);

    const minatoEnv = { PATH: process.env.PATH, HOME: home, DOCKER_CONFIG: join(home, ".docker"), MINATO_HOST: `unix://${builder.socket}` };
    const pushed = await run(process.execPath, [join(ROOT, "apps/cli/bin/minato.js"), "push", name], minatoEnv, work);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout).toMatch(/1: digest: sha256:[0-9a-f]{64} size: \d+/);

    const pulled = await runner.messages("POST", `/images/create?fromImage=${encodeURIComponent(name)}`);
    expect(streamError(pulled)).toBeUndefined();
    const builderImage = await builder.json<{ Id: string }>("GET", `/images/${encodeURIComponent(name)}/json`);
    const runnerImage = await runner.json<{ Id: string }>("GET", `/images/${encodeURIComponent(name)}/json`);
    expect(runnerImage.status).toBe(200);
    expect(runnerImage.body.Id).toBe(builderImage.body.Id);

    const created = await runner.json<{ Id: string }>("POST", "/containers/create", {
      body: JSON.stringify({ Image: name }),
      headers: { "Content-Type": "application/json" },
    });
    expect(created.status).toBe(201);
    expect((await runner.api("POST", `/containers/${created.body.Id}/start`)).status).toBe(204);
    const waited = await runner.json<{ StatusCode: number }>("POST", `/containers/${created.body.Id}/wait`);
    expect(waited.body.StatusCode).toBe(0);
    const logs = await runner.api("GET", `/containers/${created.body.Id}/logs?stdout=1&stderr=1`);
    expect(demux(logs.body)).toBe("hello shipped world from engine-b\n");
    expect((await runner.api("DELETE", `/containers/${created.body.Id}`)).status).toBe(204);
  });
});
