// Health checks on a real minatod (runc, conmon, as root), driven by the stock docker CLI and by
// minato: healthy, unhealthy (a failing probe, a missing command, a hung one), retries, the start
// period and start interval, an image's HEALTHCHECK and --no-healthcheck, a daemon restart.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Health {
  Status: string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

/** Polls until `probe` returns a value, for up to two minutes (a loaded CI machine is slow). */
async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const MS = 1_000_000;

describe("health checks on minatod", { timeout: 180_000 }, () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;

  const exec = (command: string, args: string[]): Promise<Run> =>
    new Promise((resolve, reject) => {
      execFile(command, args, { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
      });
    });
  const docker = (args: string[]) => exec("docker", args);
  const minato = (args: string[]): Promise<Run> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [MINATO, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });

  const health = async (name: string): Promise<Health | undefined> => {
    const result = await docker(["inspect", "--format", "{{json .State.Health}}", name]);
    expect(result.code, result.stderr).toBe(0);
    const parsed = JSON.parse(result.stdout) as Health | null;
    return parsed ?? undefined;
  };
  const healthIs = (name: string, status: string) =>
    eventually(async () => {
      const h = await health(name);
      return h?.Status === status ? h : undefined;
    }, `${name} to be ${status}`);

  const createViaApi = async (name: string, healthcheck: Record<string, unknown>, cmd = ["sleep", "1000"]) => {
    const response = await engine.json<{ Id?: string; message?: string }>("POST", `/containers/create?name=${name}`, {
      body: JSON.stringify({ Image: "busybox", Cmd: cmd, Healthcheck: healthcheck }),
      headers: { "content-type": "application/json" },
    });
    return response;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-health-"));
    engine = await EngineProcess.start();
    env = {
      PATH: process.env.PATH,
      HOME: work,
      DOCKER_CONFIG: join(work, "docker"),
      DOCKER_HOST: `unix://${engine.socket}`,
      MINATO_HOST: `unix://${engine.socket}`,
    };
    const imported = await docker(["import", "--change", 'CMD ["/bin/sh"]', await busyboxRootfs(work), "busybox:latest"]);
    expect(imported.code, imported.stderr).toBe(0);
  });
  afterAll(async () => {
    const left = await docker(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await docker(["rm", "-f", id]);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("a passing check makes the container healthy: inspect, ps status and filter, events, the last 5 results", async () => {
    const run = await docker([
      "run",
      "-d",
      "--name",
      "h-ok",
      "--health-cmd",
      "test -f /tmp/ready && echo ready",
      "--health-interval",
      "100ms",
      "--health-retries",
      "2",
      "busybox",
      "sh",
      "-c",
      "touch /tmp/ready; exec sleep 1000",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const config = JSON.parse((await docker(["inspect", "--format", "{{json .Config.Healthcheck}}", "h-ok"])).stdout);
    expect(config).toMatchObject({ Test: ["CMD-SHELL", "test -f /tmp/ready && echo ready"], Interval: 100 * MS, Retries: 2 });
    const healthy = await healthIs("h-ok", "healthy");
    expect(healthy.FailingStreak).toBe(0);
    expect(healthy.Log.at(-1)).toMatchObject({ ExitCode: 0, Output: "ready\n" });
    expect(Date.parse(healthy.Log.at(-1)!.End)).toBeGreaterThanOrEqual(Date.parse(healthy.Log.at(-1)!.Start));

    // The log keeps the last 5 results: once full, new results push the oldest out.
    const full = await eventually(async () => {
      const h = await health("h-ok");
      return h && h.Log.length === 5 ? h : undefined;
    }, "five results");
    const later = await eventually(async () => {
      const h = await health("h-ok");
      return h && h.Log[0]?.Start !== full.Log[0]?.Start ? h : undefined;
    }, "a sixth result");
    expect(later.Log).toHaveLength(5);

    const ps = await docker(["ps", "--filter", "health=healthy", "--format", "{{.Names}}|{{.Status}}"]);
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).toMatch(/^h-ok\|Up .+ \(healthy\)$/m);
    expect((await docker(["ps", "--filter", "health=unhealthy", "--format", "{{.Names}}"])).stdout).not.toContain("h-ok");
    const minatoPs = await minato(["ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}"]);
    expect(minatoPs.stdout).toMatch(/^h-ok Up .+ \(healthy\)$/m);

    const events = await docker([
      "events",
      "--since",
      "0",
      "--until",
      "0s",
      "--filter",
      "container=h-ok",
      "--filter",
      "event=health_status",
      "--format",
      "{{.Action}}",
    ]);
    expect(events.code, events.stderr).toBe(0);
    expect(events.stdout.trim().split("\n")).toEqual(["health_status: healthy"]);
    // Each probe is an exec, reported as dockerd reports them.
    const execs = await docker([
      "events",
      "--since",
      "0",
      "--until",
      "0s",
      "--filter",
      "container=h-ok",
      "--filter",
      "event=exec_start",
      "--format",
      "{{.Action}}",
    ]);
    expect(execs.stdout.split("\n")[0]).toBe("exec_start: /bin/sh -c test -f /tmp/ready && echo ready");
  });

  it("a check whose command does not exist is unhealthy, with the error in the log", async () => {
    const created = await createViaApi("h-missing", { Test: ["CMD", "/no/such/probe"], Interval: 100 * MS, Retries: 2 });
    expect(created.status).toBe(201);
    // Not started yet: no health state (as dockerd), and health=none.
    expect(await health("h-missing")).toBeUndefined();
    expect((await docker(["ps", "-a", "--filter", "health=none", "--format", "{{.Names}}"])).stdout.split("\n")).toContain("h-missing");
    expect((await docker(["start", "h-missing"])).code).toBe(0);
    const unhealthy = await healthIs("h-missing", "unhealthy");
    expect(unhealthy.FailingStreak).toBeGreaterThanOrEqual(2);
    expect(unhealthy.Log[0]?.ExitCode).toBe(-1);
    expect(unhealthy.Log[0]?.Output).toContain("/no/such/probe");
    const ps = await docker(["ps", "--filter", "health=unhealthy", "--format", "{{.Names}}|{{.Status}}"]);
    expect(ps.stdout).toMatch(/^h-missing\|Up .+ \(unhealthy\)$/m);
  });

  it("retries: unhealthy exactly at the Nth failure in a row, one health_status event", async () => {
    const run = await minato([
      "run",
      "-d",
      "--name",
      "h-retry",
      "--health-cmd",
      "echo failing; exit 1",
      "--health-interval",
      "100ms",
      "--health-retries",
      "3",
      "busybox",
      "sleep",
      "1000",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const seen: Health[] = [];
    const unhealthy = await eventually(async () => {
      const h = await health("h-retry");
      if (h) seen.push(h);
      return h?.Status === "unhealthy" ? h : undefined;
    }, "h-retry to be unhealthy");
    for (const h of seen) expect(h.Status).toBe(h.FailingStreak >= 3 ? "unhealthy" : "starting");
    expect(unhealthy.FailingStreak).toBeGreaterThanOrEqual(3);
    expect(unhealthy.Log.every((r) => r.ExitCode === 1 && r.Output === "failing\n")).toBe(true);
    const events = await minato([
      "events",
      "--since",
      "0",
      "--until",
      "0s",
      "--filter",
      "container=h-retry",
      "--filter",
      "event=health_status",
      "--format",
      "{{.Action}}",
    ]);
    expect(events.code, events.stderr).toBe(0);
    expect(events.stdout.trim().split("\n")).toEqual(["health_status: unhealthy"]);
  });

  it("the start period: failures do not count while starting; the start interval paces the checks meanwhile", async () => {
    // An interval of an hour: only the start interval can run these checks.
    const run = await minato([
      "run",
      "-d",
      "--name",
      "h-start",
      "--health-cmd",
      "exit 1",
      "--health-interval",
      "1h",
      "--health-start-period",
      "1h",
      "--health-start-interval",
      "100ms",
      "--health-retries",
      "1",
      "busybox",
      "sleep",
      "1000",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const starting = await eventually(async () => {
      const h = await health("h-start");
      return h && h.Log.length >= 3 ? h : undefined;
    }, "three checks in the start period");
    expect(starting.Status).toBe("starting");
    expect(starting.FailingStreak).toBe(0);
    const ps = await docker(["ps", "--filter", "health=starting", "--format", "{{.Names}}|{{.Status}}"]);
    expect(ps.stdout).toMatch(/^h-start\|Up .+ \(health: starting\)$/m);
  });

  it("a check that hangs past its timeout is killed and fails", async () => {
    const run = await docker([
      "run",
      "-d",
      "--name",
      "h-hang",
      "--health-cmd",
      "sleep 30",
      "--health-timeout",
      "200ms",
      "--health-interval",
      "100ms",
      "--health-retries",
      "1",
      "busybox",
      "sleep",
      "1000",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const unhealthy = await healthIs("h-hang", "unhealthy");
    expect(unhealthy.Log[0]).toMatchObject({ ExitCode: -1, Output: "Health check exceeded timeout (200ms)" });
  });

  it("an image's HEALTHCHECK runs; --no-healthcheck turns it off (health=none)", async () => {
    const commit = await docker(["commit", "--change", "HEALTHCHECK --interval=100ms CMD true", "h-ok", "checked:1"]);
    expect(commit.code, commit.stderr).toBe(0);
    expect((await docker(["run", "-d", "--name", "h-image", "checked:1", "sleep", "1000"])).code).toBe(0);
    const healthy = await healthIs("h-image", "healthy");
    expect(healthy.Log.at(-1)?.ExitCode).toBe(0);
    const off = await minato(["run", "-d", "--name", "h-none", "--no-healthcheck", "checked:1", "sleep", "1000"]);
    expect(off.code, off.stderr).toBe(0);
    expect(await health("h-none")).toBeUndefined();
    // As dockerd merges them: NONE from the user, the interval still the image's.
    expect(JSON.parse((await docker(["inspect", "--format", "{{json .Config.Healthcheck}}", "h-none"])).stdout)).toEqual({
      Test: ["NONE"],
      Interval: 100 * MS,
    });
    const none = await docker(["ps", "--filter", "health=none", "--format", "{{.Names}}"]);
    expect(none.stdout.split("\n")).toContain("h-none");
    expect(none.stdout.split("\n")).not.toContain("h-image");
  });

  it("bad health settings are refused with Docker's errors", async () => {
    const tooShort = await createViaApi("h-bad1", { Test: ["CMD", "true"], Interval: 5 });
    expect(tooShort.status).toBe(400);
    expect(tooShort.body.message).toBe("Interval in Healthcheck cannot be less than 1ms");
    const negative = await createViaApi("h-bad2", { Test: ["CMD", "true"], Retries: -1 });
    expect(negative.status).toBe(400);
    expect(negative.body.message).toBe("Retries in Healthcheck cannot be negative");
    const unknown = await createViaApi("h-bad3", { Test: ["BOGUS", "true"] });
    expect(unknown.status).toBe(400);
    const filter = await docker(["ps", "--filter", "health=great"]);
    expect(filter.code).not.toBe(0);
    expect(filter.stderr).toContain("Unrecognised filter value for health: great");
    const conflict = await minato(["run", "-d", "--no-healthcheck", "--health-cmd", "true", "busybox"]);
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain("--no-healthcheck conflicts with --health-* options");
    const badDuration = await minato(["create", "--health-interval", "soon", "busybox"]);
    expect(badDuration.code).not.toBe(0);
    expect(badDuration.stderr).toContain('invalid argument "soon" for "--health-interval" flag');
    expect((await docker(["ps", "-a", "--filter", "name=h-bad", "-q"])).stdout.trim()).toBe("");
  });

  it("checks go on after a daemon restart, from the saved state", async () => {
    await healthIs("h-ok", "healthy");
    await engine.kill("SIGTERM");
    const restartedAt = Date.now();
    await engine.restart();
    const after = await health("h-ok");
    expect(after?.Status).toBe("healthy");
    // A result recorded by the new daemon.
    const resumed = await eventually(async () => {
      const h = await health("h-ok");
      return h && Date.parse(h.Log.at(-1)?.Start ?? "") > restartedAt ? h : undefined;
    }, "a check after the restart");
    expect(resumed.Log.at(-1)?.ExitCode).toBe(0);
    // Unhealthy stays unhealthy, and its checks resume too.
    expect((await health("h-missing"))?.Status).toBe("unhealthy");
  });
});
