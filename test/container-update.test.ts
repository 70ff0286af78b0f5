// `docker update` / `minato update` against a real minatod: the new limits land in the running
// container's cgroup files (v1 or v2, whichever this host has), inspect shows them, a restart keeps
// them, and bad input is refused with Docker's statuses.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerCgroup } from "../apps/engine/src/containers/cgroup.js";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Inspect {
  Id: string;
  State: { Running: boolean };
  HostConfig: Record<string, unknown> & { RestartPolicy?: { Name: string; MaximumRetryCount: number } };
}

/** The limits the kernel holds for a container, read from v1 or v2 files. */
async function limits(id: string) {
  const cgroup = new ContainerCgroup(`/minato/${id}`);
  if (cgroup.mode === "unified") {
    const [quota, period] = ((await cgroup.read("cpu", "cpu.max")) ?? "").trim().split(" ");
    return {
      memory: (await cgroup.read("memory", "memory.max"))?.trim(),
      quota,
      period,
      pids: (await cgroup.read("pids", "pids.max"))?.trim(),
      cpus: (await cgroup.read("cpuset", "cpuset.cpus"))?.trim(),
    };
  }
  return {
    memory: (await cgroup.read("memory", "memory.limit_in_bytes"))?.trim(),
    quota: (await cgroup.read("cpu", "cpu.cfs_quota_us"))?.trim(),
    period: (await cgroup.read("cpu", "cpu.cfs_period_us"))?.trim(),
    pids: (await cgroup.read("pids", "pids.max"))?.trim(),
    cpus: (await cgroup.read("cpuset", "cpuset.cpus"))?.trim(),
    shares: (await cgroup.read("cpu", "cpu.shares"))?.trim(),
  };
}

