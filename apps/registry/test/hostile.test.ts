import { Readable } from "node:stream";
import { digestOf, MediaType } from "@minato/oci";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expireUploads } from "../src/index.js";
import { ADMIN, addUser, basic, type Credentials, requestToken, startAuthRegistry, tokenFor } from "./auth-helpers.js";
import {
  call,
  descriptorOf,
  expectError,
  headStatus,
  location,
  pushBlob,
  pushImage,
  pushManifest,
  putManifest,
  type RawConnection,
  rawConnection,
  sessionsOf,
  startTestRegistry,
  statusCodes,
  type TestRegistry,
  uploadId,
  withDigest,
} from "./harness.js";

/**
 * Hostile input (issue 23, 13 #4): each case bounded in count and time, loopback only, and each
 * followed by a check that the server still answers normally.
 */

/** The registry still serves: /health is ok and /v2/ answers (200 open, 401 with a challenge under auth). */
async function expectServing(registry: TestRegistry): Promise<void> {
  const health = await call(registry, "GET", "/health");
  expect(health.statusCode).toBe(200);
  expect(await health.body.json()).toMatchObject({ status: "ok" });
  const base = await call(registry, "GET", "/v2/");
  await base.body.dump();
  expect([200, 401]).toContain(base.statusCode);
}

/** A client whose connections come from `address` (any of 127.0.0.0/8 is loopback on Linux). */
function clientFrom(address: string): Agent {
  return new Agent({ localAddress: address });
}

describe("login throttling keys on (user, address) and address, never on the user alone", () => {
  let registry: TestRegistry;
  const victim: Credentials = { user: "victim", password: "correct-horse-battery" };
  const attackers = [clientFrom("127.0.0.2"), clientFrom("127.0.0.3")];
  const elsewhere = clientFrom("127.0.0.4");
  beforeAll(async () => {
    registry = await startAuthRegistry({ throttle: { perUser: 3, perAddress: 6, windowMs: 60_000 } });
    await addUser(registry, victim.user, victim.password, [["v/*", ["pull"]]]);
  });
  afterAll(async () => {
    await Promise.all([...attackers, elsewhere].map((agent) => agent.close()));
    await registry.destroy();
  });

  async function login(agent: Agent, credentials: Credentials): Promise<number> {
    const res = await request(new URL("/token?service=minato-registry", registry.url), { dispatcher: agent, headers: basic(credentials) });
    await res.body.dump();
    return res.statusCode;
  }

  it("locks the attacking address out of the victim's account, not the victim at another address", async () => {
    for (const attacker of attackers) {
      for (let i = 0; i < 3; i++) expect(await login(attacker, { user: victim.user, password: `guess-${i}` })).toBe(401);
      // That address is now refused for this user, even with the right password.
      expect(await login(attacker, victim)).toBe(429);
    }
    // Six failures for the victim in all, from two addresses: from a third one the password works.
    expect(await login(elsewhere, victim)).toBe(200);
    expect((await requestToken(registry, victim, ["repository:v/app:pull"])).status).toBe(200);
    await expectServing(registry);
  });

  it("still limits an address spraying many user names", async () => {
    const sprayer = clientFrom("127.0.0.5");
    try {
      for (let i = 0; i < 6; i++) expect(await login(sprayer, { user: `spray-${i}`, password: "x" })).toBe(401);
      // The address is over its limit: refused for every user, before any password is checked.
      expect(await login(sprayer, victim)).toBe(429);
      expect(await login(sprayer, ADMIN)).toBe(429);
      expect(await login(elsewhere, ADMIN)).toBe(200);
    } finally {
      await sprayer.close();
    }
    await expectServing(registry);
  });
});

