import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/errors.js";
import { FilterError, parseTimestamp, rfc3339Nanos } from "../src/containers/filters.js";
import { RestartBackoff, restartPolicy, restartsAfterExit, restartsOnDaemonStart } from "../src/containers/restart-policy.js";
import { parseNetDev } from "../src/containers/stats.js";
import { parsePsOutput } from "../src/containers/top.js";

describe("timestamps for since, until and prune filters", () => {
  const now = Date.parse("2026-01-02T03:04:05Z");
  it("reads unix seconds with nanoseconds exactly", () => {
    expect(parseTimestamp("1767323045.123456789")).toBe(1767323045123456789n);
    expect(parseTimestamp("1767323045")).toBe(1767323045000000000n);
  });
  it("reads Go durations back from now", () => {
    expect(parseTimestamp("10m", now)).toBe(BigInt(now - 600_000) * 1_000_000n);
    expect(parseTimestamp("1h30m", now)).toBe(BigInt(now - 5_400_000) * 1_000_000n);
    expect(parseTimestamp("1.5s", now)).toBe(BigInt(now - 1500) * 1_000_000n);
  });
  it("reads RFC 3339 dates and times with offsets, keeping nanoseconds", () => {
    expect(parseTimestamp("2026-01-02T03:04:05.000000001Z")).toBe(BigInt(now) * 1_000_000n + 1n);
    expect(rfc3339Nanos("2026-01-02T12:04:05.5+09:00")).toBe(BigInt(now) * 1_000_000n + 500_000_000n);
    expect(parseTimestamp("2026-01-02")).toBe(BigInt(Date.parse("2026-01-02T00:00:00Z")) * 1_000_000n);
  });
  it("refuses anything else", () => {
    for (const bad of ["yesterday", "10 minutes", "-5", "2026-13-45", ""]) expect(() => parseTimestamp(bad), bad).toThrow(FilterError);
  });
});

describe("restart policies", () => {
  const exit = (exitCode: number, restartCount = 0, manuallyStopped = false) => ({ exitCode, restartCount, manuallyStopped });
  it("validates like dockerd", () => {
    expect(restartPolicy(undefined, false)).toEqual({ Name: "no", MaximumRetryCount: 0 });
    expect(restartPolicy({ Name: "" }, true)).toEqual({ Name: "no", MaximumRetryCount: 0 });
    expect(restartPolicy({ Name: "on-failure", MaximumRetryCount: 3 }, false)).toEqual({ Name: "on-failure", MaximumRetryCount: 3 });
    expect(() => restartPolicy({ Name: "sometimes" }, false)).toThrow(ApiError);
    expect(() => restartPolicy({ Name: "always", MaximumRetryCount: 2 }, false)).toThrow(/only be used with 'on-failure'/);
    expect(() => restartPolicy({ Name: "on-failure", MaximumRetryCount: -1 }, false)).toThrow(ApiError);
    expect(() => restartPolicy({ Name: "always" }, true)).toThrow(/AutoRemove/);
  });
  it("decides after an exit", () => {
    const always = restartPolicy({ Name: "always" }, false);
    const onFailure = restartPolicy({ Name: "on-failure", MaximumRetryCount: 2 }, false);
    const unlimited = restartPolicy({ Name: "on-failure" }, false);
    expect(restartsAfterExit(always, exit(0))).toBe(true);
    expect(restartsAfterExit(always, exit(0, 0, true))).toBe(false);
    expect(restartsAfterExit(onFailure, exit(0))).toBe(false);
    expect(restartsAfterExit(onFailure, exit(1, 1))).toBe(true);
    expect(restartsAfterExit(onFailure, exit(1, 2))).toBe(false);
    expect(restartsAfterExit(unlimited, exit(1, 1000))).toBe(true);
    expect(restartsAfterExit(restartPolicy({ Name: "no" }, false), exit(1))).toBe(false);
  });
  it("decides at daemon start: always even after a manual stop, unless-stopped only without one", () => {
    expect(restartsOnDaemonStart(restartPolicy({ Name: "always" }, false), true)).toBe(true);
    expect(restartsOnDaemonStart(restartPolicy({ Name: "unless-stopped" }, false), true)).toBe(false);
    expect(restartsOnDaemonStart(restartPolicy({ Name: "unless-stopped" }, false), false)).toBe(true);
    expect(restartsOnDaemonStart(restartPolicy({ Name: "on-failure" }, false), false)).toBe(false);
  });
  it("backs off from 100 ms, doubling to a minute, and starts over after a stable run", () => {
    const backoff = new RestartBackoff();
    const delays = Array.from({ length: 12 }, () => backoff.next("c", 50));
    expect(delays.slice(0, 4)).toEqual([100, 200, 400, 800]);
    expect(delays.at(-1)).toBe(60_000);
    expect(backoff.next("c", 10_000)).toBe(100);
    expect(backoff.next("other", 0)).toBe(100);
  });
});

describe("top and stats parsing", () => {
  it("keeps the rows of the container's PIDs, the command with its spaces", () => {
    const out =
      "UID   PID  PPID  C STIME TTY  TIME     CMD\nroot  1    0     0 10:00 ?    00:00:01 /sbin/init splash\nroot  42   1     0 10:01 ?    00:00:00 sleep 300 now\n";
    expect(parsePsOutput(out, new Set([42]))).toEqual({
      Titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
      Processes: [["root", "42", "1", "0", "10:01", "?", "00:00:00", "sleep 300 now"]],
    });
    expect(() => parsePsOutput("USER COMMAND\nroot x\n", new Set([1]))).toThrow(/PID field/);
  });
  it("reads interface counters without loopback", () => {
    const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    2048      10    1    2    0     0          0         0     4096      20    3    4    0     0       0          0
`;
    expect(parseNetDev(text)).toEqual({
      eth0: { rx_bytes: 2048, rx_packets: 10, rx_errors: 1, rx_dropped: 2, tx_bytes: 4096, tx_packets: 20, tx_errors: 3, tx_dropped: 4 },
    });
  });
});
