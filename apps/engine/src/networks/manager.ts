// Networks: Docker's bridge networks built with the CNI plugins (bridge + host-local IPAM, portmap
// for published ports), one network namespace per container (a file under <exec-root>/netns, `lo`
// up from its creation). The predefined `bridge`, `host` and `none` networks plus user-defined bridges;
// their metadata and each container's endpoints in SQLite. Outbound NAT and forwarding are per
// network (firewall.ts), so a container's own setup is netlink work and host-local's allocation.
//
// Name resolution: containers on the same user-defined network find each other through their
// /etc/hosts, which lists every running peer (name, aliases, short ID). Each file is rewritten in
// place (it is bind-mounted into the container, so a rename would not be seen) whenever a container
// joins or leaves one of its networks. Docker uses an embedded DNS server at 127.0.0.11 instead; the
// hosts files give the same answers for container names without a resolver process per container.
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, rm, writeFile } from "node:fs/promises";
import { isIPv4 } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { hostsFile, type NetworkMode } from "@minato/runtime";
import { ApiError, badRequest, conflict, notFound } from "../api/errors.js";
import type { EngineDatabase } from "../db.js";
import type { EventLog } from "../events/log.js";
import { CniInvoker, type CniResult, DEFAULT_CNI_PATH, type PluginConfig } from "./cni.js";
import { type FirewallNetwork, NetworkFirewall } from "./firewall.js";
import { NetnsStore } from "./netns.js";
import { allocatePorts, PortAllocationError, type PortBinding, type PortMap, portMap, requestedBindings } from "./ports.js";
import { addressPool, contains, firstHost, formatSubnet, hostRoutes, overlaps, parseSubnet, type Subnet } from "./subnets.js";

const run = promisify(execFile);

export const PREDEFINED = ["bridge", "host", "none"];

export interface NetworkRecord {
  id: string;
  name: string;
  /** bridge, host or null (Docker's driver names). */
  driver: string;
  /** The Linux bridge device ("" for host and none). */
  bridge: string;
  subnet: string;
  gateway: string;
  internal: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  created: string;
}

export interface EndpointRecord {
  networkId: string;
  containerId: string;
  endpointId: string;
  aliases: string[];
  requestedIp: string | undefined;
  ip: string | undefined;
  prefixLen: number;
  mac: string | undefined;
  gateway: string | undefined;
  ifname: string;
  result: CniResult | undefined;
}

interface SandboxRecord {
  containerId: string;
  name: string;
  hostname: string;
  /** `none`, `host`, `container:<id>` or `network` (one or more bridge networks). */
  mode: string;
  extraHosts: { host: string; ip: string }[];
  exposed: string[];
  requestedPorts: PortBinding[];
  activePorts: PortBinding[];
  netns: string | undefined;
}

/** What a new container's spec and /etc files need from its network configuration. */
export interface PreparedNetwork {
  spec: NetworkMode;
  /** As HostConfig.NetworkMode is stored and shown. */
  mode: string;
  host: boolean;
  extraHosts: { host: string; ip: string }[];
}

export interface EndpointSettings {
  IPAMConfig?: { IPv4Address?: string } | null;
  Aliases?: string[] | null;
}

type Row = Record<string, unknown>;

const json = <T>(value: unknown, fallback: T): T => (typeof value === "string" && value !== "" ? (JSON.parse(value) as T) : fallback);

function toNetwork(row: Row): NetworkRecord {
  return {
    id: row.id as string,
    name: row.name as string,
    driver: row.driver as string,
    bridge: row.bridge as string,
    subnet: row.subnet as string,
    gateway: row.gateway as string,
    internal: row.internal === 1,
    labels: json(row.labels, {}),
    options: json(row.options, {}),
    created: row.created as string,
  };
}

function toEndpoint(row: Row): EndpointRecord {
  return {
    networkId: row.network_id as string,
    containerId: row.container_id as string,
    endpointId: row.endpoint_id as string,
    aliases: json(row.aliases, []),
    requestedIp: (row.requested_ip as string | null) ?? undefined,
    ip: (row.ip as string | null) ?? undefined,
    prefixLen: (row.prefix_len as number | null) ?? 0,
    mac: (row.mac as string | null) ?? undefined,
    gateway: (row.gateway as string | null) ?? undefined,
    ifname: row.ifname as string,
    result: json(row.cni_result, undefined),
  };
}

function toSandbox(row: Row): SandboxRecord {
  return {
    containerId: row.container_id as string,
    name: row.name as string,
    hostname: row.hostname as string,
    mode: row.mode as string,
    extraHosts: json(row.extra_hosts, []),
    exposed: json(row.exposed, []),
    requestedPorts: json(row.ports, []),
    activePorts: json(row.active_ports, []),
    netns: (row.netns as string | null) ?? undefined,
  };
}

const newId = () => randomBytes(32).toString("hex");

/** `name:ip` or `name=ip` (`--add-host`); `host-gateway` stands for the default bridge's gateway. */
export function parseExtraHost(entry: string, hostGateway: string): { host: string; ip: string } {
  const cut = entry.search(/[:=]/);
  const host = cut > 0 ? entry.slice(0, cut) : "";
  let ip = cut > 0 ? entry.slice(cut + 1).replace(/^\[|\]$/g, "") : "";
  if (ip === "host-gateway") ip = hostGateway;
  if (host === "" || !/^[a-zA-Z0-9.\-_]+$/.test(host) || (!isIPv4(ip) && !/^[0-9a-fA-F:]+$/.test(ip)))
    throw badRequest(`invalid IP address in add-host: "${entry}"`);
  return { host, ip };
}

