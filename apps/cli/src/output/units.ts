/**
 * Human-readable sizes and durations, formatted the way the docker CLI formats them (its
 * `go-units` package): decimal sizes such as "4.26MB", binary ones such as "7.6GiB", and ages such
 * as "About an hour".
 */

const DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/**
 * Go's `%.<precision>g`: `precision` significant digits, trailing zeros dropped, exponent form
 * (`1e+03`) when the exponent is below -4 or not below the precision.
 */
export function formatG(value: number, precision: number): string {
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : value < 0 ? "-Inf" : "NaN";
  if (value === 0) return "0";
  const p = Math.max(1, precision);
  // Round to p significant digits first: the exponent is that of the rounded value.
  const [mantissa = "0", exponentText = "0"] = value.toExponential(p - 1).split("e");
  const exponent = Number(exponentText);
  const trim = (digits: string) => (digits.includes(".") ? digits.replace(/\.?0+$/, "") : digits);
  if (exponent < -4 || exponent >= p) {
    const sign = exponent < 0 ? "-" : "+";
    return `${trim(mantissa)}e${sign}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  return trim(value.toFixed(Math.max(0, p - 1 - exponent)));
}

function scaled(size: number, base: number, units: string[]): [number, string] {
  let i = 0;
  while (size >= base && i < units.length - 1) {
    size /= base;
    i++;
  }
  return [size, units[i] as string];
}

/** Decimal size with `precision` significant digits: `humanSizeWithPrecision(4263936, 3)` is "4.26MB". */
export function humanSizeWithPrecision(bytes: number, precision: number): string {
  const [size, unit] = scaled(bytes, 1000, DECIMAL_UNITS);
  return `${formatG(size, precision)}${unit}`;
}

/** Decimal size with 4 significant digits (go-units `HumanSize`): progress counters, reclaimed space. */
export function humanSize(bytes: number): string {
  return humanSizeWithPrecision(bytes, 4);
}

/** Binary size with 4 significant digits (go-units `BytesSize`): "7.6GiB". */
export function bytesSize(bytes: number): string {
  const [size, unit] = scaled(bytes, 1024, BINARY_UNITS);
  return `${formatG(size, 4)}${unit}`;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** An approximate duration in words (go-units `HumanDuration`): "3 minutes", "About an hour", "2 weeks". */
export function humanDuration(milliseconds: number): string {
  const seconds = Math.trunc(milliseconds / SECOND);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(milliseconds / MINUTE);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  // Go's Duration.Round(time.Hour): halves round away from zero.
  const hours = Math.round(milliseconds / HOUR);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(milliseconds / HOUR) / 24 / 365)} years`;
}

/** "<duration> ago" for a Unix time in seconds, as the CREATED columns show it. */
export function timeAgo(unixSeconds: number, now: number = Date.now()): string {
  return `${humanDuration(now - unixSeconds * 1000)} ago`;
}

const pad2 = (n: number) => String(n).padStart(2, "0");

function offsetOf(date: Date): { sign: string; hours: string; minutes: string } {
  const offset = -date.getTimezoneOffset();
  const abs = Math.abs(offset);
  return { sign: offset < 0 ? "-" : "+", hours: pad2(Math.trunc(abs / 60)), minutes: pad2(abs % 60) };
}

function localParts(date: Date): string {
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())}`;
}

function localTime(date: Date): string {
  return `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
}

/** RFC 3339 in local time, as Go's `time.Format(time.RFC3339)`: "2024-05-01T10:00:00Z" or "…+09:00". */
export function rfc3339(unixSeconds: number): string {
  const date = new Date(unixSeconds * 1000);
  const { sign, hours, minutes } = offsetOf(date);
  const zone = date.getTimezoneOffset() === 0 ? "Z" : `${sign}${hours}:${minutes}`;
  return `${localParts(date)}T${localTime(date)}${zone}`;
}

/** Go's `time.Time.String()` for a whole second: "2024-05-01 10:00:00 +0000 UTC". */
export function goTimeString(unixSeconds: number): string {
  const date = new Date(unixSeconds * 1000);
  const { sign, hours, minutes } = offsetOf(date);
  let zone = date.getTimezoneOffset() === 0 ? "UTC" : "";
  if (!zone) {
    const named = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" })
      .formatToParts(date)
      .find((p) => p.type === "timeZoneName")?.value;
    zone = named && !named.startsWith("GMT") ? named : `${sign}${hours}`;
  }
  return `${localParts(date)} ${localTime(date)} ${sign}${hours}${minutes} ${zone}`;
}
