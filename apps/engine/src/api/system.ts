import { cpus, hostname, machine, release, totalmem } from "node:os";
import { parseImageReference } from "@minato/oci";
import { AuthenticationError, RegistryResponseError } from "@minato/registry-client";
import type { Hono } from "hono";
import { securityOptionsInfo } from "../containers/security.js";
import { ENGINE_VERSION, type Engine } from "../engine.js";
import { engineId } from "../engine-id.js";
import { type AuthConfig, credentialsFrom } from "./auth.js";
import { ApiError, badRequest } from "./errors.js";
import { runtimeInfo } from "./info-runtime.js";
import type { EngineEnv } from "./types.js";
import { API_VERSION, MIN_API_VERSION } from "./version.js";

const GO_ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", s390x: "s390x", ppc64: "ppc64le" };

export function systemRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  const ping = (head: boolean) => (c: { body: (data: string | null, status: 200, headers: Record<string, string>) => Response }) =>
    c.body(head ? null : "OK", 200, {
      "Content-Type": "text/plain; charset=utf-8",
      "Cache-Control": "no-cache, no-store, must-revalidate",
      Pragma: "no-cache",
      "Api-Version": API_VERSION,
      OSType: "linux",
      "Docker-Experimental": "false",
    });
  app.get("/_ping", ping(false));
  app.on("HEAD", "/_ping", ping(true));

  app.get("/version", (c) =>
    c.json({
      Platform: { Name: "Minato Engine" },
      Components: [
        {
          Name: "Engine",
          Version: ENGINE_VERSION,
          Details: {
            ApiVersion: API_VERSION,
            MinAPIVersion: MIN_API_VERSION,
            Arch: GO_ARCH[process.arch] ?? process.arch,
            Os: "linux",
            KernelVersion: release(),
            GoVersion: `node${process.versions.node}`,
            GitCommit: "",
            BuildTime: "",
            Experimental: "false",
          },
        },
      ],
      Version: ENGINE_VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: "",
      GoVersion: `node${process.versions.node}`,
      Os: "linux",
      Arch: GO_ARCH[process.arch] ?? process.arch,
      KernelVersion: release(),
      BuildTime: "",
    }),
  );

  app.get("/info", (c) => {
    const images = engine.images.list();
    const containers = engine.containers.list();
    const count = (status: string) => containers.filter((x) => x.status === status).length;
    return c.json({
      ID: engineId(engine.config.dataRoot),
      Containers: containers.length,
      ContainersRunning: count("running"),
      ContainersPaused: count("paused"),
      ContainersStopped: containers.length - count("running") - count("paused"),
      Images: images.length,
      Driver: "overlay2",
      DriverStatus: [["Backing Filesystem", "overlayfs snapshots"]],
      DockerRootDir: engine.config.dataRoot,
      Name: hostname(),
      ServerVersion: ENGINE_VERSION,
      OperatingSystem: "Linux",
      OSType: "linux",
      // uname -m, as dockerd reports it (x86_64, aarch64).
      Architecture: machine(),
      KernelVersion: release(),
      NCPU: cpus().length,
      MemTotal: totalmem(),
      IndexServerAddress: "https://index.docker.io/v1/",
      RegistryConfig: { InsecureRegistryCIDRs: ["127.0.0.0/8", "::1/128"], IndexConfigs: {}, Mirrors: [] },
      SecurityOptions: securityOptionsInfo(engine.containers.remap !== undefined),
      Labels: [],
      Warnings: [],
      ...runtimeInfo(engine.containers.runtime.runtimePath),
    });
  });

  /** POST /auth: checks credentials against the registry, as `docker login` asks the daemon to. */
  app.post("/auth", async (c) => {
    let body: AuthConfig;
    try {
      body = (await c.req.json()) as AuthConfig;
    } catch {
      throw badRequest("invalid JSON in auth request");
    }
    const credentials = credentialsFrom(body);
    if (!credentials) throw badRequest("username and password are required");
    const address = (body.serveraddress ?? "docker.io").replace(/^https?:\/\//, "").replace(/\/.*$/, "");
    const registry =
      address.includes(".") || address.includes(":") || address === "localhost"
        ? parseImageReference(`${address}/x`).registry
        : "docker.io";
    try {
      await engine.registryClient(registry, credentials).ping();
    } catch (error) {
      if (error instanceof AuthenticationError)
        throw new ApiError(401, `login attempt to ${registry} failed: unauthorized: incorrect username or password`);
      if (error instanceof RegistryResponseError) throw new ApiError(401, error.message);
      throw new ApiError(500, `cannot reach ${registry}: ${(error as Error).message}`);
    }
    return c.json({ Status: "Login Succeeded", IdentityToken: "" });
  });
}
