export { type EngineConfig, loadConfig } from "./config.js";
export { type RunningDaemon, startDaemon } from "./daemon.js";
export { Engine } from "./engine.js";
