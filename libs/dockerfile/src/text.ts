// Small helpers that reproduce Go standard-library behaviour the Dockerfile
// grammar depends on (unicode.IsSpace, strings.TrimSpace, strconv.ParseBool,
// time.ParseDuration, go-units RAMInBytes), so parsing matches BuildKit.

/** Go's unicode.IsSpace: the Unicode White_Space property. */
export function isSpace(ch: string | undefined): boolean {
  if (ch === undefined) return false;
  switch (ch) {
    case "\t":
    case "\n":
    case "\v":
    case "\f":
    case "\r":
    case " ":
    case "\u0085":
    case "\u00a0":
    case "\u1680":
    case "\u2028":
    case "\u2029":
    case "\u202f":
    case "\u205f":
    case "\u3000":
      return true;
    default:
      return ch >= "\u2000" && ch <= "\u200a";
  }
}

export function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length && isSpace(s[i])) i++;
  return s.slice(i);
}

export function trimRightSpace(s: string): string {
  let i = s.length;
  while (i > 0 && isSpace(s[i - 1])) i--;
  return s.slice(0, i);
}

export function trimSpace(s: string): string {
  return trimRightSpace(trimLeftSpace(s));
}

/** Characters of BuildKit's `reWhitespace` ([\t\v\f\r ]+), used to split instruction words. */
export const WHITESPACE_RUN = /[\t\v\f\r ]+/;

/** Splits at the first run of `[\t\v\f\r ]` (Go's reWhitespace.Split(s, 2)). */
export function splitWhitespaceOnce(s: string): string[] {
  const m = WHITESPACE_RUN.exec(s);
  if (!m) return [s];
  return [s.slice(0, m.index), s.slice(m.index + m[0].length)];
}

/** strconv.ParseBool. */
export function parseGoBool(value: string): boolean | undefined {
  switch (value) {
    case "1":
    case "t":
    case "T":
    case "TRUE":
    case "true":
    case "True":
      return true;
    case "0":
    case "f":
    case "F":
    case "FALSE":
    case "false":
    case "False":
      return false;
    default:
      return undefined;
  }
}

/** strconv.ParseUint(value, base, 32) for base 8 or 10: plain digits, no sign, no prefix. */
export function parseUint32(value: string, base: 8 | 10): number | undefined {
  const digits = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!digits.test(value)) return undefined;
  const n = Number.parseInt(value, base);
  return n <= 0xffffffff ? n : undefined;
}

/** strconv.ParseInt(value, 10, 32). */
export function parseInt32(value: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(value)) return undefined;
  const n = Number.parseInt(value, 10);
  return n >= -0x80000000 && n <= 0x7fffffff ? n : undefined;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3,
  "\u03bcs": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/**
 * Go's time.ParseDuration, in nanoseconds: "1h30m", "1.5s", "300ms", "-2m", "0".
 * Throws with Go's message on malformed input.
 */
export function parseGoDuration(input: string): number {
  const invalid = () => new Error(`time: invalid duration ${JSON.stringify(input)}`);
  let s = input;
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") throw invalid();
  let total = 0;
  while (s !== "") {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s);
    const whole = m?.[1] ?? "";
    const frac = m?.[2];
    if (whole === "" && (frac === undefined || frac === "")) throw invalid();
    s = s.slice(m![0].length);
    const unit = /^[^0-9.]+/.exec(s)?.[0];
    if (unit === undefined) throw new Error(`time: missing unit in duration ${JSON.stringify(input)}`);
    const scale = DURATION_UNITS[unit];
    if (scale === undefined) throw new Error(`time: unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(input)}`);
    s = s.slice(unit.length);
    let value = (whole === "" ? 0 : Number(whole)) * scale;
    if (frac) value += Math.floor(Number(`0.${frac}`) * scale);
    total += value;
    if (!Number.isSafeInteger(Math.floor(total))) throw invalid();
  }
  return sign * Math.floor(total);
}

/** go-units RAMInBytes: "64m", "1.5g", "512k", "2GiB" (binary multiples). */
export function ramInBytes(size: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(size);
  if (!m) return undefined;
  const value = Number.parseFloat(m[1]!);
  if (Number.isNaN(value)) return undefined;
  const unit = (m[2] ?? "").toLowerCase();
  const power = unit === "" ? 0 : "kmgtp".indexOf(unit) + 1;
  return Math.trunc(value * 1024 ** power);
}

/** Go %q-style quoting, close enough for messages. */
export function quote(s: string): string {
  return JSON.stringify(s);
}