describe("token endpoint refuses what is not Basic credentials", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startAuthRegistry();
  });
  afterAll(() => registry.destroy());

  const token = (authorization: string, service = "minato-registry") =>
    call(registry, "GET", `/token?service=${service}&scope=repository:x/y:pull`, { headers: { authorization } });

  it("answers 401 (no anonymous token) to malformed Basic, Basic without a colon, a Bearer or another scheme", async () => {
    const cases = [
      "Basic !!!!",
      "Basic ",
      "Basic",
      `Basic ${Buffer.from("no-colon-here").toString("base64")}`,
      `Basic ${Buffer.from("admin:pw").toString("base64")}!!`,
      `Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString("base64")}`,
      `Bearer ${await tokenFor(registry, ADMIN)}`,
      "Digest username=admin",
    ];
    for (const authorization of cases) {
      const res = await token(authorization);
      const entries = await expectError(res, 401, "UNAUTHORIZED");
      expect(entries[0]?.message, authorization).toMatch(/Basic/);
      expect(res.headers["www-authenticate"]).toMatch(/^Basic /);
    }
    // Well-formed credentials still work, and no credentials still get an anonymous token.
    expect((await token(basic(ADMIN).authorization as string)).statusCode).toBe(200);
    expect((await requestToken(registry, undefined, [])).status).toBe(200);
    await expectServing(registry);
  });

  it("answers 400 with a clear error to a service other than the registry's", async () => {
    const res = await token(basic(ADMIN).authorization as string, "another-registry");
    const entries = await expectError(res, 400, "DENIED");
    expect(entries[0]?.message).toMatch(/minato-registry only/);
    await expectServing(registry);
  });
});

describe("manifests that two parsers would read differently", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(() => registry.destroy());

  it("refuses duplicate keys at any depth with MANIFEST_INVALID and stores nothing", async () => {
    const name = "hostile/dupes";
    const image = await pushImage(registry, name, { tag: "base" });
    const config = JSON.stringify(image.config);
    const layer = JSON.stringify(image.layers[0]);
    const documents = [
      // The top level: JSON.parse keeps the last "layers", another parser the first.
      `{"schemaVersion":2,"mediaType":"${MediaType.ociManifest}","config":${config},"layers":[${layer}],"layers":[]}`,
      // Inside a descriptor.
      `{"schemaVersion":2,"mediaType":"${MediaType.ociManifest}","config":${config.replace('"size"', '"size":1,"size"')},"layers":[${layer}]}`,
      // Inside annotations, escaped differently.
      `{"schemaVersion":2,"mediaType":"${MediaType.ociManifest}","config":${config},"layers":[${layer}],"annotations":{"a":"1","\\u0061":"2"}}`,
    ];
    for (const document of documents) {
      const { res, digest } = await putManifest(registry, name, "dupe", document, MediaType.ociManifest);
      const entries = await expectError(res, 400, "MANIFEST_INVALID");
      expect(JSON.stringify(entries[0]?.detail)).toMatch(/twice/);
      expect(await headStatus(registry, `/v2/${name}/manifests/${digest}`)).toBe(404);
    }
    expect(await headStatus(registry, `/v2/${name}/manifests/dupe`)).toBe(404);
    expect(await headStatus(registry, `/v2/${name}/manifests/base`)).toBe(200);
    await expectServing(registry);
  });

  it("refuses a descriptor whose size differs from the stored blob's or child manifest's with MANIFEST_INVALID", async () => {
    const name = "hostile/sizes";
    const layerData = Buffer.from("twelve bytes");
    await pushBlob(registry, name, layerData);
    const image = await pushImage(registry, name, { tag: "v1" });
    for (const size of [layerData.length + 1, layerData.length - 1, 0]) {
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: image.config,
        layers: [{ ...descriptorOf(MediaType.ociLayerGzip, layerData), size }],
      };
      const { res, digest } = await putManifest(registry, name, "lying", manifest);
      const entries = await expectError(res, 400, "MANIFEST_INVALID");
      expect(entries[0]?.detail).toMatchObject({ digest: digestOf(layerData), size, actual: layerData.length });
      expect(await headStatus(registry, `/v2/${name}/manifests/${digest}`)).toBe(404);
    }
    // An index whose child descriptor lies about the child manifest's length.
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [{ mediaType: MediaType.ociManifest, digest: image.digest, size: image.bytes.length + 10 }],
    };
    await expectError((await putManifest(registry, name, "lying-index", index)).res, 400, "MANIFEST_INVALID");
    // The truthful ones are accepted.
    const honest = { ...index, manifests: [{ mediaType: MediaType.ociManifest, digest: image.digest, size: image.bytes.length }] };
    await pushManifest(registry, name, "index", honest);
    expect(await headStatus(registry, `/v2/${name}/manifests/lying`)).toBe(404);
    await expectServing(registry);
  });
});

