// --metrics-addr parsing, and a scrape served on an IPv6 loopback address.
import { networkInterfaces } from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseMetricsAddr } from "../src/config.js";
import { EngineMetrics, serveMetrics } from "../src/metrics.js";

const ipv6Loopback = Object.values(networkInterfaces())
  .flat()
  .some((a) => a?.address === "::1");

describe("--metrics-addr", () => {
  it("reads HOST:PORT, an IPv6 host in brackets", () => {
    expect(parseMetricsAddr("127.0.0.1:9323")).toEqual({ host: "127.0.0.1", port: 9323 });
    expect(parseMetricsAddr("[::1]:9323")).toEqual({ host: "::1", port: 9323 });
    expect(parseMetricsAddr("localhost:1")).toEqual({ host: "localhost", port: 1 });
  });

  it("is unset by default, and set from the flag or the variable", () => {
    expect(loadConfig([], {}).metricsAddr).toBeUndefined();
    expect(loadConfig(["--metrics-addr", "127.0.0.1:9323"], {}).metricsAddr).toEqual({ host: "127.0.0.1", port: 9323 });
    expect(loadConfig([], { MINATO_METRICS_ADDR: "[::1]:9" }).metricsAddr).toEqual({ host: "::1", port: 9 });
  });

  it.each(["9323", "127.0.0.1:", "::1:9323", "127.0.0.1:65536", "127.0.0.1:-1", "a b:1", "http://127.0.0.1:9323"])(
    "refuses %j",
    (value) => {
      expect(() => parseMetricsAddr(value)).toThrow(ConfigError);
    },
  );

  it.skipIf(!ipv6Loopback)("serves the scrape on [::1] (skipped where the machine has no IPv6 loopback)", async () => {
    const metrics = new EngineMetrics({ version: "0.1.0", storageDriver: "overlay2", runtime: "runc" });
    const server = await serveMetrics(metrics, { host: "::1", port: 0 });
    try {
      const { port } = server.address() as { port: number };
      const response = await fetch(`http://[::1]:${port}/metrics`);
      expect(response.status).toBe(200);
      expect(await response.text()).toMatch(/^minato_engine_info\{version="0\.1\.0",.*\} 1$/m);
    } finally {
      server.close();
    }
  });
});
