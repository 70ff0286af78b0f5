import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { digestOf, MediaType } from "@minato/oci";
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { parseNotifications } from "../src/notifications/config.js";
import { call, descriptorOf, EMPTY_JSON, pushBlob, pushManifest, randomBlob, startTestRegistry, type TestRegistry } from "./harness.js";

/** Webhook notifications (README "Observability"): a receiver on loopback, as an operator's would be. */

const ENVELOPE = "application/vnd.docker.distribution.events.v2+json";
const SECRET = "a-shared-secret-of-some-length";

interface Event {
  id: string;
  timestamp: string;
  action: string;
  target: Record<string, unknown>;
  request: Record<string, unknown>;
  actor: { name: string };
  source: { addr: string; instanceID: string };
}

interface Delivery {
  headers: IncomingMessage["headers"];
  body: string;
  events: Event[];
}

/** A webhook receiver: records deliveries; `hold` keeps requests unanswered until released. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  hold = false;
  readonly held: ServerResponse[] = [];
  #server: Server | undefined;
  port = 0;

  async start(port = 0): Promise<void> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (this.hold) {
          this.held.push(res);
          return;
        }
        const body = Buffer.concat(chunks).toString("utf8");
        this.deliveries.push({ headers: req.headers, body, events: (JSON.parse(body) as { events: Event[] }).events });
        res.writeHead(200).end();
      });
    });
    const server = this.#server;
    await new Promise<void>((done) => server.listen(port, "127.0.0.1", done));
    this.port = (server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  get events(): Event[] {
    return this.deliveries.flatMap((d) => d.events);
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.held.length = 0;
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
    this.#server = undefined;
  }
}

async function eventually(check: () => boolean, what: string, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function receiver(port = 0): Promise<Receiver> {
  const r = new Receiver();
  await r.start(port);
  cleanup.push(() => r.stop());
  return r;
}

async function registryWith(endpoints: unknown[]): Promise<TestRegistry> {
  const registry = await startTestRegistry({ notifications: parseNotifications({ endpoints }, "test") });
  cleanup.push(() => registry.destroy());
  return registry;
}

/** Pushes a one-layer image; returns its digests. */
async function pushImage(registry: TestRegistry, name: string, tag: string) {
  const layer = randomBlob(500);
  const layerDigest = await pushBlob(registry, name, layer);
  await pushBlob(registry, name, EMPTY_JSON);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: descriptorOf("application/vnd.oci.empty.v1+json", EMPTY_JSON),
    layers: [descriptorOf(MediaType.ociLayerGzip, layer)],
  };
  const pushed = await pushManifest(registry, name, tag, manifest);
  return { layer, layerDigest, manifestDigest: pushed.digest, manifestSize: pushed.bytes.length };
}

