/**
 * `POST /build` end to end against a real `minatod` (as root): multi-stage Dockerfiles over a real
 * context tar, the resulting image's config and layer contents, the step cache (hits, exact
 * invalidation, surviving a restart, nocache, prune), --target, reproducible output on two engines,
 * hostile and invalid input, the stock docker CLI's classic builder, and RUN (real runc build
 * containers: output, layers with whiteouts, failures, its cache key, reproducibility, no mounts left).
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeader } from "@minato/layers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheHits, imageFiles, postBuild as post, tarOf, writeTree } from "./support/build.js";
import { busyboxRootfs, EngineProcess, streamError } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

const DOCKERFILE = `# a multi-stage build
ARG BASE=busybox
FROM scratch AS assets
COPY --chmod=600 secret.txt /secret.txt
COPY data/ /data/

FROM \${BASE}
ARG VERSION=1
ARG UNUSED
ENV APP_VERSION=$VERSION
LABEL org.example.version=$VERSION org.example.name="demo app"
WORKDIR /app
COPY --chown=1000:1000 src/ ./src/
COPY *.conf /etc/app/
COPY --from=assets --chown=nobody /secret.txt /data/ /srv/
USER nobody
EXPOSE 8080 53/udp
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD ["/bin/true"]
ONBUILD COPY app.conf /onbuild.conf
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "echo hi"]
`;

interface Inspect {
  Id: string;
  Created: string;
  Author: string;
  Config: Record<string, unknown>;
  RootFS: { Layers: string[] };
}

/** Step numbers whose instruction starts with `prefix`. */
function stepsOf(text: string): Map<number, string> {
  const steps = new Map<number, string>();
  for (const match of text.matchAll(/^Step (\d+)\/\d+ : (.*)$/gm)) steps.set(Number(match[1]), match[2] as string);
  return steps;
}

