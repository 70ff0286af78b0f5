// Resource limits enforced through the container's cgroups.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { detectCgroupMode } from "../src/index.js";
import { cgroupFile, harness, stdout, until } from "./harness.js";

const h = harness();
const { runtime } = h;
const MiB = 1024 * 1024;

describe("limits", () => {
  it("the memory limit is set on the container's cgroup and visible inside it", async () => {
    const id = h.id("mem");
    const inside = detectCgroupMode() === "unified" ? "/sys/fs/cgroup/memory.max" : "/sys/fs/cgroup/memory/memory.limit_in_bytes";
    await runtime.run(id, await h.spec(id, { cmd: ["sh", "-c", `cat ${inside}; sleep 300`], memory: 32 * MiB }));
    await until(async () => (await stdout(runtime, id)) !== "", "the container's output");
    expect(await stdout(runtime, id)).toBe(String(32 * MiB));
    expect(readFileSync(cgroupFile(h, id, "memory", "memory.limit_in_bytes", "memory.max"), "utf8").trim()).toBe(String(32 * MiB));
  });

  it("a memory hog is OOM-killed: exit 137 and conmon's OOM flag", async () => {
    const id = h.id("oom");
    // tail keeps the whole newline-free "line" in memory; no swap so the limit is hard.
    await runtime.run(
      id,
      await h.spec(id, { cmd: ["sh", "-c", "head -c 256m /dev/zero | tail -n 1 > /dev/null"], memory: 16 * MiB, memorySwap: 16 * MiB }),
    );
    expect(await runtime.wait(id)).toBe(137);
    const state = await until(async () => {
      const s = await runtime.state(id);
      return s.oomKilled ? s : undefined;
    }, "conmon to record the OOM kill");
    expect(state).toMatchObject({ status: "stopped", exitCode: 137, oomKilled: true });
  });

  it("the pids limit stops a fork loop", async () => {
    const id = h.id("pids");
    // busybox sh aborts the script when fork fails; `echo` is a builtin, so each started child is counted.
    const script = "i=0; while [ $i -lt 30 ]; do sleep 300 & i=$((i+1)); echo $i; done; echo all-started";
    await runtime.run(id, await h.spec(id, { cmd: ["sh", "-c", script], pidsLimit: 10 }));
    expect(await runtime.wait(id)).not.toBe(0);
    const out = (await stdout(runtime, id)).split("\n");
    expect(out).not.toContain("all-started");
    // PID 1 (sh) plus at most 9 children fit under pids.max = 10
    expect(Math.max(...out.map(Number))).toBeLessThanOrEqual(9);
    const errors = (await runtime.logs(id)).filter((r) => r.stream === "stderr").map((r) => r.text);
    expect(errors.join("\n")).toMatch(/can't fork/);
    expect(readFileSync(cgroupFile(h, id, "pids", "pids.max", "pids.max"), "utf8").trim()).toBe("10");
    const events = readFileSync(cgroupFile(h, id, "pids", "pids.events", "pids.events"), "utf8");
    expect(Number(/max (\d+)/.exec(events)?.[1])).toBeGreaterThan(0);
  });

  it("--cpus sets the CFS quota over a 100 ms period", async () => {
    const id = h.id("cpu");
    await runtime.run(id, await h.spec(id, { cmd: ["sleep", "300"], cpus: 0.5 }));
    if (detectCgroupMode() === "unified") {
      expect(readFileSync(cgroupFile(h, id, "cpu", "", "cpu.max"), "utf8").trim()).toBe("50000 100000");
    } else {
      expect(readFileSync(cgroupFile(h, id, "cpu", "cpu.cfs_quota_us", ""), "utf8").trim()).toBe("50000");
      expect(readFileSync(cgroupFile(h, id, "cpu", "cpu.cfs_period_us", ""), "utf8").trim()).toBe("100000");
    }
  });

  it("rlimits: NOFILE as Docker gives it, never above the host's hard limit", async () => {
    const id = h.id("rlim");
    const hostHard = Number(/Max open files\s+\S+\s+(\S+)/.exec(readFileSync("/proc/self/limits", "utf8"))?.[1]);
    await runtime.run(id, await h.spec(id, { cmd: ["sh", "-c", "ulimit -n; ulimit -Hn"] }));
    expect(await runtime.wait(id)).toBe(0);
    const expected = String(Math.min(1_048_576, hostHard));
    expect((await stdout(runtime, id)).split("\n")).toEqual([expected, expected]);
  });
});
