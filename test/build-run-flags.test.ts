/**
 * The builder's RUN flags, ADD from URLs and parallel stages, end to end against real `minatod`
 * processes with real runc build containers (as root): RUN --mount=type=cache|bind|tmpfs|secret
 * (persistence, read-only binds, discarded writes, nothing mounted in the layers, cache keys,
 * secrets kept out of the image), RUN --network=host|none against an HTTP server on loopback,
 * ADD <url> with --checksum, two independent stages built at once with the sequential result, and
 * the bad input each flag can get.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Built,
  cacheHits,
  imageBytes,
  imageFiles,
  type LoopbackServer,
  loopbackServer,
  postBuild,
  tarOf,
  writeTree,
} from "./support/build.js";
import { busyboxRootfs, EngineProcess, streamError } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

const SECRET = "hunter2-very-secret-value";
const LAST_MODIFIED = "Wed, 01 Jan 2020 00:00:00 GMT";
const HELLO = "hello from loopback\n";
const HELLO_SHA = createHash("sha256").update(HELLO).digest("hex");

const secretsHeader = (secrets: Record<string, string>) => ({
  "X-Minato-Build-Secrets": Buffer.from(
    JSON.stringify(Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, Buffer.from(v).toString("base64")]))),
  ).toString("base64"),
});

async function tags(engine: EngineProcess): Promise<string[]> {
  const images = await engine.json<{ RepoTags: string[] | null }[]>("GET", "/images/json");
  return images.body.flatMap((i) => i.RepoTags ?? []);
}

function ok(built: Built): Built {
  expect(built.status, built.body).toBe(200);
  expect(streamError(built.messages), built.text).toBeUndefined();
  return built;
}

describe("RUN --mount, RUN --network, ADD <url>, parallel stages", () => {
  let engine: EngineProcess;
  let work: string;
  let busybox: Buffer;
  let server: LoopbackServer;

  const importBusybox = async (e: EngineProcess) => {
    const imported = await e.messages("POST", "/images/create?fromSrc=-&repo=busybox&tag=latest", { body: busybox });
    expect(streamError(imported)).toBeUndefined();
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-build-flags-"));
    busybox = await readFile(await busyboxRootfs(work));
    engine = await EngineProcess.start();
    await importBusybox(engine);
    server = await loopbackServer((req, res) => {
      if (req.url === "/files/hello.txt" || req.url === "/hello") {
        res.writeHead(200, { "Content-Type": "text/plain", "Last-Modified": LAST_MODIFIED });
        res.end(HELLO);
      } else {
        res.writeHead(404);
        res.end("not found\n");
      }
    });
  });
  afterAll(async () => {
    await server?.close();
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("RUN --mount=type=cache keeps its directory across builds and a daemon restart, keyed by id, with uid/gid/mode, out of the layers", async () => {
    const dir = join(work, "cache");
    await writeTree(dir, {
      Dockerfile: [
        "FROM busybox",
        "ARG N",
        "RUN --mount=type=cache,target=/var/cache/app,id=log sh -c 'echo $N >> /var/cache/app/log; cat /var/cache/app/log > /seen'",
        "RUN --mount=type=cache,target=/other,id=log cat /other/log > /same-id",
        "RUN --mount=type=cache,target=/owned,uid=1000,gid=1000,mode=0700 stat -c '%u %g %a' /owned > /owned-stat",
        "",
      ].join("\n"),
    });
    const build = (n: string) => postBuild(engine, tarOf(dir), { t: "cachemount:1", buildargs: JSON.stringify({ N: n }) });
    ok(await build("1"));
    ok(await build("2"));
    let files = await imageFiles(engine, "cachemount:1", work);
    expect(files.get("seen")?.content).toBe("1\n2\n");
    expect(files.get("same-id")?.content).toBe("1\n2\n");
    expect(files.get("owned-stat")?.content).toBe("1000 1000 700\n");
    for (const name of files.keys()) expect(name).not.toMatch(/^(var\/cache\/app|other|owned)(\/|$)/);

    await engine.kill();
    await engine.restart();
    ok(await build("3"));
    files = await imageFiles(engine, "cachemount:1", work);
    expect(files.get("seen")?.content).toBe("1\n2\n3\n");

    // The cache mount's content is not part of the key: the same N is a cache hit.
    const again = ok(await build("3"));
    expect(cacheHits(again.text).get(3)).toBe(true);

    // builder prune empties the cache mounts too.
    expect((await engine.api("POST", "/build/prune")).status).toBe(200);
    ok(await build("4"));
    expect((await imageFiles(engine, "cachemount:1", work)).get("seen")?.content).toBe("4\n");
  });

  it("RUN --mount=type=bind: context paths read-only by default, rw writes discarded, from= a stage, content in the cache key", async () => {
    const dir = join(work, "bind");
    await writeTree(dir, {
      Dockerfile: [
        "FROM busybox AS tools",
        "RUN echo tool-output > /tool",
        "FROM busybox",
        "RUN --mount=type=bind,source=data,target=/mnt cat /mnt/f > /copied && (touch /mnt/x 2>/dev/null && echo writable || echo readonly) > /ro",
        "RUN --mount=type=bind,source=data,target=/mnt,rw sh -c 'echo changed > /mnt/f; touch /mnt/new; ls /mnt > /rw-ls'",
        "RUN --mount=type=bind,from=tools,source=/tool,target=/t cat /t > /from-stage",
        "RUN --mount=target=/whole cat /whole/other > /whole-other",
        "",
      ].join("\n"),
      "data/f": "bound content\n",
      other: "other file\n",
    });
    const first = ok(await postBuild(engine, tarOf(dir), { t: "bind:1" }));
    const files = await imageFiles(engine, "bind:1", work);
    expect(files.get("copied")?.content).toBe("bound content\n");
    expect(files.get("ro")?.content).toBe("readonly\n");
    expect(files.get("rw-ls")?.content).toBe("f\nnew\n");
    expect(files.get("from-stage")?.content).toBe("tool-output\n");
    expect(files.get("whole-other")?.content).toBe("other file\n");
    for (const name of files.keys()) expect(name).not.toMatch(/^(mnt|t|whole)(\/|$)/);
    // rw writes went to a private copy: the context is as it was.
    const second = ok(await postBuild(engine, tarOf(dir), { t: "bind:1" }));
    expect(second.id).toBe(first.id);

    // A changed bound file reruns the RUNs that bind it, not the other one; an unbound file only the whole-context bind.
    await writeFile(join(dir, "data/f"), "bound content 2\n");
    const changed = ok(await postBuild(engine, tarOf(dir), { t: "bind:1" }));
    const hits = cacheHits(changed.text);
    expect([hits.get(4), hits.get(5), hits.get(6), hits.get(7)]).toEqual([false, false, false, false]);
    expect(hits.get(2)).toBe(true);
    expect((await imageFiles(engine, "bind:1", work)).get("copied")?.content).toBe("bound content 2\n");
    await writeFile(join(dir, "other"), "other file 2\n");
    const other = ok(await postBuild(engine, tarOf(dir), { t: "bind:1" }));
    const otherHits = cacheHits(other.text);
    expect([otherHits.get(4), otherHits.get(5), otherHits.get(6), otherHits.get(7)]).toEqual([true, true, true, false]);
  });

  it("RUN --mount=type=tmpfs gives a fresh tmpfs of the size asked for, and nothing of it in the layer", async () => {
    const dir = join(work, "tmpfs");
    await writeTree(dir, {
      Dockerfile:
        "FROM busybox\nRUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'echo x > /scratch/f; grep \" /scratch \" /proc/mounts > /tmpfs-line; ls /scratch > /tmpfs-ls'\n",
    });
    ok(await postBuild(engine, tarOf(dir), { t: "tmpfs:1" }));
    const files = await imageFiles(engine, "tmpfs:1", work);
    expect(files.get("tmpfs-line")?.content).toMatch(/^tmpfs \/scratch tmpfs .*size=1024k/);
    expect(files.get("tmpfs-ls")?.content).toBe("f\n");
    expect([...files.keys()].some((name) => name.startsWith("scratch"))).toBe(false);
  });

  it("RUN --mount=type=secret: file and env, mode/uid, never in the layers, history, config or cache key", async () => {
    const dir = join(work, "secret");
    await writeTree(dir, {
      Dockerfile: [
        "FROM busybox",
        "RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /len && stat -c '%a %u' /run/secrets/token > /secret-stat",
        "RUN --mount=type=secret,id=token,target=/etc/app-token,mode=0440,uid=65534 stat -c '%a %u' /etc/app-token > /target-stat",
        "RUN --mount=type=secret,id=token,env=TOKEN sh -c 'printf %s \"$TOKEN\" | sha256sum | cut -c1-64 > /env-sha'",
        "RUN --mount=type=secret,id=absent echo optional-secret-missing-is-fine > /optional",
        "",
      ].join("\n"),
    });
    const built = ok(await postBuild(engine, tarOf(dir), { t: "secret:1" }, secretsHeader({ token: SECRET })));
    expect(built.text).not.toContain(SECRET);
    const files = await imageFiles(engine, "secret:1", work);
    expect(files.get("len")?.content.trim()).toBe(String(SECRET.length));
    expect(files.get("secret-stat")?.content).toBe("400 0\n");
    expect(files.get("target-stat")?.content).toBe("440 65534\n");
    expect(files.get("env-sha")?.content).toBe(`${createHash("sha256").update(SECRET).digest("hex")}\n`);
    expect(files.get("optional")?.content).toBe("optional-secret-missing-is-fine\n");
    expect([...files.keys()].filter((name) => name.startsWith("run") || name === "etc/app-token")).toEqual([]);
    expect(await imageBytes(engine, "secret:1", work)).not.toContain(SECRET);
    const history = await engine.json<unknown[]>("GET", "/images/secret:1/history");
    expect(JSON.stringify(history.body)).not.toContain(SECRET);

    // Another secret value is the same key: the steps are cached and the image is the same.
    const other = ok(await postBuild(engine, tarOf(dir), { t: "secret:2" }, secretsHeader({ token: "another-value" })));
    expect(other.id).toBe(built.id);

    // The CLI's --secret, from a file and from an environment variable.
    const secretFile = join(work, "token.txt");
    await writeFile(secretFile, SECRET);
    const env = { PATH: process.env.PATH, HOME: work, MINATO_HOST: `unix://${engine.socket}`, MY_TOKEN: SECRET };
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [join(ROOT, "apps/cli/bin/minato.js"), ...args], { env, cwd: work }, (error, stdout, stderr) =>
          resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr }),
        );
      });
    const viaFile = await cli(["build", "--no-cache", "-t", "secret:cli", "--secret", `id=token,src=${secretFile}`, dir]);
    expect(viaFile.code, viaFile.stderr).toBe(0);
    expect((await imageFiles(engine, "secret:cli", work)).get("env-sha")?.content).toBe(
      `${createHash("sha256").update(SECRET).digest("hex")}\n`,
    );
    const viaEnv = await cli(["build", "--no-cache", "-t", "secret:cli-env", "--secret", "id=token,env=MY_TOKEN", dir]);
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect((await imageFiles(engine, "secret:cli-env", work)).get("len")?.content.trim()).toBe(String(SECRET.length));
    const unset = await cli(["build", "-t", "secret:cli-unset", "--secret", "id=token,env=NOT_SET_ANYWHERE", dir]);
    expect(unset.code).not.toBe(0);
    expect(unset.stderr).toMatch(/secret token: environment variable NOT_SET_ANYWHERE is not set/);
  });

  it("fails a RUN whose required secret is missing, naming it and its line, tagging nothing", async () => {
    const dir = join(work, "secret-required");
    await writeTree(dir, { Dockerfile: "FROM busybox\nRUN true\nRUN --mount=type=secret,id=npmrc,required cat /run/secrets/npmrc\n" });
    const built = await postBuild(engine, tarOf(dir), { t: "needsecret:1" });
    expect(streamError(built.messages)).toMatch(/^dockerfile line 3: RUN --mount: secret npmrc: not found/);
    expect(await tags(engine)).not.toContain("needsecret:1");
    const bad = await engine.api("POST", "/build?t=x", {
      body: tarOf(dir),
      headers: { "X-Minato-Build-Secrets": "%%%not-base64-json" },
    });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body.toString("utf8")).message).toMatch(/invalid X-Minato-Build-Secrets header/);
  });

  it("refuses an unknown mount type and a bad mount option with 400 and the line", async () => {
    const dir = join(work, "bad-mount");
    await writeTree(dir, { Dockerfile: "FROM busybox\nRUN --mount=type=volume,target=/v true\n" });
    const unknown = await engine.api("POST", "/build?t=badmount", { body: tarOf(dir) });
    expect(unknown.status).toBe(400);
    expect(JSON.parse(unknown.body.toString("utf8")).message).toMatch(/line 2: .*unsupported mount type "volume"/);
    await writeTree(dir, { Dockerfile: "FROM busybox\n\nRUN --mount=type=tmpfs,target=/t,uid=5 true\n" });
    const option = await engine.api("POST", "/build?t=badmount", { body: tarOf(dir) });
    expect(option.status).toBe(400);
    expect(JSON.parse(option.body.toString("utf8")).message).toMatch(/line 3: .*uid not allowed for "tmpfs" type mounts/);
    await writeTree(dir, { Dockerfile: "FROM busybox\nRUN --mount=type=bind,source=missing,target=/m true\n" });
    const missing = await postBuild(engine, tarOf(dir), { t: "badmount" });
    expect(streamError(missing.messages)).toMatch(/^dockerfile line 2: RUN --mount: .*"\/missing" not found/);
    expect(await tags(engine)).not.toContain("badmount:latest");
  });

  it("RUN --network=host reaches a server on the host's loopback; none and the default do not", async () => {
    const dir = join(work, "network");
    await writeTree(dir, {
      Dockerfile: [
        "FROM busybox",
        `RUN --network=host wget -q -O /got ${server.url}/hello`,
        `RUN --network=none sh -c 'ls /sys/class/net > /none-net; wget -q -T 3 -O /x ${server.url}/hello && echo reached > /none || echo unreachable > /none'`,
        `RUN sh -c 'wget -q -T 3 -O /x ${server.url}/hello && echo reached > /default || echo unreachable > /default'`,
        "",
      ].join("\n"),
    });
    const before = server.requests.length;
    ok(await postBuild(engine, tarOf(dir), { t: "network:1" }));
    const files = await imageFiles(engine, "network:1", work);
    expect(files.get("got")?.content).toBe(HELLO);
    expect(files.get("none-net")?.content).toBe("lo\n");
    expect(files.get("none")?.content).toBe("unreachable\n");
    expect(files.get("default")?.content).toBe("unreachable\n");
    expect(server.requests.slice(before)).toEqual(["/hello"]);
  });

  it("ADD <url>: name from the URL, mode 600, mtime from Last-Modified, --checksum verified and keying the cache", async () => {
    const dir = join(work, "add-url");
    await writeTree(dir, {
      Dockerfile: [
        "FROM scratch",
        `ADD ${server.url}/files/hello.txt /dl/`,
        `ADD --checksum=sha256:${HELLO_SHA} ${server.url}/files/hello.txt /named`,
        `ADD --chmod=644 --chown=7:8 ${server.url}/files/hello.txt /owned.txt`,
        "",
      ].join("\n"),
    });
    ok(await postBuild(engine, tarOf(dir), { t: "addurl:1" }));
    const files = await imageFiles(engine, "addurl:1", work);
    expect(files.get("dl/hello.txt")).toMatchObject({
      content: HELLO,
      mode: 0o600,
      uid: 0,
      gid: 0,
      mtime: Date.parse(LAST_MODIFIED) / 1000,
    });
    expect(files.get("named")).toMatchObject({ content: HELLO, mode: 0o600 });
    expect(files.get("owned.txt")).toMatchObject({ content: HELLO, mode: 0o644, uid: 7, gid: 8 });

    // A rebuild fetches the URLs without a checksum again (content keyed) but not the one with it.
    const before = server.requests.length;
    const again = ok(await postBuild(engine, tarOf(dir), { t: "addurl:1" }));
    expect([2, 3, 4].map((step) => cacheHits(again.text).get(step))).toEqual([true, true, true]);
    expect(server.requests.slice(before)).toEqual(["/files/hello.txt", "/files/hello.txt"]);
  });

  it("refuses a bad checksum format, a checksum mismatch (naming both digests), a 404 and a .git URL, with the line and no tag", async () => {
    const dir = join(work, "add-bad");
    const wrong = "0".repeat(64);
    const cases: [string, RegExp][] = [
      [`ADD --checksum=md5:abc ${server.url}/hello /x`, /line 2: ADD failed: invalid checksum digest format: md5:abc/],
      [
        `ADD --checksum=sha256:${wrong} ${server.url}/hello /x`,
        new RegExp(`line 2: ADD failed: checksum mismatch for ${server.url}/hello: expected sha256:${wrong}, got sha256:${HELLO_SHA}`),
      ],
      [`ADD --checksum=sha256:${HELLO_SHA} local.txt /x`, /line 2: ADD failed: checksum can't be specified for non-HTTP\(S\) sources/],
      [`ADD ${server.url}/missing /x`, /line 2: ADD failed: failed to GET .*\/missing with status 404/],
      [`ADD ${server.url}/repo.git /src`, /line 2: ADD failed: .*git repository is not supported/],
      [`COPY ${server.url}/hello /x`, /line 2: COPY failed: source can't be a URL for COPY/],
    ];
    for (const [line, message] of cases) {
      await writeTree(dir, { Dockerfile: `FROM busybox\n${line}\n`, "local.txt": "x\n" });
      const built = await postBuild(engine, tarOf(dir), { t: "addbad:1" });
      expect(streamError(built.messages), line).toMatch(message);
    }
    expect(await tags(engine)).not.toContain("addbad:1");
  });

  it("builds independent stages at the same time, with the image and step order of a sequential build", async () => {
    // Each stage waits (bounded) for the other's mark in a shared cache mount: a sequential builder fails this.
    const rendezvous = join(work, "rendezvous");
    const id = `rendezvous-${process.pid}-${Date.now()}`;
    const wait = (mine: string, theirs: string) =>
      `RUN --mount=type=cache,id=${id},target=/r sh -c 'touch /r/${mine}; i=0; while [ ! -e /r/${theirs} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; test -e /r/${theirs} && echo ${mine} > /${mine}'`;
    await writeTree(rendezvous, {
      Dockerfile: `FROM busybox AS a\n${wait("a", "b")}\nFROM busybox AS b\n${wait("b", "a")}\nFROM scratch\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n`,
    });
    ok(await postBuild(engine, tarOf(rendezvous), { t: "parallel:1", nocache: "1" }));
    const files = await imageFiles(engine, "parallel:1", work);
    expect(files.get("a")?.content).toBe("a\n");
    expect(files.get("b")?.content).toBe("b\n");

    const dir = join(work, "stages");
    await writeTree(dir, {
      Dockerfile: [
        "FROM busybox AS one",
        "RUN echo one > /one && echo built-one",
        "COPY x /x1",
        "FROM busybox AS two",
        "RUN echo two > /two && echo built-two",
        "FROM busybox AS three",
        "RUN echo three > /three",
        "FROM scratch",
        "COPY --from=one /one /x1 /",
        "COPY --from=two /two /",
        "COPY --from=three /three /",
        "",
      ].join("\n"),
      x: "x\n",
    });
    process.env.MINATO_BUILD_PARALLELISM = "1";
    const sequential = await EngineProcess.start().finally(() => {
      delete process.env.MINATO_BUILD_PARALLELISM;
    });
    try {
      await importBusybox(sequential);
      const args = { t: "stages:1", buildargs: JSON.stringify({ SOURCE_DATE_EPOCH: "1700000000" }) };
      const parallel = ok(await postBuild(engine, tarOf(dir), args));
      const inOrder = ok(await postBuild(sequential, tarOf(dir), args));
      expect(parallel.id).toBe(inOrder.id);
      const steps = (text: string) => [...text.matchAll(/^Step \d+\/\d+ : .*$/gm)].map((m) => m[0]);
      expect(steps(parallel.text)).toEqual(steps(inOrder.text));
      expect(steps(parallel.text)).toHaveLength(11);
      // Each stage's RUN output comes right after its own step line.
      expect(parallel.text).toMatch(/Step 2\/11 : RUN echo one > \/one && echo built-one\n(?: ---> Running in \S+\n)?built-one\n/);
      expect(parallel.text).toMatch(/Step 5\/11 : RUN echo two > \/two && echo built-two\n(?: ---> Running in \S+\n)?built-two\n/);
    } finally {
      await sequential.dispose();
    }
  });

  it("a failing stage stops the build with its error while an independent stage is running, tagging nothing", async () => {
    const dir = join(work, "stage-fail");
    await writeTree(dir, {
      Dockerfile:
        "FROM busybox AS slow\nRUN sleep 1 && echo slow-done\nRUN echo slow-second\nFROM busybox AS bad\nRUN exit 3\nFROM scratch\nCOPY --from=slow /bin/busybox /b\nCOPY --from=bad /bin/busybox /c\n",
    });
    const built = await postBuild(engine, tarOf(dir), { t: "stagefail:1", nocache: "1" });
    expect(streamError(built.messages)).toBe("The command '/bin/sh -c exit 3' returned a non-zero code: 3");
    expect(built.text).toContain("Step 5/8 : RUN exit 3\n");
    expect(await tags(engine)).not.toContain("stagefail:1");
    expect(await readFile("/proc/mounts", "utf8")).not.toContain(`${engine.dataRoot}/builds/build-`);
  });
});
