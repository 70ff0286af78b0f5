import {
  type Descriptor,
  type Digest,
  familiarName,
  formatPlatform,
  type ImageReference,
  isIndexMediaType,
  type Platform,
  parseManifest,
  selectPlatform,
} from "@minato/oci";
import { type Credentials, type FetchedManifest, type RegistryClient, RegistryResponseError } from "@minato/registry-client";
import type { Engine } from "../engine.js";
import type { ImageRecord, LayerRecord } from "../image-store.js";
import { limiter, type ProgressSink, shortId } from "../progress.js";
import { chainIds } from "../snapshots.js";

export class PullError extends Error {}

/** The parts of an image config (image-spec config.md) the engine reads. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  config?: Record<string, unknown>;
  rootfs?: { type: string; diff_ids: Digest[] };
  history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean; author?: string }[];
}

/** What a reference resolves to on the registry: the manifest for our platform and its parts. */
interface Resolved {
  top: FetchedManifest;
  manifest: FetchedManifest;
  config: Descriptor;
  layers: Descriptor[];
}

/** Downloads a blob into the content store unless it is there; resumes an earlier partial download. */
async function fetchBlob(
  engine: Engine,
  client: RegistryClient,
  repository: string,
  descriptor: Descriptor,
  onBytes?: (current: number) => void,
) {
  if (await engine.content.has(descriptor.digest)) return;
  await client.downloadBlob(repository, descriptor, engine.content.ingestPath(descriptor.digest), (p) => {
    if (p.status === "downloading") onBytes?.(p.current);
  });
  await engine.content.commitIngest(descriptor.digest);
  engine.metrics.imageBytes("pull", descriptor.size);
}

/**
 * A registry's refusal to an anonymous or unauthorised pull, said as Docker says it: the repository
 * may not exist, or may need a login (a registry answers both the same, so as not to reveal which).
 */
function accessDenied(error: unknown, reference: ImageReference): unknown {
  if (!(error instanceof RegistryResponseError) || (error.status !== 401 && error.status !== 403)) return error;
  const first = error.errors[0];
  const said = first ? `${first.code.toLowerCase()}: ${first.message ?? ""}`.trim() : `HTTP ${error.status}`;
  return new PullError(
    `pull access denied for ${familiarName(reference)}, repository does not exist or may require 'minato login': ${said}`,
  );
}

async function resolve(client: RegistryClient, reference: ImageReference, platform: Platform): Promise<Resolved> {
  const top = await client.getManifest(reference.repository, reference.digest ?? (reference.tag as string)).catch((error: unknown) => {
    throw accessDenied(error, reference);
  });
  let manifest = top;
  if (isIndexMediaType(top.mediaType)) {
    const choice = selectPlatform(parseManifest(top.bytes, top.mediaType).manifests, platform);
    if (!choice) throw new PullError(`no matching manifest for ${formatPlatform(platform)} in the manifest list entries`);
    manifest = await client.getManifest(reference.repository, choice.digest);
  }
  const summary = parseManifest(manifest.bytes, manifest.mediaType);
  if (summary.kind !== "image") throw new PullError(`${familiarName(reference)} is not an image`);
  const [config, ...layers] = summary.blobs as [Descriptor, ...Descriptor[]];
  return { top, manifest, config, layers };
}

/**
 * Pulls an image: resolves the reference (choosing `platform` from an index), fetches config and
 * layers in parallel into the content store — each verified against its digest — unpacks layers in
 * order into snapshots, and records the image with its tag and repo digest. Progress is reported as
 * Docker's JSON messages. Everything written is leased until the image record holds it.
 */
