// The exec endpoints of the Docker Engine API (swagger "Exec" section). A started session's conmon
// attach socket is joined to the hijacked connection (containers/attach.ts): output out, stdin in.
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { AttachConnection } from "@minato/runtime";
import type { Hono } from "hono";
import { DEFAULT_DETACH_KEYS, parseDetachKeys, pipeAttach } from "../containers/attach.js";
import { type ExecConfig, ExecStore } from "../containers/exec.js";
import { multiplexFrame } from "../containers/logs.js";
import type { Engine } from "../engine.js";
import { ApiError, badRequest } from "./errors.js";
import { checkEnv, execCreateSchema, parseBody } from "./request-schemas.js";
import { hijack, terminalSize } from "./stream.js";
import type { EngineEnv } from "./types.js";

export function execRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  const manager = engine.containers;
  const execs = new ExecStore(manager);

  app.post("/containers/:id/exec", async (c) => {
    const raw: unknown = await c.req.json().catch((error: unknown) => {
      if (error instanceof ApiError) throw error;
      throw badRequest("invalid JSON body");
    });
    const body = parseBody(execCreateSchema, raw, "exec configuration") as ExecConfig;
    checkEnv(body.Env, "Env", body.Cmd ?? []);
    const instance = execs.create(c.req.param("id"), body);
    return c.json({ Id: instance.id }, 201);
  });

  app.post("/exec/:id/start", async (c) => {
    const options = ((await c.req.json().catch(() => ({}))) ?? {}) as { Detach?: boolean; Tty?: boolean };
    const instance = execs.get(c.req.param("id"));
    if (options.Detach) {
      await execs.start(instance.id);
      return c.body(null, 200);
    }
    const tty = instance.config.Tty === true;
    const config = instance.config;
    const detachKeys = parseDetachKeys(config.DetachKeys || DEFAULT_DETACH_KEYS);
    let release: () => void = () => undefined;
    const reading = new Promise<void>((resolve) => {
      release = resolve;
    });
    let connection: AttachConnection | undefined;
    try {
      // Errors before the process runs (no such exec, container not running) are plain HTTP errors.
      // The attach socket is connected before the process runs, so none of its output is lost.
      await execs.start(instance.id, reading, (attached) => {
        connection = attached;
      });
    } catch (error) {
      release();
      connection?.close();
      if (!(error instanceof ApiError) || instance.exitCode === null) throw error;
      // A command that cannot be run: dockerd reports it in the stream, the exit code in the inspect.
      const socket = hijack(c, tty);
      const text = `${error.message}\r\n`;
      socket.end(tty ? text : multiplexFrame(1, text));
      return RESPONSE_ALREADY_SENT;
    }
    const socket = hijack(c, tty);
    const piping = pipeAttach(socket, connection!, {
      tty,
      stdout: config.AttachStdout !== false,
      stderr: config.AttachStderr !== false,
      stdin: config.AttachStdin === true,
      detachKeys,
      // The client asks for the exit code as soon as the stream ends: record it first.
      beforeEnd: () => instance.ended,
    });
    connection!.resume();
    void piping.then((how) => {
      const container = how === "detached" ? manager.find(instance.containerId) : undefined;
      if (container) engine.events.container(container, "exec_detach", { execID: instance.id });
    });
    try {
      await manager.hold(instance.containerId, piping);
    } finally {
      release();
    }
    return RESPONSE_ALREADY_SENT;
  });

  app.get("/exec/:id/json", (c) => {
    const instance = execs.get(c.req.param("id"));
    const config = instance.config;
    const [entrypoint = "", ...args] = config.Cmd ?? [];
    return c.json({
      CanRemove: false,
      ContainerID: instance.containerId,
      DetachKeys: config.DetachKeys ?? "",
      ExitCode: instance.exitCode,
      ID: instance.id,
      OpenStderr: config.AttachStderr === true,
      OpenStdin: config.AttachStdin === true,
      OpenStdout: config.AttachStdout === true,
      ProcessConfig: {
        arguments: args,
        entrypoint,
        privileged: config.Privileged === true,
        tty: config.Tty === true,
        ...(config.User ? { user: config.User } : {}),
      },
      Running: instance.running,
      Pid: instance.running ? instance.pid : 0,
    });
  });

  app.post("/exec/:id/resize", async (c) => {
    const { height, width } = terminalSize(c);
    await execs.resize(c.req.param("id"), height, width);
    return c.body(null, 200);
  });
}
