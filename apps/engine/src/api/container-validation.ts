// What dockerd refuses at create (400) rather than at start or, worse, when the stored record is read
// back: ports, negative or absurd resources, hostnames, tmpfs options, oversized env and labels.
// Security options (capabilities, devices, ulimits, sysctls, seccomp) are checked where they are applied.

import type { z } from "zod";
import { parsePortKey } from "../networks/ports.js";
import { badRequest } from "./errors.js";
import { checkEnv, checkLabels, type containerCreateSchema } from "./request-schemas.js";

type CreateBody = z.infer<typeof containerCreateSchema>;

// RFC 1123 host names: labels of letters, digits and inner hyphens, up to 63 each, 255 in all.
const LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

function checkHostname(value: string | undefined, field: string): void {
  if (value === undefined || value === "") return;
  if (value.length > 255 || !value.split(".").every((label) => LABEL.test(label)))
    throw badRequest(`invalid ${field} ${JSON.stringify(value)}: it must be a valid RFC 1123 hostname`);
}

function checkPortKeys(keys: string[], field: string): void {
  for (const key of keys) {
    try {
      parsePortKey(key);
    } catch {
      throw badRequest(`invalid ${field}: invalid port specification: "${key}"`);
    }
  }
}

/** `size=` and `mode=` of a tmpfs mount's options (the runtime applies the rest). */
function checkTmpfs(tmpfs: Record<string, string> | null | undefined): void {
  for (const [path, options] of Object.entries(tmpfs ?? {})) {
    if (!path.startsWith("/")) throw badRequest(`invalid HostConfig.Tmpfs: mount path ${JSON.stringify(path)} must be absolute`);
    for (const option of options.split(",").filter(Boolean)) {
      const [key, value = ""] = option.split("=", 2) as [string, string?];
      if (key === "size" && !/^[1-9][0-9]{0,15}[kmg]?$|^[1-9][0-9]?%$|^100%$/i.test(value))
        throw badRequest(
          `invalid HostConfig.Tmpfs for ${path}: size ${JSON.stringify(value)}: want a positive size like 64m or a percentage`,
        );
      if (key === "mode" && !/^[0-7]{3,4}$/.test(value))
        throw badRequest(`invalid HostConfig.Tmpfs for ${path}: mode ${JSON.stringify(value)}: want octal permissions like 1777`);
    }
  }
}

export function validateContainerCreate(body: CreateBody): void {
  checkHostname(body.Hostname, "Hostname");
  checkHostname(body.Domainname, "Domainname");
  checkPortKeys(Object.keys(body.ExposedPorts ?? {}), "ExposedPorts");
  const host = body.HostConfig ?? {};
  checkPortKeys(Object.keys(host.PortBindings ?? {}), "HostConfig.PortBindings");
  for (const [key, bindings] of Object.entries(host.PortBindings ?? {})) {
    for (const binding of bindings ?? []) {
      const port = binding.HostPort ?? "";
      if (port !== "" && !(/^[0-9]{1,5}$/.test(port) && Number(port) <= 65535))
        throw badRequest(`invalid HostConfig.PortBindings: invalid host port "${port}" for ${key}`);
    }
  }
  const nonNegative = ["Memory", "MemoryReservation", "NanoCpus", "CpuShares", "CpuQuota", "CpuPeriod"] as const;
  for (const field of nonNegative) {
    const value = host[field];
    if (typeof value === "number" && value < 0) throw badRequest(`invalid HostConfig.${field}: ${value}: it must not be negative`);
  }
  if (typeof host.MemorySwap === "number" && host.MemorySwap < -1)
    throw badRequest(`invalid HostConfig.MemorySwap: ${host.MemorySwap}: -1 (unlimited) or a size`);
  if (typeof host.PidsLimit === "number" && host.PidsLimit < -1)
    throw badRequest(`invalid HostConfig.PidsLimit: ${host.PidsLimit}: -1 or 0 (unlimited) or a positive count`);
  checkTmpfs(host.Tmpfs);
  checkEnv(body.Env, "Env", [...(body.Cmd ?? []), ...(body.Entrypoint ?? [])]);
  checkLabels(body.Labels, "Labels");
}
