import { createWriteStream } from "node:fs";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { readTar } from "@minato/layers";
import {
  type Descriptor,
  type Digest,
  digestOf,
  hostPlatform,
  isIndexMediaType,
  MediaType,
  parseImageReference,
  parseManifest,
  selectPlatform,
} from "@minato/oci";
import { badRequest } from "../api/errors.js";
import type { ImageConfig } from "../distribution/pull.js";
import type { Engine } from "../engine.js";
import type { LayerRecord } from "../image-store.js";
import { familiarReference } from "../images.js";
import type { ProgressSink } from "../progress.js";
import { chainIds } from "../snapshots.js";
import { describeLayerFile, type LayerFile } from "./layer-file.js";

/** Archive member names: relative, no `..`, nothing but what image archives use. */
function safeName(name: string): string | undefined {
  const clean = normalize(name).replace(/^\.\/+/, "");
  if (clean.startsWith("/") || clean.startsWith("..") || clean.includes("/../") || !/^[A-Za-z0-9._:/+=-]+$/.test(clean)) return undefined;
  return clean;
}

/** Writes the archive's regular files under `dir`, refusing members whose names could escape it. */
async function extract(source: Readable, dir: string): Promise<void> {
  for await (const entry of readTar(source)) {
    if (entry.header.type !== "file") continue;
    const name = safeName(entry.header.name);
    if (!name) throw badRequest(`invalid member name in image archive: ${JSON.stringify(entry.header.name)}`);
    const target = join(dir, name);
    await mkdir(dirname(target), { recursive: true });
    await pipeline(Readable.from(entry.body), createWriteStream(target, { flags: "wx" }));
  }
}

interface ArchiveImage {
  config: Buffer;
  layerPaths: string[];
  tags: string[];
  /** The image manifest from an OCI layout, kept byte for byte when present. */
  manifest?: { bytes: Buffer; mediaType: string };
}

/** Reads what images an archive holds: Docker's manifest.json, or an OCI layout's index.json. */
async function readArchive(dir: string): Promise<ArchiveImage[]> {
  const read = (path: string) => readFile(join(dir, safeName(path) ?? "\0"));
  const exists = (path: string) =>
    stat(join(dir, path)).then(
      () => true,
      () => false,
    );
  const blob = (digest: string) => read(`blobs/${digest.replace(":", "/")}`);

  // Image manifests of the OCI layout by config digest, to reuse their bytes.
  const manifests = new Map<string, { bytes: Buffer; mediaType: string; tags: string[] }>();
  if (await exists("index.json")) {
    const index = JSON.parse((await read("index.json")).toString("utf8")) as { manifests?: Descriptor[] };
    for (const descriptor of index.manifests ?? []) {
      let bytes = await blob(descriptor.digest);
      let mediaType = descriptor.mediaType;
      if (isIndexMediaType(mediaType)) {
        const choice = selectPlatform(parseManifest(bytes, mediaType).manifests, hostPlatform());
        if (!choice) continue;
        bytes = await blob(choice.digest);
        mediaType = choice.mediaType;
      }
      const summary = parseManifest(bytes, mediaType);
      const config = summary.blobs[0]?.digest as string;
      const entry = manifests.get(config) ?? { bytes, mediaType, tags: [] };
      const name = descriptor.annotations?.["io.containerd.image.name"];
      if (name) entry.tags.push(name);
      manifests.set(config, entry);
    }
  }

  if (await exists("manifest.json")) {
    const entries = JSON.parse((await read("manifest.json")).toString("utf8")) as {
      Config: string;
      RepoTags?: string[] | null;
      Layers: string[];
    }[];
    return Promise.all(
      entries.map(async (entry) => {
        const config = await read(entry.Config);
        const manifest = manifests.get(digestOf(config));
        return {
          config,
          layerPaths: entry.Layers.map((l) => join(dir, safeName(l) ?? "\0")),
          tags: entry.RepoTags ?? [],
          ...(manifest ? { manifest: { bytes: manifest.bytes, mediaType: manifest.mediaType } } : {}),
        };
      }),
    );
  }
  return Promise.all(
    [...manifests.entries()].map(async ([config, manifest]) => ({
      config: await blob(config),
      layerPaths: parseManifest(manifest.bytes, manifest.mediaType)
        .blobs.slice(1)
        .map((l) => join(dir, "blobs", l.digest.replace(":", "/"))),
      tags: manifest.tags,
      manifest: { bytes: manifest.bytes, mediaType: manifest.mediaType },
    })),
  );
}

