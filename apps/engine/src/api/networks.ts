// The network endpoints of the Docker Engine API (swagger "Network" section).
import type { Hono } from "hono";
import type { z } from "zod";
import type { Engine } from "../engine.js";
import { type EndpointSettings, type NetworkRecord, PREDEFINED } from "../networks/manager.js";
import { filterBool } from "./booleans.js";
import { ApiError, badRequest } from "./errors.js";
import { parseFilters } from "./images.js";
import { networkConnectSchema, networkCreateSchema, parseBody } from "./request-schemas.js";
import type { EngineEnv } from "./types.js";

const NETWORK_FILTERS = ["driver", "id", "label", "name", "scope", "type", "dangling"];

function matchesLabel(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf("=");
  return eq === -1 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

/** A JSON body checked against `schema` (400 naming a field of the wrong type). */
async function body<T>(request: { json(): Promise<unknown> }, schema: z.ZodTypeAny, what: string): Promise<T> {
  const parsed: unknown = await request.json().catch((error: unknown) => {
    if (error instanceof ApiError) throw error;
    throw badRequest("invalid JSON body");
  });
  if (!parsed || typeof parsed !== "object") throw badRequest("invalid JSON body");
  return parseBody(schema, parsed, what) as T;
}

/** swagger `Network` (the inspect shape; list entries have empty Containers as in dockerd). */
function networkJson(engine: Engine, net: NetworkRecord, withContainers: boolean) {
  const containers: Record<string, unknown> = {};
  if (withContainers) {
    for (const endpoint of engine.networks.endpointsOn(net.id)) {
      const c = engine.containers.find(endpoint.containerId);
      if (!c || !endpoint.ip) continue;
      containers[c.id] = {
        Name: c.name,
        EndpointID: endpoint.endpointId,
        MacAddress: endpoint.mac ?? "",
        IPv4Address: `${endpoint.ip}/${endpoint.prefixLen}`,
        IPv6Address: "",
      };
    }
  }
  return {
    Name: net.name,
    Id: net.id,
    Created: net.created,
    Scope: "local",
    Driver: net.driver,
    EnableIPv4: true,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: null, Config: net.subnet ? [{ Subnet: net.subnet, Gateway: net.gateway }] : [] },
    Internal: net.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: containers,
    Options: net.driver === "bridge" ? { "com.docker.network.bridge.name": net.bridge, ...net.options } : net.options,
    Labels: net.labels,
  };
}

function matches(engine: Engine, net: NetworkRecord, filters: Record<string, string[]>): boolean {
  for (const [key, values] of Object.entries(filters)) {
    if (values.length === 0) continue;
    let ok = true;
    switch (key) {
      case "driver":
        ok = values.includes(net.driver);
        break;
      case "id":
        ok = values.some((v) => net.id.startsWith(v));
        break;
      case "name":
        ok = values.some((v) => net.name.includes(v));
        break;
      case "label":
        ok = values.every((v) => matchesLabel(net.labels, v));
        break;
      case "scope":
        ok = values.includes("local");
        break;
      case "type":
        for (const v of values) if (v !== "builtin" && v !== "custom") throw badRequest(`invalid filter: 'type'='${v}'`);
        ok = values.includes(PREDEFINED.includes(net.name) ? "builtin" : "custom");
        break;
      case "dangling": {
        const unused = !PREDEFINED.includes(net.name) && engine.networks.endpointsOn(net.id).length === 0;
        ok = values.some((v) => filterBool("dangling", v) === unused);
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

export function networkRoutes(app: Hono<EngineEnv>, engine: Engine): void {
  const networks = engine.networks;

  app.get("/networks", (c) => {
    const filters = parseFilters(c.req.query("filters"), NETWORK_FILTERS);
    return c.json(
      networks
        .list()
        .filter((n) => matches(engine, n, filters))
        .map((n) => networkJson(engine, n, false)),
    );
  });

  app.get("/networks/:id", (c) => c.json(networkJson(engine, networks.get(c.req.param("id")), true)));

  app.post("/networks/create", async (c) => {
    const request = await body<{
      Name?: string;
      Driver?: string;
      Internal?: boolean;
      EnableIPv6?: boolean;
      IPAM?: { Driver?: string; Config?: { Subnet?: string; IPRange?: string; Gateway?: string }[] | null } | null;
      Options?: Record<string, string> | null;
      Labels?: Record<string, string> | null;
    }>(c.req, networkCreateSchema, "network config");
    if (request.EnableIPv6) throw badRequest("IPv6 networks are not supported");
    const configs = request.IPAM?.Config ?? [];
    if (configs.length > 1) throw badRequest("only one IPAM config (one IPv4 subnet) per network is supported");
    if (request.IPAM?.Driver && request.IPAM.Driver !== "default") throw badRequest(`IPAM driver ${request.IPAM.Driver} is not supported`);
    if (configs[0]?.IPRange) throw badRequest("--ip-range is not supported: the whole subnet is allocated");
    const net = await networks.create({
      name: request.Name ?? "",
      ...(request.Driver ? { driver: request.Driver } : {}),
      internal: request.Internal === true,
      labels: request.Labels ?? {},
      options: request.Options ?? {},
      ...(configs[0]?.Subnet ? { subnet: configs[0].Subnet } : {}),
      ...(configs[0]?.Gateway ? { gateway: configs[0].Gateway } : {}),
    });
    return c.json({ Id: net.id, Warning: "" }, 201);
  });

  app.delete("/networks/:id", async (c) => {
    await networks.remove(c.req.param("id"));
    return c.body(null, 204);
  });

  app.post("/networks/prune", async (c) => {
    const filters = parseFilters(c.req.query("filters"), ["label", "label!", "until"]);
    const keep = (net: NetworkRecord) =>
      (filters.label !== undefined && !filters.label.every((l) => matchesLabel(net.labels, l))) ||
      filters["label!"]?.some((l) => matchesLabel(net.labels, l)) === true;
    const deleted = await networks.prune(keep);
    engine.events.publish("network", "prune", "");
    return c.json({ NetworksDeleted: deleted });
  });

  app.post("/networks/:id/connect", async (c) => {
    const request = await body<{ Container?: string; EndpointConfig?: EndpointSettings | null }>(
      c.req,
      networkConnectSchema,
      "network connect request",
    );
    const net = networks.get(c.req.param("id"));
    const container = engine.containers.get(request.Container ?? "");
    await networks.connect(
      net.id,
      container.id,
      request.EndpointConfig ?? undefined,
      container.status === "running" || container.status === "paused",
    );
    return c.body(null, 200);
  });

  app.post("/networks/:id/disconnect", async (c) => {
    const request = await body<{ Container?: string; Force?: boolean }>(c.req, networkConnectSchema, "network disconnect request");
    const net = networks.get(c.req.param("id"));
    const container = engine.containers.get(request.Container ?? "");
    await networks.disconnect(net.id, container.id);
    return c.body(null, 200);
  });
}
