// Operations on running containers: pause/resume through the freezer, exec under conmon, TTY output,
// and containers outliving the process that started them.
import { spawnSync } from "node:child_process";
import { lstatSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Runtime, RuntimeError } from "../src/index.js";
import { cgroupFile, harness, stdout, until } from "./harness.js";

const h = harness();
const { runtime } = h;
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");

async function running(label: string, cmd: string[], options: Parameters<typeof h.spec>[1] = {}) {
  const id = h.id(label);
  await runtime.run(id, await h.spec(id, { cmd, ...options }));
  return id;
}

describe("pause and resume (freezer)", () => {
  it("a looping process stops advancing while paused and continues after resume", async () => {
    const id = await running("pause", ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; usleep 20000; done"]);
    const counterFile = join(h.upper(id), "tmp/counter");
    const counter = () => {
      try {
        const n = Number(readFileSync(counterFile, "utf8").trim());
        return Number.isInteger(n) && n > 0 ? n : undefined;
      } catch {
        return undefined;
      }
    };
    await until(() => ((counter() ?? 0) > 2 ? true : undefined), "the loop to run");
    await runtime.pause(id);
    expect((await runtime.state(id)).status).toBe("paused");
    const freezer = cgroupFile(h, id, "freezer", "freezer.state", "cgroup.freeze");
    await until(() => ["FROZEN", "1"].includes(readFileSync(freezer, "utf8").trim()), "the cgroup to be frozen");
    const frozenAt = counter();
    // The loop ticks every 20 ms; half a second frozen must not move the counter.
    await new Promise((r) => setTimeout(r, 500));
    expect(counter()).toBe(frozenAt);
    await expect(runtime.pause(id)).rejects.toBeInstanceOf(RuntimeError);
    await runtime.resume(id);
    expect((await runtime.state(id)).status).toBe("running");
    await until(() => ((counter() ?? 0) > (frozenAt ?? 0) ? true : undefined), "the loop to advance after resume");
  });
});

describe("exec", () => {
  it("runs a process in the running container's namespaces, with its own log and exit code", async () => {
    const id = await running("exec", ["sleep", "300"], { hostname: "exec-box", env: ["FROM_RUN=1"] });
    const session = await runtime.exec(id, {
      args: ["sh", "-c", "echo from-exec; hostname; echo $FROM_RUN$EXTRA; cat /proc/1/cmdline | tr '\\0' ' '; echo; pwd; exit 5"],
      env: ["EXTRA=2"],
      workdir: "/tmp",
    });
    expect(session.pid).toBeGreaterThan(0);
    expect(await session.wait()).toBe(5);
    const out = (await session.output()).filter((r) => r.stream === "stdout").map((r) => r.text);
    expect(out).toEqual(["from-exec", "exec-box", "12", "sleep 300 ", "/tmp"]);
    await session.remove();
    // the container's own log is untouched
    expect(await stdout(runtime, id)).toBe("");
  });

  it("as another user, with a TTY; command not found is Docker's 127; exec in a paused or stopped container is refused", async () => {
    const id = await running("exec2", ["sleep", "300"]);
    const asNobody = await runtime.exec(id, { args: ["id", "-u"], user: "nobody" });
    expect(await asNobody.wait()).toBe(0);
    expect((await asNobody.output()).map((r) => r.text)).toEqual(["65534"]);
    await expect(runtime.exec(id, { args: ["no-such-binary"] })).rejects.toMatchObject({ code: "COMMAND_NOT_FOUND", exitCode: 127 });
    await expect(runtime.exec(id, { args: ["id"], user: "ghost" })).rejects.toThrow(
      "unable to find user ghost: no matching entries in passwd file",
    );
    const withTty = await runtime.exec(id, { args: ["tty"], tty: true });
    expect(await withTty.wait()).toBe(0);
    expect((await withTty.output()).map((r) => r.text.replace(/\r/g, ""))).toEqual(["/dev/pts/0"]);
    await runtime.pause(id);
    await expect(runtime.exec(id, { args: ["true"] })).rejects.toMatchObject({ code: "INVALID_STATE" });
    await runtime.resume(id);
    await runtime.kill(id, "KILL");
    expect(await runtime.wait(id)).toBe(137);
    await expect(runtime.exec(id, { args: ["true"] })).rejects.toMatchObject({ code: "INVALID_STATE" });
  });
});

describe("terminal and attach socket", () => {
  it("a TTY container gets a pty; its output is logged; conmon's attach socket and ctl FIFO exist", async () => {
    const id = h.id("tty");
    await runtime.create(id, await h.spec(id, { cmd: ["sh", "-c", "tty; echo $TERM; sleep 300"], tty: true }));
    const paths = runtime.paths(id);
    expect(lstatSync(paths.attachSocket).isSocket()).toBe(true);
    expect(lstatSync(paths.ctlFifo).isFIFO()).toBe(true);
    await runtime.start(id);
    const text = await until(async () => {
      const t = await stdout(runtime, id);
      return t.includes("xterm") ? t : undefined;
    }, "the TTY output in the log");
    expect(text.replace(/\r/g, "").split("\n")).toEqual(["/dev/pts/0", "xterm"]);
  });
});

describe("conmon keeps containers alive", () => {
  it("a container started by a process that then exits keeps running and can be driven by a new Runtime", async () => {
    const id = h.id("orphan");
    const rootfs = h.rootfs(id);
    const child = spawnSync(
      join(repo, "node_modules/.bin/vite-node"),
      [join(here, "fixtures/start-detached.ts"), runtime.root, id, rootfs, `/${h.cgroupParent}/${id}`],
      {
        cwd: repo,
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    expect(child.stderr).toBe("");
    expect(child.status).toBe(0);
    const pid = Number(child.stdout.trim());
    expect(pid).toBeGreaterThan(0);
    // The starting process is gone; a fresh Runtime (as after a daemon restart) finds the container running.
    const fresh = new Runtime({ root: runtime.root });
    const state = await fresh.state(id);
    expect(state).toMatchObject({ status: "running", pid });
    await until(async () => (await stdout(fresh, id)) === "started", "the container's output");
    const session = await fresh.exec(id, { args: ["echo", "still-here"] });
    expect(await session.wait()).toBe(0);
    await fresh.kill(id, "KILL");
    expect(await fresh.wait(id)).toBe(137);
  });
});
