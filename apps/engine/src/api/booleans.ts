// Booleans in the Engine API as dockerd reads them, in one place.
import { badRequest } from "./errors.js";

/**
 * A query parameter as dockerd's httputils.BoolValue reads it: trimmed and case-insensitive, "", "0",
 * "no", "false" and "none" are false and anything else is true (so `?force=yes`, `?all=TRUE`);
 * `fallback` when the parameter is absent (BoolValueOrDefault).
 */
export function queryBool(value: string | undefined, fallback = false): boolean {
  if (value === undefined) return fallback;
  const text = value.trim().toLowerCase();
  return !(text === "" || text === "0" || text === "no" || text === "false" || text === "none");
}

/**
 * A boolean filter value (`dangling=true`) as dockerd's filters.GetBoolOrDefault reads it: "true"/"1"
 * or "false"/"0", case-insensitive; anything else is an invalid filter (400).
 */
export function filterBool(name: string, value: string): boolean {
  const text = value.toLowerCase();
  if (text === "true" || text === "1") return true;
  if (text === "false" || text === "0") return false;
  throw badRequest(`invalid filter '${name}=${value}'`);
}
