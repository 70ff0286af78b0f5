import { type BlobStore, FilesystemBlobStore } from "@minato/storage";
import type { S3BlobStoreOptions } from "@minato/storage/s3";
import { ConfigError, parseBoolean } from "./config.js";

/** Where blobs and upload sessions live: under the data directory, or in an S3 bucket. */
export type StorageConfig = { driver: "filesystem" } | { driver: "s3"; s3: S3BlobStoreOptions };

const MiB = 1024 * 1024;

/** Reads the storage settings (`--storage`, `--s3-*`) through the config loader's getter. */
export function loadStorageConfig(get: (flag: string) => string): StorageConfig {
  const driver = get("storage");
  if (driver === "filesystem") return { driver };
  if (driver !== "s3") throw new ConfigError(`--storage must be filesystem or s3, not ${JSON.stringify(driver)}`);
  const bucket = get("s3-bucket");
  if (!bucket) throw new ConfigError("--storage s3 needs --s3-bucket");
  const flag = (name: string): boolean => parseBoolean(name, get(name) || "false");
  const accessKeyId = get("s3-access-key-id");
  const secretAccessKey = get("s3-secret-access-key");
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) throw new ConfigError("--s3-access-key-id and --s3-secret-access-key go together");
  const endpoint = get("s3-endpoint");
  if (endpoint && !/^https?:\/\/[^/]/.test(endpoint)) throw new ConfigError("--s3-endpoint must be an http:// or https:// URL");
  const partMiB = Number(get("s3-part-size"));
  if (!Number.isInteger(partMiB) || partMiB < 5 || partMiB > 5120)
    throw new ConfigError("--s3-part-size must be an integer from 5 to 5120 (MiB)");
  return {
    driver,
    s3: {
      bucket,
      prefix: get("s3-prefix"),
      ...(get("s3-region") ? { region: get("s3-region") } : {}),
      ...(endpoint ? { endpoint } : {}),
      forcePathStyle: flag("s3-force-path-style"),
      ...(accessKeyId ? { credentials: { accessKeyId, secretAccessKey } } : {}),
      redirect: flag("s3-redirect"),
      partSize: partMiB * MiB,
    },
  };
}

export async function openStorage(config: StorageConfig | undefined, dataDir: string): Promise<BlobStore> {
  if (config?.driver === "s3") {
    // Loaded on demand: the AWS SDK costs ~14 MiB of memory a filesystem registry does not need.
    const { S3BlobStore } = await import("@minato/storage/s3");
    return S3BlobStore.open(config.s3);
  }
  return FilesystemBlobStore.open(dataDir);
}

/** For the startup log line: where blobs go (never credentials). */
export function describeStorage(config: StorageConfig | undefined, dataDir: string): string {
  if (config?.driver !== "s3") return `filesystem:${dataDir}`;
  const { bucket, prefix, endpoint } = config.s3;
  return `s3://${bucket}/${prefix ?? ""}${endpoint ? ` at ${endpoint}` : ""}`;
}
