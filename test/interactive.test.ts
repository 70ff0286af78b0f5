/**
 * Interactive containers end to end on a real minatod (runc under conmon, busybox image): stdin
 * through attach and exec (`-i`), TTYs (`-it`) driven in tmux, resize, detaching, and bad input.
 * The minato CLI and the stock docker CLI both take part. Needs root, as minatod does.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Bounded polling with a caller-chosen ceiling; the probe's last value is in the failure message. */
async function poll<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  last: () => string = () => "",
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last seen:\n${last()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A raw client of the hijacked attach/exec connection, as the docker CLI speaks it. */
class Hijacked {
  readonly socket: Socket;
  #data = Buffer.alloc(0);
  #headerEnd = -1;
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#data = Buffer.concat([this.#data, chunk]);
      if (this.#headerEnd < 0) this.#headerEnd = this.#data.indexOf("\r\n\r\n");
    });
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
  }

  static async open(socketPath: string, path: string, body?: string): Promise<Hijacked> {
    const socket = connect(socketPath);
    socket.setNoDelay?.(true);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new Hijacked(socket);
    const headers = [
      `POST /v1.47${path} HTTP/1.1`,
      "Host: localhost",
      "Connection: Upgrade",
      "Upgrade: tcp",
      ...(body !== undefined ? ["Content-Type: application/json", `Content-Length: ${Buffer.byteLength(body)}`] : []),
    ];
    socket.write(`${headers.join("\r\n")}\r\n\r\n${body ?? ""}`);
    await poll(
      () => client.#headerEnd >= 0 || undefined,
      `the answer to ${path}`,
      () => client.#data.toString("utf8"),
    );
    return client;
  }

  get status(): number {
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(this.#data.toString("latin1"))?.[1] ?? 0);
  }

  get head(): string {
    return this.#data.subarray(0, this.#headerEnd).toString("latin1");
  }

  /** The stream after the header, demultiplexed into stdout/stderr text. */
  frames(): { stdout: string; stderr: string } {
    const out = { stdout: "", stderr: "" };
    let offset = this.#headerEnd + 4;
    const data = this.#data;
    while (offset + 8 <= data.length) {
      const size = data.readUInt32BE(offset + 4);
      if (offset + 8 + size > data.length) break;
      const text = data.subarray(offset + 8, offset + 8 + size).toString("utf8");
      if (data[offset] === 2) out.stderr += text;
      else out.stdout += text;
      offset += 8 + size;
    }
    return out;
  }

  raw(): string {
    return this.#data.subarray(this.#headerEnd + 4).toString("utf8");
  }
}

