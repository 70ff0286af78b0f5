import type { Hono } from "hono";
import type { AuthConfig, AuthRuntime } from "../auth/index.js";
import { LoginThrottle } from "../auth/throttle.js";
import type { Env, RegistryDeps } from "../http.js";
import { mountUi } from "../ui/serve.js";
import { ManifestDescriber } from "./images.js";
import { createApi } from "./routes.js";
import { SessionStore } from "./sessions.js";

export { PullRecorder } from "./pulls.js";

/** How long a web UI login lasts. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

export interface BrowsingOptions {
  /** The registry database (browser sessions live beside the users). */
  databasePath: string;
  auth?: { runtime: AuthRuntime; config: AuthConfig };
  tls: boolean;
}

/** The browsing API at /api/v1 and the web UI at /. Returns what to close on shutdown. */
export function mountBrowsing(app: Hono<Env>, deps: RegistryDeps, options: BrowsingOptions): { close(): void } {
  const sessions = options.auth?.runtime.users ? new SessionStore(options.databasePath) : undefined;
  const api = createApi({
    deps,
    ...(options.auth ? { auth: options.auth } : {}),
    ...(sessions ? { sessions } : {}),
    throttle: new LoginThrottle(options.auth?.config.throttle.windowMs ?? 60_000),
    describer: new ManifestDescriber(deps),
    sessionTtlMs: SESSION_TTL_MS,
    secureCookie: options.tls || Boolean(options.auth?.config.publicUrl?.startsWith("https:")),
  });
  app.route("/api/v1", api);
  mountUi(app);
  return { close: () => sessions?.close() };
}
