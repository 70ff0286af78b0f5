import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseDuration, parseListen } from "../src/config.js";
import { DEFAULT_LIMITS } from "../src/limits.js";

describe("configuration", () => {
  it("uses the embedded defaults", () => {
    const config = loadConfig([], {});
    expect(config).toMatchObject({
      host: "127.0.0.1",
      port: 5000,
      deletesEnabled: true,
      logLevel: "info",
      maxManifestBytes: 4 * 1024 * 1024,
    });
    expect(config.dataDir.endsWith("/data")).toBe(true);
    expect(config.uploadTtlMs).toBe(24 * 3_600_000);
  });

  it("the limits' embedded defaults are the ones startRegistry applies to a config without them", () => {
    expect(loadConfig([], {}).limits).toEqual(DEFAULT_LIMITS);
  });

  it("reads the upload-session, timeout and connection limits, and refuses nonsense", () => {
    const env = { MINATO_REGISTRY_MAX_UPLOADS_PER_REPO: "7", MINATO_REGISTRY_UPLOAD_IDLE_TTL: "90s" };
    const args = ["--max-uploads-per-client", "3", "--min-body-rate", "0", "--body-rate-window", "5s", "--max-connections-per-client", "9"];
    expect(loadConfig(args, env).limits).toMatchObject({
      uploadsPerRepository: 7,
      uploadIdleTtlMs: 90_000,
      uploadsPerClient: 3,
      minBodyRate: 0,
      bodyRateWindowMs: 5000,
      connectionsPerClient: 9,
    });
    expect(() => loadConfig(["--max-uploads-per-repo", "0"], {})).toThrow(/--max-uploads-per-repo must be an integer ≥ 1/);
    expect(() => loadConfig(["--min-body-rate", "fast"], {})).toThrow(/--min-body-rate/);
    expect(() => loadConfig(["--headers-timeout", "10ms"], {})).toThrow(/--headers-timeout must be at least 1000 ms/);
  });

  it("reads MINATO_REGISTRY_* and lets flags win", () => {
    const env = { MINATO_REGISTRY_LISTEN: "127.0.0.1:6000", MINATO_REGISTRY_DELETES: "false", MINATO_REGISTRY_LOG_LEVEL: "warn" };
    expect(loadConfig([], env)).toMatchObject({ port: 6000, deletesEnabled: false, logLevel: "warn" });
    expect(loadConfig(["--listen", "127.0.0.1:7000", "--deletes=true"], env)).toMatchObject({ port: 7000, deletesEnabled: true });
  });

  it("parses listen addresses, including IPv6", () => {
    expect(parseListen("[::1]:5000")).toEqual({ host: "::1", port: 5000 });
    expect(parseListen(":5000")).toEqual({ host: "0.0.0.0", port: 5000 });
    expect(() => parseListen("localhost")).toThrow(ConfigError);
    expect(() => parseListen("127.0.0.1:70000")).toThrow(ConfigError);
  });

  it("parses durations", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("30m")).toBe(1_800_000);
    expect(parseDuration("2d")).toBe(172_800_000);
    expect(() => parseDuration("soon")).toThrow(ConfigError);
  });

  it("refuses bad input with one clear message", () => {
    expect(() => loadConfig(["--deletes", "maybe"], {})).toThrow(/--deletes must be true or false/);
    expect(() => loadConfig(["--log-level", "loud"], {})).toThrow(/--log-level must be one of/);
    expect(() => loadConfig(["--tls-cert", "a.pem"], {})).toThrow(/go together/);
    expect(() => loadConfig(["--no-such-flag"], {})).toThrow(ConfigError);
  });
});
