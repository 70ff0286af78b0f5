// Published ports: HostConfig.PortBindings and PublishAllPorts (swagger `PortMap`, `PortBinding`)
// into concrete bindings, random host ports chosen, and a check that each host port is free.
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { badRequest } from "../api/errors.js";

export type Protocol = "tcp" | "udp";

/** One published port as the engine keeps it: hostPort 0 means "pick one at start". */
export interface PortBinding {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
}

export type PortMap = Record<string, { HostIp?: string; HostPort?: string }[] | null>;

/** `80/tcp` → port and protocol (tcp when omitted). */
export function parsePortKey(key: string): { port: number; protocol: Protocol } {
  const match = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(key);
  const port = Number(match?.[1]);
  if (!match || port < 1 || port > 65535) throw badRequest(`invalid port specification: "${key}"`);
  const protocol = (match[2] ?? "tcp").toLowerCase();
  if (protocol === "sctp") throw badRequest("sctp ports are not supported");
  return { port, protocol: protocol as Protocol };
}

/** The requested bindings: explicit ones, plus every exposed port on a random host port with PublishAllPorts. */
export function requestedBindings(portBindings: PortMap | null | undefined, publishAll: boolean, exposed: string[]): PortBinding[] {
  const result: PortBinding[] = [];
  const seen = new Set<string>();
  for (const [key, list] of Object.entries(portBindings ?? {})) {
    const { port, protocol } = parsePortKey(key);
    seen.add(`${port}/${protocol}`);
    for (const binding of list && list.length > 0 ? list : [{}]) {
      const hostIp = binding.HostIp || "0.0.0.0";
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(hostIp)) throw badRequest(`invalid host IP for a published port: ${hostIp} (IPv4 only)`);
      const text = binding.HostPort ?? "";
      // A range "8000-8010" binds the first free one of it; a single port must be exactly that port.
      const range = /^(\d+)-(\d+)$/.exec(text);
      const hostPort = text === "" ? 0 : range ? Number(range[1]) : Number(text);
      if (!Number.isInteger(hostPort) || hostPort < 0 || hostPort > 65535) throw badRequest(`invalid host port: ${text}`);
      result.push({ hostIp, hostPort, containerPort: port, protocol });
    }
  }
  if (publishAll) {
    for (const key of exposed) {
      const { port, protocol } = parsePortKey(key);
      if (seen.has(`${port}/${protocol}`)) continue;
      result.push({ hostIp: "0.0.0.0", hostPort: 0, containerPort: port, protocol });
    }
  }
  return result;
}

function clash(a: { hostIp: string; hostPort: number; protocol: string }, b: typeof a): boolean {
  return (
    a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIp === b.hostIp || a.hostIp === "0.0.0.0" || b.hostIp === "0.0.0.0")
  );
}

/** True when a socket can bind the port on the host right now. */
export function portFree(hostIp: string, port: number, protocol: Protocol): Promise<boolean> {
  return new Promise((resolve) => {
    if (protocol === "udp") {
      const socket = createSocket("udp4");
      socket.once("error", () => resolve(false));
      socket.bind({ address: hostIp, port, exclusive: true }, () => socket.close(() => resolve(true)));
      return;
    }
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ host: hostIp, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (low && high && low < high) return [low, high];
  } catch {
    // use the kernel's default below
  }
  return [32768, 60999];
}

export class PortAllocationError extends Error {}

/**
 * Concrete bindings for a container: each explicit host port checked against the ports other
 * containers publish (`taken`) and against the host's sockets; each random one picked from the
 * ephemeral range, free in both. Throws Docker's "port is already allocated" error.
 */
export async function allocatePorts(requested: PortBinding[], taken: PortBinding[]): Promise<PortBinding[]> {
  const result: PortBinding[] = [];
  const busy = (b: PortBinding) => [...taken, ...result].some((t) => clash(t, b));
  for (const r of requested) {
    if (r.hostPort !== 0) {
      if (busy(r) || !(await portFree(r.hostIp, r.hostPort, r.protocol)))
        throw new PortAllocationError(`Bind for ${r.hostIp}:${r.hostPort} failed: port is already allocated`);
      result.push(r);
      continue;
    }
    const [low, high] = ephemeralRange();
    let chosen: PortBinding | undefined;
    for (let attempt = 0; attempt < 64 && !chosen; attempt++) {
      const candidate = { ...r, hostPort: low + Math.floor(Math.random() * (high - low + 1)) };
      if (!busy(candidate) && (await portFree(candidate.hostIp, candidate.hostPort, candidate.protocol))) chosen = candidate;
    }
    if (!chosen) throw new PortAllocationError(`no free host port for ${r.containerPort}/${r.protocol}`);
    result.push(chosen);
  }
  return result;
}

/** swagger `PortMap` of bindings, as inspect's NetworkSettings.Ports (exposed ports without bindings → null). */
export function portMap(bindings: PortBinding[], exposed: string[]): PortMap {
  const map: PortMap = {};
  for (const key of exposed) {
    const { port, protocol } = parsePortKey(key);
    map[`${port}/${protocol}`] = null;
  }
  for (const b of bindings) {
    const key = `${b.containerPort}/${b.protocol}`;
    const list = map[key] ?? [];
    list.push({ HostIp: b.hostIp, HostPort: String(b.hostPort) });
    map[key] = list;
  }
  return map;
}
