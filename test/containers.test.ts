import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess, until } from "./support/engine-process.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Inspect {
  Id: string;
  Name: string;
  State: { Status: string; Running: boolean; Paused: boolean; ExitCode: number; Pid: number };
  GraphDriver: { Data: { MergedDir: string } };
}

describe("containers on minatod (real runc and conmon, as root)", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;

  const docker = (args: string[]): Promise<Run> =>
    new Promise((resolve, reject) => {
      execFile("docker", args, { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
      });
    });

  const inspect = async (id: string) => (await engine.json<Inspect>("GET", `/containers/${id}/json`)).body;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-containers-"));
    engine = await EngineProcess.start();
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    const rootfs = await busyboxRootfs(work);
    const imported = await docker(["import", "--change", 'CMD ["/bin/sh"]', rootfs, "busybox:latest"]);
    expect(imported.code, imported.stderr).toBe(0);
  });
  afterAll(async () => {
    const left = await docker(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await docker(["rm", "-f", id]);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("docker run --rm prints the output, exits 0 and leaves no container", async () => {
    const run = await docker(["run", "--rm", "busybox", "echo", "hello"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe("hello\n");
    const ps = await docker(["ps", "-aq"]);
    expect(ps.stdout.trim()).toBe("");
  });

  it("exit codes as Docker reports them: the command's, 127 for a missing command", async () => {
    const three = await docker(["run", "--name", "three", "busybox", "sh", "-c", "exit 3"]);
    expect(three.code, three.stderr).toBe(3);
    expect((await inspect("three")).State).toMatchObject({ Status: "exited", ExitCode: 3, Running: false });
    const missing = await docker(["run", "--rm", "busybox", "no-such-command"]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain("executable file not found");
    expect((await docker(["rm", "three"])).code).toBe(0);
  });

  it("a name in use is a 409 and an unknown container a 404", async () => {
    const first = await engine.json("POST", "/containers/create?name=twice", {
      body: JSON.stringify({ Image: "busybox", Cmd: ["true"] }),
      headers: { "content-type": "application/json" },
    });
    expect(first.status).toBe(201);
    const second = await engine.json<{ message: string }>("POST", "/containers/create?name=twice", {
      body: JSON.stringify({ Image: "busybox", Cmd: ["true"] }),
      headers: { "content-type": "application/json" },
    });
    expect(second.status).toBe(409);
    expect(second.body.message).toContain('"/twice" is already in use');
    const missing = await engine.json<{ message: string }>("GET", "/containers/nope/json");
    expect(missing).toEqual({ status: 404, body: { message: "No such container: nope" } });
    expect((await engine.api("DELETE", "/containers/twice")).status).toBe(204);
  });

  it("run -d, ps, logs, rmi conflict, stop (SIGKILL after -t for a PID 1 ignoring SIGTERM), rm without a trace", async () => {
    const run = await docker([
      "run",
      "-d",
      "--name",
      "daemon",
      "busybox",
      "sh",
      "-c",
      "echo started; echo oops >&2; while true; do sleep 1; done",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const id = run.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const ps = await docker(["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    expect(ps.stdout).toMatch(new RegExp(`^${id.slice(0, 12)} daemon Up `, "m"));
    await until(async () => (await docker(["logs", "daemon"])).stdout === "started\n", "the log line");
    const logs = await docker(["logs", "daemon"]);
    expect(logs.stderr).toBe("oops\n");
    const rmi = await docker(["rmi", "busybox"]);
    expect(rmi.code).not.toBe(0);
    expect(rmi.stderr).toContain("is using its referenced image");
    const merged = (await inspect(id)).GraphDriver.Data.MergedDir;
    expect(readFileSync("/proc/mounts", "utf8")).toContain(merged);
    const stop = await docker(["stop", "-t", "1", "daemon"]);
    expect(stop.code, stop.stderr).toBe(0);
    expect((await inspect(id)).State).toMatchObject({ Status: "exited", ExitCode: 137, Running: false, Pid: 0 });
    expect((await docker(["rm", "daemon"])).code).toBe(0);
    expect(readFileSync("/proc/mounts", "utf8")).not.toContain(id);
    expect(existsSync(join(engine.dataRoot, "containers", id))).toBe(false);
    expect((await engine.api("GET", `/containers/${id}/json`)).status).toBe(404);
  });

  it("a TERM-handling PID 1 exits 143 on stop", async () => {
    const run = await docker(["run", "-d", "busybox", "sh", "-c", "trap 'exit 143' TERM; echo trapping; while true; do sleep 0.1; done"]);
    const id = run.stdout.trim();
    // A PID 1 ignores a TERM that comes before its handler is set (the kernel drops it, for init):
    // stop once the trap is in place, or a loaded machine sees a SIGKILL after the timeout (137).
    await until(async () => (await docker(["logs", id])).stdout === "trapping\n", "the trap");
    expect((await docker(["stop", id])).code).toBe(0);
    expect((await inspect(id)).State.ExitCode).toBe(143);
    expect((await docker(["rm", id])).code).toBe(0);
  });

  it("--memory is set on the container's cgroup and --read-only is enforced", async () => {
    const run = await docker(["run", "-d", "--memory", "64m", "busybox", "sleep", "60"]);
    expect(run.code, run.stderr).toBe(0);
    const id = run.stdout.trim();
    const v1 = `/sys/fs/cgroup/memory/minato/${id}/memory.limit_in_bytes`;
    const v2 = `/sys/fs/cgroup/minato/${id}/memory.max`;
    const limit = readFileSync(existsSync(v1) ? v1 : v2, "utf8").trim();
    expect(limit).toBe(String(64 * 1024 * 1024));
    expect((await docker(["rm", "-f", id])).code).toBe(0);
    const ro = await docker(["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toContain("Read-only file system");
    const rw = await docker(["run", "--rm", "busybox", "touch", "/x"]);
    expect(rw.code).toBe(0);
  });

  it("pause and unpause change the state", async () => {
    const id = (await docker(["run", "-d", "busybox", "sleep", "60"])).stdout.trim();
    expect((await docker(["pause", id])).code).toBe(0);
    expect((await inspect(id)).State).toMatchObject({ Status: "paused", Paused: true, Running: true });
    expect((await engine.api("POST", `/containers/${id}/pause`)).status).toBe(409);
    expect((await docker(["unpause", id])).code).toBe(0);
    expect((await inspect(id)).State).toMatchObject({ Status: "running", Paused: false, Running: true });
    const rm = await engine.json<{ message: string }>("DELETE", `/containers/${id}`);
    expect(rm.status).toBe(409);
    expect((await docker(["rm", "-f", id])).code).toBe(0);
  });

  it("wait returns the exit code", async () => {
    const id = (await docker(["run", "-d", "busybox", "sh", "-c", "sleep 0.2; exit 7"])).stdout.trim();
    const wait = await docker(["wait", id]);
    expect(wait.stdout.trim()).toBe("7");
    expect((await docker(["rm", id])).code).toBe(0);
  });

  it("a running container survives SIGKILL of minatod and is driven again after its restart", async () => {
    const id = (
      await docker(["run", "-d", "--name", "survivor", "busybox", "sh", "-c", "echo alive; while true; do sleep 1; done"])
    ).stdout.trim();
    const pid = (await inspect(id)).State.Pid;
    expect(pid).toBeGreaterThan(0);
    await engine.kill("SIGKILL");
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    await engine.restart();
    expect((await inspect(id)).State).toMatchObject({ Status: "running", Pid: pid });
    expect((await docker(["ps", "--format", "{{.Names}}"])).stdout).toContain("survivor");
    expect((await docker(["logs", "survivor"])).stdout).toBe("alive\n");
    const exec = await docker(["exec", "survivor", "sh", "-c", "echo after; exit 4"]);
    expect(exec).toMatchObject({ code: 4, stdout: "after\n" });
    expect((await docker(["stop", "-t", "1", "survivor"])).code).toBe(0);
    expect((await inspect(id)).State).toMatchObject({ Status: "exited", ExitCode: 137 });
    expect((await docker(["rm", "survivor"])).code).toBe(0);
  });

  it("docker ps -a lists stopped containers, docker logs and docker rm work", async () => {
    const run = await docker(["run", "--name", "done", "busybox", "echo", "hi"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe("hi\n");
    const ps = await docker(["ps", "-a", "--format", "{{.Names}}\t{{.Status}}"]);
    expect(ps.stdout).toMatch(/^done\tExited \(0\) /m);
    expect((await docker(["logs", "done"])).stdout).toBe("hi\n");
    expect((await docker(["rm", "done"])).code).toBe(0);
    expect((await docker(["ps", "-a", "-q"])).stdout.trim()).toBe("");
  });
});
