export * from "./digest.js";
export * from "./json.js";
export * from "./manifest.js";
export * from "./media-types.js";
export * from "./names.js";
export * from "./platform.js";
export * from "./reference.js";
