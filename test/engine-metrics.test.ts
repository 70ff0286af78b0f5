// minatod --metrics-addr on a real daemon: a scrape parsed by a Prometheus text-format parser moves
// by exactly a scripted push/pull/run/stop/rm (and a refused start, a failed pull); containers by
// state follow the lifecycle; health checks are counted; a bad address is refused in one line; no
// listener is opened when the setting is unset.
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postBuild, tarOf, writeTree } from "./support/build.js";
import { busyboxRootfs, EngineProcess, MINATOD, streamError } from "./support/engine-process.js";
import { freePort, RegistryProcess } from "./support/registry-process.js";

/** One sample of a scrape: its name (with a histogram's `_count`, `_sum`, `_bucket` suffix), labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number | "NaN" | "+Inf" | "-Inf";
}
interface Family {
  name: string;
  type: string;
  samples: Sample[];
}

// The Prometheus client's own text-format parser (Debian python3-prometheus-client), as JSON.
const PARSER = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
# JSON has no NaN or infinities: those values are written as strings ("NaN", "+Inf").
value = lambda v: v if math.isfinite(v) else ("NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf"))
print(json.dumps([{"name": f.name, "type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": value(s.value)} for s in f.samples]} for f in text_string_to_metric_families(sys.stdin.read())]))
`;

function parseExposition(text: string): Promise<Family[]> {
  return new Promise((resolve, reject) => {
    const child = execFile("/usr/bin/python3", ["-c", PARSER], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`the scrape does not parse: ${stderr}`));
      else {
        try {
          resolve(JSON.parse(stdout) as Family[]);
        } catch (parseError) {
          reject(parseError);
        }
      }
    });
    child.stdin?.end(text);
  });
}

/** One scrape, parsed: a sample's value by name and labels (0 when the series is absent). */
class Scrape {
  constructor(readonly families: Family[]) {}

  family(name: string): Family | undefined {
    return this.families.find((f) => f.name === name);
  }

  value(name: string, labels: Record<string, string> = {}): number {
    for (const family of this.families)
      for (const sample of family.samples)
        if (sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) return Number(sample.value);
    return 0;
  }

  /** A histogram's observation count for a label set. */
  count(histogram: string, labels: Record<string, string>): number {
    return this.value(`${histogram}_count`, labels);
  }
}

/** Bounded polling with a deadline a loaded CI machine meets. */
async function until(probe: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function run(args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [MINATOD, ...args], { cwd, env: { PATH: process.env.PATH } }, (_error, _stdout, stderr) =>
      resolve({ code: child.exitCode, stderr }),
    );
  });
}

/** The TCP ports a process listens on: its socket inodes matched against the kernel's LISTEN sockets. */
async function listeningPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const ports: number[] = [];
  for (const table of ["tcp", "tcp6"]) {
    const lines = (await readFile(`/proc/${pid}/net/${table}`, "utf8")).trim().split("\n").slice(1);
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; st 0A is LISTEN; the inode is the tenth field.
      if (fields[3] === "0A" && inodes.has(fields[9] as string))
        ports.push(Number.parseInt((fields[1] as string).split(":")[1] as string, 16));
    }
  }
  return ports;
}

