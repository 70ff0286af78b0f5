import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Digest, Digester, digestOf, MediaType } from "@minato/oci";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Distribution, startDistribution } from "../../../test/support/distribution.js";
import { parseProxyConfig } from "../src/proxy/config.js";
import { addUser, startAuthRegistry } from "./auth-helpers.js";
import { bytes, call, header, startTestRegistry, type TestRegistry } from "./harness.js";
import { CountingForwarder, type PushedImage, pushImage, run } from "./proxy-helpers.js";

/**
 * The pull-through cache against real upstreams on loopback: a Minato registry with token
 * authentication and CNCF Distribution, each behind a forwarder that counts what reaches them.
 */

const SKOPEO = "/usr/bin/skopeo";
const HOUR = 3_600_000;
const MiB = 1024 * 1024;

function hostOf(registry: TestRegistry): string {
  return new URL(registry.url).host;
}

/** Every file of an OCI layout's blob directory, name → digest of its bytes (deep equality of 64 MiB buffers is slow). */
async function layoutBlobs(dir: string): Promise<Map<string, Digest>> {
  const blobs = new Map<string, Digest>();
  const root = join(dir, "blobs", "sha256");
  for (const name of await readdir(root)) blobs.set(name, digestOf(await readFile(join(root, name))));
  return blobs;
}