export async function pullImage(
  engine: Engine,
  reference: ImageReference,
  options: { platform: Platform; credentials?: Credentials; progress: ProgressSink },
): Promise<ImageRecord> {
  const { progress } = options;
  const client = engine.registryClient(reference.registry, options.credentials);
  progress({ status: `Pulling from ${familiarName(reference)}`, id: reference.tag ?? reference.digest });
  const resolved = await resolve(client, reference, options.platform);
  const { top, manifest, config } = resolved;

  const release = engine.lease([top.digest, manifest.digest, config.digest, ...resolved.layers.map((l) => l.digest)]);
  try {
    await fetchBlob(engine, client, reference.repository, config);
    const imageConfig = JSON.parse((await engine.content.read(config.digest)).toString("utf8")) as ImageConfig;
    const diffIds = imageConfig.rootfs?.diff_ids ?? [];
    if (diffIds.length !== resolved.layers.length) {
      throw new PullError(`image config lists ${diffIds.length} layers but the manifest has ${resolved.layers.length}`);
    }
    const releaseChains = engine.lease(chainIds(diffIds));
    try {
      const { layers, size } = await fetchAndUnpack(engine, client, reference, resolved.layers, diffIds, progress);
      if (top.digest !== manifest.digest) await engine.content.put(top.bytes, top.digest);
      await engine.content.put(manifest.bytes, manifest.digest);
      const existing = engine.images.get(config.digest);
      engine.images.save(
        {
          id: config.digest,
          manifestDigest: manifest.digest,
          manifestMediaType: manifest.mediaType,
          size,
          layers,
          ...(imageConfig.created ? { created: imageConfig.created } : {}),
        },
        top.digest !== manifest.digest ? [top.digest] : [],
      );
      engine.images.recordSource(config.digest, reference.registry, reference.repository);
      const tagged = reference.tag ? `${reference.registry}/${reference.repository}:${reference.tag}` : undefined;
      const upToDate = existing !== undefined && (!tagged || existing.tags.includes(tagged));
      if (reference.tag)
        engine.images.reference({ registry: reference.registry, repository: reference.repository, tag: reference.tag }, config.digest);
      engine.images.reference({ registry: reference.registry, repository: reference.repository, digest: top.digest }, config.digest);
      progress({ status: `Digest: ${top.digest}` });
      const shown = `${familiarName(reference)}${reference.tag ? `:${reference.tag}` : `@${reference.digest}`}`;
      progress({ status: upToDate ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}` });
      return engine.images.get(config.digest) as ImageRecord;
    } finally {
      releaseChains();
    }
  } finally {
    release();
  }
}

/** Downloads run in parallel; unpacking follows in order, each layer on top of its parent. */
async function fetchAndUnpack(
  engine: Engine,
  client: RegistryClient,
  reference: ImageReference,
  descriptors: Descriptor[],
  diffIds: Digest[],
  progress: ProgressSink,
): Promise<{ layers: LayerRecord[]; size: number }> {
  const chains = chainIds(diffIds);
  const slot = limiter(engine.config.maxConcurrentDownloads);
  const downloads = descriptors.map((layer, i) =>
    slot(async () => {
      const id = shortId(layer.digest);
      // The blob is kept for pushes, so a layer "exists" only when both blob and snapshot are here.
      if ((await engine.content.has(layer.digest)) && engine.snapshots.size(chains[i] as Digest) !== undefined) {
        progress({ status: "Already exists", id });
        return;
      }
      progress({ status: "Pulling fs layer", id });
      // At most ten updates a second per layer, as dockerd does: each is a JSON line to render.
      let reported = 0;
      await fetchBlob(engine, client, reference.repository, layer, (current) => {
        const now = Date.now();
        if (now - reported < 100) return;
        reported = now;
        progress({ status: "Downloading", id, progressDetail: { current, total: layer.size } });
      });
      progress({ status: "Download complete", id });
    }),
  );
  // Failures surface in order below; no download may be left with an unobserved rejection.
  for (const download of downloads) download.catch(() => undefined);

  const layers: LayerRecord[] = [];
  let size = 0;
  for (const [i, layer] of descriptors.entries()) {
    await downloads[i];
    const id = shortId(layer.digest);
    const chainId = chains[i] as Digest;
    const unpacked = engine.snapshots.size(chainId) !== undefined;
    if (!unpacked) progress({ status: "Extracting", id, progressDetail: { current: 0, total: layer.size } });
    size += await engine.snapshots.unpack(chainId, chains[i - 1], diffIds[i] as Digest, () => engine.content.stream(layer.digest));
    if (!unpacked) progress({ status: "Pull complete", id });
    layers.push({ diffId: diffIds[i] as Digest, chainId, blobDigest: layer.digest, blobSize: layer.size, mediaType: layer.mediaType });
    engine.images.recordSource(layer.digest, reference.registry, reference.repository);
  }
  return { layers, size };
}