describe("minatod --metrics-addr", { timeout: 300_000 }, () => {
  let registry: RegistryProcess;
  let engine: EngineProcess;
  let metricsUrl: string;
  let metricsPort: number;

  const scrape = async (): Promise<Scrape> => {
    const response = await fetch(metricsUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return new Scrape(await parseExposition(await response.text()));
  };

  const ok = async (method: "POST" | "DELETE", path: string, body?: unknown) => {
    const response = await engine.api(
      method,
      path,
      body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } },
    );
    expect(response.status, `${method} ${path}: ${response.body.toString()}`).toBeLessThan(300);
    return response.body.length > 0 ? (JSON.parse(response.body.toString()) as Record<string, unknown>) : {};
  };

  beforeAll(async () => {
    registry = await RegistryProcess.start();
    // The port is free when picked but could be taken before minatod binds it: try a few.
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      try {
        engine = await EngineProcess.start({ args: ["--metrics-addr", `127.0.0.1:${port}`] });
        metricsUrl = `http://127.0.0.1:${port}/metrics`;
        metricsPort = port;
        break;
      } catch (error) {
        if (attempt === 4 || !/EADDRINUSE/.test(String(error))) throw error;
      }
    }
    const rootfs = await readFile(await busyboxRootfs(engine.work));
    expect(
      streamError(await engine.messages("POST", "/images/create?fromSrc=-&repo=busybox&tag=latest", { body: rootfs })),
    ).toBeUndefined();
  });
  afterAll(async () => {
    await engine?.dispose();
    await registry?.dispose();
  });

  it("serves the engine's info, process metrics and nothing but /metrics", async () => {
    const s = await scrape();
    const info = s.family("minato_engine_info")?.samples[0];
    expect(info?.value).toBe(1);
    expect(info?.labels).toMatchObject({ version: "0.1.0", os: "linux", storage_driver: "overlay2", runtime: "runc" });
    expect(info?.labels?.kernel).toBe((await readFile("/proc/sys/kernel/osrelease", "utf8")).trim());
    expect(s.family("minato_engine_container_actions_seconds")?.type).toBe("histogram");
    expect(s.family("minato_engine_nodejs_eventloop_lag_seconds")?.type).toBe("gauge");
    expect(s.value("minato_engine_process_resident_memory_bytes")).toBeGreaterThan(1024 * 1024);
    expect(s.value("minato_engine_process_open_fds")).toBeGreaterThan(0);
    expect((await fetch(metricsUrl.replace("/metrics", "/containers/json"))).status).toBe(404);
    expect((await fetch(metricsUrl, { method: "POST" })).status).toBe(405);
    // Its one TCP listener is the metrics one (the API is the unix socket).
    const pid = Number((await readFile(join(engine.work, "exec", "minatod.pid"), "utf8")).trim());
    expect(await listeningPorts(pid)).toEqual([metricsPort]);
  });

  it("counts a push and a pull with their blob bytes, and a failed pull as an error", async () => {
    const name = `${registry.authority}/metrics/busybox`;
    const before = await scrape();
    await ok("POST", `/images/busybox:latest/tag?repo=${encodeURIComponent(name)}&tag=1`);
    expect(streamError(await engine.messages("POST", `/images/${encodeURIComponent(name)}/push?tag=1`))).toBeUndefined();

    // What the push uploaded, from the registry's own manifest: the config and every layer.
    const manifest = (await (
      await fetch(`${registry.url}/v2/metrics/busybox/manifests/1`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
      })
    ).json()) as { config: { size: number }; layers: { size: number }[] };
    const blobBytes = manifest.config.size + manifest.layers.reduce((sum, l) => sum + l.size, 0);

    const pushed = await scrape();
    expect(pushed.value("minato_engine_image_actions_total", { action: "push", result: "success" })).toBe(
      before.value("minato_engine_image_actions_total", { action: "push", result: "success" }) + 1,
    );
    expect(pushed.count("minato_engine_image_actions_seconds", { action: "push" })).toBe(
      before.count("minato_engine_image_actions_seconds", { action: "push" }) + 1,
    );
    expect(pushed.value("minato_engine_image_bytes_total", { action: "push" })).toBe(
      before.value("minato_engine_image_bytes_total", { action: "push" }) + blobBytes,
    );
    // A second push finds every blob in the repository: one more push, no more bytes.
    expect(streamError(await engine.messages("POST", `/images/${encodeURIComponent(name)}/push?tag=1`))).toBeUndefined();
    const pushedAgain = await scrape();
    expect(pushedAgain.value("minato_engine_image_actions_total", { action: "push", result: "success" })).toBe(
      pushed.value("minato_engine_image_actions_total", { action: "push", result: "success" }) + 1,
    );
    expect(pushedAgain.value("minato_engine_image_bytes_total", { action: "push" })).toBe(
      pushed.value("minato_engine_image_bytes_total", { action: "push" }),
    );

    // Removed locally (both tags, so the image and its blobs go), then pulled back: the same bytes come down.
    await ok("DELETE", `/images/${encodeURIComponent(`${name}:1`)}`);
    await ok("DELETE", "/images/busybox:latest");
    const pulledBefore = await scrape();
    expect(streamError(await engine.messages("POST", `/images/create?fromImage=${encodeURIComponent(name)}&tag=1`))).toBeUndefined();
    const pulled = await scrape();
    expect(pulled.value("minato_engine_image_actions_total", { action: "pull", result: "success" })).toBe(
      pulledBefore.value("minato_engine_image_actions_total", { action: "pull", result: "success" }) + 1,
    );
    expect(pulled.count("minato_engine_image_actions_seconds", { action: "pull" })).toBe(
      pulledBefore.count("minato_engine_image_actions_seconds", { action: "pull" }) + 1,
    );
    expect(pulled.value("minato_engine_events_total", { type: "image", action: "pull" })).toBe(
      pulledBefore.value("minato_engine_events_total", { type: "image", action: "pull" }) + 1,
    );
    expect(pulled.value("minato_engine_image_bytes_total", { action: "pull" })).toBe(
      pulledBefore.value("minato_engine_image_bytes_total", { action: "pull" }) + blobBytes,
    );

    await ok("POST", `/images/${encodeURIComponent(`${name}:1`)}/tag?repo=busybox&tag=latest`);

    // A tag the registry does not have: the stream reports the error after its 200.
    const missing = await engine.messages("POST", `/images/create?fromImage=${encodeURIComponent(name)}&tag=nope`);
    expect(streamError(missing)).toBeDefined();
    const failed = await scrape();
    expect(failed.value("minato_engine_image_actions_total", { action: "pull", result: "error" })).toBe(
      pulled.value("minato_engine_image_actions_total", { action: "pull", result: "error" }) + 1,
    );
    expect(failed.value("minato_engine_image_actions_total", { action: "pull", result: "success" })).toBe(
      pulled.value("minato_engine_image_actions_total", { action: "pull", result: "success" }),
    );
    // An import is not a pull.
    expect(failed.value("minato_engine_events_total", { type: "image", action: "import" })).toBe(1);
  });

  it("times run/stop/rm and follows containers by state", async () => {
    const actions = ["create", "start", "stop", "kill", "delete", "pause", "unpause", "restart", "exec"];
    const before = await scrape();
    const state = (s: Scrape) =>
      Object.fromEntries(["created", "running", "paused", "exited"].map((st) => [st, s.value("minato_engine_containers", { state: st })]));
    expect(state(before)).toEqual({ created: 0, running: 0, paused: 0, exited: 0 });

    const { Id: id } = (await ok("POST", "/containers/create?name=metrics-run", { Image: "busybox", Cmd: ["sleep", "300"] })) as {
      Id: string;
    };
    expect(state(await scrape())).toEqual({ created: 1, running: 0, paused: 0, exited: 0 });
    await ok("POST", `/containers/${id}/start`);
    expect(state(await scrape())).toEqual({ created: 0, running: 1, paused: 0, exited: 0 });
    await ok("POST", `/containers/${id}/pause`);
    expect(state(await scrape())).toEqual({ created: 0, running: 0, paused: 1, exited: 0 });
    await ok("POST", `/containers/${id}/unpause`);
    const { Id: exec } = (await ok("POST", `/containers/${id}/exec`, { Cmd: ["true"] })) as { Id: string };
    await ok("POST", `/exec/${exec}/start`, { Detach: true });
    await ok("POST", `/containers/${id}/stop?t=1`);
    expect(state(await scrape())).toEqual({ created: 0, running: 0, paused: 0, exited: 1 });
    await ok("DELETE", `/containers/${id}`);
    // A start the API refuses: counted, as an error.
    expect((await engine.api("POST", "/containers/no-such-container/start")).status).toBe(404);
    const after = await scrape();
    expect(state(after)).toEqual({ created: 0, running: 0, paused: 0, exited: 0 });

    const moved = (s: Scrape, action: string, result: string) =>
      s.value("minato_engine_container_actions_total", { action, result }) -
      before.value("minato_engine_container_actions_total", { action, result });
    const done = ["create", "start", "pause", "unpause", "exec", "stop", "delete"];
    for (const action of actions) {
      expect(moved(after, action, "success"), action).toBe(done.includes(action) ? 1 : 0);
      expect(moved(after, action, "error"), action).toBe(action === "start" ? 1 : 0);
      expect(
        after.count("minato_engine_container_actions_seconds", { action }) -
          before.count("minato_engine_container_actions_seconds", { action }),
        action,
      ).toBe((done.includes(action) ? 1 : 0) + (action === "start" ? 1 : 0));
    }
    // From the event log: each lifecycle event once (exec_create: CMD counted as exec_create).
    for (const action of ["create", "start", "pause", "unpause", "exec_create", "exec_start", "stop", "die", "destroy"]) {
      expect(
        after.value("minato_engine_events_total", { type: "container", action }) -
          before.value("minato_engine_events_total", { type: "container", action }),
        action,
      ).toBe(1);
    }
    // No container id or name in any label.
    const text = await (await fetch(metricsUrl)).text();
    expect(text).not.toContain(id.slice(0, 12));
    expect(text).not.toContain("metrics-run");
  });

  it("counts what the stock docker CLI does: pull, run -d, stop, rm", async () => {
    const env = {
      PATH: process.env.PATH,
      HOME: engine.work,
      DOCKER_CONFIG: join(engine.work, "docker"),
      DOCKER_HOST: `unix://${engine.socket}`,
    };
    const docker = (args: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile("docker", args, { env }, (error, stdout, stderr) =>
          error ? reject(new Error(`docker ${args.join(" ")}: ${stderr}`)) : resolve(stdout),
        ),
      );
    const before = await scrape();
    await docker(["pull", "-q", `${registry.authority}/metrics/busybox:1`]);
    const id = (await docker(["run", "-d", `${registry.authority}/metrics/busybox:1`, "sleep", "300"])).trim();
    await docker(["stop", "-t", "1", id]);
    await docker(["rm", id]);
    const after = await scrape();
    const moved = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
    // Already here: a pull that downloads nothing.
    expect(moved("minato_engine_image_actions_total", { action: "pull", result: "success" })).toBe(1);
    expect(moved("minato_engine_image_bytes_total", { action: "pull" })).toBe(0);
    for (const action of ["create", "start", "stop", "delete"])
      expect(moved("minato_engine_container_actions_total", { action, result: "success" }), action).toBe(1);
    for (const action of ["kill", "pause", "unpause", "restart", "exec"])
      expect(moved("minato_engine_container_actions_total", { action, result: "success" }), action).toBe(0);
    expect(after.value("minato_engine_containers", { state: "exited" })).toBe(0);
  });

  it("counts builds: one built, one failing in its stream, one refused", async () => {
    const before = await scrape();
    const context = async (dockerfile: string) => {
      const dir = await mkdtemp(join(engine.work, "context-"));
      await writeTree(dir, { Dockerfile: dockerfile });
      return tarOf(dir);
    };
    const built = await postBuild(engine, await context("FROM busybox\nRUN echo built > /built\n"), { t: "metrics-built:1" });
    expect(built.id, built.body).toBeDefined();
    const failing = await postBuild(engine, await context("FROM busybox\nRUN false\n"));
    expect(failing.status).toBe(200);
    expect(streamError(failing.messages)).toBeDefined();
    const refused = await postBuild(engine, await context("FROM busybox\nNOSUCHINSTRUCTION x\n"));
    expect(refused.status).toBe(400);
    const after = await scrape();
    const moved = (result: string) =>
      after.value("minato_engine_image_actions_total", { action: "build", result }) -
      before.value("minato_engine_image_actions_total", { action: "build", result });
    expect(moved("success")).toBe(1);
    expect(moved("error")).toBe(2);
    expect(
      after.count("minato_engine_image_actions_seconds", { action: "build" }) -
        before.count("minato_engine_image_actions_seconds", { action: "build" }),
    ).toBe(3);
    // A build's RUN steps are containers of the builder, not container actions of the API.
    expect(after.count("minato_engine_container_actions_seconds", { action: "create" })).toBe(
      before.count("minato_engine_container_actions_seconds", { action: "create" }),
    );
  });

  it("counts health checks run and failed", async () => {
    const before = await scrape();
    const { Id: id } = (await ok("POST", "/containers/create", {
      Image: "busybox",
      Cmd: ["sleep", "300"],
      Healthcheck: { Test: ["CMD", "false"], Interval: 200_000_000, Retries: 1 },
    })) as { Id: string };
    await ok("POST", `/containers/${id}/start`);
    await until(
      async () => (await scrape()).value("minato_engine_health_checks_total") - before.value("minato_engine_health_checks_total") >= 2,
      "two health checks",
    );
    await ok("DELETE", `/containers/${id}?force=1`);
    // A probe still running when the container went may finish between the two counters' reads:
    // the numbers are compared once two scrapes agree.
    const probes = (s: Scrape) => ({
      run: s.value("minato_engine_health_checks_total") - before.value("minato_engine_health_checks_total"),
      failed: s.value("minato_engine_health_checks_failed_total") - before.value("minato_engine_health_checks_failed_total"),
    });
    let after = await scrape();
    await until(async () => {
      const previous = probes(after);
      after = await scrape();
      return JSON.stringify(probes(after)) === JSON.stringify(previous);
    }, "the health check counters to settle");
    // Every probe of `false` fails.
    expect(probes(after).failed).toBe(probes(after).run);
    expect(after.value("minato_engine_events_total", { type: "container", action: "health_status" })).toBeGreaterThanOrEqual(1);
  });
});