describe("interactive containers on a real minatod", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;
  const sessions: string[] = [];

  const run = (command: string, args: string[], input?: string): Promise<Result> =>
    new Promise((resolve, reject) => {
      const child = spawn(command, args, { env, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString("utf8");
      });
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString("utf8");
      });
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input);
    });
  const minato = (args: string[], input?: string) => run(process.execPath, [MINATO, ...args], input);
  const docker = (args: string[], input?: string) => run("docker", args, input);

  const tmux = (...args: string[]) => {
    const result = spawnSync("tmux", ["-L", `minato-${process.pid}`, ...args], { env, encoding: "utf8" });
    if (result.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  };
  /** Starts `command` in a detached tmux session of the given size; returns the session name. */
  const tmuxSession = (base: string, command: string, width = 120, height = 40) => {
    // Unique per call, so a retried test gets fresh sessions.
    const name = `${base}-${sessions.length}`;
    // The shell keeps the pane after the command ends and prints its exit code for the test to read.
    tmux("new-session", "-d", "-s", name, "-x", String(width), "-y", String(height), `${command}; echo "EXIT=$?"; sleep 600`);
    sessions.push(name);
    return name;
  };
  const pane = (name: string) => tmux("capture-pane", "-p", "-J", "-t", name, "-S", "-200");
  const waitPane = (name: string, pattern: RegExp, what: string) =>
    poll(
      () => pattern.exec(pane(name)) ?? undefined,
      what,
      () => pane(name),
    );

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-interactive-"));
    engine = await EngineProcess.start();
    env = {
      PATH: process.env.PATH,
      HOME: work,
      TERM: "xterm",
      DOCKER_CONFIG: join(work, "docker"),
      DOCKER_HOST: `unix://${engine.socket}`,
      MINATO_HOST: `unix://${engine.socket}`,
    };
    const rootfs = await busyboxRootfs(work);
    const imported = await minato(["import", "--change", 'CMD ["/bin/sh"]', rootfs, "busybox:latest"]);
    expect(imported.code, imported.stderr).toBe(0);
  });
  afterAll(async () => {
    for (const name of sessions) spawnSync("tmux", ["-L", `minato-${process.pid}`, "kill-session", "-t", name]);
    spawnSync("tmux", ["-L", `minato-${process.pid}`, "kill-server"]);
    const left = await minato(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await minato(["rm", "-f", id]);
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  const create = async (body: Record<string, unknown>) => {
    const created = await engine.json<{ Id: string }>("POST", "/containers/create", {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ Image: "busybox", ...body }),
    });
    expect(created.status).toBe(201);
    return created.body.Id;
  };

  describe("stdin through a pipe (-i)", () => {
    it("minato run -i --rm busybox cat: the piped input comes back and the container exits 0", async () => {
      const result = await minato(["run", "-i", "--rm", "busybox", "cat"], "hello\nworld\n");
      expect(result).toEqual({ code: 0, stdout: "hello\nworld\n", stderr: "" });
      expect((await minato(["ps", "-aq"])).stdout).toBe("");
    });

    it("docker run -i --rm busybox cat against minatod does the same", async () => {
      const result = await docker(["run", "-i", "--rm", "busybox", "cat"], "hello\n");
      expect(result.stderr).toBe("");
      expect(result).toMatchObject({ code: 0, stdout: "hello\n" });
    });

    it("the exit code of the command is the CLI's, and stdin reaches a shell script", async () => {
      const result = await minato(["run", "-i", "--rm", "busybox", "sh", "-c", "read a; read b; echo $((a*b)); exit 9"], "6\n7\n");
      expect(result).toEqual({ code: 9, stdout: "42\n", stderr: "" });
    });

    it("minato exec -i and docker exec -i feed a process in a running container", async () => {
      const id = (await minato(["run", "-d", "busybox", "sleep", "300"])).stdout.trim();
      const viaMinato = await minato(["exec", "-i", id, "sh", "-c", "tr a-z A-Z; exit 4"], "shout\n");
      expect(viaMinato).toEqual({ code: 4, stdout: "SHOUT\n", stderr: "" });
      const viaDocker = await docker(["exec", "-i", id, "wc", "-l"], "1\n2\n3\n");
      expect(viaDocker.stderr).toBe("");
      expect(viaDocker).toMatchObject({ code: 0, stdout: "3\n" });
      // Without -i the process gets no input: cat ends at once.
      expect(await minato(["exec", id, "cat"], "ignored\n")).toEqual({ code: 0, stdout: "", stderr: "" });
    });
  });

  describe("the attach endpoint", () => {
    it("attached before start: no output is lost, stdin reaches cat, closing stdin ends the container", async () => {
      const id = await create({
        Cmd: ["sh", "-c", "echo started; cat; echo after >&2"],
        OpenStdin: true,
        StdinOnce: true,
        AttachStdin: true,
      });
      const client = await Hijacked.open(engine.socket, `/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1`);
      expect(client.status).toBe(101);
      expect(client.head).toContain("application/vnd.docker.multiplexed-stream");
      expect((await engine.api("POST", `/containers/${id}/start`)).status).toBe(204);
      await poll(
        () => client.frames().stdout === "started\n" || undefined,
        "the first line",
        () => client.raw(),
      );
      client.socket.write("ping\n");
      await poll(
        () => client.frames().stdout === "started\nping\n" || undefined,
        "cat's echo",
        () => client.raw(),
      );
      client.socket.end();
      await client.closed;
      expect(client.frames()).toEqual({ stdout: "started\nping\n", stderr: "after\n" });
      const waited = await engine.json<{ StatusCode: number }>("POST", `/containers/${id}/wait`);
      expect(waited.body.StatusCode).toBe(0);
    });

    it("a running TTY container: raw stream, detach keys leave it running, a second attach continues", async () => {
      const id = await create({ Cmd: ["sh"], Tty: true, OpenStdin: true });
      expect((await engine.api("POST", `/containers/${id}/start`)).status).toBe(204);
      const first = await Hijacked.open(engine.socket, `/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1`);
      expect(first.head).toContain("application/vnd.docker.raw-stream");
      first.socket.write("echo one-$((20+1))\n");
      await poll(
        () => first.raw().includes("one-21") || undefined,
        "the shell's answer",
        () => first.raw(),
      );
      // ctrl-p ctrl-q, the default detach keys
      first.socket.write(Buffer.from([0x10, 0x11]));
      await first.closed;
      const state = await engine.json<{ State: { Running: boolean } }>("GET", `/containers/${id}/json`);
      expect(state.body.State.Running).toBe(true);
      const second = await Hijacked.open(engine.socket, `/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x`);
      second.socket.write("echo two-$((40+2)); exit 5\n");
      await second.closed;
      expect(second.raw()).toContain("two-42");
      const waited = await engine.json<{ StatusCode: number }>("POST", `/containers/${id}/wait`);
      expect(waited.body.StatusCode).toBe(5);
    });

    it("refuses a paused container (409), unknown containers (404) and bad detach keys (400)", async () => {
      const id = await create({ Cmd: ["sleep", "300"] });
      await engine.api("POST", `/containers/${id}/start`);
      expect((await engine.api("POST", `/containers/${id}/pause`)).status).toBe(204);
      const paused = await engine.json<{ message: string }>("POST", `/containers/${id}/attach?stream=1&stdout=1`);
      expect(paused.status).toBe(409);
      expect(paused.body.message).toMatch(/paused/);
      expect((await engine.api("POST", `/containers/${id}/unpause`)).status).toBe(204);
      expect((await engine.api("POST", "/containers/no-such-container/attach?stream=1")).status).toBe(404);
      const keys = await engine.json<{ message: string }>("POST", `/containers/${id}/attach?stream=1&detachKeys=ctrl-%3F%3F`);
      expect(keys.status).toBe(400);
      expect(keys.body.message).toMatch(/Invalid escape keys/);
      expect((await engine.api("DELETE", `/containers/${id}?force=1`)).status).toBe(204);
    });

    it("minato attach to a stopped container fails with docker's message", async () => {
      const id = (await minato(["create", "busybox", "true"])).stdout.trim();
      const result = await minato(["attach", id]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("You cannot attach to a stopped container, start it first");
    });
  });

  describe("resize", () => {
    it("validates the size, answers 409 for a stopped container and 200 for one without a TTY, as dockerd", async () => {
      const id = await create({ Cmd: ["sleep", "300"] });
      expect((await engine.api("POST", `/containers/${id}/resize?h=10&w=20`)).status).toBe(409);
      await engine.api("POST", `/containers/${id}/start`);
      expect((await engine.api("POST", `/containers/${id}/resize?h=10&w=20`)).status).toBe(200);
      for (const query of ["h=10", "h=ten&w=20", "h=-1&w=20", "h=10&w=99999999"]) {
        expect((await engine.api("POST", `/containers/${id}/resize?${query}`)).status, query).toBe(400);
      }
      expect((await engine.api("POST", "/containers/nope/resize?h=1&w=1")).status).toBe(404);

      const exec = await engine.json<{ Id: string }>("POST", `/containers/${id}/exec`, {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ Cmd: ["true"], AttachStdout: true }),
      });
      expect((await engine.api("POST", `/exec/${exec.body.Id}/resize?h=10&w=20`)).status).toBe(200);
      expect((await engine.api("POST", `/exec/${exec.body.Id}/resize?h=x&w=20`)).status).toBe(400);
      expect((await engine.api("POST", "/exec/nope/resize?h=10&w=20")).status).toBe(404);
      expect((await engine.api("POST", `/containers/${id}/stop?t=0`)).status).toBe(204);
      expect((await engine.api("POST", `/exec/${exec.body.Id}/resize?h=10&w=20`)).status).toBe(409);
    });

    it("an exec session's TTY takes the size it is given (exec start with stdin and a TTY)", async () => {
      const id = await create({ Cmd: ["sleep", "300"] });
      await engine.api("POST", `/containers/${id}/start`);
      const exec = await engine.json<{ Id: string }>("POST", `/containers/${id}/exec`, {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ Cmd: ["sh"], Tty: true, AttachStdin: true, AttachStdout: true, AttachStderr: true }),
      });
      const client = await Hijacked.open(engine.socket, `/exec/${exec.body.Id}/start`, JSON.stringify({ Detach: false, Tty: true }));
      expect(client.status).toBe(101);
      expect((await engine.api("POST", `/exec/${exec.body.Id}/resize?h=37&w=99`)).status).toBe(200);
      client.socket.write("stty size; exit 3\n");
      await client.closed;
      expect(client.raw()).toContain("37 99");
      const inspected = await engine.json<{ ExitCode: number; Running: boolean }>("GET", `/exec/${exec.body.Id}/json`);
      expect(inspected.body).toMatchObject({ ExitCode: 3, Running: false });
    });
  });

  describe("bad input", () => {
    it("exec -i in a stopped container is refused with 409 and the CLI exits non-zero", async () => {
      const id = (await minato(["create", "busybox", "sleep", "300"])).stdout.trim();
      const api = await engine.json<{ message: string }>("POST", `/containers/${id}/exec`, {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ Cmd: ["cat"], AttachStdin: true }),
      });
      expect(api.status).toBe(409);
      expect(api.body.message).toMatch(/is not running/);
      const cli = await minato(["exec", "-i", id, "cat"], "x\n");
      expect(cli.code).not.toBe(0);
      expect(cli.stderr).toMatch(/is not running/);
      const viaDocker = await docker(["exec", "-i", id, "cat"], "x\n");
      expect(viaDocker.code).not.toBe(0);
      expect(viaDocker.stderr).toMatch(/is not running/);
    });
  });

  // Keystrokes through tmux, a pty, the CLI, the daemon and conmon: on a loaded 2-core machine a
  // session can stall; a stalled session is tried again rather than failing the run.
  describe("terminals in tmux (-it)", { retry: 2 }, () => {
    it("minato run -it busybox sh: typed commands run, stty size follows the pane and its resize, exit 3 is the CLI's code", async () => {
      const session = tmuxSession("run", `node ${MINATO} run -it --rm busybox sh`, 120, 40);
      await waitPane(session, /[#$] $/m, "the container's prompt");
      tmux("send-keys", "-t", session, "echo $((6*7))", "Enter");
      await waitPane(session, /^42\s*$/m, "the answer 42");
      tmux("send-keys", "-t", session, "stty size", "Enter");
      await waitPane(session, /^40 120\s*$/m, "stty size showing the pane size");
      tmux("resize-window", "-t", session, "-x", "100", "-y", "30");
      await poll(
        () => {
          tmux("send-keys", "-t", session, "stty size", "Enter");
          return /^30 100\s*$/m.exec(pane(session)) ?? undefined;
        },
        "stty size showing the new size",
        () => pane(session),
      );
      tmux("send-keys", "-t", session, "exit 3", "Enter");
      await waitPane(session, /EXIT=3\s*$/m, "the CLI to exit with 3");
    });

    it("docker exec -it <c> sh: typed commands run, the size is right, exit 3 is the CLI's code", async () => {
      const id = (await minato(["run", "-d", "busybox", "sleep", "300"])).stdout.trim();
      const session = tmuxSession("exec", `docker exec -it ${id} sh`, 110, 35);
      await waitPane(session, /[#$] $/m, "the exec'd shell's prompt");
      tmux("send-keys", "-t", session, "echo $((6*7))", "Enter");
      await waitPane(session, /^42\s*$/m, "the answer 42");
      tmux("send-keys", "-t", session, "stty size", "Enter");
      await waitPane(session, /^35 110\s*$/m, "stty size showing the pane size");
      tmux("send-keys", "-t", session, "exit 3", "Enter");
      await waitPane(session, /EXIT=3\s*$/m, "docker exec to exit with 3");
    });

    it("minato exec -it and minato attach: ctrl-p ctrl-q detaches, the container keeps running", async () => {
      const id = (await minato(["run", "-dit", "busybox", "sh"])).stdout.trim();
      const session = tmuxSession("attach", `node ${MINATO} attach ${id}`, 100, 30);
      tmux("send-keys", "-t", session, "echo attached-$((1+1))", "Enter");
      await waitPane(session, /^attached-2\s*$/m, "the attached shell's answer");
      tmux("send-keys", "-t", session, "C-p", "C-q");
      await waitPane(session, /EXIT=0\s*$/m, "minato attach to detach");
      const state = await engine.json<{ State: { Running: boolean } }>("GET", `/containers/${id}/json`);
      expect(state.body.State.Running).toBe(true);
      const exec = tmuxSession("exec-it", `node ${MINATO} exec -it ${id} sh`, 90, 25);
      await waitPane(exec, /[#$] $/m, "the exec'd shell's prompt");
      tmux("send-keys", "-t", exec, "stty size; exit 7", "Enter");
      await waitPane(exec, /^25 90\s*$/m, "stty size in minato exec -it");
      await waitPane(exec, /EXIT=7\s*$/m, "minato exec -it to exit with 7");
    });
  });
});
