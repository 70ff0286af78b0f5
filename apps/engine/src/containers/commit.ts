// `docker commit` (swagger "ImageCommit"): the container's image plus one layer of its changes (the
// upper dir without the runtime's traces), with the container's config — or the request's — and the
// `changes` applied. A running container is frozen while its changes are read, unless `pause=false`.
import type { LayerCompression } from "@minato/layers";
import { type Digest, formatImageReference } from "@minato/oci";
import { ApiError, badRequest } from "../api/errors.js";
import type { ImageConfig } from "../distribution/pull.js";
import type { Engine } from "../engine.js";
import { imageConfig, parseReferenceOrThrow } from "../images.js";
import { stackLayer, storeLayer, writeImage } from "../layer-commit.js";
import { chainIds } from "../snapshots.js";
import { frozen } from "./archive.js";
import { containerDiff, containerLayers } from "./changes.js";
import { applyCommitChanges, mergeConfig, type RunConfig } from "./commit-config.js";

export interface CommitRequest {
  container: string;
  repo?: string | undefined;
  tag?: string | undefined;
  comment?: string | undefined;
  author?: string | undefined;
  pause: boolean;
  changes: string[];
  /** A ContainerConfig replacing the container's (its empty fields still come from the container). */
  config?: RunConfig | null | undefined;
  /** How the new layer is compressed (a Minato extension; gzip by default). */
  compression?: LayerCompression | undefined;
}

export async function commitContainer(engine: Engine, request: CommitRequest): Promise<Digest> {
  const c = engine.containers.get(request.container);
  const image = engine.images.get(c.imageId as Digest);
  if (!image) throw new ApiError(500, `the image ${c.imageId} of container ${c.name} is gone: cannot commit`);
  if (!request.repo && request.tag) throw badRequest("tag is given without a repository");
  const reference = request.repo ? parseReferenceOrThrow(request.tag ? `${request.repo}:${request.tag}` : request.repo) : undefined;
  if (reference?.digest) throw badRequest("refusing to create a tag with a digest reference");
  const given = request.config && Object.keys(request.config).length > 0 ? request.config : c.config;
  const runConfig = mergeConfig(applyCommitChanges(given, request.changes), c.config);

  const base = await imageConfig(engine, image);
  const layers = containerLayers(engine, c);
  let entries = 0;
  const read = async () => storeLayer(engine, await containerDiff(layers, () => entries++), request.compression);
  const stored = request.pause ? await frozen(engine, c, read) : await read();

  const diffIds = image.layers.map((l) => l.diffId);
  const chainId = chainIds([...diffIds, stored.diffId]).at(-1) as Digest;
  const release = engine.lease([stored.digest, chainId, image.id, ...image.layers.flatMap((l) => [l.blobDigest, l.chainId])]);
  try {
    // An unchanged container adds no layer, only history (as moby does for an empty diff).
    const layerRecords = entries > 0 ? [...image.layers, await stackLayer(engine, image.layers, stored)] : image.layers;
    const created = new Date().toISOString();
    const cmd = (c.config.Cmd as string[] | null | undefined) ?? [];
    const config: ImageConfig = {
      ...(base.architecture ? { architecture: base.architecture } : {}),
      os: base.os ?? "linux",
      ...(base.variant ? { variant: base.variant } : {}),
      created,
      ...(request.author ? { author: request.author } : {}),
      config: runConfig,
      rootfs: { type: "layers", diff_ids: layerRecords.map((l) => l.diffId) },
      history: [
        ...(base.history ?? []),
        {
          created,
          ...(request.author ? { author: request.author } : {}),
          created_by: cmd.join(" "),
          ...(request.comment ? { comment: request.comment } : {}),
          ...(entries === 0 ? { empty_layer: true } : {}),
        },
      ],
    };
    const id = await writeImage(engine, config, layerRecords);
    if (reference) engine.images.reference(reference, id);
    engine.logger.info({ container: c.id, image: id, ...(reference ? { reference: formatImageReference(reference) } : {}) }, "committed");
    return id;
  } finally {
    release();
  }
}
