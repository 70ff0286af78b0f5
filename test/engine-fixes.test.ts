// Field fixes on a real minatod (issue 13 #6, issue 23 #8/#9), driven by the stock docker CLI and the
// minato CLI: Engine API booleans as dockerd reads them, /info's runtime facts and stable ID, rename
// seen by peers on a user network, the classic builder's last lines and `build -q`, and builds that
// read their Dockerfile or context from stdin. Needs root (CI runs as root).
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";
import { ROOT } from "./support/registry-process.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");
const root = process.getuid?.() === 0;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(!root)("engine field fixes (needs root: real minatod and runc)", () => {
  let engine: EngineProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;

  const runIn = (command: string, args: string[], input?: string | Buffer): Promise<Run> =>
    new Promise((resolve, reject) => {
      const child = execFile(command, args, { env, maxBuffer: 16 * 1024 * 1024, cwd: work }, (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
      });
      child.stdin?.end(input ?? "");
    });
  const docker = (args: string[], input?: string | Buffer) => runIn("docker", args, input);
  const minato = (args: string[], input?: string | Buffer) => runIn(process.execPath, [MINATO, ...args], input);
  const ok = (run: Run) => {
    expect(run.code, run.stderr).toBe(0);
    return run.stdout;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "minato-engine-fixes-"));
    engine = await EngineProcess.start();
    env = {
      PATH: process.env.PATH,
      HOME: work,
      DOCKER_CONFIG: join(work, "docker"),
      DOCKER_HOST: `unix://${engine.socket}`,
      MINATO_HOST: `unix://${engine.socket}`,
    };
    ok(await docker(["import", "--change", 'CMD ["/bin/sh"]', await busyboxRootfs(work), "busybox:latest"]));
  });

  afterAll(async () => {
    const left = await docker(["ps", "-aq"]).catch(() => undefined);
    for (const id of left?.stdout.split("\n").filter(Boolean) ?? []) await docker(["rm", "-f", id]);
    await docker(["network", "rm", "fixnet"]).catch(() => undefined);
    await engine?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("reads query booleans as dockerd does (yes, TRUE, 1 / no, 0, false, none) and refuses a bad boolean filter", async () => {
    const id = ok(await docker(["run", "-d", "busybox", "sleep", "300"])).trim();
    const listed = async (all: string) => (await engine.json<{ Id: string }[]>("GET", `/containers/json?all=${all}`)).body.map((c) => c.Id);
    ok(await docker(["stop", "-t", "0", id]));
    expect(await listed("TRUE")).toContain(id);
    expect(await listed("yes")).toContain(id);
    expect(await listed("no")).not.toContain(id);
    expect(await listed("None")).not.toContain(id);
    ok(await docker(["start", id]));
    // A running container goes with force=yes (a plain "yes" was false before).
    expect((await engine.api("DELETE", `/containers/${id}?force=no`)).status).toBe(409);
    expect((await engine.api("DELETE", `/containers/${id}?force=yes`)).status).toBe(204);
    const bad = await engine.json<{ message: string }>("GET", `/images/json?filters=${encodeURIComponent('{"dangling":["maybe"]}')}`);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toContain("dangling=maybe");
    expect((await engine.api("GET", "/_ping")).status).toBe(200);
  });

  it("/info reports cgroups, runtimes, swarm, live restore, and an ID that stays across restarts", async () => {
    const info = async () => (await engine.json<Record<string, unknown>>("GET", "/info")).body;
    const first = await info();
    expect(first.ID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(first.CgroupDriver).toBe("cgroupfs");
    expect(["1", "2"]).toContain(first.CgroupVersion);
    expect(first.DefaultRuntime).toMatch(/^(runc|crun)$/);
    expect(Object.keys(first.Runtimes as object)).toEqual([first.DefaultRuntime]);
    expect(first.Swarm).toMatchObject({ LocalNodeState: "inactive", NodeID: "", ControlAvailable: false });
    expect(first.LiveRestoreEnabled).toBe(true);
    await engine.kill();
    await engine.restart();
    expect((await info()).ID).toBe(first.ID);
    // What the docker CLI and minato show from it.
    const dockerInfo = ok(await docker(["info"]));
    expect(dockerInfo).toContain("Live Restore Enabled: true");
    expect(dockerInfo).toContain("Cgroup Driver: cgroupfs");
    expect(dockerInfo).toContain(`ID: ${first.ID}`);
    const minatoInfo = ok(await minato(["info"]));
    expect(minatoInfo).toContain("Live Restore Enabled: true");
    expect(minatoInfo).toContain(`Default Runtime: ${first.DefaultRuntime}`);
  });

  it("after rename, a peer on a user network resolves the new name and not the old one", async () => {
    ok(await docker(["network", "create", "fixnet"]));
    ok(await docker(["run", "-d", "--network", "fixnet", "--name", "oldname", "busybox", "sleep", "300"]));
    ok(await docker(["run", "-d", "--network", "fixnet", "--name", "peer", "busybox", "sleep", "300"]));
    const hosts = async () => ok(await docker(["exec", "peer", "cat", "/etc/hosts"]));
    expect(await hosts()).toMatch(/\soldname(\s|$)/m);
    ok(await docker(["rename", "oldname", "newname"]));
    const after = await hosts();
    expect(after).toMatch(/\snewname(\s|$)/m);
    expect(after).not.toMatch(/\soldname(\s|$)/m);
    const ip = ok(await docker(["inspect", "-f", "{{.NetworkSettings.Networks.fixnet.IPAddress}}", "newname"])).trim();
    expect(ok(await docker(["exec", "peer", "ping", "-c", "1", "-W", "5", "newname"]))).toContain(ip);
    expect((await docker(["exec", "peer", "ping", "-c", "1", "-W", "1", "oldname"])).code).not.toBe(0);
  });

  it("build: the last ' ---> ' line names the built image, and build -q prints only its ID", async () => {
    await writeFile(join(work, "Dockerfile"), 'FROM busybox\nRUN echo built > /built\nCMD ["cat", "/built"]\n');
    const out = ok(await docker(["build", "--no-cache", "-t", "fix:arrows", work]));
    const arrows = [...out.matchAll(/^ ---> ([0-9a-f]{12})$/gm)].map((m) => m[1]);
    const built = /^Successfully built ([0-9a-f]{12})$/m.exec(out)?.[1];
    expect(built).toBeDefined();
    expect(arrows.at(-1)).toBe(built);
    const quiet = ok(await docker(["build", "-q", work])).trim();
    expect(quiet).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(ok(await docker(["inspect", "-f", "{{.Id}}", "fix:arrows"])).trim()).toBe(quiet);
    const minatoQuiet = ok(await minato(["build", "-q", work])).trim();
    expect(minatoQuiet).toBe(quiet);
  });

  it("builds with the Dockerfile or the context from stdin: docker build -f - ., minato build -f - ., minato build -", async () => {
    const ctx = join(work, "ctx");
    await rm(ctx, { recursive: true, force: true });
    await import("node:fs/promises").then((fs) => fs.mkdir(ctx));
    await writeFile(join(ctx, "hello.txt"), "hello from the context\n");
    const dockerfile = 'FROM busybox\nCOPY . /ctx/\nRUN ls -a /ctx > /listing\nCMD ["cat", "/listing"]\n';
    ok(await docker(["build", "-t", "fix:stdin-docker", "-f", "-", ctx], dockerfile));
    ok(await minato(["build", "-t", "fix:stdin-minato", "-f", "-", ctx], dockerfile));
    for (const tag of ["fix:stdin-docker", "fix:stdin-minato"]) {
      // The context's file is there; the Dockerfile from stdin and the made-up .dockerignore are not.
      expect(
        ok(await docker(["run", "--rm", tag]))
          .split("\n")
          .filter(Boolean),
        tag,
      ).toEqual([".", "..", "hello.txt"]);
    }
    // A Dockerfile alone on stdin: no context.
    ok(await minato(["build", "-t", "fix:no-context", "-"], 'FROM busybox\nRUN echo no context > /n\nCMD ["cat", "/n"]\n'));
    expect(ok(await docker(["run", "--rm", "fix:no-context"]))).toBe("no context\n");
    // A context tar on stdin, its Dockerfile inside.
    await writeFile(join(ctx, "Dockerfile"), 'FROM busybox\nCOPY hello.txt /\nCMD ["cat", "/hello.txt"]\n');
    const tar = await new Promise<Buffer>((resolve, reject) =>
      execFile("tar", ["-C", ctx, "-c", "Dockerfile", "hello.txt"], { encoding: "buffer" }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      ),
    );
    ok(await minato(["build", "-t", "fix:tar-context", "-"], tar));
    expect(ok(await docker(["run", "--rm", "fix:tar-context"]))).toBe("hello from the context\n");
    const both = await minato(["build", "-f", "-", "-"], "FROM busybox\n");
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain("can't use stdin for both build context and dockerfile");
  });
});
