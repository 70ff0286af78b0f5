// `GET /containers/json?filters=`: the filters dockerd applies to its list (id, name, label, status,
// exited, ancestor by image ID or name).

export interface FilterableContainer {
  id: string;
  name: string;
  status: string;
  exitCode: number;
  imageId: string;
  imageName: string;
  labels: Record<string, string>;
  /** starting, healthy, unhealthy or none (no health check). */
  health?: string;
}

export const CONTAINER_FILTERS = ["id", "name", "label", "status", "exited", "ancestor", "health"];
const HEALTH_STATUSES = ["starting", "healthy", "unhealthy", "none"];
const STATUSES = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];

export class FilterError extends Error {}

function matchesLabel(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf("=");
  return eq === -1 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

/** True when the container passes every filter: values of one filter are alternatives (OR), filters combine with AND. */
export function matchesContainerFilters(container: FilterableContainer, filters: Record<string, string[]>): boolean {
  for (const [name, values] of Object.entries(filters)) {
    if (values.length === 0) continue;
    let ok: boolean;
    switch (name) {
      case "id":
        ok = values.some((v) => container.id.startsWith(v));
        break;
      case "name":
        // dockerd matches names as regular expressions against "/name".
        ok = values.some((v) => {
          try {
            return new RegExp(v).test(`/${container.name}`);
          } catch {
            throw new FilterError(`invalid filter 'name=${v}'`);
          }
        });
        break;
      case "label":
        ok = values.every((v) => matchesLabel(container.labels, v));
        break;
      case "status":
        for (const v of values) if (!STATUSES.includes(v)) throw new FilterError(`invalid filter 'status=${v}'`);
        ok = values.includes(container.status);
        break;
      case "exited":
        ok = container.status === "exited" && values.some((v) => Number(v) === container.exitCode);
        break;
      case "ancestor":
        ok = values.some((v) => container.imageId === v || container.imageId.slice(7).startsWith(v) || container.imageName === v);
        break;
      case "health":
        for (const v of values) if (!HEALTH_STATUSES.includes(v)) throw new FilterError(`Unrecognised filter value for health: ${v}`);
        ok = values.includes(container.health ?? "none");
        break;
      default:
        throw new FilterError(`invalid filter '${name}'`);
    }
    if (!ok) return false;
  }
  return true;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
const RFC3339 = /^(\d{4}-\d\d-\d\d)(?:T(\d\d:\d\d)(?::(\d\d)(?:\.(\d+))?)?(Z|[+-]\d\d:\d\d)?)?$/;

/** Nanoseconds since the epoch of an RFC 3339 date or date-time, the fraction kept exactly; undefined if it is not one. */
export function rfc3339Nanos(text: string): bigint | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [, date, hm, seconds, fraction, zone] = match;
  const ms = Date.parse(`${date}T${hm ?? "00:00"}:${seconds ?? "00"}${zone ?? "Z"}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((fraction ?? "").slice(0, 9).padEnd(9, "0"));
}

/**
 * A point in time as Docker's `since`/`until` take it (timetypes.GetTimestamp): unix seconds with an
 * optional fraction, a Go duration counted back from `now` ("10m", "1h30m"), or an RFC 3339 date or
 * date-time. Nanoseconds since the epoch: log records carry nanoseconds, and a client that sends
 * one record's time back must get exactly that record.
 */
export function parseTimestamp(value: string, now = Date.now()): bigint {
  const text = value.trim();
  const unix = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (unix) return BigInt(unix[1] as string) * 1_000_000_000n + BigInt((unix[2] ?? "").slice(0, 9).padEnd(9, "0"));
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) {
    let seconds = 0;
    for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g))
      seconds += Number(amount) * (DURATION_UNITS[unit as string] ?? 0);
    return BigInt(now) * 1_000_000n - BigInt(Math.round(seconds * 1e9));
  }
  const nanos = rfc3339Nanos(text);
  if (nanos === undefined)
    throw new FilterError(`invalid timestamp ${JSON.stringify(value)}: use unix seconds, a duration like 10m, or RFC 3339`);
  return nanos;
}
