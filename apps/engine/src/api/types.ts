import type { HttpBindings } from "@hono/node-server";

export type EngineEnv = { Bindings: HttpBindings };
