import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

/** Engine metadata schema; index i migrates from version i to i + 1. Never edit a shipped one. */
const MIGRATIONS: string[] = [
  `
  -- An image is its config (Docker's image ID is the config digest).
  CREATE TABLE images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT,
    manifest_media_type TEXT,
    created TEXT,
    size INTEGER NOT NULL,
    loaded_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  -- Layers bottom-up: the uncompressed diff, the snapshot it unpacks to, the blob it ships as.
  CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    diff_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    blob_digest TEXT NOT NULL,
    blob_size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
  ) WITHOUT ROWID;
  CREATE INDEX image_layers_by_chain ON image_layers(chain_id);
  CREATE INDEX image_layers_by_blob ON image_layers(blob_digest);
  -- name:tag and name@digest references, fully qualified (docker.io/library/busybox:latest).
  CREATE TABLE image_references (
    reference TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest'))
  ) WITHOUT ROWID;
  CREATE INDEX image_references_by_image ON image_references(image_id);
  -- Every layer unpacked once, keyed by chain ID.
  CREATE TABLE snapshots (
    chain_id TEXT PRIMARY KEY,
    parent TEXT,
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  -- Which repositories are known to hold a blob, so pushes can mount instead of upload.
  CREATE TABLE blob_sources (
    digest TEXT NOT NULL,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    PRIMARY KEY (digest, registry, repository)
  ) WITHOUT ROWID;
  -- Other content that must be kept: index manifests an image was pulled through.
  CREATE TABLE image_content (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    PRIMARY KEY (image_id, digest)
  ) WITHOUT ROWID;
  `,
  `
  -- Containers: their create-time configuration as JSON and their last known state.
  CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    image_name TEXT NOT NULL,
    config TEXT NOT NULL,
    host_config TEXT NOT NULL,
    stop_signal TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER NOT NULL DEFAULT 0,
    oom_killed INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    started_at TEXT,
    finished_at TEXT,
    restart_count INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE INDEX containers_by_image ON containers(image_id);
  `,
  `
  -- The builder's step cache: a step's key (parent state + instruction + what it read) → its result.
  CREATE TABLE build_cache (
    key TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    layer TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    used_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  -- Restart policies: a container stopped by a user is not restarted by unless-stopped (nor by always
  -- until the daemon restarts), as Docker's HasBeenManuallyStopped.
  ALTER TABLE containers ADD COLUMN manually_stopped INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- Networks (bridge, host, none and user-defined bridges) and each container's place on them.
  CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    driver TEXT NOT NULL,
    bridge TEXT NOT NULL,
    subnet TEXT NOT NULL,
    gateway TEXT NOT NULL,
    internal INTEGER NOT NULL DEFAULT 0,
    labels TEXT NOT NULL DEFAULT '{}',
    options TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL
  ) WITHOUT ROWID;
  -- An endpoint is requested at create (aliases, --ip) and addressed while the container runs.
  CREATE TABLE network_endpoints (
    network_id TEXT NOT NULL REFERENCES networks(id),
    container_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '[]',
    requested_ip TEXT,
    ifname TEXT NOT NULL,
    ip TEXT,
    prefix_len INTEGER,
    mac TEXT,
    gateway TEXT,
    cni_result TEXT,
    PRIMARY KEY (network_id, container_id)
  ) WITHOUT ROWID;
  CREATE INDEX network_endpoints_by_container ON network_endpoints(container_id);
  -- Per container: its network mode, /etc/hosts inputs, published ports, and its netns while set up.
  CREATE TABLE network_sandboxes (
    container_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hostname TEXT NOT NULL,
    mode TEXT NOT NULL,
    extra_hosts TEXT NOT NULL DEFAULT '[]',
    exposed TEXT NOT NULL DEFAULT '[]',
    ports TEXT NOT NULL DEFAULT '[]',
    active_ports TEXT NOT NULL DEFAULT '[]',
    netns TEXT
  ) WITHOUT ROWID;
  -- Local-driver volumes, and every container's mounts (a volume in use cannot be removed).
  CREATE TABLE volumes (
    name TEXT PRIMARY KEY,
    driver TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    options TEXT NOT NULL DEFAULT '{}',
    anonymous INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE container_mounts (
    container_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    type TEXT NOT NULL,
    name TEXT,
    source TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT '',
    rw INTEGER NOT NULL,
    propagation TEXT NOT NULL DEFAULT '',
    options TEXT,
    PRIMARY KEY (container_id, destination)
  ) WITHOUT ROWID;
  CREATE INDEX container_mounts_by_volume ON container_mounts(name);
  `,
];

export type EngineDatabase = Database.Database;

export function openDatabase(path: string): EngineDatabase {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > MIGRATIONS.length) throw new Error(`engine database schema v${current} is newer than this minatod`);
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
  return db;
}
