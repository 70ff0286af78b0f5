export * from "./driver.js";
export * from "./filesystem.js";
