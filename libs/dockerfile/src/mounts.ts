// RUN --mount=… and RUN --device=… values (reference: "RUN --mount", "RUN --device").
// A mount is a CSV list of key=value options; each value may use variables,
// which the builder expands at build time.

import { withSuggestion } from "./suggest.js";
import { parseGoBool, parseUint32, quote, ramInBytes } from "./text.js";
import type { Device, Mount, MountType } from "./types.js";

const MOUNT_TYPES: readonly MountType[] = ["bind", "cache", "tmpfs", "secret", "ssh"];
const SHARING = ["shared", "private", "locked"] as const;
const MOUNT_KEYS = [
  "type",
  "from",
  "source",
  "target",
  "readonly",
  "id",
  "sharing",
  "required",
  "size",
  "mode",
  "uid",
  "gid",
  "src",
  "dst",
  "destination",
  "ro",
  "rw",
  "readwrite",
  "env",
];

/** One CSV record, as Go's encoding/csv reads it (quoted fields, `""` for a quote). */
export function csvFields(value: string, what: string): string[] {
  if (value === "") return [];
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (value[i] === '"') {
      i++;
      for (;;) {
        const q = value.indexOf('"', i);
        if (q < 0) throw new Error(`failed to parse csv ${what}: extraneous or missing " in quoted-field`);
        field += value.slice(i, q);
        i = q + 1;
        if (value[i] === '"') {
          field += '"';
          i++;
          continue;
        }
        break;
      }
      if (i < value.length && value[i] !== ",") throw new Error(`failed to parse csv ${what}: extraneous or missing " in quoted-field`);
    } else {
      const comma = value.indexOf(",", i);
      const end = comma < 0 ? value.length : comma;
      field = value.slice(i, end);
      if (field.includes('"')) throw new Error(`failed to parse csv ${what}: bare " in non-quoted-field`);
      i = end;
    }
    fields.push(field);
    if (i >= value.length) return fields;
    i++; // the comma
    if (i === value.length) {
      fields.push("");
      return fields;
    }
  }
}

/**
 * Parses a `--mount` value. With `expand`, every value is expanded and checked
 * (build time). Without it (parse time), values that use variables are kept as
 * written and checked later; `from` may not use variables at all, as in BuildKit.
 */
