// Volumes and mounts on a real minatod, driven by the stock docker CLI: named and anonymous volumes,
// bind mounts, --mount, --volumes-from, the image's content copied into a new volume.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface MountJson {
  Type: string;
  Name?: string;
  Source: string;
  Destination: string;
  RW: boolean;
}

describe("volumes on minatod (local driver, binds, tmpfs; as root)", () => {
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
  const ok = async (args: string[]) => {
    const result = await docker(args);
    expect(result.code, `docker ${args.join(" ")}: ${result.stderr}`).toBe(0);
    return result.stdout.trim();
  };
  const mounts = async (name: string) => (await engine.json<{ Mounts: MountJson[] }>("GET", `/containers/${name}/json`)).body.Mounts;
  const volumeNames = async () => (await ok(["volume", "ls", "-q"])).split("\n").filter(Boolean).sort();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-volumes-"));
    engine = await EngineProcess.start();
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    const rootfs = await busyboxRootfs(work);
    await ok(["import", "--change", 'CMD ["/bin/sh"]', rootfs, "busybox:latest"]);
    await ok(["import", "--change", 'CMD ["/bin/sh"]', "--change", "VOLUME /cache", rootfs, "with-volume:latest"]);
  });
  afterAll(async () => {
    const left = await docker(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await docker(["rm", "-f", "-v", id]);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("data in a named volume outlives its container and a new container reads it", async () => {
    expect(await ok(["volume", "create", "--label", "team=a", "keep"])).toBe("keep");
    await ok([
      "run",
      "--name",
      "writer",
      "-v",
      "keep:/data",
      "busybox",
      "sh",
      "-c",
      "echo kept > /data/file && chown 1000:1000 /data/file",
    ]);
    const mount = (await mounts("writer"))[0];
    expect(mount).toMatchObject({ Type: "volume", Name: "keep", Destination: "/data", RW: true });
    await ok(["rm", "writer"]);
    expect(await ok(["run", "--rm", "-v", "keep:/data", "busybox", "sh", "-c", "cat /data/file; stat -c %u /data/file"])).toBe(
      "kept\n1000",
    );
    const inspected = JSON.parse(await ok(["volume", "inspect", "keep"]))[0] as {
      Name: string;
      Driver: string;
      Mountpoint: string;
      Labels: Record<string, string>;
    };
    expect(inspected).toMatchObject({ Name: "keep", Driver: "local", Labels: { team: "a" } });
    expect(readFileSync(join(inspected.Mountpoint, "file"), "utf8")).toBe("kept\n");
    expect(await ok(["volume", "ls", "--filter", "label=team=a", "--format", "{{.Name}} {{.Driver}}"])).toBe("keep local");
  });

  it("two containers share a volume; a volume in use cannot be removed (409)", async () => {
    await ok(["run", "-d", "--name", "sharer", "-v", "shared:/shared", "busybox", "sh", "-c", "echo from-a > /shared/a; sleep 60"]);
    const seen = await ok([
      "run",
      "--rm",
      "-v",
      "shared:/shared",
      "busybox",
      "sh",
      "-c",
      "until [ -e /shared/a ]; do sleep 0.1; done; cat /shared/a; echo from-b > /shared/b",
    ]);
    expect(seen).toBe("from-a");
    // --volumes-from: the same mounts as the running container, read-only here.
    const from = await docker(["run", "--rm", "--volumes-from", "sharer:ro", "busybox", "sh", "-c", "cat /shared/b; echo x > /shared/c"]);
    expect(from.stdout).toBe("from-b\n");
    expect(from.stderr).toContain("Read-only file system");
    const sharer = (await engine.json<{ Id: string }>("GET", "/containers/sharer/json")).body.Id;
    const busy = await engine.json<{ message: string }>("DELETE", "/volumes/shared");
    expect(busy.status).toBe(409);
    expect(busy.body.message).toBe(`remove shared: volume is in use - [${sharer}]`);
    const cli = await docker(["volume", "rm", "shared"]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain("volume is in use");
    await ok(["rm", "-f", "sharer"]);
    await ok(["volume", "rm", "shared"]);
    expect(await volumeNames()).not.toContain("shared");
  });

  it("bind mounts: read-only is enforced, read-write writes reach the host", async () => {
    const dir = join(work, "host-dir");
    await mkdir(dir);
    await writeFile(join(dir, "config"), "original\n");
    const denied = await docker([
      "run",
      "--rm",
      "-v",
      `${dir}:/conf:ro`,
      "busybox",
      "sh",
      "-c",
      "cat /conf/config; echo changed > /conf/config",
    ]);
    expect(denied.code).not.toBe(0);
    expect(denied.stdout).toBe("original\n");
    expect(denied.stderr).toContain("Read-only file system");
    expect(readFileSync(join(dir, "config"), "utf8")).toBe("original\n");
    await ok(["run", "--rm", "--mount", `type=bind,src=${dir},dst=/conf`, "busybox", "sh", "-c", "echo changed > /conf/config"]);
    expect(readFileSync(join(dir, "config"), "utf8")).toBe("changed\n");
    const ro = await docker(["run", "--rm", "--mount", `type=bind,src=${dir},dst=/conf,readonly`, "busybox", "touch", "/conf/new"]);
    expect(ro.code).not.toBe(0);
    expect(existsSync(join(dir, "new"))).toBe(false);
  });

  it("a new named volume starts with the image's files at its path; an existing one keeps its own", async () => {
    await ok(["run", "--rm", "-v", "etc-copy:/etc", "busybox", "true"]);
    const mountpoint = (JSON.parse(await ok(["volume", "inspect", "etc-copy"]))[0] as { Mountpoint: string }).Mountpoint;
    expect(readdirSync(mountpoint)).toEqual(expect.arrayContaining(["passwd", "group"]));
    expect(readFileSync(join(mountpoint, "passwd"), "utf8")).toMatch(/^root:/);
    await ok(["run", "--rm", "-v", "etc-copy:/etc", "busybox", "sh", "-c", "echo marker > /etc/marker"]);
    expect(await ok(["run", "--rm", "-v", "etc-copy:/etc", "busybox", "cat", "/etc/marker"])).toBe("marker");
    // volume-nocopy: nothing is copied (only the mount points of the generated /etc files appear).
    await ok(["run", "--rm", "--mount", "type=volume,src=etc-empty,dst=/etc,volume-nocopy", "busybox", "true"]);
    const empty = (JSON.parse(await ok(["volume", "inspect", "etc-empty"]))[0] as { Mountpoint: string }).Mountpoint;
    expect(readdirSync(empty)).not.toContain("passwd");
  });

  it("anonymous volumes for VOLUME and -v /path: kept by rm, removed by rm -v and by --rm", async () => {
    const before = await volumeNames();
    await ok(["run", "--name", "anon", "-v", "/scratch", "with-volume", "sh", "-c", "echo a > /cache/x; echo b > /scratch/y"]);
    const anon = await mounts("anon");
    expect(anon.map((m) => m.Destination).sort()).toEqual(["/cache", "/scratch"]);
    expect(anon.every((m) => m.Type === "volume" && /^[0-9a-f]{64}$/.test(m.Name ?? ""))).toBe(true);
    await ok(["rm", "-v", "anon"]);
    expect(await volumeNames()).toEqual(before);
    await ok(["run", "--name", "anon2", "with-volume", "true"]);
    await ok(["rm", "anon2"]);
    const kept = (await volumeNames()).filter((n) => !before.includes(n));
    expect(kept).toHaveLength(1);
    await ok(["run", "--rm", "with-volume", "true"]);
    expect((await volumeNames()).filter((n) => !before.includes(n))).toEqual(kept);
    // prune takes the unused anonymous volume and leaves named ones.
    const pruned = await ok(["volume", "prune", "-f"]);
    expect(pruned).toContain(kept[0]);
    expect(await volumeNames()).toEqual(before);
  });

  it("--mount tmpfs gives a size-limited tmpfs", async () => {
    const out = await ok([
      "run",
      "--rm",
      "--mount",
      "type=tmpfs,dst=/fast,tmpfs-size=1048576",
      "busybox",
      "sh",
      "-c",
      "grep ' /fast ' /proc/mounts",
    ]);
    expect(out).toMatch(/^tmpfs \/fast tmpfs rw,.*size=1024k/);
  });

  it("bad input: --mount of a missing host path fails where -v creates it; bad names and specs are 400s", async () => {
    const missing = join(work, "missing-mount");
    const mount = await docker(["run", "--rm", "--mount", `type=bind,src=${missing},dst=/m`, "busybox", "true"]);
    expect(mount.code).toBe(125);
    expect(mount.stderr).toContain(`invalid mount config for type "bind": bind source path does not exist: ${missing}`);
    expect(existsSync(missing)).toBe(false);
    const created = join(work, "missing-v");
    await ok(["run", "--rm", "-v", `${created}:/m`, "busybox", "true"]);
    expect(existsSync(created)).toBe(true);

    const badName = await engine.json<{ message: string }>("POST", "/volumes/create", {
      body: JSON.stringify({ Name: "bad/name" }),
      headers: { "content-type": "application/json" },
    });
    expect(badName.status).toBe(400);
    expect(badName.body.message).toContain("includes invalid characters for a local volume name");
    const badMode = await docker(["run", "--rm", "-v", "data:/data:rx", "busybox", "true"]);
    expect(badMode.code).toBe(125);
    expect((await engine.json("GET", "/volumes/no-such-volume")).status).toBe(404);
    expect((await engine.json("DELETE", "/volumes/no-such-volume")).status).toBe(404);
    expect((await engine.json("DELETE", "/volumes/no-such-volume?force=1")).status).toBe(204);
    // A failed create leaves no volume behind.
    expect(await volumeNames()).not.toContain("data");
    const relative = await docker(["run", "--rm", "--mount", "type=volume,src=vol,dst=relative/path", "busybox", "true"]);
    expect(relative.code).not.toBe(0);
  });
});
