import { describe, expect, it } from "vitest";
import { applyHealthFlags, goDuration } from "../src/commands/health-flags.js";

describe("health check flags", () => {
  it("parse Go durations", () => {
    expect(goDuration("30s")).toBe(30e9);
    expect(goDuration("1m30s")).toBe(90e9);
    expect(goDuration("1.5h")).toBe(5400e9);
    expect(goDuration("250ms")).toBe(250e6);
    expect(goDuration("0")).toBe(0);
    expect(goDuration("-5s")).toBe(-5e9);
    expect(() => goDuration("5")).toThrow('time: invalid duration "5"');
    expect(() => goDuration("soon")).toThrow();
  });

  it("become a HealthConfig as the docker CLI builds it", () => {
    const body: Record<string, unknown> = {};
    applyHealthFlags({ healthCmd: "curl -f localhost", healthInterval: "1s", healthRetries: "4", healthcheck: true }, body);
    expect(body.Healthcheck).toEqual({
      Test: ["CMD-SHELL", "curl -f localhost"],
      Interval: 1e9,
      Timeout: 0,
      StartPeriod: 0,
      StartInterval: 0,
      Retries: 4,
    });
    const none: Record<string, unknown> = {};
    applyHealthFlags({ healthcheck: false }, none);
    expect(none.Healthcheck).toEqual({ Test: ["NONE"] });
    const untouched: Record<string, unknown> = {};
    applyHealthFlags({ healthcheck: true }, untouched);
    expect(untouched.Healthcheck).toBeUndefined();
  });

  it("refuse what the docker CLI refuses", () => {
    expect(() => applyHealthFlags({ healthcheck: false, healthCmd: "true" }, {})).toThrow(
      "--no-healthcheck conflicts with --health-* options",
    );
    expect(() => applyHealthFlags({ healthTimeout: "-1s" }, {})).toThrow("--health-timeout cannot be negative");
    expect(() => applyHealthFlags({ healthRetries: "-2" }, {})).toThrow("--health-retries cannot be negative");
    expect(() => applyHealthFlags({ healthRetries: "many" }, {})).toThrow('invalid argument "many" for "--health-retries" flag');
    expect(() => applyHealthFlags({ healthInterval: "10" }, {})).toThrow(
      'invalid argument "10" for "--health-interval" flag: time: invalid duration "10"',
    );
  });
});
