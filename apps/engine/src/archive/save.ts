import type { ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { END_OF_ARCHIVE, encodeHeader, padding } from "@minato/layers";
import { type Digest, MediaType, parseDigest, parseImageReference } from "@minato/oci";
import type { Engine } from "../engine.js";
import type { ImageRecord } from "../image-store.js";
import { familiarReference, findImage } from "../images.js";

const blobPath = (digest: Digest) => `blobs/${parseDigest(digest).algorithm}/${parseDigest(digest).encoded}`;

/**
 * `docker save`: an OCI image layout (image-spec image-layout.md) that also carries Docker's
 * `manifest.json`, as Docker 25+ writes it, so both `docker load` and OCI tools read it. Blobs are
 * written as stored — the same bytes the registry has — so digests survive a save/load round trip.
 */
export async function saveImages(engine: Engine, names: string[], out: ServerResponse): Promise<Response> {
  const chosen = new Map<Digest, { image: ImageRecord; tags: string[] }>();
  for (const name of names) {
    const image = findImage(engine, name);
    const entry = chosen.get(image.id) ?? { image, tags: [] };
    // A name that is a reference exports just that tag; an ID exports every tag of the image.
    const asTag = image.tags.find((t) => {
      try {
        const r = parseImageReference(name);
        return t === `${r.registry}/${r.repository}:${r.tag}`;
      } catch {
        return false;
      }
    });
    entry.tags.push(...(asTag ? [asTag] : image.tags));
    chosen.set(image.id, entry);
  }

  out.writeHead(200, { "Content-Type": "application/x-tar" });
  await pipeline(Readable.from(archive(engine, [...chosen.values()])), out);
  return RESPONSE_ALREADY_SENT;
}

function header(name: string, size: number): Buffer {
  return encodeHeader({
    name,
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    size,
    mtime: 0,
    linkname: "",
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
  });
}

/** The archive's bytes: each member's header, content and padding, then the end marker. */
async function* archive(engine: Engine, images: { image: ImageRecord; tags: string[] }[]): AsyncGenerator<Buffer> {
  const written = new Set<string>();
  async function* file(name: string, content: Buffer): AsyncGenerator<Buffer> {
    yield header(name, content.byteLength);
    yield content;
    yield padding(content.byteLength);
  }
  async function* blob(digest: Digest): AsyncGenerator<Buffer> {
    if (written.has(digest)) return;
    written.add(digest);
    const size = (await engine.content.size(digest)) as number;
    yield header(blobPath(digest), size);
    for await (const chunk of engine.content.stream(digest)) yield chunk as Buffer;
    yield padding(size);
  }

  yield* file("oci-layout", Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })));
  const index: { mediaType: string; digest: Digest; size: number; annotations?: Record<string, string> }[] = [];
  const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  for (const { image, tags } of images) {
    yield* blob(image.id);
    for (const layer of image.layers) yield* blob(layer.blobDigest);
    if (image.manifestDigest) {
      yield* blob(image.manifestDigest);
      const size = (await engine.content.size(image.manifestDigest)) as number;
      const base = { mediaType: image.manifestMediaType ?? MediaType.ociManifest, digest: image.manifestDigest, size };
      if (tags.length === 0) index.push(base);
      for (const tag of tags) {
        index.push({
          ...base,
          annotations: { "io.containerd.image.name": tag, "org.opencontainers.image.ref.name": tag.slice(tag.lastIndexOf(":") + 1) },
        });
      }
    }
    dockerManifest.push({
      Config: blobPath(image.id),
      RepoTags: tags.map(familiarReference),
      Layers: image.layers.map((l) => blobPath(l.blobDigest)),
    });
  }
  yield* file("index.json", Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: index })));
  yield* file("manifest.json", Buffer.from(JSON.stringify(dockerManifest)));
  yield END_OF_ARCHIVE;
}
