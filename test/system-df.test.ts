// `GET /system/df` on a real minatod: sizes that match what was written (a container's writable
// layer, a volume's files, shared image layers), reference counts, the build cache; the legacy
// (< 1.52) and current shapes; `docker system df [-v]` and `minato system df [-v]`.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface LegacyUsage {
  LayersSize: number;
  Images: { Id: string; RepoTags: string[]; Size: number; SharedSize: number; Containers: number }[];
  Containers: { Id: string; SizeRw: number; SizeRootFs: number; State: string }[];
  Volumes: { Name: string; UsageData: { Size: number; RefCount: number } }[];
  BuildCache: { ID: string; Type: string; Size: number; InUse: boolean; Shared: boolean; CreatedAt: string; LastUsedAt: string }[];
}

interface Counts {
  ActiveCount: number;
  TotalCount: number;
  Reclaimable: number;
  TotalSize: number;
  Items?: unknown[];
}

describe("system df on minatod", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let running: string;
  let stopped: string;

  const runIn = (command: string, args: string[], environment: NodeJS.ProcessEnv, cwd?: string): Promise<Run> =>
    new Promise((resolve, reject) => {
      execFile(command, args, { env: environment, cwd }, (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
      });
    });
  const docker = (args: string[], cwd?: string) => runIn("docker", args, env, cwd);
  const minato = (args: string[]) => runIn(process.execPath, [MINATO, ...args], { ...env, MINATO_HOST: env.DOCKER_HOST });
  /** A request with the given API version prefix ("" for none); engine.json always asks for 1.47. */
  const versioned = async <T>(version: string, path: string) => {
    const response = await request(`http://localhost${version}${path}`, {
      dispatcher: new Agent({ connect: { socketPath: engine.socket } }),
    });
    return { status: response.statusCode, body: (await response.body.json()) as T };
  };
  const ok = (run: Run) => {
    expect(run.code, run.stderr).toBe(0);
    return run.stdout;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-df-"));
    engine = await EngineProcess.start();
    env = {
      PATH: process.env.PATH,
      HOME: work,
      DOCKER_CONFIG: join(work, "docker"),
      DOCKER_HOST: `unix://${engine.socket}`,
      DOCKER_BUILDKIT: "0",
    };
    ok(await docker(["import", "--change", 'CMD ["/bin/sh"]', await busyboxRootfs(work), "busybox:latest"]));
    // A second image on top of busybox: they share its layer.
    const context = join(work, "context");
    await mkdir(context);
    await writeFile(join(context, "payload.bin"), randomBytes(30_000));
    await writeFile(join(context, "Dockerfile"), "FROM busybox\nCOPY payload.bin /payload.bin\n");
    ok(await docker(["build", "-t", "derived:1", "."], context));
    ok(await docker(["volume", "create", "dfvol"]));
    running = ok(
      await docker([
        "run",
        "-d",
        "-v",
        "dfvol:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 50000 /dev/zero > /data/v.bin; head -c 100000 /dev/zero > /w.bin; sleep 600",
      ]),
    ).trim();
    stopped = ok(await docker(["create", "derived:1", "true"])).trim();
    // The running container has written its files once both show in its layer and the volume.
    for (let i = 0; i < 600; i++) {
      const usage = (await versioned<LegacyUsage>("/v1.50", "/system/df")).body;
      if (usage.Containers?.find((c) => c.Id === running)?.SizeRw === 100_000 && usage.Volumes?.[0]?.UsageData.Size === 50_000) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(async () => {
    const left = await docker(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await docker(["rm", "-f", id]);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("API < 1.52: LayersSize, Images with shared sizes and container counts, SizeRw, UsageData, BuildCache", async () => {
    const { status, body } = await engine.json<LegacyUsage>("GET", "/system/df");
    expect(status).toBe(200);
    const base = body.Images.find((i) => i.RepoTags.includes("busybox:latest"));
    const derived = body.Images.find((i) => i.RepoTags.includes("derived:1"));
    if (!base || !derived) throw new Error(`images missing: ${JSON.stringify(body.Images)}`);
    // busybox's layer is in both images; derived adds its COPY layer (30,000 bytes of file).
    expect(base.SharedSize).toBe(base.Size);
    expect(derived.SharedSize).toBe(base.Size);
    expect(derived.Size - derived.SharedSize).toBeGreaterThanOrEqual(30_000);
    expect(body.LayersSize).toBe(derived.Size);
    expect([base.Containers, derived.Containers]).toEqual([1, 1]);

    const run = body.Containers.find((c) => c.Id === running);
    expect(run?.SizeRw).toBe(100_000);
    expect(run?.SizeRootFs).toBe(100_000 + base.Size);
    expect(body.Containers.find((c) => c.Id === stopped)?.SizeRw).toBe(0);
    expect(body.Volumes).toEqual([expect.objectContaining({ Name: "dfvol", UsageData: { Size: 50_000, RefCount: 1 } })]);
    const step = body.BuildCache.find((entry) => entry.Type === "regular" && entry.Size >= 30_000);
    expect(step, JSON.stringify(body.BuildCache)).toMatchObject({ InUse: false, Shared: true });
    expect(Number.isNaN(Date.parse(step?.LastUsedAt ?? ""))).toBe(false);
  });

  it("API 1.52+: counts and totals, the lists under Items only with verbose", async () => {
    const brief = await versioned<Record<string, Counts>>("/v1.56", "/system/df");
    expect(Object.keys(brief.body).sort()).toEqual(["BuildCacheUsage", "ContainerUsage", "ImageUsage", "VolumeUsage"]);
    const legacy = (await engine.json<LegacyUsage>("GET", "/system/df")).body;
    expect(brief.body.ImageUsage).toEqual({ ActiveCount: 2, TotalCount: 2, Reclaimable: 0, TotalSize: legacy.LayersSize });
    expect(brief.body.ContainerUsage).toEqual({ ActiveCount: 1, TotalCount: 2, Reclaimable: 0, TotalSize: 100_000 });
    expect(brief.body.VolumeUsage).toEqual({ ActiveCount: 1, TotalCount: 1, Reclaimable: 0, TotalSize: 50_000 });
    const verbose = await versioned<Record<string, Counts>>("", "/system/df?verbose=1&type=volume&type=container");
    expect(Object.keys(verbose.body).sort()).toEqual(["ContainerUsage", "Containers", "VolumeUsage", "Volumes"]);
    expect(verbose.body.VolumeUsage?.Items).toHaveLength(1);
    const bad = await engine.json<{ message: string }>("GET", "/system/df?type=disks");
    expect(bad.status).toBe(400);
    expect(bad.body.message).toContain("invalid type: disks");
  });

  it("docker system df and minato system df show the same table; -v lists each object", async () => {
    const dockerTable = ok(await docker(["system", "df"]));
    const minatoTable = ok(await minato(["system", "df"]));
    const rows = (text: string) =>
      text
        .trim()
        .split("\n")
        .map((line) => line.split(/\s{2,}/));
    expect(rows(dockerTable)[0]).toEqual(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    // All but the images' RECLAIMABLE: the docker CLI works that one out itself from the < 1.52 lists
    // (total minus the unique size of images in use, which counts a layer shared with an image in use
    // as reclaimable); minatod answers the bytes no image in use needs.
    const withoutImageReclaimable = (text: string) => rows(text).map((r) => (r[0] === "Images" ? r.slice(0, 4) : r));
    expect(withoutImageReclaimable(minatoTable)).toEqual(withoutImageReclaimable(dockerTable));
    expect(rows(minatoTable).find((r) => r[0] === "Images")?.[4]).toBe("0B (0%)");
    const volumesRow = rows(dockerTable).find((r) => r[0] === "Local Volumes");
    expect(volumesRow?.slice(1, 4)).toEqual(["1", "1", "50kB"]);

    const dockerVerbose = ok(await docker(["system", "df", "-v"]));
    const minatoVerbose = ok(await minato(["system", "df", "-v"]));
    for (const text of [dockerVerbose, minatoVerbose]) {
      expect(text).toContain("Images space usage:");
      expect(text).toMatch(/dfvol\s+1\s+50kB/);
      expect(text).toMatch(new RegExp(`${running.slice(0, 12)}\\s+busybox\\s+.*\\s1\\s+100kB`));
      expect(text).toMatch(/derived\s+1\s+[0-9a-f]{12}/);
    }
  });
});
