// The exec endpoints of the Docker Engine API (swagger "Exec" section). Output is streamed from the
// session's conmon log over the hijacked connection until the process ends; stdin is not wired
// (conmon's attach socket is SOCK_SEQPACKET, which node:net cannot connect to).
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Hono } from "hono";
import { type ExecConfig, ExecStore } from "../containers/exec.js";
import { encodeEntry, followLog, multiplexFrame } from "../containers/logs.js";
import type { Engine } from "../engine.js";
import { ApiError, badRequest } from "./errors.js";
import { hijack } from "./stream.js";
import type { EngineEnv } from "./types.js";

export function execRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  const manager = engine.containers;
  const execs = new ExecStore(manager);

  app.post("/containers/:id/exec", async (c) => {
    const body = (await c.req.json().catch(() => {
      throw badRequest("invalid JSON body");
    })) as ExecConfig;
    if (!body || typeof body !== "object") throw badRequest("invalid exec configuration");
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
    const wantStdout = instance.config.AttachStdout !== false;
    const wantStderr = instance.config.AttachStderr !== false;
    let release: () => void = () => undefined;
    const reading = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      // Errors before the process runs (no such exec, container not running) are plain HTTP errors.
      await execs.start(instance.id, reading);
    } catch (error) {
      release();
      if (!(error instanceof ApiError) || instance.exitCode === null) throw error;
      // A command that cannot be run: dockerd reports it in the stream, the exit code in the inspect.
      const socket = hijack(c, tty);
      const text = `${error.message}\r\n`;
      socket.end(tty ? text : multiplexFrame(1, text));
      return RESPONSE_ALREADY_SENT;
    }
    const socket = hijack(c, tty);
    const session = instance.session!;
    const stream = async () => {
      if (!(await ExecStore.logReady(session, instance))) return;
      for await (const entry of followLog(session.log, 0, () => !instance.running || socket.destroyed)) {
        if (socket.destroyed) continue;
        if (entry.stream === "stdout" ? wantStdout : wantStderr) socket.write(encodeEntry(entry, { tty, timestamps: false }));
      }
    };
    try {
      await manager.hold(
        instance.containerId,
        stream().catch(() => undefined),
      );
    } finally {
      release();
    }
    socket.end();
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
    const h = Number(c.req.query("h") ?? 0);
    const w = Number(c.req.query("w") ?? 0);
    if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0) throw badRequest("invalid terminal size");
    await execs.resize(c.req.param("id"), h, w);
    return c.body(null, 200);
  });
}