describe("upload sessions are bounded per repository and per client, and idle ones expire first", () => {
  let registry: TestRegistry;
  const other = clientFrom("127.0.0.6");
  beforeAll(async () => {
    registry = await startTestRegistry({ limits: { uploadsPerRepository: 4, uploadsPerClient: 6 } });
  });
  afterAll(async () => {
    await other.close();
    await registry.destroy();
  });

  async function open(name: string, dispatcher?: Agent) {
    const res = await request(new URL(`/v2/${name}/blobs/uploads/`, registry.url), {
      method: "POST",
      headers: { "content-length": "0" },
      ...(dispatcher ? { dispatcher } : {}),
    });
    return res;
  }

  async function openOk(name: string, dispatcher?: Agent): Promise<string> {
    const res = await open(name, dispatcher);
    await res.body.dump();
    expect(res.statusCode).toBe(202);
    return location(res);
  }

  it("refuses sessions past the limits with 429 TOOMANYREQUESTS, creating nothing, until one ends", async () => {
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await openOk("hostile/up-a"));
    const [perRepository] = await expectError(await open("hostile/up-a"), 429, "TOOMANYREQUESTS");
    expect(perRepository?.detail).toEqual({ limit: 4, per: "repository" });
    expect(perRepository?.message).toMatch(/repository hostile\/up-a \(limit 4\)/);
    expect(await sessionsOf(registry, "hostile/up-a")).toHaveLength(4);

    // This client holds 4; 2 more elsewhere reach its limit of 6.
    await openOk("hostile/up-b");
    await openOk("hostile/up-b");
    const [perClient] = await expectError(await open("hostile/up-b"), 429, "TOOMANYREQUESTS");
    expect(perClient?.detail).toEqual({ limit: 6, per: "client" });
    // A single-request upload opens a session too: refused alike, nothing stored.
    const data = Buffer.from("monolithic while at the limit");
    const monolithic = await call(registry, "POST", `/v2/hostile/up-c/blobs/uploads/?digest=${digestOf(data)}`, {
      headers: { "content-type": "application/octet-stream" },
      body: data,
    });
    await expectError(monolithic, 429, "TOOMANYREQUESTS");
    expect(await headStatus(registry, `/v2/hostile/up-c/blobs/${digestOf(data)}`)).toBe(404);
    // Another client address is not held back by this one.
    await openOk("hostile/up-b", other);
    expect(await sessionsOf(registry, "hostile/up-b")).toHaveLength(3);

    // Cancelling a session frees its slot.
    const cancelled = await call(registry, "DELETE", first[0] as string);
    await cancelled.body.dump();
    expect(cancelled.statusCode).toBe(204);
    await openOk("hostile/up-b");
    await expectServing(registry);
  });

  it("expires a session idle past the idle TTL, keeps one that received data since, and ends any past the absolute TTL", async () => {
    const store = registry.deps.metadata;
    const idleLocation = await openOk("hostile/expiry", other);
    const idle = await store.getUpload(uploadId(idleLocation));
    // The active session's last request must come after the idle one's (the clock moves on).
    while (Date.now() <= (idle?.updatedAt as number) + 1) await new Promise((resolve) => setTimeout(resolve, 5));
    const activeLocation = await openOk("hostile/expiry", other);
    const data = Buffer.from("some bytes, received recently");
    const patched = await request(new URL(activeLocation, registry.url), { method: "PATCH", body: data, dispatcher: other });
    await patched.body.dump();
    expect(patched.statusCode).toBe(202);
    const active = await store.getUpload(uploadId(activeLocation));
    expect(active?.updatedAt).toBeGreaterThan(idle?.updatedAt as number);

    // The moment the idle session has been idle for longer than the idle TTL (the active one not yet).
    const ttl = { idleTtlMs: 60_000, ttlMs: 86_400_000 };
    // (Sessions of the test before, idle for longer still, go too.)
    expect(await expireUploads(registry.deps, ttl, (idle?.updatedAt as number) + ttl.idleTtlMs + 1)).toBeGreaterThanOrEqual(1);
    expect(await store.getUpload(uploadId(idleLocation))).toBeUndefined();
    const status = await request(new URL(activeLocation, registry.url), { dispatcher: other });
    await status.body.dump();
    expect(status.statusCode).toBe(204);
    expect(status.headers.range).toBe(`0-${data.length - 1}`);

    // However active, a session older than the absolute TTL is ended.
    const late = { idleTtlMs: 86_400_000, ttlMs: 60_000 };
    expect(await expireUploads(registry.deps, late, (active?.createdAt as number) + late.ttlMs + 1)).toBeGreaterThanOrEqual(1);
    const gone = await request(new URL(activeLocation, registry.url), { dispatcher: other });
    await gone.body.dump();
    expect(gone.statusCode).toBe(404);
    await expectServing(registry);
  });

  it("the running registry's janitor expires idle sessions on its own", async () => {
    const quick = await startTestRegistry({ limits: { uploadIdleTtlMs: 1000 } });
    try {
      const res = await call(quick, "POST", "/v2/hostile/janitor/blobs/uploads/", { headers: { "content-length": "0" } });
      await res.body.dump();
      expect(res.statusCode).toBe(202);
      const session = location(res);
      const deadline = Date.now() + 60_000;
      while ((await sessionsOf(quick, "hostile/janitor")).length > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(await sessionsOf(quick, "hostile/janitor")).toEqual([]);
      const probe = await call(quick, "GET", session);
      await probe.body.dump();
      expect(probe.statusCode).toBe(404);
      await expectServing(quick);
    } finally {
      await quick.destroy();
    }
  });
});