async function manifestDigest(engine: EngineProcess, name: string): Promise<string> {
  const saved = await engine.api("GET", `/images/${encodeURIComponent(name)}/get`);
  const index = JSON.parse(execFileSync("tar", ["-xOf", "-", "index.json"], { input: saved.body }).toString("utf8")) as {
    manifests: { digest: string }[];
  };
  return index.manifests[0]?.digest as string;
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

describe("POST /build", () => {
  let engine: EngineProcess;
  let work: string;
  let context: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-build-"));
    engine = await EngineProcess.start();
    const rootfs = await busyboxRootfs(work);
    const imported = await engine.messages("POST", "/images/create?fromSrc=-&repo=busybox&tag=latest", {
      body: await readFile(rootfs),
    });
    expect(streamError(imported)).toBeUndefined();

    context = join(work, "context");
    await writeTree(context, {
      Dockerfile: DOCKERFILE,
      ".dockerignore": "*.md\ndata/skip*\n!data/skip-keep.txt\n",
      "secret.txt": "s3cret\n",
      "data/a.txt": "a\n",
      "data/skip1.txt": "skipped\n",
      "data/skip-keep.txt": "kept\n",
      "README.md": "# not in the image\n",
      "src/main.sh": "#!/bin/sh\necho main\n",
      "src/lib/util.sh": "util\n",
      "app.conf": "app=1\n",
      "other.conf": "other=1\n",
    });
    await chmod(join(context, "src/main.sh"), 0o755);
  });
  afterAll(async () => {
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("builds a multi-stage Dockerfile into a tagged image with the config and files it describes", async () => {
    const built = await post(engine, tarOf(context), { t: ["demo:1", "demo:latest"], buildargs: JSON.stringify({ VERSION: "2" }) });
    expect(built.status, built.body).toBe(200);
    expect(streamError(built.messages)).toBeUndefined();
    expect(built.text).toContain("Step 1/19 : FROM scratch AS assets\n");
    expect(built.text).toContain("Step 4/19 : FROM \u0024{BASE}\n");
    expect(built.text).toContain("Successfully tagged demo:1\n");
    expect(built.id).toMatch(/^sha256:[0-9a-f]{64}$/);

    const { body: image } = await engine.json<Inspect>("GET", "/images/demo:latest/json");
    expect(image.Id).toBe(built.id);
    const config = image.Config;
    expect(config.Env).toContain("APP_VERSION=2");
    expect(config.Labels).toEqual({ "org.example.version": "2", "org.example.name": "demo app" });
    expect(config.WorkingDir).toBe("/app");
    expect(config.User).toBe("nobody");
    expect(config.Entrypoint).toEqual(["/bin/sh"]);
    expect(config.Cmd).toEqual(["-c", "echo hi"]);
    expect(config.ExposedPorts).toEqual({ "8080/tcp": {}, "53/udp": {} });
    expect(config.StopSignal).toBe("SIGINT");
    expect(config.Healthcheck).toEqual({ Test: ["CMD", "/bin/true"], Interval: 5_000_000_000, Retries: 2 });
    expect(config.OnBuild).toEqual(["COPY app.conf /onbuild.conf"]);
    // busybox's one layer, WORKDIR /app (missing in busybox), three COPY layers.
    expect(image.RootFS.Layers).toHaveLength(5);

    const history = await engine.json<{ CreatedBy: string; Size: number }[]>("GET", "/images/demo:latest/history");
    expect(history.body.map((h) => h.CreatedBy)).toContain("/bin/sh -c #(nop)  ENV APP_VERSION=2");

    const files = await imageFiles(engine, "demo:latest", work);
    expect(files.get("app")).toMatchObject({ type: "directory" });
    expect(files.get("app/src/main.sh")).toMatchObject({ uid: 1000, gid: 1000, mode: 0o755, content: "#!/bin/sh\necho main\n" });
    expect(files.get("app/src/lib/util.sh")).toMatchObject({ uid: 1000, gid: 1000, content: "util\n" });
    expect(files.get("etc/app/app.conf")).toMatchObject({ uid: 0, gid: 0, content: "app=1\n" });
    expect(files.get("etc/app/other.conf")?.content).toBe("other=1\n");
    expect(files.get("srv/secret.txt")).toMatchObject({ uid: 65534, gid: 65534, mode: 0o600, content: "s3cret\n" });
    expect(files.get("srv/a.txt")?.content).toBe("a\n");
    expect(files.get("srv/skip-keep.txt")?.content).toBe("kept\n");
    expect(files.has("srv/skip1.txt")).toBe(false);
    expect([...files.keys()].some((name) => name.endsWith("README.md"))).toBe(false);
  });

  it("reuses every step of an unchanged rebuild, ignores mtimes and unused args, and rebuilds exactly the steps after a change", async () => {
    const args = { t: "demo:latest", buildargs: JSON.stringify({ VERSION: "2" }) };
    const first = await post(engine, tarOf(context), args);
    const again = await post(engine, tarOf(context), args);
    expect(again.id).toBe(first.id);
    const steps = stepsOf(again.text);
    expect(cacheHits(again.text).size).toBe(19);
    expect([...cacheHits(again.text).values()].filter(Boolean)).toHaveLength(17);
    for (const [step, cached] of cacheHits(again.text)) {
      if (!steps.get(step)?.startsWith("FROM")) expect(cached, steps.get(step)).toBe(true);
    }

    const now = Date.now() / 1000 + 3600;
    await utimes(join(context, "app.conf"), now, now);
    await utimes(join(context, "src/main.sh"), now, now);
    const touched = await post(engine, tarOf(context), { ...args, buildargs: JSON.stringify({ VERSION: "2", UNUSED: "x" }) });
    expect(touched.id).toBe(first.id);

    await writeFile(join(context, "app.conf"), "app=2\n");
    try {
      const changed = await post(engine, tarOf(context), args);
      expect(streamError(changed.messages)).toBeUndefined();
      expect(changed.id).not.toBe(first.id);
      const hits = cacheHits(changed.text);
      const changedSteps = stepsOf(changed.text);
      const confStep = [...changedSteps].find(([, text]) => text === "COPY *.conf /etc/app/")?.[0] as number;
      expect(confStep).toBe(11);
      expect(hits.size).toBe(19);
      for (const [step, text] of changedSteps) {
        if (text.startsWith("FROM")) continue;
        expect(hits.get(step), text).toBe(step < confStep);
      }
    } finally {
      await writeFile(join(context, "app.conf"), "app=1\n");
    }
    const back = await post(engine, tarOf(context), args);
    expect(back.id).toBe(first.id);
  });

  it("keeps the cache across a daemon restart; nocache bypasses it and builder prune clears it", async () => {
    const args = { t: "demo:latest", buildargs: JSON.stringify({ VERSION: "2" }) };
    const before = await post(engine, tarOf(context), args);
    await engine.kill();
    await engine.restart();
    const after = await post(engine, tarOf(context), args);
    expect(after.id).toBe(before.id);
    expect(after.text).toContain(" ---> Using cache\n");

    const nocache = await post(engine, tarOf(context), { ...args, nocache: "1" });
    expect(streamError(nocache.messages)).toBeUndefined();
    expect(nocache.text).not.toContain("Using cache");

    const pruned = await engine.json<{ CachesDeleted: string[]; SpaceReclaimed: number }>("POST", "/build/prune");
    expect(pruned.status).toBe(200);
    expect(pruned.body.CachesDeleted.length).toBeGreaterThan(0);
    const cold = await post(engine, tarOf(context), args);
    expect(streamError(cold.messages)).toBeUndefined();
    expect(cold.text).not.toContain("Using cache");
  });

  it("keys COPY by the files' modes, owners and link targets, not by ignored files, and COPY --from by what it copies", async () => {
    const dir = join(work, "exact");
    await writeTree(dir, {
      Dockerfile: "FROM scratch AS src\nCOPY stage/ /s/\nFROM scratch\nCOPY --from=src /s/keep.txt /keep.txt\nCOPY files/ /files/\n",
      ".dockerignore": "files/*.log\n",
      "stage/keep.txt": "keep\n",
      "stage/other.txt": "other\n",
      "files/a.txt": "a\n",
      "files/b.txt": "b\n",
      "files/x.log": "log 1\n",
    });
    execFileSync("ln", ["-s", "a.txt", join(dir, "files/l")]);
    const build = async () => {
      const built = await post(engine, tarOf(dir), { t: "exact:1" });
      expect(streamError(built.messages)).toBeUndefined();
      const steps = stepsOf(built.text);
      const hits = cacheHits(built.text);
      const hit = (text: string) => hits.get([...steps].find(([, t]) => t === text)?.[0] as number);
      return {
        id: built.id,
        stage: hit("COPY stage/ /s/"),
        from: hit("COPY --from=src /s/keep.txt /keep.txt"),
        files: hit("COPY files/ /files/"),
      };
    };
    const first = await build();
    expect(await build()).toEqual({ id: first.id, stage: true, from: true, files: true });

    // Another file of the source stage: the stage's COPY runs again, COPY --from finds the same content.
    await writeFile(join(dir, "stage/other.txt"), "other 2\n");
    expect(await build()).toEqual({ id: first.id, stage: false, from: true, files: true });
    // An ignored file, or only an mtime: nothing changes.
    await writeFile(join(dir, "files/x.log"), "log 2\n");
    await utimes(join(dir, "files/b.txt"), Date.now() / 1000 + 60, Date.now() / 1000 + 60);
    expect(await build()).toEqual({ id: first.id, stage: true, from: true, files: true });

    // A mode, a link target: COPY files/ runs again; back as they were, the first entry is found again.
    await chmod(join(dir, "files/b.txt"), 0o600);
    const mode = await build();
    expect(mode).toMatchObject({ from: true, files: false });
    expect(mode.id).not.toBe(first.id);
    await chmod(join(dir, "files/b.txt"), 0o644);
    await rm(join(dir, "files/l"));
    execFileSync("ln", ["-s", "b.txt", join(dir, "files/l")]);
    const link = await build();
    expect(link).toMatchObject({ from: true, files: false });
    expect(link.id).not.toBe(first.id);
    await rm(join(dir, "files/l"));
    execFileSync("ln", ["-s", "a.txt", join(dir, "files/l")]);
    expect(await build()).toEqual({ id: first.id, stage: true, from: true, files: true });
    const files = await imageFiles(engine, "exact:1", work);
    expect(files.get("keep.txt")?.content).toBe("keep\n");
    expect(files.get("files/l")).toMatchObject({ type: "symlink", linkname: "a.txt" });
    expect(files.has("files/x.log")).toBe(false);
  });

  it("builds only the stages --target needs", async () => {
    const built = await post(engine, tarOf(context), { t: "assets:1", target: "assets" });
    expect(streamError(built.messages)).toBeUndefined();
    expect(built.text).toContain("Step 3/3 : COPY data/ /data/\n");
    expect(built.text).not.toContain("busybox");
    const files = await imageFiles(engine, "assets:1", work);
    expect([...files.keys()].sort()).toEqual(["data", "data/a.txt", "data/skip-keep.txt", "secret.txt"]);
  });

  it("runs a base image's ONBUILD triggers", async () => {
    const dir = join(work, "onbuild");
    await writeTree(dir, { Dockerfile: "FROM demo:latest\n", "app.conf": "downstream\n" });
    const built = await post(engine, tarOf(dir), { t: "downstream:1" });
    expect(streamError(built.messages)).toBeUndefined();
    expect(built.text).toContain("# Executing 1 build trigger\n");
    const files = await imageFiles(engine, "downstream:1", work);
    expect(files.get("onbuild.conf")?.content).toBe("downstream\n");
    const { body } = await engine.json<Inspect>("GET", "/images/downstream:1/json");
    expect(body.Config.OnBuild ?? null).toBeNull();
  });

  it("gives the same image ID and manifest digest on two engines with the same SOURCE_DATE_EPOCH", async () => {
    const dir = join(work, "repro");
    await writeTree(dir, {
      Dockerfile: 'FROM scratch AS a\nCOPY x /x\nFROM scratch\nENV A=1\nWORKDIR /w\nCOPY --from=a /x /w/y\nCOPY dir /dir\nCMD ["/x"]\n',
      x: "x\n",
      "dir/f": "f\n",
    });
    const other = await EngineProcess.start();
    try {
      const args = { t: "repro:1", buildargs: JSON.stringify({ SOURCE_DATE_EPOCH: "1700000000" }) };
      const one = await post(engine, tarOf(dir), args);
      await utimes(join(dir, "dir/f"), Date.now() / 1000 - 100, Date.now() / 1000 - 100);
      const two = await post(other, tarOf(dir), args);
      expect(streamError(one.messages)).toBeUndefined();
      expect(two.id).toBe(one.id);
      expect(await manifestDigest(other, "repro:1")).toBe(await manifestDigest(engine, "repro:1"));
      const { body } = await engine.json<Inspect>("GET", "/images/repro:1/json");
      expect(body.Created).toBe("2023-11-14T22:13:20.000Z");
    } finally {
      await other.dispose();
    }
  });

  it("refuses a context with a ../ entry and writes nothing outside", async () => {
    const escapee = join(tmpdir(), `minato-escape-${process.pid}`);
    const name = `../../../../../../../..${escapee}`;
    const content = Buffer.from("escaped\n");
    const header: TarHeader = {
      name,
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: content.length,
      mtime: 0,
      linkname: "",
      devmajor: 0,
      devminor: 0,
      xattrs: new Map(),
    };
    const tar = Buffer.concat([encodeHeader(header), content, padding(content.length), END_OF_ARCHIVE]);
    const response = await engine.api("POST", "/build?t=evil", { body: tar });
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body.toString("utf8")).message).toContain("invalid build context");
    expect(existsSync(escapee)).toBe(false);
  });

  it("resolves a context symlink inside the context, never to the host", async () => {
    const dir = join(work, "symlink");
    await writeTree(dir, { Dockerfile: "FROM scratch\nCOPY link/passwd /passwd\n" });
    execFileSync("ln", ["-s", "/etc", join(dir, "link")]);
    const built = await post(engine, tarOf(dir), { t: "symlink:1" });
    expect(streamError(built.messages)).toMatch(/line 2: COPY failed: file not found in build context/);
    const images = await engine.json<{ RepoTags: string[] }[]>("GET", "/images/json");
    expect(images.body.flatMap((i) => i.RepoTags)).not.toContain("symlink:1");
  });

  it("answers a Dockerfile syntax error with 400 and its line, and unsupported RUN flags with a 400 naming them", async () => {
    const dir = join(work, "bad");
    await writeTree(dir, { Dockerfile: "FROM scratch\nCOPPY a /a\n" });
    const syntax = await engine.api("POST", "/build", { body: tarOf(dir) });
    expect(syntax.status).toBe(400);
    expect(JSON.parse(syntax.body.toString("utf8")).message).toMatch(/line 2: unknown instruction: COPPY/);

    await writeTree(dir, { Dockerfile: "FROM busybox\nRUN --mount=type=ssh echo hi > /x\n" });
    const mount = await engine.api("POST", "/build", { body: tarOf(dir) });
    expect(mount.status).toBe(400);
    expect(JSON.parse(mount.body.toString("utf8")).message).toMatch(/^dockerfile line 2: RUN --mount=type=ssh is not supported/);
    await writeTree(dir, { Dockerfile: "FROM busybox\nRUN true\nRUN --network=bridge echo hi > /x\n" });
    const network = await engine.api("POST", "/build", { body: tarOf(dir) });
    expect(network.status).toBe(400);
    expect(JSON.parse(network.body.toString("utf8")).message).toMatch(/line 3.*invalid network mode "bridge"/);

    await writeTree(dir, { Dockerfile: "FROM scratch\nADD https://127.0.0.1:9/repo.git /src\n" });
    const git = await post(engine, tarOf(dir), { t: "gitadd:1" });
    expect(streamError(git.messages)).toMatch(/line 2: ADD failed: .*git repository is not supported/);
  });

  it("RUN runs the command in the build state, streams its output and commits its changes as a layer", async () => {
    const dir = join(work, "run");
    await writeTree(dir, {
      Dockerfile:
        'FROM busybox\nENV GREETING=hi\nWORKDIR /w\nRUN echo "$GREETING" > /greeting && mkdir -p /data && rm /bin/vi && pwd && echo to-stderr >&2\nRUN ["/bin/sh", "-c", "id -u > /data/uid; hostname > /data/host; cat /etc/hosts > /data/hosts; ls /sys/class/net > /data/net"]\nCMD ["cat", "/greeting"]\n',
    });
    const built = await post(engine, tarOf(dir), { t: "run:1" });
    expect(streamError(built.messages)).toBeUndefined();
    expect(built.text).toMatch(/^\/w$/m);
    expect(built.text).toMatch(/^to-stderr$/m);
    expect(built.text).toContain("Successfully tagged run:1");

    const created = await engine.json<{ Id: string }>("POST", "/containers/create", {
      body: JSON.stringify({ Image: "run:1" }),
      headers: { "Content-Type": "application/json" },
    });
    expect(created.status).toBe(201);
    const id = created.body.Id;
    expect((await engine.api("POST", `/containers/${id}/start`)).status).toBe(204);
    const waited = await engine.json<{ StatusCode: number }>("POST", `/containers/${id}/wait`);
    expect(waited.body.StatusCode).toBe(0);
    const logs = await engine.api("GET", `/containers/${id}/logs?stdout=1&stderr=1`);
    expect(demux(logs.body)).toBe("hi\n");
    expect((await engine.api("DELETE", `/containers/${id}`)).status).toBe(204);

    const files = await imageFiles(engine, "run:1", work);
    expect(files.get("greeting")?.content).toBe("hi\n");
    expect(files.get("data")?.type).toBe("directory");
    expect(files.has("bin/.wh.vi")).toBe(true);
    expect(files.get("data/uid")?.content).toBe("0\n");
    expect(files.get("data/hosts")?.content).toContain("localhost");
    expect(files.get("data/net")?.content).toBe("lo\n");
    expect(files.get("data/host")?.content.trim()).toMatch(/^[0-9a-f]{12}$/);
    // The runtime's mount points and generated files stay out of the layers.
    for (const name of ["etc/hosts", "etc/hostname", "etc/resolv.conf"]) expect(files.has(name), name).toBe(false);

    const { body } = await engine.json<Inspect & { History?: unknown }>("GET", "/images/run:1/json");
    expect(body.RootFS.Layers).toHaveLength(4);
    const history = await engine.json<{ CreatedBy: string }[]>("GET", "/images/run:1/history");
    expect(history.body.map((h) => h.CreatedBy)).toContain(
      '/bin/sh -c echo "$GREETING" > /greeting && mkdir -p /data && rm /bin/vi && pwd && echo to-stderr >&2',
    );
    // This engine's build mounts (other test files' engines may be building at the same time).
    expect(await readFile("/proc/mounts", "utf8")).not.toContain(`${engine.dataRoot}/builds/build-`);
  });

  it("fails the build on a RUN's non-zero exit with Docker's message, tagging nothing and leaving no mounts", async () => {
    const dir = join(work, "run-fail");
    await writeTree(dir, { Dockerfile: "FROM busybox\nRUN echo before-failing && exit 7\nRUN echo never\n" });
    const built = await post(engine, tarOf(dir), { t: "runfail:1" });
    expect(built.text).toMatch(/^before-failing$/m);
    expect(built.text).not.toContain("never\n");
    expect(streamError(built.messages)).toBe("The command '/bin/sh -c echo before-failing && exit 7' returned a non-zero code: 7");
    const images = await engine.json<{ RepoTags: string[] }[]>("GET", "/images/json");
    expect(images.body.flatMap((i) => i.RepoTags ?? [])).not.toContain("runfail:1");
    expect(await readFile("/proc/mounts", "utf8")).not.toContain(`${engine.dataRoot}/builds/build-`);
  });

  it("runs a #! here-document as a program, keyed by its text, and leaves no trace of it in the layer", async () => {
    const dir = join(work, "run-program");
    const dockerfile = (word: string) =>
      `FROM busybox\nRUN <<PROGRAM\n#!/bin/sh -e\necho "${word} from $0 as $(id -u)" > /program.txt\nPROGRAM\n`;
    await writeTree(dir, { Dockerfile: dockerfile("hello") });
    const first = await post(engine, tarOf(dir), { t: "program:1" });
    expect(streamError(first.messages)).toBeUndefined();
    let files = await imageFiles(engine, "program:1", work);
    expect(files.get("program.txt")?.content).toBe("hello from /dev/pipes/PROGRAM as 0\n");
    expect(files.has("dev/pipes/PROGRAM") || files.has("dev/pipes")).toBe(false);

    await writeTree(dir, { Dockerfile: dockerfile("changed") });
    const second = await post(engine, tarOf(dir), { t: "program:1" });
    expect(second.text).not.toContain("Using cache");
    files = await imageFiles(engine, "program:1", work);
    expect(files.get("program.txt")?.content).toBe("changed from /dev/pipes/PROGRAM as 0\n");
  });

  it("caches RUN by its command and the ARGs in its environment", async () => {
    const dir = join(work, "run-cache");
    await writeTree(dir, {
      Dockerfile: "FROM busybox\nARG USED=a\nRUN echo $USED > /used && echo ran-the-command\nARG LATER=x\nRUN echo $LATER > /later\n",
    });
    const build = (args: Record<string, string>) => post(engine, tarOf(dir), { t: "runcache:1", buildargs: JSON.stringify(args) });
    const first = await build({ USED: "1", LATER: "1" });
    expect(streamError(first.messages)).toBeUndefined();
    expect(first.text).toMatch(/^ran-the-command$/m);
    const again = await build({ USED: "1", LATER: "1" });
    expect(again.id).toBe(first.id);
    expect(again.text).not.toMatch(/^ran-the-command$/m);
    expect(cacheHits(again.text).get(3)).toBe(true);
    expect(cacheHits(again.text).get(5)).toBe(true);

    // LATER is not in the first RUN's environment: only the second RUN runs again.
    const later = await build({ USED: "1", LATER: "2" });
    expect(later.text).not.toMatch(/^ran-the-command$/m);
    expect(cacheHits(later.text).get(3)).toBe(true);
    expect(cacheHits(later.text).get(5)).toBe(false);
    expect((await imageFiles(engine, "runcache:1", work)).get("later")?.content).toBe("2\n");

    const used = await build({ USED: "2", LATER: "2" });
    expect(used.text).toMatch(/^ran-the-command$/m);
    expect(cacheHits(used.text).get(3)).toBe(false);
    expect((await imageFiles(engine, "runcache:1", work)).get("used")?.content).toBe("2\n");
  });

  it("gives the same RUN layer on two engines with the same SOURCE_DATE_EPOCH", async () => {
    const dir = join(work, "run-repro");
    await writeTree(dir, { Dockerfile: "FROM busybox\nRUN mkdir -p /a/b && echo x > /a/b/c && rm /bin/vi\n" });
    const other = await EngineProcess.start();
    try {
      const rootfs = join(work, "busybox.tar");
      expect(
        streamError(await other.messages("POST", "/images/create?fromSrc=-&repo=busybox&tag=latest", { body: await readFile(rootfs) })),
      ).toBeUndefined();
      const args = { t: "runrepro:1", buildargs: JSON.stringify({ SOURCE_DATE_EPOCH: "1700000000" }) };
      const one = await post(engine, tarOf(dir), args);
      const two = await post(other, tarOf(dir), args);
      expect(streamError(one.messages)).toBeUndefined();
      expect(streamError(two.messages)).toBeUndefined();
      const layers = async (e: EngineProcess) => (await e.json<Inspect>("GET", "/images/runrepro:1/json")).body.RootFS.Layers;
      expect(await layers(other)).toEqual(await layers(engine));
    } finally {
      await other.dispose();
    }
  });

  it("minato build sends the context honouring .dockerignore and shows the steps; builder prune -f clears the cache", async () => {
    const api = await post(engine, tarOf(context), { t: "demo:latest", buildargs: JSON.stringify({ VERSION: "2" }) });
    const iidfile = join(work, "iid");
    const env = { PATH: process.env.PATH, HOME: work, MINATO_HOST: `unix://${engine.socket}` };
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [join(ROOT, "apps/cli/bin/minato.js"), ...args], { env, cwd: work }, (error, stdout, stderr) =>
          resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr }),
        );
      });
    const built = await cli(["build", "-t", "viacli:1", "--build-arg", "VERSION=2", "--iidfile", iidfile, context]);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stdout).toContain("Step 11/19 : COPY *.conf /etc/app/\n ---> Using cache\n");
    expect(built.stdout).toContain("Successfully tagged viacli:1");
    expect(await readFile(iidfile, "utf8")).toBe(api.id);

    // Client side, .dockerignore keeps README.md out of what is sent: a Dockerfile copying it fails.
    const dir = join(work, "cli-ignore");
    await writeTree(dir, { Dockerfile: "FROM scratch\nCOPY README.md /\n", "README.md": "x\n", ".dockerignore": "README.md\n" });
    const ignored = await cli(["build", dir]);
    expect(ignored.code).not.toBe(0);
    expect(ignored.stderr).toContain("COPY failed: file not found in build context");

    const pruned = await cli(["builder", "prune", "-f"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/Total reclaimed space: \d+B/);
    const cold = await cli(["build", "-t", "viacli:1", "--build-arg", "VERSION=2", context]);
    expect(cold.code, cold.stderr).toBe(0);
    expect(cold.stdout).not.toContain("Using cache");
  });

  it("minato build streams a context too big to pack in memory", async () => {
    const dir = join(work, "big");
    await writeTree(dir, {
      Dockerfile: "FROM busybox\nCOPY big z.txt /d/\nRUN test $(wc -c < /d/big) -eq 34603008 && grep -q zed /d/z.txt\n",
      "z.txt": "zed\n",
    });
    execFileSync("truncate", ["-s", "33M", join(dir, "big")]);
    const env = { PATH: process.env.PATH, HOME: work, MINATO_HOST: `unix://${engine.socket}` };
    const built = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(ROOT, "apps/cli/bin/minato.js"), "build", "-t", "big:1", dir], { env }, (error, stdout, stderr) =>
        resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr }),
      );
    });
    expect(built.code, built.stderr + built.stdout).toBe(0);
    expect(built.stdout).toContain("Successfully tagged big:1");
  });

  it("works with the stock docker CLI's classic builder, giving the same image", async () => {
    const api = await post(engine, tarOf(context), { t: "demo:latest", buildargs: JSON.stringify({ VERSION: "2" }) });
    const home = await mkdtemp(join(work, "docker-"));
    const env = {
      PATH: process.env.PATH,
      HOME: home,
      DOCKER_CONFIG: join(home, ".docker"),
      DOCKER_HOST: `unix://${engine.socket}`,
      DOCKER_BUILDKIT: "0",
    };
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        "docker",
        ["build", "-t", "viadocker:1", "--build-arg", "VERSION=2", "."],
        { env, cwd: context, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr }),
      );
    });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout).toContain("Using cache");
    expect(result.stdout).toContain("Successfully tagged viadocker:1");
    const { body } = await engine.json<Inspect>("GET", "/images/viadocker:1/json");
    expect(body.Id).toBe(api.id);
  });
});
