// IPv4 subnets: parsing, overlap, the host's routes, and the pool new networks take theirs from.
import { readFile } from "node:fs/promises";
import { isIPv4 } from "node:net";

export interface Subnet {
  /** Network address as a 32-bit unsigned number. */
  base: number;
  prefix: number;
}

export function ipToNumber(ip: string): number {
  return ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

export function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

function size(prefix: number): number {
  return 2 ** (32 - prefix);
}

/** `10.1.0.0/16` → its subnet; host bits must be zero, as Docker requires of `--subnet`. */
export function parseSubnet(cidr: string): Subnet {
  const match = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(cidr.trim());
  if (!match || !isIPv4(match[1] as string)) throw new Error(`invalid subnet ${cidr}: must be an IPv4 CIDR such as 10.10.0.0/24`);
  const prefix = Number(match[2]);
  if (prefix < 8 || prefix > 30) throw new Error(`invalid subnet ${cidr}: the prefix length must be from 8 to 30`);
  const base = ipToNumber(match[1] as string);
  if (base % size(prefix) !== 0)
    throw new Error(
      `invalid subnet ${cidr}: host bits must be zero (did you mean ${formatSubnet({ base: base - (base % size(prefix)), prefix })}?)`,
    );
  return { base, prefix };
}

export function formatSubnet(s: Subnet): string {
  return `${numberToIp(s.base)}/${s.prefix}`;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.base < b.base + size(b.prefix) && b.base < a.base + size(a.prefix);
}

export function contains(s: Subnet, ip: string): boolean {
  if (!isIPv4(ip)) return false;
  const n = ipToNumber(ip);
  return n >= s.base && n < s.base + size(s.prefix);
}

/** The first usable address: what Docker and host-local make the gateway. */
export function firstHost(s: Subnet): string {
  return numberToIp(s.base + 1);
}

/** The host's IPv4 routes other than the default route (/proc/net/route: little-endian hex). */
export async function hostRoutes(): Promise<{ device: string; subnet: Subnet }[]> {
  const text = await readFile("/proc/net/route", "utf8").catch(() => "");
  const routes: { device: string; subnet: Subnet }[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const destination = Buffer.from(fields[1] as string, "hex")
      .reverse()
      .readUInt32BE(0);
    const mask = Buffer.from(fields[7] as string, "hex")
      .reverse()
      .readUInt32BE(0);
    const prefix = mask.toString(2).replace(/0+$/, "").length;
    if (prefix === 0) continue;
    routes.push({ device: fields[0] as string, subnet: { base: destination, prefix } });
  }
  return routes;
}

/**
 * Docker's default address pools, in its order: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
 * A network takes the first one that overlaps neither another network nor a host route.
 */
export function* addressPool(): Generator<Subnet> {
  for (let second = 17; second <= 31; second++) yield { base: ipToNumber(`172.${second}.0.0`), prefix: 16 };
  for (let third = 0; third < 256; third += 16) yield { base: ipToNumber(`192.168.${third}.0`), prefix: 20 };
}