describe("notifications", () => {
  it("sends Distribution-shaped push, pull, mount and delete events, signed with the endpoint's secret", async () => {
    const hook = await receiver();
    const registry = await registryWith([
      { name: "hook", url: hook.url, secret: SECRET, headers: { Authorization: "Bearer hook-token" }, backoff: "100ms" },
    ]);
    const image = await pushImage(registry, "team/app", "v1");
    const get = await call(registry, "GET", "/v2/team/app/manifests/v1", {
      headers: { accept: MediaType.ociManifest, "user-agent": "test-client/1.0", "x-request-id": "req-42" },
    });
    await get.body.dump();
    const blob = await call(registry, "GET", `/v2/team/app/blobs/${image.layerDigest}`);
    await blob.body.dump();
    const mount = await call(registry, "POST", `/v2/team/other/blobs/uploads/?mount=${image.layerDigest}&from=team/app`);
    await mount.body.dump();
    expect(mount.statusCode).toBe(201);
    const del = await call(registry, "DELETE", `/v2/team/app/manifests/${image.manifestDigest}`);
    await del.body.dump();
    expect(del.statusCode).toBe(202);
    const delBlob = await call(registry, "DELETE", `/v2/team/other/blobs/${image.layerDigest}`);
    await delBlob.body.dump();
    expect(delBlob.statusCode).toBe(202);

    await eventually(() => hook.events.filter((e) => e.action === "delete").length === 2, "both delete events arrive");
    await eventually(() => hook.events.filter((e) => e.action === "pull").length === 2, "both pull events arrive");

    for (const delivery of hook.deliveries) {
      expect(delivery.headers["content-type"]).toBe(ENVELOPE);
      expect(delivery.headers.authorization).toBe("Bearer hook-token");
      const expected = `sha256=${createHmac("sha256", SECRET).update(delivery.body).digest("hex")}`;
      expect(delivery.headers["x-minato-signature"]).toBe(expected);
    }
    const events = hook.events;
    const ids = new Set(events.map((e) => e.id));
    expect(ids.size).toBe(events.length);
    for (const e of events) {
      expect(Object.keys(e).sort()).toEqual(["action", "actor", "id", "request", "source", "target", "timestamp"]);
      expect(Number.isNaN(Date.parse(e.timestamp))).toBe(false);
      expect(e.request.addr).toBe("127.0.0.1");
      expect(e.request.host).toBe(new URL(registry.url).host);
      expect(typeof e.source.instanceID).toBe("string");
      expect(e.actor).toEqual({ name: "" }); // no authentication on this registry
    }

    const pushes = events.filter((e) => e.action === "push");
    const manifestPush = pushes.find((e) => e.target.mediaType === MediaType.ociManifest);
    expect(manifestPush?.target).toEqual({
      mediaType: MediaType.ociManifest,
      size: image.manifestSize,
      length: image.manifestSize,
      digest: image.manifestDigest,
      repository: "team/app",
      tag: "v1",
      url: `${registry.url}/v2/team/app/manifests/${image.manifestDigest}`,
    });
    expect(manifestPush?.request.method).toBe("PUT");
    const layerPush = pushes.find((e) => e.target.digest === image.layerDigest);
    expect(layerPush?.target).toMatchObject({ mediaType: "application/octet-stream", size: 500, repository: "team/app" });
    expect(pushes).toHaveLength(3);

    const pulls = events.filter((e) => e.action === "pull");
    const manifestPull = pulls.find((e) => e.target.digest === image.manifestDigest);
    expect(manifestPull?.target).toMatchObject({ tag: "v1", repository: "team/app", size: image.manifestSize });
    expect(manifestPull?.request).toMatchObject({ id: "req-42", method: "GET", useragent: "test-client/1.0" });
    expect(pulls.find((e) => e.target.digest === image.layerDigest)?.target).toMatchObject({ size: 500 });

    const mounted = events.find((e) => e.action === "mount");
    expect(mounted?.target).toMatchObject({ digest: image.layerDigest, repository: "team/other", fromRepository: "team/app", size: 500 });
    const deleted = events.find((e) => e.action === "delete" && e.target.repository === "team/app");
    expect(deleted?.target).toMatchObject({ digest: image.manifestDigest, repository: "team/app", mediaType: MediaType.ociManifest });
    expect(deleted?.request.method).toBe("DELETE");
    const blobDeleted = events.find((e) => e.action === "delete" && e.target.repository === "team/other");
    expect(blobDeleted?.target).toMatchObject({ digest: image.layerDigest, mediaType: "application/octet-stream", size: 500 });
    expect(blobDeleted?.target.url).toBe(`${registry.url}/v2/team/other/blobs/${image.layerDigest}`);
  });

  it("filters by action and media type", async () => {
    const hook = await receiver();
    const registry = await registryWith([{ name: "manifests", url: hook.url, actions: ["push"], mediaTypes: [MediaType.ociManifest] }]);
    const image = await pushImage(registry, "team/filtered", "v1");
    const get = await call(registry, "GET", "/v2/team/filtered/manifests/v1");
    await get.body.dump();
    // A later push is a marker: once it arrives, everything before it was filtered or delivered.
    const marker = await pushImage(registry, "team/filtered", "v2");
    await eventually(() => hook.events.some((e) => e.target.digest === marker.manifestDigest), "the marker push arrives");
    expect(hook.events.map((e) => [e.action, e.target.digest])).toEqual([
      ["push", image.manifestDigest],
      ["push", marker.manifestDigest],
    ]);
    // Deliveries are counted per endpoint and outcome (two events, whatever the batching).
    const delivered = async () => {
      const res = await call(registry, "GET", "/metrics");
      const text = await res.body.text();
      return Number(/^minato_registry_notifications_total\{endpoint="manifests",outcome="delivered"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    const deadline = Date.now() + 30_000;
    while ((await delivered()) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await delivered()).toBe(2);
  });

  it("a receiver that does not answer holds up neither pushes nor another endpoint", async () => {
    const slow = await receiver();
    slow.hold = true;
    const fast = await receiver();
    const registry = await registryWith([
      { name: "slow", url: slow.url, timeout: "60s" },
      { name: "fast", url: fast.url },
    ]);
    const first = await pushImage(registry, "team/slow", "v1");
    await eventually(() => slow.held.length === 1, "the slow receiver holds a delivery");
    // While that delivery hangs, pushes complete and the other endpoint gets every event.
    const second = await pushImage(registry, "team/slow", "v2");
    await eventually(() => fast.events.some((e) => e.target.digest === second.manifestDigest), "the fast endpoint gets the second push");
    expect(fast.events.some((e) => e.target.digest === first.manifestDigest)).toBe(true);
    expect(slow.held.length).toBe(1);
    expect(slow.deliveries).toHaveLength(0);
  });
});

describe("notifications configuration", () => {
  it("refuses what it would not honour, with the field named", () => {
    const ok = { name: "a", url: "http://127.0.0.1:1/x" };
    expect(parseNotifications({ endpoints: [ok] }, "f.json")[0]).toMatchObject({ timeoutMs: 5000, backoffMs: 1000, maxBackoffMs: 300_000 });
    expect(() => parseNotifications({ endpoints: [{ ...ok, retries: 3 }] }, "f.json")).toThrow(/f\.json: .*retries/);
    expect(() => parseNotifications({ endpoints: [{ ...ok, url: "ftp://x/" }] }, "f.json")).toThrow(/endpoints\.0\.url/);
    expect(() => parseNotifications({ endpoints: [{ ...ok, timeout: "soon" }] }, "f.json")).toThrow(/endpoints\.0\.timeout/);
    expect(() => parseNotifications({ endpoints: [{ ...ok, actions: ["pull", "tag"] }] }, "f.json")).toThrow(/actions/);
    expect(() => parseNotifications({ endpoints: [{ ...ok, secret: "short" }] }, "f.json")).toThrow(/secret/);
    expect(() => parseNotifications({ endpoints: [ok, ok] }, "f.json")).toThrow(/used twice/);
  });
});

// ---------------------------------------------------------------------------------------------
// Durability: the registry as its own process, killed with SIGKILL.

const BIN = resolve(import.meta.dirname, "../bin/minato-registry.js");

async function startProcess(dataDir: string, configFile: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [BIN, "serve", "--listen", "127.0.0.1:0", "--data", dataDir, "--notifications", configFile, "--no-gc", "--log-level", "info"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, MINATO_REGISTRY_AUTH: "none" } },
  );
  const url = await new Promise<string>((done, fail) => {
    let log = "";
    // The log goes to stderr; its "registry listening" line carries the URL.
    const read = (d: Buffer) => {
      log += d;
      const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log);
      if (match) done(match[1] as string);
    };
    child.stdout?.on("data", read);
    child.stderr?.on("data", read);
    child.once("exit", (code) => fail(new Error(`registry exited (${code}): ${log}`)));
  });
  return { child, url };
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once("exit", () => done());
    child.kill("SIGKILL");
  });
}

