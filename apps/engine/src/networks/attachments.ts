// What a container is attached to besides its rootfs: its network (mode, endpoints, published
// ports, /etc files' inputs) and its mounts (binds, volumes, tmpfs). The container manager calls
// these hooks at create, start, exit and removal; the work lives in NetworkManager and VolumeManager.
import { hostname as hostHostname } from "node:os";
import type { MountOption, NetworkMode } from "@minato/runtime";
import type { ContainerMount, VolumeManager } from "../volumes/manager.js";
import { type MountRequest, resolveMounts, specMounts } from "../volumes/mounts.js";
import type { EndpointSettings, NetworkManager } from "./manager.js";
import type { PortMap } from "./ports.js";

export interface AttachRequest {
  id: string;
  name: string;
  rootfs: string;
  config: { Hostname?: string; ExposedPorts?: Record<string, unknown> | null; Volumes?: Record<string, unknown> | null };
  hostConfig: {
    NetworkMode?: string;
    PortBindings?: PortMap | null;
    PublishAllPorts?: boolean;
    ExtraHosts?: string[] | null;
    Dns?: string[] | null;
    DnsSearch?: string[] | null;
    DnsOptions?: string[] | null;
    Binds?: string[] | null;
    Mounts?: MountRequest[] | null;
    VolumesFrom?: string[] | null;
    AutoRemove?: boolean;
  };
  /** The image's run config; ExposedPorts and Volumes are read from it. */
  imageConfig: object;
  networkingConfig: unknown;
}

export interface Attached {
  network: NetworkMode;
  /** HostConfig.NetworkMode as stored: bridge, host, none, a network name, container:<id>. */
  mode: string;
  hostname: string;
  /** Options for writeEtcFiles. */
  etc: {
    extraHosts: { host: string; ip: string }[];
    nameservers?: string[];
    search?: string[];
    options?: string[];
  };
  mounts: MountOption[];
}

const keys = (o: Record<string, unknown> | null | undefined) => Object.keys(o ?? {});

export class ContainerAttachments {
  /** Containers created with AutoRemove (`run --rm`): their removal follows their exit. */
  readonly #autoRemove = new Set<string>();
  /** Containers whose volume mount events went out and whose unmount events have not. */
  readonly #mounted = new Set<string>();

  constructor(
    readonly networks: NetworkManager,
    readonly volumes: VolumeManager,
    private readonly log: { warn(obj: object, msg: string): void },
  ) {}

  /** At create, with the rootfs mounted: network endpoints recorded, volumes created and seeded. */
  async prepare(request: AttachRequest): Promise<Attached> {
    const { id, hostConfig, config } = request;
    const imageConfig = request.imageConfig as { ExposedPorts?: Record<string, unknown> | null; Volumes?: Record<string, unknown> | null };
    const exposed = [...new Set([...keys(imageConfig.ExposedPorts), ...keys(config.ExposedPorts)])];
    const endpoints = (request.networkingConfig as { EndpointsConfig?: Record<string, EndpointSettings> } | undefined)?.EndpointsConfig;
    const net = this.networks.prepare({
      id,
      name: request.name,
      hostname: config.Hostname || undefined,
      networkMode: hostConfig.NetworkMode,
      endpoints,
      portBindings: hostConfig.PortBindings,
      publishAll: hostConfig.PublishAllPorts === true,
      exposed,
      extraHosts: hostConfig.ExtraHosts,
    });
    if (hostConfig.AutoRemove === true) this.#autoRemove.add(id);
    try {
      const hostname = config.Hostname || (net.host ? hostHostname() : id.slice(0, 12));
      this.networks.setHostname(id, hostname);
      const resolved = await resolveMounts(this.volumes, {
        binds: hostConfig.Binds,
        mounts: hostConfig.Mounts,
        volumesFrom: hostConfig.VolumesFrom,
        anonymous: [...new Set([...keys(imageConfig.Volumes), ...keys(config.Volumes)])],
        mountsOf: (container) => {
          const found = this.networks.findContainer(container);
          return found ? this.volumes.mountsOf(found.id) : undefined;
        },
      });
      try {
        for (const s of resolved.seed) await this.volumes.seed(s.name, request.rootfs, s.destination);
        this.volumes.record(id, resolved.mounts);
      } catch (error) {
        for (const name of resolved.created) await this.volumes.remove(name, { force: true }).catch(() => undefined);
        throw error;
      }
      return {
        network: net.spec,
        mode: net.mode,
        hostname,
        etc: {
          extraHosts: net.extraHosts,
          ...(hostConfig.Dns?.length ? { nameservers: hostConfig.Dns } : {}),
          ...(hostConfig.DnsSearch?.length ? { search: hostConfig.DnsSearch } : {}),
          ...(hostConfig.DnsOptions?.length ? { options: hostConfig.DnsOptions } : {}),
        },
        mounts: specMounts(resolved.mounts),
      };
    } catch (error) {
      this.#autoRemove.delete(id);
      await this.networks.forget(id).catch(() => undefined);
      throw error;
    }
  }

