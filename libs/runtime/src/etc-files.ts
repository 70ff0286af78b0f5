// The files Docker generates for every container and bind-mounts over the image's: /etc/hosts,
// /etc/hostname and /etc/resolv.conf (moby's container.NetworkMounts, libnetwork's etchosts/resolvconf).
import { readFile, writeFile } from "node:fs/promises";
import { isIPv4, isIPv6 } from "node:net";
import { join } from "node:path";
import type { OciMount } from "./spec-types.js";

export interface HostsOptions {
  hostname: string;
  /** The container's addresses on its networks; none for `--network none`. */
  addresses?: string[];
  /** `--add-host name:ip` entries. */
  extraHosts?: { host: string; ip: string }[];
}

/** /etc/hosts as Docker writes it: the loopback and IPv6 defaults, extra hosts, then the container's own name. */
export function hostsFile(options: HostsOptions): string {
  const lines = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
  ];
  for (const extra of options.extraHosts ?? []) lines.push(`${extra.ip}\t${extra.host}`);
  for (const address of options.addresses ?? []) lines.push(`${address}\t${options.hostname}`);
  return `${lines.join("\n")}\n`;
}

/** /etc/hostname: the name and a newline. */
export function hostnameFile(hostname: string): string {
  return `${hostname}\n`;
}

export interface ResolvConfOptions {
  /** The host's resolv.conf text. */
  host: string;
  /**
   * True for containers in their own network namespace: loopback nameservers (127.0.0.0/8, ::1) cannot
   * be reached from there and are dropped, as Docker does; false for `--network host` (kept as is).
   */
  privateNetwork: boolean;
  /** Keep IPv6 nameservers (Docker drops them unless the network has IPv6). Default false. */
  ipv6?: boolean;
  /** `--dns`, `--dns-search`, `--dns-option`: each replaces the host's lines of that kind. */
  nameservers?: string[];
  search?: string[];
  options?: string[];
}

/** Docker's fallback when no usable nameserver is left (libnetwork resolvconf defaults). */
export const DEFAULT_NAMESERVERS_V4 = ["8.8.8.8", "8.8.4.4"];
export const DEFAULT_NAMESERVERS_V6 = ["2001:4860:4860::8888", "2001:4860:4860::8844"];

function isLoopback(address: string): boolean {
  if (isIPv4(address)) return address.startsWith("127.");
  return address === "::1";
}

/** The container's resolv.conf derived from the host's, the way Docker derives it. */
export function resolvConfFile(options: ResolvConfOptions): string {
  const out: string[] = [];
  const nameservers: string[] = [];
  for (const raw of options.host.split("\n")) {
    const line = raw.trim();
    const fields = line.split(/\s+/);
    const keyword = fields[0];
    if (keyword === "nameserver" && fields[1] !== undefined) {
      const address = fields[1];
      if (options.nameservers) continue;
      if (options.privateNetwork && isLoopback(address)) continue;
      if (options.privateNetwork && !options.ipv6 && isIPv6(address.split("%")[0] ?? address)) continue;
      nameservers.push(address);
      continue;
    }
    if ((keyword === "search" || keyword === "domain") && options.search) continue;
    if (keyword === "options" && options.options) continue;
    if (line !== "") out.push(line);
  }
  const servers = options.nameservers ?? nameservers;
  if (servers.length === 0 && options.privateNetwork) {
    servers.push(...DEFAULT_NAMESERVERS_V4);
    if (options.ipv6) servers.push(...DEFAULT_NAMESERVERS_V6);
  }
  for (const server of servers) out.push(`nameserver ${server}`);
  if (options.search && options.search.length > 0) out.push(`search ${options.search.join(" ")}`);
  if (options.options && options.options.length > 0) out.push(`options ${options.options.join(" ")}`);
  return `${out.join("\n")}\n`;
}

/**
 * The host's resolv.conf. When it only points at systemd-resolved's stub (127.0.0.53), the real
 * upstream list in /run/systemd/resolve/resolv.conf is used instead, as Docker does.
 */
export async function readHostResolvConf(path = "/etc/resolv.conf"): Promise<string> {
  let text = "";
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const servers = text
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[0] === "nameserver")
    .map((f) => f[1]);
  if (path === "/etc/resolv.conf" && servers.length > 0 && servers.every((s) => s === "127.0.0.53")) {
    try {
      return await readFile("/run/systemd/resolve/resolv.conf", "utf8");
    } catch {
      // keep the stub's file; the loopback filter will fall back to the defaults
    }
  }
  return text;
}

export interface EtcFiles {
  hosts: string;
  hostname: string;
  resolvConf: string;
}

export interface WriteEtcFilesOptions extends HostsOptions, Omit<ResolvConfOptions, "host"> {
  /** The host's resolv.conf text; read from the host when omitted. */
  hostResolvConf?: string;
  /** For `--network host`: the host's /etc/hosts text is used instead of a generated one. */
  hostHosts?: string;
}

/** Writes hosts, hostname and resolv.conf into `dir` (a per-container directory) and returns their paths. */
export async function writeEtcFiles(dir: string, options: WriteEtcFilesOptions): Promise<EtcFiles> {
  const files: EtcFiles = { hosts: join(dir, "hosts"), hostname: join(dir, "hostname"), resolvConf: join(dir, "resolv.conf") };
  const hostResolv = options.hostResolvConf ?? (await readHostResolvConf());
  await Promise.all([
    writeFile(files.hosts, options.hostHosts ?? hostsFile(options), { mode: 0o644 }),
    writeFile(files.hostname, hostnameFile(options.hostname), { mode: 0o644 }),
    writeFile(files.resolvConf, resolvConfFile({ ...options, host: hostResolv }), { mode: 0o644 }),
  ]);
  return files;
}

/** Bind mounts of the generated files; read-only when the rootfs is (moby: Writable = !ReadonlyRootfs). */
export function etcFileMounts(files: EtcFiles, readonly: boolean): OciMount[] {
  const options = ["rbind", "rprivate", ...(readonly ? ["ro"] : [])];
  return [
    { destination: "/etc/resolv.conf", type: "bind", source: files.resolvConf, options },
    { destination: "/etc/hostname", type: "bind", source: files.hostname, options },
    { destination: "/etc/hosts", type: "bind", source: files.hosts, options },
  ];
}
