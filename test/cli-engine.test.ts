/**
 * The `minato` CLI end to end: the built binary, run as a child process, against a real `minatod`
 * (its own data root and socket) and a real `minato-registry` with token authentication on
 * loopback. Every step asserts what the user sees — stdout, stderr, exit status — and, where it
 * matters, what the daemon then holds. Needs root, as minatod does.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineClient } from "../apps/cli/src/client.js";
import { Screen } from "../apps/cli/test/support/screen.js";
import { RegistryProcess, ROOT } from "./support/registry-process.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");
const MINATOD = join(ROOT, "apps/engine/bin/minatod.js");
const PASSWORD = "cli-e2e-password";
const ID = /^sha256:[0-9a-f]{64}$/;
const ESC = "\u001b";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let work: string;
let host: string;
let dataRoot: string;
let daemon: ChildProcess;
let daemonLog = "";
let registry: RegistryProcess;
let env: NodeJS.ProcessEnv;
let rootfs: string;

/** Runs the real `minato` binary; `stdin` is text, bytes or a stream piped in. */
function minato(args: string[], options: { stdin?: string | Buffer | Readable; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MINATO, ...args], { env: options.env ?? env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }),
    );
    const input = options.stdin;
    // A CLI that fails early stops reading its stdin: that is its exit status to report, not an EPIPE here.
    child.stdin.on("error", () => undefined);
    if (input === undefined) child.stdin.end();
    else if (typeof input === "string" || Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
  });
}

/** `minato A | minato B`: the first one's stdout is the second one's stdin, through a real pipe. */
async function pipeline(first: string[], second: string[]): Promise<[Result, Result]> {
  const producer = spawn(process.execPath, [MINATO, ...first], { env, stdio: ["ignore", "pipe", "pipe"] });
  let producerErr = "";
  producer.stderr.on("data", (chunk: Buffer) => {
    producerErr += chunk.toString("utf8");
  });
  const produced = new Promise<Result>((resolve) => producer.on("close", (code) => resolve({ code, stdout: "", stderr: producerErr })));
  const consumed = minato(second, { stdin: producer.stdout });
  return Promise.all([produced, consumed]);
}

/** Runs `minato` on a pseudo-terminal (util-linux `script`), returning what the terminal received. */
function onTerminal(args: string[]): Promise<Result> {
  const quoted = [process.execPath, MINATO, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn("script", ["-qec", `stty cols 160; ${quoted}`, "/dev/null"], { env, stdio: ["pipe", "pipe", "pipe"] });
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
    child.stdin.end();
  });
}

/** A small root filesystem tar: a few files, a directory, a symlink, an executable. */
async function buildRootfs(dir: string): Promise<string> {
  const tree = join(dir, "tree");
  await mkdir(join(tree, "etc"), { recursive: true });
  await mkdir(join(tree, "bin"), { recursive: true });
  await writeFile(join(tree, "etc/os-release"), 'NAME="Minato e2e"\nID=minato\n');
  await writeFile(join(tree, "bin/hello"), "#!/bin/sh\necho hello from minato\n");
  await chmod(join(tree, "bin/hello"), 0o755);
  await writeFile(join(tree, "data.bin"), Buffer.alloc(256 * 1024, 7));
  await symlink("bin/hello", join(tree, "hello"));
  const tar = join(dir, "rootfs.tar");
  const status = await new Promise<number | null>((resolve, reject) => {
    const child = spawn("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C", tree, "-cf", tar, "."]);
    child.on("error", reject);
    child.on("close", resolve);
  });
  if (status !== 0) throw new Error(`tar exited with ${status}`);
  return tar;
}

