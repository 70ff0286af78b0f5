import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { clientAddress, requestOrigin } from "../auth/request.js";
import type { Ctx, RegistryDeps } from "../http.js";
import type { EventAction } from "./config.js";

/** CNCF Distribution's notification envelope media type (docs "Notifications"): receivers key on it. */
export const ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v2+json";

/** What an event is about, as Distribution names its fields. */
export interface EventTarget {
  mediaType: string;
  size: number;
  digest: string;
  repository: string;
  tag?: string;
  fromRepository?: string;
}

/** An event ready for the outbox: its JSON and the two fields endpoints filter on. */
export interface OutboxEvent {
  action: EventAction;
  mediaType: string;
  body: string;
}

export interface EventSourceOptions {
  /** The registry's listen address, for `source.addr`. */
  addr: string;
  publicUrl?: string;
  trustProxy: boolean;
  tls: boolean;
}

/**
 * Builds Distribution-shaped events from a request: `request` {id, addr, host, method, useragent},
 * `actor` {name} (the token's subject), `source` {addr, instanceID}, and the target's `url`.
 */
export class EventFactory {
  /** Distinguishes this process from other replicas and from itself before a restart. */
  readonly instanceId = randomUUID();
  readonly #source: { addr: string; instanceID: string };

  constructor(private readonly options: EventSourceOptions) {
    this.#source = { addr: `${hostname()}:${options.addr.split(":").at(-1)}`, instanceID: this.instanceId };
  }

  event(
    c: Ctx,
    deps: Pick<RegistryDeps, "auth">,
    action: EventAction,
    kind: "blobs" | "manifests",
    target: EventTarget,
    actor?: string,
  ): OutboxEvent {
    const origin = requestOrigin(c, this.options);
    const body = {
      id: randomUUID(),
      timestamp: new Date().toISOString(),
      action,
      target: { ...target, length: target.size, url: `${origin}/v2/${target.repository}/${kind}/${target.digest}` },
      request: {
        id: c.req.header("x-request-id")?.slice(0, 128) ?? randomUUID(),
        addr: clientAddress(c, this.options.trustProxy),
        host: c.req.header("host") ?? "",
        method: c.req.method,
        useragent: c.req.header("user-agent") ?? "",
      },
      actor: { name: actor ?? deps.auth?.subject(c) ?? "" },
      source: this.#source,
    };
    return { action, mediaType: target.mediaType, body: JSON.stringify(body) };
  }
}

/** Distribution reports layers and configs with this media type: the registry does not know theirs. */
export const BLOB_MEDIA_TYPE = "application/octet-stream";