describe("container update on minatod", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;

  const runIn = (command: string, args: string[], environment: NodeJS.ProcessEnv): Promise<Run> =>
    new Promise((resolve, reject) => {
      execFile(command, args, { env: environment }, (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
      });
    });
  const docker = (args: string[]) => runIn("docker", args, env);
  const minato = (args: string[]) => runIn(process.execPath, [MINATO, ...args], { ...env, MINATO_HOST: env.DOCKER_HOST });
  const inspect = async (id: string) => (await engine.json<Inspect>("GET", `/containers/${id}/json`)).body;
  const ok = (run: Run) => {
    expect(run.code, run.stderr).toBe(0);
    return run.stdout;
  };
  const update = (id: string, body: unknown) =>
    engine.json<{ message?: string; Warnings?: string[] }>("POST", `/containers/${id}/update`, {
      body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" },
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-update-"));
    engine = await EngineProcess.start();
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    ok(await docker(["import", "--change", 'CMD ["/bin/sh"]', await busyboxRootfs(work), "busybox:latest"]));
  });
  afterAll(async () => {
    const left = await docker(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await docker(["rm", "-f", id]);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("docker update changes a running container's cgroup, inspect shows it, a restart keeps it", async () => {
    const id = ok(await docker(["run", "-d", "--memory", "64m", "busybox", "sleep", "600"])).trim();
    expect((await limits(id)).memory).toBe(String(64 * 1024 * 1024));
    const since = String(Math.floor(Date.now() / 1000));
    expect(ok(await docker(["update", "--memory", "96m", "--memory-swap", "192m", "--cpus", "0.5", "--pids-limit", "40", id])).trim()).toBe(
      id,
    );
    const after = await limits(id);
    expect(after.memory).toBe(String(96 * 1024 * 1024));
    expect([after.quota, after.period]).toEqual(["50000", "100000"]);
    expect(after.pids).toBe("40");
    // The change is an `update` event, as dockerd sends it.
    const until = String(Math.floor(Date.now() / 1000) + 1);
    const events = ok(
      await docker(["events", "--since", since, "--until", until, "--filter", "event=update", "--format", "{{.Action}} {{.Actor.ID}}"]),
    );
    expect(events.trim()).toBe(`update ${id}`);
    const host = (await inspect(id)).HostConfig;
    expect(host).toMatchObject({ Memory: 96 * 1024 * 1024, MemorySwap: 192 * 1024 * 1024, NanoCpus: 5e8, PidsLimit: 40 });

    // Through the minato CLI: CFS quota and period, shares, cpuset, restart policy.
    ok(
      await minato([
        "update",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "20000",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--restart",
        "on-failure:2",
        id,
      ]),
    );
    const second = await limits(id);
    expect([second.quota, second.period]).toEqual(["20000", "50000"]);
    expect(second.cpus).toBe("0");
    if (second.shares !== undefined) expect(second.shares).toBe("512");
    expect((await inspect(id)).HostConfig).toMatchObject({
      CpuPeriod: 50000,
      CpuQuota: 20000,
      CpuShares: 512,
      CpusetCpus: "0",
      NanoCpus: 0,
    });
    expect((await inspect(id)).HostConfig.RestartPolicy).toEqual({ Name: "on-failure", MaximumRetryCount: 2 });

    ok(await docker(["restart", "-t", "0", id]));
    expect((await inspect(id)).State.Running).toBe(true);
    const restarted = await limits(id);
    expect(restarted).toMatchObject({ memory: String(96 * 1024 * 1024), quota: "20000", period: "50000", pids: "40", cpus: "0" });

    // -1: pids unlimited again.
    ok(await docker(["update", "--pids-limit", "-1", id]));
    expect((await limits(id)).pids).toBe("max");
    expect((await inspect(id)).HostConfig.PidsLimit).toBeNull();
    ok(await docker(["rm", "-f", id]));
  });

  it("memory reservation and cpuset mems reach the cgroup; a paused container is updated too", async () => {
    const id = ok(await docker(["run", "-d", "busybox", "sleep", "600"])).trim();
    ok(await docker(["pause", id]));
    ok(await docker(["update", "--memory", "128m", "--memory-reservation", "48m", "--cpuset-mems", "0", id]));
    const cgroup = new ContainerCgroup(`/minato/${id}`);
    const soft =
      cgroup.mode === "unified" ? await cgroup.read("memory", "memory.low") : await cgroup.read("memory", "memory.soft_limit_in_bytes");
    expect(soft?.trim()).toBe(String(48 * 1024 * 1024));
    expect((await cgroup.read("cpuset", "cpuset.mems"))?.trim()).toBe("0");
    expect((await limits(id)).memory).toBe(String(128 * 1024 * 1024));
    ok(await docker(["unpause", id]));
    expect((await inspect(id)).HostConfig).toMatchObject({ MemoryReservation: 48 * 1024 * 1024, CpusetMems: "0" });
    ok(await docker(["rm", "-f", id]));
  });

  it("an updated restart policy governs the next exits", async () => {
    const id = ok(await docker(["run", "-d", "busybox", "sh", "-c", "sleep 1; exit 3"])).trim();
    ok(await docker(["update", "--restart", "on-failure:2", id]));
    // Two restarts, then it stays down with its exit code.
    for (let i = 0; i < 600; i++) {
      const state = await engine.json<{ RestartCount: number; State: { Running: boolean; Restarting: boolean; ExitCode: number } }>(
        "GET",
        `/containers/${id}/json`,
      );
      if (state.body.RestartCount === 2 && !state.body.State.Running && !state.body.State.Restarting) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const final = await engine.json<{ RestartCount: number; State: { ExitCode: number } }>("GET", `/containers/${id}/json`);
    expect(final.body.RestartCount).toBe(2);
    expect(final.body.State.ExitCode).toBe(3);
    ok(await docker(["rm", "-f", id]));
  });

  it("a stopped container takes the update at its next start", async () => {
    const id = ok(await docker(["create", "busybox", "sleep", "600"])).trim();
    const answer = await update(id, { Memory: 32 * 1024 * 1024, PidsLimit: 25 });
    expect(answer).toEqual({ status: 200, body: { Warnings: [] } });
    ok(await docker(["start", id]));
    expect(await limits(id)).toMatchObject({ memory: String(32 * 1024 * 1024), pids: "25" });
    ok(await docker(["rm", "-f", id]));
  });

  it("refuses what it cannot apply: 400 for bad values and unknown fields, 404 for a removed container", async () => {
    const id = ok(await docker(["run", "-d", "--memory", "64m", "busybox", "sleep", "600"])).trim();
    const cases: [unknown, string][] = [
      [{ Memory: 1024 }, "Minimum memory limit allowed is 6MB"],
      [{ Memory: 64 * 1024 * 1024, MemorySwap: 32 * 1024 * 1024 }, "Minimum memoryswap limit should be larger than memory limit"],
      [{ NanoCpus: 5e8, CpuQuota: 20000 }, "Conflicting options"],
      [{ NanoCpus: 1e15 }, "Range of CPUs is from 0.01"],
      [{ CpuPeriod: 10 }, "CPU cfs period can not be less than 1ms"],
      [{ CpuQuota: 10 }, "CPU cfs quota can not be less than 1ms"],
      [{ CpusetCpus: "0-999" }, "Requested CPUs are not available"],
      [{ CpusetCpus: "zero" }, "Invalid value zero for cpuset cpus"],
      [{ BlkioWeight: 5 }, "Range of blkio weight is from 10 to 1000"],
      [{ PidsLimit: "many" }, "invalid PidsLimit"],
      [{ RestartPolicy: { Name: "sometimes" } }, "invalid restart policy"],
      [{ KernelMemory: 1 << 30 }, "KernelMemory cannot be updated"],
      [{ Privileged: true }, 'unknown field "Privileged"'],
      [[1, 2], "expected a JSON object"],
    ];
    for (const [body, message] of cases) {
      const answer = await update(id, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.message).toContain(message);
    }
    // dockerd's rule: raising memory past the swap limit set at create needs the swap too (409).
    // Block I/O weight needs a kernel with a weight file (v1 blkio.weight with CFQ/BFQ, v2 io.weight).
    const blkio = new ContainerCgroup(`/minato/${id}`);
    const weightFile =
      blkio.mode === "unified"
        ? await blkio.read("", "io.weight")
        : ((await blkio.read("blkio", "blkio.weight")) ?? (await blkio.read("blkio", "blkio.bfq.weight")));
    const weight = await update(id, { BlkioWeight: 500 });
    if (weightFile === undefined) {
      expect(weight.status).toBe(400);
      expect(weight.body.message).toContain("does not support Block I/O weight");
    } else {
      expect(weight.status).toBe(200);
      expect((await inspect(id)).HostConfig.BlkioWeight).toBe(500);
    }
    const cgroup = new ContainerCgroup(`/minato/${id}`);
    const swapAccounted = cgroup.mode === "unified" || (await cgroup.read("memory", "memory.memsw.limit_in_bytes")) !== undefined;
    const past = await update(id, { Memory: 512 * 1024 * 1024 });
    if (swapAccounted) {
      expect(past.status).toBe(409);
      expect(past.body.message).toContain("update the memoryswap at the same time");
    } else {
      // No swap limit was set at create (the kernel does not account swap): nothing to conflict with.
      expect(past.status).toBe(200);
      expect((await update(id, { Memory: 64 * 1024 * 1024 })).status).toBe(200);
    }
    // Nothing refused changed anything.
    expect((await limits(id)).memory).toBe(String(64 * 1024 * 1024));

    const cli = await docker(["update", "--cpus", "abc", id]);
    expect(cli.code).not.toBe(0);
    const none = await minato(["update", id]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain("you must provide one or more flags");

    ok(await docker(["rm", "-f", id]));
    const gone = await update(id, { Memory: 64 * 1024 * 1024 });
    expect(gone.status).toBe(404);
    expect(gone.body.message).toContain("No such container");
    const cliGone = await docker(["update", "--memory", "64m", id]);
    expect(cliGone.code).not.toBe(0);
    expect(cliGone.stderr).toContain("No such container");
  });
});
