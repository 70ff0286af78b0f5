// dockerode (the Node SDK, unmodified) against a real minatod: update, disk usage, build, archive
// get/put and attach with stdin, each checked from where its user sees the effect, with Docker's
// JSON field names (swagger ContainerUpdateResponse, SystemDataUsage, BuildInfo, ContainerInspect).
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerCgroup } from "../apps/engine/src/containers/cgroup.js";
import { readTar } from "../libs/layers/src/index.js";
import { tarOf } from "./support/build.js";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";

/** Everything a dockerode stream (build, import) says, once it ends; its errors as a rejection. */
function follow(docker: Docker, stream: NodeJS.ReadableStream): Promise<{ stream?: string; aux?: { ID?: string }; error?: string }[]> {
  return new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, output: unknown[]) => (error ? reject(error) : resolve(output as never))),
  );
}

/** Docker's multiplexed stream format (8-byte frame headers) split into stdout and stderr. */
function demux(buffer: Buffer): { stdout: string; stderr: string } {
  const parts: Record<number, Buffer[]> = { 1: [], 2: [] };
  for (let at = 0; at + 8 <= buffer.length; ) {
    const size = buffer.readUInt32BE(at + 4);
    parts[buffer[at] as number]?.push(buffer.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return { stdout: Buffer.concat(parts[1] ?? []).toString(), stderr: Buffer.concat(parts[2] ?? []).toString() };
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe("dockerode against minatod", () => {
  let engine: EngineProcess;
  let docker: Docker;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-dockerode-"));
    engine = await EngineProcess.start();
    docker = new Docker({ socketPath: engine.socket });
    const imported = await docker.importImage(await busyboxRootfs(work), {
      repo: "busybox",
      tag: "latest",
      changes: ['CMD ["/bin/sh"]'],
    } as never);
    await follow(docker, imported);
  });
  afterAll(async () => {
    for (const c of (await docker?.listContainers({ all: true }).catch(() => [])) ?? [])
      await docker.getContainer(c.Id).remove({ force: true });
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("update: new limits in the running container's cgroup and in inspect; a removed container is 404", async () => {
    const container = await docker.createContainer({ Image: "busybox", Cmd: ["sleep", "600"], HostConfig: { Memory: 64 * 1024 * 1024 } });
    await container.start();
    const answer = await container.update({ Memory: 80 * 1024 * 1024, MemorySwap: 160 * 1024 * 1024, PidsLimit: 30, CpuShares: 256 });
    expect(answer).toEqual({ Warnings: [] });
    const info = await container.inspect();
    expect(info.HostConfig).toMatchObject({ Memory: 80 * 1024 * 1024, MemorySwap: 160 * 1024 * 1024, PidsLimit: 30, CpuShares: 256 });
    const cgroup = new ContainerCgroup(`/minato/${container.id}`);
    const memory =
      cgroup.mode === "unified" ? await cgroup.read("memory", "memory.max") : await cgroup.read("memory", "memory.limit_in_bytes");
    expect(memory?.trim()).toBe(String(80 * 1024 * 1024));
    expect((await cgroup.read("pids", "pids.max"))?.trim()).toBe("30");

    await expect(container.update({ CpuQuota: 5 })).rejects.toMatchObject({ statusCode: 400 });
    await container.remove({ force: true });
    await expect(container.update({ Memory: 80 * 1024 * 1024 })).rejects.toMatchObject({ statusCode: 404 });
  });

  it("build: a context with a Dockerfile becomes an image whose file a container reads", async () => {
    const context = join(work, "context");
    const payload = randomBytes(8).toString("hex");
    await mkdir(context);
    await writeFile(
      join(context, "Dockerfile"),
      'FROM busybox\nCOPY payload.txt /payload.txt\nRUN echo built >> /payload.txt\nCMD ["cat", "/payload.txt"]\n',
    );
    await writeFile(join(context, "payload.txt"), `${payload}\n`);
    const stream = await docker.buildImage({ context, src: ["Dockerfile", "payload.txt"] }, { t: "dockerode-built:1" });
    const output = await follow(docker, stream);
    expect(output.filter((m) => m.error)).toEqual([]);
    expect(output.some((m) => m.aux?.ID?.startsWith("sha256:"))).toBe(true);
    const image = await docker.getImage("dockerode-built:1").inspect();
    expect(image.RepoTags).toEqual(["dockerode-built:1"]);

    const container = await docker.createContainer({ Image: "dockerode-built:1" });
    await container.start();
    expect(await container.wait()).toEqual({ StatusCode: 0, Error: null });
    const logs = (await container.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    expect(demux(logs)).toEqual({ stdout: `${payload}\nbuilt\n`, stderr: "" });
    await container.remove();
  });

  it("archive: putArchive writes into a container, getArchive reads the same bytes back", async () => {
    const container = await docker.createContainer({ Image: "busybox", Cmd: ["sleep", "600"] });
    await container.start();
    const tree = join(work, "tree");
    await mkdir(join(tree, "sub"), { recursive: true });
    const content = randomBytes(20_000);
    await writeFile(join(tree, "sub", "data.bin"), content);
    await container.putArchive(tarOf(tree), { path: "/tmp" });

    const exec = await container.exec({ Cmd: ["sha256sum", "/tmp/sub/data.bin"], AttachStdout: true, AttachStderr: true });
    const execStream = await exec.start({});
    const execOut = new PassThrough();
    const done = collect(execOut);
    docker.modem.demuxStream(execStream, execOut, new PassThrough());
    execStream.on("end", () => execOut.end());
    expect((await done).toString().split(" ")[0]).toBe(createHash("sha256").update(content).digest("hex"));

    const archive = await container.getArchive({ path: "/tmp/sub/data.bin" });
    const entries: { name: string; body: Buffer }[] = [];
    for await (const entry of readTar(archive as AsyncIterable<Uint8Array>))
      entries.push({ name: entry.header.name, body: await collect(entry.body) });
    expect(entries.map((e) => e.name)).toEqual(["data.bin"]);
    expect(entries[0]?.body.equals(content)).toBe(true);

    await expect(container.getArchive({ path: "/tmp/nothing-here" })).rejects.toMatchObject({ statusCode: 404 });
    await container.remove({ force: true });
  });

  it("attach with stdin: what the client writes reaches the process, its answer comes back", async () => {
    const container = await docker.createContainer({
      Image: "busybox",
      Cmd: ["sh", "-c", "read line; echo got:$line; echo err:$line >&2"],
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out = collect(stdout);
    const err = collect(stderr);
    docker.modem.demuxStream(stream, stdout, stderr);
    stream.on("end", () => {
      stdout.end();
      stderr.end();
    });
    await container.start();
    stream.write("hello from dockerode\n");
    expect(await container.wait()).toMatchObject({ StatusCode: 0 });
    expect((await out).toString()).toBe("got:hello from dockerode\n");
    expect((await err).toString()).toBe("err:hello from dockerode\n");
    await container.remove();
  });

  it("df: Docker's field names, the sizes of what exists", async () => {
    const volume = await docker.createVolume({ Name: "dockerode-vol" });
    const container = await docker.createContainer({
      Image: "busybox",
      Cmd: ["sh", "-c", "head -c 12345 /dev/zero > /v/f; sleep 600"],
      HostConfig: { Binds: ["dockerode-vol:/v"] },
    });
    await container.start();
    let df: {
      LayersSize: number;
      Images: { Id: string; Size: number; SharedSize: number; Containers: number }[];
      Containers: { Id: string; SizeRw: number; SizeRootFs: number }[];
      Volumes: { Name: string; UsageData: { Size: number; RefCount: number } }[];
      BuildCache: { ID: string; Type: string; Size: number; InUse: boolean; Shared: boolean }[];
    } = await docker.df();
    for (let i = 0; i < 600 && df.Volumes.find((v) => v.Name === "dockerode-vol")?.UsageData.Size !== 12345; i++) {
      await new Promise((r) => setTimeout(r, 50));
      df = await docker.df();
    }
    expect(df.LayersSize).toBeGreaterThan(0);
    const busybox = df.Images.find((i) => (i as { RepoTags?: string[] }).RepoTags?.includes("busybox:latest"));
    expect(busybox?.Containers).toBe(1);
    expect(busybox?.SharedSize).toBe(busybox?.Size);
    expect(df.LayersSize).toBe(Math.max(...df.Images.map((i) => i.Size)));
    expect(df.Volumes.find((v) => v.Name === "dockerode-vol")?.UsageData).toEqual({ Size: 12345, RefCount: 1 });
    const entry = df.Containers.find((c) => c.Id === container.id);
    expect(entry?.SizeRootFs).toBeGreaterThanOrEqual(entry?.SizeRw ?? 0);
    // The build above left its COPY and RUN steps in the build cache.
    expect(df.BuildCache.filter((b) => b.Type === "regular").length).toBeGreaterThan(0);
    await container.remove({ force: true });
    await volume.remove();
  });
});
