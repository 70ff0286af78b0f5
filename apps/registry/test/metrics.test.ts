import { rename } from "node:fs/promises";
import { join } from "node:path";
import { MediaType } from "@minato/oci";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { ADMIN, addUser, bearer, requestToken, startAuthRegistry, tokenFor } from "./auth-helpers.js";
import {
  call,
  descriptorOf,
  EMPTY_JSON,
  pushBlob,
  pushManifest,
  randomBlob,
  startTestRegistry,
  TEST_STORAGE,
  type TestOverrides,
  type TestRegistry,
} from "./harness.js";

/** Metrics (README "Observability"): scrapes parsed by a Prometheus text-format parser. */

type Labels = Record<string, string>;
interface Sample {
  labels?: Labels;
  value?: string;
}
interface Family {
  name: string;
  type: string;
  metrics: Sample[];
}

/**
 * A parsed scrape. The parser folds a histogram's labelled series into one, so histograms are parsed a
 * second time declared untyped: their `_bucket`, `_sum` and `_count` series then come out as they are.
 */
class Scrape {
  readonly families: Family[];
  readonly series: Family[];

  constructor(text: string) {
    this.families = parsePrometheusTextFormat(text) as Family[];
    this.series = parsePrometheusTextFormat(text.replace(/^(# TYPE \S+) histogram$/gm, "$1 untyped")) as Family[];
  }

  family(name: string): Family | undefined {
    return this.families.find((f) => f.name === name);
  }

  /** The samples of `name` (a histogram's `_count`, `_bucket`…) whose labels include `labels`. */
  samples(name: string, labels: Labels = {}): Sample[] {
    // Each labelled histogram series restarts `_bucket`, `_sum`, `_count`: several families share a name.
    const samples = this.series.filter((f) => f.name === name).flatMap((f) => f.metrics);
    return samples.filter((sample) => Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v));
  }

  /** Their sum (0 when there is none). */
  value(name: string, labels: Labels = {}): number {
    return this.samples(name, labels).reduce((total, sample) => total + Number(sample.value), 0);
  }
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const res = await request(url, { headers });
  const text = await res.body.text();
  expect(res.statusCode, text).toBe(200);
  expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
  return new Scrape(text);
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const P = "minato_registry_";
let registries: TestRegistry[] = [];
async function start(overrides: TestOverrides = {}): Promise<TestRegistry> {
  const registry = await startTestRegistry(overrides);
  registries.push(registry);
  return registry;
}
afterEach(async () => {
  await Promise.all(registries.map((r) => r.destroy()));
  registries = [];
});

describe("metrics", () => {
  it("counts a scripted push, pull and delete exactly, by route kind, method and code", async () => {
    const registry = await start({ metrics: { enabled: true, repositoryLabels: true } });
    const metricsUrl = `${registry.url}/metrics`;
    const before = await scrape(metricsUrl);

    const layer = randomBlob(3000);
    await pushBlob(registry, "obs/app", layer);
    await pushBlob(registry, "obs/app", EMPTY_JSON);
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: descriptorOf("application/vnd.oci.empty.v1+json", EMPTY_JSON),
      layers: [descriptorOf(MediaType.ociLayerGzip, layer)],
    };
    const pushed = await pushManifest(registry, "obs/app", "v1", manifest);
    const get = await call(registry, "GET", "/v2/obs/app/manifests/v1", { headers: { accept: MediaType.ociManifest } });
    expect((await get.body.arrayBuffer()).byteLength).toBe(pushed.bytes.length);
    const blob = await call(registry, "GET", `/v2/obs/app/blobs/${descriptorOf("", layer).digest}`);
    expect((await blob.body.arrayBuffer()).byteLength).toBe(3000);
    const missing = await call(registry, "GET", "/v2/obs/app/manifests/nope");
    await missing.body.dump();
    const del = await call(registry, "DELETE", `/v2/obs/app/manifests/${pushed.digest}`);
    await del.body.dump();
    expect(del.statusCode).toBe(202);

    // A request is recorded when its response closes: wait for the last one, then compare exactly.
    const after = await eventually(
      () => scrape(metricsUrl),
      (s) => s.value(`${P}http_requests_total`, { kind: "manifest", method: "DELETE" }) === 1,
      "the DELETE is counted",
    );
    const delta = (name: string, labels: Labels = {}) => after.value(name, labels) - before.value(name, labels);
    const requests = `${P}http_requests_total`;
    expect(delta(requests, { kind: "upload", method: "POST", code: "201" })).toBe(2);
    expect(delta(requests, { kind: "manifest", method: "PUT", code: "201" })).toBe(1);
    expect(delta(requests, { kind: "manifest", method: "GET", code: "200" })).toBe(1);
    expect(delta(requests, { kind: "manifest", method: "GET", code: "404" })).toBe(1);
    expect(delta(requests, { kind: "manifest", method: "DELETE", code: "202" })).toBe(1);
    expect(delta(requests, { kind: "blob", method: "GET", code: "200" })).toBe(1);
    for (const kind of ["base", "catalog", "tags", "referrers", "token", "api", "ui", "other"]) expect(delta(requests, { kind })).toBe(0);

    const duration = `${P}http_request_duration_seconds`;
    expect(after.family(duration)?.type).toBe("HISTOGRAM");
    expect(delta(`${duration}_count`, { kind: "manifest" })).toBe(4);
    expect(delta(`${duration}_count`, { kind: "upload" })).toBe(2);
    expect(delta(`${duration}_count`, { kind: "blob" })).toBe(1);
    expect(delta(`${duration}_bucket`, { kind: "manifest", le: "+Inf" })).toBe(4);
    expect(delta(`${duration}_sum`, { kind: "manifest" })).toBeGreaterThan(0);

    expect(delta(`${P}http_received_bytes_total`, { kind: "upload" })).toBe(3000 + EMPTY_JSON.length);
    expect(delta(`${P}http_received_bytes_total`, { kind: "manifest" })).toBe(pushed.bytes.length);
    expect(delta(`${P}http_sent_bytes_total`, { kind: "blob" })).toBe(3000);
    expect(after.value(`${P}uploads_in_flight`)).toBe(0);

    // Storage: both uploads committed once each, through the driver the test storage uses.
    const driver = TEST_STORAGE;
    const storageOps = `${P}storage_operation_duration_seconds`;
    expect(after.family(storageOps)?.type).toBe("HISTOGRAM");
    expect(delta(`${storageOps}_count`, { driver, operation: "commit", outcome: "ok" })).toBe(2);
    expect(delta(`${storageOps}_count`, { driver, operation: "read" })).toBe(1);
    // Totals and (enabled here) per repository, read from metadata at scrape time.
    expect(after.value(`${P}storage_blobs`)).toBe(2);
    expect(after.value(`${P}storage_bytes`)).toBe(3000 + EMPTY_JSON.length);
    expect(after.value(`${P}repository_storage_bytes`, { repository: "obs/app" })).toBe(3000 + EMPTY_JSON.length);
    expect(after.value(`${P}repository_blobs`, { repository: "obs/app" })).toBe(2);

    // Process metrics from prom-client's defaults; no label is a raw path or a digest.
    expect(after.family(`${P}process_resident_memory_bytes`)).toBeDefined();
    expect(after.family(`${P}nodejs_eventloop_lag_seconds`)).toBeDefined();
    for (const family of after.series)
      for (const sample of family.metrics)
        for (const value of Object.values(sample.labels ?? {})) expect(value).not.toMatch(/sha256:|\/v2\//);
  });

  it("leaves out per-repository series unless enabled", async () => {
    const registry = await start();
    await pushBlob(registry, "obs/quiet", randomBlob(10));
    const s = await scrape(`${registry.url}/metrics`);
    expect(s.value(`${P}storage_blobs`)).toBe(1);
    expect(s.family(`${P}repository_storage_bytes`)).toBeUndefined();
  });

  it("serves /metrics on --metrics-listen only, and not at all with --no-metrics", async () => {
    const separate = await start({ metrics: { enabled: true, repositoryLabels: false, listen: { host: "127.0.0.1", port: 0 } } });
    expect(separate.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    await pushBlob(separate, "obs/sep", randomBlob(10));
    const s = await eventually(
      () => scrape(separate.metricsUrl as string),
      (x) => x.value(`${P}http_requests_total`, { kind: "upload" }) === 1,
      "the upload is counted",
    );
    expect(s.value(`${P}storage_blobs`)).toBe(1);
    const onMain = await call(separate, "GET", "/metrics");
    await onMain.body.dump();
    expect(onMain.statusCode).toBe(404);
    const other = await request(new URL("/v2/", separate.metricsUrl));
    await other.body.dump();
    expect(other.statusCode).toBe(404);

    const off = await start({ metrics: { enabled: false, repositoryLabels: false } });
    const res = await call(off, "GET", "/metrics");
    await res.body.dump();
    expect(res.statusCode).toBe(404);
  });

  it("needs an admin or a metrics grant under token auth, and counts failed and throttled logins", async () => {
    const registry = await startAuthRegistry({ throttle: { perUser: 2, perAddress: 50, windowMs: 60_000 } });
    registries.push(registry);
    const url = `${registry.url}/metrics`;
    const anonymous = await request(url);
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toContain('scope="registry:metrics:*"');

    const plain = await addUser(registry, "plain", "plain-password-1", [["plain/*", ["pull", "push"]]]);
    const watcher = await addUser(registry, "watcher", "watcher-password-1", [["metrics", ["pull"]]]);
    const plainToken = await tokenFor(registry, plain, "registry:metrics:*");
    const denied = await request(url, { headers: bearer(plainToken) });
    await denied.body.dump();
    expect(denied.statusCode).toBe(403);

    const before = await scrape(url, bearer(await tokenFor(registry, ADMIN, "registry:metrics:*")));
    for (let i = 0; i < 3; i++) await requestToken(registry, { user: "plain", password: "wrong" }, []);
    const after = await scrape(url, bearer(await tokenFor(registry, watcher, "registry:metrics:*")));
    expect(
      after.value(`${P}auth_failures_total`, { reason: "password" }) - before.value(`${P}auth_failures_total`, { reason: "password" }),
    ).toBe(2);
    expect(after.value(`${P}logins_throttled_total`) - before.value(`${P}logins_throttled_total`)).toBe(1);
  });

  it("counts background collections, the blobs they delete and the bytes freed, and audits the deletion", async () => {
    const registry = await start({ gc: { intervalMs: 200, graceMs: 0, deleteUntagged: false } });
    const orphan = randomBlob(4321);
    await pushBlob(registry, "obs/gc", orphan); // no manifest references it: garbage once past the grace
    const after = await eventually(
      () => scrape(`${registry.url}/metrics`),
      (s) => s.value(`${P}gc_deleted_blobs_total`) >= 1,
      "a collection deletes the orphan",
    );
    expect(after.value(`${P}gc_deleted_blobs_total`)).toBe(1);
    expect(after.value(`${P}gc_freed_bytes_total`)).toBe(4321);
    expect(after.value(`${P}gc_runs_total`, { outcome: "ok" })).toBeGreaterThanOrEqual(1);
    expect(after.value(`${P}gc_duration_seconds_count`)).toBe(after.value(`${P}gc_runs_total`));
    const trail = registry.deps.audit?.query({ action: "gc-delete", limit: 10 }) ?? [];
    expect(trail).toEqual([expect.objectContaining({ actor: "gc", target: "blobs", detail: { count: 1, bytesFreed: 4321 } })]);
  }, 60_000);

  it("reads its settings from flags and refuses a bad metrics address", () => {
    const config = loadConfig(["--metrics-listen", "127.0.0.1:9109", "--metrics-repository-labels"], {});
    expect(config.metrics).toEqual({ enabled: true, listen: { host: "127.0.0.1", port: 9109 }, repositoryLabels: true });
    expect(loadConfig(["--no-metrics"], {}).metrics?.enabled).toBe(false);
    expect(() => loadConfig(["--metrics-listen", "nowhere"], {})).toThrow(/--metrics-listen must be HOST:PORT/);
  });
});

describe("health", () => {
  it("reports which dependency fails, and /ready", async () => {
    const registry = await start();
    const ok = await call(registry, "GET", "/health");
    expect(ok.statusCode).toBe(200);
    expect(await ok.body.json()).toEqual({ status: "ok", checks: { storage: { status: "ok" }, metadata: { status: "ok" } } });
    const ready = await call(registry, "GET", "/ready");
    expect(ready.statusCode).toBe(200);
    await ready.body.dump();

    if (registry.storage.config) return; // the bucket cannot be taken away here; the filesystem case shows it
    const blobs = join(registry.dataDir, "blobs");
    await rename(blobs, `${blobs}.gone`);
    const failing = await call(registry, "GET", "/health");
    expect(failing.statusCode).toBe(503);
    const body = (await failing.body.json()) as { checks: Record<string, { status: string }> };
    expect(body.checks.storage?.status).toBe("failing");
    expect(body.checks.metadata?.status).toBe("ok");
    await rename(`${blobs}.gone`, blobs);
  });

  it("answers /ready with 503 once shutdown began, while it still serves (--drain-delay)", async () => {
    const registry = await startTestRegistry({ drainDelayMs: 10_000 });
    const ready = async () => {
      const res = await request(`${registry.url}/ready`, { reset: true });
      await res.body.dump();
      return res.statusCode;
    };
    expect(await ready()).toBe(200);
    const closing = registry.destroy();
    expect(await ready()).toBe(503);
    const res = await call(registry, "GET", "/v2/");
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    await closing;
  }, 60_000);
});
