import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { digestOf, hostPlatform, MediaType } from "@minato/oci";
import { badRequest } from "../api/errors.js";
import type { ImageConfig } from "../distribution/pull.js";
import type { Engine } from "../engine.js";
import { parseReferenceOrThrow } from "../images.js";
import type { ProgressSink } from "../progress.js";
import { describeLayerFile, gzipToFile, layerTarStream } from "./layer-file.js";

/**
 * The Dockerfile instructions `docker import --change` accepts, applied to a config's `config`.
 * Both the JSON (exec) and shell forms of CMD and ENTRYPOINT are understood.
 */
export function applyChanges(config: Record<string, unknown>, changes: string[]): void {
  for (const change of changes) {
    const match = /^\s*(\w+)\s+([\s\S]*)$/.exec(change);
    if (!match) throw badRequest(`invalid change: ${change}`);
    const instruction = (match[1] as string).toUpperCase();
    const argument = (match[2] as string).trim();
    const command = () => (argument.startsWith("[") ? (JSON.parse(argument) as string[]) : ["/bin/sh", "-c", argument]);
    const pairs = () => {
      const result: Record<string, string> = {};
      for (const pair of argument.match(/(?:[^\s"]+|"[^"]*")+/g) ?? []) {
        const eq = pair.indexOf("=");
        if (eq === -1) throw badRequest(`${instruction} needs key=value: ${change}`);
        result[pair.slice(0, eq)] = pair.slice(eq + 1).replace(/^"|"$/g, "");
      }
      return result;
    };
    switch (instruction) {
      case "CMD":
        config.Cmd = command();
        break;
      case "ENTRYPOINT":
        config.Entrypoint = command();
        break;
      case "ENV":
        config.Env = [...((config.Env as string[]) ?? []), ...Object.entries(pairs()).map(([k, v]) => `${k}=${v}`)];
        break;
      case "LABEL":
        config.Labels = { ...((config.Labels as Record<string, string>) ?? {}), ...pairs() };
        break;
      case "WORKDIR":
        config.WorkingDir = argument;
        break;
      case "USER":
        config.User = argument;
        break;
      case "EXPOSE":
        config.ExposedPorts = {
          ...((config.ExposedPorts as Record<string, object>) ?? {}),
          ...Object.fromEntries(argument.split(/\s+/).map((p) => [p.includes("/") ? p : `${p}/tcp`, {}])),
        };
        break;
      case "STOPSIGNAL":
        config.StopSignal = argument;
        break;
      case "VOLUME":
        config.Volumes = {
          ...((config.Volumes as Record<string, object>) ?? {}),
          ...Object.fromEntries(
            (argument.startsWith("[") ? (JSON.parse(argument) as string[]) : argument.split(/\s+/)).map((v) => [v, {}]),
          ),
        };
        break;
      default:
        throw badRequest(`${instruction} is not supported by import --change`);
    }
  }
}

/**
 * `docker import`: a root filesystem tar (plain, gzip or zstd) becomes a one-layer image. The layer is
 * stored gzip-compressed, ready to push; its unpacked snapshot is made at once.
 */
export async function importImage(
  engine: Engine,
  body: Readable,
  options: { repo?: string | undefined; tag?: string | undefined; changes: string[]; message?: string | undefined },
  progress: ProgressSink,
): Promise<void> {
  const { repo, tag, changes } = options;
  const raw = engine.content.temporaryPath("import");
  const packed = engine.content.temporaryPath("import-gz");
  try {
    await pipeline(body, createWriteStream(raw));
    let layer = await describeLayerFile(raw);
    let blobPath = raw;
    if (!layer.gzip) {
      layer = await gzipToFile(layerTarStream(raw, layer.compression), packed);
      blobPath = packed;
    }
    const created = new Date().toISOString();
    const containerConfig: Record<string, unknown> = {};
    applyChanges(containerConfig, changes);
    const config: ImageConfig = {
      architecture: hostPlatform().architecture,
      os: "linux",
      created,
      config: containerConfig,
      rootfs: { type: "layers", diff_ids: [layer.diffId] },
      history: [{ created, created_by: "", comment: options.message || "Imported from -" }],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const id = digestOf(configBytes);
    const release = engine.lease([id, layer.digest, layer.diffId]);
    try {
      await engine.content.adopt(blobPath, layer.digest);
      const size = await engine.snapshots.unpack(layer.diffId, undefined, layer.diffId, () => engine.content.stream(layer.digest));
      await engine.content.put(configBytes, id);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: id, size: configBytes.byteLength },
          layers: [{ mediaType: MediaType.ociLayerGzip, digest: layer.digest, size: layer.size }],
        }),
      );
      const manifestDigest = await engine.content.put(manifest);
      engine.images.save({
        id,
        manifestDigest,
        manifestMediaType: MediaType.ociManifest,
        created,
        size,
        layers: [
          {
            diffId: layer.diffId,
            chainId: layer.diffId,
            blobDigest: layer.digest,
            blobSize: layer.size,
            mediaType: MediaType.ociLayerGzip,
          },
        ],
      });
      if (repo) engine.images.reference(parseReferenceOrThrow(tag ? `${repo}:${tag}` : repo), id);
    } finally {
      release();
    }
    progress({ status: id });
  } finally {
    await rm(raw, { force: true });
    await rm(packed, { force: true });
  }
}