export function parseMount(spec: string, expand?: (word: string) => string): Mount {
  const mount: Mount = { spec, needsExpansion: false, type: "bind", readonly: false, required: false };
  let roAuto = true;
  const deferred = (value: string) => expand === undefined && value.includes("$");
  // At parse time a spec with variables is only checked field by field: the
  // mount type (and so what is allowed) may depend on a variable.
  const lenient = expand === undefined && spec.includes("$");
  const typeCheck = (ok: boolean, message: string) => {
    if (!ok && !lenient) throw new Error(message);
  };

  for (const field of csvFields(spec, "mounts")) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      switch (key) {
        case "readonly":
        case "ro":
          mount.readonly = true;
          roAuto = false;
          continue;
        case "readwrite":
        case "rw":
          mount.readonly = false;
          roAuto = false;
          continue;
        case "required":
          typeCheck(mount.type === "secret" || mount.type === "ssh", `unexpected key '${key}' for mount type '${mount.type}'`);
          mount.required = true;
          continue;
        default:
          throw new Error(`invalid field '${field}' must be a key=value pair`);
      }
    }
    let value = field.slice(eq + 1);
    if (expand) value = expand(value);
    else if (key === "from") {
      const dollar = value.indexOf("$");
      if (dollar !== -1 && dollar !== value.length - 1) {
        throw new Error(`'${key}' doesn't support variable expansion, define alias stage instead`);
      }
    }
    // Keys whose value is a plain string are taken as written, expanded now or later alike.
    if (setStringField(mount, key, value)) {
      if (deferred(value)) mount.needsExpansion = true;
      continue;
    }
    if (deferred(value)) {
      mount.needsExpansion = true;
      switch (key) {
        case "readonly":
        case "ro":
        case "readwrite":
        case "rw":
          roAuto = false;
          break;
        default:
          if (!MOUNT_KEYS.includes(key)) throw unexpectedKey(key, field);
      }
      continue;
    }
    switch (key) {
      case "type": {
        const type = value.toLowerCase() as MountType;
        if (!MOUNT_TYPES.includes(type))
          throw new Error(withSuggestion(`unsupported mount type ${quote(value)}`, value, MOUNT_TYPES, true));
        mount.type = type;
        break;
      }
      case "readonly":
      case "ro":
        mount.readonly = boolValue(key, value);
        roAuto = false;
        break;
      case "readwrite":
      case "rw":
        mount.readonly = !boolValue(key, value);
        roAuto = false;
        break;
      case "required":
        typeCheck(mount.type === "secret" || mount.type === "ssh", `unexpected key '${key}' for mount type '${mount.type}'`);
        mount.required = boolValue(key, value);
        break;
      case "size": {
        typeCheck(mount.type === "tmpfs", `unexpected key '${key}' for mount type '${mount.type}'`);
        const size = ramInBytes(value);
        if (size === undefined) throw new Error(`invalid value for ${key}: ${value}`);
        mount.size = size;
        break;
      }
      case "sharing": {
        const sharing = value.toLowerCase() as (typeof SHARING)[number];
        if (!SHARING.includes(sharing)) throw new Error(withSuggestion(`unsupported sharing value ${quote(value)}`, value, SHARING, true));
        mount.sharing = sharing;
        break;
      }
      case "mode": {
        const mode = parseUint32(value, 8);
        if (mode === undefined) throw new Error(`invalid value ${value} for mode`);
        mount.mode = mode;
        break;
      }
      case "uid":
      case "gid": {
        const id = parseUint32(value, 10);
        if (id === undefined) throw new Error(`invalid value ${value} for ${key}`);
        mount[key] = id;
        break;
      }
      default:
        throw unexpectedKey(key, field);
    }
  }

  if (roAuto) mount.readonly = !(mount.type === "cache" || mount.type === "tmpfs");
  if (lenient) return mount;
  const fileInfoAllowed = mount.type === "secret" || mount.type === "ssh" || mount.type === "cache";
  if (!fileInfoAllowed) {
    for (const key of ["mode", "uid", "gid"] as const) {
      if (mount[key] !== undefined) throw new Error(`${key} not allowed for ${quote(mount.type)} type mounts`);
    }
  }
  if (mount.type === "secret") {
    if (mount.from !== undefined && mount.from !== "") throw new Error("secret mount should not have a from");
    if (mount.sharing !== undefined) throw new Error("secret mount should not define sharing");
    if (!mount.source && !mount.target && !mount.id) {
      throw new Error("invalid secret mount. one of source, target required");
    }
    if (mount.source && mount.id) throw new Error("both source and id can't be set");
  }
  if (mount.sharing !== undefined && mount.type !== "cache") throw new Error(`invalid cache sharing set for ${mount.type} mount`);
  return mount;
}

/** Sets the string-valued key (or one of its aliases) on `mount`; false when `key` is not one. */
function setStringField(mount: Mount, key: string, value: string): boolean {
  switch (key) {
    case "from":
      mount.from = value;
      return true;
    case "source":
    case "src":
      mount.source = value;
      return true;
    case "target":
    case "dst":
    case "destination":
      mount.target = value;
      return true;
    case "id":
      mount.id = value;
      return true;
    case "env":
      mount.env = value;
      return true;
    default:
      return false;
  }
}

function unexpectedKey(key: string, field: string): Error {
  return new Error(withSuggestion(`unexpected key '${key}' in '${field}'`, key, MOUNT_KEYS, true));
}

function boolValue(key: string, value: string): boolean {
  const b = parseGoBool(value);
  if (b === undefined) throw new Error(`invalid value for ${key}: ${value}`);
  return b;
}

/** Parses a `--device` value: `name[,required[=bool]]` or `name=…,required=…`. */
export function parseDevice(spec: string): Device {
  const device: Device = { name: "", required: false };
  for (const field of csvFields(spec, "devices")) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const value = field.slice(eq + 1);
    if (eq < 0) {
      if (key === "required") device.required = true;
      else if (device.name === "") device.name = field;
      else throw new Error(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    if (key === "name") {
      if (device.name !== "") throw new Error(`device name already set to ${device.name}`);
      device.name = value;
    } else if (key === "required") {
      device.required = boolValue(key, value);
    } else if (device.name === "") {
      device.name = field;
    } else {
      throw new Error(withSuggestion(`unexpected key '${key}' in '${field}'`, key, ["name", "required"], true));
    }
  }
  return device;
}