describe("minatod --metrics-addr: bad values", () => {
  it.each(["nonsense", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":9323", "[::1:9323"])("refuses %j in one line", async (value) => {
    const result = await run(["--metrics-addr", value], tmpdir());
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toEqual([expect.stringContaining("--metrics-addr must be HOST:PORT")]);
  });

  it("fails at start, in one line, when the address cannot be bound", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as { port: number }).port;
    const work = await mkdtemp(join(tmpdir(), "minato-metrics-"));
    try {
      const result = await run(
        [
          "--data-root",
          join(work, "data"),
          "--exec-root",
          join(work, "exec"),
          "-H",
          `unix://${join(work, "sock")}`,
          "--metrics-addr",
          `127.0.0.1:${port}`,
        ],
        work,
      );
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/--metrics-addr 127\.0\.0\.1:\d+: .*EADDRINUSE/)]);
    } finally {
      taken.close();
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe("minatod without --metrics-addr", { timeout: 120_000 }, () => {
  it("opens no TCP listener at all", async () => {
    const engine = await EngineProcess.start();
    try {
      const pid = Number((await readFile(join(engine.work, "exec", "minatod.pid"), "utf8")).trim());
      expect(await listeningPorts(pid)).toEqual([]);
    } finally {
      await engine.dispose();
    }
  });
});
