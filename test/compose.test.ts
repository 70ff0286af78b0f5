// docker-compose 1.29 (Debian's, on docker-py) against a real minatod: a project with a user network,
// a named volume, a published port and `depends_on: condition: service_healthy` — up, ps, logs,
// events, down -v. The dependent service must start only after its dependency became healthy.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface EventMessage {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}

const COMPOSE_FILE = `
version: "2.4"
services:
  db:
    image: busybox
    # Ready only after a while: web must wait for the health check, not for the start.
    command: ["sh", "-c", "echo db starting; sleep 2; echo hello > /data/greeting; touch /tmp/ready; echo db ready; exec sleep 1000"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      timeout: 5s
      retries: 100
    volumes:
      - data:/data
    networks:
      - backend
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && cp /data/greeting /www/index.html && echo web serving && exec httpd -f -p 8080 -h /www"]
    ports:
      - "127.0.0.1::8080"
    volumes:
      - data:/data
    depends_on:
      db:
        condition: service_healthy
    networks:
      - backend
volumes:
  data: {}
networks:
  backend: {}
`;

async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("docker-compose 1.29 against minatod", { timeout: 300_000 }, () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let watcher: ChildProcess | undefined;
  let watched = "";

  const run = (command: string, args: string[]): Promise<Run> =>
    new Promise((resolve, reject) => {
      execFile(command, args, { env, cwd: work, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
      });
    });
  const compose = (...args: string[]) => run("docker-compose", ["-p", "harbour", ...args]);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-compose-"));
    engine = await EngineProcess.start();
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    const imported = await run("docker", ["import", "--change", 'CMD ["/bin/sh"]', await busyboxRootfs(work), "busybox:latest"]);
    expect(imported.code, imported.stderr).toBe(0);
    await writeFile(join(work, "docker-compose.yml"), COMPOSE_FILE);
  });
  afterAll(async () => {
    watcher?.kill("SIGKILL");
    await compose("down", "-v").catch(() => undefined);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("up -d waits for the health check, then ps, logs, the published port and events", async () => {
    // `docker-compose events` watches the project from before the up.
    watcher = spawn("docker-compose", ["-p", "harbour", "events", "--json"], { env, cwd: work, stdio: ["ignore", "pipe", "pipe"] });
    watcher.stdout?.on("data", (chunk: Buffer) => {
      watched += chunk.toString();
    });
    // Subscribed once it reports an event of the project: probe containers labelled as the db service
    // (compose shows only its services' containers, and inspects each), kept until one is reported.
    const probeLabels = {
      "com.docker.compose.project": "harbour",
      "com.docker.compose.service": "db",
      "com.docker.compose.oneoff": "False",
    };
    const probes: string[] = [];
    await eventually(async () => {
      const created = await engine.json<{ Id: string }>("POST", "/containers/create", {
        body: JSON.stringify({ Image: "busybox", Cmd: ["true"], Labels: probeLabels }),
        headers: { "content-type": "application/json" },
      });
      probes.push(created.body.Id);
      await new Promise((r) => setTimeout(r, 300));
      return probes.some((id) => watched.includes(id)) ? true : undefined;
    }, "compose events to subscribe");
    for (const id of probes) expect((await engine.api("DELETE", `/containers/${id}`)).status).toBe(204);

    const up = await compose("up", "-d");
    expect(up.code, up.stderr).toBe(0);

    // The order, from minatod's own event history: db healthy before web started.
    const history = await engine.api("GET", `/events?since=0&until=${Math.ceil(Date.now() / 1000) + 1}`);
    const events = history.body
      .toString()
      .split("\n")
      .filter(Boolean)
      .map((line) => ({ ...(JSON.parse(line) as EventMessage), nanos: BigInt(/"timeNano":(\d+)/.exec(line)?.[1] as string) }));
    const service = (e: EventMessage) => e.Actor.Attributes["com.docker.compose.service"];
    const dbStart = events.find((e) => e.Type === "container" && e.Action === "start" && service(e) === "db");
    const dbHealthy = events.find((e) => e.Action === "health_status: healthy" && service(e) === "db");
    const webStart = events.find((e) => e.Type === "container" && e.Action === "start" && service(e) === "web");
    expect(dbStart && dbHealthy && webStart, JSON.stringify(events.map((e) => [e.Type, e.Action, service(e)]))).toBeTruthy();
    expect(dbHealthy!.nanos).toBeGreaterThan(dbStart!.nanos);
    expect(webStart!.nanos).toBeGreaterThan(dbHealthy!.nanos);
    // The network and the volume were made for the project.
    expect(events.some((e) => e.Type === "network" && e.Action === "create" && e.Actor.Attributes.name === "harbour_backend")).toBe(true);
    expect(events.some((e) => e.Type === "volume" && e.Action === "create" && e.Actor.ID === "harbour_data")).toBe(true);

    const ps = await compose("ps");
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).toMatch(/harbour_db_1 .* Up \(healthy\)/);
    expect(ps.stdout).toMatch(/harbour_web_1 .* Up .*127\.0\.0\.1:\d+->8080\/tcp/);

    const port = await compose("port", "web", "8080");
    expect(port.code, port.stderr).toBe(0);
    const address = port.stdout.trim();
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    // The file db wrote to the shared named volume, served by web through the published port.
    const body = await eventually(async () => {
      const response = await fetch(`http://${address}/index.html`);
      return response.ok ? await response.text() : undefined;
    }, "web to answer");
    expect(body).toBe("hello\n");

    const logs = await compose("logs", "--no-color");
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/db_1 +\| db ready/);
    expect(logs.stdout).toMatch(/web_1 +\| web serving/);

    // compose's own event stream saw the project's containers start.
    await eventually(
      async () => (/"action": "start".*"service": "web"/.test(watched) ? true : undefined),
      "compose events to show web's start",
    );
    const lines = watched
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { action: string; service: string; type: string });
    expect(lines.filter((l) => l.action === "start").map((l) => l.service)).toEqual(["db", "web"]);
    expect(lines.some((l) => l.action === "health_status: healthy" && l.service === "db")).toBe(true);
  }, 300_000);

  it("down -v removes the containers, the network and the named volume", async () => {
    const down = await compose("down", "-v", "-t", "1");
    expect(down.code, down.stderr).toBe(0);
    const containers = await engine.json<unknown[]>("GET", "/containers/json?all=1");
    expect(containers.body).toEqual([]);
    const networks = await engine.json<{ Name: string }[]>("GET", "/networks");
    expect(networks.body.map((n) => n.Name)).not.toContain("harbour_backend");
    const volumes = await engine.json<{ Volumes: { Name: string }[] | null }>("GET", "/volumes");
    expect((volumes.body.Volumes ?? []).map((v) => v.Name)).not.toContain("harbour_data");
  });
});
