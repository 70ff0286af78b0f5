export * from "./driver.js";
export * from "./filesystem.js";
export * from "./s3.js";
