import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** Media types of image-spec media-types.md used by the fixtures. */
export const OCI = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  empty: "application/vnd.oci.empty.v1+json",
} as const;

/** image-spec annotations.md: the tag of a manifest listed in an image layout's index.json. */
export const REF_NAME = "org.opencontainers.image.ref.name";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
  data?: string;
}

export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export function blob(mediaType: string, bytes: Buffer, extra: Partial<Descriptor> = {}): Blob {
  return { descriptor: { mediaType, digest: digestOf(bytes), size: bytes.byteLength, ...extra }, bytes };
}

export function jsonBlob(mediaType: string, value: unknown, extra: Partial<Descriptor> = {}): Blob {
  return blob(mediaType, Buffer.from(JSON.stringify(value)), extra);
}

// ---------------------------------------------------------------------------------------------
// tar (POSIX ustar, written by hand) and gzip layers
// ---------------------------------------------------------------------------------------------

export interface TarEntry {
  /** Path inside the archive, without a leading slash; directories end in "/". */
  path: string;
  /** File content; absent for directories. */
  content?: Buffer;
  mode?: number;
}

const BLOCK = 512;
/** A fixed modification time keeps layers reproducible. */
const MTIME = 1_700_000_000;

function writeField(header: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, "utf8");
  if (bytes.byteLength > length) throw new Error(`tar field too long: ${value}`);
  bytes.copy(header, offset);
}

/** An octal number field: zero-padded digits then a NUL, filling `length` bytes. */
function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  writeField(header, offset, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
}

