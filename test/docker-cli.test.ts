import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";
import { RegistryProcess } from "./support/registry-process.js";

const PASSWORD = "docker-cli-e2e-password";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("the stock docker CLI against minatod", () => {
  let engine: EngineProcess;
  let registry: RegistryProcess;
  let work: string;
  let host: string;
  let env: NodeJS.ProcessEnv;

  /** `docker …` with its own config dir, talking to minatod's socket. */
  const docker = (args: string[], stdin?: string): Promise<Run> =>
    new Promise((resolve, reject) => {
      const child = execFile("docker", args, { env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
      });
      child.stdin?.end(stdin);
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-docker-cli-"));
    [engine, registry] = await Promise.all([
      EngineProcess.start(),
      RegistryProcess.start({ args: ["--auth", "token", "--admin-password", PASSWORD] }),
    ]);
    host = `127.0.0.1:${registry.port}`;
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    const rootfs = await busyboxRootfs(work);
    const imported = await docker(["import", "--change", 'CMD ["/bin/sh"]', rootfs, `${host}/base/busybox:1`]);
    expect(imported.code, imported.stderr).toBe(0);
  });
  afterAll(async () => {
    await Promise.all([engine?.dispose(), registry?.dispose()]);
    await rm(work, { recursive: true, force: true });
  });

  it("version shows the Minato engine and the negotiated API", async () => {
    const { code, stdout } = await docker([
      "version",
      "--format",
      "{{.Server.Platform.Name}} {{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}",
    ]);
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^Minato Engine 0\.1\.0 linux\/\w+$/);
  });

  it("login refuses a wrong password and accepts the right one", async () => {
    const wrong = await docker(["login", "-u", "admin", "--password-stdin", host], "wrong-password\n");
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("incorrect username or password");
    const right = await docker(["login", "-u", "admin", "--password-stdin", host], `${PASSWORD}\n`);
    expect(right.code, right.stderr).toBe(0);
    expect(right.stdout).toContain("Login Succeeded");
  });

  it("push, rmi, pull, images, tag, image inspect and history", async () => {
    const name = `${host}/base/busybox:1`;
    const push = await docker(["push", name]);
    expect(push.code, push.stderr).toBe(0);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    expect(digest).toBeDefined();
    const id = (await docker(["image", "inspect", "--format", "{{.Id}}", name])).stdout.trim();

    const rmi = await docker(["rmi", name]);
    expect(rmi.stdout).toContain(`Untagged: ${name}`);
    expect(rmi.stdout).toContain(`Deleted: ${id}`);
    expect((await docker(["images", "-q"])).stdout.trim()).toBe("");

    const pull = await docker(["pull", name]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain(`Digest: ${digest}`);
    expect(pull.stdout).toContain(`Status: Downloaded newer image for ${name}`);

    expect((await docker(["tag", name, "mybox:latest"])).code).toBe(0);
    const images = await docker(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    expect(images.stdout.trim().split("\n").sort()).toEqual([
      `${host}/base/busybox:1 ${id.slice(7, 19)}`,
      `mybox:latest ${id.slice(7, 19)}`,
    ]);
    const inspect = JSON.parse((await docker(["image", "inspect", "mybox"])).stdout) as {
      Id: string;
      Config: { Cmd: string[] };
      RepoDigests: string[];
    }[];
    expect(inspect[0]?.Id).toBe(id);
    expect(inspect[0]?.Config.Cmd).toEqual(["/bin/sh"]);
    expect(inspect[0]?.RepoDigests).toContain(`${host}/base/busybox@${digest}`);
    const history = await docker(["history", "--format", "{{.ID}} {{.Comment}}", "mybox"]);
    expect(history.stdout.trim()).toBe(`${id.slice(7, 19)} Imported from -`);
  });

  it("save | load round-trips an image", async () => {
    const id = (await docker(["image", "inspect", "--format", "{{.Id}}", "mybox"])).stdout.trim();
    const saved = join(work, "mybox.tar");
    expect((await docker(["save", "-o", saved, "mybox"])).code).toBe(0);
    expect((await docker(["rmi", "mybox", `${host}/base/busybox:1`])).code).toBe(0);
    const loaded = await new Promise<Run>((resolve) => {
      const child = spawn("sh", ["-c", `docker load < "${saved}"`], { env });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c) => (stdout += c));
      child.stderr.on("data", (c) => (stderr += c));
      child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stdout).toContain("Loaded image: mybox:latest");
    expect((await docker(["image", "inspect", "--format", "{{.Id}}", "mybox"])).stdout.trim()).toBe(id);
  });

  it("an unknown image is a one-line error and a non-zero exit", async () => {
    const missing = await docker(["image", "inspect", "no-such-image"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim()).toMatch(/No such image: no-such-image/);
    const rmi = await docker(["rmi", "no-such-image"]);
    expect(rmi.code).not.toBe(0);
    expect(rmi.stderr).toContain("No such image: no-such-image");
  });
});
