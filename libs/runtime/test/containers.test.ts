// Real containers: runc under conmon, busybox rootfs on overlayfs, as root.
import { execFileSync } from "node:child_process";
import { readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RuntimeError } from "../src/index.js";
import { harness, stdout, until } from "./harness.js";

const h = harness();
const { runtime } = h;

async function runToExit(label: string, cmd: string[], options: Parameters<typeof h.spec>[1] = {}) {
  const id = h.id(label);
  const spec = await h.spec(id, { cmd, ...options });
  await runtime.run(id, spec);
  const exitCode = await runtime.wait(id);
  return { id, exitCode, out: await stdout(runtime, id), logs: await runtime.logs(id) };
}

describe("lifecycle under conmon", () => {
  it("echo hello runs as PID 1; its output lands in the k8s-file log; exit 0 in conmon's exit file", async () => {
    const { id, exitCode, logs } = await runToExit("echo", ["sh", "-c", "echo hello; echo pid=$$; echo to-stderr >&2"]);
    expect(exitCode).toBe(0);
    expect(logs.filter((r) => r.stream === "stdout").map((r) => r.text)).toEqual(["hello", "pid=1"]);
    expect(logs.filter((r) => r.stream === "stderr").map((r) => r.text)).toEqual(["to-stderr"]);
    expect(readFileSync(runtime.paths(id).exitFile, "utf8").trim()).toBe("0");
    expect((await runtime.state(id)).status).toBe("stopped");
  });

  it("create → created, start → running, kill → stopped with 137, delete removes it", async () => {
    const id = h.id("life");
    await runtime.create(id, await h.spec(id, { cmd: ["sleep", "300"] }));
    expect((await runtime.state(id)).status).toBe("created");
    expect(await runtime.list()).toContain(id);
    await runtime.start(id);
    const running = await runtime.state(id);
    expect(running.status).toBe("running");
    expect(running.pid).toBeGreaterThan(0);
    await runtime.kill(id, "SIGKILL");
    expect(await runtime.wait(id)).toBe(137);
    const stopped = await runtime.state(id);
    expect(stopped).toMatchObject({ status: "stopped", exitCode: 137, oomKilled: false });
    await runtime.delete(id);
    expect(await runtime.list()).not.toContain(id);
    await expect(runtime.state(id)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("exit codes: 1, 127 from a shell, 126 from a shell; a signal reaches PID 1's handler", async () => {
    expect((await runToExit("exit1", ["sh", "-c", "exit 1"])).exitCode).toBe(1);
    expect((await runToExit("e127", ["sh", "-c", "no-such-command"])).exitCode).toBe(127);
    expect((await runToExit("e126", ["sh", "-c", "/etc/passwd"])).exitCode).toBe(126);
    const id = h.id("term");
    // PID 1 only gets signals it handles (so `docker stop` escalates to SIGKILL); this one handles TERM.
    await runtime.run(
      id,
      await h.spec(id, { cmd: ["sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 1; done"] }),
    );
    await until(async () => (await stdout(runtime, id)).includes("ready"), "the trap to be installed");
    await runtime.kill(id, "TERM");
    expect(await runtime.wait(id)).toBe(3);
    expect(await stdout(runtime, id)).toBe("ready\ngot TERM");
  });

  it("a command that cannot be found or executed fails to start with Docker's 127 / 126", async () => {
    const missing = h.id("nf");
    const error = await runtime.run(missing, await h.spec(missing, { cmd: ["no-such-binary"] })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect(error).toMatchObject({ code: "COMMAND_NOT_FOUND", exitCode: 127 });
    const notExec = h.id("ne");
    const error2 = await runtime.run(notExec, await h.spec(notExec, { cmd: ["/etc/passwd"] })).catch((e: unknown) => e);
    expect(error2).toMatchObject({ code: "NOT_EXECUTABLE", exitCode: 126 });
    // nothing is left behind by a failed create
    expect(await runtime.list()).not.toContain(missing);
  });

  it("delete refuses a running container unless forced; kill of a stopped one is an INVALID_STATE error", async () => {
    const id = h.id("del");
    await runtime.run(id, await h.spec(id, { cmd: ["sleep", "300"] }));
    await expect(runtime.delete(id)).rejects.toMatchObject({ code: "INVALID_STATE" });
    await runtime.kill(id, "KILL");
    await runtime.wait(id);
    await expect(runtime.kill(id, "KILL")).rejects.toMatchObject({ code: "INVALID_STATE" });
    await runtime.delete(id);
    const forced = h.id("force");
    await runtime.run(forced, await h.spec(forced, { cmd: ["sleep", "300"] }));
    await runtime.delete(forced, { force: true });
    expect(await runtime.list()).not.toContain(forced);
  });
});

describe("isolation and Docker's defaults inside the container", () => {
  it("hostname, generated /etc/hosts, /etc/hostname and resolv.conf without loopback nameservers", async () => {
    const { exitCode, out } = await runToExit("etc", ["sh", "-c", "hostname; cat /etc/hostname; cat /etc/hosts; cat /etc/resolv.conf"], {
      hostname: "box-name",
    });
    expect(exitCode).toBe(0);
    const lines = out.split("\n");
    expect(lines[0]).toBe("box-name");
    expect(lines[1]).toBe("box-name");
    expect(lines).toContain("127.0.0.1\tlocalhost");
    expect(lines).toContain("nameserver 10.9.8.7");
    expect(lines).toContain("search example.test");
    expect(out).not.toContain("127.0.0.53");
  });

  it("default capabilities: CapEff/CapPrm/CapBnd are Docker's set, CapInh and CapAmb are empty", async () => {
    const { out } = await runToExit("caps", ["sh", "-c", "grep Cap /proc/self/status"]);
    const caps = Object.fromEntries(out.split("\n").map((l) => l.split(/:\s+/) as [string, string]));
    // CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6, SETUID 7, SETPCAP 8, NET_BIND_SERVICE 10,
    // NET_RAW 13, SYS_CHROOT 18, MKNOD 27, AUDIT_WRITE 29, SETFCAP 31 → 0x00000000a80425fb
    expect(caps).toEqual({
      CapInh: "0000000000000000",
      CapPrm: "00000000a80425fb",
      CapEff: "00000000a80425fb",
      CapBnd: "00000000a80425fb",
      CapAmb: "0000000000000000",
    });
  });

  it("masked paths are unreadable, read-only paths are read-only, /sys is read-only", async () => {
    const script = [
      // /proc/timer_list is masked by a /dev/null bind (the host's has content); /proc/kcore does not exist on every kernel
      "echo timer_list=$(wc -c < /proc/timer_list)",
      "ls /sys/firmware | wc -l | sed 's/^/firmware=/'",
      "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo procsys=rw || echo procsys=ro",
      "touch /sys/x 2>/dev/null && echo sys=rw || echo sys=ro",
    ].join("; ");
    const { out } = await runToExit("mask", ["sh", "-c", script]);
    expect(out.split("\n")).toEqual(["timer_list=0", "firmware=0", "procsys=ro", "sys=ro"]);
  });

  it("--read-only: the rootfs refuses writes, /dev/shm and tmpfs mounts still accept them", async () => {
    const script =
      "touch /newfile 2>/dev/null && echo root=rw || echo root=ro; touch /dev/shm/x && echo shm=rw; touch /scratch/x && echo tmpfs=rw";
    const { id, out } = await runToExit("ro", ["sh", "-c", script], { readonlyRootfs: true, tmpfs: { "/scratch": "size=1m" } });
    expect(out.split("\n")).toEqual(["root=ro", "shm=rw", "tmpfs=rw"]);
    expect(() => readFileSync(join(h.upper(id), "newfile"))).toThrow();
  });

  it("writes land in the container's overlay upper dir", async () => {
    const { id, exitCode } = await runToExit("upper", ["sh", "-c", "echo data > /root/written"]);
    expect(exitCode).toBe(0);
    expect(readFileSync(join(h.upper(id), "root/written"), "utf8")).toBe("data\n");
  });

  it("network namespace none shows only lo", async () => {
    const { out } = await runToExit("net", ["sh", "-c", "ls /sys/class/net"]);
    expect(out.split("\n")).toEqual(["lo"]);
  });

  it("joins an existing network namespace by path; --network host shares the host's", async () => {
    const name = `minato-test-${process.pid}`;
    execFileSync("ip", ["netns", "add", name]);
    try {
      const { out } = await runToExit("netns", ["readlink", "/proc/self/ns/net"], {
        network: { mode: "path", path: `/run/netns/${name}` },
      });
      expect(out).toBe(`net:[${statSync(`/run/netns/${name}`).ino}]`);
    } finally {
      execFileSync("ip", ["netns", "delete", name]);
    }
    const host = await runToExit("hostnet", ["readlink", "/proc/self/ns/net"], { network: { mode: "host" } });
    expect(host.out).toBe(readlinkSync("/proc/self/ns/net"));
  });

  it("PID and mount isolation: only the container's processes are visible", async () => {
    const { out } = await runToExit("pid", ["sh", "-c", "ls -d /proc/[0-9]* | wc -l"]);
    // sh itself and the ls/wc pipeline: far fewer than the host's processes
    expect(Number(out.trim())).toBeLessThan(5);
  });

  it("USER from the rootfs's passwd: uid, gid, groups", async () => {
    const { out } = await runToExit("user", ["id"], { user: "nobody" });
    expect(out).toBe("uid=65534(nobody) gid=65534(nogroup)");
    const numeric = await runToExit("user2", ["id"], { user: "1234:65534" });
    expect(numeric.out).toBe("uid=1234 gid=65534(nogroup)");
    const extra = await runToExit("user3", ["sh", "-c", "id; grep Groups /proc/self/status"], {
      user: "nobody",
      groupAdd: ["root", "777"],
    });
    expect(extra.out.split("\n")).toEqual(["uid=65534(nobody) gid=65534(nogroup) groups=0(root),777", "Groups:\t0 777 "]);
  });
});
