// `GET /system/df` (swagger SystemDataUsage): what images, containers, volumes and the build cache
// hold on disk, with shared sizes and reference counts. API 1.52 changed the shape: older clients
// (docker CLI 28 asks for 1.50) read `LayersSize`, `Images`, `Containers`, `Volumes`, `BuildCache`;
// 1.52 and later read `ImageUsage`, `ContainerUsage`, `VolumeUsage`, `BuildCacheUsage`, with the
// lists as `Items` when `verbose`. A request without a version prefix gets both.
import { stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Digest } from "@minato/oci";
import type { Hono } from "hono";
import { BuildCache } from "../builder/cache.js";
import { cacheMounts } from "../builder/cache-mounts.js";
import { directorySize } from "../containers/usage.js";
import type { Engine } from "../engine.js";
import { imageSummary } from "../images.js";
import { queryBool } from "./booleans.js";
import { summary as containerSummary } from "./containers.js";
import { badRequest } from "./errors.js";
import type { EngineEnv } from "./types.js";
import { volumeJson } from "./volumes.js";

const TYPES = ["container", "image", "volume", "build-cache"] as const;
type UsageType = (typeof TYPES)[number];

interface Usage<T> {
  ActiveCount: number;
  TotalCount: number;
  Reclaimable: number;
  TotalSize: number;
  Items: T[];
}

async function imageUsage(engine: Engine) {
  const images = engine.images.list();
  const containers = engine.containers.list();
  const users = new Map<string, number>();
  for (const image of images)
    for (const layer of new Set(image.layers.map((l) => l.chainId))) users.set(layer, (users.get(layer) ?? 0) + 1);
  const size = (chainId: Digest) => engine.snapshots.size(chainId) ?? 0;
  const active = new Set(containers.map((c) => c.imageId));
  const activeLayers = new Set(images.filter((i) => active.has(i.id)).flatMap((i) => i.layers.map((l) => l.chainId)));
  const items = [];
  for (const image of images) {
    const layers = new Set(image.layers.map((l) => l.chainId));
    const shared = [...layers].filter((l) => (users.get(l) ?? 0) > 1).reduce((sum, l) => sum + size(l as Digest), 0);
    items.push({
      ...(await imageSummary(engine, image)),
      SharedSize: shared,
      Containers: containers.filter((c) => c.imageId === image.id).length,
    });
  }
  const layersSize = [...users.keys()].reduce((sum, l) => sum + size(l as Digest), 0);
  return {
    layersSize,
    usage: {
      ActiveCount: images.filter((i) => active.has(i.id)).length,
      TotalCount: images.length,
      // The layers no image in use by a container needs.
      Reclaimable: [...users.keys()].filter((l) => !activeLayers.has(l as Digest)).reduce((sum, l) => sum + size(l as Digest), 0),
      TotalSize: layersSize,
      Items: items,
    },
  };
}

async function containerUsage(engine: Engine): Promise<Usage<unknown>> {
  const items = [];
  let reclaimable = 0;
  let total = 0;
  let active = 0;
  for (const c of engine.containers.list()) {
    const sizeRw = await directorySize(join(engine.containers.dir(c.id), "upper"));
    const imageSize = engine.images.get(c.imageId as Digest)?.size ?? 0;
    const running = c.status === "running" || c.status === "paused";
    if (running) active++;
    else reclaimable += sizeRw;
    total += sizeRw;
    items.push({ ...(await containerSummary(engine, c)), SizeRw: sizeRw, SizeRootFs: sizeRw + imageSize });
  }
  return { ActiveCount: active, TotalCount: items.length, Reclaimable: reclaimable, TotalSize: total, Items: items };
}

async function volumeUsage(engine: Engine): Promise<Usage<unknown>> {
  const items = [];
  let reclaimable = 0;
  let total = 0;
  let active = 0;
  for (const v of engine.volumes.list()) {
    const size = await directorySize(engine.volumes.dataDir(v.name));
    const refCount = engine.volumes.users(v.name).length;
    if (refCount > 0) active++;
    else reclaimable += size;
    total += size;
    items.push({ ...volumeJson(engine, v), UsageData: { Size: size, RefCount: refCount } });
  }
  return { ActiveCount: active, TotalCount: items.length, Reclaimable: reclaimable, TotalSize: total, Items: items };
}

