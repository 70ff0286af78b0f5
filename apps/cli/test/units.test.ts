import { describe, expect, it } from "vitest";
import {
  bytesSize,
  formatG,
  goTimeString,
  humanDuration,
  humanSize,
  humanSizeWithPrecision,
  rfc3339,
  timeAgo,
} from "../src/output/units.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const MONTH = 30 * DAY;
const YEAR = 365 * DAY;

describe("formatG (Go's %.Ng)", () => {
  it.each([
    [4.263936, 3, "4.26"],
    [4, 3, "4"],
    [4.5, 4, "4.5"],
    [123.456, 3, "123"],
    [999.999, 3, "1e+03"],
    [999.5, 4, "999.5"],
    [0.000012345, 3, "1.23e-05"],
    [0.0012345, 3, "0.00123"],
    [0, 3, "0"],
    [10, 3, "10"],
    [100, 2, "1e+02"],
  ])("%d with precision %d is %s", (value, precision, expected) => {
    expect(formatG(value, precision)).toBe(expected);
  });
});

describe("sizes", () => {
  it("formats decimal sizes with 3 significant digits as the images and history columns do", () => {
    expect(humanSizeWithPrecision(4_263_936, 3)).toBe("4.26MB");
    expect(humanSizeWithPrecision(0, 3)).toBe("0B");
    expect(humanSizeWithPrecision(999, 3)).toBe("999B");
    expect(humanSizeWithPrecision(1000, 3)).toBe("1kB");
    expect(humanSizeWithPrecision(1_234_567_890, 3)).toBe("1.23GB");
    expect(humanSizeWithPrecision(77_800_000, 3)).toBe("77.8MB");
  });

  it("formats with 4 digits by default (go-units HumanSize)", () => {
    expect(humanSize(4_263_936)).toBe("4.264MB");
    expect(humanSize(2_746_000)).toBe("2.746MB");
    expect(humanSize(796_000)).toBe("796kB");
    expect(humanSize(1_000_000)).toBe("1MB");
    expect(humanSize(0)).toBe("0B");
  });

  it("formats binary sizes (go-units BytesSize)", () => {
    expect(bytesSize(1024)).toBe("1KiB");
    expect(bytesSize(44 * 1024)).toBe("44KiB");
    expect(bytesSize(8_162_000_000)).toBe("7.601GiB");
    expect(bytesSize(512)).toBe("512B");
  });
});

describe("humanDuration (go-units HumanDuration)", () => {
  // The cases of go-units' own duration_test.go.
  it.each([
    [450, "Less than a second"],
    [1 * SECOND, "1 second"],
    [45 * SECOND, "45 seconds"],
    [59 * SECOND, "59 seconds"],
    [60 * SECOND, "About a minute"],
    [3 * MINUTE, "3 minutes"],
    [35 * MINUTE + 40 * SECOND, "35 minutes"],
    [59 * MINUTE, "59 minutes"],
    [1 * HOUR, "About an hour"],
    [1 * HOUR + 29 * MINUTE, "About an hour"],
    [1 * HOUR + 31 * MINUTE, "2 hours"],
    [3 * HOUR + 29 * MINUTE, "3 hours"],
    [3 * HOUR + 31 * MINUTE, "4 hours"],
    [24 * HOUR, "24 hours"],
    [DAY + 12 * HOUR, "36 hours"],
    [2 * DAY, "2 days"],
    [13 * DAY + 5 * HOUR, "13 days"],
    [2 * WEEK, "2 weeks"],
    [4 * WEEK + 3 * DAY, "4 weeks"],
    [MONTH, "4 weeks"],
    [MONTH + 2 * WEEK, "6 weeks"],
    [2 * MONTH, "2 months"],
    [5 * MONTH + 2 * WEEK, "5 months"],
    [24 * MONTH, "24 months"],
    [24 * MONTH + 2 * WEEK, "2 years"],
    [3 * YEAR + 2 * MONTH, "3 years"],
  ])("%d ms is %s", (ms, expected) => {
    expect(humanDuration(ms)).toBe(expected);
  });

  it("says how long ago a Unix time was", () => {
    const now = Date.UTC(2024, 4, 1, 12, 0, 0);
    expect(timeAgo(now / 1000 - 3600, now)).toBe("About an hour ago");
    expect(timeAgo(now / 1000 - 2 * 86400, now)).toBe("2 days ago");
  });
});

describe("timestamps", () => {
  it("prints RFC 3339 and Go's Time.String in local time", () => {
    const previous = process.env.TZ;
    process.env.TZ = "UTC";
    try {
      const t = Date.UTC(2024, 4, 1, 10, 20, 30) / 1000;
      expect(rfc3339(t)).toBe("2024-05-01T10:20:30Z");
      expect(goTimeString(t)).toBe("2024-05-01 10:20:30 +0000 UTC");
      process.env.TZ = "Asia/Tokyo";
      expect(rfc3339(t)).toBe("2024-05-01T19:20:30+09:00");
      expect(goTimeString(t)).toMatch(/^2024-05-01 19:20:30 \+0900 /);
    } finally {
      if (previous === undefined) delete process.env.TZ;
      else process.env.TZ = previous;
    }
  });
});