describe("slow bodies and headers are cut, a slow but progressing upload finishes", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    // Small limits so that the test stays short: at least 200 bytes/s over any 1.5 s.
    registry = await startTestRegistry({
      limits: { minBodyRate: 200, bodyRateWindowMs: 1500, headersTimeoutMs: 1000, keepAliveTimeoutMs: 2000 },
    });
  });
  afterAll(() => registry.destroy());

  /** Writes one byte every `everyMs` until the server closes the connection; resolves with what it answered. */
  async function trickle(raw: RawConnection, everyMs: number): Promise<string> {
    let open = true;
    void raw.closed.then(() => {
      open = false;
    });
    const deadline = Date.now() + 60_000;
    while (open && Date.now() < deadline) {
      await raw.write("x").catch(() => undefined);
      await Promise.race([raw.closed, new Promise((resolve) => setTimeout(resolve, everyMs))]);
    }
    return (await raw.closed).toString("latin1");
  }

  it("cuts a manifest PUT that sends 1 byte every 2 s with 408, storing nothing", async () => {
    const raw = await rawConnection(registry);
    await raw.write(
      `PUT /v2/hostile/slow/manifests/v1 HTTP/1.1\r\nHost: registry\r\nContent-Type: ${MediaType.ociManifest}\r\nContent-Length: 1000\r\n\r\n`,
    );
    const answer = await trickle(raw, 2000);
    expect(statusCodes(Buffer.from(answer, "latin1"))).toEqual([408]);
    expect(answer).toMatch(/"code":"MANIFEST_INVALID"/);
    expect(answer).toMatch(/request body too slow: under 200 bytes\/s for 1\.5s/);
    expect(await headStatus(registry, "/v2/hostile/slow/manifests/v1")).toBe(404);
    await expectServing(registry);
  });

  it("cuts headers that trickle in with 408 (headers timeout)", async () => {
    const raw = await rawConnection(registry);
    await raw.write("GET /v2/ HTTP/1.1\r\nHost: registry\r\n");
    const answer = await trickle(raw, 300);
    expect(statusCodes(Buffer.from(answer, "latin1"))).toEqual([408]);
    await expectServing(registry);
  });

  it("lets a slow but progressing chunked upload above the minimum rate finish, across several windows", async () => {
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(100, i));
    const data = Buffer.concat(chunks);
    const session = await call(registry, "POST", "/v2/hostile/slow-ok/blobs/uploads/", { headers: { "content-length": "0" } });
    await session.body.dump();
    expect(session.statusCode).toBe(202);
    // 100 bytes every 50 ms: 2000 bytes/s, ten times the floor, for about 2.5 s (more than one window).
    async function* slowly() {
      for (const chunk of chunks) {
        yield chunk;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    const patched = await call(registry, "PATCH", location(session), {
      headers: { "content-type": "application/octet-stream" },
      body: Readable.from(slowly()),
    });
    const text = await patched.body.text();
    expect(patched.statusCode, text).toBe(202);
    const done = await call(registry, "PUT", withDigest(location(patched), digestOf(data)), { headers: { "content-length": "0" } });
    await done.body.dump();
    expect(done.statusCode).toBe(201);
    const pulled = await call(registry, "GET", `/v2/hostile/slow-ok/blobs/${digestOf(data)}`);
    expect(Buffer.from(await pulled.body.arrayBuffer()).equals(data)).toBe(true);
  });

  it("announces its keep-alive timeout, and closes a connection idle past the idle timeout", async () => {
    const res = await call(registry, "GET", "/v2/");
    await res.body.dump();
    expect(res.headers["keep-alive"]).toBe("timeout=2");

    const idle = await startTestRegistry({ limits: { minBodyRate: 0, idleTimeoutMs: 1000 } });
    try {
      // Headers complete, then a body that never comes (no rate floor here): the idle timeout ends it.
      const raw = await rawConnection(idle);
      await raw.write("PUT /v2/hostile/idle/manifests/v1 HTTP/1.1\r\nHost: registry\r\nContent-Length: 100\r\n\r\n{");
      await raw.closed;
      expect(await headStatus(idle, "/v2/hostile/idle/manifests/v1")).toBe(404);
      await expectServing(idle);
    } finally {
      await idle.destroy();
    }
  });
});

