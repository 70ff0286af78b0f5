/**
 * `minato` container commands end to end: the built binary against a real `minatod` (real runc and
 * conmon) and a busybox image imported from scripts/busybox-rootfs.sh. Needs root, as minatod does.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess, until } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("minato container commands on a real minatod", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;

  const minato = (args: string[]): Promise<Result> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [MINATO, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString("utf8");
      });
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString("utf8");
      });
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-cli-containers-"));
    engine = await EngineProcess.start();
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), MINATO_HOST: `unix://${engine.socket}` };
    const rootfs = await busyboxRootfs(work);
    const imported = await minato(["import", "--change", 'CMD ["/bin/sh"]', rootfs, "busybox:latest"]);
    expect(imported.code, imported.stderr).toBe(0);
  });
  afterAll(async () => {
    const left = await minato(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await minato(["rm", "-f", id]);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("run --rm prints the output, exits 0 and leaves no container", async () => {
    const run = await minato(["run", "--rm", "busybox", "echo", "hello"]);
    expect(run).toEqual({ code: 0, stdout: "hello\n", stderr: "" });
    expect((await minato(["ps", "-aq"])).stdout).toBe("");
  });

  it("exits with the container's code, 127 for a missing command; stdout and stderr stay apart", async () => {
    const three = await minato(["run", "--name", "three", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(three).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
    const inspect = await minato(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "three"]);
    expect(inspect).toEqual({ code: 0, stdout: "exited 3\n", stderr: "" });
    expect((await minato(["rm", "three"])).stdout).toBe("three\n");
    const missing = await minato(["run", "--rm", "busybox", "no-such-command"]);
    expect(missing.code).toBe(127);
    expect(missing.stdout).toBe("");
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    expect(missing.stderr).toContain("no-such-command");
  });

  it("passes flags to the container: env, env-file, workdir, hostname, user, limits, tmpfs, read-only", async () => {
    const envFile = join(work, "app.env");
    await writeFile(envFile, "# comment\nFROM_FILE=file value\n\n");
    const run = await minato([
      "run",
      "--rm",
      "--env-file",
      envFile,
      "-e",
      "GREETING=hi there",
      "-w",
      "/tmp",
      "--hostname",
      "boat",
      "-u",
      "65534",
      "--memory",
      "64m",
      "--cpus",
      "0.5",
      "--pids-limit",
      "64",
      "--tmpfs",
      "/scratch:size=1m",
      "--read-only",
      "--network",
      "none",
      "busybox",
      "sh",
      "-c",
      'echo "$GREETING"; echo "$FROM_FILE"; pwd; hostname; id -u; touch /scratch/ok && echo tmpfs; touch /x 2>/dev/null || echo ro',
    ]);
    expect(run.stderr).toBe("");
    expect(run.stdout).toBe("hi there\nfile value\n/tmp\nboat\n65534\ntmpfs\nro\n");
    expect(run.code).toBe(0);
  });

  it("run -d, ps columns, logs, stop, rm", async () => {
    const run = await minato([
      "run",
      "-d",
      "--name",
      "daemon",
      "-l",
      "tier=web",
      "busybox",
      "sh",
      "-c",
      "echo started; echo oops >&2; sleep 600",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const id = run.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const ps = await minato(["ps"]);
    expect(ps.code).toBe(0);
    const [header, row] = ps.stdout.split("\n");
    expect(header?.split(/ {2,}/)).toEqual(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]);
    expect(row).toMatch(new RegExp(`^${id.slice(0, 12)} +busybox +"sh -c echo started;…" +.+ ago +Up .+ +daemon$`));
    expect((await minato(["ps", "-q"])).stdout).toBe(`${id.slice(0, 12)}\n`);
    expect((await minato(["ps", "-q", "--no-trunc"])).stdout).toBe(`${id}\n`);
    expect((await minato(["ps", "--format", "{{.Names}}"])).stdout).toBe("daemon\n");
    expect((await minato(["ps", "-f", "label=tier=web", "--format", "{{.Names}} {{.Labels}}"])).stdout).toBe("daemon tier=web\n");
    await until(async () => (await minato(["logs", "daemon"])).stdout === "started\n", "the log line");
    expect(await minato(["logs", "daemon"])).toEqual({ code: 0, stdout: "started\n", stderr: "oops\n" });
    const tail = await minato(["logs", "--tail", "1", "-t", "daemon"]);
    expect(tail.stdout).toBe("");
    expect(tail.stderr).toMatch(/^\d{4}-\d\d-\d\dT\S+ oops\n$/);
    expect((await minato(["container", "inspect", "-f", "{{.State.Status}}", "daemon"])).stdout).toBe("running\n");
    expect(await minato(["stop", "-t", "1", "daemon"])).toEqual({ code: 0, stdout: "daemon\n", stderr: "" });
    expect((await minato(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", id])).stdout).toBe("exited 137\n");
    expect((await minato(["ps", "-q"])).stdout).toBe("");
    expect((await minato(["container", "ls", "-a", "--format", "{{.Names}}\t{{.Status}}"])).stdout).toMatch(/^daemon\tExited \(137\) /);
    expect(await minato(["rm", "daemon"])).toEqual({ code: 0, stdout: "daemon\n", stderr: "" });
    expect((await minato(["ps", "-aq"])).stdout).toBe("");
  });

  it("a name in use is one line and 125", async () => {
    expect((await minato(["create", "--name", "twice", "busybox", "true"])).code).toBe(0);
    const second = await minato(["run", "--name", "twice", "busybox", "true"]);
    expect(second.code).toBe(125);
    expect(second.stdout).toBe("");
    expect(second.stderr).toMatch(/^Error response from daemon: .*"\/twice" is already in use.*\n$/);
    expect((await minato(["rm", "twice"])).code).toBe(0);
  });

  it("create, start -a, wait, kill, pause, unpause, rm -f", async () => {
    const created = await minato(["create", "busybox", "sh", "-c", "echo attached; exit 5"]);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();
    expect(await minato(["start", "-a", id])).toEqual({ code: 5, stdout: "attached\n", stderr: "" });
    expect(await minato(["wait", id])).toEqual({ code: 0, stdout: "5\n", stderr: "" });
    expect((await minato(["rm", id])).code).toBe(0);

    const sleeper = (await minato(["run", "-d", "busybox", "sleep", "600"])).stdout.trim();
    expect((await minato(["pause", sleeper])).stdout).toBe(`${sleeper}\n`);
    expect((await minato(["inspect", "-f", "{{.State.Status}}", sleeper])).stdout).toBe("paused\n");
    expect((await minato(["unpause", sleeper])).code).toBe(0);
    expect((await minato(["kill", "-s", "KILL", sleeper])).code).toBe(0);
    expect(await minato(["wait", sleeper])).toEqual({ code: 0, stdout: "137\n", stderr: "" });
    expect((await minato(["rm", "-f", sleeper])).code).toBe(0);
  });

  it("inspect falls back to images; unknown names are one line each", async () => {
    const image = await minato(["inspect", "-f", "{{.Id}}", "busybox"]);
    expect(image.code, image.stderr).toBe(0);
    expect(image.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(await minato(["inspect", "nothing-here"])).toEqual({ code: 1, stdout: "[]\n", stderr: "Error: No such object: nothing-here\n" });
    const stop = await minato(["stop", "nothing-here"]);
    expect(stop).toEqual({ code: 1, stdout: "", stderr: "Error response from daemon: No such container: nothing-here\n" });
    const missingImage = await minato(["run", "--rm", "localhost:1/nothing:1"]);
    expect(missingImage.code).toBe(125);
    expect(missingImage.stderr.split("\n")[0]).toBe("Unable to find image 'localhost:1/nothing:1' locally");
  });
});
