// `GET /events?filters=`: which events a subscriber receives, matched as dockerd's events filter does
// (moby daemon/events/filter.go): values of one filter are alternatives, filters combine with AND.
import type { EngineEvent } from "./log.js";

export const EVENT_FILTERS = [
  "config",
  "container",
  "daemon",
  "event",
  "image",
  "label",
  "network",
  "node",
  "plugin",
  "scope",
  "secret",
  "service",
  "type",
  "volume",
];
const EVENT_TYPES = ["container", "image", "volume", "network", "daemon", "plugin", "node", "service", "secret", "config", "builder"];
/** Actions that carry a suffix ("exec_start: sh -c …"): a filter on the bare name matches them all (moby #25798). */
const SUFFIXED = ["health_status", "exec_create", "exec_start"];

export class EventFilterError extends Error {}

export type EventFilters = Record<string, string[]>;

export function checkEventFilters(filters: EventFilters): void {
  for (const [name, values] of Object.entries(filters)) {
    if (!EVENT_FILTERS.includes(name)) throw new EventFilterError(`invalid filter '${name}'`);
    if (name === "type") for (const v of values) if (!EVENT_TYPES.includes(v)) throw new EventFilterError(`invalid filter 'type=${v}'`);
    if (name === "scope")
      for (const v of values) if (v !== "local" && v !== "swarm") throw new EventFilterError(`invalid filter 'scope=${v}'`);
  }
}

const has = (filters: EventFilters, name: string) => (filters[name]?.length ?? 0) > 0;

/** No such filter, or one of its values equals `source`. */
function exact(filters: EventFilters, name: string, source: string | undefined): boolean {
  if (!has(filters, name)) return true;
  return source !== undefined && (filters[name] ?? []).includes(source);
}

/** No such filter, or `source` equals or starts with one of its values (IDs by prefix). */
function fuzzy(filters: EventFilters, name: string, source: string | undefined): boolean {
  if (!has(filters, name)) return true;
  return source !== undefined && (filters[name] ?? []).some((v) => source === v || source.startsWith(v));
}

/** The actor named by ID (prefix) or `name` attribute. */
function actorIs(filters: EventFilters, name: string, e: EngineEvent): boolean {
  return fuzzy(filters, name, e.Actor.ID) || fuzzy(filters, name, e.Actor.Attributes.name);
}

const stripTag = (ref: string | undefined) => ref?.replace(/(@.*|:[^:/]*)$/, "");

function matchesImage(filters: EventFilters, e: EngineEvent): boolean {
  if (!has(filters, "image")) return true;
  const name = e.Actor.Attributes[e.Type === "image" ? "name" : "image"];
  return [e.Actor.ID, name, stripTag(e.Actor.ID), stripTag(name)].some((s) => s !== undefined && filters.image?.includes(s));
}

function matchesEvent(filters: EventFilters, e: EngineEvent): boolean {
  if (!has(filters, "event")) return true;
  if (filters.event?.some((v) => SUFFIXED.includes(v))) return fuzzy(filters, "event", e.Action);
  return exact(filters, "event", e.Action);
}

/** Every `label` value ("key" or "key=value") must match the actor's attributes. */
function matchesLabels(filters: EventFilters, e: EngineEvent): boolean {
  return (filters.label ?? []).every((l) => {
    const eq = l.indexOf("=");
    return eq === -1 ? l in e.Actor.Attributes : e.Actor.Attributes[l.slice(0, eq)] === l.slice(eq + 1);
  });
}

export function matchesEventFilters(filters: EventFilters, e: EngineEvent): boolean {
  return (
    matchesEvent(filters, e) &&
    exact(filters, "type", e.Type) &&
    exact(filters, "scope", e.scope) &&
    ["daemon", "container", "plugin", "volume", "network", "node", "service", "secret", "config"].every((name) =>
      actorIs(filters, name, e),
    ) &&
    matchesImage(filters, e) &&
    matchesLabels(filters, e)
  );
}
