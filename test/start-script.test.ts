// `npm start`'s second half (scripts/start.mjs), run directly so no Debian package is installed:
// with a PATH lacking runc, the registry still serves on the address .env names, and one line says
// why minatod did not start and what to do (issues 13 #1, 23 #3).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { request } from "./support/http.js";
import { freePort, ROOT } from "./support/registry-process.js";

const asRoot = process.getuid?.() === 0;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "minato-start-"));
});
afterAll(() => rm(work, { recursive: true, force: true }));

/** A PATH directory with the shell and the engine's other tools, but no runc. */
async function pathWithoutRunc(): Promise<string> {
  const bin = join(work, "bin");
  await mkdir(bin);
  for (const tool of ["sh", "conmon", "iptables", "ip"]) {
    const found = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
      .map((d) => join(d, tool))
      .find(existsSync);
    if (found) await symlink(found, join(bin, tool));
  }
  return bin;
}

it("keeps the registry serving when minatod cannot start, and says why in one line", { timeout: 120_000 }, async () => {
  const port = await freePort();
  await writeFile(join(work, ".env"), `MINATO_REGISTRY_LISTEN=127.0.0.1:${port}\nMINATO_REGISTRY_DATA=${join(work, "data")}\n`);
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("MINATO_"))),
    PATH: await pathWithoutRunc(),
    MINATO_REGISTRY_LOG_LEVEL: "warn",
  };
  const child = spawn(process.execPath, [join(ROOT, "scripts/start.mjs")], { cwd: work, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  try {
    const deadline = Date.now() + 60_000;
    let status = 0;
    while (status !== 200) {
      if (Date.now() > deadline) throw new Error(`the registry did not answer on port ${port}:\n${output}`);
      if (child.exitCode !== null) throw new Error(`start.mjs exited ${child.exitCode}:\n${output}`);
      status = await request("GET", `http://127.0.0.1:${port}/v2/`).then(
        (r) => r.status,
        () => 0,
      );
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    // The banner names the address .env configured, not the embedded default.
    expect(output).toContain(`Minato registry on http://127.0.0.1:${port}`);
    if (asRoot) {
      const explanation = output.split("\n").filter((line) => line.startsWith("minatod not started"));
      expect(explanation, output).toHaveLength(1);
      expect(explanation[0]).toMatch(/runc/);
      expect(explanation[0]).toMatch(/apt-get install -y .*runc/);
      expect(explanation[0]).toMatch(/the registry serves meanwhile/);
    } else {
      expect(output).toContain("The engine (minatod) needs root");
    }
  } finally {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  // Ctrl-C (SIGTERM here) stops the stack cleanly: nothing failed.
  expect(child.exitCode).toBe(0);
});

it("keeps minatod serving when the registry cannot start, and says why in one line", { timeout: 120_000 }, async () => {
  // Root, runc and the rest on PATH (as in CI): minatod starts; the registry's port is taken.
  expect(process.getuid?.(), "minatod needs root (CI runs as root)").toBe(0);
  const dir = await mkdtemp(join(work, "engine-"));
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  const port = (holder.address() as { port: number }).port;
  await writeFile(
    join(dir, ".env"),
    [
      `MINATO_REGISTRY_LISTEN=127.0.0.1:${port}`,
      `MINATO_REGISTRY_DATA=${join(dir, "registry")}`,
      `MINATO_DATA_ROOT=${join(dir, "engine")}`,
      `MINATO_EXEC_ROOT=${join(dir, "exec")}`,
      "MINATO_LOG_LEVEL=warn",
      "",
    ].join("\n"),
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("MINATO_")));
  const child = spawn(process.execPath, [join(ROOT, "scripts/start.mjs")], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString("utf8");
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const socket = join(dir, "exec", "minato.sock");
  const dispatcher = new Agent({ connect: { socketPath: socket } });
  try {
    const deadline = Date.now() + 60_000;
    let pinged = false;
    while (!pinged || !output.includes("minato-registry stopped")) {
      if (Date.now() > deadline)
        throw new Error(`minatod did not answer on ${socket}, or the registry's failure was not explained:\n${output}`);
      if (child.exitCode !== null) throw new Error(`start.mjs exited ${child.exitCode}:\n${output}`);
      pinged ||= await fetch("http://minatod/_ping", { dispatcher } as RequestInit).then(
        (r) => r.status === 200,
        () => false,
      );
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(output).toContain(`Minato engine (minatod) on unix://${socket}`);
    const explanation = output.split("\n").filter((line) => line.startsWith("minato-registry stopped"));
    expect(explanation, output).toHaveLength(1);
    expect(explanation[0]).toMatch(/EADDRINUSE/);
    expect(explanation[0]).toMatch(/MINATO_REGISTRY_LISTEN/);
    // The engine still serves after the registry is gone.
    expect((await fetch("http://minatod/_ping", { dispatcher } as RequestInit)).status).toBe(200);
  } finally {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
    await dispatcher.close();
    holder.close();
  }
  // The stack's status is the failed part's.
  expect(child.exitCode).toBe(1);
});
