// Attach sockets through the native bridge: stdin in, output out as it happens, stdin closing on the
// client's half-close (or left open), TTY resize through conmon's control FIFO, exec sessions attached
// before their process runs.
import { describe, expect, it } from "vitest";
import { type AttachConnection, connectAttach, RuntimeError, resizeTerminal } from "../src/index.js";
import { harness, until } from "./harness.js";

const h = harness();
const { runtime } = h;

function collect(connection: AttachConnection): { stdout: () => string; stderr: () => string } {
  const out = { stdout: "", stderr: "" };
  connection.onOutput((stream, data) => {
    out[stream] += data.toString("utf8");
  });
  return { stdout: () => out.stdout, stderr: () => out.stderr };
}

describe("container attach socket", () => {
  it("feeds stdin, streams stdout and stderr apart, and ends stdin on half-close", async () => {
    const id = h.id("cat");
    await runtime.create(id, await h.spec(id, { cmd: ["sh", "-c", "echo ready >&2; cat; echo done >&2"] }), { stdin: true });
    const connection = runtime.attach(id);
    const out = collect(connection);
    await runtime.start(id);
    await until(() => out.stderr().includes("ready"), "the first stderr line");
    connection.write("hello\n");
    await until(() => out.stdout() === "hello\n", "cat to echo its input");
    connection.endInput();
    expect(await runtime.wait(id)).toBe(0);
    await connection.ended;
    expect(out.stderr()).toBe("ready\ndone\n");
    expect(out.stdout()).toBe("hello\n");
  });

  it("delivers input and its end sent before the process started", async () => {
    const id = h.id("early");
    await runtime.create(id, await h.spec(id, { cmd: ["cat"] }), { stdin: true });
    const connection = runtime.attach(id);
    const out = collect(connection);
    connection.write("early\n");
    connection.endInput();
    await runtime.start(id);
    expect(await runtime.wait(id)).toBe(0);
    await connection.ended;
    expect(out.stdout()).toBe("early\n");
  });

  it("leaves stdin open across clients with leaveStdinOpen", async () => {
    const id = h.id("open");
    await runtime.run(id, await h.spec(id, { cmd: ["cat"] }), { stdin: true, leaveStdinOpen: true });
    const first = runtime.attach(id);
    first.write("one\n");
    first.endInput();
    const second = runtime.attach(id);
    const out = collect(second);
    second.write("two\n");
    await until(() => out.stdout().includes("two\n"), "the second client's input to come back");
    expect((await runtime.state(id)).status).toBe("running");
    first.close();
    second.close();
  });

  it("gives a TTY process its output raw and resizes the terminal", async () => {
    const id = h.id("tty");
    await runtime.create(id, await h.spec(id, { cmd: ["sh"], tty: true }), { stdin: true });
    const connection = runtime.attach(id);
    const out = collect(connection);
    await runtime.start(id);
    expect(await runtime.resize(id, 33, 101)).toBe(true);
    connection.write("stty size; exit 4\n");
    expect(await runtime.wait(id)).toBe(4);
    await connection.ended;
    expect(out.stdout()).toContain("33 101");
    expect(out.stderr()).toBe("");
  });

  it("refuses sizes that do not fit a winsize and fails cleanly without a listener", async () => {
    const id = h.id("none");
    await expect(runtime.resize(id, -1, 80)).rejects.toBeInstanceOf(RuntimeError);
    expect(await runtime.resize(id, 24, 80)).toBe(false);
    expect(() => runtime.attach(id)).toThrowError(/attach/);
  });
});

describe("exec attach", () => {
  it("connects before the exec'd process runs: no output is lost, stdin reaches it", async () => {
    const id = h.id("exec");
    await runtime.run(id, await h.spec(id, { cmd: ["sleep", "300"] }));
    let connection: AttachConnection | undefined;
    let out: ReturnType<typeof collect> | undefined;
    const session = await runtime.exec(id, {
      args: ["sh", "-c", "echo early; read line; echo got:$line; exit 6"],
      stdin: true,
      attach: async ({ attachSocket }) => {
        connection = connectAttach(attachSocket);
        out = collect(connection);
      },
    });
    await until(() => out?.stdout().includes("early"), "the first line of the exec");
    connection!.write("abc\n");
    expect(await session.wait()).toBe(6);
    await connection!.ended;
    expect(out!.stdout()).toBe("early\ngot:abc\n");
    await session.remove();
  });

  it("resizes an exec session's TTY through its own control FIFO", async () => {
    const id = h.id("exectty");
    await runtime.run(id, await h.spec(id, { cmd: ["sleep", "300"] }));
    let connection: AttachConnection | undefined;
    let out: ReturnType<typeof collect> | undefined;
    const session = await runtime.exec(id, {
      args: ["sh"],
      stdin: true,
      tty: true,
      attach: async ({ attachSocket }) => {
        connection = connectAttach(attachSocket);
        out = collect(connection);
      },
    });
    expect(await resizeTerminal(session.ctlFifo, 50, 132)).toBe(true);
    connection!.write("stty size; exit\n");
    expect(await session.wait()).toBe(0);
    await connection!.ended;
    expect(out!.stdout()).toContain("50 132");
    await session.remove();
  });
});