export class NetworkManager {
  /** Where create/connect/disconnect/destroy are published (set by the engine). */
  events: EventLog | undefined;
  readonly cni: CniInvoker;
  readonly netns: NetnsStore;
  readonly firewall: NetworkFirewall;
  readonly #ipamDir: string;
  readonly #q;
  /** Per container: set-up and tear-down run one at a time. */
  readonly #locks = new Map<string, Promise<unknown>>();
  /** Containers by ID or name, as the container manager finds them (for `container:<id>`). */
  findContainer: (input: string) => { id: string; status: string; pid: number } | undefined = () => undefined;

  private constructor(
    readonly dataRoot: string,
    execRoot: string,
    private readonly db: EngineDatabase,
    private readonly hostsPath: (containerId: string) => string,
    private readonly log: { warn(obj: object, msg: string): void },
    cniPath: string,
  ) {
    this.cni = new CniInvoker(cniPath);
    this.netns = new NetnsStore(join(execRoot, "netns"));
    this.firewall = new NetworkFirewall(this.dataRoot === "/var/lib/minato" ? "" : this.#rootHash());
    this.#ipamDir = join(dataRoot, "networks", "ipam");
    this.#q = {
      networks: db.prepare("SELECT * FROM networks ORDER BY created, name"),
      networkById: db.prepare("SELECT * FROM networks WHERE id = ?"),
      networkByName: db.prepare("SELECT * FROM networks WHERE name = ?"),
      networkByPrefix: db.prepare("SELECT * FROM networks WHERE id >= ? AND id < ? LIMIT 2"),
      insertNetwork: db.prepare(
        `INSERT INTO networks (id, name, driver, bridge, subnet, gateway, internal, labels, options, created)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      deleteNetwork: db.prepare("DELETE FROM networks WHERE id = ?"),
      endpointsOf: db.prepare("SELECT * FROM network_endpoints WHERE container_id = ? ORDER BY ifname"),
      endpointsOn: db.prepare("SELECT * FROM network_endpoints WHERE network_id = ?"),
      insertEndpoint: db.prepare(
        `INSERT INTO network_endpoints (network_id, container_id, endpoint_id, aliases, requested_ip, ifname)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      setAddress: db.prepare(
        "UPDATE network_endpoints SET ip = ?, prefix_len = ?, mac = ?, gateway = ?, cni_result = ? WHERE network_id = ? AND container_id = ?",
      ),
      deleteEndpoint: db.prepare("DELETE FROM network_endpoints WHERE network_id = ? AND container_id = ?"),
      deleteEndpoints: db.prepare("DELETE FROM network_endpoints WHERE container_id = ?"),
      sandbox: db.prepare("SELECT * FROM network_sandboxes WHERE container_id = ?"),
      sandboxes: db.prepare("SELECT * FROM network_sandboxes"),
      insertSandbox: db.prepare(
        `INSERT INTO network_sandboxes (container_id, name, hostname, mode, extra_hosts, exposed, ports)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      setNetns: db.prepare("UPDATE network_sandboxes SET netns = ? WHERE container_id = ?"),
      setActivePorts: db.prepare("UPDATE network_sandboxes SET active_ports = ? WHERE container_id = ?"),
      deleteSandbox: db.prepare("DELETE FROM network_sandboxes WHERE container_id = ?"),
    };
  }

  static async open(
    dataRoot: string,
    execRoot: string,
    db: EngineDatabase,
    hostsPath: (containerId: string) => string,
    log: { warn(obj: object, msg: string): void },
    cniPath = DEFAULT_CNI_PATH,
  ): Promise<NetworkManager> {
    const manager = new NetworkManager(dataRoot, execRoot, db, hostsPath, log, cniPath);
    await manager.#ensurePredefined();
    // Every network's rules again (a reboot or a flush may have lost them), and none of removed ones.
    await manager.#syncFirewall().catch((error) => log.warn({ err: error }, "installing the networks' iptables rules"));
    return manager;
  }

  /** Eight hex digits from the data root: names that keep several daemons side by side apart. */
  #rootHash(): string {
    let hash = 0;
    for (const ch of this.dataRoot) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    return hash.toString(16).padStart(8, "0");
  }

  /** The default bridge's device: minato0 for the default data root, else one derived from the root. */
  #defaultBridgeName(): string {
    return this.dataRoot === "/var/lib/minato" ? "minato0" : `mnb-${this.#rootHash()}`;
  }

  /** The bridge networks whose rules belong in the firewall chains. */
  #firewallNetworks(networks = this.list()): FirewallNetwork[] {
    return networks.filter((n) => n.driver === "bridge" && n.bridge && n.subnet);
  }

  #syncFirewall(): Promise<void> {
    return this.firewall.sync(() => this.#firewallNetworks());
  }

  async #ensurePredefined(): Promise<void> {
    const now = new Date().toISOString();
    for (const [name, driver] of [
      ["host", "host"],
      ["none", "null"],
    ] as const) {
      if (!this.#q.networkByName.get(name)) this.#q.insertNetwork.run(newId(), name, driver, "", "", "", 0, "{}", "{}", now);
    }
    const bridge = this.#q.networkByName.get("bridge") as Row | undefined;
    if (!bridge) {
      const device = this.#defaultBridgeName();
      const subnet = await this.#claimSubnet(device, undefined);
      this.#q.insertNetwork.run(newId(), "bridge", "bridge", device, formatSubnet(subnet), firstHost(subnet), 0, "{}", "{}", now);
    } else if (await this.#subnetTakenMeanwhile(toNetwork(bridge))) {
      // Another daemon's network took the subnet while this one was down, and no container of
      // ours holds an address on it: the default bridge moves to a free one, as at first start.
      const net = toNetwork(bridge);
      this.#deleteBridge(net.bridge);
      const subnet = await this.#claimSubnet(net.bridge, undefined);
      this.db.prepare("UPDATE networks SET subnet = ?, gateway = ? WHERE id = ?").run(formatSubnet(subnet), firstHost(subnet), net.id);
    } else {
      const net = toNetwork(bridge);
      await this.#createBridge(net.bridge, parseSubnet(net.subnet), net.gateway).catch((error) =>
        this.log.warn({ err: error, bridge: net.bridge }, "recreating the default bridge"),
      );
    }
  }

  /** True when another device routes `net`'s subnet and none of this engine's containers is set up on it. */
  async #subnetTakenMeanwhile(net: NetworkRecord): Promise<boolean> {
    const subnet = parseSubnet(net.subnet);
    const routes = await hostRoutes();
    if (!routes.some((r) => r.device !== net.bridge && overlaps(r.subnet, subnet))) return false;
    const inUse = this.db
      .prepare(
        `SELECT 1 FROM network_endpoints e JOIN network_sandboxes s ON s.container_id = e.container_id
         WHERE e.network_id = ? AND s.netns IS NOT NULL LIMIT 1`,
      )
      .get(net.id);
    return inUse === undefined;
  }

  /** Creates the bridge device with its gateway address now, so the subnet's route marks it as taken for others. */
  async #createBridge(device: string, subnet: Subnet, gateway: string): Promise<void> {
    if (!existsSync(`/sys/class/net/${device}`)) {
      await run("ip", ["link", "add", "name", device, "type", "bridge"]).catch((error) => {
        if (!existsSync(`/sys/class/net/${device}`)) throw error;
      });
    }
    await run("ip", ["addr", "replace", `${gateway}/${subnet.prefix}`, "dev", device]);
    await run("ip", ["link", "set", device, "up"]);
  }

