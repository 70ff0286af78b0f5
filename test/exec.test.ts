/**
 * `exec` end to end: `minato exec` and the stock docker CLI against a real `minatod` (real runc and
 * conmon) with a busybox image imported from scripts/busybox-rootfs.sh. Needs root, as minatod does.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
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

describe("exec on a real minatod", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let container: string;

  const run = (command: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Result> =>
    new Promise((resolve, reject) => {
      const child = spawn(command, args, { env: { ...env, ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] });
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
  const minato = (args: string[]) => run(process.execPath, [MINATO, ...args]);
  const docker = (args: string[]) => run("docker", args, { DOCKER_HOST: `unix://${engine.socket}` });

  /** An API call with an optional JSON body; the answer's status and text. */
  const api = async (method: "GET" | "POST", path: string, json?: unknown) => {
    const response = await engine.api(
      method,
      path,
      json === undefined ? {} : { body: JSON.stringify(json), headers: { "Content-Type": "application/json" } },
    );
    return { status: response.status, text: response.body.toString("utf8") };
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-exec-"));
    engine = await EngineProcess.start();
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), MINATO_HOST: `unix://${engine.socket}` };
    const rootfs = await busyboxRootfs(work);
    // POST /images/create?fromSrc=- with the tarball as the body.
    const imported = await engine.api("POST", "/images/create?fromSrc=-&repo=busybox&tag=latest", {
      body: await readFile(rootfs),
      headers: { "Content-Type": "application/x-tar" },
    });
    expect(imported.status, imported.body.toString()).toBe(200);
    const started = await minato(["run", "-d", "--network", "none", "--name", "sleeper", "busybox", "sleep", "300"]);
    expect(started.code, started.stderr).toBe(0);
    container = started.stdout.trim();
  }, 120_000);

  afterAll(async () => {
    const left = await minato(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await minato(["rm", "-f", id]);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("prints the output and exits with the process's code", async () => {
    expect(await minato(["exec", "sleeper", "echo", "hi"])).toEqual({ code: 0, stdout: "hi\n", stderr: "" });
    const five = await minato(["exec", "sleeper", "sh", "-c", "echo out; echo err >&2; exit 5"]);
    expect(five).toEqual({ code: 5, stdout: "out\n", stderr: "err\n" });
  });

  it("exits 127 for a command that does not exist", async () => {
    const missing = await minato(["exec", container, "no-such-command"]);
    expect(missing.code).toBe(127);
    expect(missing.stdout + missing.stderr).toMatch(/no-such-command/);
  });

  it("-t runs the process on a terminal (raw stream)", async () => {
    const tty = await minato(["exec", "-t", "sleeper", "tty"]);
    expect(tty.code, tty.stderr).toBe(0);
    expect(tty.stdout).toMatch(/^\/dev\/pts\/\d+\r?\n$/);
  });

  it("refuses a paused container with 409", async () => {
    expect((await minato(["pause", "sleeper"])).code).toBe(0);
    try {
      const refused = await api("POST", "/containers/sleeper/exec", { Cmd: ["true"] });
      expect(refused.status).toBe(409);
      expect(refused.text).toMatch(/paused/);
    } finally {
      expect((await minato(["unpause", "sleeper"])).code).toBe(0);
    }
  });

  it("applies -e, -u and -w", async () => {
    const envRun = await minato(["exec", "-e", "GREETING=hello there", "sleeper", "sh", "-c", 'echo "$GREETING"']);
    expect(envRun).toEqual({ code: 0, stdout: "hello there\n", stderr: "" });
    const user = await minato(["exec", "-u", "1234:5678", "sleeper", "id"]);
    expect(user.code, user.stderr).toBe(0);
    expect(user.stdout).toMatch(/^uid=1234 gid=5678/);
    const dir = await minato(["exec", "-w", "/tmp", "sleeper", "pwd"]);
    expect(dir).toEqual({ code: 0, stdout: "/tmp\n", stderr: "" });
  });

  it("-d returns at once and the process runs", async () => {
    const detached = await minato(["exec", "-d", "sleeper", "sh", "-c", "echo made > /tmp/detached-mark"]);
    expect(detached).toEqual({ code: 0, stdout: "", stderr: "" });
    await until(
      async () => (await minato(["exec", "sleeper", "cat", "/tmp/detached-mark"])).stdout === "made\n",
      "the detached exec's file",
    );
  });

  it("GET /exec/{id}/json reports the exit code; unknown ids are 404", async () => {
    const created = await api("POST", `/containers/${container}/exec`, {
      Cmd: ["sh", "-c", "exit 7"],
      AttachStdout: true,
      AttachStderr: true,
    });
    expect(created.status, created.text).toBe(201);
    const id = (JSON.parse(created.text) as { Id: string }).Id;
    const before = JSON.parse((await api("GET", `/exec/${id}/json`)).text) as { Running: boolean; ExitCode: number | null };
    expect(before.Running).toBe(false);
    const started = await api("POST", `/exec/${id}/start`, { Detach: true });
    expect(started.status, started.text).toBe(200);
    let inspected:
      | { ID: string; Running: boolean; ExitCode: number | null; ContainerID: string; ProcessConfig: { entrypoint: string } }
      | undefined;
    await until(async () => {
      inspected = JSON.parse((await api("GET", `/exec/${id}/json`)).text);
      return inspected?.Running === false && inspected.ExitCode !== null;
    }, "the exec to end");
    expect(inspected).toMatchObject({ ID: id, ExitCode: 7, ContainerID: container, ProcessConfig: { entrypoint: "sh" } });
    expect((await api("POST", `/exec/${id}/resize?h=24&w=80`)).status).toBe(200);
    const unknown = await api("GET", "/exec/no-such-exec/json");
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text)).toEqual({ message: "No such exec instance: no-such-exec" });
    expect((await api("POST", "/containers/no-such-container/exec", { Cmd: ["true"] })).status).toBe(404);
  });

  it("the stock docker CLI execs, with the process's exit code", async () => {
    expect(await docker(["exec", "sleeper", "echo", "hi"])).toMatchObject({ code: 0, stdout: "hi\n" });
    expect((await docker(["exec", "sleeper", "sh", "-c", "exit 3"])).code).toBe(3);
  });

  it("fails on a stopped container with one line and a non-zero status", async () => {
    const created = await minato(["create", "--network", "none", "busybox", "sleep", "300"]);
    expect(created.code, created.stderr).toBe(0);
    const stopped = created.stdout.trim();
    const refused = await api("POST", `/containers/${stopped}/exec`, { Cmd: ["true"] });
    expect(refused.status).toBe(409);
    const result = await minato(["exec", stopped, "echo", "hi"]);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/is not running/);
  });
});
