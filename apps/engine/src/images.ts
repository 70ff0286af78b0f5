import { familiarName, type ImageReference, parseImageReference } from "@minato/oci";
import { badRequest, conflict, notFound } from "./api/errors.js";
import type { ImageConfig } from "./distribution/pull.js";
import type { Engine } from "./engine.js";
import { AmbiguousImageError, type ImageRecord } from "./image-store.js";

/** `docker.io/library/busybox:latest` → `busybox:latest`, as the docker CLI shows references. */
export function familiarReference(full: string): string {
  const reference = parseImageReference(full, { defaultTag: false });
  const name = familiarName(reference);
  return reference.digest ? `${name}@${reference.digest}` : `${name}:${reference.tag}`;
}

export function findImage(engine: Engine, input: string): ImageRecord {
  let image: ImageRecord | undefined;
  try {
    image = engine.images.resolve(input);
  } catch (error) {
    if (error instanceof AmbiguousImageError) throw badRequest(error.message);
    throw error;
  }
  if (!image) throw notFound(`No such image: ${input}`);
  return image;
}

export function parseReferenceOrThrow(input: string, options?: { defaultTag?: string | false }): ImageReference {
  try {
    return parseImageReference(input, options);
  } catch (error) {
    throw badRequest((error as Error).message);
  }
}

export async function imageConfig(engine: Engine, image: ImageRecord): Promise<ImageConfig> {
  return JSON.parse((await engine.content.read(image.id)).toString("utf8")) as ImageConfig;
}

export function tagImage(engine: Engine, image: ImageRecord, repo: string, tag: string | undefined): void {
  const reference = parseReferenceOrThrow(tag ? `${repo}:${tag}` : repo);
  if (reference.digest) throw badRequest("refusing to create a tag with a digest reference");
  engine.images.reference(reference, image.id);
}

export interface DeleteItem {
  Untagged?: string;
  Deleted?: string;
}

/**
 * `docker rmi`: removing a reference untags it; the image itself goes once no tag is left. An image
 * ID that several repositories reference needs `force`. Unused content and snapshots are freed
 * unless `noprune`.
 */