  #deleteBridge(device: string): void {
    if (device && existsSync(`/sys/class/net/${device}`)) spawnSync("ip", ["link", "del", device], { stdio: "ignore" });
  }

  /**
   * A subnet from the pool that overlaps neither this engine's networks nor any host route, claimed
   * by creating the bridge: if another daemon raced for the same one (two routes now), the next is tried.
   */
  async #claimSubnet(device: string, wanted: Subnet | undefined): Promise<Subnet> {
    const ours = this.list()
      .filter((n) => n.subnet)
      .map((n) => parseSubnet(n.subnet));
    for (const candidate of wanted ? [wanted] : addressPool()) {
      if (ours.some((s) => overlaps(s, candidate))) continue;
      const routes = await hostRoutes();
      if (!wanted && routes.some((r) => r.device !== device && overlaps(r.subnet, candidate))) continue;
      await this.#createBridge(device, candidate, firstHost(candidate));
      const after = await hostRoutes();
      if (!wanted && after.some((r) => r.device !== device && overlaps(r.subnet, candidate))) {
        this.#deleteBridge(device);
        continue;
      }
      return candidate;
    }
    throw new ApiError(500, "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network");
  }

  /**
   * A bridge of a minatod that died without cleaning up (its name is ours, no interface is attached,
   * no network of this engine owns it) would shadow the route of a new network on the same subnet:
   * it is removed. Any other device routing an overlapping subnet makes the subnet unusable.
   */
  async #reclaimStaleBridges(wanted: Subnet): Promise<void> {
    const ours = new Set(this.list().map((n) => n.bridge));
    for (const route of await hostRoutes()) {
      if (!overlaps(route.subnet, wanted)) continue;
      const members = await readdir(`/sys/class/net/${route.device}/brif`).catch(() => undefined);
      if (/^mnb?-/.test(route.device) && !ours.has(route.device) && members?.length === 0) {
        this.#deleteBridge(route.device);
        continue;
      }
      throw new ApiError(
        403,
        `Pool overlaps with other one on this address space: ${formatSubnet(route.subnet)} is routed to ${route.device}`,
      );
    }
  }

  list(): NetworkRecord[] {
    return (this.#q.networks.all() as Row[]).map(toNetwork);
  }

  /** By full ID, exact name, or unique ID prefix, as dockerd looks networks up. */
  find(input: string): NetworkRecord | undefined {
    const byId = this.#q.networkById.get(input) as Row | undefined;
    if (byId) return toNetwork(byId);
    const byName = this.#q.networkByName.get(input) as Row | undefined;
    if (byName) return toNetwork(byName);
    if (/^[0-9a-f]+$/.test(input)) {
      const rows = this.#q.networkByPrefix.all(input, `${input}g`) as Row[];
      if (rows.length > 1) throw badRequest(`network ${input} is ambiguous (${rows.length} matches found based on ID prefix)`);
      if (rows[0]) return toNetwork(rows[0]);
    }
    return undefined;
  }

  get(input: string): NetworkRecord {
    const found = this.find(input);
    if (!found) throw notFound(`network ${input} not found`);
    return found;
  }

  endpointsOn(networkId: string): EndpointRecord[] {
    return (this.#q.endpointsOn.all(networkId) as Row[]).map(toEndpoint);
  }

  endpointsOf(containerId: string): EndpointRecord[] {
    return (this.#q.endpointsOf.all(containerId) as Row[]).map(toEndpoint);
  }

  #sandbox(containerId: string): SandboxRecord | undefined {
    const row = this.#q.sandbox.get(containerId) as Row | undefined;
    return row ? toSandbox(row) : undefined;
  }

  /** `POST /networks/create` (bridge driver only). */
  async create(request: {
    name: string;
    driver?: string;
    internal?: boolean;
    labels?: Record<string, string>;
    options?: Record<string, string>;
    subnet?: string;
    gateway?: string;
  }): Promise<NetworkRecord> {
    const name = request.name;
    if (!name || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw badRequest(`invalid network name: ${JSON.stringify(name ?? "")}`);
    if (PREDEFINED.includes(name)) throw new ApiError(403, `${name} is a pre-defined network and cannot be created`);
    const driver = request.driver || "bridge";
    if (driver !== "bridge") throw badRequest(`driver ${JSON.stringify(driver)} is not supported: only bridge networks can be created`);
    if (this.#q.networkByName.get(name)) throw conflict(`network with name ${name} already exists`);
    let wanted: Subnet | undefined;
    if (request.subnet) {
      try {
        wanted = parseSubnet(request.subnet);
      } catch (error) {
        throw badRequest((error as Error).message);
      }
      for (const other of this.list()) {
        if (other.subnet && overlaps(parseSubnet(other.subnet), wanted))
          throw new ApiError(403, "Pool overlaps with other one on this address space");
      }
      await this.#reclaimStaleBridges(wanted);
    } else if (request.gateway) throw badRequest("a gateway needs a subnet (--subnet)");
    if (request.gateway && wanted) {
      if (!contains(wanted, request.gateway)) throw badRequest(`gateway ${request.gateway} is not in subnet ${formatSubnet(wanted)}`);
    }
    const id = newId();
    const device = `mn-${id.slice(0, 12)}`;
    const subnet = await this.#claimSubnet(device, wanted);
    const gateway = request.gateway || firstHost(subnet);
    if (gateway !== firstHost(subnet)) {
      await run("ip", ["addr", "flush", "dev", device]);
      await run("ip", ["addr", "add", `${gateway}/${subnet.prefix}`, "dev", device]);
    }
    this.#q.insertNetwork.run(
      id,
      name,
      "bridge",
      device,
      formatSubnet(subnet),
      gateway,
      request.internal ? 1 : 0,
      JSON.stringify(request.labels ?? {}),
      JSON.stringify(request.options ?? {}),
      new Date().toISOString(),
    );
    try {
      await this.#syncFirewall();
    } catch (error) {
      this.#q.deleteNetwork.run(id);
      this.#deleteBridge(device);
      throw new ApiError(500, `setting up network ${name}: ${(error as Error).message}`);
    }
    this.events?.publish("network", "create", id, { name, type: "bridge" });
    return this.get(id);
  }

  /** `DELETE /networks/{id}`: refused for the predefined ones and while containers are connected. */
  async remove(input: string): Promise<void> {
    const net = this.get(input);
    if (PREDEFINED.includes(net.name)) throw new ApiError(403, `${net.name} is a pre-defined network and cannot be removed`);
    if (this.endpointsOn(net.id).length > 0)
      throw conflict(`error while removing network: network ${net.name} id ${net.id} has active endpoints`);
    this.#q.deleteNetwork.run(net.id);
    this.#deleteBridge(net.bridge);
    await this.#syncFirewall().catch((error) => this.log.warn({ err: error, network: net.name }, "removing the network's iptables rules"));
    await rm(join(this.#ipamDir, net.id), { recursive: true, force: true });
    this.events?.publish("network", "destroy", net.id, { name: net.name, type: net.driver });
  }

  /** `POST /networks/prune`: user-defined networks no container is connected to. */
  async prune(keep: (net: NetworkRecord) => boolean = () => false): Promise<string[]> {
    const removed: string[] = [];
    for (const net of this.list()) {
      if (PREDEFINED.includes(net.name) || keep(net) || this.endpointsOn(net.id).length > 0) continue;
      await this.remove(net.id);
      removed.push(net.name);
    }
    return removed;
  }

  /** The host-gateway of `--add-host`: the default bridge's gateway. */
  #hostGateway(): string {
    return this.find("bridge")?.gateway ?? "";
  }

  /**
   * At container create: resolves HostConfig.NetworkMode, checks the endpoint settings and published
   * ports, and records the container's endpoints (addresses come at start).
   */
  prepare(input: {
    id: string;
    name: string;
    hostname: string | undefined;
    networkMode: string | undefined;
    endpoints: Record<string, EndpointSettings> | null | undefined;
    portBindings: PortMap | null | undefined;
    publishAll: boolean;
    exposed: string[];
    extraHosts: string[] | null | undefined;
  }): PreparedNetwork {
    const raw = input.networkMode || "default";
    const extraHosts = (input.extraHosts ?? []).map((e) => parseExtraHost(e, this.#hostGateway()));
    const ports = requestedBindings(input.portBindings, input.publishAll, input.exposed);
    let spec: NetworkMode;
    let mode: string;
    let net: NetworkRecord | undefined;
    if (raw.startsWith("container:")) {
      const target = this.findContainer(raw.slice("container:".length));
      if (!target) throw notFound(`No such container: ${raw.slice("container:".length)}`);
      if (ports.length > 0) throw badRequest("conflicting options: port publishing and the container type network mode");
      const sandbox = this.#sandbox(target.id);
      if (sandbox?.mode === "host") spec = { mode: "host" };
      else if (sandbox?.mode === "network") spec = { mode: "path", path: this.netns.path(target.id) };
      else if (target.status === "running" || target.status === "paused") spec = { mode: "path", path: `/proc/${target.pid}/ns/net` };
      else throw conflict(`cannot join network namespace of a non running container: ${target.id}`);
      mode = `container:${target.id}`;
    } else {
      net = this.find(raw === "default" ? "bridge" : raw);
      // 400, not 404: clients read a 404 from create as a missing image and would try to pull it.
      if (!net) throw badRequest(`network ${raw} not found`);
      mode = net.driver === "bridge" ? (net.name === "bridge" ? "bridge" : net.name) : net.name;
      spec =
        net.driver === "host"
          ? { mode: "host" }
          : net.driver === "null"
            ? { mode: "none" }
            : { mode: "path", path: this.netns.path(input.id) };
    }
    const settings = net ? (input.endpoints?.[raw] ?? input.endpoints?.[net.name] ?? input.endpoints?.[net.id]) : undefined;
    const requestedIp = settings?.IPAMConfig?.IPv4Address || undefined;
    const aliases = settings?.Aliases ?? [];
    if (net && net.driver === "bridge") {
      if (net.name === "bridge" && requestedIp) throw badRequest("user specified IP address is supported on user defined networks only");
      if (net.name === "bridge" && aliases.length > 0)
        throw badRequest("network-scoped alias is supported only for containers in user defined networks");
      if (requestedIp && !contains(parseSubnet(net.subnet), requestedIp))
        throw badRequest(`no configured subnet or ip-range contain the IP address ${requestedIp}`);
    } else if (ports.length > 0 && net?.driver === "null") {
      throw badRequest("conflicting options: port publishing and the container type network mode");
    }
    this.db.transaction(() => {
      this.#q.insertSandbox.run(
        input.id,
        input.name,
        input.hostname ?? input.id.slice(0, 12),
        net?.driver === "bridge" ? "network" : net ? net.name : mode,
        JSON.stringify(extraHosts),
        JSON.stringify(input.exposed),
        JSON.stringify(net?.driver === "bridge" ? ports : []),
      );
      if (net) this.#q.insertEndpoint.run(net.id, input.id, newId(), JSON.stringify(aliases), requestedIp ?? null, "eth0");
    })();
    // The namespace is made now, while the client goes on to start the container (`docker run`
    // attaches and waits first), so the start does not wait for it; `setUp` takes it (or makes it,
    // should this have failed), `forget` removes it should the container never start.
    if (net?.driver === "bridge") this.netns.create(input.id).catch(() => undefined);
    return { spec, mode, host: spec.mode === "host", extraHosts };
  }

  /** A renamed container: its sandbox's name, and the hosts files of the peers that list it. */
  async rename(containerId: string, name: string): Promise<void> {
    this.db.prepare("UPDATE network_sandboxes SET name = ? WHERE container_id = ?").run(name, containerId);
    await this.#refreshHosts(containerId);
  }

  /** Records the hostname the container ended up with (its own name in /etc/hosts). */
  setHostname(containerId: string, hostname: string): void {
    this.db.prepare("UPDATE network_sandboxes SET hostname = ? WHERE container_id = ?").run(hostname, containerId);
  }

  #plugins(net: NetworkRecord, ports: PortBinding[], requestedIp: string | undefined): PluginConfig[] {
    const subnet = parseSubnet(net.subnet);
    const plugins: PluginConfig[] = [
      {
        type: "bridge",
        bridge: net.bridge,
        isGateway: true,
        // Outbound NAT is the network's one MASQUERADE rule (firewall.ts), not a chain per container.
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: net.subnet, gateway: net.gateway }]],
          routes: net.internal ? [] : [{ dst: "0.0.0.0/0" }],
          dataDir: this.#ipamDir,
        },
        // host-local's "ips" capability: the address `--ip` asks for.
        ...(requestedIp ? { runtimeConfig: { ips: [`${requestedIp}/${subnet.prefix}`] } } : {}),
      },
    ];
    if (ports.length > 0) {
      // snat: hairpin and localhost traffic is masqueraded, so 127.0.0.1:PORT reaches the container.
      plugins.push({
        type: "portmap",
        snat: true,
        runtimeConfig: {
          portMappings: ports.map((p) => ({
            hostPort: p.hostPort,
            containerPort: p.containerPort,
            protocol: p.protocol,
            ...(p.hostIp !== "0.0.0.0" ? { hostIP: p.hostIp } : {}),
          })),
        },
      });
    }
    return plugins;
  }

  /**
   * Before a container starts: its network namespace, `lo`, an interface and address on each of its
   * bridge networks, its published ports; then /etc/hosts here and at its peers. All or nothing:
   * what was set up is torn down again when a step fails. `namespaceReady` is called once the
   * namespace the container is to join exists (at once when it needs none), before the interfaces
   * are made: runc can create the container meanwhile.
   */
  setUp(containerId: string, namespaceReady: () => void = () => undefined): Promise<void> {
    return this.#locked(containerId, () => this.#setUp(containerId, namespaceReady));
  }

  async #locked<T>(containerId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(containerId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.#locks.set(containerId, settled);
    try {
      return await next;
    } finally {
      if (this.#locks.get(containerId) === settled) this.#locks.delete(containerId);
    }
  }

  async #setUp(containerId: string, namespaceReady: () => void): Promise<void> {
    const sandbox = this.#sandbox(containerId);
    const endpoints = sandbox?.mode === "network" ? this.endpointsOf(containerId) : [];
    if (!sandbox || endpoints.length === 0) {
      namespaceReady();
      return;
    }
    const taken = this.#activePortsExcept(containerId);
    let ports: PortBinding[];
    try {
      ports = await allocatePorts(sandbox.requestedPorts, taken);
    } catch (error) {
      // The namespace made at create goes: a container that did not start has none.
      if (!sandbox.netns) await this.netns.remove(containerId).catch(() => undefined);
      if (error instanceof PortAllocationError)
        throw new ApiError(
          500,
          `driver failed programming external connectivity on endpoint ${sandbox.name} (${endpoints[0]?.endpointId}): ${error.message}`,
        );
      throw error;
    }
    if (sandbox.netns) await this.#tearDown(containerId, false);
    const netns = this.netns.path(containerId);
    // Recorded first: a crash in the middle leaves enough behind for tearDown to undo it.
    this.#q.setActivePorts.run(JSON.stringify(ports), containerId);
    this.#q.setNetns.run(netns, containerId);
    try {
      await this.netns.create(containerId);
      namespaceReady();
      // One chain per network, side by side; all settle before a failure tears everything down.
      const added = await Promise.allSettled(
        endpoints.map(async (endpoint, index) => {
          const net = this.#networkOf(endpoint);
          const plugins = this.#plugins(net, index === 0 ? ports : [], endpoint.requestedIp);
          this.#recordAddress(endpoint, await this.cni.add(net.id, plugins, { containerId, netns, ifname: endpoint.ifname }));
        }),
      );
      const failed = added.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
    } catch (error) {
      await this.#tearDown(containerId, false).catch(() => undefined);
      throw new ApiError(500, `setting up the container's network: ${(error as Error).message}`);
    }
    for (const endpoint of endpoints) this.#publish("connect", this.#networkOf(endpoint), containerId);
    await this.#refreshHosts(containerId);
  }

  #publish(action: "connect" | "disconnect", net: NetworkRecord, containerId: string): void {
    this.events?.publish("network", action, net.id, { container: containerId, name: net.name, type: net.driver });
  }

  #networkOf(endpoint: EndpointRecord): NetworkRecord {
    const row = this.#q.networkById.get(endpoint.networkId) as Row | undefined;
    if (!row) throw notFound(`network ${endpoint.networkId} not found`);
    return toNetwork(row);
  }

  #recordAddress(endpoint: EndpointRecord, result: CniResult): void {
    const ifIndex = result.interfaces?.findIndex((i) => i.name === endpoint.ifname && i.sandbox);
    const address = result.ips?.find((ip) => ip.interface === ifIndex && isIPv4(ip.address.split("/")[0] as string)) ?? result.ips?.[0];
    const [ip, prefix] = (address?.address ?? "").split("/");
    const mac = ifIndex !== undefined && ifIndex >= 0 ? result.interfaces?.[ifIndex]?.mac : undefined;
    this.#q.setAddress.run(
      ip || null,
      Number(prefix) || 0,
      mac ?? null,
      address?.gateway ?? null,
      JSON.stringify(result),
      endpoint.networkId,
      endpoint.containerId,
    );
  }

  #activePortsExcept(containerId: string): PortBinding[] {
    return (this.#q.sandboxes.all() as Row[])
      .map(toSandbox)
      .filter((s) => s.containerId !== containerId && s.netns)
      .flatMap((s) => s.activePorts);
  }

  /**
   * After a container stopped (or failed to start, or died while minatod was down): CNI DEL on each
   * network (its address, veth and port rules go), the namespace removed, peers' hosts updated.
   * Idempotent.
   *
   * `lazy` (a container about to be removed): the namespace is unmounted first, at the same time as
   * CNI DEL runs without a namespace (CNI 1.0 makes CNI_NETNS optional for DEL; the bridge plugin
   * then only releases the address). The kernel deletes the namespace's interfaces, and with them
   * the veths' host ends, once its last reference is gone, some milliseconds later, so the veth
   * deletion (an RCU grace period in the kernel, the bulk of a DEL) is not waited for.
   */
  tearDown(containerId: string, options: { lazy?: boolean } = {}): Promise<void> {
    return this.#locked(containerId, () => this.#tearDown(containerId, options.lazy === true));
  }

  async #tearDown(containerId: string, lazy: boolean): Promise<void> {
    const sandbox = this.#sandbox(containerId);
    if (!sandbox?.netns) return;
    const removeNetns = () =>
      this.netns.remove(containerId).catch((error) => this.log.warn({ err: error, containerId }, "removing the network namespace"));
    const unmounted = lazy ? removeNetns() : undefined;
    const netns = lazy ? "" : sandbox.netns;
    // Each network's DEL is its own (its bridge, its address pool): they run side by side.
    await Promise.all(
      this.endpointsOf(containerId).map(async (endpoint, index) => {
        const net = this.find(endpoint.networkId);
        if (net?.driver !== "bridge") return;
        try {
          let plugins = this.#plugins(net, index === 0 ? sandbox.activePorts : [], undefined);
          // Without a namespace the bridge plugin's DEL is its IPAM plugin's DEL with the same
          // configuration and nothing else (ipMasq is off; plugins' bridge cmdDel): host-local is
          // run directly, one process instead of two.
          if (lazy) plugins = plugins.map((p) => (p.type === "bridge" ? { ...p, type: "host-local" } : p));
          await this.cni.del(net.id, plugins, { containerId, netns, ifname: endpoint.ifname }, endpoint.result);
        } catch (error) {
          this.log.warn({ err: error, containerId, network: net.name }, "CNI DEL failed");
        }
        this.#q.setAddress.run(null, 0, null, null, null, endpoint.networkId, containerId);
        this.#publish("disconnect", net, containerId);
      }),
    );
    await (unmounted ?? removeNetns());
    this.#q.setNetns.run(null, containerId);
    this.#q.setActivePorts.run("[]", containerId);
    await this.#refreshHosts(containerId);
  }

  /** When a container is removed: its network state goes, and it leaves its peers' hosts files. */
  async forget(containerId: string): Promise<void> {
    await this.tearDown(containerId);
    // A namespace made at create for a container that never started.
    await this.netns.remove(containerId).catch((error) => this.log.warn({ err: error, containerId }, "removing the network namespace"));
    const peers = this.#peersOf(containerId);
    this.db.transaction(() => {
      this.#q.deleteEndpoints.run(containerId);
      this.#q.deleteSandbox.run(containerId);
    })();
    for (const peer of peers) await this.#writeHosts(peer);
  }

  /** Containers whose namespace is still set up (running, or died while minatod was down). */
  activeSandboxes(): string[] {
    return (this.#q.sandboxes.all() as Row[])
      .map(toSandbox)
      .filter((s) => s.netns)
      .map((s) => s.containerId);
  }

  /** `POST /networks/{id}/connect`: an endpoint now; an interface too when the container runs. */
  async connect(networkInput: string, containerId: string, settings: EndpointSettings | undefined, running: boolean): Promise<void> {
    const net = this.get(networkInput);
    const sandbox = this.#sandbox(containerId);
    if (!sandbox) throw badRequest(`container ${containerId} has no network sandbox`);
    if (net.driver !== "bridge" || sandbox.mode !== "network")
      throw new ApiError(403, `container cannot be connected to network ${net.name}: only bridge networks can be combined`);
    const endpoints = this.endpointsOf(containerId);
    if (endpoints.some((e) => e.networkId === net.id))
      throw new ApiError(403, `endpoint with name ${sandbox.name} already exists in network ${net.name}`);
    const requestedIp = settings?.IPAMConfig?.IPv4Address || undefined;
    if (requestedIp && (net.name === "bridge" || !contains(parseSubnet(net.subnet), requestedIp)))
      throw badRequest(`invalid IP address ${requestedIp} for network ${net.name}`);
    const used = new Set(endpoints.map((e) => e.ifname));
    let n = 0;
    while (used.has(`eth${n}`)) n++;
    const ifname = `eth${n}`;
    this.#q.insertEndpoint.run(net.id, containerId, newId(), JSON.stringify(settings?.Aliases ?? []), requestedIp ?? null, ifname);
    if (!running || !sandbox.netns) return;
    try {
      const endpoint = this.endpointsOf(containerId).find((e) => e.networkId === net.id) as EndpointRecord;
      const result = await this.cni.add(net.id, this.#plugins(net, [], requestedIp), { containerId, netns: sandbox.netns, ifname });
      this.#recordAddress(endpoint, result);
    } catch (error) {
      this.#q.deleteEndpoint.run(net.id, containerId);
      throw new ApiError(500, `connecting to network ${net.name}: ${(error as Error).message}`);
    }
    this.#publish("connect", net, containerId);
    await this.#refreshHosts(containerId);
  }

  /** `POST /networks/{id}/disconnect`. */
  async disconnect(networkInput: string, containerId: string): Promise<void> {
    const net = this.get(networkInput);
    const endpoint = this.endpointsOf(containerId).find((e) => e.networkId === net.id);
    if (!endpoint) throw notFound(`container ${containerId} is not connected to network ${net.name}`);
    const sandbox = this.#sandbox(containerId);
    if (sandbox?.netns && endpoint.ip) {
      await this.cni
        .del(net.id, this.#plugins(net, [], undefined), { containerId, netns: sandbox.netns, ifname: endpoint.ifname }, endpoint.result)
        .catch((error) => this.log.warn({ err: error, containerId }, "CNI DEL failed"));
      this.#publish("disconnect", net, containerId);
    }
    const peers = this.#peersOf(containerId);
    this.#q.deleteEndpoint.run(net.id, containerId);
    await this.#writeHosts(containerId);
    for (const peer of peers) await this.#writeHosts(peer);
  }

  /** Running containers sharing a user-defined network with this one. */
  #peersOf(containerId: string): string[] {
    const peers = new Set<string>();
    for (const endpoint of this.endpointsOf(containerId)) {
      const net = this.find(endpoint.networkId);
      if (net?.driver !== "bridge" || net.name === "bridge") continue;
      for (const other of this.endpointsOn(net.id)) if (other.containerId !== containerId && other.ip) peers.add(other.containerId);
    }
    return [...peers];
  }

  async #refreshHosts(containerId: string): Promise<void> {
    await this.#writeHosts(containerId);
    for (const peer of this.#peersOf(containerId)) await this.#writeHosts(peer);
  }

  /** Rewrites a container's /etc/hosts in place: defaults, --add-host entries, peers, then its own addresses. */
  async #writeHosts(containerId: string): Promise<void> {
    const sandbox = this.#sandbox(containerId);
    if (!sandbox || sandbox.mode === "host") return;
    const path = this.hostsPath(containerId);
    if (!existsSync(path)) return;
    const own = this.endpointsOf(containerId);
    const peers: { host: string; ip: string }[] = [];
    for (const endpoint of own) {
      const net = this.find(endpoint.networkId);
      if (net?.driver !== "bridge" || net.name === "bridge" || !endpoint.ip) continue;
      for (const other of this.endpointsOn(net.id)) {
        if (other.containerId === containerId || !other.ip) continue;
        const peer = this.#sandbox(other.containerId);
        if (!peer) continue;
        const names = [peer.name, ...other.aliases, other.containerId.slice(0, 12)];
        peers.push({ host: [...new Set(names)].join(" "), ip: other.ip });
      }
    }
    const addresses = own.map((e) => e.ip).filter((ip): ip is string => ip !== undefined);
    const aliases = new Set(own.flatMap((e) => e.aliases));
    aliases.delete(sandbox.hostname);
    const hostname = [sandbox.hostname, ...aliases].join(" ");
    // writeFile truncates and rewrites the same inode, which the container's bind mount shows.
    await writeFile(path, hostsFile({ hostname, addresses, extraHosts: [...sandbox.extraHosts, ...peers] }));
  }

  /** inspect's NetworkSettings. */
  settings(containerId: string) {
    const sandbox = this.#sandbox(containerId);
    const networks: Record<string, unknown> = {};
    let primary: Record<string, unknown> = {};
    for (const endpoint of this.endpointsOf(containerId)) {
      const net = this.find(endpoint.networkId);
      if (!net) continue;
      const entry = {
        IPAMConfig: endpoint.requestedIp ? { IPv4Address: endpoint.requestedIp } : null,
        Links: null,
        Aliases: endpoint.aliases.length > 0 ? endpoint.aliases : null,
        MacAddress: endpoint.mac ?? "",
        DriverOpts: null,
        NetworkID: net.id,
        EndpointID: endpoint.ip ? endpoint.endpointId : "",
        Gateway: endpoint.gateway ?? "",
        IPAddress: endpoint.ip ?? "",
        IPPrefixLen: endpoint.ip ? endpoint.prefixLen : 0,
        IPv6Gateway: "",
        GlobalIPv6Address: "",
        GlobalIPv6PrefixLen: 0,
        DNSNames:
          net.name === "bridge" || net.driver !== "bridge" ? null : [sandbox?.name ?? "", ...endpoint.aliases, containerId.slice(0, 12)],
      };
      networks[net.name] = entry;
      // The top-level address fields describe the default bridge only, as in Docker.
      if (net.name === "bridge") primary = entry;
    }
    const ports = sandbox?.netns ? sandbox.activePorts : [];
    return {
      Bridge: "",
      SandboxID: sandbox?.netns ? containerId : "",
      SandboxKey: sandbox?.netns ?? "",
      HairpinMode: false,
      LinkLocalIPv6Address: "",
      LinkLocalIPv6PrefixLen: 0,
      Ports: portMap(ports, sandbox?.exposed ?? []),
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: (primary.EndpointID as string | undefined) ?? "",
      Gateway: (primary.Gateway as string | undefined) ?? "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      IPAddress: (primary.IPAddress as string | undefined) ?? "",
      IPPrefixLen: (primary.IPPrefixLen as number | undefined) ?? 0,
      IPv6Gateway: "",
      MacAddress: (primary.MacAddress as string | undefined) ?? "",
      Networks: networks,
    };
  }

  /** `/containers/json`'s Ports: published ones while running, else the exposed ones. */
  summaryPorts(containerId: string): { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] {
    const sandbox = this.#sandbox(containerId);
    if (!sandbox) return [];
    const active = sandbox.netns ? sandbox.activePorts : [];
    const result: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] = active.map((p) => ({
      IP: p.hostIp,
      PrivatePort: p.containerPort,
      PublicPort: p.hostPort,
      Type: p.protocol,
    }));
    for (const key of sandbox.exposed) {
      const [port, type = "tcp"] = key.split("/");
      if (!active.some((p) => String(p.containerPort) === port && p.protocol === type))
        result.push({ PrivatePort: Number(port), Type: type });
    }
    return result;
  }

  /** `/containers/json`'s NetworkSettings.Networks. */
  summaryNetworks(containerId: string): Record<string, unknown> {
    return this.settings(containerId).Networks;
  }

  /**
   * Removes the bridge devices, and their iptables rules, of networks no running container uses
   * (minatod shutting down); the next start puts them back.
   */
  close(): void {
    const sandboxes = this.activeSandboxes();
    const active = new Set(sandboxes.flatMap((id) => this.endpointsOf(id).map((e) => e.networkId)));
    for (const net of this.list()) if (net.bridge && !active.has(net.id)) this.#deleteBridge(net.bridge);
    this.firewall.syncNow(this.#firewallNetworks(this.list().filter((n) => active.has(n.id))));
    // The namespace directory's own bind mount goes too when no namespace is left in it.
    if (sandboxes.length === 0) spawnSync("umount", [this.netns.dir], { stdio: "ignore" });
  }
}