  /** A create that failed after prepare: its records and the anonymous volumes it made go. */
  async discard(id: string): Promise<void> {
    this.#autoRemove.delete(id);
    await this.networks.forget(id).catch((error) => this.log.warn({ err: error, id }, "discarding network state"));
    await this.volumes.release(id, { anonymous: true }).catch(() => undefined);
  }

  /** Before runc creates the container: its network namespace and interfaces. */
  async beforeStart(id: string, namespaceReady?: () => void): Promise<void> {
    await this.networks.setUp(id, namespaceReady);
    this.#publishMounts(id, "mount");
  }

  /** Volume mount/unmount events, with the attributes dockerd gives them. */
  #publishMounts(id: string, action: "mount" | "unmount"): void {
    // `stopped` runs more than once for one exit (it is idempotent): one unmount per mount.
    if (action === "mount") this.#mounted.add(id);
    else if (!this.#mounted.delete(id)) return;
    for (const m of this.volumes.mountsOf(id)) {
      if (m.type !== "volume" || !m.name) continue;
      const attributes: Record<string, string> = { container: id, driver: "local" };
      if (action === "mount")
        Object.assign(attributes, { destination: m.destination, propagation: m.propagation, "read/write": String(m.rw) });
      this.volumes.events?.publish("volume", action, m.name, attributes);
    }
  }

  /**
   * After the container's process ended (or its start failed). Any container's exit is reported
   * only once its network is gone, as `stop` promises, except an auto-removed one's: its removal
   * follows at once and waits for the teardown in `removed` (`forget` queues behind it) before the
   * container's records go, so the teardown runs beside the removal's own work (runc delete) and
   * lazily (the kernel deletes its veths right after; see NetworkManager.tearDown).
   */
  async stopped(id: string): Promise<void> {
    this.#publishMounts(id, "unmount");
    const autoRemove = this.#autoRemove.has(id);
    const done = this.networks.tearDown(id, { lazy: autoRemove }).catch((error) => this.log.warn({ err: error, id }, "network teardown"));
    if (!autoRemove) await done;
  }

  /** `docker rename`: peers on its networks resolve the new name, and no longer the old one. */
  async renamed(id: string, name: string): Promise<void> {
    await this.networks.rename(id, name);
  }

  /** The container is gone: network state, mount records and, with `anonymousVolumes`, its anonymous volumes. */
  async removed(id: string, anonymousVolumes: boolean): Promise<void> {
    this.#autoRemove.delete(id);
    await this.networks.forget(id).catch((error) => this.log.warn({ err: error, id }, "network teardown"));
    await this.volumes.release(id, { anonymous: anonymousVolumes });
  }

  /**
   * After minatod (re)starts: containers that ended or were removed while it was down still hold
   * network namespaces, addresses and port rules; those go now.
   */
  async reconcile(containers: { id: string; status: string }[]): Promise<void> {
    const byId = new Map(containers.map((c) => [c.id, c.status]));
    for (const id of this.networks.activeSandboxes()) {
      const status = byId.get(id);
      if (status === "running" || status === "paused") continue;
      if (status === undefined) await this.removed(id, true);
      else await this.stopped(id);
    }
  }

  mountsOf(id: string): ContainerMount[] {
    return this.volumes.mountsOf(id);
  }
}