/** swagger `BuildCache` records: the builder's step cache (layers it made) and its RUN cache mounts. */
async function buildCacheUsage(engine: Engine): Promise<Usage<unknown>> {
  const imageLayers = new Set(engine.images.list().flatMap((i) => i.layers.map((l) => l.diffId as string)));
  const items: { ID: string; Type: string; Description: string; InUse: boolean; Shared: boolean; Size: number; [k: string]: unknown }[] =
    [];
  for (const entry of new BuildCache(engine.db).entries()) {
    items.push({
      ID: entry.key.replace(/^sha256:/, ""),
      Parents: null,
      Type: "regular",
      Description: entry.createdBy ?? "",
      InUse: false,
      // Its layer is also an image's layer: removing the cache entry frees nothing.
      Shared: entry.diffId !== undefined && imageLayers.has(entry.diffId),
      Size: entry.size,
      CreatedAt: entry.created,
      LastUsedAt: new Date(entry.usedAt).toISOString(),
    });
  }
  for (const mount of await cacheMounts(engine.config.dataRoot).list()) {
    const info = await stat(mount.dir).catch(() => undefined);
    if (!info) continue;
    items.push({
      ID: basename(mount.dir),
      Parents: null,
      Type: "exec.cachemount",
      Description: "cache mount (RUN --mount=type=cache)",
      InUse: mount.inUse,
      Shared: false,
      Size: await directorySize(mount.dir),
      CreatedAt: info.birthtime.toISOString(),
      LastUsedAt: info.mtime.toISOString(),
    });
  }
  const own = items.filter((i) => !i.Shared);
  return {
    ActiveCount: items.filter((i) => i.InUse).length,
    TotalCount: items.length,
    Reclaimable: own.filter((i) => !i.InUse).reduce((sum, i) => sum + i.Size, 0),
    TotalSize: own.reduce((sum, i) => sum + i.Size, 0),
    Items: items,
  };
}

const VERSION = /^\/v(\d+)\.(\d+)\//;

export function systemDfRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  app.get("/system/df", async (c) => {
    const asked = c.req.queries("type") ?? [];
    for (const type of asked) if (!(TYPES as readonly string[]).includes(type)) throw badRequest(`invalid type: ${type}`);
    const wants = (type: UsageType) => asked.length === 0 || asked.includes(type);
    const version = VERSION.exec(new URL(c.req.url).pathname);
    const legacy = !version || Number(version[1]) * 1000 + Number(version[2]) < 1052;
    const current = !version || !legacy;
    const verbose = queryBool(c.req.query("verbose"));

    const images = wants("image") ? await imageUsage(engine) : undefined;
    const containers = wants("container") ? await containerUsage(engine) : undefined;
    const volumes = wants("volume") ? await volumeUsage(engine) : undefined;
    const buildCache = wants("build-cache") ? await buildCacheUsage(engine) : undefined;
    const brief = <T>(usage: Usage<T>) => {
      const { Items, ...counts } = usage;
      return verbose ? usage : counts;
    };
    return c.json({
      ...(legacy
        ? {
            ...(images ? { LayersSize: images.layersSize, Images: images.usage.Items } : {}),
            ...(containers ? { Containers: containers.Items } : {}),
            ...(volumes ? { Volumes: volumes.Items } : {}),
            ...(buildCache ? { BuildCache: buildCache.Items } : {}),
          }
        : {}),
      ...(current
        ? {
            ...(images ? { ImageUsage: brief(images.usage) } : {}),
            ...(containers ? { ContainerUsage: brief(containers) } : {}),
            ...(volumes ? { VolumeUsage: brief(volumes) } : {}),
            ...(buildCache ? { BuildCacheUsage: brief(buildCache) } : {}),
          }
        : {}),
    });
  });
}
