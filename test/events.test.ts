// GET /events on a real minatod: a scripted lifecycle gives exactly the (Type, Action) list dockerd
// gives, live and replayed with since/until; filters; bad input; the stock docker CLI's `events`.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs, EngineProcess } from "./support/engine-process.js";
import { RegistryProcess, ROOT } from "./support/registry-process.js";

const MINATO = join(ROOT, "apps/cli/bin/minato.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface EventMessage {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: string;
  time: number;
  timeNano: number;
  status?: string;
  id?: string;
  from?: string;
}

/** A live `/events` subscription: its messages as they arrive, and the raw lines (for exact timeNano). */
class Subscription {
  readonly events: EventMessage[] = [];
  readonly lines: string[] = [];
  #ended = false;
  #abort = new AbortController();

  private constructor() {}

  static async open(agent: Agent, query: string): Promise<Subscription> {
    const sub = new Subscription();
    const response = await request(`http://localhost/v1.47/events${query}`, { dispatcher: agent, signal: sub.#abort.signal });
    expect(response.statusCode).toBe(200);
    void (async () => {
      let buffered = "";
      try {
        for await (const chunk of response.body) {
          buffered += chunk.toString();
          for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            if (line.trim() === "") continue;
            sub.lines.push(line);
            sub.events.push(JSON.parse(line) as EventMessage);
          }
        }
      } catch {
        // aborted
      }
      sub.#ended = true;
    })();
    return sub;
  }

  get ended(): boolean {
    return this.#ended;
  }

  close(): void {
    this.#abort.abort();
  }
}

/** Bounded polling with a deadline a loaded CI machine meets (the shared helper gives up after 10 s). */
async function until(probe: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const pairs = (events: EventMessage[]) => events.map((e) => `${e.Type} ${e.Action}`);

describe("GET /events on minatod", { timeout: 180_000 }, () => {
  let engine: EngineProcess;
  let agent: Agent;
  let work: string;
  let env: NodeJS.ProcessEnv;

  const docker = (args: string[]): Promise<Run> =>
    new Promise((resolve, reject) => {
      execFile("docker", args, { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
      });
    });

  const minato = (args: string[]): Promise<Run> =>
    new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        [MINATO, ...args],
        { env: { ...env, MINATO_HOST: `unix://${engine.socket}` } },
        (error, stdout, stderr) => {
          if (error && typeof error.code !== "number") reject(error);
          else resolve({ code: (error?.code as number | undefined) ?? 0, stdout, stderr });
        },
      );
    });

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
    work = await mkdtemp(join(tmpdir(), "minato-events-"));
    engine = await EngineProcess.start();
    agent = new Agent({ connect: { socketPath: engine.socket } });
    env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, "docker"), DOCKER_HOST: `unix://${engine.socket}` };
    const imported = await docker(["import", "--change", 'CMD ["/bin/sh"]', await busyboxRootfs(work), "busybox:latest"]);
    expect(imported.code, imported.stderr).toBe(0);
  });
  afterAll(async () => {
    await agent?.close();
    await engine?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  // The lifecycle and what dockerd reports for it, in order.
  const EXPECTED = [
    "volume create",
    "network create",
    "container create",
    "network connect",
    "volume mount",
    "container start",
    "container exec_create: true",
    "container exec_start: true",
    "container exec_die",
    "container pause",
    "container unpause",
    "container rename",
    "container kill",
    "volume unmount",
    "network disconnect",
    "container die",
    "container stop",
    "network connect",
    "volume mount",
    "container start",
    "container kill",
    "volume unmount",
    "network disconnect",
    "container die",
    "container destroy",
    "network destroy",
    "volume destroy",
    "image tag",
    "image untag",
  ];
  let sinceNano = 0n;
  let untilNano = 0n;
  let containerId = "";

  it("a scripted lifecycle streams exactly Docker's (Type, Action) list, with Docker's fields", async () => {
    const live = await Subscription.open(agent, "");
    await ok("POST", "/volumes/create", { Name: "ev-vol" });
    const network = (await ok("POST", "/networks/create", { Name: "ev-net" })).Id as string;
    const created = await ok("POST", "/containers/create?name=ev-one", {
      Image: "busybox",
      // Exits 0 on the stop signal, so stop is one kill (SIGTERM) then die.
      Cmd: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"],
      Labels: { team: "harbour" },
      HostConfig: { NetworkMode: "ev-net", Binds: ["ev-vol:/data"] },
    });
    containerId = created.Id as string;
    await ok("POST", `/containers/${containerId}/start`);
    const exec = (await ok("POST", `/containers/${containerId}/exec`, { Cmd: ["true"] })).Id as string;
    await ok("POST", `/exec/${exec}/start`, { Detach: true });
    await until(
      async () => (await engine.json<{ Running: boolean; ExitCode: number | null }>("GET", `/exec/${exec}/json`)).body.ExitCode === 0,
      "the exec's end",
    );
    await until(async () => live.events.some((e) => e.Action === "exec_die"), "exec_die");
    await ok("POST", `/containers/${containerId}/pause`);
    await ok("POST", `/containers/${containerId}/unpause`);
    await ok("POST", `/containers/${containerId}/rename?name=ev-two`);
    await ok("POST", `/containers/${containerId}/stop?t=30`);
    await ok("POST", `/containers/${containerId}/start`);
    await ok("DELETE", `/containers/${containerId}?force=1`);
    await ok("DELETE", `/networks/${network}`);
    await ok("DELETE", "/volumes/ev-vol");
    await ok("POST", "/images/busybox/tag?repo=ev-image&tag=1");
    await ok("DELETE", "/images/ev-image:1");
    await until(async () => live.events.length >= EXPECTED.length, "all the lifecycle's events");
    live.close();
    expect(pairs(live.events)).toEqual(EXPECTED);

    const byAction = (action: string) => live.events.find((e) => e.Action === action) as EventMessage;
    const create = byAction("create");
    expect(create.Type).toBe("volume");
    const containerCreate = live.events.find((e) => e.Type === "container" && e.Action === "create") as EventMessage;
    expect(containerCreate).toMatchObject({
      Type: "container",
      Action: "create",
      Actor: { ID: containerId, Attributes: { image: "busybox", name: "ev-one", team: "harbour" } },
      scope: "local",
      status: "create",
      id: containerId,
      from: "busybox",
    });
    const stopKill = live.events.filter((e) => e.Action === "kill");
    expect(stopKill.map((e) => e.Actor.Attributes.signal)).toEqual(["15", "9"]);
    expect(live.events.filter((e) => e.Action === "die").map((e) => e.Actor.Attributes.exitCode)).toEqual(["0", "137"]);
    expect(byAction("rename").Actor.Attributes).toMatchObject({ name: "ev-two", oldName: "/ev-one" });
    expect(byAction("exec_die").Actor.Attributes.exitCode).toBe("0");
    expect(byAction("connect")).toMatchObject({
      Type: "network",
      Actor: { ID: network, Attributes: { container: containerId, name: "ev-net", type: "bridge" } },
    });
    expect(byAction("mount").Actor).toMatchObject({
      ID: "ev-vol",
      Attributes: { container: containerId, destination: "/data", driver: "local" },
    });
    expect(byAction("tag").Actor.Attributes.name).toBe("ev-image:1");
    // Network and volume events carry no legacy fields; timeNano is exact and increasing.
    expect(byAction("connect").status).toBeUndefined();
    const nanos = live.lines.map((line) => BigInt(/"timeNano":(\d+)/.exec(line)?.[1] as string));
    for (let i = 1; i < nanos.length; i++) expect(nanos[i]! > nanos[i - 1]!).toBe(true);
    const createNanos = nanos[live.events.indexOf(containerCreate)]!;
    expect(containerCreate.time).toBe(Number(createNanos / 1_000_000_000n));
    sinceNano = nanos[0]!;
    untilNano = nanos[nanos.length - 1]!;
  });

  const seconds = (nanos: bigint) => `${nanos / 1_000_000_000n}.${(nanos % 1_000_000_000n).toString().padStart(9, "0")}`;

  it("since/until replay the history exactly, and the stream ends at until", async () => {
    const replay = await Subscription.open(agent, `?since=${seconds(sinceNano)}&until=${seconds(untilNano)}`);
    await until(async () => replay.ended, "the replay's end");
    expect(pairs(replay.events)).toEqual(EXPECTED);
    // RFC 3339 with nanoseconds too: from the container's create (the third event) on.
    const thirdNanos = BigInt(/"timeNano":(\d+)/.exec(replay.lines[2]!)?.[1] as string);
    const third = new Date(Number(thirdNanos / 1_000_000n)).toISOString().replace(/\.\d+Z$/, "");
    const fraction = (thirdNanos % 1_000_000_000n).toString().padStart(9, "0");
    const rfc = await Subscription.open(agent, `?since=${third}.${fraction}Z&until=${seconds(untilNano)}`);
    await until(async () => rfc.ended, "the RFC 3339 replay's end");
    expect(pairs(rfc.events)).toEqual(EXPECTED.slice(2));
    // A duration counts back from now: everything of the last hour.
    const recent = await Subscription.open(agent, `?since=1h&until=${seconds(untilNano)}`);
    await until(async () => recent.ended, "the duration replay's end");
    expect(pairs(recent.events)).toEqual(expect.arrayContaining(EXPECTED));
  });

  it("filters: type, event, container (name or ID prefix), image, network, volume, label", async () => {
    const replay = async (filters: Record<string, string[]>) => {
      const sub = await Subscription.open(
        agent,
        `?since=${seconds(sinceNano)}&until=${seconds(untilNano)}&filters=${encodeURIComponent(JSON.stringify(filters))}`,
      );
      await until(async () => sub.ended, "a filtered replay's end");
      return pairs(sub.events);
    };
    expect(await replay({ type: ["network"] })).toEqual([
      "network create",
      "network connect",
      "network disconnect",
      "network connect",
      "network disconnect",
      "network destroy",
    ]);
    expect(await replay({ event: ["die", "destroy"], type: ["container"] })).toEqual([
      "container die",
      "container die",
      "container destroy",
    ]);
    // exec_create without its command matches the suffixed action (as dockerd does).
    expect(await replay({ event: ["exec_create", "exec_start"] })).toEqual(["container exec_create: true", "container exec_start: true"]);
    expect(await replay({ container: [containerId.slice(0, 10)], event: ["start", "rename"] })).toEqual([
      "container start",
      "container rename",
      "container start",
    ]);
    expect(await replay({ container: ["ev-two"], event: ["destroy"] })).toEqual(["container destroy"]);
    expect(await replay({ volume: ["ev-vol"] })).toEqual([
      "volume create",
      "volume mount",
      "volume unmount",
      "volume mount",
      "volume unmount",
      "volume destroy",
    ]);
    expect(await replay({ network: ["ev-net"], event: ["create", "destroy"] })).toEqual(["network create", "network destroy"]);
    expect(await replay({ label: ["team=harbour"], event: ["create", "destroy"] })).toEqual(["container create", "container destroy"]);
    expect(await replay({ label: ["team=other"] })).toEqual([]);
    expect(await replay({ image: ["busybox"], event: ["create"] })).toEqual(["container create"]);
    expect(await replay({ type: ["image"] })).toEqual(["image tag", "image untag"]);
  });

  it("bad input is a 400 with Docker's message", async () => {
    const unknown = await engine.api("GET", `/events?filters=${encodeURIComponent('{"colour":["red"]}')}`);
    expect(unknown.status).toBe(400);
    expect(JSON.parse(unknown.body.toString()).message).toBe("invalid filter 'colour'");
    const badType = await engine.api("GET", `/events?filters=${encodeURIComponent('{"type":["boat"]}')}`);
    expect(badType.status).toBe(400);
    const reversed = await engine.api("GET", "/events?since=2000&until=1000");
    expect(reversed.status).toBe(400);
    expect(JSON.parse(reversed.body.toString()).message).toContain("cannot be after until time");
    const garbage = await engine.api("GET", "/events?since=yesterday");
    expect(garbage.status).toBe(400);
    const notJson = await engine.api("GET", "/events?filters=%7Bnope");
    expect(notJson.status).toBe(400);
  });

  it("the stock docker CLI: events --since/--until/--filter/--format", async () => {
    const result = await docker([
      "events",
      "--since",
      seconds(sinceNano),
      "--until",
      seconds(untilNano),
      "--filter",
      "type=container",
      "--filter",
      "event=start",
      "--format",
      "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual(["container start ev-one", "container start ev-two"]);
    const bad = await docker(["events", "--filter", "colour=red", "--until", "1s"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("invalid filter 'colour'");
  });

  it("minato events: docker's line format, --format, --filter, and a bad filter", async () => {
    const range = ["--since", seconds(sinceNano), "--until", seconds(untilNano)];
    const lines = await minato(["events", ...range, "--filter", "type=volume", "--filter", "event=create"]);
    expect(lines.code, lines.stderr).toBe(0);
    expect(lines.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z volume create ev-vol \(driver=local\)\n$/);
    const json = await minato(["events", ...range, "--filter", "container=ev-two", "--format", "json"]);
    expect(json.code, json.stderr).toBe(0);
    const parsed = json.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as EventMessage);
    // The name it had when each event happened: ev-two from the rename on.
    expect(parsed.map((e) => e.Action)).toEqual(["rename", "kill", "die", "stop", "start", "kill", "die", "destroy"]);
    const bad = await minato(["events", "--filter", "colour=red"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim()).toBe("Error response from daemon: invalid filter 'colour'");
  });

  it("prune is an event too, with the space it reclaimed", async () => {
    const sub = await Subscription.open(agent, `?filters=${encodeURIComponent('{"event":["prune"]}')}`);
    await ok("POST", "/containers/prune");
    await ok("POST", "/volumes/prune");
    await until(async () => sub.events.length >= 2, "the prune events");
    sub.close();
    expect(pairs(sub.events)).toEqual(["container prune", "volume prune"]);
    expect(sub.events[0]?.Actor.Attributes.reclaimed).toBe("0");
  });

  it("detaching from an attach with the detach keys is a detach event", async () => {
    const created = await ok("POST", "/containers/create?name=ev-tty", { Image: "busybox", Cmd: ["sh"], Tty: true, OpenStdin: true });
    const id = created.Id as string;
    await ok("POST", `/containers/${id}/start`);
    const sub = await Subscription.open(agent, `?filters=${encodeURIComponent(JSON.stringify({ container: [id] }))}`);
    // A hijacked attach as the docker CLI makes it; ctrl-p ctrl-q detaches.
    const socket = connect(engine.socket);
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
    });
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write(
      `POST /v1.47/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`,
    );
    await until(async () => received.includes("\r\n\r\n"), "the attach's upgrade");
    socket.write(Buffer.from([0x10, 0x11]));
    await closed;
    await until(async () => sub.events.some((e) => e.Action === "detach"), "the detach event");
    sub.close();
    expect(pairs(sub.events)).toEqual(["container attach", "container detach"]);
    await ok("DELETE", `/containers/${id}?force=1`);
  });

  it("image events carry the image's labels; a commit with a repository is a tag then a commit", async () => {
    const created = await ok("POST", "/containers/create?name=ev-commit", { Image: "busybox", Cmd: ["true"] });
    const id = created.Id as string;
    const sub = await Subscription.open(agent, `?filters=${encodeURIComponent(JSON.stringify({ event: ["tag", "commit"] }))}`);
    const committed = await engine.api(
      "POST",
      `/commit?container=${id}&repo=labelled&tag=1&changes=${encodeURIComponent("LABEL tier=base")}`,
    );
    expect(committed.status, committed.body.toString()).toBe(201);
    await ok("POST", "/images/labelled:1/tag?repo=labelled&tag=2");
    await until(async () => sub.events.length >= 3, "the commit's events");
    sub.close();
    expect(pairs(sub.events)).toEqual(["image tag", "container commit", "image tag"]);
    const imageId = JSON.parse(committed.body.toString()).Id as string;
    expect(sub.events[0]?.Actor).toEqual({ ID: imageId, Attributes: { name: "labelled:1", tier: "base" } });
    expect(sub.events[1]?.Actor.Attributes).toMatchObject({ imageID: imageId, imageRef: "labelled:1", name: "ev-commit" });
    expect(sub.events[2]?.Actor.Attributes).toEqual({ name: "labelled:2", tier: "base" });
    await ok("DELETE", `/containers/${id}`);
  });

  // Last: it removes the busybox image the other tests use.
  it("images: tag, push, untag, pull, save, delete, load and import, in order", async () => {
    const registry = await RegistryProcess.start();
    try {
      const ref = `${registry.authority}/ev/box:1`;
      const sub = await Subscription.open(agent, `?filters=${encodeURIComponent(JSON.stringify({ type: ["image"] }))}`);
      const step = async (...args: string[]) => {
        const result = await docker(args);
        expect(result.code, `docker ${args.join(" ")}: ${result.stderr}`).toBe(0);
        return result;
      };
      const id = (await step("image", "inspect", "--format", "{{.Id}}", "busybox")).stdout.trim();
      await step("tag", "busybox", ref);
      await step("push", ref);
      await step("rmi", ref);
      await step("pull", ref);
      await step("save", "-o", join(work, "box.tar"), ref);
      await step("rmi", ref, "busybox");
      await step("load", "-i", join(work, "box.tar"));
      await step("import", await busyboxRootfs(work), "ev-imported:1");
      await until(async () => sub.events.length >= 12, "the image events");
      const imported = sub.events.at(-1)?.Actor.ID;
      sub.close();
      expect(
        sub.events.map(
          (e) =>
            `${e.Action} ${e.Actor.ID === id ? "<id>" : e.Actor.ID} ${e.Actor.Attributes.name === id ? "<id>" : e.Actor.Attributes.name}`,
        ),
      ).toEqual([
        `tag <id> ${ref}`,
        `push ${ref} ${registry.authority}/ev/box`,
        "untag <id> <id>",
        `pull ${ref} ${registry.authority}/ev/box`,
        "save <id> <id>",
        // rmi ref busybox: the ref; then busybox, the last tag, with the repository digest the pull recorded.
        "untag <id> <id>",
        "untag <id> <id>",
        "untag <id> <id>",
        "delete <id> <id>",
        "load <id> <id>",
        `tag ${imported} ev-imported:1`,
        `import ${imported} ${imported}`,
      ]);
    } finally {
      await registry.dispose();
    }
  });
});