async function startDaemon(): Promise<void> {
  const socket = join(work, "minato.sock");
  host = `unix://${socket}`;
  dataRoot = join(work, "data");
  daemon = spawn(process.execPath, [MINATOD, "--data-root", dataRoot, "--exec-root", join(work, "exec"), "-H", host], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: work, // no .env of the repository is read
  });
  const append = (chunk: Buffer) => {
    daemonLog = (daemonLog + chunk.toString("utf8")).slice(-32 * 1024);
  };
  daemon.stdout?.on("data", append);
  daemon.stderr?.on("data", append);
  const client = new EngineClient(host);
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (daemon.exitCode !== null) throw new Error(`minatod exited with ${daemon.exitCode}:\n${daemonLog}`);
      try {
        await client.ping();
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`minatod did not answer /_ping: ${(error as Error).message}\n${daemonLog}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await client.close();
  }
}

/** The lines of a table, split into columns on runs of 3+ spaces (cells never contain those). */
function table(stdout: string): string[][] {
  return stdout
    .trimEnd()
    .split("\n")
    .map((line) => line.split(/ {3,}/));
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("cli-engine.test.ts runs minatod, which needs root: run the tests as root");
  for (const built of ["apps/cli/dist/cli.js", "apps/engine/dist/cli.js", "apps/registry/dist/cli.js"]) {
    if (!existsSync(join(ROOT, built))) throw new Error(`${built} is missing: build first with \`npx tsc -b\``);
  }
  work = await mkdtemp(join(tmpdir(), "minato-cli-e2e-"));
  rootfs = await buildRootfs(work);
  await startDaemon();
  registry = await RegistryProcess.start({ args: ["--auth", "token", "--admin-user", "admin", "--admin-password", PASSWORD] });
  env = {
    PATH: process.env.PATH,
    HOME: work,
    DOCKER_CONFIG: join(work, "docker-config"),
    MINATO_HOST: host,
    LANG: "C.UTF-8",
  };
}, 120_000);