describe("pull-through cache of a Minato registry with token auth", () => {
  let upstream: TestRegistry;
  let forwarder: CountingForwarder;
  let proxy: TestRegistry;
  let image: PushedImage;
  let work: string;
  const creds = { username: "mirror-bot", password: "mirror-bot-password-1" };

  beforeAll(async () => {
    upstream = await startAuthRegistry();
    await addUser(upstream, creds.username, creds.password, [["*", ["pull", "push"]]]);
    image = await pushImage(hostOf(upstream), "team/app", "v1", [randomBytes(300_000), randomBytes(5000)], creds);
    forwarder = await new CountingForwarder(hostOf(upstream)).start();
    proxy = await startTestRegistry({
      proxy: [
        { prefix: "up", url: forwarder.url, ...creds, tagTtlMs: HOUR, insecureSkipVerify: false },
        // Freshness 0: every tag request revalidates, which shows the HEAD and the refresh.
        { prefix: "fresh", url: forwarder.url, ...creds, tagTtlMs: 0, insecureSkipVerify: false },
      ],
    });
    work = await mkdtemp(join(tmpdir(), "minato-proxy-test-"));
  }, 120_000);

  afterAll(async () => {
    await proxy?.destroy();
    await forwarder?.close();
    await upstream?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("a cold skopeo pull through the proxy equals a pull from upstream; the second one asks upstream nothing", async () => {
    const direct = join(work, "direct");
    const cold = join(work, "cold");
    const warm = join(work, "warm");
    const copy = (source: string, dest: string, extra: string[] = []) =>
      run(SKOPEO, ["--insecure-policy", "copy", "--src-tls-verify=false", ...extra, source, `oci:${dest}:v1`]);
    const fromUpstream = await copy(`docker://${hostOf(upstream)}/team/app:v1`, direct, [
      "--src-creds",
      `${creds.username}:${creds.password}`,
    ]);
    expect(fromUpstream.code, fromUpstream.stderr).toBe(0);

    // The cache's metrics: lookups by kind and result, and the bytes fetched from upstream.
    const lookups = async () => {
      const { values } = await proxy.deps.metrics.proxyCacheRequests.get();
      const by = (kind: string, result: string) => values.find((v) => v.labels.kind === kind && v.labels.result === result)?.value ?? 0;
      const fetched = (await proxy.deps.metrics.proxyCacheFetchedBytes.get()).values[0]?.value ?? 0;
      return {
        manifestHit: by("manifest", "hit"),
        manifestMiss: by("manifest", "miss"),
        blobHit: by("blob", "hit"),
        blobMiss: by("blob", "miss"),
        fetched,
      };
    };
    const before = await lookups();

    forwarder.reset();
    const first = await copy(`docker://${hostOf(proxy)}/up/team/app:v1`, cold);
    expect(first.code, first.stderr).toBe(0);
    expect(forwarder.count("GET /v2/team/app/manifests/v1")).toBe(1);
    expect(forwarder.count("GET /v2/team/app/blobs/")).toBe(3);
    expect(await layoutBlobs(cold)).toEqual(await layoutBlobs(direct));
    const afterCold = await lookups();
    expect(afterCold.manifestMiss - before.manifestMiss).toBeGreaterThanOrEqual(1);
    expect(afterCold.blobMiss - before.blobMiss).toBeGreaterThanOrEqual(3);
    const layerBytes = image.layers.reduce((sum, layer) => sum + layer.byteLength, 0);
    expect(afterCold.fetched - before.fetched).toBeGreaterThanOrEqual(layerBytes);

    forwarder.reset();
    const second = await copy(`docker://${hostOf(proxy)}/up/team/app:v1`, warm);
    expect(second.code, second.stderr).toBe(0);
    expect(forwarder.requests).toEqual([]);
    expect(await layoutBlobs(warm)).toEqual(await layoutBlobs(direct));
    const afterWarm = await lookups();
    expect(afterWarm.manifestHit - afterCold.manifestHit).toBeGreaterThanOrEqual(1);
    expect(afterWarm.blobHit - afterCold.blobHit).toBeGreaterThanOrEqual(3);
    expect([afterWarm.manifestMiss, afterWarm.blobMiss, afterWarm.fetched]).toEqual([
      afterCold.manifestMiss,
      afterCold.blobMiss,
      afterCold.fetched,
    ]);

    // Recorded like pushed content: the tag and its manifest are in the metadata store.
    expect((await proxy.deps.metadata.getManifest("up/team/app", "v1"))?.digest).toBe(image.digest);
    for (const layer of image.layers) expect(await proxy.deps.metadata.linkedBlob("up/team/app", digestOf(layer))).toBeDefined();
  }, 180_000);

  it("after the TTL a tag is revalidated with a HEAD, and refreshed when it moved upstream", async () => {
    const path = "/v2/fresh/team/app/manifests/v1";
    const accept = { accept: MediaType.ociManifest };
    let res = await call(proxy, "GET", path, { headers: accept });
    expect(res.statusCode).toBe(200);
    expect(header(res, "docker-content-digest")).toBe(image.digest);
    await res.body.dump();

    forwarder.reset();
    res = await call(proxy, "GET", path, { headers: accept });
    await res.body.dump();
    expect(forwarder.requests).toEqual(["HEAD /v2/team/app/manifests/v1"]);

    const moved = await pushImage(hostOf(upstream), "team/app", "v1", [randomBytes(1000)], creds);
    forwarder.reset();
    res = await call(proxy, "GET", path, { headers: accept });
    expect(res.statusCode).toBe(200);
    expect(header(res, "docker-content-digest")).toBe(moved.digest);
    expect((await bytes(res)).equals(moved.manifest)).toBe(true);
    expect(forwarder.count("GET /v2/team/app/manifests/v1")).toBe(1);
  }, 60_000);

  it("refuses pushes into a proxied namespace and accepts them elsewhere", async () => {
    const blob = Buffer.from("not for the cache");
    const refused = await call(proxy, "POST", `/v2/up/team/app/blobs/uploads/?digest=${digestOf(blob)}`, { body: blob });
    expect(refused.statusCode).toBe(405);
    const body = (await refused.body.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]?.code).toBe("UNSUPPORTED");
    expect(body.errors[0]?.message).toContain("pull-through cache");
    const put = await call(proxy, "PUT", "/v2/up/team/app/manifests/v9", {
      headers: { "content-type": MediaType.ociManifest },
      body: image.manifest,
    });
    expect(put.statusCode).toBe(405);
    await put.body.dump();
    const own = await call(proxy, "POST", `/v2/local/thing/blobs/uploads/?digest=${digestOf(blob)}`, { body: blob });
    expect(own.statusCode).toBe(201);
    await own.body.dump();
  });

  it("keeps upstream errors' meaning: 404 stays 404, 429 is TOOMANYREQUESTS with Retry-After", async () => {
    const missing = await call(proxy, "GET", "/v2/up/team/none/manifests/v1");
    expect(missing.statusCode).toBe(404);
    expect(((await missing.body.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe("MANIFEST_UNKNOWN");
    const missingBlob = await call(proxy, "GET", `/v2/up/team/app/blobs/${digestOf("absent")}`);
    expect(missingBlob.statusCode).toBe(404);
    expect(((await missingBlob.body.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe("BLOB_UNKNOWN");

    forwarder.answer = { status: 429, headers: { "retry-after": "17" }, body: JSON.stringify({ errors: [{ code: "TOOMANYREQUESTS" }] }) };
    try {
      const limited = await call(proxy, "GET", "/v2/up/team/other/manifests/v1");
      expect(limited.statusCode).toBe(429);
      expect(header(limited, "retry-after")).toBe("17");
      expect(((await limited.body.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe("TOOMANYREQUESTS");
    } finally {
      forwarder.answer = undefined;
    }
  });

  it("with upstream stopped, cached tags are served stale and uncached ones fail clearly", async () => {
    const cached = "/v2/fresh/team/app/manifests/v1";
    const ok = await call(proxy, "GET", cached, { headers: { accept: MediaType.ociManifest } });
    expect(ok.statusCode).toBe(200);
    await ok.body.dump();
    const port = Number(new URL(forwarder.url).port);
    await forwarder.close();
    try {
      const stale = await call(proxy, "GET", cached, { headers: { accept: MediaType.ociManifest } });
      expect(stale.statusCode).toBe(200);
      expect(header(stale, "x-minato-cache")).toBe("stale");
      expect(header(stale, "warning")).toContain("110");
      await stale.body.dump();
      const uncached = await call(proxy, "GET", "/v2/fresh/team/never/manifests/v1");
      expect(uncached.statusCode).toBe(503);
      const message = ((await uncached.body.json()) as { errors: { message: string }[] }).errors[0]?.message;
      expect(message).toMatch(/unreachable.*not cached/);
      // skopeo still pulls the image cached under up/ (its tag is fresh, its blobs stored).
      const again = await run(SKOPEO, [
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        `docker://${hostOf(proxy)}/up/team/app:v1`,
        `oci:${join(work, "offline")}:v1`,
      ]);
      expect(again.code, again.stderr).toBe(0);
    } finally {
      await forwarder.start(port);
    }
  }, 60_000);
});

describe("pull-through cache of CNCF Distribution", () => {
  let distribution: Distribution;
  let forwarder: CountingForwarder;
  let proxy: TestRegistry;
  let big: Buffer;
  let work: string;

  beforeAll(async () => {
    distribution = await startDistribution();
    big = randomBytes(64 * MiB);
    await pushImage(distribution.registry, "library/big", "latest", [big]);
    forwarder = await new CountingForwarder(distribution.registry).start();
    proxy = await startTestRegistry({ proxy: [{ prefix: "dist", url: forwarder.url, tagTtlMs: HOUR, insecureSkipVerify: false }] });
    work = await mkdtemp(join(tmpdir(), "minato-proxy-dist-"));
  }, 120_000);

  afterAll(async () => {
    await proxy?.destroy();
    await forwarder?.close();
    await distribution?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("16 concurrent pulls of one uncached 64 MiB blob: one upstream GET, verified bytes, a dropped client harms nobody", async () => {
    const digest = digestOf(big);
    const url = `${proxy.url}/v2/dist/library/big/blobs/${digest}`;
    forwarder.reset();
    const pull = async (): Promise<Digest> => {
      const res = await request(url);
      expect(res.statusCode).toBe(200);
      const digester = new Digester();
      for await (const chunk of res.body) digester.update(chunk as Buffer);
      return digester.digest();
    };
    // One client reads a little and goes away.
    const dropout = (async () => {
      const res = await request(url);
      let read = 0;
      for await (const chunk of res.body) {
        read += (chunk as Buffer).length;
        if (read > 4 * MiB) break;
      }
      res.body.destroy();
    })();
    const results = await Promise.all([dropout, ...Array.from({ length: 15 }, pull)]);
    for (const result of results.slice(1)) expect(result).toBe(digest);
    expect(forwarder.count(`GET /v2/library/big/blobs/${digest}`)).toBe(1);
    expect(await proxy.deps.storage.stat(digest)).toEqual({ size: big.length });
    expect((await proxy.storage.list(proxy.dataDir)).filter((p) => p.startsWith("uploads/"))).toEqual([]);
  }, 300_000);

  it("a cold skopeo pull through the proxy equals a pull from Distribution", async () => {
    // --preserve-digests: the layer is an uncompressed tar, which skopeo would otherwise gzip on the way.
    const copy = (source: string, dest: string) =>
      run(SKOPEO, ["--insecure-policy", "copy", "--preserve-digests", "--src-tls-verify=false", source, `oci:${join(work, dest)}:v1`]);
    const direct = await copy(`docker://${distribution.registry}/library/big:latest`, "direct");
    expect(direct.code, direct.stderr).toBe(0);
    const proxied = await copy(`docker://${hostOf(proxy)}/dist/library/big:latest`, "proxied");
    expect(proxied.code, proxied.stderr).toBe(0);
    expect(await layoutBlobs(join(work, "proxied"))).toEqual(await layoutBlobs(join(work, "direct")));
  }, 300_000);
});

describe("an upstream that lies", () => {
  let liar: Server;
  let proxy: TestRegistry;
  const truth = Buffer.from("the real layer");
  const lie = Buffer.from("something else!");
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: {}, layers: [] }));

  beforeAll(async () => {
    // Answers every blob with the wrong bytes, and manifests under a digest they do not have.
    liar = createServer((req, res) => {
      if (req.url === "/v2/") return res.writeHead(200, { "content-type": "application/json" }).end("{}");
      if (req.url?.includes("/blobs/")) return res.writeHead(200, { "content-length": String(lie.length) }).end(lie);
      res.writeHead(200, {
        "content-type": MediaType.ociManifest,
        "docker-content-digest": digestOf("not this"),
        "content-length": String(manifest.length),
      });
      res.end(req.method === "HEAD" ? undefined : manifest);
    });
    await new Promise<void>((resolve) => liar.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`;
    proxy = await startTestRegistry({ proxy: [{ prefix: "liar", url, tagTtlMs: HOUR, insecureSkipVerify: false }] });
  });

  afterAll(async () => {
    await proxy?.destroy();
    await new Promise((resolve) => liar?.close(resolve));
  });

  it("a blob with the wrong bytes never completes for the client and is not cached", async () => {
    const digest = digestOf(truth);
    // The connection is cut before the body completes (before the headers even, for a one-chunk blob).
    const outcome = await request(`${proxy.url}/v2/liar/x/blobs/${digest}`).then(
      (res) => res.body.arrayBuffer().then(() => "complete"),
      () => "failed",
    );
    expect(outcome).not.toBe("complete");
    // A waiting client (or a retry) gets a clear error.
    const retry = await call(proxy, "GET", `/v2/liar/x/blobs/${digest}`, { headers: { range: "bytes=0-3" } });
    expect(retry.statusCode).toBe(502);
    expect(((await retry.body.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe("DIGEST_INVALID");
    expect(await proxy.deps.metadata.linkedBlob("liar/x", digest)).toBeUndefined();
    expect(await proxy.deps.storage.stat(digest)).toBeUndefined();
    expect(await proxy.storage.list(proxy.dataDir)).toEqual([]);
  });

  it("a manifest that does not match its digest is refused and not cached", async () => {
    for (const reference of ["v1", digestOf("not this")]) {
      const res = await call(proxy, "GET", `/v2/liar/x/manifests/${reference}`);
      expect(res.statusCode).toBe(502);
      expect(((await res.body.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe("DIGEST_INVALID");
    }
    expect(await proxy.deps.metadata.getManifest("liar/x", "v1")).toBeUndefined();
  });
});

describe("proxy configuration", () => {
  it("refuses what it cannot honour, with the reason", () => {
    const parse = (upstreams: unknown[]) => () => parseProxyConfig({ upstreams }, "test.json", {});
    expect(parse([{ prefix: "hub", url: "ftp://x" }])).toThrow(/http:\/\/ or https:\/\//);
    expect(parse([{ prefix: "hub", url: "https://x/some/path" }])).toThrow(/no path/);
    expect(parse([{ prefix: "Hub!", url: "https://x" }])).toThrow(/prefix/);
    expect(parse([{ prefix: "hub", url: "https://x", colour: "red" }])).toThrow(/unknown key "colour"/);
    expect(parse([{ prefix: "hub", url: "https://x", username: "u" }])).toThrow(/go together/);
    expect(parse([{ prefix: "hub", url: "https://x", passwordEnv: "NOPE", username: "u" }])).toThrow(/not set/);
    expect(parse([{ prefix: "hub", url: "https://x", tagTtl: "soon" }])).toThrow(/tagTtl/);
    expect(
      parse([
        { prefix: "a", url: "https://x" },
        { prefix: "a/b", url: "https://y" },
      ]),
    ).toThrow(/overlaps/);
    expect(
      parseProxyConfig(
        { upstreams: [{ prefix: "mirror/", url: "https://r.example:5000/", username: "u", passwordEnv: "P", tagTtl: "90s" }] },
        "t",
        { P: "secret" },
      ),
    ).toEqual([
      { prefix: "mirror", url: "https://r.example:5000", username: "u", password: "secret", tagTtlMs: 90_000, insecureSkipVerify: false },
    ]);
  });
});
