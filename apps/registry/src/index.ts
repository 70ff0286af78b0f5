export { createApp } from "./app.js";
export { loadConfig, type RegistryConfig } from "./config.js";
export { RegistryError } from "./errors.js";
export type { RegistryDeps, RegistryOptions } from "./http.js";
export { createLogger } from "./logger.js";
export { SqliteMetadataStore } from "./metadata/sqlite.js";
export type { MetadataStore } from "./metadata/store.js";
export { expireUploads, type RunningRegistry, startRegistry } from "./server.js";
