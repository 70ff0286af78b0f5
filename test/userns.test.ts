// minatod --userns-remap default: containers run in a user namespace whose root is dockremap's first
// subordinate id; snapshots are shifted copies, volumes belong to the remapped root, `cp`, commit and
// export shift owners back; `--userns host` opts a container out. Read from inside real runc containers.
import { execFile } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess, MINATOD } from "./support/engine-process.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const run = (command: string, args: string[], env?: NodeJS.ProcessEnv, input?: string): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = execFile(command, args, { env, maxBuffer: 16 * 1024 * 1024, encoding: "latin1" }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") reject(error);
      else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
    });
    // Binary output is read as latin1: written back the same way.
    child.stdin?.end(input === undefined ? undefined : Buffer.from(input, "latin1"));
  });

/** uid and gid of the first entry of a tar (ustar header octal fields). */
function tarOwner(tar: string): { uid: number; gid: number } {
  const bytes = Buffer.from(tar, "latin1");
  const octal = (offset: number) =>
    Number.parseInt(
      bytes
        .subarray(offset, offset + 8)
        .toString("latin1")
        .replace(/\0.*$/, "")
        .trim(),
      8,
    );
  return { uid: octal(108), gid: octal(116) };
}

describe("minatod --userns-remap default (root, runc)", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let start: number;
  const image = "userns/busybox:1";
  const docker = (args: string[], input?: string) => run("docker", args, env, input);
  const ok = async (args: string[]) => {
    const r = await docker(args);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const upper = async (id: string) => JSON.parse(await ok(["inspect", "--format", "{{json .GraphDriver.Data.UpperDir}}", id])) as string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-userns-"));
    // The data root's parents must let the remapped root through, as dockerd requires.
    engine = await EngineProcess.start({ args: ["--userns-remap", "default"], workMode: 0o711 });
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    const line = readFileSync("/etc/subuid", "utf8")
      .split("\n")
      .find((l) => l.startsWith("dockremap:"));
    expect(line, "minatod made dockremap's subordinate range").toBeDefined();
    start = Number(line?.split(":")[1]);
    expect(start).toBeGreaterThan(0);
    await ok(["import", "--change", 'CMD ["/bin/sh"]', await busyboxRootfs(work), image]);
  }, 120_000);
  afterAll(async () => {
    await engine?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("container root is dockremap's first subordinate id: uid_map, gid_map, and the owner on the host of what it writes", async () => {
    const id = (await ok(["run", "-d", image, "sh", "-c", "touch /made; exec sleep 1000"])).trim();
    const inside = await ok([
      "exec",
      id,
      "sh",
      "-c",
      "cat /proc/self/uid_map /proc/self/gid_map; id -u; ls -ln /made; grep CapEff /proc/self/status",
    ]);
    expect(inside.split("\n")[0]?.trim().split(/\s+/)).toEqual(["0", String(start), "65536"]);
    expect(inside.split("\n")[1]?.trim().split(/\s+/)).toEqual(["0", String(start), "65536"]);
    expect(inside).toMatch(/^0$/m);
    expect(inside).toMatch(/^-rw-r--r--\s+1 0\s+0\s+0 .*\/made$/m);
    expect(inside).toContain("00000000a80425fb");
    const made = statSync(join(await upper(id), "made"));
    expect([made.uid, made.gid]).toEqual([start, start]);
    // The image's files look like root's inside, though the host's copy is shifted.
    expect(await ok(["exec", id, "stat", "-c", "%u:%g", "/bin/busybox"])).toBe("0:0\n");
    expect(JSON.parse(await ok(["info", "--format", "{{json .SecurityOptions}}"]))).toEqual([
      "name=seccomp,profile=builtin",
      "name=userns",
    ]);
    await ok(["rm", "-f", id]);
  });

  it("--userns host opts out: the host's ids, and privileged only that way", async () => {
    const map = await ok(["run", "--rm", "--userns", "host", image, "cat", "/proc/self/uid_map"]);
    expect(map.trim().split(/\s+/)).toEqual(["0", "0", "4294967295"]);
    const refused = await docker(["run", "--rm", "--privileged", image, "true"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("privileged mode is incompatible with user namespaces");
    const host = await docker(["run", "--rm", "--network", "host", image, "true"]);
    expect(host.stderr).toContain("cannot share the host's network namespace when user namespaces are enabled");
    expect(await ok(["run", "--rm", "--userns", "host", "--privileged", image, "cat", "/proc/self/uid_map"])).toMatch(
      /^\s*0\s+0\s+4294967295/,
    );
  });

  it("a named volume belongs to the remapped root: one container writes, another reads", async () => {
    await ok(["run", "--rm", "-v", "shared:/data", image, "sh", "-c", "echo hello > /data/f && ls -ln /data/f"]);
    expect(await ok(["run", "--rm", "-v", "shared:/data", image, "cat", "/data/f"])).toBe("hello\n");
    const mountpoint = (await ok(["volume", "inspect", "--format", "{{.Mountpoint}}", "shared"])).trim();
    expect(statSync(join(mountpoint, "f")).uid).toBe(start);
  });

  it("docker cp in and out: owners are the container's ids both ways", async () => {
    const id = (await ok(["run", "-d", image, "sleep", "1000"])).trim();
    const file = join(work, "in.txt");
    await writeFile(file, "from the host\n");
    await ok(["cp", file, `${id}:/in.txt`]);
    expect(await ok(["exec", id, "stat", "-c", "%u:%g %n", "/in.txt"])).toBe("0:0 /in.txt\n");
    expect(statSync(join(await upper(id), "in.txt")).uid).toBe(start);
    const out = await docker(["cp", `${id}:/in.txt`, "-"]);
    expect(out.code, out.stderr).toBe(0);
    expect(tarOwner(out.stdout)).toEqual({ uid: 0, gid: 0 });
    await ok(["exec", id, "sh", "-c", "echo x > /tmp/mine && chown 123:456 /tmp/mine"]);
    expect(tarOwner((await docker(["cp", `${id}:/tmp/mine`, "-"])).stdout)).toEqual({ uid: 123, gid: 456 });
    await ok(["rm", "-f", id]);
  });

  it("commit and export write the container's ids, not the host's shifted ones", async () => {
    const id = (await ok(["run", "-d", image, "sh", "-c", "echo c > /committed; chown 7:8 /committed; exec sleep 1000"])).trim();
    await ok(["exec", id, "ls", "/committed"]);
    await ok(["commit", id, "userns/committed:1"]);
    expect(await ok(["run", "--rm", "--userns", "host", "userns/committed:1", "stat", "-c", "%u:%g", "/committed"])).toBe("7:8\n");
    expect(await ok(["run", "--rm", "userns/committed:1", "stat", "-c", "%u:%g", "/committed"])).toBe("7:8\n");
    const exported = await docker(["export", id]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain("committed");
    const listing = await run("tar", ["--numeric-owner", "-tvf", "-"], env, exported.stdout);
    expect(listing.code, listing.stderr).toBe(0);
    expect(listing.stdout).toMatch(/^-rw-r--r-- 7\/8 .* committed$/m);
    expect(listing.stdout).toMatch(/^-rwxr-xr-x 0\/0 .* bin\/busybox$/m);
    await ok(["rm", "-f", id]);
  });

  it("a remapped container starts again after minatod restarts, still remapped", async () => {
    const id = (await ok(["create", image, "cat", "/proc/self/uid_map"])).trim();
    await engine.kill();
    await engine.restart();
    await ok(["start", id]);
    expect((await ok(["wait", id])).trim()).toBe("0");
    expect((await ok(["logs", id])).trim().split(/\s+/)).toEqual(["0", String(start), "65536"]);
    await ok(["rm", id]);
  });

  it("a bad --userns-remap is a clear error at start", async () => {
    const r = await run(process.execPath, [
      MINATOD,
      "--userns-remap",
      "no-such-user-here",
      "--data-root",
      join(work, "bad"),
      "-H",
      `unix://${join(work, "bad.sock")}`,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("--userns-remap: no such user: no-such-user-here");
  });
});
