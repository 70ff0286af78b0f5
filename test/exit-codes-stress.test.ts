// Exit codes under load (issue 13 #2): with a busy loop on every core, 100 short containers run at
// once — distinct exit codes, restart policies, SIGKILLs and OOM kills — and every recorded ExitCode,
// OOMKilled and RestartCount is right, and the `wait` begun before each start returns the same code.
// Real minatod, runc and conmon; needs root (CI runs as root).
import { type ChildProcess, spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";

const root = process.getuid?.() === 0;

interface Case {
  name: string;
  cmd: string[];
  /** The exit code of its last run and of the wait begun before its start. */
  exitCode: number;
  restarts: number;
  oomKilled: boolean;
  memory?: number;
  retries?: number;
  /** Killed with SIGKILL through the API once running. */
  kill?: boolean;
}

interface Inspect {
  RestartCount: number;
  State: { Status: string; Restarting: boolean; OOMKilled: boolean; ExitCode: number };
}

/** 100 cases: 84 plain exits, 10 on-failure:N restarts, 4 SIGKILLs, 2 OOM kills; exit codes distinct except 137. */
function cases(): Case[] {
  const list: Case[] = [];
  // Distinct codes 0–255 without 137 (the kills' code): spread over the whole range.
  const codes = Array.from({ length: 94 }, (_, i) => Math.round((i * 255) / 93)).map((c) => (c === 137 ? 136 : c));
  for (const [i, code] of codes.entries()) {
    const retries = i % 9 === 1 && code !== 0 ? (i % 3) + 1 : 0;
    list.push({
      name: `exit-${code}`,
      cmd: ["sh", "-c", `echo ${code}; exit ${code}`],
      exitCode: code,
      restarts: retries,
      oomKilled: false,
      ...(retries > 0 ? { retries } : {}),
    });
  }
  for (let i = 0; i < 4; i++)
    list.push({ name: `killed-${i}`, cmd: ["sleep", "600"], exitCode: 137, restarts: 0, oomKilled: false, kill: true });
  for (let i = 0; i < 2; i++)
    list.push({
      name: `oom-${i}`,
      cmd: ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a)"],
      exitCode: 137,
      restarts: 0,
      oomKilled: true,
      memory: 16 * 1024 * 1024,
    });
  return list;
}

describe.skipIf(!root)("exit codes under CPU load (needs root: real runc containers)", () => {
  let engine: EngineProcess;
  let work: string;
  let dispatcher: Agent;
  const burners: ChildProcess[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-exit-stress-"));
    engine = await EngineProcess.start();
    dispatcher = new Agent({ connect: { socketPath: engine.socket }, connections: 256 });
    const rootfs = await busyboxRootfs(work);
    const imported = await engine.api("POST", "/images/create?fromSrc=-&repo=busybox&tag=latest", {
      body: createReadStream(rootfs),
      headers: { "Content-Type": "application/x-tar" },
    });
    expect(imported.status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    for (const burner of burners) burner.kill("SIGKILL");
    // Containers go first: their rootfs mounts live under the engine's data root.
    const left = await engine?.json<{ Id: string }[]>("GET", "/containers/json?all=1").catch(() => undefined);
    await Promise.all((left?.body ?? []).map((c) => engine.api("DELETE", `/containers/${c.Id}?force=1`)));
    await dispatcher?.close();
    await engine?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("records every exit code, OOM kill and restart count right while every core is busy", async () => {
    // A busy loop on every core, bounded in time by itself (it outlives nothing: no wrapper process).
    for (let i = 0; i < availableParallelism(); i++)
      burners.push(spawn(process.execPath, ["-e", "const end = Date.now() + 240_000; while (Date.now() < end);"], { stdio: "ignore" }));

    const all = cases();
    expect(new Set(all.filter((c) => c.exitCode !== 137).map((c) => c.exitCode)).size).toBe(94);
    const ids = await Promise.all(
      all.map(async (c) => {
        const created = await engine.json<{ Id: string }>("POST", `/containers/create?name=${c.name}`, {
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({
            Image: "busybox",
            Cmd: c.cmd,
            HostConfig: {
              NetworkMode: "none",
              ...(c.memory ? { Memory: c.memory } : {}),
              ...(c.retries ? { RestartPolicy: { Name: "on-failure", MaximumRetryCount: c.retries } } : {}),
            },
          }),
        });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        return created.body.Id;
      }),
    );

    // As `docker run` does: the wait for the next exit is in place (headers received) before the start.
    const waits = await Promise.all(
      ids.map(async (id) => {
        const response = await request(`http://localhost/v1.47/containers/${id}/wait?condition=next-exit`, {
          method: "POST",
          dispatcher,
        });
        expect(response.statusCode).toBe(200);
        // Wrapped: an async function returning the body's promise would wait for the body.
        return { result: response.body.json() as Promise<{ StatusCode: number }> };
      }),
    );
    const started = await Promise.all(ids.map((id) => engine.api("POST", `/containers/${id}/start`)));
    for (const [i, response] of started.entries()) expect(response.status, `${all[i]!.name}: ${response.body}`).toBe(204);
    await Promise.all(
      all.map(async (c, i) => {
        if (!c.kill) return;
        const killed = await engine.api("POST", `/containers/${ids[i]}/kill?signal=SIGKILL`);
        expect(killed.status, `${c.name}: ${killed.body}`).toBe(204);
      }),
    );

    const codes = await Promise.all(waits.map((w) => w.result));
    // The final state: exited, and no restart pending.
    const settled = async (id: string): Promise<Inspect> => {
      for (;;) {
        const { body } = await engine.json<Inspect>("GET", `/containers/${id}/json`);
        if (body.State.Status === "exited" && !body.State.Restarting) return body;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    const states = await Promise.all(ids.map(settled));
    const seen = all.map((c, i) => ({
      name: c.name,
      wait: codes[i]!.StatusCode,
      exitCode: states[i]!.State.ExitCode,
      oomKilled: states[i]!.State.OOMKilled,
      restarts: states[i]!.RestartCount,
    }));
    const expected = all.map((c) => ({
      name: c.name,
      wait: c.exitCode,
      exitCode: c.exitCode,
      oomKilled: c.oomKilled,
      restarts: c.restarts,
    }));
    expect(seen).toEqual(expected);
    // Each run of a restarted container was logged (each prints its code once per run).
    for (const [i, c] of all.entries()) {
      if (!c.retries) continue;
      const logs = await engine.api("GET", `/containers/${ids[i]}/logs?stdout=1`);
      expect(logs.body.toString("latin1").match(new RegExp(`${c.exitCode}\\n`, "g"))?.length, c.name).toBe(c.retries + 1);
    }
    expect((await engine.api("GET", "/_ping")).status).toBe(200);
    // About a minute on an idle 2-core machine; the margin is for a machine other suites load too.
  }, 300_000);
});