describe("connections per client address are capped", () => {
  it("answers 429 to a connection over the cap, serves other addresses, and frees a slot on close", async () => {
    const registry = await startTestRegistry({ limits: { connectionsPerClient: 3 } });
    const request = "GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n";
    const held: RawConnection[] = [];
    try {
      for (let i = 0; i < 3; i++) held.push(await rawConnection(registry, "127.0.0.8"));
      // Each held connection is served.
      for (const raw of held) {
        await raw.write(request);
        expect(statusCodes(await raw.until((b) => statusCodes(b).length > 0))).toEqual([200]);
      }
      const extra = await rawConnection(registry, "127.0.0.8");
      await extra.write(request);
      const refused = (await extra.closed).toString("latin1");
      expect(statusCodes(Buffer.from(refused, "latin1"))).toEqual([429]);
      expect(refused).toMatch(/"code":"TOOMANYREQUESTS"/);
      expect(refused).toMatch(/too many open connections from this address \(limit 3\)/);

      // Another address is not affected.
      const other = await rawConnection(registry, "127.0.0.9");
      await other.write(request);
      expect(statusCodes(await other.until((b) => statusCodes(b).length > 0))).toEqual([200]);
      other.end();

      // One held connection closes: its slot is free again (once the server has seen the close).
      held.shift()?.end();
      const deadline = Date.now() + 30_000;
      let codes: number[] = [];
      while (Date.now() < deadline) {
        const again = await rawConnection(registry, "127.0.0.8");
        await again.write(request);
        codes = statusCodes(await again.until((b) => statusCodes(b).length > 0));
        if (codes[0] === 200) {
          held.push(again);
          break;
        }
        await again.closed;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(codes).toEqual([200]);
      await expectServing(registry);
    } finally {
      for (const raw of held) raw.end();
      await registry.destroy();
    }
  });
});
