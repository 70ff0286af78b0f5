import { dirname, join } from "node:path";
import type { Digest } from "@minato/oci";
import type { Credentials } from "@minato/registry-client";
import { RegistryClient } from "@minato/registry-client";
import type pino from "pino";
import type { EngineConfig } from "./config.js";
import { HealthMonitor } from "./containers/health.js";
import { ContainerManager } from "./containers/manager.js";
import { ContentStore } from "./content-store.js";
import { type EngineDatabase, openDatabase } from "./db.js";
import { EventLog } from "./events/log.js";
import { ImageStore } from "./image-store.js";
import { EngineMetrics } from "./metrics.js";
import { ContainerAttachments } from "./networks/attachments.js";
import { NetworkManager } from "./networks/manager.js";
import { SnapshotStore } from "./snapshots.js";
import { checkTraversable, makeTraversable, resolveRemap } from "./userns.js";
import { VolumeManager } from "./volumes/manager.js";

export const ENGINE_VERSION = "0.1.0";

/** The engine's state and services, shared by the API handlers. */
export class Engine {
  private constructor(
    readonly config: EngineConfig,
    readonly logger: pino.Logger,
    readonly db: EngineDatabase,
    readonly content: ContentStore,
    readonly images: ImageStore,
    readonly snapshots: SnapshotStore,
    readonly containers: ContainerManager,
    readonly networks: NetworkManager,
    readonly volumes: VolumeManager,
    readonly events: EventLog,
    readonly health: HealthMonitor,
    readonly metrics: EngineMetrics,
  ) {}

  static async open(config: EngineConfig, logger: pino.Logger): Promise<Engine> {
    const db = openDatabase(join(config.dataRoot, "minato.db"));
    const content = await ContentStore.open(join(config.dataRoot, "content"));
    const snapshots = await SnapshotStore.open(join(config.dataRoot, "snapshots"), db);
    const images = new ImageStore(db);
    const networks = await NetworkManager.open(
      config.dataRoot,
      config.execRoot,
      db,
      (id) => join(config.dataRoot, "containers", id, "etc", "hosts"),
      logger,
      config.cniPath,
    );
    const volumes = new VolumeManager(config.dataRoot, db);
    const events = new EventLog();
    networks.events = events;
    volumes.events = events;
    // --userns-remap: the ids, the data root made traversable for the remapped root, new volumes theirs.
    const remap = config.usernsRemap ? resolveRemap(config.usernsRemap) : undefined;
    if (remap) {
      await checkTraversable(dirname(config.dataRoot));
      await makeTraversable(config.dataRoot);
      volumes.newOwner = remap.root;
    }
    const attachments = new ContainerAttachments(networks, volumes, logger);
    networks.findContainer = (input) => containers.find(input);
    const containers: ContainerManager = await ContainerManager.open(
      config.dataRoot,
      config.execRoot,
      db,
      snapshots,
      (id) => images.get(id as Digest),
      logger,
      attachments,
      remap,
    );
    containers.events = events;
    // Subscribed before anything else can start a container (restart policies run from here on).
    const health = new HealthMonitor(containers, events, logger);
    snapshots.onRemove = (encoded) => containers.removeShifted(encoded);
    networks.netns.userns = (id) => {
      const map = containers.idMapOf({ id });
      return map?.uids[0] && map.gids[0] ? { uid: map.uids[0], gid: map.gids[0] } : undefined;
    };
    await attachments.reconcile(containers.list());
    await health.resume();
    // Always counted (cheap); served, with the process's own metrics, only with --metrics-addr.
    const metrics = new EngineMetrics({ version: ENGINE_VERSION, storageDriver: "overlay2", runtime: "runc" });
    metrics.countEvents(events);
    metrics.watchContainers(containers, health);
    return new Engine(config, logger, db, content, images, snapshots, containers, networks, volumes, events, health, metrics);
  }

  readonly #leases = new Map<string, number>();

  /**
   * Protects content and snapshots that work in progress (a pull, a load) has written but no image
   * record references yet from garbage collection. Returns the release function.
   */
  lease(keys: Iterable<string>): () => void {
    const held = [...keys];
    for (const key of held) this.#leases.set(key, (this.#leases.get(key) ?? 0) + 1);
    return () => {
      for (const key of held) {
        const count = (this.#leases.get(key) ?? 1) - 1;
        if (count === 0) this.#leases.delete(key);
        else this.#leases.set(key, count);
      }
    };
  }

  leased(): Set<string> {
    return new Set(this.#leases.keys());
  }

  registryClient(registry: string, credentials?: Credentials): RegistryClient {
    const insecure = this.config.insecureRegistries.includes(registry) || undefined;
    return new RegistryClient({
      registry,
      ...(credentials ? { credentials } : {}),
      ...(insecure ? { insecure } : {}),
      userAgent: `minato/${process.env.npm_package_version ?? "0.1.0"}`,
    });
  }

  close(): void {
    this.health.close();
    this.containers.close();
    this.networks.close();
    this.db.close();
  }
}
