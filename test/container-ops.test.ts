// Container verbs beyond the lifecycle (rename, top, stats, prune, logs --since, restart policies),
// limits (OOM kill, pids, CPU quota) and isolation, through the stock docker CLI and the minato CLI
// against a real minatod running busybox containers with runc.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readlink, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cgroupMountPoint } from "../libs/runtime/src/index.js";
import { busyboxRootfs, EngineProcess, until } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Inspect {
  Id: string;
  Name: string;
  RestartCount: number;
  State: { Status: string; Running: boolean; Restarting: boolean; OOMKilled: boolean; ExitCode: number; Pid: number };
  HostConfig: { RestartPolicy?: { Name: string; MaximumRetryCount: number } };
  GraphDriver: { Data: { UpperDir: string; MergedDir: string } };
}

describe("container verbs, limits and isolation on minatod", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;

  const runIn = (command: string, args: string[], environment: NodeJS.ProcessEnv): Promise<Run> =>
    new Promise((resolve, reject) => {
      execFile(command, args, { env: environment, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
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

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-container-ops-"));
    engine = await EngineProcess.start();
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    const rootfs = await busyboxRootfs(work);
    ok(await docker(["import", "--change", 'CMD ["/bin/sh"]', rootfs, "busybox:latest"]));
  });
  afterAll(async () => {
    const left = await docker(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await docker(["rm", "-f", id]);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it("rename: the new name finds the container, the old one is free; a taken name is 409", async () => {
    const id = ok(await docker(["create", "--name", "before", "busybox", "true"])).trim();
    ok(await docker(["create", "--name", "taken", "busybox", "true"]));
    ok(await docker(["rename", "before", "after"]));
    expect((await inspect("after")).Id).toBe(id);
    expect((await engine.json("GET", "/containers/before/json")).status).toBe(404);
    const clash = await engine.json<{ message: string }>("POST", "/containers/after/rename?name=taken");
    expect(clash.status).toBe(409);
    expect(clash.body.message).toContain('"/taken" is already in use');
    const bad = await minato(["rename", "after", "no/slashes"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    ok(await minato(["rename", "after", "again"]));
    expect((await inspect("again")).Id).toBe(id);
    ok(await docker(["rm", "again", "taken"]));
  });

  it("concurrent creates get distinct names; the same name twice at once is one 201 and one 409", async () => {
    const create = (name?: string) =>
      engine.json<{ Id: string }>("POST", `/containers/create${name ? `?name=${name}` : ""}`, {
        body: JSON.stringify({ Image: "busybox", Cmd: ["true"], HostConfig: { NetworkMode: "none" } }),
        headers: { "content-type": "application/json" },
      });
    const many = await Promise.all(Array.from({ length: 30 }, () => create()));
    expect(many.map((r) => r.status)).toEqual(Array(30).fill(201));
    const names = await Promise.all(many.map(async (r) => (await inspect(r.body.Id)).Name));
    expect(new Set(names).size).toBe(30);
    const twice = await Promise.all([create("twin"), create("twin")]);
    expect(twice.map((r) => r.status).sort()).toEqual([201, 409]);
    for (const r of [...many, ...twice]) if (r.status === 201) await engine.api("DELETE", `/containers/${r.body.Id}?force=1`);
  });

  it("top lists the container's processes, PID 1's command first; ps arguments pass through", async () => {
    ok(await docker(["run", "-d", "--name", "topper", "busybox", "sh", "-c", "sleep 300 & exec sleep 301"]));
    const pid = (await inspect("topper")).State.Pid;
    const out = ok(await docker(["top", "topper"]));
    const [header, ...rows] = out.trim().split("\n");
    expect(header).toMatch(/^UID\s+PID\s+PPID/);
    expect(rows).toHaveLength(2);
    expect(rows.some((row) => row.split(/\s+/)[1] === String(pid) && row.endsWith("sleep 301"))).toBe(true);
    expect(rows.some((row) => row.endsWith("sleep 300"))).toBe(true);
    // Host processes (this test runner) never show.
    expect(out).not.toContain(String(process.pid));
    const custom = ok(await minato(["top", "topper", "-o", "pid,comm"]));
    expect(custom.trim().split("\n")[0]?.trim().split(/\s+/)).toEqual(["PID", "COMMAND"]);
    ok(await docker(["stop", "-t", "0", "topper"]));
    const stopped = await engine.json<{ message: string }>("GET", "/containers/topper/top");
    expect(stopped.status).toBe(409);
    ok(await docker(["rm", "topper"]));
  });

  it("stats reports the container's real memory, CPU and pid counts", async () => {
    // A shell holding ~20 MiB in a variable, then a busy loop: memory and CPU both show.
    ok(
      await docker([
        "run",
        "-d",
        "--name",
        "busy",
        "--memory",
        "256m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 20000000 /dev/zero | tr '\\0' a); while :; do :; done",
      ]),
    );
    await until(async () => {
      const stats = (await engine.json<{ memory_stats: { usage?: number } }>("GET", "/containers/busy/stats?stream=false&one-shot=true"))
        .body;
      return (stats.memory_stats.usage ?? 0) > 20_000_000;
    }, 30_000);
    const stats = (
      await engine.json<{
        cpu_stats: { cpu_usage: { total_usage: number }; online_cpus: number };
        precpu_stats: { cpu_usage: { total_usage: number } };
        memory_stats: { usage: number; limit: number };
        pids_stats: { current: number };
        name: string;
      }>("GET", "/containers/busy/stats?stream=false")
    ).body;
    expect(stats.name).toBe("/busy");
    expect(stats.memory_stats.limit).toBe(256 * 1024 * 1024);
    expect(stats.cpu_stats.cpu_usage.total_usage).toBeGreaterThan(stats.precpu_stats.cpu_usage.total_usage);
    expect(stats.pids_stats.current).toBeGreaterThanOrEqual(1);
    const table = ok(await docker(["stats", "--no-stream", "busy"]));
    const [header, row] = table.trim().split("\n");
    expect(header?.split(/ {2,}/)).toEqual(["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]);
    const cpu = Number(/ ([\d.]+)% /.exec(row ?? "")?.[1]);
    expect(cpu).toBeGreaterThan(10);
    expect(row).toContain("/ 256MiB");
    const ours = ok(await minato(["stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "busy"]));
    expect(ours).toMatch(/^busy [\d.]+MiB \/ 256MiB [1-9]\d*\n$/);
    ok(await docker(["rm", "-f", "busy"]));
  });

  it("--memory: a memory hog is OOM-killed, inspect says OOMKilled, the daemon lives", async () => {
    const run = await docker([
      "run",
      "--name",
      "hog",
      "--memory",
      "32m",
      "busybox",
      "sh",
      "-c",
      "x=$(head -c 200000000 /dev/zero | tr '\\0' a)",
    ]);
    expect(run.code).toBe(137);
    const state = (await inspect("hog")).State;
    expect(state).toMatchObject({ Status: "exited", ExitCode: 137, OOMKilled: true });
    expect((await engine.api("GET", "/_ping")).status).toBe(200);
    ok(await docker(["rm", "hog"]));
  });

  it("--pids-limit stops a fork bomb at the limit; --cpus sets the CFS quota", async () => {
    const id = ok(await docker(["run", "-d", "--name", "forks", "--pids-limit", "20", "--cpus", "0.5", "busybox", "sleep", "300"])).trim();
    // Try to start 40 more processes: fork fails once the cgroup holds 20.
    const bomb = await docker(["exec", "forks", "sh", "-c", "for i in $(seq 40); do sleep 300 & done; wait"]);
    expect(bomb.stderr + bomb.stdout).toMatch(/can't fork|Resource temporarily unavailable|Cannot allocate/i);
    const pids = (
      await engine.json<{ pids_stats: { current: number; limit: number } }>("GET", "/containers/forks/stats?stream=false&one-shot=1")
    ).body.pids_stats;
    expect(pids.limit).toBe(20);
    expect(pids.current).toBeLessThanOrEqual(20);
    const cpu = cgroupMountPoint("cpu");
    if (existsSync(join("/sys/fs/cgroup", "cgroup.controllers")) && cpu === "/sys/fs/cgroup") {
      expect(readFileSync(`/sys/fs/cgroup/minato/${id}/cpu.max`, "utf8").trim()).toBe("50000 100000");
    } else {
      expect(readFileSync(join(cpu as string, "minato", id, "cpu.cfs_quota_us"), "utf8").trim()).toBe("50000");
      expect(readFileSync(join(cpu as string, "minato", id, "cpu.cfs_period_us"), "utf8").trim()).toBe("100000");
    }
    ok(await docker(["rm", "-f", "forks"]));
  });

  it("restart policies: on-failure:N retries N times, always restarts until a user stops it", async () => {
    const run = await docker(["run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 5"]);
    ok(run);
    await until(async () => {
      const c = await inspect("flaky");
      return c.RestartCount === 2 && c.State.Status === "exited" && !c.State.Restarting;
    }, 30_000);
    const flaky = await inspect("flaky");
    expect(flaky.HostConfig.RestartPolicy).toEqual({ Name: "on-failure", MaximumRetryCount: 2 });
    expect(flaky.State.ExitCode).toBe(5);
    // Three runs in all, each logged.
    expect(ok(await docker(["logs", "flaky"]))).toBe("run\nrun\nrun\n");

    ok(await docker(["run", "-d", "--name", "phoenix", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2"]));
    await until(async () => (await inspect("phoenix")).RestartCount >= 2, 30_000);
    ok(await docker(["stop", "-t", "1", "phoenix"]));
    const stopped = await inspect("phoenix");
    expect(stopped.State.Running).toBe(false);
    // No restart after a user's stop.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await inspect("phoenix")).RestartCount).toBe(stopped.RestartCount);
    expect((await inspect("phoenix")).State.Running).toBe(false);

    const bad = await docker(["run", "-d", "--restart", "sometimes", "busybox", "true"]);
    expect(bad.code).toBe(125);
    const conflict = await minato(["run", "--rm", "--restart", "always", "busybox", "true"]);
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain("Conflicting options: --restart and --rm");
    const retries = await engine.json<{ message: string }>("POST", "/containers/create", {
      body: JSON.stringify({ Image: "busybox", HostConfig: { RestartPolicy: { Name: "always", MaximumRetryCount: 3 } } }),
      headers: { "content-type": "application/json" },
    });
    expect(retries.status).toBe(400);
    ok(await docker(["rm", "-f", "flaky", "phoenix"]));
  });

  it("after a daemon restart, always and unless-stopped containers that are down are started again; manually stopped unless-stopped ones are not", async () => {
    ok(await docker(["run", "-d", "--name", "keeper", "--restart", "always", "busybox", "sleep", "300"]));
    ok(await docker(["run", "-d", "--name", "polite", "--restart", "unless-stopped", "busybox", "sleep", "300"]));
    ok(await docker(["stop", "-t", "0", "keeper", "polite"]));
    await engine.kill("SIGTERM");
    await engine.restart();
    await until(async () => (await inspect("keeper")).State.Running, 30_000);
    expect((await inspect("polite")).State.Running).toBe(false);
    ok(await docker(["rm", "-f", "keeper", "polite"]));
  });

  it("logs --since and --until select by time", async () => {
    ok(await docker(["run", "--name", "clock", "busybox", "sh", "-c", "echo early; sleep 2; echo late"]));
    const all = ok(await docker(["logs", "-t", "clock"]))
      .trim()
      .split("\n");
    expect(all).toHaveLength(2);
    const lateTime = all[1]?.split(" ")[0] as string;
    expect(ok(await docker(["logs", "--since", lateTime, "clock"]))).toBe("late\n");
    expect(ok(await minato(["logs", "--until", lateTime, "clock"]))).toBe("early\n");
    expect(ok(await minato(["logs", "--since", "1h", "clock"]))).toBe("early\nlate\n");
    const bad = await engine.json<{ message: string }>("GET", "/containers/clock/logs?stdout=1&since=yesterday");
    expect(bad.status).toBe(400);
    ok(await docker(["rm", "clock"]));
  });

  it("container prune removes stopped containers only and reports them", async () => {
    const stopped = ok(await docker(["create", "--label", "prune=me", "busybox", "true"])).trim();
    const kept = ok(await docker(["create", "--label", "prune=no", "busybox", "true"])).trim();
    const running = ok(await docker(["run", "-d", "busybox", "sleep", "300"])).trim();
    const filtered = ok(await docker(["container", "prune", "-f", "--filter", "label=prune=me"]));
    expect(filtered).toContain(`Deleted Containers:\n${stopped}\n`);
    expect(filtered).toMatch(/Total reclaimed space: /);
    expect((await engine.json("GET", `/containers/${kept}/json`)).status).toBe(200);
    const all = ok(await minato(["container", "prune", "-f"]));
    expect(all).toContain(kept);
    expect(all).not.toContain(running);
    expect((await inspect(running)).State.Running).toBe(true);
    const badFilter = await engine.json("POST", `/containers/prune?filters=${encodeURIComponent('{"color":["red"]}')}`);
    expect(badFilter.status).toBe(400);
    ok(await docker(["rm", "-f", running]));
  });

  it("isolation: own PID, IPC, UTS and mount namespaces; PID 1 is the command; host processes are neither visible nor killable", async () => {
    const id = ok(await docker(["run", "-d", "--name", "island", "busybox", "sleep", "300"])).trim();
    const c = await inspect("island");
    for (const ns of ["pid", "ipc", "uts", "mnt", "net"]) {
      expect(await readlink(`/proc/${c.State.Pid}/ns/${ns}`), ns).not.toBe(await readlink(`/proc/self/ns/${ns}`));
    }
    // PID 1 is the command; only the container's processes exist.
    const ps = ok(await docker(["exec", "island", "ps", "-o", "pid,comm"]));
    expect(ps).toMatch(/^\s*1 sleep$/m);
    expect(ps).not.toContain("node");
    expect(ok(await docker(["exec", "island", "hostname"])).trim()).toBe(id.slice(0, 12));
    // The runner's PID does not exist inside, so it cannot be signalled.
    const kill = await docker(["exec", "island", "kill", "-0", String(process.pid)]);
    expect(kill.code).not.toBe(0);
    // The daemon's socket is not in the container's filesystem.
    const socket = await docker(["exec", "island", "ls", engine.socket]);
    expect(socket.code).not.toBe(0);
    // Writes land in the container's upper dir only, and go with rm.
    ok(await docker(["exec", "island", "sh", "-c", "echo mine > /written && mkdir -p /tmp/deep && echo x > /tmp/deep/f"]));
    const upper = c.GraphDriver.Data.UpperDir;
    expect(readFileSync(join(upper, "written"), "utf8")).toBe("mine\n");
    expect(existsSync("/written")).toBe(false);
    // Escaping through /proc/1/root or ../ stays inside the container's root.
    ok(await docker(["exec", "island", "sh", "-c", "echo escaped > /proc/1/root/../../../escaped-by-minato-test"]));
    expect(existsSync("/escaped-by-minato-test")).toBe(false);
    expect(readFileSync(join(upper, "escaped-by-minato-test"), "utf8")).toBe("escaped\n");
    ok(await docker(["rm", "-f", "island"]));
    expect(existsSync(upper)).toBe(false);
  });

  it("bad flag values and unknown images are one-line errors with status 125, nothing created", async () => {
    const before = ok(await docker(["ps", "-aq"]));
    const tiny = await docker(["run", "--memory", "1k", "busybox", "true"]);
    expect(tiny.code).toBe(125);
    expect(tiny.stderr).toContain("Minimum memory limit allowed is 6MB");
    for (const argv of [
      ["run", "--cpus", "lots", "busybox", "true"],
      ["run", "--pids-limit", "x", "busybox", "true"],
      ["run", "--memory", "12zb", "busybox", "true"],
      ["run", "--pull", "never", "no-such-image:1", "true"],
    ]) {
      const result = await minato(argv);
      expect(result.code, argv.join(" ")).toBe(125);
      expect(result.stderr.trim().split("\n"), argv.join(" ")).toHaveLength(1);
    }
    const unknown = await docker(["run", "--pull", "never", "no-such-image:1", "true"]);
    expect(unknown.code).toBe(125);
    expect(unknown.stderr).toContain("No such image");
    expect(ok(await docker(["ps", "-aq"]))).toBe(before);
  });

  it("the minato CLI shows help for the new verbs and rejects bad input with one line", async () => {
    for (const verb of ["rename", "top", "stats", "container prune"]) {
      const help = await minato([...verb.split(" "), "--help"]);
      expect(help.code, verb).toBe(0);
      expect(help.stdout).toContain("Usage:");
    }
    const missing = await minato(["top", "no-such-container"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    expect(missing.stderr).toContain("No such container");
  });

  it("stats streams a sample a second, each carrying the previous one's CPU counters", async () => {
    ok(await docker(["run", "-d", "--name", "streamer", "busybox", "sleep", "300"]));
    const lines = await new Promise<string[]>((resolve, reject) => {
      const req = request({ socketPath: engine.socket, path: "/containers/streamer/stats" }, (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => {
          text += chunk.toString("utf8");
          const complete = text.split("\n").filter((l) => l !== "");
          if (complete.length >= 2 && text.endsWith("\n")) {
            req.destroy();
            resolve(complete);
          }
        });
      });
      req.on("error", reject);
      req.end();
    });
    const [first, second] = lines.map((l) => JSON.parse(l) as { read: string; preread: string });
    expect(second?.preread).toBe(first?.read);
    ok(await docker(["rm", "-f", "streamer"]));
  });
});
