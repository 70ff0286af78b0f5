/**
 * A container's filesystem through minatod: `diff`, `commit`, `export` and `cp` with the `minato`
 * binary, the stock docker CLI and the Engine API, against real runc containers on overlayfs — and
 * hostile paths and archives that must stay inside the container's rootfs. Needs root, as minatod does.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { END_OF_ARCHIVE, encodeHeader, padding, readTar, type TarHeader } from "@minato/layers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess, until } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");

interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

interface ImageInspect {
  Id: string;
  Comment: string;
  Author: string;
  Config: { Cmd?: string[]; Env?: string[]; Labels?: Record<string, string> };
  RootFS: { Layers: string[] };
  GraphDriver: { Data: { LowerDir: string } };
}

/** A tar built entry by entry, for archives no honest client would send. */
function tarOf(entries: { name: string; type?: TarHeader["type"]; content?: string; linkname?: string; mode?: number }[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const content = Buffer.from(entry.content ?? "");
    const type = entry.type ?? "file";
    parts.push(
      encodeHeader({
        name: entry.name,
        type,
        mode: entry.mode ?? (type === "directory" ? 0o755 : 0o644),
        uid: 0,
        gid: 0,
        size: type === "file" ? content.length : 0,
        mtime: 1_700_000_000,
        linkname: entry.linkname ?? "",
        devmajor: 0,
        devminor: 0,
        xattrs: new Map(),
      }),
    );
    if (type === "file") parts.push(content, padding(content.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

async function tarEntries(tar: Buffer): Promise<Map<string, { header: TarHeader; content: string }>> {
  const entries = new Map<string, { header: TarHeader; content: string }>();
  for await (const { header, body } of readTar(Readable.from([tar]))) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk));
    entries.set(header.name.replace(/^\.\//, "").replace(/\/$/, ""), { header, content: Buffer.concat(chunks).toString("utf8") });
  }
  return entries;
}

describe("container filesystems: diff, commit, export, cp (real minatod, runc, docker CLI)", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;
  const tag = randomBytes(4).toString("hex");

  const runBinary = (binary: string, args: string[], stdin?: Buffer): Promise<Result> =>
    new Promise((resolve, reject) => {
      const child = spawn(binary, args, { env, stdio: ["pipe", "pipe", "pipe"] });
      const stdout: Buffer[] = [];
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString("utf8");
      });
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout: Buffer.concat(stdout), stderr }));
      child.stdin.end(stdin);
    });
  const minato = (args: string[], stdin?: Buffer) => runBinary(process.execPath, [MINATO, ...args], stdin);
  const docker = (args: string[], stdin?: Buffer) => runBinary("docker", args, stdin);
  const text = (result: Result) => result.stdout.toString("utf8");

  const ok = async (result: Promise<Result>): Promise<string> => {
    const done = await result;
    expect(done.code, done.stderr).toBe(0);
    return text(done);
  };
  const state = async (name: string) =>
    (await engine.json<{ State: { Status: string; Paused: boolean } }>("GET", `/containers/${name}/json`)).body.State;
  const containerFile = async (container: string, path: string) => {
    const response = await engine.api("GET", `/containers/${container}/archive?path=${encodeURIComponent(path)}`);
    if (response.status !== 200) return undefined;
    return tarEntries(response.body);
  };
  const put = (container: string, path: string, tar: Buffer) =>
    engine.api("PUT", `/containers/${container}/archive?path=${encodeURIComponent(path)}`, {
      body: tar,
      headers: { "content-type": "application/x-tar" },
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-container-files-"));
    engine = await EngineProcess.start();
    env = {
      PATH: process.env.PATH,
      HOME: work,
      DOCKER_CONFIG: join(work, "docker"),
      DOCKER_HOST: `unix://${engine.socket}`,
      MINATO_HOST: `unix://${engine.socket}`,
    };
    const rootfs = await busyboxRootfs(work);
    await ok(docker(["import", "--change", 'CMD ["/bin/sh"]', rootfs, "busybox:latest"]));
    // The container most tests look at: additions, a modification, deletions.
    await ok(
      minato([
        "run",
        "--name",
        "changer",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo hello > /data/x && echo 'extra:x:1:1::/:/bin/sh' >> /etc/passwd && rm /etc/group /bin/vi",
      ]),
    );
  }, 120_000);
  afterAll(async () => {
    const left = await minato(["ps", "-aq"]).catch(() => undefined);
    for (const id of left ? text(left).split("\n").filter(Boolean) : []) await minato(["rm", "-f", id]);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("diff lists exactly what the container changed, without the runtime's mount points", async () => {
    const expected = ["C /bin", "D /bin/vi", "A /data", "A /data/x", "C /etc", "D /etc/group", "C /etc/passwd"];
    expect((await ok(minato(["diff", "changer"]))).trimEnd().split("\n")).toEqual(expected);
    expect((await ok(docker(["diff", "changer"]))).trimEnd().split("\n")).toEqual(expected);
    const api = await engine.json<{ Path: string; Kind: number }[]>("GET", "/containers/changer/changes");
    expect(api.body).toEqual([
      { Path: "/bin", Kind: 0 },
      { Path: "/bin/vi", Kind: 2 },
      { Path: "/data", Kind: 1 },
      { Path: "/data/x", Kind: 1 },
      { Path: "/etc", Kind: 0 },
      { Path: "/etc/group", Kind: 2 },
      { Path: "/etc/passwd", Kind: 0 },
    ]);

    // The image has no /etc/hosts, /etc/hostname or /etc/resolv.conf: runc made them to mount over.
    await ok(minato(["run", "--name", "idle", "busybox", "true"]));
    expect(await ok(minato(["diff", "idle"]))).toBe("");
    expect((await engine.json("GET", "/containers/nope/changes")).status).toBe(404);
  });

  it("commit -m -a -c makes an image with the changes; run shows them; inspect shows the metadata", async () => {
    const id = (
      await ok(
        minato([
          "commit",
          "-m",
          "added data",
          "-a",
          "Tester <t@example.com>",
          "-c",
          'CMD ["cat","/data/x"]',
          "-c",
          "ENV STAGE=committed",
          "changer",
          `committed:${tag}`,
        ]),
      )
    ).trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await ok(minato(["run", "--rm", `committed:${tag}`]))).toBe("hello\n");
    const probe =
      "test -e /etc/group && echo group || echo no-group; test -e /bin/vi && echo vi || echo no-vi; tail -n1 /etc/passwd; echo $STAGE";
    expect(await ok(minato(["run", "--rm", `committed:${tag}`, "sh", "-c", probe]))).toBe(
      "no-group\nno-vi\nextra:x:1:1::/:/bin/sh\ncommitted\n",
    );

    const image = (await engine.json<ImageInspect>("GET", `/images/committed:${tag}/json`)).body;
    expect(image.Id).toBe(id);
    expect(image.Comment).toBe("added data");
    expect(image.Author).toBe("Tester <t@example.com>");
    expect(image.Config.Cmd).toEqual(["cat", "/data/x"]);
    expect(image.Config.Env).toContain("STAGE=committed");
    const base = (await engine.json<ImageInspect>("GET", "/images/busybox/json")).body;
    expect(image.RootFS.Layers).toEqual([...base.RootFS.Layers, expect.stringMatching(/^sha256:/)]);
    const history = (await engine.json<{ Comment: string; CreatedBy: string }[]>("GET", `/images/committed:${tag}/history`)).body;
    expect(history[0]).toMatchObject({ Comment: "added data" });
    expect(history[0]?.CreatedBy).toContain("mkdir /data");

    // The new layer holds the changes and none of the runtime's empty mount points.
    const top = image.GraphDriver.Data.LowerDir.split(":")[0] as string;
    expect(readFileSync(join(top, "data/x"), "utf8")).toBe("hello\n");
    expect(lstatSync(join(top, "etc/group")).isCharacterDevice()).toBe(true);
    expect(existsSync(join(top, "etc/hosts"))).toBe(false);
    expect(existsSync(join(top, "etc/hostname"))).toBe(false);
    expect(existsSync(join(top, "etc/resolv.conf"))).toBe(false);

    // Nothing changed: no new layer, only history.
    const idle = (await ok(minato(["commit", "idle", `idle:${tag}`]))).trim();
    const idleImage = (await engine.json<ImageInspect>("GET", `/images/${idle}/json`)).body;
    expect(idleImage.RootFS.Layers).toEqual(base.RootFS.Layers);
  });

  it("commit of a running container freezes it while its changes are read, then resumes it", async () => {
    await ok(
      minato([
        "run",
        "-d",
        "--name",
        "busy",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/big bs=1M count=48 2>/dev/null; echo done > /ready; sleep 1000",
      ]),
    );
    await until(async () => (await engine.api("HEAD", "/containers/busy/archive?path=/ready")).status === 200, "the container's file");
    let committed = false;
    const commit = engine.json<{ Id: string }>("POST", `/commit?container=busy&repo=busy&tag=${tag}`).finally(() => {
      committed = true;
    });
    let sawPaused = false;
    while (!committed) {
      if ((await state("busy")).Paused) sawPaused = true;
    }
    const answer = await commit;
    expect(answer.status).toBe(201);
    expect(sawPaused).toBe(true);
    expect(await state("busy")).toMatchObject({ Status: "running", Paused: false });

    // pause=false leaves it running all along; a paused container stays paused.
    await ok(minato(["pause", "busy"]));
    await ok(minato(["commit", "busy"]));
    expect(await state("busy")).toMatchObject({ Status: "paused", Paused: true });
    await ok(minato(["unpause", "busy"]));
    await ok(minato(["commit", "--pause=false", "busy"]));
    expect(await state("busy")).toMatchObject({ Status: "running", Paused: false });
    await ok(minato(["rm", "-f", "busy"]));
  }, 120_000);

  it("commit refuses a missing container (404) and bad changes (400)", async () => {
    const missing = await engine.json<{ message: string }>("POST", "/commit?container=nope");
    expect(missing.status).toBe(404);
    expect(missing.body.message).toContain("No such container: nope");
    const run = await engine.json<{ message: string }>("POST", `/commit?container=changer&changes=${encodeURIComponent("RUN rm -rf /")}`);
    expect(run.status).toBe(400);
    expect(run.body.message).toBe("RUN is not a valid change command");
    const bogus = await engine.json<{ message: string }>("POST", `/commit?container=changer&changes=${encodeURIComponent("BOGUS x")}`);
    expect(bogus.status).toBe(400);
    expect(bogus.body.message).toMatch(/invalid change: .*bogus/i);
    const cli = await minato(["commit", "-c", "FROM busybox", "changer"]);
    expect(cli.code).toBe(1);
    expect(cli.stderr.trim()).toBe("Error response from daemon: FROM is not a valid change command");
  });

  it("export streams the whole filesystem: the image's files and the container's changes", async () => {
    await ok(minato(["export", "-o", join(work, "changer.tar"), "changer"]));
    const entries = await tarEntries(await readFile(join(work, "changer.tar")));
    expect(entries.get("bin/busybox")?.header.type).toBe("file");
    expect(entries.get("bin/sh")?.header).toMatchObject({ type: "symlink", linkname: "busybox" });
    expect(entries.get("data/x")?.content).toBe("hello\n");
    expect(entries.get("etc/passwd")?.content).toContain("extra:x:1:1");
    expect(entries.has("etc/group")).toBe(false);
    expect(entries.has("bin/vi")).toBe(false);
    expect([...entries.keys()].some((name) => name.includes(".wh."))).toBe(false);

    const viaDocker = await docker(["export", "changer"]);
    expect(viaDocker.code, viaDocker.stderr).toBe(0);
    expect((await tarEntries(viaDocker.stdout)).get("data/x")?.content).toBe("hello\n");
  });

  it("cp copies files, directories, dir/. and tar streams both ways, running or stopped", async () => {
    const src = join(work, "src");
    await mkdir(join(src, "sub"), { recursive: true });
    await writeFile(join(src, "a.txt"), "alpha\n");
    await writeFile(join(src, "sub/b.txt"), "beta\n", { mode: 0o600 });
    await symlink("a.txt", join(src, "link"));
    // The symlinks are for the hostile-path test below.
    await ok(
      minato([
        "run",
        "-d",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "ln -s / /tmp/rootlink && ln -s ../../../../.. /tmp/uplink && mkdir /tmp/inbox && sleep 1000",
      ]),
    );
    await until(async () => (await engine.api("HEAD", "/containers/box/archive?path=/tmp/inbox")).status === 200, "the container's setup");
    await ok(minato(["create", "--name", "stopped", "busybox", "true"]));

    for (const name of ["box", "stopped"]) {
      await ok(minato(["cp", join(src, "a.txt"), `${name}:/tmp/`]));
      await ok(minato(["cp", join(src, "a.txt"), `${name}:/tmp/renamed.txt`]));
      await ok(minato(["cp", src, `${name}:/tmp/`]));
      await ok(minato(["cp", `${src}/.`, `${name}:/tmp/flat`]));
      const tmp = await containerFile(name, "/tmp");
      expect(tmp?.get("tmp/a.txt")?.content).toBe("alpha\n");
      expect(tmp?.get("tmp/renamed.txt")?.content).toBe("alpha\n");
      expect(tmp?.get("tmp/src/sub/b.txt")?.content).toBe("beta\n");
      expect(tmp?.get("tmp/src/sub/b.txt")?.header.mode).toBe(0o600);
      expect(tmp?.get("tmp/src/link")?.header).toMatchObject({ type: "symlink", linkname: "a.txt" });
      expect(tmp?.get("tmp/flat/a.txt")?.content).toBe("alpha\n");
      expect(tmp?.get("tmp/flat/sub/b.txt")?.content).toBe("beta\n");
      expect(tmp?.has("tmp/flat/src")).toBe(false);
    }
    expect(await state("box")).toMatchObject({ Status: "running", Paused: false });

    const out = join(work, "out");
    await mkdir(out);
    await ok(minato(["cp", "stopped:/etc/passwd", `${out}/`]));
    expect(await readFile(join(out, "passwd"), "utf8")).toContain("root:x:0:0");
    await ok(minato(["cp", "box:/tmp/src", out]));
    expect(await readFile(join(out, "src/sub/b.txt"), "utf8")).toBe("beta\n");
    expect(lstatSync(join(out, "src/link")).isSymbolicLink()).toBe(true);
    await ok(minato(["cp", "box:/tmp/src/.", join(out, "contents")]));
    expect(await readFile(join(out, "contents/a.txt"), "utf8")).toBe("alpha\n");
    await ok(minato(["cp", "-L", "box:/tmp/src/link", join(out, "followed")]));
    expect(lstatSync(join(out, "followed")).isFile()).toBe(true);
    expect(await readFile(join(out, "followed"), "utf8")).toBe("alpha\n");

    // `-`: a tar on stdout, and a tar from stdin.
    const streamed = await tarEntries((await minato(["cp", "box:/tmp/src", "-"])).stdout);
    expect([...streamed.keys()].sort()).toEqual(["src", "src/a.txt", "src/link", "src/sub", "src/sub/b.txt"]);
    await ok(minato(["cp", "-", "stopped:/tmp"], tarOf([{ name: "from-stdin.txt", content: "piped\n" }])));
    expect((await containerFile("stopped", "/tmp/from-stdin.txt"))?.get("from-stdin.txt")?.content).toBe("piped\n");

    const missing = await minato(["cp", "box:/no/such/file", out]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("Could not find the file /no/such/file in container box");
  }, 120_000);

  it("docker cp both ways, and docker commit, against minatod", async () => {
    const local = join(work, "docker-src.txt");
    await writeFile(local, "from docker\n");
    await ok(docker(["cp", local, "box:/tmp/docker.txt"]));
    expect((await containerFile("box", "/tmp/docker.txt"))?.get("docker.txt")?.content).toBe("from docker\n");
    await ok(docker(["cp", join(work, "src"), "box:/tmp/docker-dir"]));
    expect((await containerFile("box", "/tmp/docker-dir/sub/b.txt"))?.get("b.txt")?.content).toBe("beta\n");
    const back = join(work, "docker-back");
    await ok(docker(["cp", "box:/tmp/docker-dir", back]));
    expect(await readFile(join(back, "a.txt"), "utf8")).toBe("alpha\n");
    await ok(docker(["cp", "changer:/data/x", join(work, "x-copy")]));
    expect(await readFile(join(work, "x-copy"), "utf8")).toBe("hello\n");

    const id = (await ok(docker(["commit", "-m", "via docker", "-c", 'CMD ["cat", "/tmp/docker.txt"]', "box", `dcommit:${tag}`]))).trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await ok(docker(["run", "--rm", `dcommit:${tag}`]))).toBe("from docker\n");
    expect((await ok(docker(["image", "inspect", "--format", "{{.Comment}}", `dcommit:${tag}`]))).trim()).toBe("via docker");
  }, 120_000);

  it("paths and symlinks in the container never lead outside its rootfs", async () => {
    const passwd = (await containerFile("box", "/etc/passwd"))?.get("passwd")?.content;
    expect(passwd).toContain("root:x:0:0:root:/root:/bin/sh");
    expect(passwd).not.toBe(readFileSync("/etc/passwd", "utf8"));
    for (const path of ["../../../etc/passwd", "/tmp/rootlink/etc/passwd", "/tmp/uplink/etc/passwd", "/tmp/uplink/../../etc/passwd"]) {
      expect((await containerFile("box", path))?.get("passwd")?.content, path).toBe(passwd);
    }

    const hostTmp = tmpdir();
    const marker = `minato-escape-${tag}`;
    for (const dest of ["/tmp/rootlink/tmp", "/tmp/uplink/tmp", "../../../../tmp"]) {
      expect((await put("box", dest, tarOf([{ name: `${marker}.txt`, content: dest }]))).status, dest).toBe(200);
      expect(existsSync(join(hostTmp, `${marker}.txt`)), dest).toBe(false);
      expect((await containerFile("box", `/tmp/${marker}.txt`))?.get(`${marker}.txt`)?.content).toBe(dest);
    }
    // cp through the symlinks with the CLI: contained too.
    await ok(minato(["cp", join(work, "src/a.txt"), `box:/tmp/uplink/tmp/${marker}-cli.txt`]));
    expect(existsSync(join(hostTmp, `${marker}-cli.txt`))).toBe(false);
    expect((await containerFile("box", `/tmp/${marker}-cli.txt`))?.get(`${marker}-cli.txt`)?.content).toBe("alpha\n");
    await ok(minato(["cp", "box:/tmp/uplink/etc/passwd", join(work, "passwd-through-link")]));
    expect(await readFile(join(work, "passwd-through-link"), "utf8")).toBe(passwd);

    // Hostile archives: `..` is refused; absolute names and links followed by files stay in the container.
    const dots = await put("box", "/tmp/inbox", tarOf([{ name: `../../../../../../${marker}-dots.txt`, content: "x" }]));
    expect(dots.status).toBe(400);
    expect(existsSync(join("/", `${marker}-dots.txt`))).toBe(false);
    expect(existsSync(join(hostTmp, `${marker}-dots.txt`))).toBe(false);
    const hostile = tarOf([
      { name: `/tmp/${marker}-abs.txt`, content: "absolute" },
      { name: "evil", type: "symlink", linkname: "/" },
      { name: `evil/tmp/${marker}-through.txt`, content: "through a link" },
      { name: "up", type: "symlink", linkname: "../../../../../../../../tmp" },
      { name: `up/${marker}-up.txt`, content: "up and out" },
    ]);
    expect((await put("box", "/tmp/inbox", hostile)).status).toBe(200);
    for (const name of ["abs", "through", "up"]) expect(existsSync(join(hostTmp, `${marker}-${name}.txt`)), name).toBe(false);
    const inbox = await containerFile("box", "/tmp/inbox");
    expect(inbox?.get(`inbox/tmp/${marker}-abs.txt`)?.content).toBe("absolute");
    expect((await containerFile("box", `/tmp/${marker}-through.txt`))?.get(`${marker}-through.txt`)?.content).toBe("through a link");
    expect((await containerFile("box", `/tmp/${marker}-up.txt`))?.get(`${marker}-up.txt`)?.content).toBe("up and out");
    // A hard link may only name a file of the destination.
    const hardlink = tarOf([{ name: "passwd-link", type: "link", linkname: "../../../etc/passwd" }]);
    expect((await put("box", "/tmp/inbox", hardlink)).status).toBe(400);

    // Missing destinations and non-directories.
    const missing = await engine.json<{ message: string }>("PUT", "/containers/box/archive?path=/no/such/dir", {
      body: tarOf([{ name: "f", content: "x" }]),
    });
    expect(missing.status).toBe(404);
    const notDir = await engine.json<{ message: string }>("PUT", "/containers/box/archive?path=/etc/passwd", {
      body: tarOf([{ name: "f", content: "x" }]),
    });
    expect(notDir.status).toBe(400);
    expect(notDir.body.message).toBe("extraction point is not a directory");
    expect((await engine.api("HEAD", "/containers/box/archive?path=/no/such")).status).toBe(404);
    expect((await engine.api("GET", "/containers/nope/archive?path=/")).status).toBe(404);
    const stat = await engine.api("HEAD", "/containers/box/archive?path=/tmp/rootlink");
    const decoded = JSON.parse(Buffer.from(String(stat.headers["x-docker-container-path-stat"]), "base64").toString("utf8"));
    expect(decoded).toMatchObject({ name: "rootlink", linkTarget: "/" });
    expect(decoded.mode).toBe(2 ** 27 + 0o777);
    expect(await state("box")).toMatchObject({ Status: "running", Paused: false });
  }, 120_000);
});