describe("notifications survive a down receiver and a SIGKILL", () => {
  it("delivers every event at least once after the receiver comes back", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "minato-notify-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    // The receiver's port is known, and nothing listens on it until the end.
    const probe = await receiver();
    const port = probe.port;
    await probe.stop();
    const configFile = join(dataDir, "notifications.json");
    await writeFile(
      configFile,
      JSON.stringify({
        endpoints: [{ name: "down", url: `http://127.0.0.1:${port}/hook`, timeout: "2s", backoff: "100ms", maxBackoff: "500ms" }],
      }),
    );

    const expected: string[] = [];
    const push = async (url: string, name: string) => {
      const data = Buffer.from(`blob ${name} ${Math.random()}`);
      const digest = digestOf(data);
      const res = await request(`${url}/v2/${name}/blobs/uploads/?digest=${digest}`, { method: "POST", body: data });
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      expected.push(digest);
    };

    const first = await startProcess(dataDir, configFile);
    cleanup.push(() => kill9(first.child));
    for (let i = 0; i < 5; i++) await push(first.url, "durable/a");
    await kill9(first.child);

    const second = await startProcess(dataDir, configFile);
    cleanup.push(() => kill9(second.child));
    for (let i = 0; i < 5; i++) await push(second.url, "durable/b");

    const hook = await receiver(port);
    await eventually(() => expected.every((d) => hook.events.some((e) => e.target.digest === d)), "every push event arrives");
    const pushed = hook.events.filter((e) => e.action === "push").map((e) => e.target.digest);
    expect(new Set(pushed)).toEqual(new Set(expected));
  }, 120_000);
});
