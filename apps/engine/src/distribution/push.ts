import { type Digest, type ImageReference, MediaType } from "@minato/oci";
import type { Credentials } from "@minato/registry-client";
import type { Engine } from "../engine.js";
import type { ImageRecord } from "../image-store.js";
import { limiter, type ProgressSink, shortId } from "../progress.js";
import { type BlobDescriptor, type PushCompression, recompressImage } from "./recompress.js";

export class PushError extends Error {}

/**
 * Pushes a local image to the registry its reference names: layers in parallel (each skipped when
 * the repository has it, mounted from another repository of that registry when one is known to
 * hold it), then the config, then the image's own manifest bytes — so digests survive round trips.
 */
export async function pushImage(
  engine: Engine,
  image: ImageRecord,
  reference: ImageReference & { tag: string },
  options: { credentials?: Credentials; progress: ProgressSink; compression?: PushCompression },
): Promise<Digest> {
  const { progress } = options;
  if (!image.manifestDigest || !image.manifestMediaType || !(await engine.content.has(image.manifestDigest))) {
    throw new PushError(`image ${shortId(image.id)} has no manifest to push`);
  }
  const client = engine.registryClient(reference.registry, options.credentials);
  const { repository } = reference;
  progress({ status: `The push refers to repository [${reference.registry}/${repository}]` });
  // Refused before any layer line, with the registry's message (as dockerd's first upload would be).
  await client.checkPushAccess(repository);

  const slot = limiter(engine.config.maxConcurrentUploads);
  for (const layer of image.layers) progress({ status: "Preparing", id: shortId(layer.blobDigest) });
  // The image's own manifest, or one with its layers all compressed one way (`--compression`).
  const variant = options.compression
    ? await recompressImage(engine, image, options.compression, (digest) =>
        progress({ status: `Compressing (${options.compression})`, id: shortId(digest) }),
      )
    : undefined;
  const layers: BlobDescriptor[] =
    variant?.layers ?? image.layers.map((l) => ({ mediaType: l.mediaType, digest: l.blobDigest, size: l.blobSize }));
  const uploads = layers.map((layer) =>
    slot(async () => {
      const id = shortId(layer.digest);
      const mountFrom = engine.images.sources(layer.digest, reference.registry).find((r) => r !== repository);
      const outcome = await client.pushBlob(
        repository,
        { mediaType: layer.mediaType, digest: layer.digest, size: layer.size },
        (offset) => engine.content.stream(layer.digest, offset),
        {
          ...(mountFrom ? { mountFrom } : {}),
          onProgress: (p) => {
            if (p.status === "uploading") progress({ status: "Pushing", id, progressDetail: { current: p.current, total: p.total } });
          },
        },
      );
      if (outcome === "uploaded") engine.metrics.imageBytes("push", layer.size);
      progress({
        status: outcome === "exists" ? "Layer already exists" : outcome === "mounted" ? `Mounted from ${mountFrom}` : "Pushed",
        id,
      });
      engine.images.recordSource(layer.digest, reference.registry, repository);
    }),
  );
  await Promise.all(uploads);

  const config = await engine.content.read(image.id);
  const configOutcome = await client.pushBlob(
    repository,
    { mediaType: MediaType.ociConfig, digest: image.id, size: config.byteLength },
    (offset) => engine.content.stream(image.id, offset),
  );
  if (configOutcome === "uploaded") engine.metrics.imageBytes("push", config.byteLength);
  const manifest = variant?.manifest ?? (await engine.content.read(image.manifestDigest));
  const digest = await client.putManifest(repository, reference.tag, manifest, variant?.mediaType ?? image.manifestMediaType);
  engine.images.reference({ registry: reference.registry, repository, digest }, image.id);
  progress({ status: `${reference.tag}: digest: ${digest} size: ${manifest.byteLength}` });
  progress({ aux: { Tag: reference.tag, Digest: digest, Size: manifest.byteLength } });
  return digest;
}
