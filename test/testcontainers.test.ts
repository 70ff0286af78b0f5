// testcontainers for Node (the newest major that runs on Node 20) against a real minatod: a local
// image (no pulls: Ryuk, which would pull one, is off), published ports and the port, log, HTTP and
// health-check wait strategies.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";

type Testcontainers = typeof import("testcontainers");

const IMAGE = "minato-test/web:1";

describe("testcontainers against minatod", { timeout: 180_000 }, () => {
  let engine: EngineProcess;
  let work: string;
  let tc: Testcontainers;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-testcontainers-"));
    engine = await EngineProcess.start();
    const env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    await new Promise<void>((resolve, reject) =>
      busyboxRootfs(work).then((rootfs) =>
        execFile("docker", ["import", "--change", 'CMD ["/bin/sh"]', rootfs, "busybox:latest"], { env }, (error) =>
          error ? reject(error) : resolve(),
        ),
      ),
    );
    // testcontainers reads its configuration from the environment when it first connects.
    Object.assign(process.env, {
      DOCKER_HOST: `unix://${engine.socket}`,
      TESTCONTAINERS_RYUK_DISABLED: "true",
      TESTCONTAINERS_HOST_OVERRIDE: "127.0.0.1",
      HOME: work,
    });
    tc = await import("testcontainers");
    // The image under test, built locally by testcontainers itself (POST /build) from busybox.
    await writeFile(
      join(work, "Dockerfile"),
      [
        "FROM busybox:latest",
        "RUN mkdir -p /www && echo hello from minato > /www/index.html",
        "EXPOSE 8080",
        'CMD ["sh", "-c", "echo web starting; exec httpd -f -v -p 8080 -h /www"]',
        "",
      ].join("\n"),
    );
    await tc.GenericContainer.fromDockerfile(work).build(IMAGE, { deleteOnExit: false });
  }, 180_000);
  afterAll(async () => {
    // What a failed start left behind (its processes outlive minatod under conmon).
    const left = await engine?.json<{ Id: string }[]>("GET", "/containers/json?all=1").catch(() => undefined);
    for (const c of left?.body ?? []) await engine.api("DELETE", `/containers/${c.Id}?force=1`);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("port wait: the published port answers once the container listens", async () => {
    const container = await new tc.GenericContainer(IMAGE).withExposedPorts(8080).withWaitStrategy(tc.Wait.forListeningPorts()).start();
    try {
      const port = container.getMappedPort(8080);
      expect(container.getHost()).toBe("127.0.0.1");
      const response = await fetch(`http://127.0.0.1:${port}/index.html`);
      expect(await response.text()).toBe("hello from minato\n");
    } finally {
      await container.stop({ timeout: 1 });
    }
  });

  it("log wait, then exec and logs", async () => {
    const container = await new tc.GenericContainer(IMAGE)
      .withExposedPorts(8080)
      .withWaitStrategy(tc.Wait.forLogMessage("web starting"))
      .start();
    try {
      const result = await container.exec(["cat", "/www/index.html"]);
      expect(result).toMatchObject({ exitCode: 0, output: "hello from minato\n" });
      const stream = await container.logs();
      const text = await new Promise<string>((resolve) => {
        let out = "";
        stream.on("data", (line: Buffer | string) => {
          out += line.toString();
          if (out.includes("web starting")) resolve(out);
        });
      });
      expect(text).toContain("web starting");
      stream.destroy();
    } finally {
      await container.stop({ timeout: 1 });
    }
  });

  it("HTTP wait on a path and status code", async () => {
    const container = await new tc.GenericContainer(IMAGE)
      .withExposedPorts(8080)
      .withWaitStrategy(tc.Wait.forHttp("/index.html", 8080).forStatusCode(200))
      .start();
    try {
      const response = await fetch(`http://${container.getHost()}:${container.getMappedPort(8080)}/index.html`);
      expect(response.status).toBe(200);
      // Bad input: a path that is not there is a 404 from the server in the container.
      expect((await fetch(`http://${container.getHost()}:${container.getMappedPort(8080)}/missing`)).status).toBe(404);
    } finally {
      await container.stop({ timeout: 1 });
    }
  });

  it("health-check wait: started once the container's health check passes", async () => {
    const container = await new tc.GenericContainer(IMAGE)
      .withCommand(["sh", "-c", "sleep 1; touch /tmp/ready; exec httpd -f -p 8080 -h /www"])
      .withHealthCheck({ test: ["CMD-SHELL", "test -f /tmp/ready"], interval: 200, timeout: 2000, retries: 50, startPeriod: 100 })
      .withWaitStrategy(tc.Wait.forHealthCheck())
      .start();
    try {
      const inspect = await engine.json<{ State: { Health: { Status: string } } }>("GET", `/containers/${container.getId()}/json`);
      expect(inspect.body.State.Health.Status).toBe("healthy");
    } finally {
      await container.stop({ timeout: 1 });
    }
  });

  it("a health check that never passes makes the health-check wait fail", async () => {
    await expect(
      new tc.GenericContainer(IMAGE)
        .withCommand(["sleep", "1000"])
        .withHealthCheck({ test: ["CMD", "/no/such/probe"], interval: 100, retries: 2 })
        .withWaitStrategy(tc.Wait.forHealthCheck())
        .withStartupTimeout(60_000)
        .start(),
    ).rejects.toThrow(/unhealthy/i);
  });
});