/**
 * `docker load`: reads a `docker save` archive (Docker's manifest.json, with or without an OCI
 * layout) or a plain OCI layout; every layer is checked against the config's diff IDs before
 * anything is recorded.
 */
export async function loadImages(engine: Engine, body: Readable, progress: ProgressSink, always: ProgressSink): Promise<void> {
  const dir = engine.content.temporaryPath("load");
  await mkdir(dir, { recursive: true });
  try {
    await extract(body, dir);
    const images = await readArchive(dir).catch((error: NodeJS.ErrnoException) => {
      throw error.code === "ENOENT"
        ? badRequest("invalid image archive: no manifest.json or index.json, or a file it names is missing")
        : error;
    });
    if (images.length === 0) throw badRequest("image archive holds no image");
    // Each layer file is hashed once, before any is moved into the store: images may share layers.
    const layerFiles = new Map<string, LayerFile>();
    for (const path of new Set(images.flatMap((image) => image.layerPaths))) layerFiles.set(path, await describeLayerFile(path));
    for (const archived of images) await loadImage(engine, archived, layerFiles, progress, always);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function loadImage(
  engine: Engine,
  archived: ArchiveImage,
  layerFiles: Map<string, LayerFile>,
  progress: ProgressSink,
  always: ProgressSink,
): Promise<void> {
  const config = JSON.parse(archived.config.toString("utf8")) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== archived.layerPaths.length)
    throw badRequest(`image config lists ${diffIds.length} layers, the archive ${archived.layerPaths.length}`);
  const chains = chainIds(diffIds);
  const id = digestOf(archived.config);
  const files = archived.layerPaths.map((path) => layerFiles.get(path) as LayerFile);
  const release = engine.lease([id, ...files.map((f) => f.digest), ...chains]);
  try {
    const layers: LayerRecord[] = [];
    let size = 0;
    for (const [i, file] of files.entries()) {
      if (file.diffId !== diffIds[i])
        throw badRequest(`layer ${i + 1} of the archive does not match the image config (diff ID ${file.diffId})`);
      progress({ status: "Loading layer", id: file.digest.slice(7, 19), progressDetail: { current: 0, total: file.size } });
      await engine.content.adopt(archived.layerPaths[i] as string, file.digest);
      size += await engine.snapshots.unpack(chains[i] as Digest, chains[i - 1], file.diffId, () => engine.content.stream(file.digest));
      progress({ status: "Loading layer", id: file.digest.slice(7, 19), progressDetail: { current: file.size, total: file.size } });
      layers.push({
        diffId: file.diffId,
        chainId: chains[i] as Digest,
        blobDigest: file.digest,
        blobSize: file.size,
        mediaType: { gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd, none: MediaType.ociLayer }[file.compression],
      });
    }
    await engine.content.put(archived.config, id);
    // Keep the archive's manifest when it describes exactly these blobs; else write an OCI one.
    const kept = archived.manifest && parseManifest(archived.manifest.bytes, archived.manifest.mediaType).blobs.map((b) => b.digest);
    const matches = kept !== undefined && kept.join() === [id, ...layers.map((l) => l.blobDigest)].join();
    const manifest = (matches ? archived.manifest : undefined) ?? {
      bytes: Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: id, size: archived.config.byteLength },
          layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.blobDigest, size: l.blobSize })),
        }),
      ),
      mediaType: MediaType.ociManifest,
    };
    const manifestDigest = await engine.content.put(manifest.bytes);
    engine.images.save({
      id,
      manifestDigest,
      manifestMediaType: manifest.mediaType,
      size,
      layers,
      ...(config.created ? { created: config.created } : {}),
    });
    for (const tag of archived.tags) {
      const reference = parseImageReference(tag);
      engine.images.reference(reference, id);
      always({ stream: `Loaded image: ${familiarReference(`${reference.registry}/${reference.repository}:${reference.tag}`)}\n` });
    }
    if (archived.tags.length === 0) always({ stream: `Loaded image ID: ${id}\n` });
  } finally {
    release();
  }
}
