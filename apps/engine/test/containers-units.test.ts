import { describe, expect, it } from "vitest";
import { humanDuration } from "../src/api/containers.js";
import { matchesContainerFilters } from "../src/containers/filters.js";
import { demultiplex, dockerTimestamp, encodeEntry, multiplexFrame, parseRecords, tailLines } from "../src/containers/logs.js";
import { newContainerId, randomName, validName } from "../src/containers/names.js";

describe("container names and IDs", () => {
  it("random names are adjective_surname, with a digit on retries, and valid names", () => {
    for (let i = 0; i < 50; i++) {
      const name = randomName();
      expect(name).toMatch(/^[a-z]+_[a-z]+$/);
      expect(validName(name)).toBe(true);
      expect(randomName(1)).toMatch(/^[a-z]+_[a-z]+\d$/);
    }
  });
  it("IDs are 64 hex digits and names follow Docker's pattern", () => {
    expect(newContainerId()).toMatch(/^[0-9a-f]{64}$/);
    expect(validName("/web.1_a-b")).toBe(true);
    expect(validName("a")).toBe(false);
    expect(validName("-bad")).toBe(false);
    expect(validName("sp ace")).toBe(false);
  });
});

describe("container list filters", () => {
  const c = {
    id: "abcdef01",
    name: "web",
    status: "exited",
    exitCode: 3,
    imageId: "sha256:1234",
    imageName: "busybox",
    labels: { a: "1", b: "" },
  };
  it("combine filters with AND and values with OR", () => {
    expect(matchesContainerFilters(c, { status: ["running", "exited"], exited: ["3"] })).toBe(true);
    expect(matchesContainerFilters(c, { status: ["running"] })).toBe(false);
    expect(matchesContainerFilters(c, { name: ["^/we"], id: ["abc"] })).toBe(true);
    expect(matchesContainerFilters(c, { label: ["a=1", "b"] })).toBe(true);
    expect(matchesContainerFilters(c, { label: ["a=2"] })).toBe(false);
    expect(matchesContainerFilters(c, { ancestor: ["busybox"] })).toBe(true);
    expect(matchesContainerFilters(c, { ancestor: ["1234"] })).toBe(true);
    expect(() => matchesContainerFilters(c, { status: ["sleepy"] })).toThrow(/invalid filter/);
    expect(() => matchesContainerFilters(c, { bogus: ["x"] })).toThrow(/invalid filter/);
  });
});

describe("the log multiplexer", () => {
  it("frames have an 8-byte header: stream, three zero bytes, big-endian length", () => {
    const frame = multiplexFrame(2, "oops\n");
    expect([...frame.subarray(0, 8)]).toEqual([2, 0, 0, 0, 0, 0, 0, 5]);
    expect(frame.subarray(8).toString()).toBe("oops\n");
    const both = Buffer.concat([multiplexFrame(1, "a"), multiplexFrame(2, "bc"), Buffer.from([1, 0, 0])]);
    expect(demultiplex(both).map((f) => [f.stream, f.data.toString()])).toEqual([
      [1, "a"],
      [2, "bc"],
    ]);
  });
  it("k8s-file records become entries; tail counts whole lines; TTYs get raw bytes", () => {
    const log = [
      "2026-01-02T03:04:05.123456789+00:00 stdout F one",
      "2026-01-02T03:04:05.2+00:00 stderr P par",
      "2026-01-02T03:04:05.3+00:00 stderr F tial",
      "2026-01-02T03:04:05.4+00:00 stdout F three",
      "",
    ].join("\n");
    const entries = parseRecords(log);
    expect(entries.map((e) => e.data)).toEqual(["one\n", "par", "tial\n", "three\n"]);
    expect(tailLines(entries, "2").map((e) => [e.stream, e.data])).toEqual([
      ["stderr", "partial\n"],
      ["stdout", "three\n"],
    ]);
    expect(tailLines(entries, "all")).toHaveLength(3);
    expect(tailLines(entries, "0")).toEqual([]);
    const first = entries[0]!;
    expect(encodeEntry(first, { tty: true, timestamps: false }).toString()).toBe("one\n");
    expect(encodeEntry(first, { tty: true, timestamps: true }).toString()).toBe("2026-01-02T03:04:05.123456789Z one\n");
    expect(dockerTimestamp("2026-01-02T05:04:05.5+02:00")).toBe("2026-01-02T03:04:05.500000000Z");
  });
  it("durations read as docker ps shows them", () => {
    expect(humanDuration(500)).toBe("Less than a second");
    expect(humanDuration(5000)).toBe("5 seconds");
    expect(humanDuration(60_000)).toBe("About a minute");
    expect(humanDuration(3 * 3_600_000)).toBe("3 hours");
  });
});