function tarHeader(entry: TarEntry): Buffer {
  const header = Buffer.alloc(BLOCK);
  const isDirectory = entry.path.endsWith("/");
  let name = entry.path;
  let prefix = "";
  if (Buffer.byteLength(name) > 100) {
    // ustar splits long paths at a slash into prefix (155 bytes) and name (100 bytes).
    const cut = name.lastIndexOf("/", name.length - 2);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  writeField(header, 0, 100, name);
  writeOctal(header, 100, 8, entry.mode ?? (isDirectory ? 0o755 : 0o644));
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  writeOctal(header, 124, 12, entry.content?.byteLength ?? 0);
  writeOctal(header, 136, 12, MTIME);
  header.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  writeField(header, 156, 1, isDirectory ? "5" : "0");
  writeField(header, 257, 6, "ustar\0");
  writeField(header, 263, 2, "00");
  writeField(header, 265, 32, "root");
  writeField(header, 297, 32, "root");
  writeField(header, 345, 155, prefix);
  let sum = 0;
  for (const byte of header) sum += byte;
  writeField(header, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return header;
}

/** An uncompressed tar archive: a header per entry, content padded to 512 bytes, two zero blocks at the end. */
export function tar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    parts.push(tarHeader(entry));
    if (entry.content && entry.content.byteLength > 0) {
      parts.push(entry.content);
      const padding = (BLOCK - (entry.content.byteLength % BLOCK)) % BLOCK;
      parts.push(Buffer.alloc(padding));
    }
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

export interface Layer extends Blob {
  /** The digest of the uncompressed tar: the image config's rootfs.diff_ids entry. */
  diffId: string;
}

/** A gzip-compressed tar layer (image-spec layer.md) with its diff_id. */
export function gzipLayer(entries: TarEntry[]): Layer {
  const archive = tar(entries);
  return { ...blob(OCI.layerGzip, gzipSync(archive, { level: 6 })), diffId: digestOf(archive) };
}

/** A layer holding a directory and a few files of random content, so every layer is distinct. */
export function randomLayer(name: string, files = 3, fileSize = 24 * 1024): Layer {
  const entries: TarEntry[] = [{ path: `${name}/` }];
  for (let i = 0; i < files; i++) entries.push({ path: `${name}/file-${i}.bin`, content: randomBytes(fileSize) });
  entries.push({ path: `${name}/README`, content: Buffer.from(`layer ${name}\n`) });
  return gzipLayer(entries);
}

// ---------------------------------------------------------------------------------------------
// Images, indexes and artifacts
// ---------------------------------------------------------------------------------------------

export interface Image {
  manifest: Blob;
  config: Blob;
  layers: Layer[];
  /** Every blob the manifest references, config first. */
  blobs: Blob[];
}

/** An image manifest with an OCI config whose rootfs.diff_ids match the layers. */
export function image(platform: { architecture: string; os: string }, layers: Layer[], label: string): Image {
  const config = jsonBlob(OCI.config, {
    created: "2024-01-01T00:00:00Z",
    architecture: platform.architecture,
    os: platform.os,
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"], Labels: { fixture: label } },
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map((_, i) => ({ created: "2024-01-01T00:00:00Z", created_by: `minato e2e ${label} layer ${i}` })),
  });
  const manifest = jsonBlob(OCI.manifest, {
    schemaVersion: 2,
    mediaType: OCI.manifest,
    config: config.descriptor,
    layers: layers.map((layer) => layer.descriptor),
    annotations: { "org.opencontainers.image.title": label },
  });
  return { manifest, config, layers, blobs: [config, ...layers] };
}

export interface ImageIndex {
  index: Blob;
  images: Image[];
}

export function imageIndex(images: Image[]): ImageIndex {
  const index = jsonBlob(OCI.index, {
    schemaVersion: 2,
    mediaType: OCI.index,
    manifests: images.map((img) => {
      const config = JSON.parse(img.config.bytes.toString("utf8")) as { architecture: string; os: string };
      return { ...img.manifest.descriptor, platform: { architecture: config.architecture, os: config.os } };
    }),
  });
  return { index, images };
}

/** The empty descriptor of image-spec manifest.md "Guidance for an Empty Descriptor". */
export function emptyConfig(): Blob {
  return blob(OCI.empty, Buffer.from("{}"), { data: Buffer.from("{}").toString("base64") });
}

export interface Artifact {
  manifest: Blob;
  config: Blob;
  payload: Blob;
  blobs: Blob[];
}

/** An artifact manifest (image-spec manifest.md "Guidelines for Artifact Usage") that refers to `subject`. */
export function artifact(artifactType: string, payload: Buffer, subject: Descriptor): Artifact {
  const config = emptyConfig();
  const layer = blob("application/json", payload, { annotations: { "org.opencontainers.image.title": "sbom.json" } });
  const subjectDescriptor: Descriptor = { mediaType: subject.mediaType, digest: subject.digest, size: subject.size };
  const manifest = jsonBlob(OCI.manifest, {
    schemaVersion: 2,
    mediaType: OCI.manifest,
    artifactType,
    config: config.descriptor,
    layers: [layer.descriptor],
    subject: subjectDescriptor,
    annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
  });
  return { manifest, config, payload: layer, blobs: [config, layer] };
}

// ---------------------------------------------------------------------------------------------
// The image layout on disk
// ---------------------------------------------------------------------------------------------

/** Writes an OCI image layout: `oci-layout`, `blobs/sha256/<hex>` for every blob, and `index.json` naming `refs`. */
export async function writeLayout(dir: string, blobs: Blob[], refs: Record<string, Descriptor>): Promise<void> {
  const blobDir = join(dir, "blobs", "sha256");
  await mkdir(blobDir, { recursive: true });
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  for (const b of blobs) await writeFile(join(blobDir, b.descriptor.digest.slice("sha256:".length)), b.bytes);
  const manifests = Object.entries(refs).map(([ref, descriptor]) => ({
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    annotations: { [REF_NAME]: ref },
  }));
  await writeFile(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, mediaType: OCI.index, manifests }));
}

export interface LayoutIndex {
  schemaVersion: number;
  manifests: Descriptor[];
}

export async function readLayoutIndex(dir: string): Promise<LayoutIndex> {
  return JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as LayoutIndex;
}

/** The descriptor index.json names `ref` by, or an error listing what it does name. */
export async function layoutRef(dir: string, ref: string): Promise<Descriptor> {
  const index = await readLayoutIndex(dir);
  const found = index.manifests.find((m) => m.annotations?.[REF_NAME] === ref);
  if (!found) throw new Error(`${dir}/index.json has no ref ${ref}: ${JSON.stringify(index.manifests)}`);
  return found;
}

/** Every blob file of a layout: digest → bytes. */
export async function layoutBlobs(dir: string): Promise<Map<string, Buffer>> {
  const blobDir = join(dir, "blobs", "sha256");
  const blobs = new Map<string, Buffer>();
  for (const name of await readdir(blobDir)) blobs.set(`sha256:${name}`, await readFile(join(blobDir, name)));
  return blobs;
}