export async function removeImage(engine: Engine, input: string, options: { force: boolean; noprune: boolean }): Promise<DeleteItem[]> {
  const image = findImage(engine, input);
  const items: DeleteItem[] = [];
  const byId = /^(?:sha256:)?[a-f0-9]{1,64}$/.test(input) && image.id.slice(7).startsWith(input.replace(/^sha256:/, ""));
  if (!byId) {
    const reference = parseReferenceOrThrow(input);
    const full = reference.digest
      ? `${reference.registry}/${reference.repository}@${reference.digest}`
      : `${reference.registry}/${reference.repository}:${reference.tag}`;
    const lastTag = image.tags.filter((t) => t !== full).length === 0;
    const users = lastTag ? engine.containers.usingImage(image.id) : [];
    const running = users.find((u) => u.status === "running" || u.status === "paused");
    if (running || (users[0] && !options.force)) {
      const user = (running ?? users[0]) as { id: string };
      throw conflict(
        `unable to remove repository reference "${input}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${image.id.slice(7, 19)}`,
      );
    }
    if (engine.images.unreference(full)) items.push({ Untagged: familiarReference(full) });
    const remaining = engine.images.get(image.id) as ImageRecord;
    // An image a container still uses stays (untagged) until the container goes, as with dockerd's force.
    if (remaining.tags.length > 0 || users.length > 0) return items;
  } else {
    const users = engine.containers.usingImage(image.id);
    const running = users.find((u) => u.status === "running" || u.status === "paused");
    if (running) {
      throw conflict(
        `unable to delete ${image.id.slice(7, 19)} (cannot be forced) - image is being used by running container ${running.id.slice(0, 12)}`,
      );
    }
    if (users[0] && !options.force) {
      throw conflict(
        `unable to delete ${image.id.slice(7, 19)} (must be forced) - image is being used by stopped container ${users[0].id.slice(0, 12)}`,
      );
    }
    if (users[0]) {
      for (const reference of [...image.tags, ...image.repoDigests]) {
        engine.images.unreference(reference);
        items.push({ Untagged: familiarReference(reference) });
      }
      return items;
    }
    const repositories = new Set(image.tags.map((t) => t.slice(0, t.lastIndexOf(":"))));
    if (repositories.size > 1 && !options.force) {
      throw conflict(`unable to delete ${image.id.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
    }
  }
  const current = engine.images.get(image.id) as ImageRecord;
  for (const reference of [...current.tags, ...current.repoDigests]) {
    engine.images.unreference(reference);
    items.push({ Untagged: familiarReference(reference) });
  }
  engine.images.delete(image.id);
  items.push({ Deleted: image.id });
  if (!options.noprune) await collectGarbage(engine);
  return items;
}

/** Frees content blobs and snapshots no image needs any more; returns the bytes reclaimed. */
export async function collectGarbage(engine: Engine): Promise<number> {
  const leased = engine.leased();
  let freed = await engine.snapshots.prune(new Set([...engine.images.liveChains(), ...leased]));
  freed += await engine.content.prune(new Set([...engine.images.liveContent(), ...leased]));
  return freed;
}

/** `docker image prune`: dangling images (no tags), or with `all` every image (no containers yet). */
export async function pruneImages(engine: Engine, all: boolean): Promise<{ ImagesDeleted: DeleteItem[]; SpaceReclaimed: number }> {
  const deleted: DeleteItem[] = [];
  for (const image of engine.images.list()) {
    if (!all && image.tags.length > 0) continue;
    if (engine.containers.usingImage(image.id).length > 0) continue;
    for (const reference of [...image.tags, ...image.repoDigests]) {
      engine.images.unreference(reference);
      deleted.push({ Untagged: familiarReference(reference) });
    }
    engine.images.delete(image.id);
    deleted.push({ Deleted: image.id });
  }
  return { ImagesDeleted: deleted, SpaceReclaimed: await collectGarbage(engine) };
}

const seconds = (iso: string | undefined) => (iso ? Math.floor(Date.parse(iso) / 1000) : 0);

/** swagger `ImageSummary`. */
export async function imageSummary(engine: Engine, image: ImageRecord) {
  const config = await imageConfig(engine, image);
  return {
    Id: image.id,
    ParentId: "",
    RepoTags: image.tags.map(familiarReference),
    RepoDigests: image.repoDigests.map(familiarReference),
    Created: seconds(image.created),
    Size: image.size,
    SharedSize: -1,
    VirtualSize: image.size,
    Labels: (config.config?.Labels as Record<string, string> | undefined) ?? {},
    Containers: -1,
  };
}

/** swagger `ImageInspect`. */
export async function inspectImage(engine: Engine, image: ImageRecord) {
  const config = await imageConfig(engine, image);
  return {
    Id: image.id,
    RepoTags: image.tags.map(familiarReference),
    RepoDigests: image.repoDigests.map(familiarReference),
    Parent: "",
    Comment: config.history?.at(-1)?.comment ?? "",
    Created: image.created ?? "",
    DockerVersion: "",
    Author: config.author ?? "",
    Config: config.config ?? {},
    Architecture: config.architecture ?? "",
    Os: config.os ?? "",
    ...(config.variant ? { Variant: config.variant } : {}),
    Size: image.size,
    VirtualSize: image.size,
    GraphDriver: {
      Name: "overlay2",
      Data: {
        LowerDir: image.layers
          .map((l) => engine.snapshots.path(l.chainId))
          .reverse()
          .join(":"),
      },
    },
    RootFS: { Type: "layers", Layers: image.layers.map((l) => l.diffId) },
    Metadata: { LastTagTime: "0001-01-01T00:00:00Z" },
    Descriptor: image.manifestDigest
      ? { mediaType: image.manifestMediaType, digest: image.manifestDigest, size: (await engine.content.size(image.manifestDigest)) ?? 0 }
      : undefined,
  };
}

/** swagger `HistoryResponseItem`s, newest first; only the newest entry carries the image ID. */
export async function imageHistory(engine: Engine, image: ImageRecord) {
  const config = await imageConfig(engine, image);
  const entries = config.history ?? image.layers.map(() => ({}) as NonNullable<ImageConfig["history"]>[number]);
  let layer = 0;
  const items = entries.map((entry) => {
    let size = 0;
    if (!entry.empty_layer) {
      const record = image.layers[layer++];
      size = record ? (engine.snapshots.size(record.chainId) ?? 0) : 0;
    }
    return {
      Id: "<missing>",
      Created: seconds(entry.created),
      CreatedBy: entry.created_by ?? "",
      Tags: null as string[] | null,
      Size: size,
      Comment: entry.comment ?? "",
    };
  });
  items.reverse();
  if (items[0]) {
    items[0].Id = image.id;
    items[0].Tags = image.tags.map(familiarReference);
  }
  return items;
}