afterAll(async () => {
  if (daemon && daemon.exitCode === null) {
    const exited = new Promise((r) => daemon.once("exit", r));
    daemon.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (daemon.exitCode === null) daemon.kill("SIGKILL");
  }
  await registry?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("minato against minatod and the registry", () => {
  let imageId: string;
  let pushedDigest: string;
  let remote: string;

  it("version: client and server sections, and --format", async () => {
    const result = await minato(["version"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Client:\n Version: {11}\d+\.\d+\.\d+\n API version: {7}1\.\d+\n/);
    expect(result.stdout).toMatch(
      /\n\nServer: Minato Engine\n Engine:\n {2}Version: {10}\S+\n {2}API version: {6}1\.\d+ \(minimum version 1\.\d+\)\n/,
    );
    expect(result.stdout).toMatch(/\n {2}OS\/Arch: {10}linux\/\w+\n/);

    const formatted = await minato(["version", "--format", "{{.Server.ApiVersion}} {{.Client.Version}}"]);
    expect(formatted.code).toBe(0);
    expect(formatted.stdout).toMatch(/^1\.\d+ \d+\.\d+\.\d+\n$/);
    const json = await minato(["version", "--format", "{{json .}}"]);
    expect(JSON.parse(json.stdout).Server.Os).toBe("linux");
  });

  it("info: server details, and --format", async () => {
    const result = await minato(["info"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^Client:\n Version: {4}\S+\n Context: {4}default\n Debug Mode: false\n\nServer:\n Containers: 0\n {2}Running: 0\n/,
    );
    expect(result.stdout).toContain("\n Images: 0\n");
    expect(result.stdout).toContain(`\n Minato Root Dir: ${dataRoot}\n`);
    expect(result.stdout).toMatch(/\n Total Memory: [\d.]+[KMGT]iB\n/);
    const formatted = await minato(["info", "--format", "{{.DockerRootDir}} {{.Images}} {{.ClientInfo.Context}}"]);
    expect(formatted).toEqual({ code: 0, stdout: `${dataRoot} 0 default\n`, stderr: "" });
  });

  it("import: a rootfs tar from a file, with --change, printing the new image ID", async () => {
    const result = await minato([
      "import",
      "-c",
      'CMD ["/bin/hello"]',
      "--change",
      "ENV GREETING=hi",
      "-m",
      "e2e import",
      rootfs,
      "e2e/base:1",
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    imageId = result.stdout.trim();
    remote = `${registry.authority}/e2e/base:1`;
  });

  it("import: from stdin with -, untagged", async () => {
    const result = await minato(["import", "-"], { stdin: await readFile(rootfs) });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(ID);
  });

  it("images: docker's columns, -q, --format, --filter, --digests", async () => {
    const result = await minato(["images"]);
    expect(result.code).toBe(0);
    const rows = table(result.stdout);
    expect(rows[0]).toEqual(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    expect(rows).toHaveLength(3);
    const base = rows.find((r) => r[0] === "e2e/base");
    expect(base?.[1]).toBe("1");
    expect(base?.[2]).toBe(imageId.slice(7, 19));
    expect(base?.[3]).toMatch(/^(Less than a second|1 second|\d+ seconds|About a minute) ago$/);
    expect(base?.[4]).toMatch(/^\d+(\.\d+)?[kM]B$/);
    expect(rows.find((r) => r[0] === "<none>")?.[1]).toBe("<none>");

    const quiet = await minato(["images", "-q", "--filter", "reference=e2e/base"]);
    expect(quiet).toEqual({ code: 0, stdout: `${imageId.slice(7, 19)}\n`, stderr: "" });
    const dangling = await minato(["image", "ls", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}}"]);
    expect(dangling.stdout).toBe("<none>:<none>\n");
    const positional = await minato(["images", "e2e/base:1", "--no-trunc", "--format", "{{.ID}} {{.Size}}"]);
    expect(positional.stdout).toMatch(new RegExp(`^${imageId} \\d+(\\.\\d+)?[kM]B\\n$`));
    const json = await minato(["images", "--format", "json", "e2e/base"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ Repository: "e2e/base", Tag: "1", ID: imageId.slice(7, 19), Digest: "<none>" });
    const digests = await minato(["images", "--digests", "e2e/base"]);
    expect(table(digests.stdout)[0]).toEqual(["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]);
  });

  it("image inspect: the config import made; --format; unknown image", async () => {
    const result = await minato(["image", "inspect", "e2e/base:1"]);
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith("[\n    {\n")).toBe(true);
    const [image] = JSON.parse(result.stdout);
    expect(image.Id).toBe(imageId);
    expect(image.RepoTags).toEqual(["e2e/base:1"]);
    expect(image.Config.Cmd).toEqual(["/bin/hello"]);
    expect(image.Config.Env).toContain("GREETING=hi");
    expect(image.RootFS.Layers).toHaveLength(1);
    expect(image.Os).toBe("linux");

    const formatted = await minato(["image", "inspect", "--format", "{{.Id}} {{json .Config.Cmd}} {{.Os}}", "e2e/base:1"]);
    expect(formatted).toEqual({ code: 0, stdout: `${imageId} ["/bin/hello"] linux\n`, stderr: "" });

    const missing = await minato(["image", "inspect", "e2e/nosuch:1"]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("[]\n");
    expect(missing.stderr).toBe("Error response from daemon: No such image: e2e/nosuch:1\n");
  });

  it("history: one imported layer, with docker's columns and flags", async () => {
    const result = await minato(["history", "e2e/base:1"]);
    expect(result.code).toBe(0);
    const rows = table(result.stdout);
    expect(rows[0]).toEqual(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    expect(rows).toHaveLength(2);
    expect(rows[1]?.[0]).toBe(imageId.slice(7, 19));

    const raw = await minato(["history", "--human=false", "--no-trunc", "--format", "{{.ID}}|{{.CreatedSince}}|{{.Size}}", "e2e/base:1"]);
    expect(raw.code).toBe(0);
    expect(raw.stdout).toMatch(new RegExp(`^${imageId}\\|\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(Z|[+-]\\d\\d:\\d\\d)\\|\\d+\\n$`));
    expect(Number(raw.stdout.trim().split("|")[2])).toBeGreaterThan(256 * 1024);
    const quiet = await minato(["history", "-q", "e2e/base:1"]);
    expect(quiet.stdout).toBe(`${imageId.slice(7, 19)}\n`);
    // import -m sets the layer's history comment (swagger: POST /images/create `message`).
    expect(rows[1]?.at(-1)).toBe("e2e import");
  });

  it("tag: a registry name for the image", async () => {
    const result = await minato(["tag", "e2e/base:1", remote]);
    expect(result).toEqual({ code: 0, stdout: "", stderr: "" });
    const bad = await minato(["tag", "e2e/nosuch:1", "e2e/other:1"]);
    expect(bad).toEqual({ code: 1, stdout: "", stderr: "Error response from daemon: No such image: e2e/nosuch:1\n" });
    const all = await minato(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    expect(all.stdout).toContain(`${remote} ${imageId.slice(7, 19)}\n`);
    expect(all.stdout).toContain(`e2e/base:1 ${imageId.slice(7, 19)}\n`);
    // A reference filter lists only the matching tags of an image, as dockerd does.
    const listed = await minato(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", remote]);
    expect(listed.stdout).toBe(`${remote} ${imageId.slice(7, 19)}\n`);
  });

  it("push without logging in: the registry's refusal ends the stream, status 1", async () => {
    const result = await minato(["push", remote]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`The push refers to repository [${registry.authority}/e2e/base]\n`);
    expect(result.stderr.split("\n")).toHaveLength(2);
    expect(result.stderr).toMatch(/unauthorized|authentication|denied|403/i);
  });

  it("login: wrong credentials fail with the daemon's message and store nothing", async () => {
    const result = await minato(["login", "-u", "admin", "--password-stdin", registry.authority], { stdin: "wrong-password\n" });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^Error response from daemon: .+\n$/);
    expect(existsSync(join(work, "docker-config", "config.json"))).toBe(false);
  });

  it("login: right credentials are stored in config.json as the docker CLI stores them", async () => {
    const result = await minato(["login", "--username", "admin", "--password-stdin", registry.authority], { stdin: `${PASSWORD}\n` });
    expect(result).toEqual({ code: 0, stdout: "Login Succeeded\n", stderr: "" });
    const config = JSON.parse(await readFile(join(work, "docker-config", "config.json"), "utf8"));
    expect(config.auths[registry.authority]).toEqual({ auth: Buffer.from(`admin:${PASSWORD}`).toString("base64") });
    // Without flags, the stored credentials are tried first.
    const again = await minato(["login", registry.authority]);
    expect(again).toEqual({ code: 0, stdout: "Authenticating with existing credentials...\nLogin Succeeded\n", stderr: "" });
  });

  it("push: plain progress lines, the manifest digest, status 0", async () => {
    const result = await minato(["push", remote]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain(ESC);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`The push refers to repository [${registry.authority}/e2e/base]`);
    expect(lines).toContainEqual(expect.stringMatching(/^[0-9a-f]{12}: (Pushed|Layer already exists)$/));
    const last = lines.at(-1) as string;
    expect(last).toMatch(/^1: digest: sha256:[0-9a-f]{64} size: \d+$/);
    pushedDigest = (/sha256:[0-9a-f]{64}/.exec(last) as RegExpExecArray)[0];
    const quiet = await minato(["push", "-q", remote]);
    expect(quiet).toEqual({ code: 0, stdout: `${remote}\n`, stderr: "" });
  });

  it("rmi: untags and deletes; unknown image fails with the daemon's 404 message", async () => {
    const result = await minato(["rmi", remote, "e2e/base:1"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Untagged: ${remote}\n`);
    expect(result.stdout).toContain("Untagged: e2e/base:1\n");
    expect(result.stdout.trimEnd().split("\n").at(-1)).toBe(`Deleted: ${imageId}`);
    const listed = await minato(["images", "-q", "e2e/base"]);
    expect(listed.stdout).toBe("");

    const missing = await minato(["rmi", "e2e/nosuch:1"]);
    expect(missing).toEqual({ code: 1, stdout: "", stderr: "Error response from daemon: No such image: e2e/nosuch:1\n" });
  });

  it("pull: back from the registry with the stored login, same image and digest", async () => {
    const result = await minato(["pull", remote]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain(ESC);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`1: Pulling from ${registry.authority}/e2e/base`);
    expect(lines).toContainEqual(expect.stringMatching(/^[0-9a-f]{12}: (Pull complete|Already exists)$/));
    expect(lines).toContain(`Digest: ${pushedDigest}`);
    expect(lines).toContain(`Status: Downloaded newer image for ${remote}`);
    expect(lines.at(-1)).toBe(remote);
    const inspected = await minato(["image", "inspect", "--format", "{{.Id}} {{json .RepoDigests}}", remote]);
    expect(inspected.stdout).toBe(`${imageId} ${JSON.stringify([`${registry.authority}/e2e/base@${pushedDigest}`])}\n`);

    const quiet = await minato(["pull", "-q", remote]);
    expect(quiet).toEqual({ code: 0, stdout: `${remote}\n`, stderr: "" });
    const byDigest = await minato(["pull", `${registry.authority}/e2e/base@${pushedDigest}`]);
    expect(byDigest.code).toBe(0);
    expect(byDigest.stdout.trimEnd().split("\n").at(-1)).toBe(`${registry.authority}/e2e/base@${pushedDigest}`);
  });

  it("pull: an unknown tag fails with one line and status 1", async () => {
    const result = await minato(["pull", `${registry.authority}/e2e/base:nosuch`]);
    expect(result.code).toBe(1);
    expect(result.stderr.split("\n")).toHaveLength(2);
    expect(result.stderr).toMatch(/not found|unknown/i);
  });

  it("image prune: dangling images, then everything with -a", async () => {
    const before = await minato(["images", "--filter", "dangling=true", "-q", "--no-trunc"]);
    const dangling = before.stdout.trim().split("\n");
    expect(dangling).toHaveLength(1);
    expect(dangling[0]).toMatch(ID);

    const pruned = await minato(["image", "prune", "-f"]);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(
      new RegExp(`^Deleted Images:\\ndeleted: ${dangling[0]}\\n\\nTotal reclaimed space: \\d+(\\.\\d+)?[kM]?B\\n$`),
    );
    const after = await minato(["images", "--filter", "dangling=true", "-q"]);
    expect(after.stdout).toBe("");

    const declined = await minato(["image", "prune", "-a"], { stdin: "n\n" });
    expect(declined).toEqual({
      code: 0,
      stdout:
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] ",
      stderr: "",
    });
    expect((await minato(["images", "-q"])).stdout).not.toBe("");

    const all = await minato(["image", "prune", "-a"], { stdin: "y\n" });
    expect(all.code).toBe(0);
    expect(all.stdout).toContain(`untagged: ${remote}\n`);
    expect(all.stdout).toContain(`deleted: ${imageId}\n`);
    expect(all.stdout).toMatch(/\nTotal reclaimed space: \d+(\.\d+)?[kM]B\n$/);
    const empty = await minato(["images"]);
    expect(empty.stdout).toBe("REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");
    const info = await minato(["info", "--format", "{{.Images}}"]);
    expect(info.stdout).toBe("0\n");
  });

  it("pull on a terminal: one line per layer, redrawn in place; the final screen as docker leaves it", async () => {
    const result = await onTerminal(["pull", remote]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${ESC}[1A`);
    const screen = new Screen(160);
    screen.write(result.stdout);
    const lines = screen.text().split("\n");
    expect(lines).toHaveLength(5);
    expect(lines[0]).toBe(`1: Pulling from ${registry.authority}/e2e/base`);
    expect(lines[1]).toMatch(/^[0-9a-f]{12}: Pull complete$/);
    expect(lines.slice(2)).toEqual([`Digest: ${pushedDigest}`, `Status: Downloaded newer image for ${remote}`, remote]);
  });

  it("save -o and load -i: a round trip through an archive file", async () => {
    const archive = join(work, "saved.tar");
    const saved = await minato(["save", "-o", archive, remote]);
    expect(saved).toEqual({ code: 0, stdout: "", stderr: "" });
    const listing = await new Promise<string>((resolve, reject) => {
      const child = spawn("tar", ["-tf", archive]);
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8");
      });
      child.on("error", reject);
      child.on("close", () => resolve(out));
    });
    expect(listing.split("\n")).toContain("manifest.json");
    expect(listing.split("\n")).toContain(`blobs/sha256/${imageId.slice(7)}`);

    expect((await minato(["rmi", remote])).code).toBe(0);
    expect((await minato(["images", "-q"])).stdout).toBe("");
    const loaded = await minato(["load", "-i", archive]);
    expect(loaded).toEqual({ code: 0, stdout: `Loaded image: ${remote}\n`, stderr: "" });
    const inspected = await minato(["image", "inspect", "--format", "{{.Id}}", remote]);
    expect(inspected.stdout).toBe(`${imageId}\n`);
  });

  it("save | load: a round trip through a pipe", async () => {
    const [save, load] = await pipeline(["save", remote], ["load"]);
    expect(save).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(load).toEqual({ code: 0, stdout: `Loaded image: ${remote}\n`, stderr: "" });
    const missing = await minato(["save", "-o", join(work, "none.tar"), "e2e/nosuch:1"]);
    expect(missing).toEqual({ code: 1, stdout: "", stderr: "Error response from daemon: No such image: e2e/nosuch:1\n" });
    expect(existsSync(join(work, "none.tar"))).toBe(false);
  });

  it("load: an archive that is not an image fails with one line and status 1", async () => {
    const result = await minato(["load"], { stdin: await readFile(rootfs) });
    expect(result.code).toBe(1);
    expect(result.stderr.split("\n")).toHaveLength(2);
    expect(result.stderr).toMatch(/manifest\.json|index\.json|archive/);
  });

  it("logout: forgets the registry's credentials", async () => {
    const result = await minato(["logout", registry.authority]);
    expect(result).toEqual({ code: 0, stdout: `Removing login credentials for ${registry.authority}\n`, stderr: "" });
    const config = JSON.parse(await readFile(join(work, "docker-config", "config.json"), "utf8"));
    expect(config.auths[registry.authority]).toBeUndefined();
  });

  it("a stopped daemon: one line naming the socket", async () => {
    const result = await minato(["images"], { env: { ...env, MINATO_HOST: `unix://${join(work, "gone.sock")}` } });
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: `Cannot connect to the Minato daemon at unix://${join(work, "gone.sock")}. Is minatod running?\n`,
    });
  });
});
